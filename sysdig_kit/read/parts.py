"""The scap reader's unit of work: a run of decoded events as raw columns (numpy arrays, codes
into small vocabularies, the Arrow parameters), turned into a pandas frame once per read() or
per batch, not once per 4 MiB chunk (building and then joining ~35 small frames per million
events cost more than decoding the headers)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute

from .frame import ARG_TYPE, DTYPES


@dataclass
class Part:
    num: np.ndarray  # evt_num, int64
    ts: np.ndarray  # evt_rawtime, int64
    cpu: np.ndarray  # int16
    tid: np.ndarray  # int64
    pid: np.ndarray  # int64
    pid_na: np.ndarray  # bool, True = NA
    name: np.ndarray  # proc_name: int32 codes into name_vocab, -1 = NA
    name_vocab: list
    dir: np.ndarray  # int8: 0 = ">", 1 = "<"
    type: np.ndarray  # evt_type: codes into type_vocab
    type_vocab: list
    res: np.ndarray  # evt_rawres, int64
    res_na: np.ndarray
    args: pa.Array  # evt_args (list<struct<name, value>>, or large_list past 2 GiB)
    attrs: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.num)

    def slice(self, a: int, b: int) -> Part:
        """Rows a..b (views, no copy)."""
        cut = {k: getattr(self, k)[a:b] for k in _ROWS}
        return replace(self, **cut, args=self.args.slice(a, b - a))


_ROWS = ("num", "ts", "cpu", "tid", "pid", "pid_na", "name", "dir", "type", "res", "res_na")


def to_frame(parts: list[Part], give_back: bool = False) -> pd.DataFrame:
    """One frame from parts of one capture, in order; attrs: the last part's. Each column's
    parts are dropped as soon as the column is joined, so the peak is the parts plus one
    column, not twice the frame. `give_back`: return the parts' memory to the system as it is
    dropped (for a whole capture's frame)."""
    cols = {}
    pending = 0  # bytes dropped since memory was last given back
    for col, build, keys in _COLUMNS:
        cols[col] = build(parts)
        for p in parts:
            for k in keys:
                if k != "args":  # (the frame keeps the parameters' Arrow data as they are)
                    pending += getattr(p, k).nbytes
                setattr(p, k, None)
        # A joined column is one new block, while its parts free many small ones that glibc
        # keeps: given back once per TRIM_STEP freed (each time walks the heap: ~2 ms at 1M
        # events), the peak stays near the parts plus one column.
        if give_back and pending >= TRIM_STEP:
            _trim()
            pending = 0
    df = pd.DataFrame(cols, copy=False)  # a block per column
    df.attrs = dict(parts[-1].attrs)
    return df


def _cat(arrs: list[np.ndarray]) -> np.ndarray:
    return arrs[0] if len(arrs) == 1 else np.concatenate(arrs)


def _ints(parts, key):
    return _cat([getattr(p, key) for p in parts])


def _nullable(parts, key):
    return pd.arrays.IntegerArray(_ints(parts, key), _ints(parts, key + "_na"))


def _types(parts) -> pd.Categorical:
    """evt_type: categories are the names present, sorted (however the capture was cut)."""
    codes, vocab = recode(parts, "type")
    used = np.flatnonzero(np.bincount(codes, minlength=len(vocab)))  # (no sort: codes are few)
    names = np.array([vocab[u] for u in used], dtype=object)
    order = np.argsort(names, kind="stable")
    remap = np.zeros(len(vocab), dtype=np.int32)
    remap[used[order]] = np.arange(len(used), dtype=np.int32)
    cats = pd.Index(names[order].tolist(), dtype="str")
    return pd.Categorical.from_codes(remap[codes], dtype=pd.CategoricalDtype(cats))


def _names(parts):
    """proc_name from the thread names' codes: each name's text is made once, rows take it."""
    codes, vocab = recode(parts, "name")
    dt = DTYPES["proc_name"]
    names = pa.array(vocab, type=pa.string())  # (Arrow checks the text is UTF-8)
    if getattr(dt, "storage", None) == "python":  # pandas 2's default: Python str objects
        objs = np.array([*vocab, pd.NA], dtype=object)
        return pd.array(objs[codes], dtype=dt)
    idx = pa.array(codes, mask=codes < 0, type=pa.int32(), memory_pool=pa.system_memory_pool())
    # straight to the Arrow type pandas keeps (large_string in pandas 3): no second copy
    text = pa.compute.cast(pa.DictionaryArray.from_arrays(idx, names), _string_type(),
                           memory_pool=pa.system_memory_pool())  # (see scap.POOL)
    return pd.array(text, dtype=dt)


@cache
def _string_type() -> pa.DataType:
    """The Arrow type of the text pandas' string dtype holds (ArrowStringArray's)."""
    probe = pd.array(pa.array([""], type=pa.string()), dtype=DTYPES["proc_name"])
    return pa.array(probe).type


def plain_args(arr: pa.Array) -> pa.Array:
    """Parameters whose names are a dictionary (as the scap reader decodes them: codes into
    the event table's names) with the names as text, the frame's evt_args type."""
    struct = arr.type.value_type
    if not pa.types.is_dictionary(struct.field("name").type):
        return arr
    offs = arr.offsets
    names, values = arr.flatten().flatten()  # (just this slice's parameters)
    pool = pa.system_memory_pool()  # (as the reader's own buffers: see scap.POOL)
    rebased = pa.compute.subtract(offs, offs[0], memory_pool=pool) \
        if len(offs) and offs[0].as_py() else offs
    text = pa.compute.cast(names, pa.string(), memory_pool=pool)
    items = pa.StructArray.from_arrays([text, values], fields=list(ARG_TYPE))
    make = pa.LargeListArray if pa.types.is_large_list(arr.type) else pa.ListArray
    return make.from_arrays(rebased, items)


def _args(parts) -> pd.arrays.ArrowExtensionArray:
    chunks = []
    for p in parts:  # (each part's coded names dropped as soon as its text is made)
        chunks.append(plain_args(p.args))
        p.args = None
    if len({c.type for c in chunks}) > 1:  # a part too large for 32-bit offsets
        chunks = [c.cast(pa.large_list(ARG_TYPE)) for c in chunks]
    return pd.arrays.ArrowExtensionArray(pa.chunked_array(chunks, type=chunks[0].type))


_COLUMNS = (  # (column, builder, the Part fields it consumes)
    ("evt_num", lambda ps: _ints(ps, "num"), ("num",)),
    ("evt_rawtime", lambda ps: _ints(ps, "ts"), ("ts",)),
    ("evt_cpu", lambda ps: _ints(ps, "cpu"), ("cpu",)),
    ("thread_tid", lambda ps: _ints(ps, "tid"), ("tid",)),
    ("proc_pid", lambda ps: _nullable(ps, "pid"), ("pid", "pid_na")),
    ("proc_name", _names, ("name",)),
    ("evt_dir", lambda ps: pd.Categorical.from_codes(_ints(ps, "dir"), dtype=DTYPES["evt_dir"]),
     ("dir",)),
    ("evt_type", _types, ("type",)),
    ("evt_rawres", lambda ps: _nullable(ps, "res"), ("res", "res_na")),
    ("evt_args", _args, ("args",)),
)


def batches(parts, size: int):
    """Frames of `size` rows (the last one fewer) from parts of any sizes, each with index
    0..n-1 and the evt_type categories present (as read() gives them); the last one keeps
    the last part's attrs (the reader puts the capture's warnings there)."""
    for run in runs(parts, size):
        if isinstance(run, pd.DataFrame):
            yield run
            continue
        df = to_frame(run[0])
        df.attrs = dict(run[1])
        yield df


def runs(parts, size: int, join_tail: bool = False):
    """What `batches` makes frames of: (the parts of `size` rows, the attrs its frame gets,
    whether it is the last run), for callers that use the raw columns (the replay log); a
    capture without events: its (only) frame. `join_tail`: a last run shorter than a quarter
    of `size` joins the run before it (whose work per run would cost more than its rows)."""
    take, have, ready, last = [], 0, None, None
    for p in parts:
        if isinstance(p, pd.DataFrame):  # a capture without events: its (only) frame
            yield p
            return
        last, start = p, 0
        while start < len(p):
            k = min(size - have, len(p) - start)
            take.append(p.slice(start, start + k) if k < len(p) else p)
            have, start = have + k, start + k
            if have == size:
                if ready is not None:
                    yield ready, ready[-1].attrs, False
                ready, take, have = take, [], 0
        del p
    if take:
        if ready is not None and join_tail and have * 4 < size:
            ready = ready + take
        else:
            if ready is not None:
                yield ready, ready[-1].attrs, False
            ready = take
    if ready is None:
        ready = [last] if last is not None else None
    if ready is not None:
        yield ready, last.attrs, True


def recode(parts, key):
    """(codes of every row into one vocabulary, that vocabulary's names) from the parts'
    codes into their own vocabularies; -1 stays -1."""
    vocab: dict[str, int] = {}
    out = []
    for p in parts:
        names = getattr(p, key + "_vocab")
        m = np.array([vocab.setdefault(n, len(vocab)) for n in names] + [-1], dtype=np.int32)
        out.append(m[getattr(p, key)])  # (-1 takes the last entry: -1)
    return _cat(out), list(vocab)


TRIM_STEP = 8 << 20


def _trim() -> None:
    """Give freed memory back to the system now (glibc keeps small freed blocks in its heap,
    so joining column by column would still grow the process by a frame)."""
    global _libc
    if _libc is None:
        try:
            import ctypes

            _libc = ctypes.CDLL("libc.so.6")
            _libc.malloc_trim.argtypes = [ctypes.c_size_t]
        except (OSError, AttributeError):
            _libc = False
    if _libc:
        _libc.malloc_trim(0)


_libc = None
