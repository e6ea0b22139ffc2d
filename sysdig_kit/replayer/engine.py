"""Replay a log against a program under ptrace: every syscall must match the next record of its
thread; the policy says whether to inject the recorded result or run it and verify it.

Stdlib only (this runs on the board). One tracer process, one waitpid loop:

- the command starts under PTRACE_SEIZE (fork, seize, then exec), with address-space
  randomisation off and, at every exec, the vDSO hidden from libc (AT_SYSINFO_EHDR ->
  AT_IGNORE), as `capture -- CMD` recorded it;
- recorded threads map to replayed ones by creation: the clone that made a recorded tid (its
  recorded result) makes the replayed tid (the clone event's message); a recorded pid passed as an
  argument (wait4, kill, ...) is translated, and a pid returned is the recorded one;
- syscalls run in the recorded order across threads: a thread at a syscall entry waits until
  every live thread's earlier records (by evt_num) are done, so a reader whose data is injected
  never runs ahead of the writer it read from in the recording.
"""

from __future__ import annotations

import os
import signal
import struct
import time
from collections import deque
from dataclasses import dataclass, field

from . import ptrace as pt
from .logfile import Log, Record
from .policy import NOT_INJECTABLE, Policy, Rule, write_back

WALL = 0x40000000  # __WALL: wait for threads and children alike
OPTIONS = (pt.O_TRACESYSGOOD | pt.O_TRACECLONE | pt.O_TRACEFORK | pt.O_TRACEVFORK
           | pt.O_TRACEEXEC | pt.O_EXITKILL)
CLONES = ("clone", "clone3", "fork", "vfork")
NEVER_RETURN = ("exit", "exit_group")
UNLOGGED = ("rt_sigreturn",)  # may be absent from a log: run, not matched, when it is
EINTR, ERESTARTNOINTR = 4, 513
RESTART = (512, 513, 514, 516)  # ERESTARTSYS, ERESTARTNOINTR, ERESTARTNOHAND, ERESTART_RESTARTBLOCK
BOUNCE = object()  # marks a held syscall that is to make way for a signal handler
# Syscalls that, run for real, may wait for another traced thread to act.
MAY_WAIT = frozenset({
    "clone", "clone3", "vfork", "wait4", "waitid", "rt_sigsuspend", "pause", "nanosleep",
    "clock_nanosleep", "futex", "poll", "ppoll", "select", "pselect6", "epoll_wait",
    "epoll_pwait", "epoll_pwait2", "accept", "accept4", "connect", "rt_sigtimedwait"})


class Stop(Exception):
    """The replay cannot go on: outcome (divergence, cannot_restore, stuck) and its report."""

    def __init__(self, outcome: str, report: dict):
        super().__init__(report.get("detail", outcome))
        self.outcome, self.report = outcome, report


@dataclass
class Thread:
    real: int
    rec: int
    cur: object
    state: str = "new"  # new (not yet stopped once), run, gate (held at entry), sys (in syscall)
    pending: tuple | None = None  # (info, record, rule) held at the gate
    inflight: Record | None = None
    rule: Rule | None = None
    entry: pt.SyscallInfo | None = None
    alive: bool = True
    deferred: list = field(default_factory=list)  # signals held back until the log wants them
    bounce: tuple | None = None  # (syscall nr, signal) of a syscall skipped for a handler
    counts: dict = field(default_factory=lambda: dict.fromkeys(
        ("replayed", "injected", "executed", "restored", "unverified", "unlogged", "buffers",
         "bytes"), 0))

    def order(self) -> float | None:
        """The recorded position of what this thread does next (None: nothing to wait for)."""
        if not self.alive:
            return None
        if self.state == "sys" and self.inflight is not None:
            return self.inflight.order
        if self.state == "gate":
            return self.pending[1].order
        rec = self.cur.peek()
        return rec.order if rec is not None else self.cur.exit_order


def _may_wait(rule, info: pt.SyscallInfo) -> bool:
    if rule is BOUNCE or rule.syscall not in MAY_WAIT:
        return False
    if rule.syscall == "wait4":
        return not info.args[2] & 1  # WNOHANG: answers at once, so it must wait its turn
    if rule.syscall == "waitid":
        return not info.args[3] & 1
    return True


