"""events(frame, "openat"): one event type as a frame of typed columns, decoded column-wise.

The frame keeps every parameter as raw bytes (`evt_args`); here one event type's parameters are
unpacked per parameter *name* over all its events at once with pyarrow/numpy (no Python loop per
event): integers as Int64 (buffers gathered by byte width), strings as `string`, buffers as bytes
plus `<name>_len`, flags as sysdig prints their names (`O_RDONLY|O_CLOEXEC`) plus `<name>_raw`,
negative fds/errnos as `<name>_errno` (`ENOENT`). Flag names come from the driver's own tables
(data/flag_tables, made by tools/gen_flag_tables.py).
"""

from __future__ import annotations

import csv
import json
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import versions
from ..errors import KitError
from .args import SIGNED, STRINGS, UNSIGNED, decode_value, param_info, param_types
from .frame import printable

BASE = ["evt_num", "evt_time", "evt_rawtime", "evt_cpu", "thread_tid", "proc_pid", "proc_name",
        "evt_dir", "evt_type", "evt_rawres", "fd_name"]  # fd_name: when the frame has it
_FLAGS = {"PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16",
          "PT_ENUMFLAGS32"}
_ERRNO_LIKE = {"PT_ERRNO", "PT_FD"}


@cache
def _flag_table(table: str) -> dict:
    """{'<event>|<dir>|<param>': (ptype, [(value, name), ...])} for an event table name."""
    d = versions.registry().tables_dir.parent / "flag_tables"
    for stem in (table, table.split("+")[0]):  # a patched table shares its base's flags
        p = d / f"{stem}.json"
        if p.is_file():
            raw = json.loads(p.read_text())
            return {k: (t, [tuple(v) for v in raw["tables"][i]]) for k, (t, i) in raw["params"].items()}
    return {}


def flag_names(value: int, ptype: str, table: list) -> str:
    """What sysdig prints for a flags value (libsinsp's rendering: each listed flag whose bits
    are all set, bits cleared as they are named; 0 only matches a 0 flag; enums match exactly)."""
    if ptype.startswith("PT_ENUMFLAGS"):
        return "|".join(n for v, n in table if v == value)
    out, val = [], value
    for v, n in table:
        if (v == 0 and value == 0) or (v != 0 and val != 0 and (val & v) == v):
            out.append(n)
            val &= ~v
            if v == value:
                break
    return "|".join(out)


def _offsets(vals: pa.BinaryArray) -> tuple[np.ndarray, np.ndarray]:
    off = np.frombuffer(vals.buffers()[1], dtype=np.int32)[vals.offset: vals.offset + len(vals) + 1]
    buf = vals.buffers()[2]
    data = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)
    return off, data


class _Flat:
    """A frame's evt_args flattened once: per event the span of its parameters, per
    parameter its name code and the span of its value bytes (all numpy)."""

    def __init__(self, arr: pa.ListArray):
        self.loff = np.frombuffer(arr.buffers()[1], dtype=np.int32)[arr.offset: arr.offset + len(arr) + 1]
        st = arr.values  # struct<name, value>, not sliced by the list's own offset
        names, self.values = st.field("name"), st.field("value")
        enc = pc.dictionary_encode(names)
        self.codes = enc.indices.to_numpy(zero_copy_only=False)
        self.names = enc.dictionary.to_pylist()
        self.voff, self.data = _offsets(self.values)
        self.vnull = self.values.is_null().to_numpy(zero_copy_only=False)
        # every 8-byte window of the value bytes (padded), for one-gather integer decoding
        pad = np.concatenate([self.data, np.zeros(8, np.uint8)])
        self.win8 = np.lib.stride_tricks.as_strided(pad, (len(self.data) + 1, 8), (1, 1),
                                                    writeable=False)


