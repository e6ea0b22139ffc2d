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
import subprocess
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
    """sysdig's argument list: write `out`, keep `snaplen` bytes, stats at exit (-v)."""
    argv = [sysdig, "-v", "-s", str(o.snaplen), "-w", out]
    if o.count is not None:
        argv += ["-n", str(o.count)]
    if o.duration is not None:
        argv += ["-M", str(max(1, round(o.duration)))]
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


# --- running sysdig: on a board over SSH, or here -------------------------------------------

class _Board:
    """sysdig in the background on the board; its pid, rc and output kept in a work folder."""

    def __init__(self, profile, conn):
        from . import remote

        self.r, self.c, self.profile = remote, conn, profile
        inst = (profile.install or {}).get("dir", "/opt/sysdig-kit")
        self.sysdig = f"{inst}/sysdig/bin/sysdig"
        self.dir = f"/tmp/sysdig-kit-capture-{uuid.uuid4().hex[:8]}"
        self.out = f"{self.dir}/capture.scap"
        self.where = f"board {profile.name}"

    def start(self, argv: list[str]) -> None:
        q = shlex.quote
        d = self.dir
        inner = (f"{shlex.join(argv)} >{q(d + '/stdout')} 2>{q(d + '/stderr')} </dev/null & "
                 f"echo $! >{q(d + '/pid')}; wait $!; echo $? >{q(d + '/rc')}")
        self.r.sh(self.c, f"mkdir -p {q(d)} && cd {q(d)} && "
                          f"(nohup sh -c {q(inner)} >/dev/null 2>&1 </dev/null &)", timeout=30)
        for _ in range(100):
            res = self.r.sh(self.c, f"cat {q(d + '/pid')} 2>/dev/null", warn=True, timeout=30)
            if res.stdout.strip():
                self.pid = int(res.stdout)
                return
            time.sleep(0.1)
        raise KitError(f"sysdig did not start on {self.where}")

    def poll(self) -> tuple[int, bool]:
        """(bytes written so far, still running)"""
        q = shlex.quote
        res = self.r.sh(self.c, f"stat -c %s {q(self.out)} 2>/dev/null || echo 0; "
                                f"test -e {q(self.dir + '/rc')} && echo done || echo running",
                        timeout=30, warn=True)
        size, state = (res.stdout.split() + ["0", "running"])[:2]
        return int(size), state == "running"

    def interrupt(self, sig=signal.SIGINT) -> None:
        self.r.run(self.c, ["kill", f"-{sig.name.removeprefix('SIG')}", str(self.pid)], warn=True,
                   timeout=30)

    def finish(self) -> tuple[int | None, str]:
        q = shlex.quote
        res = self.r.sh(self.c, f"cat {q(self.dir + '/rc')} 2>/dev/null; echo; "
                                f"cat {q(self.dir + '/stdout')} {q(self.dir + '/stderr')}",
                        timeout=30, warn=True)
        first, _, rest = res.stdout.partition("\n")
        return (int(first) if first.strip() else None), rest

    def fetch(self, local: Path) -> None:
        self.r.fetch(self.c, self.out, local)
        self.cleanup()

    def cleanup(self) -> None:
        self.r.run(self.c, ["rm", "-rf", self.dir], warn=True, timeout=30)

    def versions(self) -> dict:
        q = shlex.quote
        res = self.r.sh(self.c, f"uname -r; cat /sys/module/scap/version 2>/dev/null || echo; "
                                f"{q(self.sysdig)} --version 2>/dev/null | head -n1",
                        warn=True, timeout=60)
        kernel, driver, sysdig = (res.stdout.split("\n") + ["", "", ""])[:3]
        return {"kernel": kernel.strip(), "driver": driver.strip() or None,
                "sysdig": sysdig.strip() or None}


class _Local:
    """sysdig on this machine, in its own session so the terminal's Ctrl-C goes to us first."""

    where = "this machine"

    def __init__(self, out: Path, sysdig: str = "sysdig"):
        self.sysdig, self.out = sysdig, str(out)
        self.log = Path(str(out) + ".sysdig.log")

    def start(self, argv: list[str]) -> None:
        self.fh = open(self.log, "w")  # noqa: SIM115 - closed in finish()
        try:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.fh,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        except FileNotFoundError:
            raise KitError(f"{argv[0]} not found on this machine") from None
        self.pid = self.p.pid

    def poll(self) -> tuple[int, bool]:
        size = Path(self.out).stat().st_size if Path(self.out).exists() else 0
        return size, self.p.poll() is None

    def interrupt(self, sig=signal.SIGINT) -> None:
        if self.p.poll() is None:
            self.p.send_signal(sig)

    def finish(self) -> tuple[int | None, str]:
        self.fh.close()
        text = self.log.read_text(errors="replace")
        self.log.unlink(missing_ok=True)
        return self.p.wait(), text

    def fetch(self, local: Path) -> None:
        pass

    def cleanup(self) -> None:
        pass

    def versions(self) -> dict:
        out = subprocess.run([self.sysdig, "--version"], capture_output=True, text=True,
                             check=False)
        drv = Path("/sys/module/scap/version")
        return {"kernel": Path("/proc/sys/kernel/osrelease").read_text().strip(),
                "driver": drv.read_text().strip() if drv.exists() else None,
                "sysdig": out.stdout.strip().splitlines()[0] if out.stdout.strip() else None}


# --- the capture itself ----------------------------------------------------------------------

