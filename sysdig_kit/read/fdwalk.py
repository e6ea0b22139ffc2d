"""The fd table (fdtable.State) driven over a frame's rows: for `show` and the `fd.name` filter.

`Walker(df)` reads the capture's /proc scan (from `df.attrs["source"]`) and steps the state
over rows in capture order; `fd_names(df)` is the `fd.name` column libsinsp's filter sees, in
one pass. A frame that is a window or a filtered part of a capture is missing the state the
rest built: walk the whole capture, then select.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from . import eventtable, fdtable, netaddr
from .args import decode_value
from .scap_blocks import read_state_blocks
from .typed import errno_names

_OPENS = {"open", "openat", "openat2", "creat", "open_by_handle_at"}


class _Event:
    """One row's parameters for the fd table's parser (decoded on demand)."""

    __slots__ = ("comm", "edir", "etype", "fd_name", "info", "pid", "skip", "tid", "uses_fd",
                 "vals")

    def __init__(self, etype, edir, tid, pid, comm, vals, info, uses, skip):
        self.etype, self.edir, self.tid, self.pid, self.comm = etype, edir, tid, pid, comm
        self.vals, self.info, self.skip = vals, info, skip
        self.uses_fd, self.fd_name = uses

    def has(self, name) -> bool:
        return name in self.vals

    def raw(self, name) -> bytes:
        v = self.vals.get(name)
        return bytes(v) if v is not None else b""

    def _decoded(self, name):
        if name not in self.vals:
            return None
        return decode_value(self.info.get(name, {}).get("type"), self.vals[name])

    def int(self, name):
        v = self._decoded(name)
        return v if isinstance(v, int) else None

    def str(self, name):
        v = self._decoded(name)
        return v if isinstance(v, str) else None

    def res(self):
        """The return value: the first parameter of an exit (`res`, or `fd` of opens)."""
        return self.int(next(iter(self.vals))) if self.vals else None

    def first_fd(self):
        return self.int(self.fd_name) if self.fd_name else None


class Walker:
    def __init__(self, df: pd.DataFrame):
        self.table = eventtable.load(df.attrs.get("event_table") or eventtable.NEW)
        self.new = self.table.era == "exit-only"
        blocks = None
        src = df.attrs.get("source")
        if src and df.attrs.get("format") == "scap" and Path(src).is_file():
            blocks = read_state_blocks(Path(src))
        self.state = fdtable.State(blocks, self.new)
        self.params: dict = {}
        self.uses: dict = {}
        self.flags: dict = {}
        self.skip: dict = {}
        self._errno = None

    def param_info(self, etype: str, edir: str) -> dict:
        key = (etype, edir)
        if key not in self.params:
            codes = self.table.code.get(key) or self.table.code.get(("syscall", edir), [])
            self.params[key] = {p["name"]: p for c in codes[-1:] for p in self.table.params(c)}
            ev = self.table.events[codes[-1]] if codes else {"flags": [], "params": []}
            fds = [p["name"] for p in ev["params"] if p["type"] == "PT_FD"]
            name = ("oldfd" if etype.startswith("dup") and "oldfd" in fds else
                    "fd" if "fd" in fds else (fds[0] if fds else None))
            if edir == ">" and not self.new:  # libsinsp reads the enter's first parameter
                name = ev["params"][0]["name"] if ev["params"] else None
            self.uses[key] = ("EF_USES_FD" in ev["flags"], name)
            # events libsinsp's parser reset skips: they leave the thread's last event alone
            self.skip[key] = "EF_SKIPPARSERESET" in ev["flags"] or etype == "switch"
            self.flags[key] = bool({"EF_USES_FD", "EF_CREATES_FD", "EF_DESTROYS_FD"}
                                   & set(ev["flags"]))
        return self.params[key]

    def step(self, row):
        """Advance the state over `row`: (its pid or None, its fd entry or None, the event)."""
        etype, edir = str(row.evt_type), str(row.evt_dir)
        pid = row.proc_pid
        pid = None if pid is pd.NA or pid is None else int(pid)
        args = row.evt_args if row.evt_args is not None else []
        vals = {a["name"]: a["value"] for a in args}
        info = self.param_info(etype, edir)
        comm = row.proc_name if isinstance(row.proc_name, str) else None
        ev = _Event(etype, edir, int(row.thread_tid), pid, comm, vals, info,
                    self.uses[(etype, edir)], self.skip[(etype, edir)])
        return pid, self.state.step(ev), ev

    def fd_arg(self, pid, v: int) -> tuple[str, str | None]:
        """An fd argument's (number, what libsinsp resolves it to, or None)."""
        if pid is None:  # no thread: libsinsp prints the bare number
            return str(v), None
        if v == -100:
            return "-100", "AT_FDCWD"
        if v < 0:
            if self._errno is None:
                self._errno = errno_names()
            return str(v), self._errno.get(-v)
        f = self.state.table(pid).get(v)
        return str(v), (f.render(sanitize=not self.new) if f is not None else None)

    def fd_num(self, pid, ev) -> int | None:
        """libsinsp's fd.num of the event just stepped: its thread's last fd (None: no value)."""
        if pid is None or not self.flags[(ev.etype, ev.edir)]:
            return None
        th = self.state.threads.get(ev.tid)
        return th.last_fd if th is not None else None

    def fd_name(self, pid, f, ev) -> str | None:
        """libsinsp's fd.name of the event just stepped (None: the field has no value)."""
        if pid is None or not self.flags[(ev.etype, ev.edir)]:
            return None
        if f is None:
            th = self.state.threads.get(ev.tid)
            if th is not None and th.last_fd != -1:
                f = self.state.table(pid).get(th.last_fd)
        if ev.etype == "connect" and ev.edir == "<" and f is not None:
            res = ev.res()
            if res is not None and res < 0:
                f = None
        if f is not None:
            return f.name
        return self._from_creator(ev)

    def _from_creator(self, ev) -> str | None:
        """The name a failed fd-creating exit still carries (libsinsp's
        extract_fdname_from_creator)."""
        if ev.edir != "<":
            return None
        t = ev.etype
        if t in _OPENS:
            th = self.state.threads.get(ev.tid)
            enter = th.enter if th is not None and th.enter is not None and not self.new else ev
            name = ev.str("name") if ev.has("name") else enter.str("name")
            if name is None:
                return None
            if th is None:
                return name
            return self.state._path(th, self.state.table(ev.pid), name, ev, enter)
        if t in ("accept", "accept4", "connect"):
            raw = ev.raw("tuple")
            return netaddr.socktuple_str(raw) if raw or not self.new else ""
        return ""  # any other exit: an empty name, not a missing one


