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
    off: np.ndarray  # block offset in the capture
    cpu: np.ndarray
    ts: np.ndarray  # uint64
    tid: np.ndarray  # uint64
    type: np.ndarray  # event code
    nparams: np.ndarray
    pcount_off: np.ndarray  # per event, index of its first parameter in the flat arrays (N+1)
    ppos: np.ndarray  # flat: byte position of each parameter's value
    plen: np.ndarray  # flat: its length


def decode(u8: np.ndarray, offs: np.ndarray, btypes: np.ndarray, table: EventTable, path) -> Events:
    flags = np.isin(btypes, list(EVF_V1 | EVF_V2))
    v2 = np.isin(btypes, list(EV_V2 | EVF_V2))
    blen = gather(u8, offs + 4, np.uint32).astype(np.int64)
    cpu = gather(u8, offs + 8, np.uint16)
    hdr = offs + 10 + np.where(flags, 4, 0)
    avail = offs + blen - 4 - hdr  # bytes of the block body after the cpu id (and flags)
    if np.any(avail < np.where(v2, HDR_V2, HDR_V1)):
        _fail(path, offs[np.argmax(avail < np.where(v2, HDR_V2, HDR_V1))], "event header too short")
    ts = gather(u8, hdr, np.uint64)
    tid = gather(u8, hdr + 8, np.uint64)
    elen = gather(u8, hdr + 16, np.uint32).astype(np.int64)
    etype = gather(u8, hdr + 20, np.uint16).astype(np.int64)

    # Event codes this table does not know are skipped, as libscap skips them (not numbered).
    known = etype < table.size
    if not known.all():
        keep = np.flatnonzero(known)
        offs, cpu, hdr, avail, ts, tid, elen, etype, v2 = (
            a[keep] for a in (offs, cpu, hdr, avail, ts, tid, elen, etype, v2))
    n = len(offs)
    lsize = np.where(table.large[etype], 4, 2)
    lens_at = hdr + np.where(v2, HDR_V2, HDR_V1)
    nparams = np.zeros(n, dtype=np.int64)
    if v2.any():
        i2 = np.flatnonzero(v2)
        nparams[i2] = gather(u8, hdr[i2] + 22, np.uint32)
        end = hdr + elen
        bad = v2 & ((elen < HDR_V2) | (elen > avail) | (lens_at + nparams * lsize > end))
        if bad.any():
            _fail(path, offs[np.argmax(bad)], "event length or parameter count out of range")
    if (~v2).any():
        _v1_nparams(u8, np.flatnonzero(~v2), offs, hdr, elen, etype, lens_at, table, nparams, path)

    # Parameter lengths, grouped by (count, width): one gather per group.
    pcount_off = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(nparams, out=pcount_off[1:])
    total = int(pcount_off[-1])
    ppos = np.empty(total, dtype=np.int64)
    plen = np.empty(total, dtype=np.int64)
    key = nparams * 8 + lsize
    for k in np.unique(key):
        idx = np.flatnonzero(key == k)
        cnt, width = int(k) // 8, int(k) % 8
        if cnt == 0:
            continue
        dt = np.uint32 if width == 4 else np.uint16
        cols = lens_at[idx][:, None] + np.arange(cnt, dtype=np.int64) * width
        lens = gather(u8, cols.ravel(), dt).reshape(len(idx), cnt).astype(np.int64)
        first = lens_at[idx] + cnt * width
        starts = first[:, None] + np.cumsum(lens, axis=1) - lens
        end = hdr[idx] + elen[idx]
        over = starts[:, -1] + lens[:, -1] > end
        if over.any():
            _fail(path, offs[idx[np.argmax(over)]], "parameter lengths exceed the event length")
        dest = pcount_off[idx][:, None] + np.arange(cnt)
        ppos[dest] = starts
        plen[dest] = lens
    return Events(offs, cpu, ts, tid, etype, nparams, pcount_off, ppos, plen)


def _v1_nparams(u8, i1, offs, hdr, elen, etype, lens_at, table, nparams, path) -> None:
    """Old event blocks carry no parameter count: find it as libscap does, from the table's
    count downwards, the first count whose lengths fit exactly in the event length."""
    end = hdr + elen  # the V1 len counts the 22-byte header
    quirky = [c for nm in ("notification", "infra") for c in table.code.get((nm, ">"), [])]
    fix = np.isin(etype, quirky)  # their lengths were written 3 bytes too long
    end = end - np.where(fix, 3, 0)
    for t in np.unique(etype[i1]):
        idx = i1[etype[i1] == t]
        maxn = int(table.nparams[t])
        w = 4 if table.large[t] else 2
        if maxn == 0:
            if np.any(lens_at[idx] != end[idx]):
                _fail(path, offs[idx[np.argmax(lens_at[idx] != end[idx])]], "bad event length")
            continue
        cols = lens_at[idx][:, None] + np.arange(maxn, dtype=np.int64) * w
        cols = np.minimum(cols, len(u8) - w)  # reads past the event only feed rejected counts
        lens = gather(u8, cols.ravel(), np.uint32 if w == 4 else np.uint16)
        lens = lens.reshape(len(idx), maxn).astype(np.int64)
        sums = np.zeros((len(idx), maxn + 1), dtype=np.int64)
        np.cumsum(lens, axis=1, out=sums[:, 1:])
        cand = np.arange(maxn + 1)
        valptr = lens_at[idx][:, None] + cand * w + sums
        e = end[idx][:, None]
        fits = lens_at[idx][:, None] + cand * w <= e
        decide = fits & (valptr <= e)
        # the largest deciding count; it must match exactly
        best = maxn - np.argmax(decide[:, ::-1], axis=1)
        ok = decide.any(axis=1) & (valptr[np.arange(len(idx)), best] == end[idx])
        if not ok.all():
            _fail(path, offs[idx[np.argmax(~ok)]], "cannot compute the parameter count")
        nparams[idx] = best


def _fail(path, off, what: str):
    raise KitError(f"{path}: corrupt event ({what}) at byte offset {int(off)}")
