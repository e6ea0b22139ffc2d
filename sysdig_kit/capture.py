"""Capture syscalls with sysdig, on a board (over SSH) or on this machine.

The sysdig command line is built here from validated options, as an argument list: the filter
is one argument, quoted with shlex when it travels to the board, so no option value ever reaches
a shell unquoted. sysdig runs without a pty, writes a capture file (-w) and prints its own event
and drop statistics at exit (-v); a manifest beside the capture keeps them, so drops are never
silent. Stopping (duration, count, Ctrl-C) always ends with sysdig stopped by SIGINT, which
makes it close the file properly.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import KitError

# A process name (comm) or event type we put into a filter: no quotes, spaces or operators.
_NAME = re.compile(r"^[A-Za-z0-9_.+:@%][A-Za-z0-9_.+:@%-]{0,63}$")
_EVT = re.compile(r"^[a-z0-9_]{1,40}$")

DEMO_SESSION = "echo hi > /tmp/x; cat /tmp/x; exit 3"


@dataclass
class Options:
    proc: str | None = None  # proc.name (comm)
    pid: int | None = None  # proc.pid (thread group)
    tid: int | None = None  # thread.tid
    evt_types: tuple[str, ...] = ()
    raw_filter: str | None = None  # appended as-is (one argument; experts)
    follow_children: bool = False  # also the process tree below proc/pid (proc.aname/apid)
    snaplen: int = 4096  # bytes of each buffer kept (sysdig's default 80 truncates reads)
    duration: float | None = None  # seconds, then stop
    count: int | None = None  # events, then stop
    extra: list[str] = field(default_factory=list)  # reserved for kit-internal flags

    def validate(self) -> None:
        if self.proc is not None and not _NAME.match(self.proc):
            raise KitError(f"--proc {self.proc!r}: a process name is 1-64 of letters, digits "
                           "and _.+:@%- (use --filter for anything else)")
        for name, v in (("--pid", self.pid), ("--tid", self.tid)):
            if v is not None and (not isinstance(v, int) or v <= 0):
                raise KitError(f"{name} {v!r}: a positive integer")
        for t in self.evt_types:
            if not _EVT.match(t):
                raise KitError(f"--evt-type {t!r}: an event type is lowercase letters, digits, _")
        if self.raw_filter is not None and (not self.raw_filter.strip()
                                            or re.search(r"[\x00\n\r]", self.raw_filter)):
            raise KitError("--filter: empty, or holds a newline/NUL")
        if not 0 < self.snaplen <= 65536:
            raise KitError(f"--snaplen {self.snaplen}: between 1 and 65536 bytes")
        if self.duration is not None and self.duration <= 0:
            raise KitError("--duration: seconds, more than 0")
        if self.count is not None and self.count <= 0:
            raise KitError("--count: events, more than 0")
        if self.follow_children and self.proc is None and self.pid is None:
            raise KitError("--follow-children needs --proc or --pid")


def build_filter(o: Options) -> str:
    """The sysdig filter expression for these options ('' = everything)."""
    o.validate()
    parts = []
    if o.proc is not None:
        f = f'proc.name="{o.proc}"'
        parts.append(f'({f} or proc.aname="{o.proc}")' if o.follow_children else f)
    if o.pid is not None:
        f = f"proc.pid={o.pid}"
        parts.append(f"({f} or proc.apid={o.pid})" if o.follow_children else f)
    if o.tid is not None:
        parts.append(f"thread.tid={o.tid}")
    if o.evt_types:
        parts.append(f"evt.type in ({', '.join(o.evt_types)})")
    if o.raw_filter:
        parts.append(f"({o.raw_filter})")
    return " and ".join(parts)


def sysdig_argv(o: Options, out: str, sysdig: str = "sysdig") -> list[str]:
    """sysdig's argument list: write `out`, keep `snaplen` bytes, stats at exit (-v).
    No -M for the duration: the kit stops sysdig itself (see capture())."""
    argv = [sysdig, "-v", "-s", str(o.snaplen), "-w", out]
    if o.count is not None:
        argv += ["-n", str(o.count)]
    flt = build_filter(o)
    return argv + ([flt] if flt else [])


def parse_stats(text: str) -> dict:
    """sysdig -v's summary at exit → {driver_events, driver_drops, ...} (ints, floats)."""
    stats: dict = {}
    for m in re.finditer(r"^\s*([A-Za-z][A-Za-z /()%-]*?)\s*:\s*([0-9][0-9.]*)\s*$", text, re.MULTILINE):
        key = re.sub(r"[^a-z0-9]+", "_", m.group(1).lower()).strip("_")
        stats[key] = float(m.group(2)) if "." in m.group(2) else int(m.group(2))
    # "Elapsed time: 0.123, Captured Events: 100, 812.34 eps" (one line)
    for k, v in re.findall(r"(Elapsed time|Captured Events):\s*([0-9.]+)", text):
        stats[k.lower().replace(" ", "_")] = float(v) if "." in v else int(v)
    return stats


