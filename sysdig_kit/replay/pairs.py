"""Which events make which record: enters and exits paired per thread, with numpy.

A thread has at most one syscall in flight, so an event's pairing depends only on the event
before it in the same thread: the events are grouped by thread (a stable sort keeps their
order) and each is compared with its neighbours. The one rule that looks across threads, a
non-leader thread's execve returning in the leader's tid, is rare and settled in a short loop.
Records come out in the order of their first event, as the state machine they replace gave
them (tests/replay_reference.py).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa

# Events that are not syscalls (scheduler, signals, metadata, drops).
NON_SYSCALL = frozenset({
    "switch", "procexit", "signaldeliver", "drop", "container", "sysdigevent", "notification",
    "procinfo", "infra", "page_fault", "cpu_hotplug", "tracer", "mesos", "k8s", "pluginevent",
    "asyncevent", "schedswitch", "scapevent", "useradded", "userdeleted", "groupadded",
    "groupdeleted", "NA",
})
# Syscalls whose enter has no exit by design.
NEVER_RETURNS = frozenset({"exit", "exit_group", "sigreturn", "rt_sigreturn"})
CLONES = frozenset({"clone", "clone3", "fork", "vfork"})
EXECS = frozenset({"execve", "execveat"})

ENTER, EXIT, PROCEXIT = 0, 1, 2
# A record's pairing flags: a first (what happened) and a second (why), as codes.
FLAG_A = (None, "unpaired_enter", "never_returns", "clone_child", "unpaired_exit",
          "exec_from_thread")
FLAG_B = (None, "thread_died", "capture_end", "type_mismatch", "capture_start")
_A = {f: i for i, f in enumerate(FLAG_A)}
_B = {f: i for i, f in enumerate(FLAG_B)}


@dataclass
class Events:
    """The columns of a frame the log needs, as arrays (rows = the frame's rows)."""

    num: np.ndarray
    ts: np.ndarray
    tid: np.ndarray
    pid: np.ndarray
    pid_na: np.ndarray
    comm: pa.Array  # string
    dir: np.ndarray  # int8: 0 enter (">"), 1 exit ("<"), -1 missing
    type: np.ndarray  # int: index into `names`
    names: list
    res: np.ndarray
    res_na: np.ndarray
    args: pa.Array  # list<struct<name, value>>

    def __len__(self) -> int:
        return len(self.tid)

    @classmethod
    def of(cls, df: pd.DataFrame) -> Events:
        typ = df["evt_type"]
        if not isinstance(typ.dtype, pd.CategoricalDtype):
            typ = typ.astype("category")
        names = [str(c) for c in typ.cat.categories]
        codes = typ.cat.codes.to_numpy().astype(np.int64)
        if (codes < 0).any():  # a missing type reads as sysdig's "NA"
            codes[codes < 0] = len(names)
            names.append("NA")
        pid = pd.array(df["proc_pid"], dtype="Int64")
        res = pd.array(df["evt_rawres"], dtype="Int64")
        from ..read.frame import ARGS_TYPE

        args = _arrow(df["evt_args"], ARGS_TYPE)
        return cls(
            num=df["evt_num"].to_numpy(dtype=np.int64), ts=df["evt_rawtime"].to_numpy(np.int64),
            tid=df["thread_tid"].to_numpy(dtype=np.int64),
            pid=pid.to_numpy(dtype=np.int64, na_value=0), pid_na=np.asarray(pid.isna()),
            comm=_arrow(df["proc_name"], pa.string()),
            dir=_dir_codes(df["evt_dir"]),
            type=codes, names=names,
            res=res.to_numpy(dtype=np.int64, na_value=0), res_na=np.asarray(res.isna()), args=args)

    @classmethod
    def of_parts(cls, parts) -> Events:
        """The same from the scap reader's raw columns (read/parts.py), without the frame."""
        from ..read.parts import recode

        types, names = recode(parts, "type")
        codes = types.astype(np.int64)
        if (codes < 0).any():
            codes[codes < 0] = len(names)
            names.append("NA")
        comm, vocab = recode(parts, "name")
        comm = pa.DictionaryArray.from_arrays(pa.array(comm, mask=comm < 0, type=pa.int32()),
                                              pa.array(vocab, pa.string())).cast(pa.string())

        def cat(key):
            arrs = [getattr(p, key) for p in parts]
            return arrs[0] if len(arrs) == 1 else np.concatenate(arrs)

        ev = cls(num=cat("num"), ts=cat("ts"), tid=cat("tid"), pid=cat("pid"),
                 pid_na=cat("pid_na"), comm=comm, dir=cat("dir"), type=codes, names=names,
                 res=cat("res"), res_na=cat("res_na"), args=_join_args([p.args for p in parts]))
        for p in parts:  # the parts are consumed (as a frame consumes them): their memory
            for k in vars(p):  # goes back before the batch's work, not after it
                if k != "attrs":
                    setattr(p, k, None)
        return ev

    @classmethod
    def empty(cls) -> Events:
        from ..read.frame import ARGS_TYPE

        i, b = np.zeros(0, np.int64), np.zeros(0, bool)
        return cls(i, i, i, i, b, pa.array([], pa.string()), np.zeros(0, np.int8), i, [], i, b,
                   pa.array([], ARGS_TYPE))

    def select(self, proc=(), pid=(), tid=()) -> Events:
        """The events of the given process names / pids / tids (any of them; none given: all),
        as replay.filter_frame selects rows of a frame."""
        keep = None
        for m in (_in_strings(self.comm, proc) if proc else None,
                  np.isin(self.pid, list(pid)) & ~self.pid_na if pid else None,
                  np.isin(self.tid, list(tid)) if tid else None):
            if m is not None:
                keep = m if keep is None else keep | m
        return self if keep is None else self.take(np.flatnonzero(keep))

    def take(self, rows: np.ndarray) -> Events:
        return Events(self.num[rows], self.ts[rows], self.tid[rows], self.pid[rows],
                      self.pid_na[rows], self.comm.take(pa.array(rows)), self.dir[rows], self.type[rows],
                      self.names, self.res[rows], self.res_na[rows],
                      self.args.take(pa.array(rows, pa.int64())))

    def prepend(self, head: Events | None) -> Events:
        """`head`'s rows (events carried over from an earlier frame) before this one's."""
        if head is None or not len(head):
            return self
        names = list(self.names)
        index = {n: i for i, n in enumerate(names)}
        for n in head.names:
            if n not in index:
                index[n] = len(names)
                names.append(n)
        remap = np.array([index[n] for n in head.names], dtype=np.int64)
        cat = np.concatenate
        args = _join_args([head.args, self.args])
        return Events(cat([head.num, self.num]), cat([head.ts, self.ts]),
                      cat([head.tid, self.tid]), cat([head.pid, self.pid]),
                      cat([head.pid_na, self.pid_na]), pa.concat_arrays([head.comm, self.comm]),
                      cat([head.dir, self.dir]), cat([remap[head.type], self.type]), names,
                      cat([head.res, self.res]), cat([head.res_na, self.res_na]), args)


def _arrow(s: pd.Series, typ) -> pa.Array:
    """A column as one Arrow array (no copy when it is one already)."""
    if isinstance(s.dtype, (pd.ArrowDtype, pd.StringDtype)):
        # Arrow-backed (ArrowDtype, pandas' pyarrow strings): the public __arrow_array__
        # protocol, no copy; pandas' Python strings convert in C, not through a list
        arr = pa.array(s.array)
    else:
        arr = pa.array(s.astype(object).where(s.notna(), None).tolist(), type=typ)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks() if arr.num_chunks != 1 else arr.chunk(0)
    return arr if arr.type == typ else arr.cast(typ)


def _join_args(arrs: list) -> pa.Array:
    """One array of parameters from several: names stay codes (the scap reader's) when all
    share one table's names, else they become text."""
    if len(arrs) == 1:
        return arrs[0]
    if len({a.type for a in arrs}) > 1 or len({_names_of(a) for a in arrs}) > 1:
        from ..read.parts import plain_args

        arrs = [plain_args(a) for a in arrs]
        arrs = [a if a.type == arrs[-1].type else a.cast(arrs[-1].type) for a in arrs]
    return pa.concat_arrays(arrs)


def _names_of(args: pa.Array):
    """The dictionary of coded parameter names (as a tuple), None for names as text."""
    if not pa.types.is_dictionary(args.type.value_type.field("name").type):
        return None
    return tuple(args.values.field("name").dictionary.to_pylist())


def _in_strings(arr: pa.Array, values) -> np.ndarray:
    import pyarrow.compute as pc

    names = [v for v in values if isinstance(v, str)]  # (a frame's isin: only text matches)
    hit = pc.is_in(arr, value_set=pa.array(names, pa.string()))
    return pc.fill_null(hit, False).to_numpy(zero_copy_only=False)


def _dir_codes(s: pd.Series) -> np.ndarray:
    if isinstance(s.dtype, pd.CategoricalDtype):
        lut = np.array([0 if c == ">" else 1 if c == "<" else -1 for c in s.cat.categories]
                       + [-1], dtype=np.int8)
        return lut[s.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
    v = s.astype(object).to_numpy()
    return np.where(v == ">", 0, np.where(v == "<", 1, -1)).astype(np.int8)


@dataclass
class Records:
    """Records as arrays of event rows (-1: none), in the order of their first event."""

    enter: np.ndarray
    exit: np.ndarray
    procexit: np.ndarray  # bool: kind procexit (its event is in `enter`)
    flag_a: np.ndarray
    flag_b: np.ndarray
    seq: np.ndarray
    tid: np.ndarray


@dataclass
class Pairing:
    """The pairing state across frames of one capture (whole frame, or iter_batches)."""

    exit_only: bool | None = None
    enter_types: set = field(default_factory=set)
    seen: set = field(default_factory=set)
    seq: dict = field(default_factory=dict)  # tid -> records so far
    carry: Events | None = None  # enters still in flight at the end of the last frame

    def feed(self, ev: Events, final: bool, exclude: int = 0) -> tuple[Events, Records]:
        """Pair the events of `ev` (the carried enters first). With `final`, enters still in
        flight are closed (capture_end); else they are held for the next frame. `exclude`
        leading rows of `ev` are carried-over rows already counted for the era."""
        ev = ev.prepend(self.carry)
        lead = len(self.carry) if self.carry is not None else 0
        names = ev.names
        non = np.array([n in NON_SYSCALL for n in names], dtype=bool)
        is_pexit = np.array([n == "procexit" for n in names], dtype=bool)
        sc = ~non[ev.type]
        enter = sc & (ev.dir == 0)
        used = np.flatnonzero(np.bincount(ev.type[enter], minlength=len(names)))
        self.enter_types.update(names[t] for t in used.tolist())
        if self.exit_only is None and sc[lead:].any():
            exits = int((sc[lead:] & (ev.dir[lead:] == 1)).sum())
            self.exit_only = int(enter[lead:].sum()) * 3 < exits

        # first event of its thread in the whole stream (of any type); threads as codes
        # numbered in order of appearance (hashed, no sort), so a code above all before it
        # is a thread's first event here
        codes, tids = pd.factorize(ev.tid)
        first = np.zeros(len(codes), dtype=bool)
        if len(codes):
            first[0] = True
            first[1:] = codes[1:] > np.maximum.accumulate(codes)[:-1]
        if self.seen:
            first &= ~np.isin(tids, np.fromiter(self.seen, np.int64, len(self.seen)))[codes]
        self.seen.update(tids.tolist())  # (carried rows' threads are in it already)

        rows = np.flatnonzero(sc | is_pexit[ev.type])
        kind = np.where(is_pexit[ev.type[rows]], PROCEXIT, np.where(enter[rows], ENTER, EXIT))
        # (codes that fit 16 bits: numpy's stable sort of them is a radix sort, one pass)
        key = codes[rows].astype(np.int16 if len(tids) < 2**15 else np.int64)
        recs, carry = _pair(ev, rows, kind, first[rows], self, names, final, key)
        self.carry = ev.take(carry) if len(carry) else None
        return ev, recs


def _pair(ev: Events, rows, kind, first, state: Pairing, names, final, key):
    n = len(rows)
    order = np.argsort(key, kind="stable")  # (key: the rows' threads, as small codes)
    r = rows[order]  # frame rows, grouped by thread, in order within each thread
    t, k, ty, first = ev.tid[r], kind[order], ev.type[r], first[order]
    per_type = lambda s: np.array([x in s for x in names], dtype=bool)
    is_exec, is_clone, never = per_type(EXECS), per_type(CLONES), per_type(NEVER_RETURNS)
    lone_flag = np.array([not state.exit_only or x in state.enter_types for x in names],
                         dtype=bool)

    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = t[1:] == t[:-1]
    same_next = np.zeros(n, dtype=bool)
    same_next[:-1] = same_prev[1:]
    prev_enter = same_prev.copy()
    prev_enter[1:] &= k[:-1] == ENTER
    consumed = np.zeros(n, dtype=bool)  # enters paired with an exit in another thread
    cross = _cross_exec(ev, r, t, k, ty, is_exec, same_next, prev_enter, consumed)

    pend = prev_enter.copy()  # an enter of this thread is in flight before the event
    pend[1:] &= ~consumed[:-1]
    prev_ty = np.empty(n, dtype=ty.dtype)
    prev_ty[1:] = ty[:-1]
    paired_exit = (k == EXIT) & pend & (prev_ty == ty)
    if cross:
        paired_exit[list(cross)] = True
    start = ~paired_exit  # enters, procexits and lone exits begin a record

    # enters: their exit, or why they have none
    nxt = np.minimum(np.arange(n) + 1, max(n - 1, 0))
    ent = k == ENTER
    pairs_next = ent & same_next & ~consumed & (k[nxt] == EXIT) & (ty[nxt] == ty)
    exit_pos = np.full(n, -1, dtype=np.int64)
    exit_pos[pairs_next] = np.flatnonzero(pairs_next) + 1
    for c, j in cross.items():
        exit_pos[j] = c
    closed = ent & (exit_pos < 0)
    in_flight = closed & ~same_next
    fa = np.zeros(n, dtype=np.int8)
    fb = np.zeros(n, dtype=np.int8)
    fa[closed] = np.where(never[ty[closed]], _A["never_returns"], _A["unpaired_enter"])
    nk = k[nxt]
    fb[closed & same_next & (nk == PROCEXIT)] = _B["thread_died"]
    fb[closed & same_next & (nk == EXIT)] = _B["type_mismatch"]
    fb[in_flight] = _B["capture_end"]
    if cross:
        fa[list(cross.values())] = _A["exec_from_thread"]

    # lone exits
    lone = (k == EXIT) & ~paired_exit
    res0 = ~ev.res_na[r] & (ev.res[r] == 0)
    child = lone & first & is_clone[ty] & res0
    flagged = lone & ~child & lone_flag[ty]
    fa[child] = _A["clone_child"]
    fa[flagged] = _A["unpaired_exit"]
    fb[flagged & first] = _B["capture_start"]

    held = in_flight & ~consumed if not final else np.zeros(n, dtype=bool)
    start &= ~held
    sp = np.flatnonzero(start)
    # seq: records before this one in its thread (grouped by thread, so a running count)
    st = t[sp]
    newgrp = np.ones(len(sp), dtype=bool)
    newgrp[1:] = st[1:] != st[:-1]
    grp_start = np.flatnonzero(newgrp)
    cnt = np.arange(len(sp)) - np.repeat(grp_start, np.diff(np.append(grp_start, len(sp))))
    utids = st[grp_start].tolist()
    base = np.array([state.seq.get(x, 0) for x in utids], dtype=np.int64)
    seq = cnt + np.repeat(base, np.diff(np.append(grp_start, len(sp))))
    sizes = np.diff(np.append(grp_start, len(sp))).tolist()
    for x, b, m in zip(utids, base.tolist(), sizes):
        state.seq[x] = b + m

    back = np.argsort(r[sp], kind="stable")  # records in the order of their first event
    sp = sp[back]
    is_ent = k[sp] != EXIT
    ex = exit_pos[sp]
    recs = Records(
        enter=np.where(is_ent, r[sp], -1),
        exit=np.where(k[sp] == EXIT, r[sp], np.where(ex >= 0, r[np.maximum(ex, 0)], -1)),
        procexit=k[sp] == PROCEXIT, flag_a=fa[sp], flag_b=fb[sp], seq=seq[back], tid=t[sp])
    return recs, np.sort(r[np.flatnonzero(held)])


def _cross_exec(ev, r, t, k, ty, is_exec, same_next, prev_enter, consumed) -> dict:
    """{exit position: enter position} for execve exits with nothing in flight in their
    thread that return a non-leader thread's execve of the same process (the kernel's
    de_thread); marks those enters `consumed`. The earliest such enter in flight wins."""
    ex = np.flatnonzero((k == EXIT) & is_exec[ty] & ~prev_enter & ~ev.pid_na[r])
    en = np.flatnonzero((k == ENTER) & is_exec[ty] & ~ev.pid_na[r])
    if not len(ex) or not len(en):
        return {}
    pid = ev.pid[r]
    en_key = set(zip(ty[en].tolist(), pid[en].tolist()))
    heap = [(int(r[c]), int(c)) for c in ex if (int(ty[c]), int(pid[c])) in en_key]
    heapq.heapify(heap)
    cross: dict[int, int] = {}
    n = len(r)
    while heap:
        row, c = heapq.heappop(heap)
        if c in cross or ev.pid_na[r[c]] or (prev_enter[c] and not consumed[c - 1]):
            continue
        nxt_row = np.where(same_next[en], r[np.minimum(en + 1, n - 1)], np.iinfo(np.int64).max)
        ok = ((ty[en] == ty[c]) & (pid[en] == pid[c]) & (r[en] < row) & (nxt_row > row)
              & ~consumed[en])
        if not ok.any():
            continue
        j = int(en[ok][np.argmin(r[en[ok]])])
        consumed[j] = True
        cross[c] = j
        if j + 1 < n and same_next[j] and k[j + 1] == EXIT and is_exec[ty[j + 1]]:
            heapq.heappush(heap, (int(r[j + 1]), j + 1))  # its thread has nothing in flight now
    return cross
