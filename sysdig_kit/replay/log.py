"""The replay log: columns, dtypes, and its two files (Parquet for tools, JSON Lines for people).

Format `sysdig-kit-replay-log`, version FORMAT_VERSION (docs/replay-log.md). Parquet keeps the
header in the schema metadata; JSON Lines in the first record's own key JSONL_KEY (so that
every line is a record for pandas, polars or DuckDB), buffers in base64.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..atomic import atomic_write
from ..errors import KitError

FORMAT = "sysdig-kit-replay-log"
FORMAT_VERSION = 1
_META_KEY = b"sysdig_kit.replay_log"
JSONL_KEY = "sysdig_kit_replay_log"  # the header, in the first JSON Lines record

ARG = pa.struct([("name", pa.string()), ("value", pa.string())])
BUFFER = pa.struct([("name", pa.string()), ("data", pa.binary()), ("captured_len", pa.int64()),
                    ("reported_len", pa.int64()), ("output", pa.bool_())])
SCHEMA = pa.schema([
    ("thread_tid", pa.int64()),
    ("proc_pid", pa.int64()),
    ("proc_name", pa.string()),
    ("seq", pa.int64()),
    ("kind", pa.string()),
    ("syscall", pa.string()),
    ("nr", pa.int64()),
    ("evt_num", pa.int64()),
    ("enter_evt_num", pa.int64()),
    ("enter_ts", pa.int64()),
    ("exit_ts", pa.int64()),
    ("res", pa.int64()),
    ("errno", pa.string()),
    ("args", pa.list_(ARG)),
    ("buffers", pa.list_(BUFFER)),
    ("flags", pa.list_(pa.string())),
])
COLUMNS = tuple(SCHEMA.names)
_NULLABLE_INT = {"proc_pid", "nr", "evt_num", "enter_evt_num", "enter_ts", "exit_ts", "res"}


def _to_frame(table: pa.Table, header: dict) -> pd.DataFrame:
    # Column by column through each dtype's own Arrow conversion (what to_pandas' types_mapper
    # calls), without to_pandas' per-table metadata work: a fixed cost per batch.
    cols = {}
    for f in table.schema:
        col = table.column(f.name)
        if f.name in ("thread_tid", "seq"):  # never null: plain int64
            if col.null_count:
                raise KitError(f"not a replay log: {col.null_count} records have no {f.name}")
            cols[f.name] = col.to_numpy()
        elif f.type == pa.int64():
            cols[f.name] = pd.Int64Dtype().__from_arrow__(col)
        elif f.type == pa.string():
            cols[f.name] = pd.StringDtype().__from_arrow__(col)
        else:
            cols[f.name] = pd.ArrowDtype(f.type).__from_arrow__(col)
    df = pd.DataFrame(cols, copy=False)
    df.attrs.update(header)
    return df


def make_log(rows: list[dict], **header) -> pd.DataFrame:
    """A log frame from record dicts (keys = COLUMNS) and header fields (arch, source, ...)."""
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    return _to_frame(table, {"format": FORMAT, "version": FORMAT_VERSION, **header})


def make_log_table(table: pa.Table, **header) -> pd.DataFrame:
    """A log frame from an Arrow table of SCHEMA and header fields (arch, source, ...)."""
    return _to_frame(table, {"format": FORMAT, "version": FORMAT_VERSION, **header})


def _header(df: pd.DataFrame) -> dict:
    h = {"format": FORMAT, "version": FORMAT_VERSION}
    h.update({k: v for k, v in df.attrs.items() if k not in h})
    return h


def _table(df: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(df[list(COLUMNS)], schema=SCHEMA, preserve_index=False)


def write(df: pd.DataFrame, path) -> Path:
    """Write the log to `path`; .parquet or .jsonl (chosen by suffix)."""
    path = Path(path)
    if path.suffix == ".parquet":
        table = _table(df).replace_schema_metadata(
            {_META_KEY: json.dumps(_header(df), default=str).encode()})
        return atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    if path.suffix in (".jsonl", ".json"):
        return atomic_write(path, lambda tmp: _write_jsonl(df, tmp))
    raise KitError(f"{path}: the log's name must end in .parquet or .jsonl")


def _write_jsonl(df: pd.DataFrame, tmp) -> None:
    with open(tmp, "w") as f:
        if not _jsonl_records(df, f, _header(df)):
            _jsonl_header_only(f, _header(df))


def _jsonl_records(df: pd.DataFrame, f, header: dict | None = None) -> int:
    """Write df's records; the first carries `header` under JSONL_KEY. Returns how many."""
    rows = _table(df).to_pylist()
    for rec in rows:
        for b in rec["buffers"]:
            b["data"] = base64.b64encode(b["data"]).decode() if b["data"] is not None else None
        if header is not None:
            rec[JSONL_KEY], header = header, None
        f.write(json.dumps(rec, separators=(",", ":"), default=str) + "\n")
    return len(rows)