def columns(df: pd.DataFrame, fd_name: bool, args: list[str],
            walker: Walker | None = None, fd_num: bool = False) -> dict[str, np.ndarray]:
    """In one pass over `df`: its `fd_name` and `fd_num` columns (if asked) and, per argument
    name in `args`, the value sysdig's filter compares for it where it is a file descriptor
    (the resolved `<f>/etc/passwd`, AT_FDCWD, an errno name, else the number; None elsewhere).
    `walker` carries the state on from earlier batches of the same capture."""
    w = walker or Walker(df)
    out = {}
    if fd_name:
        out["fd_name"] = np.full(len(df), None, dtype=object)
    if fd_num:
        out["fd_num"] = np.full(len(df), None, dtype=object)
    for n in args:
        out[f"fdarg.{n}"] = np.full(len(df), None, dtype=object)
    for i, row in enumerate(df.itertuples(index=False)):
        pid, f, ev = w.step(row)
        if fd_name:
            out["fd_name"][i] = w.fd_name(pid, f, ev)
        if fd_num:
            out["fd_num"][i] = w.fd_num(pid, ev)
        for n in args:
            if ev.info.get(n, {}).get("type") == "PT_FD" and n in ev.vals:
                v = ev.int(n)
                if v is not None:
                    num, res = w.fd_arg(pid, v)
                    out[f"fdarg.{n}"][i] = res or num
    return out


def fd_names(df: pd.DataFrame) -> pd.Series:
    """sysdig's fd.name of every row of `df` (a whole scap capture), as a string column."""
    if df.attrs.get("args_encoding", "scap") != "scap":
        from ..errors import KitError

        raise KitError("fd.name needs the fd table of a scap capture; sysdig's text/JSON "
                       "output does not hold one")
    return pd.Series(pd.array(columns(df, True, [])["fd_name"], dtype="string"), index=df.index)
