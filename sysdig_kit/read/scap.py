"""Native scap reader: a capture file -> the event frame (docs/frame.md), no sysdig needed.

Pipeline: one sequential pass over block headers collects event block offsets
(scap_blocks.walk); numpy gathers header fields and parameter lengths (scap_events.decode);
the thread table is replayed over clone/execve/procexit events only (scap_threads); the
parameters become a pyarrow list<struct<name, value>> whose values are one compacted copy of the
payload bytes, with offsets computed, never sliced event by event.

What sysdig prints is mirrored where it matters: event numbers count every event libscap
delivers (including the internal ones sysdig does not print, like `procinfo`), events are
kept only if sysdig prints them, and evt.rawres follows the libsinsp of the capture's era.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute

from .. import versions
from . import eventtable
from .eventtable import EC_SYSCALL, GENERIC_E, GENERIC_X
from .frame import ARGS_TYPE, empty_frame, make_attrs
from .parts import Part, batches, runs, to_frame
from .scap_blocks import EV_V2, EVF_V1, EVF_V2, Chunk, Meta, Source, gather, read_shb, walk
from .scap_events import Events, decode
from .scap_threads import ThreadTable

ARG_TYPE = ARGS_TYPE


class ScapReader:
    """Reads scap captures (raw or gzip), both eras, every block version."""

    @classmethod
    def sniff(cls, head: bytes) -> bool:
        return head[:4] == b"\x0a\x0d\x0d\x0a"

    @classmethod
    def read(cls, path, event_table: str | None = None, **kw) -> pd.DataFrame:
        """The whole capture as one frame. `event_table` forces a table (else chosen per file)."""
        parts = list(_parts(Path(path), None, event_table))
        if isinstance(parts[-1], pd.DataFrame):  # no events: the empty frame
            return parts[-1]
        return to_frame(parts, give_back=True)

    @classmethod
    def iter_batches(cls, path, batch_size: int = 1_000_000, event_table: str | None = None,
                     **kw):
        """Frames of `batch_size` events, the last one fewer (`evt_num` continues across
        them); chunks of the file are joined or cut to that size."""
        size = max(int(batch_size), 1)
        yield from batches(_parts(Path(path), size, event_table), size)

    @classmethod
    def iter_runs(cls, path, batch_size: int = 1_000_000, event_table: str | None = None):
        """iter_batches' batches before they become frames: (parts, attrs, is the last),
        for callers that use the raw columns (the replay log skips building a frame it would
        take apart); a short last batch joins the one before it (parts.runs)."""
        size = max(int(batch_size), 1)
        yield from runs(_parts(Path(path), size, event_table), size, join_tail=True)


# Arrow buffers the reader makes come from the C library's allocator, like its numpy arrays:
# read() gives freed memory back (parts.to_frame), which Arrow's default pool (mimalloc in
# the wheels) would keep: ~25 MB more peak per million events.
POOL = pa.system_memory_pool()
CHUNK = 4 << 20  # bytes of capture decoded at a time: bounds the temporaries, not the frame


def _parts(path: Path, batch_size: int | None, table_name: str | None):
    """Parts of the capture, chunk by chunk (runs of up to `batch_size` events); the
    capture's warnings go on the last one. A capture without events: the empty frame."""
    src = Source(path)
    prev = None
    meta = Meta()
    table = threads = arch = None
    try:
        buf = src.read(CHUNK)
        pos = read_shb(buf, path, meta)
        base = num = 0
        while True:
            chunk = Chunk(buf, base, path)
            # the chunk's blocks are walked before any batch is decoded, so that the event
            # table is chosen from the whole chunk (as read() does), not from the first batch
            runs = list(walk(chunk, pos, meta, batch_size))
            for offs, btypes in runs:
                if not len(offs):
                    continue
                if table is None:
                    table = eventtable.load(table_name or _choose_table(
                        chunk.u8, *map(np.concatenate, zip(*runs, strict=True))))
                    threads = ThreadTable(meta.threads)
                    arch = _arch(buf, meta)
                ev = decode(chunk.u8, offs, btypes, table, path, first_run=num == 0, base=base)
                part = _part(chunk.u8, ev, table, threads, num)
                num += ev.total
                part.attrs = _attrs(path, meta, table, arch)
                if len(part) == 0 and prev is not None:  # only hidden events in this batch
                    continue
                if prev is not None and len(prev):
                    yield prev
                prev = part
            tail = memoryview(buf)[chunk.rest:]
            nxt = src.read_after(tail, max(CHUNK, chunk.need - len(tail)))
            if nxt is None:  # the end of the stream
                if len(buf) > chunk.rest:
                    src.warnings.append(f"truncated capture: {len(buf) - chunk.rest} bytes left "
                                        f"over after the last complete block (from byte offset "
                                        f"{base + chunk.rest})")
                break
            del tail
            buf = nxt
            base += chunk.rest
            pos = 0
    finally:
        src.close()
    if prev is None:  # no events at all
        table = eventtable.load(table_name or versions.tables()[0])
        prev = empty_frame()
        arch = _arch(b"", meta)
        prev.attrs.update(_attrs(path, meta, table, arch, src.warnings))
    else:
        prev.attrs = _attrs(path, meta, table, arch, src.warnings)
    for w in src.warnings:
        warnings.warn(f"{path}: {w}", stacklevel=4)
    yield prev


