"""The replay log as sysdig-kit built it before issue 14 (a Python state machine and a dict per
record): kept here only as the reference the vectorised pairing is compared with."""
from __future__ import annotations

import base64
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from sysdig_kit.errors import KitError
from sysdig_kit.read.args import decode_args
from sysdig_kit.replay import syscalls, writeback

# Events that are not syscalls (scheduler, signals, metadata, drops).
NON_SYSCALL = frozenset({
    "switch", "procexit", "signaldeliver", "drop", "container", "sysdigevent", "notification",
    "procinfo", "infra", "page_fault", "cpu_hotplug", "tracer", "mesos", "k8s", "pluginevent",
    "asyncevent", "schedswitch", "scapevent", "useradded", "userdeleted", "groupadded",
    "groupdeleted", "NA",
})
# Syscalls whose enter has no exit by design.
NEVER_RETURNS = frozenset({"exit", "exit_group", "sigreturn", "rt_sigreturn"})
CLONES = frozenset({"clone", "clone3", "fork", "vfork"})
EXECS = frozenset({"execve", "execveat"})
GENERIC_PARAMS = ("ID", "nativeID")


@dataclass
class _Ev:
    num: int
    ts: int
    tid: int
    pid: object
    comm: object
    dir: str
    type: str
    res: object
    args: list


@dataclass
class _Rec:
    tid: int
    enter: _Ev | None = None
    exit: _Ev | None = None
    flags: list = field(default_factory=list)
    kind: str = "syscall"
    seq: int = 0


def _one(arr):
    return arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr


def _events(df: pd.DataFrame):
    cols = [df[c].tolist() for c in ("evt_num", "evt_rawtime", "thread_tid", "proc_pid",
                                     "proc_name", "evt_dir", "evt_type", "evt_rawres")]
    # Flatten the list<struct> column once (much faster than a Python dict per parameter).
    arr = _one(pa.array(df["evt_args"].array)) if len(df) else None
    if arr is None or len(arr) == 0:
        return
    offs = arr.offsets.to_pylist()
    offs = [o - offs[0] for o in offs]  # a sliced array's offsets need not start at 0
    flat = arr.flatten()
    names, values = flat.field("name").to_pylist(), flat.field("value").to_pylist()
    for i, row in enumerate(zip(*cols)):
        a, b = offs[i], offs[i + 1]
        # text and JSON frames have no pid: pd.NA would make every comparison ambiguous
        yield _Ev(*(_na(v) for v in row), args=list(zip(names[a:b], values[a:b])))


class Pairer:
    """The per-thread state machine, fed frame by frame (whole capture or iter_batches).

    `feed` returns the records begun in that frame, in order of their first event; a record
    whose exit has not come yet is completed in place by a later `feed` or by `finish`
    (`done` tells which are final). The era is decided from the first frame that has
    syscall events: old drivers send an enter per exit, current ones exits only (and at most
    enters for a few TOCTOU-sensitive syscalls). A lone exit is `unpaired_exit` in the
    enter+exit era, or when its syscall is one that has enter events in the capture."""

    def __init__(self):
        self.pending: dict[int, _Rec] = {}
        self.seen: set[int] = set()
        self.seq: dict[int, int] = {}
        self.exit_only: bool | None = None
        self.enter_types: set[str] = set()

    def _new(self, rec: _Rec) -> _Rec:
        rec.seq = self.seq.get(rec.tid, 0)
        self.seq[rec.tid] = rec.seq + 1
        return rec

    def _close(self, tid, why):
        rec = self.pending.pop(tid, None)
        if rec is not None:
            rec.flags.append("never_returns" if rec.enter.type in NEVER_RETURNS else "unpaired_enter")
            if why:
                rec.flags.append(why)

    def done(self, rec: _Rec) -> bool:
        return self.pending.get(rec.tid) is not rec

    def feed(self, df: pd.DataFrame) -> list[_Rec]:
        syscall = ~df["evt_type"].astype(str).isin(NON_SYSCALL)
        enters = df.loc[syscall & (df["evt_dir"] == ">").to_numpy(), "evt_type"].astype(str)
        self.enter_types.update(enters.unique())
        if self.exit_only is None and syscall.any():
            exits = int((syscall & (df["evt_dir"] == "<").to_numpy()).sum())
            self.exit_only = len(enters) * 3 < exits
        pending, out = self.pending, []
        for ev in _events(df):
            first = ev.tid not in self.seen
            self.seen.add(ev.tid)
            if ev.type in NON_SYSCALL:
                if ev.type == "procexit":
                    self._close(ev.tid, "thread_died")
                    out.append(self._new(_Rec(ev.tid, enter=ev, kind="procexit")))
                continue
            if ev.dir == ">":
                if ev.tid in pending:
                    self._close(ev.tid, None)
                rec = pending[ev.tid] = self._new(_Rec(ev.tid, enter=ev))
                out.append(rec)
                continue
            rec = pending.get(ev.tid)
            if rec is not None and rec.enter.type == ev.type:
                del pending[ev.tid]
                rec.exit = ev
                continue
            if rec is None and ev.type in EXECS:
                # A non-leader thread's successful execve returns in the leader's tid (the
                # kernel's de_thread): pair it with that thread's pending execve enter.
                other = None if ev.pid is None else next(
                    (t for t, r in pending.items()
                     if r.enter.type == ev.type and r.enter.pid == ev.pid), None)
                if other is not None:
                    rec = pending.pop(other)
                    rec.exit = ev
                    rec.flags.append("exec_from_thread")
                    continue
            if rec is not None:
                self._close(ev.tid, "type_mismatch")
            rec = self._new(_Rec(ev.tid, exit=ev))
            if first and ev.type in CLONES and ev.res == 0:
                rec.flags.append("clone_child")  # the child's side of its own creation
            elif not self.exit_only or ev.type in self.enter_types:
                rec.flags.append("unpaired_exit")
                if first:
                    rec.flags.append("capture_start")
            out.append(rec)
        return out

    def finish(self) -> None:
        """The capture ended: whatever is still in flight stays unpaired."""
        for tid in list(self.pending):
            self._close(tid, "capture_end")


