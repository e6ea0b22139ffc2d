"""The board layer without a board: platforms chosen from profiles, an unreachable board as one
line (exit 2, no traceback, how to bring it up), background jobs on this machine's connection,
and the kit's own --duration timer on a sysdig stand-in that never stops by itself (the real
board test is in test_e2e_board.py). ~10 s."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sysdig_kit import board, capture, profiles
from sysdig_kit.errors import KitError

ROOT = Path(__file__).resolve().parent.parent


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens


def _profile(tmp_path, name, extra="", port=None):
    p = tmp_path / f"{name}.yaml"
    p.write_text(f"name: {name}\narch: arm64\ncross_prefix: aarch64-linux-gnu-\n"
                 f"ssh: {{host: 127.0.0.1, port: {port or _closed_port()}, user: root}}\n" + extra)
    return p


def test_platform_per_board_kind(tmp_path):
    assert board.platform(profiles.load("qemu-arm64")).kind == "qemu"
    assert board.platform(profiles.load("juno")).kind == "ssh"
    assert board.platform("local").kind == "local" and board.platform(None).sysdig == "sysdig"
    hooked = profiles.load(_profile(tmp_path, "j2", "hooks: {power_on: 'true', reset: x}\n"))
    assert board.platform(hooked).hooks == {"power_on": "true", "reset": "x"}
    with pytest.raises(KitError, match="hooks is a mapping of"):
        profiles.load(_profile(tmp_path, "j3", "hooks: {cycle: x}\n"))
    q = board.platform(profiles.load("qemu-arm64"))
    assert q.sysdig == f"{profiles.load('qemu-arm64').install['dir']}/sysdig/bin/sysdig"


def test_unreachable_ssh_board_is_one_line(tmp_path):
    prof = profiles.load(_profile(tmp_path, "lab-juno"))
    t0 = time.monotonic()
    with pytest.raises(KitError) as e:
        board.connect(prof)
    msg = str(e.value)
    assert time.monotonic() - t0 < 10
    assert msg.startswith("board lab-juno is not reachable at root@127.0.0.1:")
    assert "fab board-up --board lab-juno" in msg and "\n" not in msg


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sysdig_kit.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=120, check=False, cwd=ROOT)


@pytest.mark.parametrize("kind", ["ssh", "qemu"])
def test_unreachable_board_cli_exit_2_no_traceback(tmp_path, kind):
    name = f"kit-test-{kind}"
    extra = "emulator: {machine: virt}\n" if kind == "qemu" else ""
    p = _profile(tmp_path, name, extra)
    r = _cli("capture", "--board", p, "--proc", "zsh", "--duration", "1", "-o",
             tmp_path / "x.scap")
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert f"board {name} is not reachable" in r.stderr
    assert f"`fab board-up --board {name}`" in r.stderr
    assert not (tmp_path / "x.scap").exists()
    # the Fabric task says the same, and nothing booted
    f = subprocess.run(["fab", "deploy", "--board", str(p)], capture_output=True, text=True,
                       timeout=120, check=False, cwd=ROOT)
    assert f.returncode == 2 and "Traceback" not in f.stderr
    assert f"board {name} is not reachable" in f.stderr and "fab board-up" in f.stderr


def test_local_background_job(tmp_path):
    c = board.LocalConnection()
    job = c.background(["sh", "-c", ("echo started; trap 'echo got INT; exit 7' INT; "
                                     "while :; do sleep 0.1; done")])
    time.sleep(0.5)
    assert job.alive() and job.poll()[0]
    job.signal(signal.SIGINT)
    assert job.wait(10) == 7
    assert job.output().split() == ["started", "got", "INT"]
    job.cleanup()
    assert not Path(job.dir).exists()
    # run: argv quoted element by element; check=True names the failing command
    assert c.run(["printf", "%s|", "a b", "$(x)"]).stdout == "a b|$(x)|"
    with pytest.raises(KitError, match="`ls /no-such-kit` failed"):
        c.run(["ls", "/no-such-kit"])
    (tmp_path / "f").write_text("x")
    assert c.size(str(tmp_path / "f")) == 1 and c.size(str(tmp_path / "nope")) == 0


def _fake_sysdig(tmp_path) -> Path:
    """A sysdig that writes a header, then waits like sysdig on an idle target: it never
    stops by itself; SIGINT makes it print -v statistics and exit 0."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    f = bindir / "sysdig"
    f.write_text(f"#!{sys.executable}\n" + """import signal, sys, time
if "--version" in sys.argv:
    print("sysdig version 0.0.0-fake"); sys.exit(0)
out = sys.argv[sys.argv.index("-w") + 1]
open(out, "wb").write(b"\\x0a\\x0d\\x0d\\x0a header")
def stop(*_):
    print("Driver Events:12\\nDriver Drops:0", flush=True); sys.exit(0)
signal.signal(signal.SIGINT, stop)
while True:
    time.sleep(0.1)
""")
    f.chmod(0o755)
    return bindir


def test_duration_is_the_kits_timer(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{_fake_sysdig(tmp_path)}:" + __import__("os").environ["PATH"])
    t0 = time.monotonic()
    res = capture.capture(capture.Options(proc="nothing-runs-this", duration=2),
                          tmp_path / "idle.scap", quiet=True)
    took = time.monotonic() - t0
    m = json.loads(res.manifest_path.read_text())
    assert m["stop_reason"] == "duration" and m["sysdig_rc"] == 0
    assert 2 <= m["capture_seconds"] < 4 and took < 8
    assert "-M" not in m["argv"] and m["stats"]["driver_events"] == 12
    assert set(m["target_clock"]) == {"header", "timer", "end"}  # the target sent the SIGINT
    assert res.path.read_bytes().endswith(b"header")
