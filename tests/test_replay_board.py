"""Issue 13's proof on the emulated board, live: record with `capture -- CMD` (the driver `fab
deploy` puts there), change the world (hostname, a new file in /etc, time, pids, random bytes),
replay on the board. With the replay-complete driver the demo's zsh script and the pipe of
random bytes must replay byte for byte (stdout, stderr, exit status); with the stock driver
every replay must stop at a record the log cannot restore, naming it. Bounded: three workloads
(tools/replay_proof.py runs all five and writes the README's table).
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
MUST_REPLAY = ("zsh-demo", "urandom-od")  # what replay-complete revision 1 already covers


@pytest.fixture(scope="module")
def proof(board, tmp_path_factory):
    import replay_proof

    prof, _ = board
    subprocess.run(["fab", "deploy", "--board", prof.name], cwd=ROOT, check=True, timeout=900)
    out = tmp_path_factory.mktemp("replay-proof")
    res = replay_proof.run(prof, out, only=[*MUST_REPLAY, "date-uname-hostname"])
    return prof, out, res


def test_each_replay_reproduces_the_run_or_names_what_the_log_lacks(proof):
    _, _, res = proof
    rows = {r["workload"]: r for r in res["workloads"]}
    assert len(rows) == 3
    for name, r in rows.items():
        assert r["records"] and r["records"] > 50, r
        if r["outcome"] == "replayed":
            assert r["stdout_identical"] and r["stderr_identical"], r
            assert r["replayed_rc"] == r["recorded_rc"], r
        else:  # never a silent difference: stopped, with the syscall named
            assert r["outcome"] == "cannot_restore" and r["replay_rc"] == 1, r
            assert r["stopped_at"]["syscall"] and r["stopped_at"]["evt_num"] is not None, r
        if res["kind"] == "replay-complete" and name in MUST_REPLAY:
            assert r["outcome"] == "replayed", r
        if res["kind"] == "stock":
            assert r["outcome"] == "cannot_restore", r
    zsh = rows["zsh-demo"]
    assert zsh["recorded_rc"] == 3 and "hi" in zsh["recorded_stdout"]


def test_a_different_command_diverges_on_the_board(proof, tmp_path):
    from sysdig_kit.replayer import host

    prof, out, res = proof
    log = out / f"{res['kind']}-zsh-demo.jsonl"
    rc, s = host.replay_board(prof, log, ["zsh", "-c", "echo ho > /tmp/x; cat /tmp/x; exit 3"],
                              tmp_path / "s.json", timeout=300)
    assert rc == 1 and s["outcome"] in ("divergence", "cannot_restore"), s
    if res["kind"] == "replay-complete":  # the write of "ho" where "hi" was recorded
        assert s["outcome"] == "divergence" and "write" in s["report"]["detail"], s["report"]
        assert s["report"]["last_matching"] and s["report"]["asked"]


def test_check_replay_folds_the_experiment_into_the_verdict(proof):
    prof, out, res = proof
    scap = out / f"{res['kind']}-urandom-od.scap"
    argv = json.loads(Path(f"{scap}.manifest.json").read_text())["workload"]["argv"]
    p = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "check", str(scap), "--json",
                        "--replay", "--board", prof.name, "--", *argv],
                       capture_output=True, text=True, check=False, timeout=900)
    result = json.loads(p.stdout)  # CMD's own output went to stderr
    codes = {r["code"] for r in result["reasons"]}
    if result["replay"]["outcome"] == "replayed":
        assert "replayed" in codes
    else:
        assert result["verdict"] == "insufficient" and p.returncode == 1
        assert f"replay_{result['replay']['outcome']}" in codes
