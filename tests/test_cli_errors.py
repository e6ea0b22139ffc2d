"""Every error hole of issue 10, one test each: run as a user runs the commands (a subprocess),
each must end in one line on stderr (`sysdig-kit: error: ...`, exit status 2; `run`: 1 when
runs failed), no traceback, nothing half-written. ~40 s (each run starts a Python)."""

from __future__ import annotations

import gzip
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
OLD = DATA / "arm64" / "old-era-zsh-s4096.scap"
NEW_TXT = DATA / "arm64" / "new-era-zsh-name.sysdig-0.41.4.txt"


def kit(*args, cwd=ROOT, module="sysdig_kit.cli", timeout=120):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


def fab(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-c", "from fabric.main import program; program.run()",
                           *map(str, args)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)


def one_error(r, rc: int = 2, prefix: str = "sysdig-kit: error: ") -> str:
    """The single stderr line of a failed command (asserting there is nothing else)."""
    assert r.returncode == rc, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(prefix), r.stderr
    assert lines[0].isprintable(), lines[0]  # never binary or colour codes
    return lines[0]


# --- the board cannot be reached -------------------------------------------------------------


def _profile(tmp_path: Path, host: str, port: int) -> Path:
    p = tmp_path / "gone.yaml"
    p.write_text(f"name: gone\narch: arm64\ncross_prefix: aarch64-linux-gnu-\n"
                 f"ssh:\n  host: \"{host}\"\n  port: {port}\n  user: root\n")
    return p


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when this returns: nothing listens there


