"""The replay log as the replayer reads it on the board: JSON Lines (docs/replay-log.md), stdlib only.

Same records and the same cursor rule as `sysdig_kit.replay.ReplayLog` (a child's `clone_child`
record is skipped; procexit gives the exit status), without pandas, which the board lacks.
tests/test_replayer.py checks both give the same records for the same log.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "sysdig-kit-replay-log"
FORMAT_VERSION = 1
INCOMPLETE = frozenset({"no_return_value", "truncated_buffer", "unpaired_enter", "no_write_back"})


class LogError(Exception):
    """The file is not a replay log this replayer can read (exit status 2)."""


@dataclass
class Record:
    tid: int
    seq: int
    kind: str
    syscall: str
    nr: int | None
    res: int | None
    errno: str | None
    args: dict
    output: dict
    captured: dict
    reported_len: dict
    flags: tuple
    evt_num: int | None
    enter_evt_num: int | None = None
    order: float = 0.0  # position in the recorded run across threads (evt_num, filled in)
    buffers: dict = field(default_factory=dict)

    def brief(self) -> dict:
        """What a divergence report shows of a record."""
        args = {k: v for k, v in self.args.items() if v is not None and k != "res"}
        return {"seq": self.seq, "evt_num": self.evt_num, "syscall": self.syscall, "nr": self.nr,
                "res": self.res, "args": args, "flags": list(self.flags)}


def _record(row: dict) -> Record:
    out, cap, rep, bufs = {}, {}, {}, {}
    for b in row.get("buffers") or []:
        data = base64.b64decode(b["data"]) if b.get("data") is not None else None
        bufs[b["name"]] = data
        if b.get("output"):
            out[b["name"]] = data
            cap[b["name"]] = b.get("captured_len")
            if b.get("reported_len") is not None:
                rep[b["name"]] = b["reported_len"]
    return Record(
        tid=int(row["thread_tid"]), seq=int(row["seq"]), kind=row["kind"], syscall=row["syscall"],
        nr=row.get("nr"), res=row.get("res"), errno=row.get("errno"),
        args={a["name"]: a["value"] for a in row.get("args") or []},
        output=out, captured=cap, reported_len=rep, flags=tuple(row.get("flags") or ()),
        evt_num=row.get("evt_num"), enter_evt_num=row.get("enter_evt_num"), buffers=bufs)


class Log:
    def __init__(self, header: dict, records: list[Record]):
        self.header = header
        self.arch = header.get("arch")
        self.by_tid: dict[int, list[Record]] = {}
        for r in sorted(records, key=lambda r: (r.tid, r.seq)):
            self.by_tid.setdefault(r.tid, []).append(r)
        for recs in self.by_tid.values():
            last = 0.0
            for r in recs:  # records with no exit event (exit_group) keep their thread's order
                key = r.evt_num if r.evt_num is not None else r.enter_evt_num
                r.order = float(key) if key is not None else last + 0.5
                last = r.order
            # A thread's exit takes effect at its death (procexit): releasing it earlier could
            # make its parent's SIGCHLD coincide with another one (signals do not queue).
            calls = [r for r in recs if r.kind == "syscall"]
            deaths = [r for r in recs if r.kind == "procexit" and r.evt_num is not None]
            if calls and deaths and "never_returns" in calls[-1].flags \
                    and calls[-1].evt_num is None and deaths[-1].order > calls[-1].order:
                calls[-1].order = deaths[-1].order - 0.25

    @classmethod
    def open(cls, path) -> Log:
        path = Path(path)
        try:
            with open(path) as f:
                first = json.loads(f.readline() or "{}")
                # the header rides in the first record's own key (docs/replay-log.md); logs
                # written before 2026-11-30 had it on a line of its own
                header = first.pop("sysdig_kit_replay_log", None)
                if header is None:
                    header, first = first, {}
                if header.get("format") != FORMAT:
                    raise LogError(f"{path}: not a JSON Lines replay log (no {FORMAT} header)")
                if header.get("version", 0) > FORMAT_VERSION:
                    raise LogError(f"{path}: log format version {header['version']} is newer "
                                   f"than this replayer reads ({FORMAT_VERSION})")
                records = [_record(first)] if "thread_tid" in first else []
                records += [_record(json.loads(line)) for line in f if line.strip()]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise LogError(f"{path}: cannot read the replay log ({exc})") from None
        return cls(header, records)

    def threads(self) -> list[int]:
        return sorted(self.by_tid)

    def root(self) -> int:
        """The thread the recorded command started in: the one with the first event."""
        firsts = {t: min(r.order for r in recs) for t, recs in self.by_tid.items() if recs}
        if not firsts:
            raise LogError("the log has no records")
        return min(firsts, key=firsts.get)

    def cursor(self, tid: int) -> Cursor:
        return Cursor(tid, self.by_tid.get(tid, []))


class Cursor:
    """One thread's syscalls in order, as `sysdig_kit.replay.api.Cursor` walks them."""

    def __init__(self, tid: int, recs: list[Record]):
        self.tid = tid
        self.syscalls = [r for r in recs if r.kind == "syscall" and "clone_child" not in r.flags]
        exits = [r for r in recs if r.kind == "procexit"]
        self.exit_status = exits[-1].res if exits else None
        self.exit_order = exits[-1].order if exits else None
        self.i = 0

    def peek(self) -> Record | None:
        return self.syscalls[self.i] if self.i < len(self.syscalls) else None

    def take(self) -> Record:
        rec = self.syscalls[self.i]
        self.i += 1
        return rec

    @property
    def done(self) -> bool:
        return self.i >= len(self.syscalls)

    def last(self, n: int) -> list[Record]:
        return self.syscalls[max(0, self.i - n):self.i]
