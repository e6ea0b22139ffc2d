"""Event blocks -> numpy arrays: header fields, parameter counts, lengths and positions.

Everything is vectorised over events: header fields are gathered at computed offsets, and
parameter lengths are read group by group (events with the same count and length width share
one fancy-indexing pass).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import KitError
from .eventtable import EventTable
from .scap_blocks import EV_V2, EVF_V1, EVF_V2, gather

HDR_V2 = 26  # u64 ts, u64 tid, u32 len, u16 type, u32 nparams
HDR_V1 = 22  # the same without nparams


@dataclass
class Events:
    """The events sysdig prints (hidden ones are only counted), with their parameters."""

    total: int  # events numbered in this run, printed or not
    num: np.ndarray  # index of each event among them (evt_num - 1 - numbers before this run)
    off: np.ndarray  # block offset in the capture
    cpu: np.ndarray
    ts: np.ndarray  # uint64
    tid: np.ndarray  # uint64
    type: np.ndarray  # event code
    nparams: np.ndarray
    pcount_off: np.ndarray  # per event, index of its first parameter in the flat arrays (N+1)
    ppos: np.ndarray  # flat: byte position of each parameter's value
    plen: np.ndarray  # flat: its length


def decode(u8: np.ndarray, offs: np.ndarray, btypes: np.ndarray, table: EventTable, path,
           first_run: bool = True, base: int = 0) -> Events:
    """Header fields and parameters of the event blocks at `offs` (of a chunk that starts at
    byte `base` of the capture, for error messages)."""
    path = (path, base)
    flags = np.isin(btypes, list(EVF_V1 | EVF_V2))
    # Blocks start on 4-byte boundaries, so the header is read as 32-bit words: word b holds
    # the 2 bytes before the header and its first 2 (the cpu id, or the EVF flags' tail).
    u32 = u8[: len(u8) // 4 * 4].view("<u4")
    b = (offs >> 2) + 2 + flags

    def word(k, sel=slice(None)):
        return u32[b[sel] + k].astype(np.uint64)

    etype = (u32[b + 5] >> 16).astype(np.int64)
    # Event codes this table does not know are skipped, as libscap skips them (not numbered).
    known = etype < table.size
    if not known.all():
        keep = np.flatnonzero(known)
        offs, btypes, flags, b, etype = (a[keep] for a in (offs, btypes, flags, b, etype))
    total = len(offs)
    printed = ~table.hidden[etype]
    if first_run and total:
        # Opening a capture, libsinsp consumes the leading container events (numbering them)
        # before it hands out events; container events later in the file are printed.
        lead = np.flatnonzero(~table.is_container[etype])
        printed[: lead[0] if len(lead) else total] = False
    num = np.flatnonzero(printed)
    if len(num) < total:  # only what sysdig prints is decoded further
        offs, btypes, flags, b, etype = (a[num] for a in (offs, btypes, flags, b, etype))
    v2 = np.isin(btypes, list(EV_V2 | EVF_V2))
    blen = u32[(offs >> 2) + 1].astype(np.int64)
    cpu = (u32[(offs >> 2) + 2] & 0xFFFF).astype(np.uint16)
    hdr = offs + 10 + np.where(flags, 4, 0)
    avail = offs + blen - 4 - hdr  # bytes of the block body after the cpu id (and flags)
    short = avail < np.where(v2, HDR_V2, HDR_V1)
    if short.any():
        _fail(path, offs[np.argmax(short)], "event header too short")
    w2, w4 = word(2), word(4)
    sh16, sh48 = np.uint64(16), np.uint64(48)
    low16 = np.uint64(0xFFFF)
    ts = (word(0) >> sh16) | (word(1) << sh16) | ((w2 & low16) << sh48)
    tid = (w2 >> sh16) | (word(3) << sh16) | ((w4 & low16) << sh48)
    elen = ((w4 >> sh16) | ((word(5) & low16) << sh16)).astype(np.int64)
    del w2, w4
    n = len(offs)
    lsize = np.where(table.large[etype], 4, 2)
    lens_at = hdr + np.where(v2, HDR_V2, HDR_V1)
    nparams = np.zeros(n, dtype=np.int64)
    if v2.any():
        i2 = np.flatnonzero(v2)
        nparams[i2] = u32[b[i2] + 6]
        end = hdr + elen
        bad = v2 & ((elen < HDR_V2) | (elen > avail) | (lens_at + nparams * lsize > end))
        if bad.any():
            _fail(path, offs[np.argmax(bad)], "event length or parameter count out of range")
    if (~v2).any():
        # Old blocks carry no count: most events have every parameter the table lists; the
        # others are searched as libscap does (see _v1_nparams).
        i1 = np.flatnonzero(~v2)
        guess = table.nparams[etype[i1]]
        lens, off = _flat_lens(u8, lens_at[i1], guess, lsize[i1])
        sums = np.zeros(len(lens) + 1, dtype=np.int64)
        np.cumsum(lens, out=sums[1:])
        fit = lens_at[i1] + guess * lsize[i1] + sums[off[1:]] - sums[off[:-1]] == hdr[i1] + elen[i1]
        fit &= ~np.isin(etype[i1], _quirky(table))
        nparams[i1[fit]] = guess[fit]
        if not fit.all():
            _v1_nparams(u8, i1[~fit], offs, hdr, elen, etype, lens_at, table, nparams, path)

    # Every parameter's length and value position, in one flat pass over all events.
    plen, pcount_off = _flat_lens(u8, lens_at, nparams, lsize)
    first = lens_at + nparams * lsize  # where each event's values start
    cs = np.zeros(len(plen) + 1, dtype=np.int64)
    np.cumsum(plen, out=cs[1:])
    ends = first + cs[pcount_off[1:]] - cs[pcount_off[:-1]]
    over = ends > hdr + elen
    if over.any():
        _fail(path, offs[np.argmax(over)], "parameter lengths exceed the event length")
    ppos = np.repeat(first - cs[pcount_off[:-1]], nparams) + cs[:-1]
    return Events(total, num, offs, cpu, ts, tid, etype, nparams, pcount_off, ppos, plen)


def _flat_lens(u8, lens_at, counts, width):
    """(lengths of all parameters, flat, int64; per-event offsets into them) for events whose
    `counts` lengths of `width` bytes (2, or 4 for large-payload events) start at `lens_at`."""
    off = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=off[1:])
    total = int(off[-1])
    wrep = np.repeat(width, counts)
    pos = np.repeat(lens_at - off[:-1] * width, counts) + np.arange(total, dtype=np.int64) * wrep
    pos = np.minimum(pos, len(u8) - 4)  # a guessed count may read past the end: rejected later
    lens = gather(u8, pos, np.uint16).astype(np.int64)
    wide = np.flatnonzero(wrep == 4)
    if len(wide):
        lens[wide] = gather(u8, pos[wide], np.uint32)
    return lens, off


def _quirky(table) -> list[int]:
    return [c for nm in ("notification", "infra") for c in table.code.get((nm, ">"), [])]


def _v1_nparams(u8, i1, offs, hdr, elen, etype, lens_at, table, nparams, path) -> None:
    """Old event blocks carry no parameter count: find it as libscap does. From the table's
    count downwards, the first count whose lengths fit in the event decides: it must fill the
    event exactly, else the file is corrupt. All events step down together."""
    end = hdr[i1] + elen[i1]  # the V1 len counts the 22-byte header
    end -= np.where(np.isin(etype[i1], _quirky(table)), 3, 0)  # written 3 bytes too long
    start = lens_at[i1]
    maxn = table.nparams[etype[i1]]
    w = np.where(table.large[etype[i1]], 4, 2)
    lens, off = _flat_lens(u8, start, maxn, w)
    prefix = np.zeros(len(lens) + len(i1), dtype=np.int64)  # per event: sums of 0..maxn lengths
    at = np.arange(len(lens)) + np.repeat(np.arange(len(i1)), maxn) + 1
    prefix[at] = lens
    first = off[:-1] + np.arange(len(i1))
    np.cumsum(prefix, out=prefix)
    prefix -= np.repeat(prefix[first], maxn + 1)
    todo = np.arange(len(i1))
    c = maxn.copy()
    while len(todo):
        lens_end = start[todo] + c[todo] * w[todo]
        valptr = lens_end + prefix[first[todo] + c[todo]]
        decided = (lens_end <= end[todo]) & (valptr <= end[todo])
        bad = decided & (valptr != end[todo]) | ~decided & (c[todo] == 0)
        if bad.any():
            _fail(path, offs[i1[todo[np.argmax(bad)]]], "cannot compute the parameter count")
        nparams[i1[todo[decided]]] = c[todo[decided]]
        todo = todo[~decided]
        c[todo] -= 1


def _fail(where, off, what: str):
    path, base = where
    raise KitError(f"{path}: corrupt event ({what}) at byte offset {base + int(off)}")