def _text(v) -> str | None:
    if v is None:
        return None
    if isinstance(v, bytes | bytearray):
        return base64.b64encode(v).decode()
    # Paths that are not UTF-8 come as surrogate escapes, which Arrow refuses: show them \xNN.
    return str(v).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_generic(args) -> bool:
    """A generic `syscall` event: ID (sysdig's id), nativeID, and with the replay-complete
    driver res/out/out2 appended (docs/replay-complete.md)."""
    return bool(args) and args[0][0] == "ID"


def build(df: pd.DataFrame, arch: str | None = None) -> pd.DataFrame:
    """The replay log of frame `df` (one row per record; columns in log.COLUMNS)."""
    p = Pairer()
    recs = p.feed(df)
    p.finish()
    arch = _arch(df, arch)
    return _log(_rows(recs, arch, df.attrs), df, arch, p)


def build_batches(frames: Iterable[pd.DataFrame], arch: str | None = None
                  ) -> Iterator[pd.DataFrame]:
    """Replay-log frames from a stream of event frames (`sysdig_kit.read.iter_batches`), for
    captures larger than memory. Each yielded frame holds the records completed so far, in
    order of their first event; a thread's records keep their `seq` across frames. The era is
    decided by the first frame with syscalls, so frames should not be tiny (thousands of
    events; iter_batches' default is a million)."""
    p, held, first = Pairer(), [], None
    for df in frames:
        if first is None:
            first, arch = df, _arch(df, arch)
        held += p.feed(df)
        if p.exit_only is None:  # no syscall yet: the era (and the log header) is unknown
            continue
        ready = [r for r in held if p.done(r)]
        held = [r for r in held if not p.done(r)]
        yield _log(_rows(ready, arch, df.attrs), df, arch, p)
    p.finish()
    if first is not None:
        yield _log(_rows(held, arch, first.attrs), first, arch, p)


def _log(rows, df, arch, p: Pairer) -> pd.DataFrame:
    from sysdig_kit.replay.log import make_log

    return make_log(rows, arch=arch, source=df.attrs.get("source"),
                    era="exit_only" if p.exit_only in (True, None) else "enter_exit",
                    reader_warnings=list(df.attrs.get("warnings") or []))


def _merge(rec: _Rec, encoding: str | None,
           table: str | None = None) -> tuple[dict[str, object], int | None]:
    """Enter and exit parameters decoded and merged (exit wins); the native syscall number
    of a generic event (its nativeID)."""
    merged: dict[str, object] = {}
    nr = None
    for ev in (rec.enter, rec.exit):
        if ev is None:
            continue
        for n, v in _decode(ev, encoding, table):
            if n == "nativeID" and _is_generic(ev.args) and isinstance(v, int):
                nr = v
            elif n not in GENERIC_PARAMS:
                merged[n] = v
    return merged, nr