class _Vals:
    """One parameter's values laid out over the selected events (`pos` -1: event lacks it)."""

    def __init__(self, flat: _Flat, pos: np.ndarray):
        self.flat, self.pos = flat, pos

    def __len__(self):
        return len(self.pos)

    def spans(self) -> tuple[np.ndarray, np.ndarray]:
        p = np.where(self.pos < 0, 0, self.pos)
        start = self.flat.voff[p]
        lens = np.where((self.pos < 0) | self.flat.vnull[p], 0, self.flat.voff[p + 1] - start)
        return start, lens

    def arrow(self) -> pa.BinaryArray:
        return self.flat.values.take(pa.array(self.pos, mask=self.pos < 0))


def _ints(vals: _Vals, signed: bool) -> pd.array:
    """Little-endian integers of 1/2/4/8 bytes: 8 bytes gathered at each value's start (one
    numpy gather), then narrowed by shifting per width; other widths are NA."""
    start, lens = vals.spans()
    ok = (lens == 1) | (lens == 2) | (lens == 4) | (lens == 8)
    v = vals.flat.win8[np.where(ok, start, 0)].view("<u8").ravel()
    shift = np.where(ok, 64 - 8 * lens, 0).astype(np.uint64)
    v = v << shift
    if signed:
        out = v.view(np.int64) >> shift.astype(np.int64)
    else:
        v = v >> shift
        if (v[ok] > np.iinfo(np.int64).max).any():  # uint64 beyond int64: exact
            return pd.arrays.IntegerArray(np.where(ok, v, 0), ~ok)
        out = v.view(np.int64)
    return pd.arrays.IntegerArray(np.where(ok, out, 0), ~ok)


