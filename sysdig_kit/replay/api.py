"""What a replayer uses: open a log, walk one thread's syscalls in order, get each result,
and a clear `Divergence` when the replaying program asks for a different syscall.

    log = ReplayLog.open("zsh.parquet")
    cur = log.cursor(385)
    rec = cur.next("read", fd=3)     # raises Divergence if the log recorded something else
    rec.res, rec.output["data"]      # what the kernel returned and wrote back
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pandas as pd

from ..errors import KitError
from . import log as logfile

# Flags that mean the record cannot give the replayer the full result.
INCOMPLETE = frozenset({"no_return_value", "truncated_buffer", "unpaired_enter", "no_write_back"})


@dataclass(frozen=True)
class Record:
    tid: int
    seq: int
    kind: str
    syscall: str
    nr: int | None
    res: int | None
    errno: str | None
    args: dict[str, str | None]
    buffers: dict[str, bytes]
    output: dict[str, bytes]
    flags: tuple[str, ...]
    evt_num: int | None
    reported_len: dict[str, int] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when the log holds the return value and every output buffer in full."""
        return not INCOMPLETE.intersection(self.flags)


class Divergence(Exception):
    """The replaying program asked for something other than what the log recorded."""

    def __init__(self, tid: int, seq: int, asked: str, recorded: Record | None, detail: str = ""):
        self.tid, self.seq, self.asked, self.recorded = tid, seq, asked, recorded
        if recorded is None:
            msg = f"thread {tid} diverged at seq {seq}: asked for {asked} but the log has ended"
        else:
            nr = f" (nr {recorded.nr})" if recorded.nr is not None else ""
            msg = (f"thread {tid} diverged at seq {seq}: asked for {asked} but the log recorded "
                   f"{recorded.syscall}{nr} at evt_num {recorded.evt_num}")
        super().__init__(msg + (f"; {detail}" if detail else ""))


def _na(v):
    return None if v is None or v is pd.NA else v


def _record(row: dict) -> Record:
    bufs = row["buffers"] if row["buffers"] is not None else []
    return Record(
        tid=int(row["thread_tid"]), seq=int(row["seq"]), kind=row["kind"],
        syscall=row["syscall"], nr=_na(row["nr"]), res=_na(row["res"]), errno=_na(row["errno"]),
        args={a["name"]: a["value"] for a in (row["args"] if row["args"] is not None else [])},
        buffers={b["name"]: b["data"] for b in bufs},
        output={b["name"]: b["data"] for b in bufs if b["output"]},
        reported_len={b["name"]: b["reported_len"] for b in bufs
                      if b["output"] and b["reported_len"] is not None},
        flags=tuple(row["flags"] if row["flags"] is not None else ()),
        evt_num=_na(row["evt_num"]),
    )


class ReplayLog:
    """A replay log (frame from replay.build or a file from replay.log.write)."""

    def __init__(self, df: pd.DataFrame):
        self.df = df
        self.arch = df.attrs.get("arch")

    @classmethod
    def open(cls, path) -> ReplayLog:
        return cls(logfile.read(path))

    def threads(self) -> list[int]:
        return sorted(self.df["thread_tid"].unique().tolist())

    def records(self, tid: int) -> Iterator[Record]:
        """The thread's records in order (syscalls, then its procexit if captured)."""
        rows = self.df[self.df["thread_tid"] == tid].sort_values("seq")
        for row in rows.to_dict("records"):
            yield _record(row)

    def cursor(self, tid: int) -> Cursor:
        if tid not in set(self.df["thread_tid"].tolist()):
            raise KitError(f"thread {tid} is not in the log (threads: {self.threads()[:10]}...)")
        return Cursor(self, tid)


class Cursor:
    """One thread's syscalls, consumed in order by a replayer."""

    def __init__(self, log: ReplayLog, tid: int):
        recs = list(log.records(tid))
        self.tid = tid
        # A child does not call its own clone: its clone_child record (res 0) is not expected.
        self._syscalls = [r for r in recs if r.kind == "syscall" and "clone_child" not in r.flags]
        exits = [r for r in recs if r.kind == "procexit"]
        self.exit_status: int | None = exits[-1].res if exits else None
        self._i = 0

    def peek(self) -> Record | None:
        """The next syscall the log expects on this thread, or None at the end."""
        return self._syscalls[self._i] if self._i < len(self._syscalls) else None

    @property
    def done(self) -> bool:
        return self._i >= len(self._syscalls)

    def next(self, syscall: str | int, **args) -> Record:
        """Consume the next record; raise Divergence unless it is `syscall` (name or number)
        with the given argument values (compared as sysdig-kit renders them, e.g. fd=3)."""
        rec = self.peek()
        asked = syscall if isinstance(syscall, str) else f"nr {syscall}"
        if rec is None:
            raise Divergence(self.tid, self._i, asked, None)
        same = rec.syscall == syscall if isinstance(syscall, str) else rec.nr == syscall
        if not same:
            raise Divergence(self.tid, self._i, asked, rec)
        for name, want in args.items():
            got = rec.args.get(name)
            if got is not None and _lead(got) != _lead(str(want)):
                raise Divergence(self.tid, self._i, asked, rec,
                                 f"argument {name}={want!r}, recorded {got!r}")
        self._i += 1
        return rec

    def __iter__(self) -> Iterator[Record]:
        while not self.done:
            yield self.next(self.peek().syscall)


def _lead(text: str) -> str:
    """The leading value of a rendered argument: `3(<f>/tmp/x)` compares as `3`."""
    return text.split("(", 1)[0].strip()