def _jsonl_header_only(f, header: dict) -> None:
    """A log without records is one line with the header alone (nothing else to carry it)."""
    f.write(json.dumps({JSONL_KEY: header}, default=str) + "\n")


def write_stream(logs: Iterable[pd.DataFrame], path) -> tuple[Path, int]:
    """Write log frames as they come (replay.build_batches) into one file; the header is the
    first frame's. Returns the path and the number of records."""
    path = Path(path)
    if path.suffix not in (".parquet", ".jsonl", ".json"):
        raise KitError(f"{path}: the log's name must end in .parquet or .jsonl")
    count = 0

    def run(tmp):
        nonlocal count
        writer = f = None
        header = None  # JSON Lines: waits for the first record
        try:
            for df in logs:
                if path.suffix == ".parquet":
                    if writer is None:
                        meta = {_META_KEY: json.dumps(_header(df), default=str).encode()}
                        writer = pq.ParquetWriter(tmp, SCHEMA.with_metadata(meta))
                    writer.write_table(_table(df).replace_schema_metadata(writer.schema.metadata))
                else:
                    if f is None:
                        f = open(tmp, "w")  # noqa: SIM115 (closed below, across iterations)
                        header = _header(df)
                    if _jsonl_records(df, f, header):
                        header = None
                count += len(df)
            if f is not None and header is not None:
                _jsonl_header_only(f, header)
        finally:
            if writer is not None:
                writer.close()
            if f is not None:
                f.close()
        if writer is None and f is None:
            raise KitError("nothing to write: the capture gave no frame")

    return atomic_write(path, run), count


def read(path) -> pd.DataFrame:
    """Read a log written by `write` (either format) back into a frame with df.attrs."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: no such file")
    try:
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            header = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
        else:
            table, header = _read_jsonl(path)
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise KitError(f"{path}: not a replay log ({exc})") from None
    if header.get("format") != FORMAT:
        raise KitError(f"{path}: not a replay log (no {FORMAT} header)")
    if header.get("version", 0) > FORMAT_VERSION:
        raise KitError(f"{path}: log format version {header['version']} is newer than this "
                       f"sysdig-kit reads ({FORMAT_VERSION}); upgrade sysdig-kit")
    return _to_frame(table.select(list(COLUMNS)).cast(SCHEMA), header)


def _read_jsonl(path: Path) -> tuple[pa.Table, dict]:
    with open(path) as f:
        rows = [json.loads(line) for line in f if line.strip()]
    first = rows[0] if rows and isinstance(rows[0], dict) else {}
    header = first.pop(JSONL_KEY, None)
    if header is None and first.get("format") == FORMAT and "thread_tid" not in first:
        header = first  # sysdig-kit before 2026-11-30 wrote the header as a line of its own
    if header is not None and not any(k in first for k in COLUMNS):
        rows = rows[1:]  # a header-only line: no record there
    if not isinstance(header, dict):
        header = {}
    for rec in rows:
        for b in rec.get("buffers") or []:
            if b.get("data") is not None:
                b["data"] = base64.b64decode(b["data"])
    return pa.Table.from_pylist(rows, schema=SCHEMA), header
