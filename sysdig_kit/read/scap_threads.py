"""proc_pid / proc_name: the thread table as libsinsp keeps it, replayed over the events.

The table starts from the process list blocks. Only clone/fork/execve exits and procexit
change it, so only those events are visited in Python; every other event gets the state of
its thread by a sorted search over (thread, event index).
"""

from __future__ import annotations

import struct

import numpy as np
import pyarrow as pa

from .eventtable import EventTable
from .scap_events import Events

CLONE_THREAD = 1 << 13  # PPM_CL_CLONE_THREAD
CLONES = ("clone", "fork", "vfork", "clone3")
EXECS = ("execve", "execveat")


class ThreadTable:
    def __init__(self, threads: dict):
        self.threads = dict(threads)  # tid -> (pid, comm) or None (exited)

    def assign(self, u8: np.ndarray, ev: Events, table: EventTable, rows: np.ndarray):
        """(proc_pid pyarrow int64 array, proc_name pyarrow string array) for events `rows`,
        and advance the table over all of `ev`."""
        changes = self._changes(u8, ev, table)
        tid = ev.tid[rows].view(np.int64)
        vocab: dict[str, int] = {}
        n = len(rows)
        pid = np.zeros(n, dtype=np.int64)
        name = np.full(n, -1, dtype=np.int64)
        known = np.zeros(n, dtype=bool)

        def put(sel, states):
            for j, st in zip(sel, states):
                if st is not None:
                    pid[j] = st[0]
                    if st[1] is not None:
                        name[j] = vocab.setdefault(st[1], len(vocab))
                    known[j] = True

        # events after a change of their thread take that change's state
        hit = np.zeros(n, dtype=bool)
        if changes:
            c_idx = np.array([c[0] for c in changes], dtype=np.int64)
            c_tid = np.array([c[1] for c in changes], dtype=np.int64)
            order = np.lexsort((c_idx, c_tid))
            c_idx, c_tid = c_idx[order], c_tid[order]
            states = [changes[i][2] for i in order]
            _, inv = np.unique(np.concatenate([c_tid, tid]), return_inverse=True)
            c_code, e_code = inv[: len(c_tid)], inv[len(c_tid):]
            scale = int(max(len(ev.tid), 1)) + 1
            c_key = c_code * scale + c_idx
            e_key = e_code * scale + rows
            j = np.searchsorted(c_key, e_key, side="right") - 1
            hit = (j >= 0) & (c_code[np.maximum(j, 0)] == e_code)
            sel = np.flatnonzero(hit)
            # map each distinct change once
            uj, jinv = np.unique(j[sel], return_inverse=True)
            st_of = [states[k] for k in uj]
            for pos, k in enumerate(jinv):
                st = st_of[k]
                r = sel[pos]
                if st is not None:
                    pid[r] = st[0]
                    if st[1] is not None:
                        name[r] = vocab.setdefault(st[1], len(vocab))
                    known[r] = True
        # the rest: the state at the start of this run
        rest = np.flatnonzero(~hit)
        if len(rest):
            ut, uinv = np.unique(tid[rest], return_inverse=True)
            st_u = [self.threads.get(int(t)) for t in ut]
            put(rest, (st_u[k] for k in uinv))
        for c in changes:  # the table after this run
            self.threads[c[1]] = c[2]
        # A thread libsinsp has no entry for gets one made up (pid = tid, no name) at its first
        # event that resets the parser (not at `switch` and the like); from then on it is known.
        unk = np.flatnonzero(~known)
        if len(unk):
            t = tid[unk]
            creates = ~_no_create(table)[ev.type[rows[unk]]]
            u, first = np.unique(t[creates], return_index=True)
            if len(u):
                at = np.minimum(np.searchsorted(u, t), len(u) - 1)
                made = (u[at] == t) & (unk >= unk[creates][first][at])
                pid[unk[made]] = t[made]
                known[unk[made]] = True
                for x in u.tolist():
                    if self.threads.get(x) is None:
                        self.threads[x] = (x, None)
        # libsinsp gives events that skip the parser reset (drops, page faults...) no thread
        blind = table.skip_reset[ev.type[rows]]
        known &= ~blind
        name[blind] = -1
        pid_arr = pa.array(pid, mask=~known, type=pa.int64())
        names = pa.array(list(vocab), type=pa.string())
        idx = pa.array(name, mask=name < 0, type=pa.int32())
        name_arr = pa.DictionaryArray.from_arrays(idx, names).cast(pa.string())
        return pid_arr, name_arr

    def _changes(self, u8, ev: Events, table: EventTable) -> list:
        """(event index, tid, new state) for every event that changes the table, in order."""
        want = {}
        for nm in CLONES + EXECS:
            for c in table.code.get((nm, "<"), []):
                want[c] = "clone" if nm in CLONES else "exec"
        for c in table.code.get(("procexit", ">"), []):
            want[c] = "exit"
        if not want:
            return []
        idx = np.flatnonzero(np.isin(ev.type, list(want)))
        out = []
        local = {}  # states decided in this run, for parent lookups
        tids = ev.tid.view(np.int64)
        for i in idx.tolist():
            kind = want[int(ev.type[i])]
            tid = int(tids[i])
            if kind == "exit":
                out.append((i + 1, tid, None))  # libsinsp removes the thread after the event
                local[tid] = None
                continue
            p = _Params(u8, ev, table, i)
            res = p.int("res")
            if res is None:
                continue
            if kind == "exec":
                if res == 0:
                    st = (p.int("pid", tid), p.str("comm") or _cur(local, self.threads, tid, 1))
                    out.append((i, tid, st))
                    local[tid] = st
                continue
            if res == 0:  # the child's side of a clone
                comm = p.str("comm") or _cur(local, self.threads, p.int("ptid", -1), 1)
                st = (p.int("pid", tid), comm)
                out.append((i, tid, st))
                local[tid] = st
            elif res > 0:  # the parent's side: the child exists from now on
                child = res
                if local.get(child) or self.threads.get(child):
                    continue
                flags = p.int("flags", 0)
                ppid = p.int("pid", tid)
                comm = p.str("comm") or _cur(local, self.threads, tid, 1)
                st = (ppid if flags & CLONE_THREAD else child, comm)
                out.append((i, child, st))
                local[child] = st
        return out


