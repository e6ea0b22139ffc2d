"""libsinsp's per-process fd table, users and command names, replayed over a frame's events.

Seeded from the capture's /proc scan (scap_blocks.read_state_blocks: process, fd and user
lists) and updated by the events the way libsinsp's parser does (falcosecurity/libs
userspace/libsinsp/parsers.cpp, read for the semantics): opens, sockets (socket, bind,
connect, accept, the tuples of sendto/recvfrom), pipes, socketpairs, eventfd/signalfd/
timerfd/inotify, dup/fcntl F_DUPFD, close, fork/clone (a new process copies its parent's
table; threads share it) and, in the exit-only era, execve dropping close-on-exec fds.

`State.step(event)` is called once per event in capture order and returns the fd entry the
event refers to after its own update (what libsinsp's `fd.name` and `%evt.info` see); the
thread's `last_fd` is libsinsp's `fd.num`. Driven by read/fdwalk.py, only for `show` and
filters naming fd.name / fd.num / an fd argument: `read()` never pays for it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .netaddr import (
    AF_INET,
    AF_INET6,
    AF_UNIX,
    clean,
    ip_str,
    is_mapped,
    sockaddr_str,
    socktuple_str,
    tuple_fields,
)

# scap_fd_type numbers
FILE, DIRECTORY, IPV4, IPV6, IPV4_SERV, IPV6_SERV, FIFO, UNIX, EVENT = range(1, 10)
UNSUPPORTED, SIGNALFD, EVENTPOLL, INOTIFY, TIMERFD, NETLINK, FILE_V2 = range(10, 17)
TYPECHAR = {0: "o", FILE: "f", FILE_V2: "f", DIRECTORY: "d", IPV4: "4", IPV4_SERV: "4",
            IPV6: "6", IPV6_SERV: "6", FIFO: "p", UNIX: "u", EVENT: "e", UNSUPPORTED: "X",
            SIGNALFD: "s", EVENTPOLL: "l", INOTIFY: "i", TIMERFD: "t", NETLINK: "n", 17: "b",
            18: "u", 19: "r", 20: "m", 21: "P"}
TCP, UDP, ICMP, RAW = 2, 3, 4, 5
L4CHAR = {TCP: "t", UDP: "u", ICMP: "i", RAW: "r"}
AF_NETLINK = 16
O_DIRECTORY, O_CLOEXEC = 1 << 10, 1 << 12  # PPM_O_* (the driver's flag values)
CLONE_THREAD = 1 << 13  # PPM_CL_CLONE_THREAD
CHILD_IN_PIDNS = 1 << 29  # PPM_CL_CHILD_IN_PIDNS
F_DUPFD = (1, 26)  # PPM_FCNTL_F_DUPFD, PPM_FCNTL_F_DUPFD_CLOEXEC (the driver's numbering)


@dataclass
class Fd:
    kind: int
    name: str = ""
    l4: int = 0
    role: str = ""  # "" none, "c" client, "s" server (libsinsp's role flags)
    sip: bytes = b""
    sport: int = 0
    dip: bytes = b""
    dport: int = 0
    flags: int = 0

    def copy(self) -> Fd:
        return Fd(**self.__dict__)

    def l4proto(self) -> int:
        if self.kind in (IPV4, IPV6):
            if self.l4 == RAW:
                return RAW
            return 0 if not self.role else self.l4
        return self.l4 if self.kind in (IPV4_SERV, IPV6_SERV) else 0

    def render(self, sanitize: bool = False) -> str:
        """`<type[l4]>name`, as sysdig resolves an fd argument (`sanitize`: without the
        unprintable characters, as sysdig 0.29 prints it)."""
        name = clean(self.name.encode("utf-8", "replace")) if sanitize else self.name
        return f"<{TYPECHAR.get(self.kind, '?')}{L4CHAR.get(self.l4proto(), '')}>{name}"

    def tuple_str(self) -> str:
        return f"{ip_str(self.sip)}:{self.sport}->{ip_str(self.dip)}:{self.dport}"


_LOOPBACK = {4: b"\x7f\0\0\1", 16: b"\0" * 15 + b"\1"}


def infer_local(f: Fd) -> None:
    """libsinsp's network_interfaces.update_fd, for what needs no interface list: a UDP
    tuple with one side unset (0.0.0.0 / ::) whose other side is the loopback address gets
    that address on both sides (libsinsp finds it on `lo`). Any other address would come from
    the capture's interface list block, which is not read: left unset."""
    if f.kind not in (IPV4, IPV6) or len(f.sip) != len(f.dip) or len(f.sip) not in _LOOPBACK:
        return
    lo = _LOOPBACK[len(f.sip)]
    s_unset, d_unset = not any(f.sip), not any(f.dip)
    if s_unset == d_unset or f.sport == f.dport:
        return
    if s_unset and f.dip == lo:
        f.sip = lo
    elif d_unset and f.sip == lo:
        f.dip = lo


