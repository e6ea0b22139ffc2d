"""Patched (replay-complete) captures pick the patched event table by themselves; stock ones
read as before. Real captures from the emulated board (tests/data/README.md). ~3 s."""

from pathlib import Path

import sysdig_kit
from sysdig_kit.read import decode_args
from sysdig_kit.read.eventtable import NEW

DATA = Path(__file__).parent / "data"


def _exits(name):
    df = sysdig_kit.read(DATA / name)
    return df, df[df.evt_dir == "<"]


def test_patched_capture_reads_in_full():
    df, ex = _exits("replay-complete-zsh-s80.scap")
    assert df.attrs["event_table"] == "scap-0.23.2+replay-complete.1"
    assert len(ex) == 1119
    assert ex.evt_rawres.isna().sum() == 0  # every exit carries its return value
    row = ex[ex.evt_type == "rt_sigprocmask"].iloc[0]
    args = dict(decode_args(row.evt_type, row.evt_dir, row.evt_args, "scap",
                            table=df.attrs["event_table"]))
    assert {"res", "out"} <= set(args)
    assert len(args["out"]) in (0, 8)  # the old mask: a sigset_t on arm64, or none
    pid = ex[ex.evt_type == "getpid"].iloc[0]
    assert pid.evt_rawres == pid.proc_pid  # getpid() returns the process's own pid


def test_stock_capture_reads_as_before():
    df, ex = _exits("stock-0.23.2-zsh-s80.scap")
    assert df.attrs["event_table"] == NEW
    assert ex.evt_rawres.isna().sum() == 354  # the generic exits, as sysdig 0.41.4 prints them


def test_check_calls_the_patched_capture_sufficient_and_the_stock_one_not():
    import json
    import subprocess

    def check(name):
        r = subprocess.run(["sysdig-kit", "check", "--json", str(DATA / name)],
                           capture_output=True, text=True, timeout=120, check=False)
        return r.returncode, json.loads(r.stdout)

    rc, res = check("replay-complete-zsh-s4096.scap")
    assert (rc, res["verdict"]) == (0, "sufficient"), res
    rc, res = check("stock-0.23.2-zsh-s4096.scap")
    assert (rc, res["verdict"]) == (1, "insufficient")
    nores = next(x for x in res["reasons"] if x["code"] == "no_return_value")
    assert (nores["count"], nores["total"]) == (98, 304)


def test_batches_choose_the_table_for_the_whole_file(tmp_path):
    """iter_batches(batch_size=N) gives read()'s frame whatever N: the patched table is
    chosen from the file, not from the first batch (333 events hold no patched event)."""
    import subprocess
    import sys

    import pandas as pd

    from sysdig_kit.read import iter_batches
    from sysdig_kit.read.frame import ARGS_TYPE
    from sysdig_kit.replay.log import read as read_log

    path = DATA / "replay-complete-zsh-s80.scap"
    whole = sysdig_kit.read(path)
    for n in (333, 1000):
        parts = list(iter_batches(path, batch_size=n))
        assert len(parts) > 1
        assert {p.attrs["event_table"] for p in parts} == {whole.attrs["event_table"]}
        got = pd.concat(parts, ignore_index=True)
        for col in whole.columns:
            a, b = whole[col], got[col]
            if col in ("evt_type", "evt_dir"):
                a, b = a.astype(str), b.astype(str)
            elif a.dtype == pd.ArrowDtype(ARGS_TYPE):
                a, b = a.tolist(), b.tolist()
            assert list(a) == list(b), (n, col)
    logs = {}
    for n in ("333", "1000000"):
        out = tmp_path / f"{n}.parquet"
        r = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "replay-log", str(path),
                            "-o", str(out), "--batch-size", n], capture_output=True,
                           text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        logs[n] = read_log(out).sort_values(["thread_tid", "seq"]).reset_index(drop=True)
    assert logs["333"]["flags"].map(len).gt(0).sum() == 30  # not 483 (issue 10)
    pd.testing.assert_frame_equal(logs["333"], logs["1000000"])
