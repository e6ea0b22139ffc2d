"""Records as columns: each parameter decoded by its type, enter and exit merged, buffers,
result, flags, then one Arrow table (log.SCHEMA). Column-wise throughout: the parameters of
all records are one flat array, decoded per type group; Python runs per distinct event type,
parameter name or value only (what tests/replay_reference.py did per event and parameter)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..read.args import SIGNED, STRINGS, UNSIGNED, decode_value, param_info
from . import syscalls, writeback
from .log import ARG, BUFFER, SCHEMA
from .pairs import FLAG_A, FLAG_B, Events, Records

NONE, INT, UINT, DOUBLE, STR, BYTES = range(6)
FLAGS = ("no_return_value", *FLAG_A[1:], *FLAG_B[1:], "named_from_nr", "truncated_buffer",
         "no_write_back")
_F = {f: i for i, f in enumerate(FLAGS)}
_DIRS = ("?", ">", "<")  # dir code + 1
_WHEN = {"res>=0": lambda r: r >= 0, "res>0": lambda r: r > 0, "res==0": lambda r: r == 0,
         "res<0": lambda r: r < 0}  # writeback's conditions, on arrays


def _ptype_class(ptype) -> int:
    if ptype in SIGNED:
        return INT
    if ptype in UNSIGNED:
        return UINT
    if ptype == "PT_DOUBLE":
        return DOUBLE
    if ptype in STRINGS:
        return STR
    return BYTES


class Params:
    """The parameters of the records' events, flat, in record order (enter's, then exit's)."""

    def __init__(self, ev: Events, recs: Records, encoding: str | None,
                 table: str | None = None):
        self.encoding = encoding or "scap"
        nrec = len(recs.tid)
        args = ev.args
        offs = args.offsets.to_numpy().astype(np.int64)
        names, values = args.values.flatten()
        pair = np.stack([recs.enter, recs.exit], axis=1).ravel()
        has = pair >= 0
        evrow = pair[has]
        rec_of = np.repeat(np.arange(nrec), 2)[has]
        start, cnt = offs[evrow], offs[evrow + 1] - offs[evrow]
        total = int(cnt.sum())
        before = np.zeros(len(cnt), dtype=np.int64)
        np.cumsum(cnt[:-1], out=before[1:])
        self.idx = np.repeat(start - before, cnt) + np.arange(total, dtype=np.int64)
        self.rec = np.repeat(rec_of, cnt)

        d = names if pa.types.is_dictionary(names.type) else None  # (scap: coded already)
        if d is None or len(set(d.dictionary.to_pylist())) < len(d.dictionary):
            text = names if d is None else names.cast(pa.string())
            d = pc.dictionary_encode(text)  # every parameter name of the frame, once
        self.vocab = [str(x) for x in d.dictionary.to_pylist()]
        ind = d.indices if not d.indices.null_count else pc.fill_null(d.indices, len(self.vocab))
        nid_all = ind.to_numpy()
        self.nid = nid_all[self.idx].astype(np.int64)
        self.vocab.append("")
        self.vindex = {n: i for i, n in enumerate(self.vocab)}
        # generic events: their first parameter is `ID`
        gen_ev = np.zeros(len(cnt), dtype=bool)
        nz = cnt > 0
        gen_ev[nz] = self.nid[before[nz]] == self.vindex.get("ID", -1)
        self.generic = np.repeat(gen_ev, cnt)

        values = values if values.type == pa.binary() else values.cast(pa.binary())
        self.values = values
        voffs = _bin_offsets(values)
        self.vpos = voffs[self.idx]
        self.vlen = voffs[self.idx + 1] - self.vpos
        null = values.is_null().to_numpy(zero_copy_only=False)[self.idx] if values.null_count \
            else np.zeros(total, dtype=bool)
        buf = values.buffers()[2]
        self.u8 = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.zeros(0, np.uint8)

        # the type of each parameter, from the event tables, per (event type, dir, name)
        td = np.repeat(ev.type[evrow] * 3 + (ev.dir[evrow].astype(np.int64) + 1), cnt)
        used = np.flatnonzero(np.bincount(td, minlength=len(ev.names) * 3)) if total else []
        lut = np.full((len(ev.names) * 3, len(self.vocab)), BYTES, dtype=np.int8)
        self.ptypes: dict[tuple[int, int], tuple] = {}  # -> (PT_* type, PF_* print format)
        for x in np.asarray(used).tolist():
            # text/JSON: the frame's own table first, whose print formats sysdig printed with
            info = param_info(ev.names[x // 3], _DIRS[x % 3],
                              table if self.encoding != "scap" else None)
            for pname, (ptype, pfmt) in info.items():
                j = self.vindex.get(pname)
                if j is not None:
                    lut[x, j] = _ptype_class(ptype)
                    self.ptypes[(x, j)] = (ptype, pfmt)
        self.td = td
        cls = lut[td, self.nid]
        self.ival = np.zeros(total, dtype=np.int64)  # INT, UINT (its bits)
        self.text = {}  # parameter -> text, where it is not made column-wise
        if self.encoding == "scap":
            cls[(cls == DOUBLE) & (self.vlen != 8)] = BYTES
            num = np.flatnonzero((cls == INT) | (cls == UINT))
            w = self.vlen[num]
            cls[num[~((w >= 1) & (w <= 8) & (w & (w - 1) == 0))]] = BYTES  # 1, 2, 4 or 8
            cls[null | (self.vlen == 0)] = NONE
            num = np.flatnonzero((cls == INT) | (cls == UINT))
            nw = self.vlen[num]
            for w in (1, 2, 4, 8):
                sel = num[nw == w]
                if len(sel):  # read in place: the bytes at every offset seen as a w-byte int
                    at = np.ndarray((len(self.u8) - w + 1,), dtype=f"<i{w}", buffer=self.u8,
                                    strides=(1,))
                    v = at[self.vpos[sel]].astype(np.int64)
                    if w < 8:  # unsigned ones: no sign extension
                        u = cls[sel] == UINT
                        v[u] &= (1 << (8 * w)) - 1
                    self.ival[sel] = v
            for p in np.flatnonzero(cls == DOUBLE).tolist():
                self.text[p] = str(self.raw(p).view("<f8")[0])
        else:
            self._decode_text(cls, null)
        self.cls = cls

    def raw(self, p: int) -> np.ndarray:
        return self.u8[self.vpos[p]: self.vpos[p] + self.vlen[p]]

    def _decode_text(self, cls, null) -> None:
        """sysdig's text and JSON give each value as text: decoded one by one (small frames)."""
        for p in range(len(cls)):
            if null[p]:
                cls[p] = NONE
                continue
            # the print format too: sysdig prints PF_HEX numbers in hex without 0x
            ptype, pfmt = self.ptypes.get((int(self.td[p]), int(self.nid[p])), (None, None))
            try:
                v = decode_value(ptype, bytes(self.raw(p)), self.encoding, pfmt)
            except Exception:  # noqa: BLE001  (unreadable encoding: the raw bytes, as before)
                v = bytes(self.raw(p))
            if v is None:
                cls[p] = NONE
            elif isinstance(v, bytes):
                cls[p] = BYTES
            elif isinstance(v, int) and -(1 << 63) <= v < (1 << 64):
                cls[p] = INT if v < (1 << 63) else UINT
                self.ival[p] = v if cls[p] == INT else v - (1 << 64)
            elif isinstance(v, int):  # wider than 64 bits (sysdig prints none): its text
                cls[p] = STR
                self.text[p] = str(v)
            else:
                cls[p] = STR
                self.text[p] = str(v).encode("utf-8", "surrogateescape").decode(
                    "utf-8", "backslashreplace")

    def pyvalue(self, p: int):
        """The parameter's value as decode_args gives it."""
        c = self.cls[p]
        if c == NONE:
            return None
        if c == INT:
            return int(self.ival[p])
        if c == UINT:
            return int(np.int64(self.ival[p]).view(np.uint64))
        if c == BYTES:
            return bytes(self.raw(p))
        if p in self.text:
            return float(self.text[p]) if c == DOUBLE else self.text[p]
        return bytes(self.raw(p)).split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def assemble(ev: Events, recs: Records, arch: str | None, attrs: dict,
             lean: bool = False) -> pa.Table:
    """The log table of `recs` (rows of `ev`; `attrs`: the frame's). `lean` (for `check`,
    which reads neither): args are left empty and buffer data null, the rest is the same."""
    encoding = attrs.get("args_encoding")
    # sysdig's default text cuts printed buffers at its print length: how many bytes were
    # captured is unknown there; printed, a socket address or a struct is text whose length
    # says nothing, while a data buffer is printed a character per byte (uncut in JSON)
    cut = attrs.get("buffers") == "printed_cut"
    printed = attrs.get("buffers", "raw") != "raw"
    nrec = len(recs.tid)
    if not nrec:
        return SCHEMA.empty_table()
    P = Params(ev, recs, encoding, attrs.get("event_table"))
    W = len(P.vocab)
    gid, nid_native = P.vindex.get("ID", -1), P.vindex.get("nativeID", -1)

    # nativeID of a generic event: the syscall number (the exit's wins over the enter's)
    nr = np.zeros(nrec, dtype=np.int64)
    nr_set = np.zeros(nrec, dtype=bool)
    nat = np.flatnonzero((P.nid == nid_native) & P.generic & ((P.cls == INT) | (P.cls == UINT)))
    nr[P.rec[nat]] = P.ival[nat]
    nr_set[P.rec[nat]] = True

    # merged parameters: a dict per record (first position, last value), ID/nativeID left out
    keep = np.flatnonzero((P.nid != gid) & (P.nid != nid_native))
    krec, knid = P.rec[keep], P.nid[keep]
    # a name twice in a record (enter and exit both have it) needs the dict rule; a bit per
    # name (modulo 63) finds the records that may have one without sorting everything
    bits = np.left_shift(np.uint64(1), (knid % 63).astype(np.uint64))
    starts = np.flatnonzero(np.r_[True, krec[1:] != krec[:-1]]) if len(krec) else krec
    maybe = np.zeros(nrec, dtype=bool)
    if len(krec):
        ored = np.bitwise_or.reduceat(bits, starts)
        summed = np.add.reduceat(bits, starts)
        maybe[krec[starts]] = ored != summed
    sus = maybe[krec]
    ent = keep
    if sus.any():
        si = np.flatnonzero(sus)
        key = krec[si] * W + knid[si]
        o = np.argsort(key, kind="stable")
        ks = key[o]
        newg = np.ones(len(ks), dtype=bool)
        newg[1:] = ks[1:] != ks[:-1]
        gs = np.flatnonzero(newg)
        ge = np.append(gs[1:], len(ks)) - 1
        drop = np.ones(len(keep), dtype=bool)
        drop[si[o[gs]]] = False  # each name's first position stays...
        drop[~sus] = False
        src = keep.copy()
        src[si[o[gs]]] = keep[si[o[ge]]]  # ...holding its last value
        ent = src[~drop]
    ent_rec = P.rec[ent]
    ent_nid = P.nid[ent]
    by_name: dict[str, np.ndarray] = {}
    grouped: list = []  # the parameters grouped by name: one sort, on the first lookup

    def lookup(rec_ids: np.ndarray, name: str) -> np.ndarray:
        """Per record, the parameter holding `name`'s merged value (-1 if none)."""
        if name not in by_name:
            if not grouped:  # (names fit 16 bits: numpy sorts those by radix, in one pass)
                keys = ent_nid.astype(np.int16) if W < 2**15 else ent_nid
                o = np.argsort(keys, kind="stable")
                grouped[:] = [o, np.searchsorted(ent_nid[o], np.arange(W + 1))]
            o, bounds = grouped
            j = P.vindex.get(name)
            m = np.full(nrec, -1, dtype=np.int64)
            if j is not None:
                at = o[bounds[j]:bounds[j + 1]]
                m[ent_rec[at]] = ent[at]
            by_name[name] = m
        return by_name[name][rec_ids]

    # names: (enter or exit).type, or the syscall number's name for unknown ones
    ex, en = recs.exit, recs.enter
    lead = np.where(en >= 0, en, ex)
    suniq = list(ev.names)  # syscall names, as codes into this list
    scodes = ev.type[lead].copy()
    named = np.zeros(nrec, dtype=bool)
    unknown = [suniq.index(x) for x in ("<unknown>", "syscall") if x in suniq]
    unk = np.flatnonzero(nr_set & np.isin(scodes, unknown)) if arch and unknown else []
    for i in np.asarray(unk).tolist():
        nm = syscalls.name(arch, int(nr[i]))
        if nm is not None:
            if nm not in suniq:
                suniq.append(nm)
            scodes[i], named[i] = suniq.index(nm), True
    kinds = np.where(recs.procexit, 1, 0)
    need = ~nr_set & ~recs.procexit
    if need.any() and arch:
        nums = np.array([syscalls.number(arch, u) for u in suniq], dtype=object)
        known = np.array([x is not None for x in nums], dtype=bool)
        lut = np.array([x if x is not None else 0 for x in nums], dtype=np.int64)
        idx = np.flatnonzero(need & known[scodes])
        nr[idx] = lut[scodes[idx]]
        nr_set[idx] = True

    # result: the exit's evt.rawres; a replay-complete generic exit's own `res`
    has_exit = ex >= 0
    res = np.where(has_exit, ev.res[np.maximum(ex, 0)], 0)
    res_na = ~has_exit | ev.res_na[np.maximum(ex, 0)]
    want = np.flatnonzero(has_exit)
    if len(want):  # (its bytes, when the frame's event table does not type it, are an int64)
        rp = lookup(want, "res")
        at, ps = want[rp >= 0], rp[rp >= 0]
        conv = ps[(P.cls[ps] == BYTES) & (P.vlen[ps] == 8)] if P.encoding == "scap" else ps[:0]
        if len(conv):
            data = P.values.take(pa.array(P.idx[conv])).buffers()[2]
            P.ival[conv] = np.frombuffer(data, dtype="<i8", count=len(conv))
            P.cls[conv] = INT
        use = res_na[at] & ((P.cls[ps] == INT) | (P.cls[ps] == UINT))
        res[at[use]], res_na[at[use]] = P.ival[ps[use]], False
    pe = np.flatnonzero(recs.procexit)
    if len(pe):  # the exit code: `ret` (newer drivers), else from the wait status
        ret, status = lookup(pe, "ret"), lookup(pe, "status")
        rv, rok = _ints(P, ret)
        sv, sok = _ints(P, status)
        code = np.where(sv & 0x7F == 0, (sv >> 8) & 0xFF, -(sv & 0x7F))
        res[pe] = np.where(rok, rv, code)
        res_na[pe] = ~rok & ~sok

    # buffers: output ones report their full length in `res` or another parameter
    ent_cls = P.cls[ent]
    isbuf = ent_cls == BYTES
    b_ent, b_rec, b_nid = ent[isbuf], ent_rec[isbuf], ent_nid[isbuf]
    out_flag = np.zeros(len(b_ent), dtype=bool)
    reported = np.zeros(len(b_ent), dtype=np.int64)
    rep_ok = np.zeros(len(b_ent), dtype=bool)
    if len(b_ent):
        pk = scodes[b_rec].astype(np.int64) * W + b_nid
        # (syscall, name) keys are few and small: a dense table, not a sort
        upk = np.flatnonzero(np.bincount(pk))
        dense = np.zeros(int(upk[-1]) + 1, dtype=np.int64)
        dense[upk] = np.arange(len(upk))
        inv = dense[pk]
        for u, pkey in enumerate(upk.tolist()):
            is_out, length_param = writeback.output_buffer(suniq[pkey // W], P.vocab[pkey % W])
            if not is_out:
                continue
            m = inv == u
            out_flag[m] = True
            if length_param == "res":
                reported[m], rep_ok[m] = res[b_rec[m]], ~res_na[b_rec[m]]
            elif length_param is not None:
                lp = lookup(b_rec[m], length_param)
                val, ok = _ints(P, lp)
                reported[m], rep_ok[m] = val, ok
        rep_ok &= reported >= 0
    blen = P.vlen[b_ent]
    trunc = np.zeros(nrec, dtype=bool)
    trunc[b_rec[rep_ok & (blen < reported)]] = True

    # no_write_back: a syscall that wrote to memory (given its result), and nothing in the
    # record holds it (writeback.missing, per syscall over its records)
    nowb = np.zeros(nrec, dtype=bool)
    table = attrs.get("event_table")
    for u, s in enumerate(suniq):
        ws = writeback.of(s)
        if not ws:
            continue
        idx = np.flatnonzero(has_exit & (scodes == u))
        r, rna = res[idx], res_na[idx]
        written_any = np.zeros(len(idx), dtype=bool)
        held = np.zeros(len(idx), dtype=bool)
        for w in ws:
            written = rna | _WHEN[w.when](r)
            written_any |= written
            if w.param is None:
                continue
            p = lookup(idx, w.param)
            q = np.maximum(p, 0)
            nonempty = ~((P.cls[q] == BYTES) & (P.vlen[q] == 0)) if len(P.cls) else p >= 0
            held |= written & (p >= 0) & (w.recorded_by(table) | nonempty)
        nowb[idx] = written_any & ~held

    # flags, in the order the reference gives them
    slots = np.full((nrec, 6), -1, dtype=np.int16)
    slots[:, 0] = np.where(~recs.procexit & has_exit & res_na, _F["no_return_value"], -1)
    fa, fb = recs.flag_a.astype(np.int16), recs.flag_b.astype(np.int16)
    slots[:, 1] = np.where(fa > 0, fa, -1)  # FLAG_A[i] is FLAGS[i]
    slots[:, 2] = np.where(fb > 0, fb + len(FLAG_A) - 1, -1)
    slots[:, 3] = np.where(named, _F["named_from_nr"], -1)
    slots[:, 4] = np.where(trunc, _F["truncated_buffer"], -1)
    slots[:, 5] = np.where(nowb, _F["no_write_back"], -1)
    flat = slots.ravel()
    fl = flat[flat >= 0]
    foffs = np.zeros(nrec + 1, dtype=np.int32)
    np.cumsum((slots >= 0).sum(axis=1), out=foffs[1:])
    flags = pa.ListArray.from_arrays(
        pa.array(foffs), pa.DictionaryArray.from_arrays(pa.array(fl.astype(np.int32)),
                                                         pa.array(FLAGS)).cast(pa.string()))

    # args: the merged values that are not buffers, as text
    vocab = pa.array(P.vocab, pa.string())
    if lean:
        a_ent = a_rec = a_nid = ent[:0]
        a_vals = pa.array([], pa.string())
    else:
        a_ent, a_rec, a_nid = ent[~isbuf], ent_rec[~isbuf], ent_nid[~isbuf]
        a_vals = _texts(P, a_ent)
    aoffs = _offsets(a_rec, nrec)
    args = pa.ListArray.from_arrays(pa.array(aoffs), pa.StructArray.from_arrays(
        [_names(vocab, a_nid), a_vals], fields=list(ARG)), type=SCHEMA.field("args").type)
    rep = pa.array(reported, mask=~(rep_ok & out_flag))
    known = np.zeros(len(b_ent), dtype=bool) if cut else (out_flag | (not printed))
    data = pa.nulls(len(b_ent), pa.binary()) if lean else P.values.take(pa.array(P.idx[b_ent]))
    bufs = pa.ListArray.from_arrays(pa.array(_offsets(b_rec, nrec)), pa.StructArray.from_arrays(
        [_names(vocab, b_nid), data, pa.array(blen, mask=~known), rep,
         pa.array(out_flag)], fields=list(BUFFER)), type=SCHEMA.field("buffers").type)

    last = np.where(has_exit, ex, en)
    errno = pa.nulls(nrec, pa.string()) if lean else _errno(res, res_na | recs.procexit)
    evt_num = np.where(has_exit, ev.num[np.maximum(ex, 0)], ev.num[np.maximum(en, 0)])
    exit_ts = np.where(has_exit, ev.ts[np.maximum(ex, 0)], ev.ts[np.maximum(en, 0)])
    no_enter = en < 0
    cols = {
        "thread_tid": pa.array(recs.tid),
        "proc_pid": pa.array(ev.pid[last], mask=ev.pid_na[last]),
        "proc_name": ev.comm.take(pa.array(last)),
        "seq": pa.array(recs.seq.astype(np.int64)),
        "kind": pa.DictionaryArray.from_arrays(pa.array(kinds.astype(np.int32)),
                                               pa.array(["syscall", "procexit"])).cast(pa.string()),
        "syscall": pa.DictionaryArray.from_arrays(
            pa.array(scodes.astype(np.int32)), pa.array(list(suniq), pa.string())
        ).cast(pa.string()),
        "nr": pa.array(nr, mask=~nr_set),
        "evt_num": pa.array(evt_num, mask=~has_exit & ~recs.procexit),
        "enter_evt_num": pa.array(ev.num[np.maximum(en, 0)], mask=no_enter),
        "enter_ts": pa.array(ev.ts[np.maximum(en, 0)], mask=no_enter),
        "exit_ts": pa.array(exit_ts, mask=~has_exit & ~recs.procexit),
        "res": pa.array(res, mask=res_na),
        "errno": errno,
        "args": args,
        "buffers": bufs,
        "flags": flags,
    }
    return pa.Table.from_arrays([cols[f.name] for f in SCHEMA], schema=SCHEMA)


def _bin_offsets(arr: pa.Array) -> np.ndarray:
    """A binary array's value offsets (len + 1), as int64."""
    dt = np.int64 if arr.type == pa.large_binary() else np.int32
    raw = np.frombuffer(arr.buffers()[1], dtype=dt)
    return raw[arr.offset: arr.offset + len(arr) + 1].astype(np.int64)


def _offsets(rec: np.ndarray, nrec: int) -> np.ndarray:
    out = np.zeros(nrec + 1, dtype=np.int32)
    np.cumsum(np.bincount(rec, minlength=nrec), out=out[1:])
    return out


def _names(vocab: pa.Array, nid: np.ndarray) -> pa.Array:
    return pa.DictionaryArray.from_arrays(pa.array(nid.astype(np.int32)), vocab).cast(pa.string())


def _ints(P: Params, ps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A length parameter as an int (decoded ints; sysdig's text `3(...)`), and where it is."""
    val = np.zeros(len(ps), dtype=np.int64)
    ok = np.zeros(len(ps), dtype=bool)
    if not len(P.cls):  # the records have no parameters at all
        return val, ok
    q = np.maximum(ps, 0)
    num = (ps >= 0) & np.isin(P.cls[q], (INT, UINT))
    val[num], ok[num] = P.ival[q[num]], True
    ok[num & (P.cls[q] == UINT) & (val < 0)] = True  # above 2**63: larger than any buffer
    val[num & (P.cls[q] == UINT) & (val < 0)] = np.iinfo(np.int64).max
    for i in np.flatnonzero((ps >= 0) & (P.cls[q] == STR)).tolist():
        v = _as_int(P.pyvalue(int(ps[i])))
        if v is not None:  # (a text number past 64 bits: larger than any buffer)
            val[i], ok[i] = min(max(v, -(1 << 63)), (1 << 63) - 1), True
    return val, ok


def _texts(P: Params, ps: np.ndarray) -> pa.Array:
    """The values of parameters `ps` (not buffers) as sysdig-kit shows them."""
    n = len(ps)
    cls = P.cls[ps]
    parts, where = [], np.zeros(n, dtype=np.int64)
    base = 0

    def add(arr: pa.Array, sel: np.ndarray) -> None:
        nonlocal base
        parts.append(arr)
        where[sel] = base + np.arange(len(sel))
        base += len(sel)

    for c, t in ((INT, pa.int64()), (UINT, pa.uint64())):
        sel = np.flatnonzero(cls == c)
        if len(sel):
            v = P.ival[ps[sel]]
            add(pc.cast(pa.array(v if c == INT else v.view(np.uint64), t), pa.string()), sel)
    sel = np.flatnonzero((cls == STR) | (cls == DOUBLE))
    if len(sel):
        add(_strings(P, ps[sel]), sel)
    sel = np.flatnonzero(cls == NONE)
    if len(sel):
        add(pa.nulls(len(sel), pa.string()), sel)
    if not parts:
        return pa.array([], pa.string())
    return pa.concat_arrays(parts).take(pa.array(where))


def _strings(P: Params, ps: np.ndarray) -> pa.Array:
    """String parameters: up to the first NUL, UTF-8 (bytes that are not: \\xNN)."""
    slow = np.isin(ps, np.fromiter(P.text, np.int64, len(P.text))) if P.text \
        else np.zeros(len(ps), dtype=bool)
    fast = np.flatnonzero(~slow)
    parts, where = [], np.zeros(len(ps), dtype=np.int64)
    if len(fast):
        sub = P.values.take(pa.array(P.idx[ps[fast]]))  # a compact copy of just these values
        so = _bin_offsets(sub)
        data = sub.buffers()[2]
        u8 = np.frombuffer(data, dtype=np.uint8)[: so[-1]] if data is not None and so[-1] \
            else np.zeros(0, np.uint8)
        nul = np.append(np.flatnonzero(u8 == 0), np.iinfo(np.int64).max)
        cut = np.minimum(nul[np.searchsorted(nul, so[:-1])], so[1:])
        high = np.zeros(len(u8) + 1, dtype=np.int64)
        np.cumsum(u8 >= 0x80, out=high[1:])
        ascii_ok = high[cut] - high[so[:-1]] == 0
        bounds = np.empty(2 * len(fast) + 1, dtype=np.int64)
        bounds[0:-1:2], bounds[1:-1:2], bounds[-1] = so[:-1], cut, so[-1]
        pieces = pa.Array.from_buffers(pa.binary(), 2 * len(fast), [
            None, pa.py_buffer(bounds.astype(np.int32)), data or pa.py_buffer(b"")])
        ok = np.flatnonzero(ascii_ok)
        parts.append(pieces.take(pa.array(2 * ok)).cast(pa.string()))
        where[fast[ok]] = np.arange(len(ok))
        bad = np.flatnonzero(~ascii_ok)
        if len(bad):
            raw = pieces.take(pa.array(2 * bad)).to_pylist()
            parts.append(pa.array([b.decode("utf-8", "backslashreplace") for b in raw],
                                  pa.string()))
            where[fast[bad]] = len(ok) + np.arange(len(bad))
    sl = np.flatnonzero(slow)
    if len(sl):
        parts.append(pa.array([P.text[p] for p in ps[sl].tolist()], pa.string()))
        where[sl] = sum(len(x) for x in parts[:-1]) + np.arange(len(sl))
    return pa.concat_arrays(parts).take(pa.array(where))


def _errno(res: np.ndarray, na: np.ndarray) -> pa.Array:
    neg = ~na & (res < 0)
    codes = np.full(len(res), -1, dtype=np.int64)
    names: list[str] = []
    if neg.any():
        u, inv = np.unique(res[neg], return_inverse=True)
        lut = np.full(len(u), -1, dtype=np.int64)
        for i, v in enumerate(u.tolist()):
            nm = syscalls.errno_name(v)
            if nm is not None:
                lut[i] = len(names)
                names.append(nm)
        codes[neg] = lut[inv]
    return pa.DictionaryArray.from_arrays(pa.array(codes.astype(np.int32), mask=codes < 0),
                                          pa.array(names, pa.string())).cast(pa.string())


def _as_int(v) -> int | None:
    """An int from a decoded value or from sysdig's text for it (`3`, `768`, `-2(ENOENT)`)."""
    if isinstance(v, int) or v is None:
        return v
    try:
        return int(str(v).split("(", 1)[0].strip(), 0)
    except ValueError:
        return None
