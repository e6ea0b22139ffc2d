"""Print a frame's events the way `sysdig -r` does (default format and `-p` formats).

The default line is `%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir
%evt.type %evt.info`; `evt.info` renders each parameter as libsinsp does (errno and flag
names, hex/octal per the driver table, fds resolved through a small per-process fd table of
the files, pipes and dups the capture saw, pids with their command name, buffers as printable
text cut at 80 characters). The era decides the spacing: sysdig 0.29 ends every parameter with
a space, 0.41 separates them. What libsinsp knows from state the capture does not hold (the
processes' /proc scan, users, sockets) is printed as the bare number.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import KitError
from . import eventtable, fdtable
from .args import SIGNED, STRINGS, UNSIGNED, decode_value
from .scap_blocks import read_state_blocks
from .typed import _flag_table, errno_names, flag_names

DEFAULT = "*%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info"
_FLAGS = {"PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16",
          "PT_ENUMFLAGS32"}
_OPENS = {"open", "openat", "openat2", "creat", "open_by_handle_at"}
_DUPS = {"dup", "dup2", "dup3"}
_FIELD = re.compile(r"%(\w+(?:\.\w+)+)")


def _printable(b: bytes, limit: int = 80) -> str:
    """sysdig's buffer text: non-printables as dots; longer than `limit`: cut, ending `...`."""
    s = "".join(chr(c) if 32 <= c < 127 else "." for c in b[:limit + 1])
    return s[:limit - 3] + "..." if len(s) > limit else s


class _Event:
    """One row's parameters for the fd table's parser (decoded on demand)."""

    __slots__ = ("comm", "edir", "etype", "fd_name", "info", "pid", "tid", "uses_fd", "vals")

    def __init__(self, etype, edir, tid, pid, comm, vals, info, uses_fd, fd_name):
        self.etype, self.edir, self.tid, self.pid, self.comm = etype, edir, tid, pid, comm
        self.vals, self.info, self.uses_fd, self.fd_name = vals, info, uses_fd, fd_name

    def has(self, name) -> bool:
        return name in self.vals

    def raw(self, name):
        v = self.vals.get(name)
        return bytes(v) if v is not None else b""

    def int(self, name):
        if name not in self.vals:
            return None
        v = decode_value(self.info.get(name, {}).get("type"), self.vals[name])
        return v if isinstance(v, int) else None

    def str(self, name):
        if name not in self.vals:
            return None
        v = decode_value(self.info.get(name, {}).get("type"), self.vals[name])
        return v if isinstance(v, str) else None

    def res(self):
        """The return value: the first parameter of an exit (`res`, or `fd` of opens)."""
        return self.int(next(iter(self.vals))) if self.vals else None

    def first_fd(self):
        return self.int(self.fd_name) if self.fd_name else None