def _sleeping(tid: int) -> bool:
    """Is the thread asleep in the kernel (state S or D in /proc/TID/stat)?"""
    try:
        stat = open(f"/proc/{tid}/stat").read()  # noqa: SIM115
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] in ("S", "D")


def _pending(tid: int) -> int:
    """Signals pending for the thread or its process (/proc/TID/status SigPnd | ShdPnd)."""
    try:
        text = open(f"/proc/{tid}/status").read()  # noqa: SIM115
    except OSError:
        return 0
    mask = 0
    for line in text.splitlines():
        if line.startswith(("SigPnd:", "ShdPnd:")):
            mask |= int(line.split()[1], 16)
    return mask


# The terminal getters whose request numbers carry no size (asm-generic, arm64 and x86_64 alike):
# TCGETS, TIOCGPGRP, TIOCOUTQ, TIOCMGET, FIONREAD, TIOCGWINSZ, TIOCGETD, TIOCGSID.
IOCTL_LEGACY_GETTERS = frozenset({0x5401, 0x540F, 0x5411, 0x5415, 0x541B, 0x5413, 0x5424, 0x5429})


def ioctl_writes(request: int) -> bool:
    """Does this ioctl request write at its argument? The replay-complete driver's rule (patch
    0005, rc_ioctl_out_len): a known terminal getter, or _IOC_READ in the number's direction
    bits. A setter (TIOCSPTLCK, TCSETS2, TIOCSCTTY...) writes nothing and has no `out`."""
    request &= 0xFFFFFFFF
    return request in IOCTL_LEGACY_GETTERS or bool((request >> 30) & 2)


def _interrupted(res: int | None) -> bool:
    """Did the recorded syscall end because a signal came (EINTR, or a restart code)?"""
    return res is not None and (res == -EINTR or -res in RESTART)


def _signed(v: int) -> int:
    return v - 2**64 if v >= 2**63 else v