def _attrs(path, meta: Meta, table, arch, warns=()) -> dict:
    return make_attrs(source=str(path), format="scap", args_encoding="scap",
                      scap_version=meta.scap_version, event_table=table.name, arch=arch,
                      warnings=list(warns), hostname=meta.hostname)


def _choose_table(u8: np.ndarray, offs: np.ndarray, btypes: np.ndarray) -> str:
    """The registered event table (data/versions.yaml) that explains the capture best.

    Syscall enter events exist only in enter-exit drivers. A v2 event carries its parameter
    count, and drivers only ever append parameters, so a table that knows fewer parameters (or
    fewer event codes) than an event has cannot be the capture's. Of the tables left, the one
    whose counts match most events exactly wins, the earlier registered on a tie (a stock
    capture matches its stock table, not the patched one that appends to it). When none fits
    (a driver newer than any registered), the one that fits the most events; the rest read as
    arg<i>.

    Tables are loaded one by one, and the search stops at the first table that fits every
    event with every count exact: no later table can score higher (ties go to the earlier),
    so a stock capture loads only the tables up to its own."""
    names = versions.tables()
    sample = slice(0, 200_000)
    offs, btypes = offs[sample], btypes[sample]
    if not len(offs):
        return names[0]
    hdr = offs + 10 + np.where(np.isin(btypes, list(EVF_V1 | EVF_V2)), 4, 0)
    etype = gather(u8, hdr + 20, np.uint16).astype(np.int64)
    v2 = np.isin(btypes, list(EV_V2 | EVF_V2))
    t2 = etype[v2]
    n2 = gather(u8, hdr[v2] + 22, np.uint32).astype(np.int64)
    best, best_score = names[0], None
    for i, name in enumerate(names):
        t = eventtable.load(name)
        known = etype < t.size
        code = np.where(known, etype, 0)
        enters = known & (etype % 2 == 0) & (t.category[code] & EC_SYSCALL != 0)
        if t.era == "exit-only" and enters.any():
            continue
        k2 = t2 < t.size
        have = t.nparams[np.where(k2, t2, 0)]
        fits = k2 & (n2 <= have)
        score = (bool(fits.all()), int(fits.sum()), int((k2 & (n2 == have)).sum()), -i)
        if best_score is None or score > best_score:
            best, best_score = name, score
        if score[:3] == (True, len(t2), len(t2)):  # perfect: nothing later can beat it
            break
    return best


def _part(u8, ev: Events, table, threads: ThreadTable, num_start: int) -> Part:
    rows = np.arange(len(ev.off))
    etype, nparams, first = ev.type, ev.nparams, ev.pcount_off[:-1]
    pid, pid_na, name, names = threads.assign(u8, ev, table, rows)
    tcodes, tvocab = _types(u8, ev, table, rows, etype, nparams, first)
    res, res_na = _rawres(u8, ev, table, rows, etype, nparams, first)
    return Part(num=(num_start + 1 + ev.num).astype(np.int64), ts=ev.ts.view(np.int64),
                cpu=ev.cpu.astype(np.int16), tid=ev.tid.view(np.int64), pid=pid,
                pid_na=pid_na, name=name, name_vocab=names, dir=(etype % 2).astype(np.int8),
                type=tcodes, type_vocab=tvocab, res=res, res_na=res_na,
                args=_args(u8, ev, table))


