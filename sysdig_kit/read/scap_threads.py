"""proc_pid / proc_name: the thread table as libsinsp keeps it, replayed over the events.

The table starts from the process list blocks. Only clone/fork/execve exits and procexit
change it, so only those events are visited in Python; every other event gets the state of
its thread by a sorted search over (thread, event index).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .eventtable import EventTable
from .scap_blocks import gather
from .scap_events import Events

CLONE_THREAD = 1 << 13  # PPM_CL_CLONE_THREAD
CLONES = ("clone", "fork", "vfork", "clone3")
EXECS = ("execve", "execveat")


class ThreadTable:
    def __init__(self, threads: dict):
        self.threads = dict(threads)  # tid -> (pid, comm) or None (exited)

    def assign(self, u8: np.ndarray, ev: Events, table: EventTable, rows: np.ndarray):
        """(proc_pid, its NA mask, proc_name as codes into a list of names (-1: NA), that
        list) for events `rows`, and advance the table over all of `ev`."""
        changes = self._changes(u8, ev, table)
        tid = ev.tid[rows].view(np.int64)
        n = len(rows)
        states: list = []  # every state some row takes; rows point into it
        sid = np.zeros(n, dtype=np.int64)
        hit = np.zeros(n, dtype=bool)
        if changes:  # rows after a change of their thread take that change's state
            c_idx = np.array([c[0] for c in changes], dtype=np.int64)
            c_tid = np.array([c[1] for c in changes], dtype=np.int64)
            order = np.lexsort((c_idx, c_tid))
            c_idx, c_tid = c_idx[order], c_tid[order]
            states = [changes[k][2] for k in order]
            # thread codes by hashing (pd.factorize), not sorting: events are many, threads few
            inv = pd.factorize(np.concatenate([tid, c_tid]))[0]
            e_code, c_code = inv[:n], inv[n:]
            scale = len(ev.tid) + 2
            key = c_code * scale + c_idx
            by = np.argsort(key, kind="stable")  # the changes only (few)
            j = np.searchsorted(key[by], e_code * scale + rows, side="right") - 1
            j = np.where(j >= 0, by[np.maximum(j, 0)], -1)
            hit = (j >= 0) & (c_code[np.maximum(j, 0)] == e_code)
            sid[hit] = j[hit]
        rest = np.flatnonzero(~hit)
        if len(rest):  # the others: their thread's state when this run started
            uinv, ut = pd.factorize(tid[rest])
            sid[rest] = len(states) + uinv
            states += [self.threads.get(t) for t in ut.tolist()]
        for c in changes:  # the table after this run
            self.threads[c[1]] = c[2]
        vocab: dict[str, int] = {}
        s_pid = np.array([st[0] if st else 0 for st in states] or [0], dtype=np.int64)
        s_known = np.array([st is not None for st in states] or [False])
        s_name = np.array([vocab.setdefault(st[1], len(vocab)) if st and st[1] is not None else -1
                           for st in states] or [-1], dtype=np.int64)
        pid, known, name = s_pid[sid], s_known[sid], s_name[sid]
        if n == 0:
            pid, known, name = pid[:0], known[:0], name[:0]
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
        return pid, ~known, name.astype(np.int32), list(vocab)

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
        tids = ev.tid.view(np.int64)[idx].tolist()
        res, pid, ptid, flags = (_ints(u8, ev, table, idx, nm) for nm in ("res", "pid", "ptid", "flags"))
        comm_k = table.param_index("comm")[ev.type[idx]]

        def comm(n):
            k = int(comm_k[n])
            i = int(idx[n])
            if k < 0 or k >= ev.nparams[i]:
                return None
            a = int(ev.ppos[ev.pcount_off[i] + k])
            raw = u8[a: a + int(ev.plen[ev.pcount_off[i] + k])].tobytes()
            return raw.split(b"\0", 1)[0].decode("utf-8", "replace") or None

        for n, i in enumerate(idx.tolist()):
            kind = want[int(ev.type[i])]
            tid = tids[n]
            if kind == "exit":
                out.append((i + 1, tid, None))  # libsinsp removes the thread after the event
                local[tid] = None
                continue
            r = res[n]
            if r is None:
                continue
            if kind == "exec":
                if r == 0:
                    st = (_or(pid[n], tid), comm(n) or _cur(local, self.threads, tid, 1))
                    out.append((i, tid, st))
                    local[tid] = st
                continue
            if r == 0:  # the child's side of a clone
                st = (_or(pid[n], tid), comm(n) or _cur(local, self.threads, _or(ptid[n], -1), 1))
                out.append((i, tid, st))
                local[tid] = st
            elif r > 0:  # the parent's side: the child exists from now on
                if local.get(r) or self.threads.get(r):
                    continue
                c = comm(n) or _cur(local, self.threads, tid, 1)
                st = (_or(pid[n], tid) if _or(flags[n], 0) & CLONE_THREAD else r, c)
                out.append((i, r, st))
                local[r] = st
        return out


def _or(v, default):
    return default if v is None else v


def _ints(u8, ev: Events, table: EventTable, idx: np.ndarray, name: str) -> list:
    """The integer parameter `name` of events idx (None where the event has none)."""
    k = table.param_index(name)[ev.type[idx]]
    ok = (k >= 0) & (k < ev.nparams[idx])
    at = ev.pcount_off[idx] + np.maximum(k, 0)
    pos, ln = ev.ppos[at], ev.plen[at]
    val = np.zeros(len(idx), dtype=np.int64)
    good = np.zeros(len(idx), dtype=bool)
    for size, dt in ((8, np.int64), (4, np.int32), (2, np.int16), (1, np.int8)):
        sel = np.flatnonzero(ok & (ln == size))
        if len(sel):
            val[sel] = gather(u8, pos[sel], dt)
            good[sel] = True
    return [v if g else None for v, g in zip(val.tolist(), good.tolist())]


def _no_create(table: EventTable) -> np.ndarray:
    """Event codes at which libsinsp does not make up an entry for an unknown thread: those
    that skip the parser reset, scheduler switches and clone/fork exits."""
    names = table.names
    exits = np.arange(table.size) % 2 == 1
    return table.skip_reset | (names == "switch") | (np.isin(names, CLONES) & exits)


def _cur(local, threads, tid, k):
    st = local.get(tid, threads.get(tid))
    return st[k] if st else None