def _no_create(table: EventTable) -> np.ndarray:
    """Event codes at which libsinsp does not make up an entry for an unknown thread: those
    that skip the parser reset, scheduler switches and clone/fork exits."""
    names = table.names
    exits = np.arange(table.size) % 2 == 1
    return table.skip_reset | (names == "switch") | (np.isin(names, CLONES) & exits)


def _cur(local, threads, tid, k):
    st = local.get(tid, threads.get(tid))
    return st[k] if st else None


class _Params:
    """Named parameters of one event, read straight from the capture bytes."""

    def __init__(self, u8, ev: Events, table: EventTable, i: int):
        self.u8 = u8
        a, b = int(ev.pcount_off[i]), int(ev.pcount_off[i + 1])
        self.pos, self.len = ev.ppos[a:b], ev.plen[a:b]
        self.names = [p["name"] for p in table.params(int(ev.type[i]))]

    def _raw(self, name):
        try:
            k = self.names.index(name)
        except ValueError:
            return None
        if k >= len(self.pos):
            return None
        s = int(self.pos[k])
        return self.u8[s: s + int(self.len[k])].tobytes()

    def int(self, name, default=None):
        raw = self._raw(name)
        fmt = {8: "<q", 4: "<i", 2: "<h", 1: "<b"}.get(len(raw) if raw is not None else 0)
        return struct.unpack(fmt, raw)[0] if fmt else default

    def str(self, name):
        raw = self._raw(name)
        return raw.split(b"\0", 1)[0].decode("utf-8", "replace") if raw else None