def _types(u8, ev, table, rows, etype, nparams, first) -> tuple[np.ndarray, list]:
    """Event names (codes into a list of names); generic `syscall` events take the name of
    the syscall they carry."""
    vocab = list(dict.fromkeys(table.names.tolist()))
    code_of = {n: i for i, n in enumerate(vocab)}
    by_type = np.array([code_of[n] for n in table.names], dtype=np.int32)
    codes = by_type[etype]
    gen = np.flatnonzero(((etype == GENERIC_E) | (etype == GENERIC_X)) & (nparams > 0))
    if len(gen):
        sc = gather(u8, ev.ppos[first[gen]], np.uint16)
        usc, inv = np.unique(sc, return_inverse=True)
        for k, s in enumerate(usc.tolist()):
            nm = table.syscall_name(s)
            if nm not in code_of:
                code_of[nm] = len(vocab)
                vocab.append(nm)
            codes[gen[inv == k]] = code_of[nm]
    return codes, vocab


def _rawres(u8, ev, table, rows, etype, nparams, first) -> tuple[np.ndarray, np.ndarray]:
    """evt.rawres as the libsinsp of the capture's era computes it.

    enter/exit era (sysdig 0.29): the parameter named `res`, or `fd` on exits of events that
    create an fd. exit-only era (libs >= 0.22): the first parameter of syscall exit events
    (not generic ones), read as 32 or 64 bits by its length.
    """
    n = len(rows)
    k = np.full(n, -1, dtype=np.int64)
    if table.era == "exit-only":
        has = ((table.category[etype] & EC_SYSCALL) != 0) & (etype % 2 == 1)
        has &= (etype != GENERIC_X) & (nparams > 0)
        k[has] = 0
        # a patched table (replay-complete) gives generic exits a `res` of their own
        gres = table.param_index("res")[GENERIC_X]
        if gres >= 0:
            k[(etype == GENERIC_X) & (nparams > gres)] = gres
    else:
        res_k, fd_k = table.param_index("res"), table.param_index("fd")
        k = res_k[etype]
        use_fd = (k < 0) & table.creates_fd[etype] & (etype % 2 == 1)
        k[use_fd] = fd_k[etype[use_fd]]
        k[k >= nparams] = -1
    ok = k >= 0
    idx = np.flatnonzero(ok)
    p = first[idx] + k[idx]
    pos, ln = ev.ppos[p], ev.plen[p]
    val = np.zeros(n, dtype=np.int64)
    for size, dt in ((8, np.int64), (4, np.int32), (2, np.int16), (1, np.int8)):
        s = ln == size
        if s.any():
            val[idx[s]] = gather(u8, pos[s], dt)
    if table.era != "exit-only":  # 0.29 prints nothing for a result of another width
        ok[idx[~np.isin(ln, (1, 2, 4, 8))]] = False
    return val, ~ok


