"""The README's first command, as a user types it: `bash deploy/main.sh` on the emulated board.

It runs the setup steps (warm: seconds), `fab board-up`, `fab build deploy`, `fab demo`, then
the read and replay-log stages and `check`, whose exit status is the job's. The default build's
replay-complete driver makes the zsh session's log sufficient: exit 0 is the claim under test.
Warm (image and bundle cached, board up through the fixture): ~3 min.
"""

import json
import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.board
ROOT = Path(__file__).resolve().parent.parent


def test_main_job_ends_with_a_sufficient_log(board, tmp_path):  # `board`: tests/conftest.py
    # the checkout itself (its venv's editable install points here), the job's files in tmp
    env = dict(os.environ, SYSDIG_KIT_BOARD="qemu-arm64", SYSDIG_KIT_OUT=str(tmp_path))
    p = subprocess.run(["bash", "deploy/main.sh"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=1800, check=False)
    tail = (p.stdout + p.stderr)[-3000:]
    assert p.returncode == 0, f"deploy/main.sh exited {p.returncode}:\n{tail}"
    for name in ("zsh.scap", "zsh.scap.manifest.json", "zsh.parquet", "zsh.replay.parquet",
                 "zsh.replay.jsonl"):
        assert (tmp_path / name).is_file() and (tmp_path / name).stat().st_size > 0, name
    m = json.loads((tmp_path / "zsh.scap.manifest.json").read_text())
    assert m["workload"]["rc"] == 3  # the demo script's `exit 3`
    assert "replay-complete" in json.dumps(m["versions"])  # the default driver, not stock
    log = pd.read_parquet(tmp_path / "zsh.replay.parquet")
    assert len(log) > 100
    flagged = {f for fl in log["flags"] for f in fl}
    assert not flagged & {"no_return_value", "no_write_back", "truncated_buffer"}, flagged