def _strings(vals: _Vals) -> pd.array:
    """NUL-terminated strings (cut at the first NUL, like decode_value); empty -> NA."""
    vals = vals.arrow()
    cut = pc.list_element(pc.split_pattern(vals, b"\0", max_splits=1), 0)
    empty = pc.equal(pc.binary_length(vals), 0)
    try:
        s = pc.cast(cut, pa.string())
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: its bytes shown as \xNN (Arrow takes
        # UTF-8 only; decode_value's surrogates would not be stored)
        s = pa.array([None if b is None else b.decode("utf-8", "backslashreplace")
                      for b in cut.to_pylist()], pa.string())
    s = pc.if_else(empty, pa.scalar(None, pa.string()), s)
    return pd.arrays.ArrowStringArray(s)


@cache
def errno_names() -> dict[int, str]:
    """{2: 'ENOENT', ...} from data/errno.csv (read here: read/ never imports replay/)."""
    text = resources.files("sysdig_kit").joinpath("data", "errno.csv").read_text()
    rows = csv.reader(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    next(rows)
    # and the kernel-internal codes a syscall can still return to a tracer (not in the uapi
    # headers errno.csv is made from), which libsinsp names too (sinsp_utils::errno_to_str)
    return {int(num): name for num, name in rows} | _KERNEL_ERRNO


_KERNEL_ERRNO = {512: "ERESTARTSYS", 513: "ERESTARTNOINTR", 514: "ERESTARTNOHAND",
                 515: "ENOIOCTLCMD", 516: "ERESTART_RESTARTBLOCK", 521: "EBADHANDLE",
                 522: "ENOTSYNC", 523: "EBADCOOKIE", 524: "ENOTSUPP", 525: "ETOOSMALL",
                 526: "ESERVERFAULT", 527: "EBADTYPE", 528: "EJUKEBOX", 529: "EIOCBQUEUED",
                 530: "EIOCBRETRY"}


@cache
def _errno_table() -> tuple[np.ndarray, pd.CategoricalDtype]:
    en = errno_names()
    names = sorted(set(en.values()))
    codes = np.full(max(en) + 1, -1, dtype=np.int64)
    for num, nm in en.items():
        codes[num] = names.index(nm)
    return codes, pd.CategoricalDtype(names)  # one dtype: categories validated once


def _errno(v: pd.arrays.IntegerArray, fd: bool) -> pd.Categorical:
    """Errno names of negative values as a categorical (NA elsewhere; an fd of -100 is
    AT_FDCWD, not an error, so NA too)."""
    codes_of, names = _errno_table()
    raw = v.to_numpy(dtype=np.int64, na_value=0)
    neg = -raw
    ok = (raw < 0) & (neg < len(codes_of))
    if fd:
        ok &= raw != -100
    codes = np.where(ok, codes_of[np.where(ok, neg, 0)], -1)
    return pd.Categorical.from_codes(codes, dtype=names)


def _decode(name: str, ptype: str | None, vals: pa.BinaryArray, flags: dict, etype: str,
            edir: str) -> dict[str, object]:
    if ptype in _FLAGS:
        raw = _ints(vals, signed=False)
        ftab = flags.get(f"{etype}|{edir}|{name}") or flags.get(
            f"{etype}|{'>' if edir == '<' else '<'}|{name}")
        if ftab is None:
            return {name: raw}
        # few distinct values: render each once, then map codes (categorical)
        uniq, inv = np.unique(raw.to_numpy(dtype=np.int64, na_value=-1),
                              return_inverse=True)
        labels = [flag_names(int(u), ftab[0], ftab[1]) if u >= 0 else None for u in uniq]
        cats = sorted({lb for lb in labels if lb is not None})
        lut = np.array([cats.index(lb) if lb is not None else -1 for lb in labels], np.int64)
        return {name: pd.Categorical.from_codes(lut[inv.ravel()], categories=cats),
                f"{name}_raw": raw}
    if ptype in SIGNED or ptype in UNSIGNED:
        v = _ints(vals, signed=ptype in SIGNED)
        out = {name: v}
        if ptype in _ERRNO_LIKE:
            out[f"{name}_errno"] = _errno(v, fd=ptype == "PT_FD")
        return out
    if ptype in STRINGS:
        return {name: _strings(vals)}
    _, lens = vals.spans()
    arr = vals.arrow()
    null = arr.is_null().to_numpy(zero_copy_only=False)
    return {name: pd.arrays.ArrowExtensionArray(arr),  # bytes
            f"{name}_len": pd.arrays.IntegerArray(lens.astype(np.int64), null)}


_COMBINED: dict[int, tuple] = {}


def _combined(ch):
    """ch as one contiguous array, remembered for the last few chunked arrays seen (a frame
    queried type after type would otherwise copy its whole evt_args column each time)."""
    if not isinstance(ch, pa.ChunkedArray):
        return ch
    if ch.num_chunks == 1:
        return ch.chunk(0)
    hit = _COMBINED.get(id(ch))
    if hit is not None and hit[0] is ch:
        return hit[1]
    if len(_COMBINED) >= 4:
        _COMBINED.pop(next(iter(_COMBINED)))
    _COMBINED[id(ch)] = (ch, ch.combine_chunks())
    return _COMBINED[id(ch)][1]


def _take(col: pd.Series, rows: np.ndarray):
    """col[rows] without pandas' generic take (slow on string/category columns)."""
    a = col.array
    if isinstance(a, pd.Categorical):
        return pd.Categorical.from_codes(a.codes[rows], dtype=a.dtype)
    if isinstance(a, pd.arrays.ArrowExtensionArray):  # Arrow data via the public protocol
        return type(a)(_combined(_chunked(pa.array(a))).take(pa.array(rows)))
    return a[rows]


def events(x, evt_type: str, evt_dir: str | None = None) -> pd.DataFrame:
    """One row per `evt_type` event of the frame `x`, with a typed column per parameter
    (docs/frame.md "Typed events"). `evt_dir` ('>' or '<') keeps one direction.
    `sysdig_kit.events` also takes a capture path."""
    if not isinstance(x, pd.DataFrame):
        raise KitError(f"events(): expected an event frame, got {type(x).__name__}")
    if "evt_type" not in x.columns or "evt_args" not in x.columns:
        raise KitError("events(): not an event frame (docs/frame.md): no evt_type/evt_args column")
    m = (x["evt_type"] == evt_type).to_numpy(bool)
    if evt_dir is not None:
        if evt_dir not in (">", "<"):
            raise KitError(f"evt_dir {evt_dir!r}: '>' (enter) or '<' (exit)")
        m &= (x["evt_dir"] == evt_dir).to_numpy(bool)
    rows = np.flatnonzero(m)
    cols: dict[str, object] = {}
    for c in BASE:
        if c == "evt_time":
            cols[c] = pd.to_datetime(x["evt_rawtime"].to_numpy(np.int64)[rows], unit="ns")
        elif c in x.columns:
            cols[c] = _take(x[c], rows)
    n = len(rows)
    encoding = x.attrs.get("args_encoding", "scap")
    table = x.attrs.get("event_table")
    flags = _flag_table(table) if table else {}
    d = cols["evt_dir"]
    dirs = np.asarray(d.categories, dtype=object)[d.codes] if isinstance(d, pd.Categorical) \
        else np.asarray(d, dtype=object)
    cols.update(_decode_all(_flat(_arrow(x["evt_args"])), rows, dirs, evt_type, encoding,
                            table, flags))
    out = pd.DataFrame(cols, index=pd.RangeIndex(n), copy=False)
    out.attrs = {k: v for k, v in x.attrs.items() if k != "warnings"}
    return out


def _arrow(args: pd.Series) -> pa.ChunkedArray:
    a = args.array
    if isinstance(a, pd.arrays.ArrowExtensionArray):
        return _chunked(pa.array(a))
    return pa.chunked_array([pa.array(list(a))])


def _chunked(arr) -> pa.ChunkedArray:
    return arr if isinstance(arr, pa.ChunkedArray) else pa.chunked_array([arr])


def _flat(ch) -> _Flat:
    key = ("flat", id(ch))
    hit = _COMBINED.get(key)
    if hit is not None and hit[0] is ch:
        return hit[1]
    if len(_COMBINED) >= 4:
        _COMBINED.pop(next(iter(_COMBINED)))
    arr = ch.combine_chunks() if isinstance(ch, pa.ChunkedArray) else ch
    _COMBINED[key] = (ch, _Flat(arr))
    return _COMBINED[key][1]


def _decode_all(flat: _Flat, rows: np.ndarray, dirs: np.ndarray, etype, encoding, table,
                flags) -> dict:
    """Every parameter name of the selected events, decoded over all of them at once: the
    positions of a name's values are laid out full length (-1 where an event lacks it)."""
    n = len(rows)
    rs = flat.loff[rows].astype(np.int64)
    cnt = flat.loff[rows + 1] - rs
    parents = np.repeat(np.arange(n), cnt)
    pos = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt) + np.repeat(rs, cnt)
    codes = flat.codes[pos]
    enter, exit_ = (param_types(str(etype), d, table) for d in (">", "<"))
    order = np.argsort(codes, kind="stable")  # positions grouped by name, in event order
    bounds = np.searchsorted(codes[order], np.arange(len(flat.names) + 1))
    out: dict[str, object] = {}
    for code, name in enumerate(flat.names):
        at = order[bounds[code]:bounds[code + 1]]
        if not len(at) or name is None:
            continue
        idx = parents[at]
        # a name twice in one event (parents ascend, so repeats are adjacent): the first
        first = np.empty(len(idx), bool)
        first[0], first[1:] = True, idx[1:] != idx[:-1]
        at, idx = at[first], idx[first]
        full = np.full(n, -1, dtype=np.int64)
        full[idx] = pos[at]
        vals = _Vals(flat, full)
        # the direction whose events carry it (the exit's when both do) gives its type
        edir = "<" if (dirs[idx] == "<").any() else ">"
        ptype = (exit_ if edir == "<" else enter).get(name)
        if encoding == "scap":
            out.update(_decode(name, ptype, vals, flags, etype, edir))
        else:  # text/JSON frames: sysdig's printed text, parsed per value
            # undecodable bytes the text reader kept as surrogates: shown as \xNN (Arrow-backed
            # strings take UTF-8 only)
            fmt = param_info(str(etype), edir, table).get(name, (None, None))[1]
            dec = (decode_value(ptype, b, encoding, fmt) for b in vals.arrow().to_pylist())
            out[name] = pd.Series([printable(v) if isinstance(v, str) else v for v in dec],
                                  dtype=object).array
    return out