def from_scan(ftype: int, info) -> Fd | None:
    """An fd of the capture's fd list block (libsinsp's add_fd_from_scap)."""
    if ftype == IPV4 or ftype == IPV6:
        if ftype == IPV4:
            sip, dip, sp, dp, l4 = info[0:4], info[4:8], *struct.unpack_from("<HHB", info, 8)
        else:
            sip, dip, sp, dp, l4 = info[0:16], info[16:32], *struct.unpack_from("<HHB", info, 32)
            if is_mapped(sip) and is_mapped(dip):
                ftype, sip, dip = IPV4, sip[12:], dip[12:]
        fd = Fd(ftype, l4=l4, sip=sip, sport=sp, dip=dip, dport=dp)
        if ftype == IPV4:
            infer_local(fd)
        fd.name = fd.tuple_str()
        return fd
    if ftype == IPV4_SERV or ftype == IPV6_SERV:
        n = 4 if ftype == IPV4_SERV else 16
        port, l4 = struct.unpack_from("<HB", info, n)
        return Fd(ftype, name=f"{ip_str(info[:n])}:{port}", l4=l4, sip=info[:n], sport=port)
    if ftype == UNIX:
        _src, _dst, name = info
        name = name.rstrip("\n")  # libscap keeps /proc/net/unix's line end; sysdig shows none
        return Fd(UNIX, name=name, role="s" if name else "c")
    if ftype == 0:
        return None
    return Fd(ftype, name=info if isinstance(info, str) else "")


class _Missing:
    """The parameters of an enter event libsinsp did not see: none."""

    def has(self, name) -> bool:
        return False

    def int(self, name):
        return None

    def str(self, name):
        return None

    def raw(self, name) -> bytes:
        return b""


MISSING = _Missing()


@dataclass
class Thread:
    pid: int
    comm: str | None
    cwd: str = ""
    last_enter: str | None = None  # the type of its last enter event (old era)
    last_fd: int = 0  # libsinsp's m_lastevent_fd (0 until an enter sets it, as there)
    enter: dict | None = None  # the parameters of that enter event