@dataclass
class Result:
    path: Path
    manifest_path: Path
    manifest: dict


# --- running sysdig on a target (a board's connection, or this machine's) --------------------

class Sysdig:
    """One sysdig on a target, the kit's only way of running it: start it in the background,
    wait until it captures (the file's header is written), stop it with SIGINT (it closes the
    file and prints its `-v` statistics), SIGKILL if it hangs. Used by `capture` and by the
    playbook runner (sysdig_kit.analysis.runner)."""

    def __init__(self, conn, sysdig: str = "sysdig", out: str | None = None,
                 work_dir: str | None = None):
        self.conn, self.sysdig = conn, sysdig
        self.dir = work_dir or f"/tmp/sysdig-kit-capture-{uuid.uuid4().hex[:8]}"
        self.out = out or f"{self.dir}/capture.scap"
        self.job = self.keeper = None
        self.argv: list[str] = []

    @property
    def where(self) -> str:
        return self.conn.where

    def start(self, o: Options, duration: float | None = None, timekeeper: bool = True) -> None:
        """Start sysdig, and beside it a timekeeper on the target: it notes when the file's
        header appears and when sysdig exits (the target's clock), and with `duration` sends
        SIGINT that many seconds after the header — on the target, so a slow SSH link does not
        stretch the capture."""
        self.argv = sysdig_argv(o, self.out, self.sysdig)
        self.job = self.conn.background(self.argv, log_dir=self.dir)
        self.keeper = None
        if not timekeeper and not duration:
            return
        q, d, pid = shlex.quote, self.dir, self.job.pid
        timer = (f"( sleep {duration:.3f}; kill -0 {pid} 2>/dev/null && kill -INT {pid} && "
                 f"date +%s.%N >{q(d + '/t_timer')} ) & " if duration else "")
        keeper = (f"while [ ! -s {q(self.out)} ] && kill -0 {pid} 2>/dev/null; do sleep 0.1; "
                  f"done; date +%s.%N >{q(d + '/t_header')}; {timer}"
                  f"while kill -0 {pid} 2>/dev/null; do sleep 0.1; done; "
                  f"date +%s.%N >{q(d + '/t_end')}")
        self.keeper = self.conn.background(["sh", "-c", keeper], log_dir=d + "/keeper")

    def poll(self) -> tuple[bool, int]:
        """(still running, bytes written so far)"""
        return self.job.poll(watch=self.out)

    def wait_header(self, timeout: float = 120, stop=None) -> bool:
        """Wait until sysdig captures (its file has a header); False if it died first."""
        end = time.monotonic() + timeout
        alive, size = self.poll()
        while alive and size == 0 and time.monotonic() < end and not (stop and stop.signal):
            time.sleep(0.2)
            alive, size = self.poll()
        return alive

    def stop(self, timeout: float = 60) -> tuple[int | None, str]:
        """SIGINT (then SIGKILL after `timeout`); sysdig's exit status and its output."""
        rc = self.job.stop(timeout)
        return rc, self.job.output()

    def times(self) -> dict:
        """The timekeeper's notes (target clock, seconds since the epoch): header, timer
        (when the duration's SIGINT went), end. Missing ones are left out."""
        if self.keeper is None:
            return {}
        q = shlex.quote
        names = ("header", "timer", "end")
        end = q(self.dir + "/t_end")  # the keeper notes the end within ~0.1 s of sysdig's exit
        res = self.conn.sh(f"i=0; while [ ! -e {end} ] && [ $i -lt 30 ]; do sleep 0.1; "
                           "i=$((i+1)); done; "
                           + "; ".join(f"echo {n} $(cat {q(self.dir + '/t_' + n)} 2>/dev/null)"
                                       for n in names), timeout=30, check=False)
        out = {}
        for line in res.stdout.splitlines():
            name, _, val = line.partition(" ")
            try:
                out[name] = float(val)
            except ValueError:
                pass
        return out

    def fetch(self, local: Path) -> None:
        self.conn.pull(self.out, local)

    def cleanup(self) -> None:
        if self.job is not None:
            self.job.cleanup()