def _args(u8, ev: Events, table) -> pa.ListArray:
    counts, list_off = ev.nparams, ev.pcount_off
    total = int(list_off[-1])
    ev_of = np.repeat(np.arange(len(counts)), counts)  # per parameter: its event
    j = np.arange(total, dtype=np.int64) - list_off[:-1][ev_of]  # its position in the event

    # The values: the chunk's bytes cut at each event's values (contiguous in its block) and
    # at the gaps between them make one binary array; Arrow's take() of the events' entries
    # copies out the values, compacted, and the parameters' offsets are the lengths summed.
    pos, ln = ev.ppos, ev.plen
    nz = np.flatnonzero(counts > 0)
    wide = len(u8) >= 2**31 - 1 or total >= 2**31 - 1
    if total and not wide:
        start = pos[list_off[nz]]
        last = list_off[nz + 1] - 1
        bounds = np.empty(2 * len(nz), dtype=np.int64)
        bounds[0::2], bounds[1::2] = start, pos[last] + ln[last]
        cut = pa.Array.from_buffers(pa.binary(), len(bounds) - 1,
                                    [None, pa.py_buffer(bounds.astype(np.int32)), pa.py_buffer(u8)])
        data = pa.compute.take(cut, pa.array(np.arange(0, len(bounds) - 1, 2)),
                               memory_pool=POOL).buffers()[2] or pa.py_buffer(b"")
        voff = np.zeros(total + 1, dtype=np.int64)
        np.cumsum(ln, out=voff[1:])
        if voff[-1] < 2**31:
            values = pa.Array.from_buffers(pa.binary(), total,
                                           [None, pa.py_buffer(voff.astype(np.int32)), data])
        else:
            values = pa.Array.from_buffers(pa.large_binary(), total,
                                           [None, pa.py_buffer(voff), data])
    elif total:
        values = _values_wide(u8, ev, counts, list_off, total, ev_of, nz)
    else:
        values = pa.array([], type=pa.binary())
    if values.type != pa.binary():
        values = values.cast(pa.binary()) if values.nbytes < 2**31 else values

    names = _param_names(table, int(counts.max()) if len(counts) else 0)
    name_ids = names[1][ev.type[ev_of], j] if total else np.zeros(0, dtype=np.int32)
    name_arr = pa.DictionaryArray.from_arrays(pa.array(name_ids, type=pa.int32()), names[2])
    if total < 2**31 - 1 and values.type == pa.binary():
        # names stay codes into the table's names until a frame is made (parts.plain_args):
        # the replay log reads the codes and never needs the text
        struct = pa.StructArray.from_arrays([name_arr, values], names=["name", "value"])
        return pa.ListArray.from_arrays(pa.array(list_off.astype(np.int32)), struct)
    struct = pa.StructArray.from_arrays([pa.compute.cast(name_arr, pa.string(), memory_pool=POOL),
                                         values], names=["name", "value"])
    return pa.LargeListArray.from_arrays(pa.array(list_off), struct)


def _values_wide(u8, ev: Events, counts, list_off, total: int, ev_of, nz) -> pa.Array:
    """The values when the chunk or the parameters pass 2 GiB (64-bit offsets): the chunk
    cut at every parameter boundary, the parameters taken."""
    pos, ln = ev.ppos, ev.plen
    rank = np.zeros(len(counts), dtype=np.int64)
    rank[nz] = np.arange(len(nz))
    at = np.arange(total, dtype=np.int64) + rank[ev_of]  # each parameter's entry
    bounds = np.empty(total + len(nz), dtype=np.int64)
    bounds[at] = pos
    last = list_off[nz + 1] - 1
    bounds[list_off[nz + 1] + rank[nz]] = pos[last] + ln[last]
    cut = pa.Array.from_buffers(pa.large_binary(), max(len(bounds) - 1, 0),
                                [None, pa.py_buffer(bounds), pa.py_buffer(u8)])
    return cut.take(pa.array(at))


@lru_cache(maxsize=16)
def _param_names(table, width: int):
    """(vocabulary, matrix [event code, position] -> vocabulary index, the vocabulary as one
    Arrow array shared by every chunk's names). Positions past what the table knows (a newer
    or patched driver appended parameters) are named arg<i>."""
    width = max(width, int(table.nparams.max()))
    vocab: dict[str, int] = {}
    extra = np.array([vocab.setdefault(f"arg{i}", len(vocab)) for i in range(width)],
                     dtype=np.int32)
    m = np.empty((table.size, width), dtype=np.int32)
    for code in range(table.size):
        ids = [vocab.setdefault(p["name"], len(vocab)) for p in table.params(code)]
        m[code, :len(ids)] = ids
        m[code, len(ids):] = extra[len(ids):]
    return list(vocab), m, pa.array(list(vocab), type=pa.string())


def _arch(head: bytes, meta: Meta) -> str | None:
    """arm64 / x86_64 from paths the capture carries (ld.so, multiarch lib dirs), else None."""
    head = bytes(head[: 2 << 20]) + "\n".join(meta.exes).encode()
    arm = head.count(b"aarch64")
    x86 = head.count(b"x86_64") + head.count(b"x86-64")
    if arm == x86:
        return None
    return "arm64" if arm > x86 else "x86_64"
