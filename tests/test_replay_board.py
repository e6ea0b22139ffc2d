"""Issue 13's proof on the emulated board, live: record with `capture -- CMD` (the driver
`deploy` puts there: main's default, replay-complete), change the world (hostname, a new file in
/etc, time, pids, random bytes), replay on the board, compare stdout, stderr and exit status
byte for byte. Then a log replayed against another command must diverge at the first differing
syscall, and `check --replay` folds the experiment into its verdict.

All five workloads of the README's table (~6 min warm, board up and bundle cached): the demo's
zsh script (fork+exec, a pipe, SIGCHLD in rt_sigsuspend, `exit 3`), `ls -l /etc` (getdents64,
statx, readlink), `date; uname -a; cat /etc/hostname`, `head -c 16 /dev/urandom | od -x` and
the python3 one-liner (pid, time through the hidden vDSO, getrandom). What the stock driver
would have recorded of the same runs (`sysdig-kit export --stock`, byte for byte a stock
capture) must not replay: the replayer stops at the first syscall it cannot restore and names
it. `tools/replay_proof.py` runs them with either driver deployed, for the README's table.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.board

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
WORKLOADS = ("zsh-demo", "ls-etc", "date-uname-hostname", "urandom-od", "python3")


@pytest.fixture(scope="module")
def proof(board, tmp_path_factory):  # `board`: tests/conftest.py
    import replay_proof

    from sysdig_kit import deploy

    prof, _ = board
    deploy.deploy(prof, log=print)  # the default bundle (unchanged: nothing pushed)
    out = tmp_path_factory.mktemp("replay-proof")
    res = replay_proof.run(prof, out, only=list(WORKLOADS), timeout=120)
    return prof, out, res


def test_each_workload_replays_byte_for_byte_in_a_changed_world(proof):
    _, _, res = proof
    rows = {r["workload"]: r for r in res["workloads"]}
    assert set(rows) == set(WORKLOADS)
    for r in rows.values():
        assert r["records"] and r["records"] > 100, r
        if res["kind"] == "stock":  # the stock driver's log cannot restore: named, never silent
            assert r["outcome"] == "cannot_restore" and r["replay_rc"] == 1, r
            assert r["stopped_at"]["syscall"] and r["stopped_at"]["evt_num"] is not None, r
            continue
        assert r["outcome"] == "replayed" and r["replay_rc"] == 0, r
        assert r["replayed"] == r["records"], r
        assert r["stdout_identical"] and r["stderr_identical"], r
        assert r["replayed_rc"] == r["recorded_rc"], r
    zsh = rows["zsh-demo"]
    assert zsh["recorded_rc"] == 3 and zsh["recorded_stdout"] == "hi\n"
    # the world did change: the listing replayed is the recorded one, without the new file
    assert "sk-replay-new" not in rows["ls-etc"]["replayed_stdout"]


def test_a_different_command_diverges_on_the_board(proof, tmp_path):
    from sysdig_kit.replayer import host

    prof, out, res = proof
    log = out / f"{res['kind']}-zsh-demo.jsonl"
    rc, s = host.replay_board(prof, log, ["zsh", "-c", "echo ho > /tmp/x; cat /tmp/x; exit 3"],
                              tmp_path / "s.json", timeout=120)
    assert rc == 1 and s["outcome"] in ("divergence", "cannot_restore"), s
    if res["kind"] == "replay-complete":  # the write of "ho" where "hi" was recorded
        rep = s["report"]
        assert s["outcome"] == "divergence" and rep["recorded"]["syscall"] == "write", rep
        assert "b'ho\\n'" in rep["detail"] and "b'hi\\n'" in rep["detail"], rep
        assert rep["last_matching"] and rep["asked"]["syscall"] == "write"
        assert rep["evt_num"] is not None and rep["seq"] is not None
        assert host.replay_board.output[0] == b""  # stopped before the write


def test_check_replay_folds_the_experiment_into_the_verdict(proof):
    prof, out, res = proof
    scap = out / f"{res['kind']}-python3.scap"
    argv = json.loads(Path(f"{scap}.manifest.json").read_text())["workload"]["argv"]
    p = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "check", str(scap), "--json",
                        "--replay", "--board", prof.name, "--", *argv],
                       capture_output=True, text=True, check=False, timeout=600)
    result = json.loads(p.stdout)  # CMD's own output went to stderr
    codes = {r["code"] for r in result["reasons"]}
    if res["kind"] == "replay-complete":
        assert result["replay"]["outcome"] == "replayed" and "replayed" in codes, result
        assert p.returncode == 0, p.stderr[-2000:]
    else:
        assert result["verdict"] == "insufficient" and p.returncode == 1
        assert f"replay_{result['replay']['outcome']}" in codes


@pytest.mark.parametrize("workload", ["zsh-demo", "urandom-od"])
def test_what_the_stock_driver_records_stops_at_a_named_syscall(proof, workload, tmp_path):
    from sysdig_kit.replayer import host

    prof, out, res = proof
    if res["kind"] != "replay-complete":
        pytest.fail(f"the board's driver is {res['kind']}, not the default replay-complete")
    scap = out / f"replay-complete-{workload}.scap"
    argv = json.loads(Path(f"{scap}.manifest.json").read_text())["workload"]["argv"]
    stock, log = tmp_path / "stock.scap", tmp_path / "stock.jsonl"
    for cmd in (["export", str(scap), "--stock", "-o", str(stock)],
                ["replay-log", str(stock), "-o", str(log)]):
        subprocess.run([sys.executable, "-m", "sysdig_kit.cli", *cmd], check=True, timeout=300)
    rc, s = host.replay_board(prof, log, argv, tmp_path / "s.json", timeout=120)
    assert rc == 1 and s["outcome"] == "cannot_restore", s
    rep = s["report"]
    assert rep["recorded"]["syscall"] and rep["evt_num"] is not None, rep
    assert rep["last_matching"] is not None, rep
