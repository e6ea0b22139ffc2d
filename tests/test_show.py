"""`sysdig-kit show` against `sysdig -r`: -p formats line for line, the default format's
match rate measured per capture (libsinsp state we do not replicate — the /proc scan's
command names, users, socket tuples — makes some lines differ; the floors pin what we reach)."""

from __future__ import annotations

import subprocess
import sys

import oracle
import pytest

import sysdig_kit
from sysdig_kit.read.show import lines

DATA = oracle.DATA
OLD_ERA = DATA / "arm64" / "old-era-zsh-s4096.scap"
NEW_ERA = DATA / "arm64" / "new-era-zsh-name.scap"
CAT = DATA / "public" / "falco__trace_files_cat_write.scap"
# (capture, judge, floor of the default format's exact-line match rate)
CASES = [(OLD_ERA, "old", 0.94), (NEW_ERA, "new", 0.92), (CAT, "old", 0.98)]

pytestmark = pytest.mark.oracle


def _rate(ours: list[str], want: list[str]) -> float:
    w = {ln.split(" ", 1)[0]: ln for ln in want}
    assert {ln.split(" ", 1)[0] for ln in ours} == set(w), "other events than sysdig's"
    return sum(w[ln.split(" ", 1)[0]] == ln for ln in ours) / max(len(want), 1)


@pytest.mark.parametrize("path,which,floor", CASES, ids=lambda x: getattr(x, "name", x))
def test_default_format_match_rate(path, which, floor):
    want = oracle.run(which, str(path), None).splitlines()
    rate = _rate(list(lines(sysdig_kit.read(path))), want)
    print(f"{path.name}: {rate:.1%} of {len(want)} lines equal sysdig -r's")
    assert rate >= floor


@pytest.mark.parametrize("path,which,floor", CASES, ids=lambda x: getattr(x, "name", x))
def test_p_format_equals_sysdig_line_for_line(path, which, floor):
    fmt = oracle.FMT + " %proc.name %proc.pid"
    want = oracle.run(which, str(path), fmt).splitlines()
    assert list(lines(sysdig_kit.read(path), fmt)) == want


def test_show_cli_filter_window_and_errors():
    filt = "proc.name=zsh and evt.type=openat and evt.rawres<0"
    cmd = [sys.executable, "-m", "sysdig_kit.cli", "show", str(NEW_ERA), filt]
    p = subprocess.run(cmd, capture_output=True, text=True, check=True)
    want = oracle.run("new", str(NEW_ERA), None, filt).splitlines()
    assert p.stdout.splitlines() and _rate(p.stdout.splitlines(), want) == 1.0
    p = subprocess.run([*cmd[:4], str(NEW_ERA), "-p", "%evt.num", "--evt-num", "500-520"],
                       capture_output=True, text=True, check=True)
    nums = [int(x) for x in p.stdout.split()]
    assert nums and min(nums) >= 500 and max(nums) <= 520
    p = subprocess.run([*cmd[:4], str(NEW_ERA), "fd.name=x"], capture_output=True, text=True,
                       check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "fd.name" in p.stderr
