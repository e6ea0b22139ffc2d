"""The host side of `sysdig-kit replay` and `sysdig-kit capture -- CMD`: turn a capture into the
JSON Lines log the replayer reads, ship the replayer to a board, run it there (or here), pass the
command's stdout/stderr through byte for byte, and fold the result into `check`.

Not shipped to the board (it needs pandas and the board layer); everything under it is.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ..errors import KitError
from .policy import ship_files

BOARD_CWD = "/root"  # where CMD runs on a board, recording and replay alike
PACKAGE = "skreplayer"  # the replayer's name on a board (sysdig_kit itself needs pandas)


def to_jsonl(src, work: Path) -> Path:
    """The replay log of `src` (a capture, a .parquet or .jsonl log) as JSON Lines."""
    from .. import replay
    from ..read import read

    src = Path(src)
    if not src.is_file():
        raise KitError(f"{src}: no such file")
    if src.suffix in (".jsonl", ".json"):
        head = src.open("rb").readline()
        if b"sysdig-kit-replay-log" in head:
            return src
    if src.suffix == ".parquet":
        return replay.write(replay.read_log(src), work / (src.stem + ".jsonl"))
    try:
        log = replay.build(read(src))
    except (OSError, EOFError, ValueError) as exc:
        raise KitError(f"{src}: cannot read it as a capture or a replay log: {exc}") from None
    return replay.write(log, work / (src.stem + ".jsonl"))


def vdso_warning(capture) -> str | None:
    """A warning when the capture's manifest does not say the vDSO was hidden: time read through
    the vDSO never entered the kernel, so neither the capture nor a replay can restore it."""
    m = Path(f"{capture}.manifest.json")
    if not m.is_file():
        return None
    try:
        wl = json.loads(m.read_text()).get("workload") or {}
    except ValueError:
        return None
    if wl.get("vdso") == "hidden":
        return None
    return ("the capture was made without hiding the vDSO (not `sysdig-kit capture -- CMD`): "
            "time read through the vDSO (clock_gettime, gettimeofday) never entered the kernel, "
            "so the log cannot restore it")


# --- this machine ---------------------------------------------------------------------------

def replay_here(log: Path, argv: list[str], json_out: Path, timeout: float = 600,
                keep_vdso: bool = False, out_to_stderr: bool = False) -> tuple[int, dict | None]:
    """Run the replayer on this machine; the command's stdout/stderr are ours (its stdout goes
    to our stderr with out_to_stderr: `check --json` keeps stdout for the verdict)."""
    cmd = [sys.executable, "-m", "sysdig_kit.replayer", "replay", str(log), "--json",
           str(json_out), "--timeout", str(timeout), *(["--keep-vdso"] if keep_vdso else []),
           "--", *argv]
    rc = subprocess.run(cmd, check=False,
                        stdout=sys.stderr.fileno() if out_to_stderr else None).returncode
    summary = json.loads(json_out.read_text()) if json_out.is_file() else None
    return rc, summary


# --- a board --------------------------------------------------------------------------------

def _digest() -> str:
    h = hashlib.sha256()
    for rel, p in sorted(ship_files().items()):
        h.update(rel.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:16]


def ship(conn, install: str = "/opt/sysdig-kit", log=None) -> str | None:
    """Put the replayer (its modules and data, stdlib only) on the board under
    INSTALL/replayer/skreplayer; nothing is pushed when the board has this version. Returns the
    PYTHONPATH to run it with. The board needs python3 (the emulated board's image has it)."""
    base = f"{install}/replayer"
    pkg = f"{base}/{PACKAGE}"
    stamp = _digest()
    have = conn.sh(f"cat {shlex.quote(pkg + '/.stamp')} 2>/dev/null; command -v python3 || "
                   "echo NO-PYTHON3", timeout=30, check=False).stdout.split()
    if "NO-PYTHON3" in have:
        if log is not None:  # deploy goes on: captures work without it, replays do not
            log(f"{conn.where} has no python3: `sysdig-kit replay`/`capture -- CMD` cannot run "
                "there (the emulated board's image includes it; Debian: apt-get install python3)")
            return None
        raise KitError(f"{conn.where} has no python3, which the replayer needs (Debian: apt-get "
                       "install python3; the emulated board's image includes it)")
    if stamp in have:
        return base
    with tempfile.TemporaryDirectory() as tmp:
        tar = Path(tmp) / "replayer.tar"
        import tarfile
        with tarfile.open(tar, "w") as t:
            for rel, p in ship_files().items():
                t.add(p, arcname=f"{PACKAGE}/{rel}")
        (Path(tmp) / ".stamp").write_text(stamp + "\n")
        with tarfile.open(tar, "a") as t:
            t.add(Path(tmp) / ".stamp", arcname=f"{PACKAGE}/.stamp")
        conn.run(["mkdir", "-p", base], timeout=30)
        conn.push(tar, f"{base}/replayer.tar")
    conn.sh(f"cd {shlex.quote(base)} && rm -rf {PACKAGE} && tar xf replayer.tar && "
            "rm replayer.tar", timeout=60)
    return base


def _python(base: str) -> list[str]:
    return ["env", f"PYTHONPATH={base}", "python3", "-m", PACKAGE]


def _pass_through(conn, job, tmp: Path, out_to_stderr: bool = False) -> tuple[bytes, bytes]:
    """The job's stdout and stderr, as bytes, copied to ours."""
    out = conn.pull(f"{job.dir}/stdout", tmp / "stdout").read_bytes()
    err = conn.pull(f"{job.dir}/stderr", tmp / "stderr").read_bytes()
    dest = sys.stderr if out_to_stderr else sys.stdout
    dest.flush()
    dest.buffer.write(out)
    dest.buffer.flush()
    sys.stderr.flush()
    sys.stderr.buffer.write(err)
    sys.stderr.buffer.flush()
    return out, err


def replay_board(profile, log: Path, argv: list[str], json_out: Path, timeout: float = 600,
                 keep_vdso: bool = False, boot: bool = False,
                 out_to_stderr: bool = False) -> tuple[int, dict | None]:
    """Run the replayer on the board: push the log, run, pass the command's output through."""
    from .. import board
    from ..board.platforms import install_dir

    plat = board.platform(profile)
    with plat.connect(boot=boot) as conn:
        base = ship(conn, install_dir(profile))
        d = conn.sh("mktemp -d /tmp/sysdig-kit-replay-XXXXXX", timeout=30).stdout.strip()
        try:
            conn.push(log, f"{d}/log.jsonl")
            cmd = [*_python(base), "replay", f"{d}/log.jsonl", "--json", f"{d}/summary.json",
                   "--timeout", str(timeout), "--cwd", BOARD_CWD,
                   *(["--keep-vdso"] if keep_vdso else []), "--", *argv]
            job = conn.background(cmd, log_dir=f"{d}/job")
            rc = job.wait(timeout + 60)
            if rc is None:
                job.stop(10)
                raise KitError(f"{conn.where}: the replayer did not finish in {timeout + 60:.0f} s")
            with tempfile.TemporaryDirectory() as tmp:
                out, err = _pass_through(conn, job, Path(tmp), out_to_stderr)
                res = conn.sh(f"cat {d}/summary.json 2>/dev/null", timeout=30, check=False)
            summary = json.loads(res.stdout) if res.stdout.strip() else None
            if summary is not None:
                summary["stdout_sha256"] = hashlib.sha256(out).hexdigest()
                summary["stderr_sha256"] = hashlib.sha256(err).hexdigest()
                json_out.write_text(json.dumps(summary, indent=1))
            replay_board.output = (out, err)  # for callers that compare bytes (the tests)
            return rc, summary
        finally:
            conn.run(["rm", "-rf", d], timeout=30, check=False)


def capture_command(argv: list[str], output, profile=None, snaplen: int = 65000,
                    keep_vdso: bool = False, quiet: bool = False, boot: bool = False):
    """`sysdig-kit capture -- CMD`: CMD from its first instruction (the launcher seizes it
    before its exec), every process it starts (proc.apid), its stdout/stderr passed through,
    capture stopped when it exits, its exit status in the manifest (`workload.rc`)."""
    from .. import board
    from ..board.platforms import install_dir
    from ..capture import Options, capture

    plat = board.platform(profile)
    with plat.connect(boot=boot) as conn:
        if profile is None:
            base, py = None, [sys.executable, "-m", "sysdig_kit.replayer"]
            d = tempfile.mkdtemp(prefix="sysdig-kit-launch-")
        else:
            base = ship(conn, install_dir(profile))
            py = _python(base)
            d = conn.sh("mktemp -d /tmp/sysdig-kit-launch-XXXXXX", timeout=30).stdout.strip()
        job = conn.background([*py, "launch", "--pidfile", f"{d}/pid", "--go", f"{d}/go",
                               *(["--cwd", BOARD_CWD] if profile is not None else []),
                               *(["--keep-vdso"] if keep_vdso else []), "--", *argv],
                              log_dir=f"{d}/job")
        pid = None
        for _ in range(300):
            got = conn.sh(f"cat {d}/pid 2>/dev/null", timeout=30, check=False).stdout.strip()
            if got:
                pid = int(got)
                break
            if not job.alive():
                break
            time.sleep(0.1)
        if pid is None:
            raise KitError(f"{conn.where}: the launcher did not start {shlex.join(argv)[:200]}: "
                           + " ".join(job.output().split())[-300:])
        state = {}

        def workload(c):
            c.run(["touch", f"{d}/go"], timeout=30)
            state["rc"] = job.wait()

        o = Options(pid=pid, follow_children=True, snaplen=snaplen)
        try:
            res = capture(o, output, profile=profile, conn=conn, workload=workload, quiet=quiet)
        finally:
            if job.alive():
                job.stop(10)
        with tempfile.TemporaryDirectory() as tmp:
            out, err = _pass_through(conn, job, Path(tmp))
        conn.run(["rm", "-rf", d], timeout=30, check=False)
    res.manifest["workload"] = {
        "argv": argv, "rc": state.get("rc"), "root_pid": pid,
        "vdso": "kept" if keep_vdso else "hidden", "aslr": "off",
        "launcher": "sysdig-kit replayer launch (ptrace: exec/fork events only)",
        "stdout_sha256": hashlib.sha256(out).hexdigest(), "stdout_bytes": len(out),
        "stderr_sha256": hashlib.sha256(err).hexdigest(), "stderr_bytes": len(err)}
    res.manifest_path.write_text(json.dumps(res.manifest, indent=2) + "\n")
    res.output = (out, err)
    return res
