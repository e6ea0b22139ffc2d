"""What each syscall writes back to user memory, and which event parameter carries it: the
one table (data/syscalls/write_back.csv) behind check's `no_write_back` rule, the replay log's
output buffers and the replayer's injection (where to write each recorded parameter).

    for w in writeback.of("rt_sigprocmask"):   # WriteBack(param='out', arg=2, offset=0, ...)
        ...                                     # write w.param's bytes at argument w.arg
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Value types whose parameter holds bytes the kernel wrote (the log's output buffers).
BUFFER_TYPES = frozenset({"bytes", "str", "iovec", "msghdr", "control"})
_WHEN = {"res>=0": lambda r: r >= 0, "res>0": lambda r: r > 0, "res==0": lambda r: r == 0,
         "res<0": lambda r: r < 0}


@dataclass(frozen=True)
class WriteBack:
    syscall: str
    param: str | None  # None: no driver records it
    arg: int  # the argument holding the user pointer
    offset: int
    type: str
    length: str | None  # "res" or a parameter reporting the full length; None: all of it
    when: str  # a key of _WHEN
    since: str | None  # None: any driver that has the parameter; else "<set>.<revision>"
    what: str

    def written(self, res: int | None) -> bool:
        """Did the kernel write it, given the return value (None: unknown, so maybe)?"""
        return res is None or _WHEN[self.when](res)

    def recorded_by(self, table: str | None) -> bool:
        """Does a capture read with event table `table` record it when the parameter is
        there? A patched table names its revision (`scap-0.23.2+replay-complete.2`); a table
        not named (a frame built by hand) is taken to record what its parameters say."""
        if self.param is None:
            return False
        if self.since is None or table is None:
            return True
        m = re.search(r"\+(.+)\.(\d+)$", table)
        s = self.since.rsplit(".", 1)
        return bool(m) and m.group(1) == s[0] and int(m.group(2)) >= int(s[1])


@cache
def table() -> tuple[WriteBack, ...]:
    text = resources.files("sysdig_kit").joinpath("data", "syscalls", "write_back.csv")
    lines = [ln for ln in text.read_text().splitlines() if ln and not ln.startswith("#")]
    rows = list(csv.DictReader(lines))
    return tuple(WriteBack(
        syscall=r["syscall"], param=r["param"] or None, arg=int(r["arg"]),
        offset=int(r["offset"] or 0), type=r["type"], length=r["length"] or None,
        when=r["when"], since=r["since"] or None, what=r["what"]) for r in rows)


@cache
def _by_syscall() -> dict[str, tuple[WriteBack, ...]]:
    out: dict[str, list[WriteBack]] = {}
    for w in table():
        out.setdefault(w.syscall, []).append(w)
    return {k: tuple(v) for k, v in out.items()}


def of(syscall: str) -> tuple[WriteBack, ...]:
    """What `syscall` writes back (empty: nothing beyond its return value, or not known)."""
    return _by_syscall().get(syscall, ())


def output_buffer(syscall: str, param: str) -> tuple[bool, str | None]:
    """Is `param` of `syscall` bytes the kernel wrote, and what reports their full length."""
    for w in of(syscall):
        if w.param == param and w.type in BUFFER_TYPES:
            return True, w.length
    return False, None


def missing(syscall: str, res: int | None, params: dict, table_name: str | None) -> bool:
    """True when `syscall` (return value `res`) wrote to memory and none of what it wrote is in
    the record's parameters `params`. An empty parameter counts as recorded when the capture's
    driver records it for this syscall (e.g. rt_sigprocmask with a NULL oset writes nothing)."""
    ws = [w for w in of(syscall) if w.written(res)]
    if not ws:
        return False
    for w in ws:
        if w.param in params and (w.recorded_by(table_name) or _nonempty(params[w.param])):
            return False
    return True


def _nonempty(v) -> bool:
    return not isinstance(v, bytes | bytearray) or len(v) > 0