def dry_run(o: Options, output: str | Path, profile=None) -> str:
    """The exact command `capture` would run, and where."""
    if profile is None:
        return shlex.join(sysdig_argv(o, str(output)))
    inst = (profile.install or {}).get("dir", "/opt/sysdig-kit")
    argv = sysdig_argv(o, "/tmp/sysdig-kit-capture-XXXXXXXX/capture.scap", f"{inst}/sysdig/bin/sysdig")
    return f"# on board {profile.name} ({profile.ssh.user}@{profile.ssh.host}:{profile.ssh.port})\n" \
           + shlex.join(argv)


def _utc() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def capture(o: Options, output: str | Path, profile=None, conn=None, workload=None,
            quiet: bool = False, stop_timeout: float = 60) -> Result:
    """Capture to `output` (a local path) on the board of `profile` (None: this machine).

    `workload(runner)`, if given, runs once sysdig is capturing; the capture stops after it
    (or on duration/count/Ctrl-C, whichever comes first)."""
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    own_conn = None
    if profile is not None and conn is None:
        from . import remote

        conn = own_conn = remote.connect(profile, boot=True)
    try:
        runner = _Board(profile, conn) if profile is not None else _Local(output)
        argv = sysdig_argv(o, runner.out, runner.sysdig)
        versions = runner.versions()
        if profile is not None and not versions["driver"]:
            raise KitError(f"the scap driver is not loaded on board {profile.name} (rebooted?): "
                           f"run `fab deploy --board {profile.name}`")
        started = _utc()
        t0 = time.monotonic()
        runner.start(argv)
        stopped_by = None
        console = Console(stderr=True, quiet=quiet)
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            job = bar.add_task(f"sysdig on {runner.where}: starting")
            with _StopOnSignal() as stop:
                try:
                    size, alive = runner.poll()
                    while alive and size == 0 and not stop.signal and time.monotonic() - t0 < 120:
                        time.sleep(0.2)  # the file's header is written once sysdig captures
                        size, alive = runner.poll()
                    if workload is not None and alive and not stop.signal:
                        workload(runner)
                        time.sleep(1.5)  # let sysdig drain the driver's buffers
                        stopped_by = "workload done"
                    while alive and stopped_by is None and not stop.signal:
                        size, alive = runner.poll()
                        secs = time.monotonic() - t0
                        bar.update(job, description=f"sysdig on {runner.where}: {size:,} bytes, "
                                                    f"{size / max(secs, 1e-3) / 1e3:,.0f} kB/s")
                        if alive:
                            time.sleep(0.5)
                    if stop.signal:
                        stopped_by = f"interrupted ({stop.signal})"
                    elif not alive and stopped_by is None:
                        stopped_by = "count" if o.count else "duration" if o.duration else "sysdig exited"
                finally:  # whatever happened, sysdig on the board is stopped
                    bar.update(job, description=f"sysdig on {runner.where}: stopping")
                    rc, text = _stop(runner, stop_timeout)
        stopped = _utc()
        if rc not in (0, None):
            runner.cleanup()
            raise KitError(f"sysdig on {runner.where} failed (rc {rc}): "
                           + " ".join(text.split())[-300:])
        runner.fetch(output)
    finally:
        if own_conn is not None:
            own_conn.close()
    stats = parse_stats(text)
    manifest = {
        "capture": output.name,
        "board": profile.name if profile is not None else None,
        "where": runner.where,
        "command": shlex.join(argv), "argv": argv, "filter": build_filter(o),
        "options": {k: v for k, v in asdict(o).items() if k != "extra"},
        "snaplen": o.snaplen,
        "versions": versions,
        "started": started, "stopped": stopped,
        "seconds": round(time.monotonic() - t0, 3),
        "stopped_by": stopped_by, "sysdig_rc": rc,
        "bytes": output.stat().st_size,
        "stats": stats, "sysdig_output": text,
    }
    mpath = Path(f"{output}.manifest.json")  # where `sysdig-kit check` looks for it
    mpath.write_text(json.dumps(manifest, indent=2) + "\n")
    drops = stats.get("driver_drops")
    if not quiet:
        console.print(f"capture {output}: {output.stat().st_size:,} bytes, "
                      f"{stats.get('driver_events', '?')} driver events, {drops} drops "
                      f"({stopped_by}); manifest {mpath.name}")
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


def _stop(runner, timeout: float) -> tuple[int | None, str]:
    """SIGINT (sysdig closes the file and prints its stats), then SIGKILL if it hangs."""
    _, alive = runner.poll()
    if alive:
        runner.interrupt(signal.SIGINT)
        end = time.monotonic() + timeout
        while alive and time.monotonic() < end:
            time.sleep(0.3)
            _, alive = runner.poll()
        if alive:
            runner.interrupt(signal.SIGKILL)
            time.sleep(1)
    return runner.finish()


def capture_session(profile, script: str, output: str | Path, follow_children: bool = True,
                    snaplen: int = 4096, quiet: bool = False) -> Result:
    """Run `zsh -c script` on the board while capturing zsh and its children."""
    from . import remote

    def workload(runner):
        res = remote.run(runner.c, ["zsh", "-c", script], warn=True, timeout=120)
        workload.rc = res.return_code

    o = Options(proc="zsh", follow_children=follow_children, snaplen=snaplen)
    res = capture(o, output, profile=profile, workload=workload, quiet=quiet)
    res.manifest["workload"] = {"shell": "zsh", "script": script, "rc": workload.rc}
    res.manifest_path.write_text(json.dumps(res.manifest, indent=2) + "\n")
    return res