class Replayer:
    def __init__(self, log: Log, argv: list[str], arch: str | None = None,
                 hide_vdso: bool = True, no_aslr: bool = True, timeout: float = 600,
                 cwd: str | None = None):
        self.log, self.argv = log, argv
        self.arch_name = arch or log.arch or pt.host_arch()
        if self.arch_name != pt.host_arch():
            raise ValueError(f"the log is for {self.arch_name}; this machine is {pt.host_arch()}")
        self.arch = pt.ARCHS[self.arch_name]
        self.policy = Policy(self.arch_name)
        self.write_back = write_back()
        self.hide_vdso, self.no_aslr, self.timeout, self.cwd = hide_vdso, no_aslr, timeout, cwd
        self.root_rec = log.root()
        self.threads: dict[int, Thread] = {}
        self.pidmap: dict[int, int] = {}  # recorded pid -> replayed pid
        self.early: set[int] = set()  # stopped new threads not yet mapped
        self.last: dict[int, deque] = {}
        self.signals = 0
        self.kernel_copies: list[dict] = []  # copy_file_range & co. run for real (policy.csv)
        self.recheck = False  # a held syscall waits on one that may be about to sleep
        self.skipped = 0  # the root's records before its exec (the launcher's, not the command's)
        self.vdso_hidden = 0
        self.exit_status: int | None = None
        self.root_real: int | None = None
        # SKREPLAY_TRACE=FILE: one line per entry, start and exit (for debugging a replay).
        trace = os.environ.get("SKREPLAY_TRACE")
        self.trace = open(trace, "w", buffering=1) if trace else None  # noqa: SIM115

    # --- launching --------------------------------------------------------------------------

    def _launch(self) -> int:
        path = _which(self.argv[0])
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the command: wait to be seized, then exec
            try:
                os.close(w)
                os.read(r, 1)
                os.close(r)
                if self.no_aslr:
                    pt.personality(pt.ADDR_NO_RANDOMIZE)
                if self.cwd:  # where the recording ran: getcwd and PWD must be the same
                    os.chdir(self.cwd)
                    os.environ["PWD"] = self.cwd
                os.execv(path, self.argv)
            except BaseException as exc:  # noqa: BLE001 (report, never return into the tracer)
                os.write(2, f"sysdig-kit replay: cannot run {self.argv[0]}: {exc}\n".encode())
            os._exit(127)
        os.close(r)
        pt.seize(pid, OPTIONS)
        os.write(w, b"g")
        os.close(w)
        return pid

    # --- the loop ---------------------------------------------------------------------------

    def run(self) -> dict:
        t0 = time.monotonic()
        outcome, report = "replayed", None
        old = signal.signal(signal.SIGALRM, self._alarm)
        signal.alarm(int(self.timeout))
        try:
            self.root_real = self._launch()
            self._loop()
            report = self._finish()
            if report:
                outcome = report.pop("outcome")
        except Stop as stop:
            outcome, report = stop.outcome, stop.report
            self._kill_all()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        return self._summary(outcome, report, time.monotonic() - t0)

    def _alarm(self, *_):
        raise Stop("stuck", {"detail": f"no progress for {self.timeout:.0f} s: the replayed "
                             "program is blocked where the recorded one was not",
                             "threads": [self._where(t) for t in self.threads.values()]})

    @staticmethod
    def _where(t: Thread) -> dict:
        rec = t.inflight or (t.pending[1] if t.pending else None) or t.cur.peek()
        return {"thread": t.rec, "replayed_tid": t.real, "alive": t.alive, "state": t.state,
                "record": rec.brief() if rec else None}

    def _loop(self) -> None:
        while any(t.alive for t in self.threads.values()) or self.exit_status is None:
            try:
                tid, status = os.waitpid(-1, WALL | (os.WNOHANG if self.recheck else 0))
            except ChildProcessError:
                break
            if tid == 0:
                time.sleep(0.002)
                self.recheck = False
                self._release()
                continue
            if os.WIFEXITED(status) or os.WIFSIGNALED(status):
                self._gone(tid, status)
                continue
            sig, event = os.WSTOPSIG(status), status >> 16
            try:
                self._stopped(tid, sig, event)
            except pt.PtraceError as exc:
                if exc.errno == 3:  # ESRCH: killed meanwhile (exit_group of another thread)
                    continue
                raise

    def _stopped(self, tid: int, sig: int, event: int) -> None:
        t = self.threads.get(tid)
        if event == pt.EVENT_EXEC:
            if self.hide_vdso and pt.hide_vdso(tid, self.arch):
                self.vdso_hidden += 1
            if t is None and tid == self.root_real:
                t = self._start_root(tid)
            if t is None:  # exec of a thread we never mapped: cannot be
                raise Stop("divergence", {"detail": f"exec in an unknown thread {tid}"})
            pt.syscall(tid)
        elif event in (pt.EVENT_CLONE, pt.EVENT_FORK, pt.EVENT_VFORK):
            self._cloned(t, pt.geteventmsg(tid))
            pt.syscall(tid)
        elif event == pt.EVENT_STOP:
            if t is None:
                self.early.add(tid)  # a new thread: runs once its clone says who it is
            else:
                t.state = "run" if t.state == "new" else t.state
                pt.syscall(tid)
        elif event:
            pt.syscall(tid)
        elif sig == signal.SIGTRAP | 0x80:
            info = pt.syscall_info(tid)
            if info.op == pt.INFO_ENTRY:
                self._entry(t, info)
                self._release()
            elif info.op == pt.INFO_EXIT:
                self._exit(t, info)
                self._release()
            else:
                pt.syscall(tid)
        else:
            self._signal(t, tid, sig)

    def _trace(self, what: str, t: Thread, rec: Record | None, extra="") -> None:
        if self.trace is not None:
            self.trace.write(f"{time.monotonic():.6f} {what} {t.rec}/{t.real} {t.state} "
                             f"{rec.order if rec else '-'} {rec.syscall if rec else '-'} {extra}\n")

    def _start_root(self, tid: int) -> Thread:
        cur = self.log.cursor(self.root_rec)
        # What the recorded launcher did before the exec (wait for its go, personality) is not
        # the command's: replay from its first successful execve.
        while cur.peek() is not None and not (cur.peek().syscall == "execve" and cur.peek().res == 0):
            cur.take()
            self.skipped += 1
        if cur.done:
            raise Stop("divergence", {"detail": f"recorded thread {self.root_rec} has no "
                                      "successful execve: the log is not of a command started "
                                      "by `sysdig-kit capture -- CMD`"})
        t = Thread(tid, self.root_rec, cur, state="sys")
        rec = cur.take()
        t.inflight, t.rule = rec, self.policy.rule(rec.nr)
        t.entry = pt.SyscallInfo(pt.INFO_ENTRY, nr=rec.nr or -1, args=(0,) * 6)
        self.threads[tid] = t
        self.pidmap[self.root_rec] = tid
        self.last[tid] = deque(maxlen=5)
        return t

    def _cloned(self, parent: Thread, child: int) -> None:
        rec = parent.inflight
        if rec is None or rec.res is None or rec.res <= 0:
            raise Stop("cannot_restore", self._report(
                parent, rec, None, "the log has no child id for this clone: cannot tell "
                "which recorded thread the new one is"))
        t = Thread(child, rec.res, self.log.cursor(rec.res))
        self.threads[child] = t
        self.pidmap[rec.res] = child
        self.last[child] = deque(maxlen=5)
        if child in self.early:
            self.early.discard(child)
            t.state = "run"
            pt.syscall(child)

    def _gone(self, tid: int, status: int) -> None:
        t = self.threads.get(tid)
        if t is not None:
            t.alive = False
            t.state = "run"
        if tid == self.root_real:
            self.exit_status = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                                else 128 + os.WTERMSIG(status))
        self._release()

    # --- one syscall ------------------------------------------------------------------------

    def _entry(self, t: Thread, info: pt.SyscallInfo) -> None:
        rec = t.cur.peek()
        rule = self.policy.rule(info.nr)
        if rec is None and rule.syscall in NEVER_RETURN:
            # exit/exit_group have no exit event: an exit-only capture has no record of them;
            # the thread's end (procexit) is checked by the exit status.
            t.counts["executed"] += 1
            pt.syscall(t.real)
            return
        if rule.syscall in UNLOGGED and (rec is None or rec.nr != info.nr):
            # Not in the log (sysdig records no rt_sigreturn on the board): run it; it has no
            # result of its own to check (it returns the interrupted context).
            t.counts["unlogged"] += 1
            self._trace("unlogged", t, rec)
            pt.syscall(t.real)
            return
        if rec is None:
            raise Stop("divergence", self._report(t, None, info, "the log has no more syscalls "
                                                  "for this thread"))
        if rec.nr != info.nr:
            if self._handler_ahead(t) or t.deferred:
                # (a signal held back and the program now asks for something else than the
                # log: the recorded run was in that signal's handler here)
                # The recorded run took a signal here: hold this syscall until the signal's
                # turn, then bounce it (see _bounce) so that the handler runs first.
                t.state, t.pending = "gate", (info, rec, BOUNCE)
                self._trace("entry-bounce", t, rec)
                return
            raise Stop("divergence", self._report(t, rec, info, f"asked for {rule.syscall}, "
                                                  f"recorded {rec.syscall}"))
        for chk in rule.checks:
            want = rec.args.get(chk.name) if chk.kind != "b" else rec.buffers.get(chk.name)
            if want is None:
                continue
            got = self._arg(t.real, info.args[chk.arg], chk.kind, want)
            if not _same(chk.kind, got, want):
                raise Stop("divergence", self._report(
                    t, rec, info, f"{rule.syscall} argument {chk.name}: asked {_show(got)}, "
                    f"recorded {_show(want)}"))
        t.state, t.pending = "gate", (info, rec, rule)
        self._trace("entry", t, rec)

    def _arg(self, tid: int, value: int, kind: str, want):
        if kind == "s":
            return pt.read_cstr(tid, value).decode(errors="replace")
        if kind == "b":
            return pt.read_mem(tid, value, len(want))
        return _signed(value)

    def _release(self) -> None:
        """Let through the held syscalls whose turn has come (recorded order across threads)."""
        while True:
            held = sorted((t for t in self.threads.values() if t.alive and t.state == "gate"),
                          key=lambda t: t.pending[1].order)
            if not held:
                return
            t = held[0]
            mine = t.pending[1].order
            waits = [u for u in held if _may_wait(u.pending[2], u.pending[0])]
            if waits:
                # A syscall that may wait (wait4, rt_sigsuspend, vfork, ...) enters as soon as it
                # is asked, as in the recorded run, where it was waiting when its event came.
                self._start(waits[0])
                continue
            # Records not yet entered hold a thread back, and so do syscalls in flight, except
            # those that may be waiting for this very thread (a vfork parent for its child's
            # exec, a wait4 for an exit): held, they would never finish.
            earlier = [u for u in self.threads.values() if u is not t and u.alive
                       and u.state in ("run", "new", "sys") and (u.order() or mine) < mine]
            blocking = [u for u in earlier if u.state != "sys" or u.rule is None
                        or u.rule.syscall not in MAY_WAIT or not _sleeping(u.real)]
            if blocking:
                # Asleep in the kernel, an earlier syscall may be waiting for this very thread;
                # one that may wait but still runs is looked at again shortly (_loop).
                self.recheck = any(u.state == "sys" and u.rule is not None
                                   and u.rule.syscall in MAY_WAIT for u in blocking)
                return  # an earlier record is still to come; its stop calls _release again
            self._start(t)

    def _start(self, t: Thread) -> None:
        info, rec, rule = t.pending
        self._trace("start", t, rec)
        if rule is BOUNCE:
            self._bounce(t, info, rec)
            return
        t.pending, t.inflight, t.rule, t.entry, t.state = None, t.cur.take(), rule, info, "sys"
        if rule.action in ("inject", "restore"):
            missing = self._missing(rec, rule, info)
            if missing:
                raise Stop("cannot_restore", self._report(t, rec, info, missing))
        if rule.action == "inject":
            pt.set_syscall_nr(t.real, self.arch, -1)
        elif rule.pids:
            regs = pt.getregs(t.real, self.arch)
            for i in rule.pids:
                v = _signed(info.args[i])
                real = self.pidmap.get(abs(v)) if v not in (0, -1) else None
                if real is not None:
                    regs[self.arch.args[i]] = real if v > 0 else -real
            pt.setregs(t.real, self.arch, regs)
        if any(sp.to_fd for sp in rule.writes) and rule.action == "execute":
            self.kernel_copies.append({"thread": t.rec, "seq": rec.seq, "syscall": rule.syscall,
                                       "bytes": rec.res})
        if rule.syscall in NEVER_RETURN:
            t.counts["replayed"] += 1
            t.counts["executed"] += 1
            self.last[t.real].append(rec)
            t.state, t.inflight = "run", None
        pt.syscall(t.real)

    def _missing(self, rec: Record, rule: Rule, info: pt.SyscallInfo) -> str | None:
        """Why the log cannot give this syscall's result (None: it can)."""
        name = rule.syscall
        if rec.res is None:
            return f"the log has no return value of {name} (the driver's generic event)"
        if "truncated_buffer" in rec.flags:
            cut = [f"{p}: {rec.captured.get(p)} of {n} bytes" for p, n in rec.reported_len.items()
                   if (rec.captured.get(p) or 0) < n]
            return f"the log holds {name}'s output cut at the snaplen ({', '.join(cut)})"
        if "no_write_back" in rec.flags:
            carried = "|".join(self.write_back.get(rec.syscall, [])) or "none"
            return (f"the log lacks what {name} wrote to memory (write_back.csv carries it in: "
                    f"{carried})")
        for sp in self.policy.writes(rule, rec.syscall):
            if sp.to_fd:
                # Bytes the kernel moved between files (copy_file_range, sendfile, splice): the
                # program's output depends on them, and no capture holds them.
                if rec.res <= 0:
                    continue
                return (f"the log lacks the {rec.res} bytes {name} moved to fd "
                        f"{_signed(info.args[sp.arg])} inside the kernel (no event carries them)")
            if not sp.applies(rec.res) or info.args[sp.arg] == 0:
                continue
            what = f" ({sp.what})" if sp.what else ""
            if not sp.param:
                return (f"no driver records what {name} wrote at argument {sp.arg}{what}")
            if sp.type in NOT_INJECTABLE:
                return f"{name}'s `{sp.param}` ({sp.type}) cannot be written back as recorded"
            value = self._value(rec, sp)
            if value is None:
                if sp.optional or (name == "ioctl" and not ioctl_writes(info.args[1])):
                    continue  # nothing was written: the driver records `out` only when it was
                return (f"the log lacks `{sp.param}`, what {name} wrote at argument "
                        f"{sp.arg}{what} (returned {rec.res})")
            need = self._length(rec, sp)
            if need is not None and len(value) < need:
                return (f"the log holds {len(value)} of the {need} bytes {name} wrote "
                        "(capture with a larger snaplen, -s)")
        return None

    @staticmethod
    def _length(rec: Record, sp) -> int | None:
        if sp.length == "res":
            return rec.res
        if sp.length:
            try:
                return int(str(rec.args.get(sp.length)).split("(")[0])
            except ValueError:
                return None
        return None

    def _value(self, rec: Record, sp) -> bytes | None:
        """The bytes to write for one write-back, from the record (None: the log lacks it)."""
        if sp.type in ("i32", "i64", "str"):
            text = rec.args.get(sp.param)
            if text is None:
                return None
            if sp.type == "str":
                return str(text).encode() + b"\0"
            try:
                v = int(str(text).split("(")[0])
            except ValueError:
                return None
            return struct.pack("<i" if sp.type == "i32" else "<q",
                               v if v < 2**63 else v - 2**64)
        return rec.output.get(sp.param)

    def _exit(self, t: Thread, info: pt.SyscallInfo) -> None:
        rec, rule = t.inflight, t.rule
        self._trace("exit", t, rec, info.rval)
        if t.bounce is not None:
            self._bounced(t)
            return
        if rec is None:  # an exit without our entry (the first stop of a new thread)
            pt.syscall(t.real)
            return
        real = info.rval
        if -real in RESTART and rule.action != "inject":
            if rec.res == -EINTR or rec.res == real:
                # interrupted in the recording too: EINTR is what the kernel makes of a restart
                # code when it runs a handler; a restart code recorded as such (rt_sigsuspend's
                # ERESTARTNOHAND) is seen before the handler runs
                real = rec.res
            else:  # interrupted by a signal held back (_signal): the kernel restarts it
                t.cur.i -= 1
                t.inflight, t.state = None, "run"
                pt.syscall(t.real)
                return
        if rule.action == "inject":
            self._write(t, rec, rule)
            self._set_ret(t.real, rec.res)
            t.counts["injected"] += 1
        elif rule.action == "restore":
            if (real < 0) != (rec.res < 0):
                raise Stop("divergence", self._report(
                    t, rec, info, f"{rule.syscall} ran and returned {real}, recorded {rec.res}"))
            self._write(t, rec, rule)
            self._set_ret(t.real, rec.res)
            t.counts["restored"] += 1
        elif rec.res is None or rule.action == "run":
            t.counts["unverified"] += 1
        elif real != rec.res:
            raise Stop("divergence", self._report(
                t, rec, info, f"{rule.syscall} ran and returned {real}, recorded {rec.res}"))
        else:
            t.counts["executed"] += 1
        t.counts["replayed"] += 1
        self.last[t.real].append(rec)
        t.inflight, t.state = None, "run"
        pt.syscall(t.real)

    # --- signals ----------------------------------------------------------------------------

    def _handler_ahead(self, t: Thread, within: int = 16) -> bool:
        """Does the log show a signal handler returning soon (rt_sigreturn in the next records)?"""
        nxt = t.cur.syscalls[t.cur.i:t.cur.i + within]
        return any(r.syscall == "rt_sigreturn" for r in nxt)

    def _signal(self, t: Thread | None, tid: int, sig: int) -> None:
        """A signal-delivery stop. SIGCHLD (asynchronous; two of them pending make one) is held
        back until the log shows its handler: the thread's next record is its rt_sigreturn, or
        the syscall just done was recorded as interrupted."""
        if t is not None and sig == signal.SIGCHLD:
            nxt = t.cur.peek()
            prev = t.cur.syscalls[t.cur.i - 1] if t.cur.i else None
            # A syscall recorded as interrupted (EINTR, a restart code: sysdig sees the result
            # before the kernel delivers) says the signal came right there. Board captures hold
            # no rt_sigreturn, so that is often the only mark a handler leaves in the log.
            now = nxt is not None and (nxt.syscall == "rt_sigreturn" or (
                prev is not None and _interrupted(prev.res)))
            if not now:
                t.deferred.append(sig)
                self._trace("defer", t, nxt, sig)
                pt.syscall(tid, 0)
                return
        self.signals += 1
        if t is not None:
            self._trace("deliver", t, t.cur.peek(), sig)
        pt.syscall(tid, sig)

    def _bounce(self, t: Thread, info: pt.SyscallInfo, rec: Record) -> None:
        """Run the recorded signal handler before the syscall the program asks for: skip the
        syscall, make it return -ERESTARTNOINTR with its number intact and raise the signal, so
        the kernel delivers the handler and then re-executes the syscall."""
        pending = _pending(t.real)
        if t.deferred:
            sig = t.deferred.pop(0)
        elif pending:
            sig = 0  # already pending in the kernel: it is delivered on the way out
        else:
            raise Stop("divergence", self._report(
                t, rec, info, f"asked for {self.policy.names.get(info.nr, info.nr)}, recorded "
                f"{rec.syscall}: the recorded run took a signal here, and none has come"))
        t.pending, t.state, t.bounce, t.entry = None, "sys", (info.nr, sig), info
        pt.set_syscall_nr(t.real, self.arch, -1)
        pt.syscall(t.real)

    def _bounced(self, t: Thread) -> None:
        nr, sig = t.bounce
        t.bounce, t.state = None, "run"
        regs = pt.getregs(t.real, self.arch)
        regs[self.arch.ret] = -ERESTARTNOINTR
        if self.arch.nr is not None:
            regs[self.arch.nr] = nr
        else:  # arm64: the restart needs x0 back, and the syscall number (set below)
            regs[0] = t.entry.args[0]
        pt.setregs(t.real, self.arch, regs)
        if self.arch.nr is None:
            pt.set_syscall_nr(t.real, self.arch, nr)
            regs = pt.getregs(t.real, self.arch)
            regs[self.arch.ret] = -ERESTARTNOINTR
            pt.setregs(t.real, self.arch, regs)
        if sig:
            os.kill(t.real, sig)
        self._trace("bounced", t, None, sig)
        pt.syscall(t.real)

    def _set_ret(self, tid: int, value: int) -> None:
        regs = pt.getregs(tid, self.arch)
        regs[self.arch.ret] = value
        pt.setregs(tid, self.arch, regs)

    def _write(self, t: Thread, rec: Record, rule: Rule) -> None:
        if rec.res is None or rec.res < 0 and not any(
                sp.when.startswith("res<") for sp in self.policy.writes(rule, rec.syscall)):
            return
        for sp in self.policy.writes(rule, rec.syscall):
            ptr = t.entry.args[sp.arg]
            if sp.to_fd or not ptr or not sp.applies(rec.res):
                continue
            data = self._value(rec, sp)
            if not data:
                continue
            need = self._length(rec, sp)
            if need is not None:
                data = data[:need]
            if sp.type == "iovec":
                self._scatter(t.real, ptr, t.entry.args[sp.arg + 1], data)
            else:
                pt.write_mem(t.real, ptr + sp.offset, data)
            t.counts["buffers"] += 1
            t.counts["bytes"] += len(data)

    def _scatter(self, tid: int, iov: int, count: int, data: bytes) -> None:
        raw = pt.read_mem(tid, iov, 16 * count)
        off = 0
        for i in range(count):
            base, size = struct.unpack_from("<QQ", raw, 16 * i)
            pt.write_mem(tid, base, data[off:off + size])
            off += size
            if off >= len(data):
                break

    # --- ending -----------------------------------------------------------------------------

    def _finish(self) -> dict | None:
        left = [t for t in self.threads.values() if not t.cur.done]
        if left:
            t = left[0]
            rec = t.cur.peek()
            return {"outcome": "divergence", **self._report(
                t, rec, None, f"thread ended with {len(t.cur.syscalls) - t.cur.i} recorded "
                "syscalls not replayed")}
        born = {t.rec for t in self.threads.values()}
        unborn = [tid for tid in self.log.threads() if tid not in born
                  and self.log.cursor(tid).syscalls]
        if unborn:
            return {"outcome": "divergence",
                    "detail": f"recorded threads never created in the replay: {unborn[:10]}"}
        want = self.log.cursor(self.root_rec).exit_status
        if want is not None and self.exit_status is not None and want != self.exit_status:
            return {"outcome": "divergence",
                    "detail": f"exit status {self.exit_status}, recorded {want}"}
        return None

    def _kill_all(self) -> None:
        for t in self.threads.values():
            if t.alive:
                try:
                    os.kill(t.real, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.root_real:
            with _quiet():
                os.kill(self.root_real, signal.SIGKILL)
        while True:
            try:
                tid, status = os.waitpid(-1, WALL)
            except ChildProcessError:
                break
            if tid == self.root_real and self.exit_status is None and (
                    os.WIFEXITED(status) or os.WIFSIGNALED(status)):
                self.exit_status = (os.WEXITSTATUS(status) if os.WIFEXITED(status)
                                    else 128 + os.WTERMSIG(status))

    def _report(self, t: Thread | None, rec: Record | None, info: pt.SyscallInfo | None,
                detail: str) -> dict:
        rep = {"detail": detail}
        if t is not None:
            rep.update(thread=t.rec, replayed_tid=t.real,
                       last_matching=[r.brief() for r in self.last.get(t.real, [])])
        if rec is not None:
            rep.update(seq=rec.seq, evt_num=rec.evt_num, recorded=rec.brief())
        if info is not None and info.op == pt.INFO_ENTRY:
            rep["asked"] = {"syscall": self.policy.names.get(info.nr, f"nr {info.nr}"),
                            "nr": info.nr, "args": [hex(a) for a in info.args]}
        return rep

    def _summary(self, outcome: str, report: dict | None, seconds: float) -> dict:
        threads = []
        for t in self.threads.values():
            threads.append({"recorded_tid": t.rec, "replayed_tid": t.real,
                            "records": len(t.cur.syscalls), **t.counts})
        totals = {k: sum(th[k] for th in threads) for k in
                  ("records", "replayed", "injected", "executed", "restored", "unverified",
                   "unlogged", "buffers", "bytes")}
        totals["records"] = sum(len(self.log.cursor(tid).syscalls)
                                for tid in self.log.threads()) - self.skipped
        totals["skipped_before_exec"] = self.skipped
        return {"outcome": outcome, "command": self.argv, "arch": self.arch_name,
                "exit_status": self.exit_status,
                "recorded_exit_status": self.log.cursor(self.root_rec).exit_status,
                "vdso_hidden": self.vdso_hidden, "signals_delivered": self.signals,
                "kernel_copies": self.kernel_copies,
                "seconds": round(seconds, 3), "totals": totals, "threads": threads,
                "report": report}


class _quiet:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return exc[0] is not None and issubclass(exc[0], OSError)


def _same(kind: str, got, want) -> bool:
    if kind == "b":
        return got == want
    if kind == "s":
        return got == want
    try:
        return got == int(str(want).split("(", 1)[0].strip())
    except ValueError:
        return True  # a rendered value we cannot compare as a number (not a divergence)


def _show(v) -> str:
    if isinstance(v, bytes):
        return repr(v[:40]) + ("..." if len(v) > 40 else "")
    return repr(v)


def _which(cmd: str) -> str:
    if "/" in cmd:
        return cmd
    for d in os.environ.get("PATH", "/usr/bin:/bin").split(":"):
        p = os.path.join(d or ".", cmd)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    raise FileNotFoundError(f"{cmd}: command not found")
