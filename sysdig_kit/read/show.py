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

import numpy as np
import pandas as pd

from ..errors import KitError
from . import eventtable
from .args import SIGNED, STRINGS, UNSIGNED, decode_value
from .typed import _flag_table, errno_names, flag_names

DEFAULT = "%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info"
_FLAGS = {"PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16",
          "PT_ENUMFLAGS32"}
_OPENS = {"open", "openat", "openat2", "creat", "open_by_handle_at"}
_DUPS = {"dup", "dup2", "dup3"}
_FIELD = re.compile(r"%(\w+(?:\.\w+)+)")


def _printable(b: bytes, limit: int = 80) -> str:
    return "".join(chr(c) if 32 <= c < 127 else "." for c in b[:limit])


class _Renderer:
    def __init__(self, df: pd.DataFrame):
        self.table = eventtable.load(df.attrs.get("event_table") or eventtable.NEW)
        self.new = self.table.era == "exit-only"
        self.flags = _flag_table(self.table.name)
        self.fds: dict[int, dict[int, str]] = {}
        self.comm = dict(zip(df["thread_tid"].to_numpy(),
                             df["proc_name"].astype(object).where(df["proc_name"].notna(), None)))
        self.errno = errno_names()
        self.params: dict = {}

    def param_info(self, etype: str, edir: str) -> dict:
        key = (etype, edir)
        if key not in self.params:
            codes = self.table.code.get(key) or self.table.code.get(("syscall", edir), [])
            self.params[key] = {p["name"]: p for c in codes[-1:] for p in self.table.params(c)}
        return self.params[key]

    def value(self, etype, edir, pid, name, raw) -> tuple[str, object]:
        p = self.param_info(etype, edir).get(name, {})
        ptype, fmt = p.get("type"), p.get("fmt")
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
            known = self.fds.get(pid, {}).get(v)
            return (f"{v}({known})" if known else str(v)), v
        if ptype == "PT_ERRNO":
            e = self.errno.get(-v) if v < 0 else None
            return (f"{v}({e})" if e else str(v)), v
        if ptype == "PT_PID":
            c = self.comm.get(v)
            return (f"{v}({c})" if c else str(v)), v
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

    def info(self, row) -> str:
        etype, edir, pid = str(row.evt_type), str(row.evt_dir), row.proc_pid
        pid = int(pid) if pid is not pd.NA and pid is not None else int(row.thread_tid)
        args = row.evt_args if row.evt_args is not None else []
        vals = {a["name"]: a["value"] for a in args}
        if vals and set(vals) <= {"ID", "nativeID"}:
            args = []  # a generic syscall event: sysdig prints its name only
        self.before(etype, edir, pid, vals)
        parts = []
        for a in args:
            s, _ = self.value(etype, edir, pid, a["name"], a["value"])
            parts.append(f"{a['name']}={s}")
        self.after(etype, edir, pid, vals, row)
        return " ".join(parts) if self.new else "".join(p + " " for p in parts)

    def _int(self, etype, edir, name, vals):
        if name not in vals:
            return None
        p = self.param_info(etype, edir).get(name, {})
        return decode_value(p.get("type"), vals[name])

    def before(self, etype, edir, pid, vals) -> None:
        """fd table updates libsinsp makes before it prints an exit."""
        if edir != "<":
            return
        table = self.fds.setdefault(pid, {})
        if etype in _OPENS:
            fd = self._int(etype, edir, "fd", vals)
            name = self._int(etype, edir, "name", vals)
            if isinstance(fd, int) and fd >= 0 and name:
                table[fd] = "<f>" + name
        elif etype in ("pipe", "pipe2"):
            for n in ("fd1", "fd2"):
                fd = self._int(etype, edir, n, vals)
                if isinstance(fd, int) and fd >= 0:
                    table[fd] = "<p>"
        elif etype in _DUPS or etype == "fcntl":
            res = self._int(etype, edir, "res", vals)
            old = self._int(etype, edir, "oldfd" if etype in _DUPS else "fd", vals)
            if isinstance(res, int) and res >= 0 and old in table:
                table[res] = table[old]

    def after(self, etype, edir, pid, vals, row) -> None:
        if etype == "close" and edir == "<" and (row.evt_rawres == 0 or self.new):
            fd = self._int(etype, edir, "fd", vals)
            if fd is None:
                fd = getattr(self, "_closing", {}).get(int(row.thread_tid))
            if fd is not None and (row.evt_rawres is pd.NA or row.evt_rawres == 0):
                self.fds.get(pid, {}).pop(fd, None)
        if etype == "close" and edir == ">":
            self.__dict__.setdefault("_closing", {})[int(row.thread_tid)] = self._int(
                etype, edir, "fd", {a["name"]: a["value"] for a in row.evt_args or []})
        if etype in ("clone", "fork", "vfork", "clone3") and edir == "<" and row.evt_rawres == 0:
            ptid = self._int(etype, edir, "ptid", vals)
            parent = self.fds.get(ptid) if ptid is not None else None
            if parent is not None and pid != ptid:
                self.fds.setdefault(pid, dict(parent))


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
        vals = {}
        for f in fields:
            if f in ("evt.info", "evt.args"):
                v = r.info(row)
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