def versions(conn, sysdig: str) -> dict:
    """Kernel release, loaded scap driver and sysdig versions on a target, in one round trip."""
    q = shlex.quote
    res = conn.sh(f"uname -r; cat /sys/module/scap/version 2>/dev/null || echo; "
                  f"{q(sysdig)} --version 2>/dev/null | head -n1", check=False, timeout=60)
    kernel, driver, sysdig_v = (res.stdout.split("\n") + ["", "", ""])[:3]
    return {"kernel": kernel.strip(), "driver": driver.strip() or None,
            "sysdig": sysdig_v.strip() or None}


# --- the capture itself ----------------------------------------------------------------------

def dry_run(o: Options, output: str | Path, profile=None) -> str:
    """The exact command `capture` would run, and where."""
    if profile is None:
        cmd = shlex.join(sysdig_argv(o, str(output)))
    else:
        from .board import platform

        if not profile.ssh.host:  # not "root@:22": the profile is not filled in yet
            raise KitError(f"board {profile.name} has no host: set ssh.host (the board's "
                           f"address) in {profile.source_file}")
        argv = sysdig_argv(o, "/tmp/sysdig-kit-capture-XXXXXXXX/capture.scap",
                           platform(profile).sysdig)
        cmd = f"# on board {profile.name} ({profile.ssh.user}@{profile.ssh.host}:" \
              f"{profile.ssh.port})\n" + shlex.join(argv)
    if o.duration is not None:  # enforced by the kit, not by sysdig's -M (see capture())
        cmd += f"\n# stopped with SIGINT after {o.duration:g} s"
    return cmd


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def capture(o: Options, output: str | Path, profile=None, conn=None, workload=None,
            quiet: bool = False, stop_timeout: float = 60, boot: bool = False) -> Result:
    """Capture to `output` (a local path) on the board of `profile` (None: this machine).

    `workload(conn)`, if given, runs once sysdig is capturing; the capture stops after it
    (or on duration/count/Ctrl-C, whichever comes first). The kit enforces --duration itself
    (a timer, then SIGINT): sysdig's own -M is checked only when an event passing the filter
    arrives, so an idle target would run on. --count is sysdig's -n. The manifest's
    `stop_reason` says what stopped it. boot=True powers the board on first if it is down."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from . import board

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    plat = board.platform(profile)
    own_conn = None
    if conn is None:
        conn = own_conn = plat.connect(boot=boot)
    try:
        local = profile is None
        sd = Sysdig(conn, plat.sysdig, out=str(output.resolve()) if local else None,
                    work_dir=tempfile.mkdtemp(prefix="sysdig-kit-capture-") if local else None)
        argv = sysdig_argv(o, sd.out, sd.sysdig)
        vers = versions(conn, sd.sysdig)
        if profile is not None and not vers["driver"]:
            raise KitError(f"the scap driver is not loaded on board {profile.name} (rebooted?): "
                           f"run `fab deploy --board {profile.name}`")
        started = _utc()
        t0 = time.monotonic()
        sd.start(o, duration=o.duration)
        reason, t_cap = None, None
        console = Console(stderr=True, quiet=quiet)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            job = bar.add_task(f"sysdig on {sd.where}: starting")
            with _StopOnSignal() as stop:
                try:
                    alive = sd.wait_header(stop=stop)
                    t_cap = time.monotonic()
                    if workload is not None and alive and not stop.signal:
                        workload(conn)
                        time.sleep(1.5)  # let sysdig drain the driver's buffers
                        reason = "workload done"
                    while alive and reason is None and not stop.signal:
                        # the target's timekeeper sends SIGINT at the duration; this host
                        # does it itself only if that did not happen (grace: 10 s)
                        if o.duration and time.monotonic() - t_cap > o.duration + 10:
                            reason = "duration"
                            break
                        time.sleep(0.5)
                        alive, size = sd.poll()
                        secs = time.monotonic() - t_cap
                        bar.update(job, description=f"sysdig on {sd.where}: {size:,} bytes, "
                                                    f"{size / max(secs, 1e-3) / 1e3:,.0f} kB/s")
                    if stop.signal:
                        reason = f"interrupted ({stop.signal})"
                finally:  # whatever happened, sysdig on the board is stopped
                    bar.update(job, description=f"sysdig on {sd.where}: stopping")
                    rc, text = sd.stop(stop_timeout)
                    marks = sd.times()
        t_end = time.monotonic()
        if reason is None:
            reason = "duration" if "timer" in marks else "count" if o.count else "sysdig exited"
        stopped = _utc()
        if rc not in (0, None):
            sd.cleanup()
            raise KitError(f"sysdig on {sd.where} failed (rc {rc}): "
                           + " ".join(text.split())[-300:])
        sd.fetch(output)
        sd.cleanup()
    finally:
        if own_conn is not None:
            own_conn.close()
    from . import provenance

    stats = parse_stats(text)
    manifest = {
        "capture": output.name,
        "board": profile.name if profile is not None else None,
        "where": sd.where,
        "command": shlex.join(argv), "argv": argv, "filter": build_filter(o),
        "options": {k: v for k, v in asdict(o).items() if k != "extra"},
        "snaplen": o.snaplen,
        "versions": vers,
        "kit": provenance.kit(),  # the kit that captured (version, git revision)
        "started": started, "stopped": stopped,
        "seconds": round(t_end - t0, 3),
        # header written -> sysdig gone, on the target's clock (this host's if it said nothing)
        "capture_seconds": round(marks["end"] - marks["header"], 3)
        if {"end", "header"} <= set(marks) else round(t_end - (t_cap or t0), 3),
        "stop_reason": reason, "sysdig_rc": rc,
        "target_clock": marks,  # the timekeeper's header/timer/end (epoch s, the target's clock)
        "bytes": output.stat().st_size,
        "stats": stats, "sysdig_output": text,
    }
    mpath = Path(f"{output}.manifest.json")  # where `sysdig-kit check` looks for it
    mpath.write_text(json.dumps(manifest, indent=2) + "\n")
    drops = stats.get("driver_drops")
    if not quiet:
        console.print(f"capture {output}: {output.stat().st_size:,} bytes, "
                      f"{stats.get('driver_events', '?')} driver events, {drops} drops "
                      f"({reason}); manifest {mpath.name}")
    return Result(output, mpath, manifest)


class _StopOnSignal:
    """Ctrl-C / SIGTERM set a flag instead of raising: invoke swallows a KeyboardInterrupt that
    lands while it waits for a remote command, so polling the board would lose it."""

    signal: str | None = None

    def _handler(self, signum, frame):
        self.signal = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name

    def __enter__(self):
        self.old = {}
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.old[sig] = signal.signal(sig, self._handler)
        except ValueError:  # not the main thread: leave signals alone
            pass
        return self

    def __exit__(self, *exc):
        for sig, old in self.old.items():
            signal.signal(sig, old)


def capture_session(profile, script: str, output: str | Path, follow_children: bool = True,
                    snaplen: int = 4096, quiet: bool = False, boot: bool = False) -> Result:
    """Run `zsh -c script` on the board while capturing zsh and its children."""

    def workload(conn):
        workload.rc = conn.run(["zsh", "-c", script], timeout=120, check=False).rc

    o = Options(proc="zsh", follow_children=follow_children, snaplen=snaplen)
    res = capture(o, output, profile=profile, workload=workload, quiet=quiet, boot=boot)
    res.manifest["workload"] = {"shell": "zsh", "script": script, "rc": workload.rc}
    res.manifest_path.write_text(json.dumps(res.manifest, indent=2) + "\n")
    return res
