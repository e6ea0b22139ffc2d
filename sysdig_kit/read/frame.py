"""The event frame every reader produces (docs/frame.md): columns, dtypes, builders, Parquet.

Readers build plain Python/NumPy columns and call `make_frame`, so the schema lives here only.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_write
from ..errors import KitError

COLUMNS = (
    "evt_num",
    "evt_rawtime",
    "evt_cpu",
    "thread_tid",
    "proc_pid",
    "proc_name",
    "evt_dir",
    "evt_type",
    "evt_rawres",
    "evt_args",
)

ARG_TYPE = pa.struct([("name", pa.string()), ("value", pa.binary())])
ARGS_TYPE = pa.list_(ARG_TYPE)

DTYPES = {
    "evt_num": "int64",
    "evt_rawtime": "int64",
    "evt_cpu": "int16",
    "thread_tid": "int64",
    "proc_pid": "Int64",
    "proc_name": pd.StringDtype(),  # missing = pd.NA (pandas 3's default `str` would use NaN)
    "evt_dir": pd.CategoricalDtype([">", "<"]),
    "evt_type": "category",
    "evt_rawres": "Int64",
    "evt_args": pd.ArrowDtype(ARGS_TYPE),
}

# attrs keys every frame carries (docs/frame.md), with their defaults.
ATTRS_DEFAULTS = {
    "source": None,
    "format": None,
    "arch": None,
    "scap_version": None,
    "event_table": None,
    "args_encoding": None,
    "buffers": "raw",
    "warnings": [],
}

_PARQUET_KEY = b"sysdig_kit.attrs"


def _nullable_int(values, mask=None) -> pd.arrays.IntegerArray:
    """Int64 column from ints (None allowed) or from an int array plus a NA mask."""
    if mask is None:
        if isinstance(values, np.ndarray) and values.dtype.kind == "i":
            return pd.array(values.astype("int64", copy=False), dtype="Int64")
        return pd.array(list(values), dtype="Int64")
    return pd.arrays.IntegerArray(np.asarray(values, dtype="int64"), np.asarray(mask, dtype=bool))


def args_array(args) -> pd.arrays.ArrowExtensionArray:
    """evt_args column from a list (one per event) of lists of (name, value-bytes) pairs,
    or from a ready pyarrow array of ARGS_TYPE."""
    if isinstance(args, (pa.Array, pa.ChunkedArray)):
        arr = args if args.type == ARGS_TYPE else args.cast(ARGS_TYPE)
    else:
        names, values, offsets = [], [], [0]
        for ev in args:
            for n, v in ev:
                names.append(n)
                values.append(v)
            offsets.append(len(names))
        structs = pa.StructArray.from_arrays(
            [pa.array(names, pa.string()), pa.array(values, pa.binary())], fields=list(ARG_TYPE)
        )
        arr = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), structs, type=ARGS_TYPE)
    return pd.arrays.ArrowExtensionArray(arr)


def make_frame(
    *,
    evt_num,
    evt_rawtime,
    evt_cpu,
    thread_tid,
    proc_pid,
    proc_name,
    evt_dir,
    evt_type,
    evt_rawres,
    evt_args,
    proc_pid_mask=None,
    evt_rawres_mask=None,
    **attrs,
) -> pd.DataFrame:
    """A frame in the schema of docs/frame.md from column data.

    Integer columns take sequences or arrays; `proc_pid`/`evt_rawres` take ints with None for
    NA, or an int array plus a boolean `*_mask` (True = NA). `attrs` fill df.attrs.
    """
    ints = {"evt_num": evt_num, "evt_rawtime": evt_rawtime, "evt_cpu": evt_cpu,
            "thread_tid": thread_tid, "proc_pid": proc_pid, "evt_rawres": evt_rawres}
    try:
        cols = {
            "evt_num": np.asarray(evt_num, dtype="int64"),
            "evt_rawtime": np.asarray(evt_rawtime, dtype="int64"),
            "evt_cpu": np.asarray(evt_cpu, dtype="int16"),
            "thread_tid": np.asarray(thread_tid, dtype="int64"),
            "proc_pid": _nullable_int(proc_pid, proc_pid_mask),
            "evt_rawres": _nullable_int(evt_rawres, evt_rawres_mask),
        }
    except (OverflowError, TypeError, ValueError):  # text or JSON printed a number out of range
        raise KitError(f"{attrs.get('source')}: {_out_of_range(ints)}") from None
    df = pd.DataFrame(
        {
            "evt_num": cols["evt_num"],
            "evt_rawtime": cols["evt_rawtime"],
            "evt_cpu": cols["evt_cpu"],
            "thread_tid": cols["thread_tid"],
            "proc_pid": cols["proc_pid"],
            "proc_name": _strings(proc_name, DTYPES["proc_name"]),
            "evt_dir": pd.Categorical(evt_dir, dtype=DTYPES["evt_dir"]),
            "evt_type": evt_type if isinstance(evt_type, pd.Categorical)
            else pd.Categorical(_strings(evt_type, object)),
            "evt_rawres": cols["evt_rawres"],
            "evt_args": args_array(evt_args),
        }
    )
    set_attrs(df, **attrs)
    return df


def _out_of_range(ints: dict) -> str:
    """Which event and column hold a number their dtype cannot (only on the error path)."""
    for col, values in ints.items():
        lo, hi = (-(1 << 15), 1 << 15) if col == "evt_cpu" else (-(1 << 63), 1 << 63)
        for i, v in enumerate(values):
            if v is not None and not (isinstance(v, int) and lo <= v < hi):
                what = f"a {v.bit_length()}-bit number" if isinstance(v, int) else repr(v)[:40]
                return f"event {i + 1} of the batch: {col} {what} is out of range"
    return "a number out of range"


def _strings(values, dtype):
    """Text that may hold lone surrogates (undecodable bytes kept by the readers, or JSON
    escapes such as \\udc80): stored with them shown as \\xNN, since Arrow takes UTF-8 only."""
    values = list(values)
    try:  # checked here, not left to pd.array: pandas < 3 stores strings as Python objects and
        # keeps the surrogates, which Arrow then refuses later (writing a frame or a replay log)
        "".join(v for v in values if isinstance(v, str)).encode("utf-8")
    except UnicodeEncodeError:
        values = [v if not isinstance(v, str) else printable(v) for v in values]
    return pd.array(values, dtype=dtype) if dtype is not object else pd.Index(values)


def printable(s: str) -> str:
    """A str that may hold lone surrogates, with their bytes shown as \\xNN (valid UTF-8)."""
    try:
        raw = s.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = s.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace")


def empty_frame(**attrs) -> pd.DataFrame:
    """A frame with no rows but the full schema (what a capture without events reads as)."""
    return make_frame(
        evt_num=[], evt_rawtime=[], evt_cpu=[], thread_tid=[], proc_pid=[], proc_name=[],
        evt_dir=[], evt_type=[], evt_rawres=[], evt_args=[], **attrs,
    )


def set_attrs(df: pd.DataFrame, **attrs) -> pd.DataFrame:
    """Fill df.attrs with every documented key (defaults for the ones not given)."""
    df.attrs.update(make_attrs(**attrs))
    return df


def make_attrs(**attrs) -> dict:
    """Every documented attrs key: the ones given, defaults for the others."""
    out = {k: list(v) if isinstance(v, list) else v for k, v in ATTRS_DEFAULTS.items()}
    for k, v in attrs.items():
        out[k] = str(v) if k == "source" and v is not None else v
    return out


def check_frame(df: pd.DataFrame) -> None:
    """Raise AssertionError if df does not follow docs/frame.md (for tests and other readers)."""
    assert tuple(df.columns) == COLUMNS, f"columns {tuple(df.columns)} != {COLUMNS}"
    for col, want in DTYPES.items():
        got = df[col].dtype
        if col == "evt_type":
            assert isinstance(got, pd.CategoricalDtype), f"{col}: {got}"
        else:
            assert got == want, f"{col}: dtype {got} != {want}"
    for k in ATTRS_DEFAULTS:
        assert k in df.attrs, f"df.attrs lacks {k!r}"


def _table(df: pd.DataFrame, attrs: dict) -> pa.Table:
    table = pa.Table.from_pandas(df, preserve_index=False)
    # pandas' metadata names the list<struct> dtype in a form pandas cannot parse back: call
    # it object, so plain pandas.read_parquet works; read_parquet below restores ArrowDtype.
    meta = dict(table.schema.metadata or {})
    if b"pandas" in meta:
        pmeta = json.loads(meta[b"pandas"])
        for col in pmeta.get("columns", []):
            if "[pyarrow]" in str(col.get("numpy_type")):
                col["numpy_type"] = "object"
        pmeta["attributes"] = attrs
        meta[b"pandas"] = json.dumps(pmeta, default=str).encode()
    meta[_PARQUET_KEY] = json.dumps(attrs, default=str).encode()
    # one dictionary type for the category columns, whatever a batch's categories
    fields = [pa.field(f.name, pa.dictionary(pa.int32(), pa.string()))
              if pa.types.is_dictionary(f.type) else f for f in table.schema]
    return table.cast(pa.schema(fields, metadata=meta))


def to_parquet(df: pd.DataFrame, path) -> Path:
    """Write df to Parquet atomically (temp file in the same directory, then rename), with
    df.attrs kept in the file's metadata so `read_parquet` gives them back."""
    table = _table(df, df.attrs)
    return atomic_write(Path(path), lambda tmp: pq.write_table(table, tmp))