def _rows(recs: list[_Rec], arch: str | None, attrs: dict) -> list[dict]:
    encoding = attrs.get("args_encoding")
    table = attrs.get("event_table")  # which revision of a patched driver (writeback.missing)
    # sysdig's default text cuts printed buffers at its print length: how many bytes were
    # captured is unknown there (a short buffer is still one the log lacks bytes of)
    cut = attrs.get("buffers") == "printed_cut"
    printed = attrs.get("buffers", "raw") != "raw"
    rows = []
    for rec in recs:
        last = rec.exit or rec.enter
        name = (rec.enter or rec.exit).type
        merged, nr = _merge(rec, encoding, table)
        named_from_nr = False
        if name in ("<unknown>", "syscall") and nr is not None and arch is not None:
            named_from_nr = syscalls.name(arch, nr) is not None
            name = syscalls.name(arch, nr) or name
        if nr is None and rec.kind == "syscall":
            nr = syscalls.number(arch, name)
        res = _na(last.res) if rec.exit is not None else None
        if rec.exit is not None and "res" in merged:
            # A replay-complete generic exit: `res` appended by the driver, an int64
            # (docs/replay-complete.md); decode_args may not know that table's types.
            r = merged["res"]
            if isinstance(r, bytes | bytearray) and len(r) == 8 and encoding == "scap":
                merged["res"] = r = int.from_bytes(r, "little", signed=True)
            if res is None:
                res = r if isinstance(r, int) else None
        flags = list(rec.flags) + (["named_from_nr"] if named_from_nr else [])
        if rec.kind == "procexit":
            res = _exit_code(merged)
        elif rec.exit is not None and res is None:
            flags.insert(0, "no_return_value")
        buffers = []
        for n, v in merged.items():
            if not isinstance(v, bytes | bytearray):
                continue
            is_out, length_param = writeback.output_buffer(name, n)
            reported = None
            if is_out:
                reported = res if length_param == "res" else _as_int(merged.get(length_param))
                reported = reported if isinstance(reported, int) and reported >= 0 else None
            # printed, a socket address or a struct is text: its length says nothing;
            # a data buffer is printed a character per byte (uncut in JSON)
            known = not cut and (is_out or not printed)
            buffers.append({"name": n, "data": bytes(v), "captured_len": len(v) if known else None,
                            "reported_len": reported, "output": is_out})
            if reported is not None and len(v) < reported and "truncated_buffer" not in flags:
                flags.append("truncated_buffer")
        if rec.exit is not None and writeback.missing(name, res, merged, table):
            flags.append("no_write_back")
        args = [{"name": n, "value": _text(v)} for n, v in merged.items()
                if not isinstance(v, bytes | bytearray)]
        rows.append({
            "thread_tid": rec.tid,
            "proc_pid": _na(last.pid),
            "proc_name": _na(last.comm),
            "seq": rec.seq,
            "kind": rec.kind,
            "syscall": name,
            "nr": nr,
            "evt_num": rec.exit.num if rec.exit is not None else (
                rec.enter.num if rec.kind == "procexit" else None),
            "enter_evt_num": rec.enter.num if rec.enter is not None else None,
            "enter_ts": rec.enter.ts if rec.enter is not None else None,
            "exit_ts": rec.exit.ts if rec.exit is not None else (
                rec.enter.ts if rec.kind == "procexit" else None),
            "res": _na(res),
            "errno": syscalls.errno_name(_na(res)) if rec.kind == "syscall" else None,
            "args": args,
            "buffers": buffers,
            "flags": flags,
        })
    return rows


def _decode(ev: _Ev, encoding: str | None, table: str | None) -> list[tuple[str, object]]:
    """[(name, value)] by the reader's decode_args (sysdig's text: with the frame's own table,
    whose print formats it printed with); raw bytes for an event it cannot read."""
    text = encoding not in (None, "scap")
    try:
        return decode_args(ev.type, ev.dir, ev.args, encoding or "scap", table if text else None)
    except (KitError, ValueError, KeyError, IndexError, TypeError):
        return list(ev.args)


def _exit_code(args: dict) -> int | None:
    """The process's exit code from procexit: `ret` (newer drivers), else the wait status."""
    ret, status = _as_int(args.get("ret")), _as_int(args.get("status"))
    if isinstance(ret, int):
        return ret
    if isinstance(status, int):
        return (status >> 8) & 0xFF if status & 0x7F == 0 else -(status & 0x7F)
    return None


def _as_int(v) -> int | None:
    """An int from a decoded value or from sysdig's text for it (`3`, `768`, `-2(ENOENT)`)."""
    if isinstance(v, int) or v is None:
        return v
    try:
        return int(str(v).split("(", 1)[0].strip(), 0)
    except ValueError:
        return None


def _na(v):
    return None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else v


def _arch(df: pd.DataFrame, arch: str | None) -> str | None:
    given = syscalls.normalize_arch(arch)
    found = syscalls.normalize_arch(df.attrs.get("arch")) if df.attrs.get("arch") else None
    if given and found and given != found:
        raise KitError(f"--arch {given} contradicts the capture, which is {found}")
    return found or given
