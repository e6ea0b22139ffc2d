"""Issue 13's proof on the emulated board: programs recorded with `capture -- CMD` replay from the
log alone in a changed world (stdout, stderr and exit status byte for byte), and recordings made
with the stock driver stop at the first syscall the log cannot restore, naming it.

Bounded for CI: the captures made with each driver are in tests/data/replay/ (made by
tools/replay_proof.py on this board; tests/data/README.md), so no driver switch is needed; the
replays run live on the board. When the deployed driver is replay-complete, one workload is also
captured and replayed live.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.board

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "replay"
CAPTURES = sorted(DATA.glob("*.scap"))


@pytest.fixture(scope="module")
def deployed(board):
    prof, _ = board
    subprocess.run(["fab", "deploy", "--board", prof.name], cwd=ROOT, check=True, timeout=900)
    return prof


def _replay(prof, scap: Path, tmp_path: Path):
    from sysdig_kit.replayer import host

    man = json.loads(Path(f"{scap}.manifest.json").read_text())
    argv = man["workload"]["argv"]
    log = host.to_jsonl(scap, tmp_path)
    rc, summary = host.replay_board(prof, log, argv, tmp_path / "s.json", timeout=300)
    out, err = host.replay_board.output
    return man["workload"], rc, summary, out, err


@pytest.mark.parametrize("scap", [c for c in CAPTURES if c.name.startswith("replay-complete")],
                         ids=lambda p: p.stem)
def test_replay_complete_recording_replays_byte_for_byte(deployed, scap, tmp_path):
    wl, rc, s, out, err = _replay(deployed, scap, tmp_path)
    assert s["outcome"] == "replayed" and rc == 0, s["report"]
    assert hashlib.sha256(out).hexdigest() == wl["stdout_sha256"], out[:300]
    assert hashlib.sha256(err).hexdigest() == wl["stderr_sha256"], err[:300]
    assert s["exit_status"] == wl["rc"]


@pytest.mark.parametrize("scap", [c for c in CAPTURES if c.name.startswith("stock")],
                         ids=lambda p: p.stem)
def test_stock_recording_stops_at_the_first_record_it_cannot_restore(deployed, scap, tmp_path):
    _, rc, s, _, _ = _replay(deployed, scap, tmp_path)
    assert rc == 1 and s["outcome"] == "cannot_restore"
    rep = s["report"]
    assert rep["recorded"]["syscall"] and rep["seq"] is not None and rep["evt_num"] is not None
    assert "no return value" in rep["detail"] or "lacks" in rep["detail"]


def test_a_different_command_diverges_on_the_board(deployed, tmp_path):
    from sysdig_kit.replayer import host

    scap = DATA / "replay-complete-date-uname-hostname.scap"
    log = host.to_jsonl(scap, tmp_path)
    rc, s = host.replay_board(deployed, log, ["sh", "-c", "uname -a; date"],
                              tmp_path / "s.json", timeout=300)
    assert rc == 1 and s["outcome"] == "divergence"
    assert s["report"]["last_matching"] and s["report"]["asked"]


def test_check_replay_folds_the_experiment_into_the_verdict(deployed, tmp_path):
    import sys

    for scap in CAPTURES[:1] + [c for c in CAPTURES if c.name.startswith("stock")][:1]:
        argv = json.loads(Path(f"{scap}.manifest.json").read_text())["workload"]["argv"]
        p = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "check", str(scap), "--json",
                            "--replay", "--board", deployed.name, "--", *argv],
                           capture_output=True, text=True, check=False, timeout=900)
        res = json.loads(p.stdout)  # CMD's own output went to stderr
        codes = {r["code"] for r in res["reasons"]}
        if res["replay"]["outcome"] == "replayed":
            assert "replayed" in codes
        else:
            assert res["verdict"] == "insufficient" and p.returncode == 1
            assert f"replay_{res['replay']['outcome']}" in codes
