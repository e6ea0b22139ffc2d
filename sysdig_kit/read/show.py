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
import time
from collections.abc import Iterator

import numpy as np
import pandas as pd

from ..errors import KitError
from . import fdtable, fdwalk, netaddr
from .args import SIGNED, STRINGS, UNSIGNED, decode_value
from .render import SIGNALS
from .typed import _flag_table, errno_names, flag_names

DEFAULT = "*%evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info"
_FLAGS = {"PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16",
          "PT_ENUMFLAGS32"}
_OPENS = {"open", "openat", "openat2", "creat", "open_by_handle_at"}
_DUPS = {"dup", "dup2", "dup3"}
# kernel-internal errnos libsinsp names too (sinsp_utils::errno_to_str)
_SIGNED_PRINT = {"PT_UINT32": 32, "PT_UINT64": 64}  # unsigned types libsinsp formats with %d
_CONTAINER_ID = re.compile(rb'"id":"([^"]*)"')
_FIELD = re.compile(r"%(\w+(?:\.\w+)+)")


def _printable(b: bytes, limit: int = 80) -> str:
    """sysdig's buffer text: non-printables as dots; longer than `limit`: cut, ending `...`."""
    s = "".join(chr(c) if 32 <= c < 127 else "." for c in b[:limit + 1])
    return s[:limit - 3] + "..." if len(s) > limit else s


class _Renderer:
    def __init__(self, df: pd.DataFrame):
        self.walk = fdwalk.Walker(df)
        self.table, self.new, self.state = self.walk.table, self.walk.new, self.walk.state
        self.flags = _flag_table(self.table.name)
        self.errno = errno_names()

    def param_info(self, etype: str, edir: str) -> dict:
        return self.walk.param_info(etype, edir)

    def value(self, etype, edir, pid, name, raw) -> tuple[str, object]:
        p = self.param_info(etype, edir).get(name, {})
        ptype, fmt = p.get("type"), p.get("fmt")
        if ptype == "PT_SOCKADDR":
            return netaddr.sockaddr_str(bytes(raw or b""), self.new), None
        if ptype == "PT_SOCKTUPLE":
            return netaddr.socktuple_str(bytes(raw or b"")), None
        if ptype == "PT_FDLIST":
            return self._fdlist(bytes(raw or b""), pid), None
        v = decode_value(ptype, raw)
        if v is None:
            if ptype in STRINGS:
                return ("<NA>" if self.new else ""), v
            if isinstance(raw, (bytes, bytearray)) and not raw and ptype not in SIGNED | UNSIGNED:
                return ("NULL" if self.new else ""), v
            return ("<NA>" if self.new else ""), v
        if isinstance(v, bytes) and (ptype in SIGNED or ptype in UNSIGNED):
            return _printable(v), v  # a damaged capture: a number of no integer width
        if ptype == "PT_FD":
            num, res = self.walk.fd_arg(pid, v)
            return (f"{num}({res})" if res else num), v
        if ptype == "PT_ERRNO":
            e = self.errno.get(-v) if v < 0 else None
            return (f"{v}({e})" if e else str(v)), v
        if ptype == "PT_PID":
            c = self.state.comm(v)
            return (f"{v}({c})" if c else str(v)), v
        if ptype == "PT_SIGTYPE":
            sig = SIGNALS.get(v)
            return (f"{v}({sig})" if sig else str(v)), v
        if ptype == "PT_ABSTIME" and self.new:  # sysdig 0.41: the local time (UTC here)
            t = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(v // 1_000_000_000))
            return f"{t}.{v % 1_000_000_000:09d}", v
        if ptype == "PT_RELTIME":
            return ("none" if v == (1 << 64) - 1 else f"{v}({v / 1e9:g}s)"), v
        if ptype in ("PT_FSPATH", "PT_FSRELPATH"):
            return self._path(v, etype, edir, pid), v
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
            if ptype in _SIGNED_PRINT and v >= 1 << (_SIGNED_PRINT[ptype] - 1):
                return str(v - (1 << _SIGNED_PRINT[ptype])), v  # libsinsp prints them with %d
            return str(v), v
        if ptype in STRINGS:
            return v, v
        return _printable(v), v

    def _path(self, path: str, etype, edir, pid) -> str:
        """A path parameter; a relative one followed by what libsinsp resolves it to."""
        if self.new:  # sysdig 0.41 prints paths as they are
            return path
        th = self.state.threads.get(self.row_tid) if pid is not None else None
        if th is None or not path or path.startswith("/") or path == "<NA>":
            return path
        base = th.cwd
        dirfd = self.row_dirfd
        if dirfd is not None and dirfd != -100:
            f = self.state.table(pid).get(dirfd)
            base = f.name if f is not None else ""
        return f"{path}({fdtable.State._join(base, path) if base else path})"

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

    def info(self, row, pid) -> str:
        etype, edir = str(row.evt_type), str(row.evt_dir)
        args = row.evt_args if row.evt_args is not None else []
        names = {a["name"] for a in args}
        if names and names <= {"ID", "nativeID"}:
            args = []  # a generic syscall event: sysdig prints its name only
        self.row_tid = int(row.thread_tid)
        self.row_dirfd = None
        for a in args:
            if a["name"] == "dirfd":
                self.row_dirfd = decode_value("PT_FD", a["value"])
        parts = []
        for a in args:
            s, _ = self.value(etype, edir, pid, a["name"], a["value"])
            parts.append(f"{a['name']}={s}")
        return " ".join(parts) if self.new else "".join(p + " " for p in parts)


def _container_name(row) -> str | None:
    """libsinsp names the made-up thread of a container event `container:ID`."""
    for a in row.evt_args if row.evt_args is not None else []:
        m = _CONTAINER_ID.search(bytes(a["value"] or b""))
        if m:
            return "container:" + m.group(1).decode("utf-8", "replace")
    return None


def _time_of_day(ns: np.ndarray) -> list[str]:
    t = pd.to_datetime(ns, unit="ns")
    return [f"{x.strftime('%H:%M:%S')}.{n % 1_000_000_000:09d}" for x, n in zip(t, ns)]


def lines(df: pd.DataFrame, fmt: str | None = None, only=None) -> Iterator[str]:
    """sysdig -r's lines for the events of `df` (default format, or a -p FORMAT). The fd table
    and thread names are replayed over every row of `df`, so pass the whole capture and, as
    `only`, a boolean mask of the rows to print (a filter's or window's)."""
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
    keep = np.ones(len(df), dtype=bool) if only is None else np.asarray(only, dtype=bool)
    for i, row in enumerate(df.itertuples(index=False)):
        pid, fd, ev = r.walk.step(row)
        if not keep[i]:
            continue
        vals = {}
        for f in fields:
            if f in ("evt.info", "evt.args"):
                v = r.info(row, pid)
            elif f in ("evt.outputtime", "evt.time"):
                v = times[i]
            elif f == "fd.name":
                v = r.walk.fd_name(pid, fd, ev)
            elif f == "fd.num":
                v = r.walk.fd_num(pid, ev)
            else:
                v = getattr(row, FIELDS[f][0], None)
                v = None if v is None or v is pd.NA else v
                if v is None and f == "proc.name" and str(row.evt_type) == "container":
                    v = _container_name(row)
            vals[f] = v
        if not star and any(v is None for v in vals.values()):
            continue
        yield _FIELD.sub(lambda m, vals=vals: "<NA>" if vals[m.group(1)] is None
                         else str(vals[m.group(1)]), fmt)