class _Renderer:
    def __init__(self, df: pd.DataFrame):
        self.table = eventtable.load(df.attrs.get("event_table") or eventtable.NEW)
        self.new = self.table.era == "exit-only"
        self.flags = _flag_table(self.table.name)
        blocks = None
        src = df.attrs.get("source")
        if src and df.attrs.get("format") == "scap" and Path(src).is_file():
            blocks = read_state_blocks(Path(src))
        self.state = fdtable.State(blocks, self.new)
        self.errno = errno_names()
        self.params: dict = {}
        self.uses: dict = {}

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
        return self.params[key]

    def value(self, etype, edir, pid, name, raw) -> tuple[str, object]:
        p = self.param_info(etype, edir).get(name, {})
        ptype, fmt = p.get("type"), p.get("fmt")
        if ptype == "PT_SOCKADDR":
            return fdtable.sockaddr_str(bytes(raw or b""), self.new), None
        if ptype == "PT_SOCKTUPLE":
            return fdtable.socktuple_str(bytes(raw or b"")), None
        if ptype == "PT_FDLIST":
            return self._fdlist(bytes(raw or b""), pid), None
        v = decode_value(ptype, raw)
        if v is None:
            if ptype in STRINGS:
                return ("<NA>" if self.new else ""), v
            if isinstance(raw, (bytes, bytearray)) and not raw and ptype not in SIGNED | UNSIGNED:
                return ("NULL" if self.new else ""), v
            return ("<NA>" if self.new else ""), v
        if ptype == "PT_FD":
            if v == -100:
                return "-100(AT_FDCWD)", v
            if v < 0:
                e = self.errno.get(-v)
                return (f"{v}({e})" if e else str(v)), v
            if pid is None:
                return str(v), v
            known = self.state.table(pid).get(v)
            return (f"{v}({known.render()})" if known else str(v)), v
        if ptype == "PT_ERRNO":
            e = self.errno.get(-v) if v < 0 else None
            return (f"{v}({e})" if e else str(v)), v
        if ptype == "PT_PID":
            c = self.state.comm(v)
            return (f"{v}({c})" if c else str(v)), v
        if ptype in ("PT_UID", "PT_GID"):
            if v >= 0xFFFFFFFF or v < 0:
                return "-1(<NONE>)", v
            names = self.state.users if ptype == "PT_UID" else self.state.groups
            return f"{v}({names.get(v, '<NA>')})", v
        if ptype in _FLAGS:
            ft = self.flags.get(f"{etype}|{edir}|{name}")
            names = flag_names(v, ft[0], ft[1]) if ft else ""
            return (f"{v}({names})" if names else str(v)), v
        if ptype in SIGNED or ptype in UNSIGNED:
            if fmt == "PF_HEX":
                return f"{v:X}", v
            if fmt == "PF_OCT":
                return (f"0{v:o}" if v else "0"), v
            return str(v), v
        if ptype in STRINGS:
            return v, v
        return _printable(v), v

    def _fdlist(self, raw: bytes, pid) -> str:
        if pid is None or len(raw) < 2:
            return ""
        n = int.from_bytes(raw[:2], "little")
        table = self.state.table(pid)
        out = []
        for k in range(n):
            at = 2 + 10 * k
            if at + 10 > len(raw):
                break
            fd = int.from_bytes(raw[at: at + 8], "little", signed=True)
            flags = int.from_bytes(raw[at + 8: at + 10], "little", signed=True)
            f = table.get(fd)
            ch = fdtable.TYPECHAR.get(f.kind, "?") if f else "?"
            out.append(f"{fd if fd >= 0 else fd + (1 << 64)}:{ch}{flags & 0xFFFFFFFF:x}")
        return " ".join(out)

    def step(self, row) -> tuple[int | None, object]:
        """Advance the state over `row`; (the pid whose fd table it sees, its fd entry)."""
        etype, edir = str(row.evt_type), str(row.evt_dir)
        pid = row.proc_pid
        pid = None if pid is pd.NA or pid is None else int(pid)
        args = row.evt_args if row.evt_args is not None else []
        vals = {a["name"]: a["value"] for a in args}
        info = self.param_info(etype, edir)
        uses, fd_name = self.uses[(etype, edir)]
        comm = row.proc_name if isinstance(row.proc_name, str) else None
        ev = _Event(etype, edir, int(row.thread_tid), pid, comm, vals, info, uses, fd_name)
        return pid, self.state.step(ev)

    def info(self, row, pid) -> str:
        etype, edir = str(row.evt_type), str(row.evt_dir)
        args = row.evt_args if row.evt_args is not None else []
        names = {a["name"] for a in args}
        if names and names <= {"ID", "nativeID"}:
            args = []  # a generic syscall event: sysdig prints its name only
        parts = []
        for a in args:
            s, _ = self.value(etype, edir, pid, a["name"], a["value"])
            parts.append(f"{a['name']}={s}")
        return " ".join(parts) if self.new else "".join(p + " " for p in parts)


def _time_of_day(ns: np.ndarray) -> list[str]:
    t = pd.to_datetime(ns, unit="ns")
    return [f"{x.strftime('%H:%M:%S')}.{n % 1_000_000_000:09d}" for x, n in zip(t, ns)]


def lines(df: pd.DataFrame, fmt: str | None = None) -> Iterator[str]:
    """sysdig -r's lines for the events of `df` (default format, or a -p FORMAT)."""
    if df.attrs.get("args_encoding", "scap") != "scap":
        raise KitError("show: needs a scap capture (text/JSON input already is sysdig's output)")
    r = _Renderer(df)
    fmt = fmt or DEFAULT
    star = fmt.startswith("*")
    fmt = fmt[1:] if star else fmt
    fields = _FIELD.findall(fmt)
    from .filter import FIELDS

    for f in fields:
        if f not in FIELDS and f not in ("evt.info", "evt.outputtime", "evt.time", "evt.args"):
            raise KitError(f"show: unsupported field %{f} in the format")
    times = _time_of_day(df["evt_rawtime"].to_numpy(np.int64))
    for i, row in enumerate(df.itertuples(index=False)):
        pid, _ = r.step(row)
        vals = {}
        for f in fields:
            if f in ("evt.info", "evt.args"):
                v = r.info(row, pid)
            elif f in ("evt.outputtime", "evt.time"):
                v = times[i]
            else:
                v = getattr(row, FIELDS[f][0], None)
                v = None if v is None or v is pd.NA else v
            vals[f] = v
        if not star and any(v is None for v in vals.values()):
            continue
        yield _FIELD.sub(lambda m, vals=vals: "<NA>" if vals[m.group(1)] is None
                         else str(vals[m.group(1)]), fmt)