def write_batches(frames, path) -> tuple[int, dict]:
    """Write frames of one capture (e.g. `read.iter_batches`) into one Parquet file, a row
    group per frame, atomically. Returns (rows, attrs): the last frame's attrs with every
    frame's warnings, which the file keeps too. A frame is written by a second thread while
    the next one is read (Arrow's writer does not hold the GIL): memory is that of two
    frames, and reading and writing share the cores."""
    from concurrent.futures import ThreadPoolExecutor

    state = {"rows": 0, "attrs": {}, "warnings": []}

    def write(tmp):
        writer = None
        pending = None  # the frame being written
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                for df in frames:
                    state["rows"] += len(df)
                    state["attrs"] = dict(df.attrs)
                    state["warnings"] += [w for w in df.attrs.get("warnings") or []
                                          if w not in state["warnings"]]
                    table = _table(df, df.attrs)
                    del df
                    if writer is None:
                        writer = pq.ParquetWriter(tmp, table.schema)
                    table = table.cast(writer.schema)
                    if pending is not None:
                        pending.result()  # (its error, if any, is raised here)
                    pending = pool.submit(writer.write_table, table)
                    del table
                if pending is not None:
                    pending.result()
            if writer is None:
                raise ValueError("no frames to write")
            attrs = {**state["attrs"], "warnings": state["warnings"]}
            state["attrs"] = attrs
            # the footer is written last: it carries the attrs known only at the end
            writer.add_key_value_metadata(
                {_PARQUET_KEY.decode(): json.dumps(attrs, default=str)})
        finally:
            if writer is not None:
                writer.close()

    atomic_write(Path(path), write)
    return state["rows"], state["attrs"]


def read_parquet(path) -> pd.DataFrame:
    """Read a frame written by `to_parquet`, with its dtypes and df.attrs restored."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(_PARQUET_KEY)
    df = table.to_pandas(types_mapper={ARGS_TYPE: pd.ArrowDtype(ARGS_TYPE)}.get)
    for col, want in DTYPES.items():
        if col not in df.columns:
            continue
        if col == "evt_type":
            if not isinstance(df[col].dtype, pd.CategoricalDtype):
                df[col] = df[col].astype("category")
        elif col == "evt_dir":
            df[col] = pd.Categorical(df[col].astype(object), dtype=want)
        elif df[col].dtype != want:
            df[col] = df[col].astype(want)
    df.attrs.update(json.loads(raw) if raw else {})
    return df