@pytest.fixture
def hangs_up():
    """A TCP port that accepts and closes at once: SSH fails inside paramiko (no banner)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                conn.close()
            except OSError:
                continue

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join(2)
    srv.close()


@pytest.mark.parametrize("how", ["refused", "no banner", "unknown host"])
def test_unreachable_board_is_one_line(how, tmp_path, request):
    port = request.getfixturevalue("hangs_up") if how == "no banner" else _closed_port()
    prof = _profile(tmp_path, "no-such-host.invalid" if how == "unknown host" else "127.0.0.1",
                    port)
    out = tmp_path / "c.scap"
    line = one_error(kit("capture", "--board", prof, "--proc", "zsh", "--duration", "1",
                         "-o", out))
    assert "board gone" in line and "not reachable" in line
    r = fab("capture", "--board", prof, "--proc", "zsh", "--duration", "1", "--output", out)
    line = one_error(r, prefix="error: ")
    assert "board gone" in line
    assert not out.exists()


def test_ssh_errors_from_any_layer_are_one_line():
    """Whatever layer lets a paramiko/socket error out, the CLI group and the Fabric tasks
    print one line: the net under the board layer."""
    import click
    from click.testing import CliRunner
    from invoke import Exit
    from paramiko.ssh_exception import NoValidConnectionsError, SSHException

    from sysdig_kit.cli import _Group
    from sysdig_kit.tasks._common import kit_errors

    errors = [SSHException("Error reading SSH protocol banner"),
              NoValidConnectionsError({("10.0.0.9", 22): ConnectionRefusedError(111, "refused")}),
              socket.gaierror(-2, "Name or service not known"), TimeoutError("timed out")]
    for exc in errors:
        @click.group(cls=_Group)
        def grp():
            pass

        @grp.command()
        def boom(exc=exc):
            raise exc

        r = CliRunner().invoke(grp, ["boom"])
        assert r.exit_code == 2 and r.exception is None or isinstance(r.exception, SystemExit)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("sysdig-kit: error: cannot reach the board")

        def task(exc=exc):
            raise exc

        with pytest.raises(Exit) as e:
            kit_errors(task)()
        assert e.value.code == 2 and "\n" not in e.value.message


# --- reading ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corrupt(tmp_path_factory):
    """gzip files whose damage lies past the first 4 KiB (the format is still detected)."""
    d = tmp_path_factory.mktemp("corrupt")
    out = {}
    for name, raw in (("scap", OLD.read_bytes()), ("txt", NEW_TXT.read_bytes())):
        g = gzip.compress(raw)
        n = len(g) * 6 // 10
        out[name] = d / f"corrupt.{name}.gz"
        out[name].write_bytes(g[:n] + bytes(200) + g[n + 200:])
    return out


@pytest.mark.parametrize("fmt", ["scap", "txt"])
@pytest.mark.parametrize("cmd", ["check", "replay-log"])
def test_corrupt_gzip_is_one_line(cmd, fmt, corrupt, tmp_path):
    out = tmp_path / "log.jsonl"
    args = ["-o", out] if cmd == "replay-log" else []
    line = one_error(kit(cmd, corrupt[fmt], *args))
    assert str(corrupt[fmt]) in line and ("gzip" in line or "CRC" in line)
    assert not out.exists()


def test_replay_log_into_a_missing_folder(tmp_path):
    line = one_error(kit("replay-log", OLD, "-o", tmp_path / "no-dir" / "x.jsonl"))
    assert line.startswith("sysdig-kit: error: cannot write") and "no such folder" in line


def test_check_manifest_missing_or_not_json(tmp_path):
    line = one_error(kit("check", OLD, "--manifest", tmp_path / "missing.json"))
    assert "no such file" in line
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2")
    line = one_error(kit("check", OLD, "--manifest", bad))
    assert "not JSON" in line
    bad.write_text("[1, 2]")
    assert "not a capture manifest" in one_error(kit("check", OLD, "--manifest", bad))
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"sysdig_stats": {"drops": 7}}))
    r = kit("check", OLD, "--manifest", good, "--json")
    assert r.returncode == 1 and json.loads(r.stdout)["manifest_drops"] == 7


@pytest.mark.parametrize("size", ["0", "-5"])
def test_batch_size_must_be_positive(size, tmp_path):
    out = tmp_path / "x.parquet"
    assert "--batch-size" in one_error(kit("convert", OLD, "-o", out, "--batch-size", size))
    assert "--batch-size" in one_error(kit("replay-log", OLD, "-o", out, "--batch-size", size))
    assert not out.exists()


def test_convert_writes_parquet_only(tmp_path):
    out = tmp_path / "out.csv"
    line = one_error(kit("convert", OLD, "-o", out))
    assert ".parquet" in line and not out.exists()


def test_info_top_cannot_be_negative():
    assert "--top" in one_error(kit("info", OLD, "--top", "-1"))
    assert kit("info", OLD, "--top", "0").returncode == 0


def test_truncated_capture_warns_in_one_clean_line(tmp_path):
    cut = tmp_path / "cut.scap"
    cut.write_bytes(OLD.read_bytes()[: OLD.stat().st_size // 2])
    r = kit("replay-log", cut, "-o", tmp_path / "log.parquet")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines and all(x.startswith("sysdig-kit: warning: ") for x in lines), r.stderr
    assert "UserWarning" not in r.stderr and "truncated capture" in r.stderr
    r = kit("convert", cut, "-o", tmp_path / "x.parquet")  # convert says it once, itself
    assert r.returncode == 0 and "UserWarning" not in r.stderr
    assert r.stderr.count("truncated capture") == 1


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_wrong_format_names_the_real_one(fmt):
    line = one_error(kit("info", OLD, "--format", fmt))
    assert f"format {fmt} given, but the file is a scap capture" in line


def test_text_with_colour_codes_or_bad_numbers_is_one_line(tmp_path):
    lines = NEW_TXT.read_text().splitlines(keepends=True)[:40]
    coloured = tmp_path / "colour.txt"
    coloured.write_text("".join("\x1b[32m" + x for x in lines))
    for cmd in ("info", "check"):
        assert "colour codes" in one_error(kit(cmd, coloured))
    assert "colour codes" in one_error(kit("info", coloured, "--format", "text"))
    kit_fmt = tmp_path / "kit.txt"  # the kit format with a colour code inside a number
    kit_fmt.write_text("SDKIT1\t1\t100\t0\t5\t5\t>\tread\t<NA>\tzsh\tfd=3\n"
                       "SDKIT1\t\x1b[31m2\t101\t0\t5\t5\t<\tread\t3\tzsh\tres=3 data=abc\n")
    for cmd in ("info", "check", "replay-log"):
        args = ["-o", tmp_path / "x.parquet"] if cmd == "replay-log" else []
        assert str(kit_fmt) in one_error(kit(cmd, kit_fmt, *args))


def test_deeply_nested_json_is_one_line(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text('{"evt.num":1,"evt.info":' + "[" * 100_000 + "]" * 100_000 + "}\n")
    for cmd in ("info", "check"):
        assert "nested too deeply" in one_error(kit(cmd, deep))


def test_out_of_memory_is_one_line(monkeypatch):
    """MemoryError (a length field taken on trust) in any read command: one line. Raised here
    by hand; tests/ of the fuzz campaign find the real ones."""
    import importlib

    from click.testing import CliRunner

    from sysdig_kit.cli import main

    rd = importlib.import_module("sysdig_kit.read")  # the package (sysdig_kit.read is read())

    def boom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(rd, "read", boom)
    monkeypatch.setattr(rd, "iter_batches", boom)
    from sysdig_kit.read.scap import ScapReader  # (the replay log reads its raw columns)

    monkeypatch.setattr(ScapReader, "iter_runs", classmethod(boom))
    for args in (["check", str(OLD)], ["replay-log", str(OLD), "-o", "/tmp/x.parquet"],
                 ["convert", str(OLD), "-o", "/tmp/x.parquet"]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.output.strip().splitlines() == [(
            f"sysdig-kit: error: {OLD}: cannot read it: out of memory (the input holds a "
            "length or count too large to be real, or is larger than memory: read it in "
            "batches, --batch-size)")]


# --- capture and run -------------------------------------------------------------------------


def test_juno_without_a_host_is_a_clear_error():
    line = one_error(kit("capture", "--dry-run", "--board", "juno", "--proc", "zsh"))
    assert "board juno has no host" in line and "juno.yaml" in line and "root@:" not in line


def test_fractional_duration_is_kept():
    r = kit("capture", "--dry-run", "--board", "local", "--proc", "zsh", "--duration", "0.3")
    assert r.returncode == 0 and "after 0.3 s" in r.stdout and "-M" not in r.stdout
    assert "--duration" in one_error(kit("capture", "--dry-run", "--board", "local",
                                         "--duration", "0"))


def test_run_exits_non_zero_when_every_run_failed(tmp_path):
    """The warm-up passes, every measured run fails: the results are written and the exit
    status says so (it was 0)."""
    mark = tmp_path / "ran-once"
    pb = tmp_path / "p.yaml"
    pb.write_text(f"name: flaky\nboard: local\nworkloads:\n"
                  f"  once: \"sh -c 'test ! -e {mark} && touch {mark}'\"\n"
                  "variants: [none]\nrepetitions: 2\nwarmup: 1\ntimeout: 30\n")
    r = kit("run", pb, "-o", tmp_path / "out")
    assert r.returncode == 1 and "Traceback" not in r.stderr  # stderr also has the progress
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("sysdig-kit: error: every run failed: 2 of 2 (first: once")
    assert (tmp_path / "out" / "results.csv").is_file()
