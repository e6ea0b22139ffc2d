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