class State:
    """Threads, per-process fd tables and users, advanced event by event."""

    def __init__(self, blocks, new_era: bool):
        self.new = new_era
        self.users = dict(blocks.users) if blocks else {}
        self.groups = dict(blocks.groups) if blocks else {}
        self.threads: dict[int, Thread] = {}
        self.tables: dict[int, dict[int, Fd]] = {}
        self.pending: list = []  # (table, fd, entry) closes libsinsp applies at the next event
        self._born: set = set()  # threads a clone exit already made
        self._cur: Thread | None = None  # the thread of the event being parsed
        for tid, t in (blocks.threads.items() if blocks else ()):
            self.threads[tid] = Thread(t["pid"], t["comm"], t["cwd"])
        for tid, fds in (blocks.fds.items() if blocks else ()):
            owner = self.threads[tid].pid if tid in self.threads else tid
            table = self.tables.setdefault(owner, {})
            for num, ftype, info in fds:
                try:
                    f = from_scan(ftype, info)
                except (struct.error, ValueError, TypeError):
                    f = None
                if f is not None:
                    table[num] = f
        self._fix_scanned_sockets()

    def _fix_scanned_sockets(self) -> None:
        """libsinsp's fix_sockets_coming_from_proc: a scanned IPv4 socket whose source port
        some process listens on is the server's end (its tuple turned client->server)."""
        ports = {f.sport for t in self.tables.values() for f in t.values()
                 if f.kind in (IPV4_SERV, IPV6_SERV)}
        for t in self.tables.values():
            for f in t.values():
                if f.kind != IPV4:
                    continue
                if f.sport in ports:
                    f.sip, f.sport, f.dip, f.dport = f.dip, f.dport, f.sip, f.sport
                    f.name, f.role = f.tuple_str(), "s"
                else:
                    f.role = "c"

    # --- lookups for the renderer ---
    def table(self, pid: int) -> dict[int, Fd]:
        return self.tables.setdefault(pid, {})

    def comm(self, tid: int) -> str | None:
        t = self.threads.get(tid)
        return t.comm if t else None

    def _cloexec(self, ev) -> int:
        """O_CLOEXEC when an fd-creating exit's flags ask for it (exit-only era: libsinsp drops
        those fds at execve)."""
        if not self.new:
            return 0
        flags = _or(ev.int("flags"), 0)
        if ev.etype == "epoll_create1":
            return O_CLOEXEC if flags & 1 else 0  # PPM_EPOLL_CLOEXEC
        return flags & O_CLOEXEC

    def _add(self, table, fd: int, f: Fd) -> Fd:
        """A new entry; libsinsp's add_fd also makes it the thread's last fd (fd.num)."""
        table[fd] = f
        if self._cur is not None:
            self._cur.last_fd = fd
        return f

    def flush(self) -> None:
        for table, num, f in self.pending:
            if table is None:  # a thread's exit
                self.threads.pop(num, None)
            elif table.get(num) is f:
                del table[num]
        self.pending.clear()

    # --- the parser ---
    def step(self, ev) -> Fd | None:
        """Advance over one event (`ev`: etype, edir, tid, pid (None: libsinsp has no thread
        for it), comm, int(name), raw(name), uses_fd); return the fd entry it refers to."""
        self.flush()
        if ev.etype == "procexit":  # libsinsp drops the thread after this event
            self.pending.append((None, ev.tid, None))
        if ev.pid is None or ev.skip:
            return None
        th = self.threads.get(ev.tid)
        if th is None:
            th = self.threads[ev.tid] = Thread(ev.pid, ev.comm)
        th.pid, th.comm = ev.pid, ev.comm if ev.comm is not None else th.comm
        self._cur = th
        table = self.table(ev.pid)
        if self.new:
            return self._exit_new(ev, th, table)
        if ev.edir == ">":
            th.last_enter, th.last_fd, th.enter = ev.etype, -1, ev
            f = None
            if ev.uses_fd:
                th.last_fd = _or(ev.first_fd(), -1)
                f = table.get(th.last_fd)
            if ev.etype == "connect" and f is not None:
                self._connect_enter(ev, f)
            elif ev.etype == "sendto" and f is None:
                f = self._infer_udp(ev, table, th.last_fd)
            return f
        # an exit whose enter this thread did not just make: libsinsp still parses it, but
        # without the enter's fd or parameters
        valid = th.last_enter == ev.etype
        f = table.get(th.last_fd) if valid and ev.uses_fd else None
        return self._exit(ev, th, table, f, th.enter if valid else MISSING)

    def _exit_new(self, ev, th, table) -> Fd | None:
        th.last_fd = _or(ev.first_fd(), -1) if ev.uses_fd else -1
        f = table.get(th.last_fd) if ev.uses_fd else None
        return self._exit(ev, th, table, f, ev)

    def _exit(self, ev, th, table, f, enter) -> Fd | None:
        t, res = ev.etype, ev.res()
        ok = res is not None and res >= 0
        if t in ("open", "openat", "openat2", "creat", "open_by_handle_at"):
            if not ok:
                return None
            name = ev.str("name") if ev.has("name") else enter.str("name")
            flags = _or(ev.int("flags") if ev.has("flags") else enter.int("flags"), 0)
            f = Fd(DIRECTORY if flags & O_DIRECTORY else FILE,
                   name=self._path(th, table, name, ev, enter), flags=flags)
            self._add(table, res, f)
            return f
        if t == "socket":
            if not ok:
                return None
            src = ev if ev.has("domain") else enter
            return self._add_socket(table, res, _or(src.int("domain"), 0),
                                    _or(src.int("type"), 0), _or(src.int("proto"), 0))
        if t in ("accept", "accept4"):
            return self._accept(ev, th, table, res) if ok else None
        if t in ("pipe", "pipe2", "socketpair"):
            if not ok:
                return None
            kind = UNIX if t == "socketpair" else FIFO
            flags = self._cloexec(ev) if t == "pipe2" else 0
            for n in ("fd1", "fd2"):  # each its own entry, as libsinsp copies them in
                fd = ev.int(n)
                if fd is not None and fd >= 0:
                    self._add(table, fd, Fd(kind, flags=flags))
            return table.get(_or(ev.int("fd1"), -1))
        kind = _SIMPLE_NEW.get(t) if self.new else _SIMPLE_OLD.get(t)
        if kind is not None:
            if not ok:
                return None
            return self._add(table, res, Fd(kind, flags=self._cloexec(ev)))
        if t in ("dup", "dup2", "dup3") or (t == "fcntl" and _dupfd(ev, enter)):
            if ok and f is not None:
                f = f.copy()
                if self.new:  # the new fd's close-on-exec: dup3's O_CLOEXEC, F_DUPFD_CLOEXEC
                    cmd = ev.int("cmd") if t == "fcntl" else None
                    f.flags = (f.flags & ~O_CLOEXEC) | (
                        O_CLOEXEC if cmd == F_DUPFD[1] else self._cloexec(ev))
                f = self._add(table, res, f)
            return f
        if t == "close":
            if ok and f is not None:
                self.pending.append((table, th.last_fd, f))
            return f
        if t == "bind":
            if ok and f is not None:
                self._bind(ev, f)
            return f
        if t == "connect":
            if f is not None and self.new:
                self._connect_enter(ev, f)
            if f is not None and res is not None and (res >= 0 or res == -115):
                raw = ev.raw("tuple")
                if raw:
                    self._fill_client(f, raw, ev)
            return f
        if t in _RW and f is not None and ok:
            self._rw(ev, f, enter)
            return f
        if t in ("clone", "fork", "vfork", "clone3"):
            self._clone(ev, th, res)
            return f
        if t in ("execve", "execveat") and res == 0 and self.new:
            for num in [n for n, x in table.items() if x.flags & O_CLOEXEC]:
                del table[num]
            return f
        if t in ("chdir", "fchdir") and res == 0:
            if t == "chdir" and ev.str("path"):
                th.cwd = self._join(th.cwd, ev.str("path"))
            elif f is not None:
                th.cwd = f.name
        return f

    def _path(self, th, table, name, ev, enter) -> str:
        if not name or name.startswith("/"):
            return name or ""
        dirfd = ev.int("dirfd") if ev.has("dirfd") else enter.int("dirfd")
        base = th.cwd
        if dirfd is not None and dirfd != -100 and dirfd in table:
            base = table[dirfd].name
        return self._join(base, name)

    @staticmethod
    def _join(base: str, name: str) -> str:
        if name.startswith("/") or not base:
            return name
        parts = [p for p in base.split("/") if p]
        for p in name.split("/"):
            if p in ("", "."):
                continue
            if p == "..":
                if parts:
                    parts.pop()
            else:
                parts.append(p)
        return "/" + "/".join(parts)

    def _add_socket(self, table, fd, domain, stype, proto) -> Fd | None:
        if domain == AF_UNIX:
            f = Fd(UNIX)
        elif domain in (AF_INET, AF_INET6):
            l4 = 0
            if proto == 6:
                l4 = RAW if stype == 3 else TCP
            elif proto == 17:
                l4 = RAW if stype == 3 else UDP
            elif proto == 0:
                l4 = {1: TCP, 2: UDP}.get(stype & 0xFF, 0)
            elif proto == 1:
                l4 = RAW if stype == 3 else ICMP
            elif proto == 255:
                l4 = RAW
            f = Fd(IPV4 if domain == AF_INET else IPV6, l4=l4)
        elif domain == AF_NETLINK:
            f = Fd(NETLINK)
        else:
            if not self.new:
                return None  # libsinsp of the old era keeps no entry for an unknown family
            f = Fd(0)
        self._add(table, fd, f)
        return f

    def _infer_udp(self, ev, table, fd) -> Fd | None:
        raw = ev.raw("tuple")
        if fd is None or fd < 0 or not raw or raw[0] not in (AF_INET, AF_INET6):
            return None
        return self._add_socket(table, fd, raw[0], 2, 17)

    def _bind(self, ev, f: Fd) -> None:
        raw = ev.raw("addr")
        if not raw:
            return
        if raw[0] == AF_INET and len(raw) == 7:
            ip, port = raw[1:5], struct.unpack_from("<H", raw, 5)[0]
            if port > 0:
                f.kind, f.sip, f.sport, f.role = IPV4_SERV, ip, port, "s"
        elif raw[0] == AF_INET6 and len(raw) == 19:
            ip, port = raw[1:17], struct.unpack_from("<H", raw, 17)[0]
            if port > 0:
                f.kind = IPV4_SERV if is_mapped(ip) else IPV6_SERV
                f.sip, f.sport, f.role = (ip[12:] if is_mapped(ip) else ip), port, "s"
        f.name = sockaddr_str(raw, self.new)

    def _connect_enter(self, ev, f: Fd) -> None:
        raw = ev.raw("addr")
        if not raw:
            return
        if raw[0] == AF_INET and len(raw) == 7:
            f.kind, f.dip, f.dport = IPV4, raw[1:5], struct.unpack_from("<H", raw, 5)[0]
        elif raw[0] == AF_INET6 and len(raw) == 19:
            ip, port = raw[1:17], struct.unpack_from("<H", raw, 17)[0]
            if is_mapped(ip):
                f.kind, f.dip, f.dport = IPV4, ip[12:], port
            else:
                f.kind, f.dip, f.dport = IPV6, ip, port
        elif not self.new:
            f.name = sockaddr_str(raw, self.new)

    def _set_addrs(self, f: Fd, fields) -> bool:
        """libsinsp's set_ipv4/ipv6_addresses_and_ports: False when nothing changed."""
        v6, sip, sport, dip, dport = fields
        kind = IPV6 if v6 else IPV4
        if f.kind == kind and ((sip, sport, dip, dport) == (f.sip, f.sport, f.dip, f.dport)
                               or (dip, dport, sip, sport) == (f.sip, f.sport, f.dip, f.dport)):
            return False
        changed = False
        if f.sip != sip:
            f.sip, changed = sip, True
        if f.sport != sport:
            f.sport, changed = sport, True
        if not f.dip or not any(f.dip):
            f.dip, changed = dip, True
        if f.dport == 0:
            f.dport, changed = dport, True
        return changed

    def _fill_client(self, f: Fd, raw: bytes, ev) -> None:
        fields = tuple_fields(raw)
        if fields is not None:
            f.kind = IPV6 if fields[0] else IPV4
            if len(f.dip) != len(fields[1]):
                f.sip, f.dip = b"", b""
            changed = self._set_addrs(f, fields)
            if changed and f.role == "s" and f.l4 == UDP:
                f.sip, f.sport, f.dip, f.dport = f.dip, f.dport, f.sip, f.sport
            f.name = f.tuple_str()
        else:
            f.name = socktuple_str(raw)
        if not f.role:
            f.role = "c"

    def _accept(self, ev, th, table, fd) -> Fd | None:
        th.last_fd = fd
        raw = ev.raw("tuple")
        if not raw:
            return None
        fields = tuple_fields(raw)
        if fields is not None:
            v6, sip, sport, dip, dport = fields
            f = Fd(IPV6 if v6 else IPV4, l4=TCP, sip=sip, sport=sport, dip=dip, dport=dport)
        elif raw[0] == AF_UNIX:
            f = Fd(UNIX)
        else:
            return None
        f.name, f.role = socktuple_str(raw), "s"
        f.flags = self._cloexec(ev) if ev.etype == "accept4" else 0
        self._add(table, fd, f)
        return f

    def _rw(self, ev, f: Fd, enter) -> None:
        t = ev.etype
        reads = t in ("recvfrom", "recvmsg")
        if t in ("sendto", "sendmsg"):
            raw = (ev.raw("tuple") if ev.has("tuple") else None) or enter.raw("tuple")
        elif reads:
            raw = ev.raw("tuple")
        else:
            return
        tcp = f.kind in (IPV4, IPV6, IPV4_SERV, IPV6_SERV) and f.l4 == TCP
        if not raw or (f.name and tcp):
            return
        fields = tuple_fields(raw)
        if fields is None:
            if raw[0] == AF_UNIX:
                f.kind, f.name = UNIX, clean(raw[17:].split(b"\0", 1)[0])
            return
        if f.kind in (IPV4_SERV, IPV6_SERV):
            f.kind = IPV4
        if not fields[0]:
            f.kind = IPV4
        if len(f.sip) != len(fields[1]):
            f.sip, f.dip = b"", b""
        if not self._set_addrs(f, fields):
            return
        if f.kind in (IPV4, IPV6) and f.l4 == 0:
            f.l4 = UDP
        infer_local(f)
        if not f.role:
            f.role = "s" if reads else "c"
        if (f.role == "c") == reads:
            f.sip, f.sport, f.dip, f.dport = f.dip, f.dport, f.sip, f.sport
        f.name = f.tuple_str()

    def _clone(self, ev, th, res) -> None:
        if res is None or res < 0:
            return
        flags = _or(ev.int("flags"), 0)
        vtid = ev.int("vtid")
        if res > 0:  # the parent's side: the child exists from now on
            if flags & CHILD_IN_PIDNS or (vtid is not None and vtid != ev.tid):
                return  # res is the child's id in its namespace: libsinsp makes nothing
            child, parent_pid = res, th.pid
        else:
            if ev.tid in self._born:
                return
            child = ev.tid
            parent = ev.int("pid") if flags & CLONE_THREAD else ev.int("ptid")
            pt = self.threads.get(parent) if parent is not None else None
            if parent is not None and (pt is None or pt.comm is None):
                # libsinsp's "inverted clone": the unknown parent takes the child's name
                pt = self.threads[parent] = Thread(parent if pt is None else pt.pid,
                                                   ev.str("comm") or ev.comm)
            parent_pid = pt.pid if pt else None
            if pt is not None and not th.cwd:
                th.cwd = pt.cwd
        if child in self._born:
            return
        self._born.add(child)
        if res > 0:  # libsinsp makes the child's entry here, with the caller's command name
            pid = th.pid if flags & CLONE_THREAD else child
            self.threads.setdefault(child, Thread(pid, ev.str("comm") or th.comm, th.cwd))
        if flags & CLONE_THREAD or parent_pid is None:
            return
        src = self.tables.get(parent_pid, {})
        self.tables[child] = {n: x.copy() for n, x in src.items()}


_SIMPLE_OLD = {"eventfd": EVENT, "signalfd": SIGNALFD, "timerfd_create": TIMERFD,
               "inotify_init": INOTIFY}
_SIMPLE_NEW = {**_SIMPLE_OLD, "eventfd2": EVENT, "signalfd4": SIGNALFD, "inotify_init1": INOTIFY,
               "epoll_create": EVENTPOLL, "epoll_create1": EVENTPOLL, "userfaultfd": 18,
               "io_uring_setup": 19, "pidfd_open": 21, "bpf": 17}
_RW = {"read", "write", "recv", "send", "recvfrom", "recvmsg", "sendto", "sendmsg", "readv",
       "writev", "pread", "pwrite", "preadv", "pwritev"}


def _dupfd(ev, enter) -> bool:
    cmd = ev.int("cmd") if ev.has("cmd") else enter.int("cmd")
    return cmd in F_DUPFD


def _or(v, default):
    return default if v is None else v
