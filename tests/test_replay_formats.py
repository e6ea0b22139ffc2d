"""The replay log from sysdig's printed output (default text, -j JSON) of a capture equals the
one from the scap it was printed from, record by record: threads, order, syscalls, numbers,
return values, errno, pids, times, flags, every argument (numbers sysdig prints in hex read back
by their print format, the text's `<NA>` an absent string). Where the printed output holds less than the scap,
the difference is named here and nowhere else:
- sysdig prints `<unknown>` for a syscall its driver does not know, without the number the
  scap's generic event holds (so the scap names it, `named_from_nr`; the text cannot);
- the default text cuts buffers at sysdig's print length (80 bytes), so the captured length
  is unknown there (`captured_len` NA) and a buffer the scap holds whole can be cut in the
  text (`truncated_buffer`: the log lacks bytes); JSON prints data buffers whole.
Stored outputs: tests/data/README.md; the oracle tests print them again with the real sysdig.
Runtime: ~10 s.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from oracle import OLD_SYSDIG, sid_root

from sysdig_kit.read import read
from sysdig_kit.replay import build
from sysdig_kit.replay.check import check

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
ARM64 = DATA / "arm64"
PRINTED = [  # (scap, what a real sysdig printed for it)
    ("arm64/old-era-zsh-s4096.scap", "arm64/old-era-zsh-s4096.sysdig-0.29.3.txt.gz"),
    ("arm64/old-era-zsh-s4096.scap", "arm64/old-era-zsh-s4096.sysdig-0.29.3.json.gz"),
    ("arm64/new-era-zsh-name.scap", "arm64/new-era-zsh-name.sysdig-0.41.4.txt"),
    ("arm64/new-era-zsh-name.scap", "arm64/new-era-zsh-name.sysdig-0.41.4.json"),
]
KEYS = ("thread_tid", "seq", "kind", "syscall", "nr", "evt_num", "enter_evt_num", "enter_ts",
        "exit_ts", "res", "errno", "proc_pid", "proc_name", "flags", "args")


def _day(frame: pd.DataFrame) -> str:
    """The UTC date of the first event: the default text prints only the time of day."""
    return pd.Timestamp(int(frame["evt_rawtime"].iloc[0]), tz="UTC").date().isoformat()


def _plain(v):
    if isinstance(v, list | tuple | np.ndarray):
        return tuple(v)
    return None if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else v


def _records(log: pd.DataFrame) -> list[dict]:
    return [{k: _plain(r[k]) for k in KEYS} | {"buffers": list(r["buffers"])}
            for _, r in log.iterrows()]


def assert_same_records(scap_log: pd.DataFrame, printed_log: pd.DataFrame, cut: bool) -> int:
    """Every record equal, but for what the printed output cannot hold (module doc).
    Returns how many records differed in those allowed ways (so a test sees they are few)."""
    assert len(printed_log) == len(scap_log) > 0
    allowed = 0
    for want, got in zip(_records(scap_log), _records(printed_log), strict=True):
        want_bufs, got_bufs = want.pop("buffers"), got.pop("buffers")
        if "named_from_nr" in want["flags"] and got["syscall"] == "<unknown>":
            allowed += 1
            want.update(syscall="<unknown>", nr=None,
                        flags=tuple(f for f in want["flags"] if f != "named_from_nr"))
        # a printed buffer shorter than the kernel wrote: the log lacks bytes
        if cut and "truncated_buffer" not in want["flags"] and any(
                b["output"] and b["reported_len"] is not None
                and len(b["data"]) < b["reported_len"] for b in got_bufs):
            allowed += 1
            want["flags"] = want["flags"] + ("truncated_buffer",)
        assert got == want
        assert [b["name"] for b in got_bufs] == [b["name"] for b in want_bufs], want
        for w, g in zip(want_bufs, got_bufs, strict=True):
            assert (g["reported_len"], g["output"]) == (w["reported_len"], w["output"]), want
            known = w["output"] and not cut  # printed data buffers keep their length
            assert g["captured_len"] == (w["captured_len"] if known else None), want
    return allowed


def _read_printed(scap_frame: pd.DataFrame, printed: Path) -> pd.DataFrame:
    return read(printed, **({"date": _day(scap_frame)} if ".txt" in printed.name else {}))


@pytest.mark.parametrize(("scap", "printed"), PRINTED, ids=[p for _, p in PRINTED])
def test_printed_output_gives_the_scaps_records(scap, printed):
    frame = read(DATA / scap)
    text = _read_printed(frame, DATA / printed)
    assert text["proc_pid"].notna().all()  # learned from clone/execve exits (docs/frame.md)
    cut = ".txt" in printed
    assert text.attrs["buffers"] == ("printed_cut" if cut else "printed")
    allowed = assert_same_records(build(frame, arch="arm64"), build(text, arch="arm64"), cut)
    # old era: rseq, unknown to the 2022 driver (3), and -s 4096 reads the text cut (24)
    assert allowed == {"old-era": 3 + 24 * cut}.get(scap[6:13], 0)


@pytest.mark.parametrize(("scap", "printed"), PRINTED, ids=[p for _, p in PRINTED])
def test_check_judges_printed_output_like_the_scap(scap, printed):
    """`check` runs on printed output (it crashed on it) and counts what the scap counts;
    it adds that the buffers are sysdig's printing, not the bytes."""
    frame = read(DATA / scap)
    log = build(frame, arch="arm64")
    want = check(frame, log)
    r = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "check", str(DATA / printed),
                        "--arch", "arm64", "--json"], capture_output=True, text=True,
                       cwd=ROOT, timeout=120, check=False)
    assert r.returncode == 1 and r.stderr == "", r.stderr  # insufficient, no traceback
    got = json.loads(r.stdout)
    assert got["verdict"] == want["verdict"] == "insufficient"
    codes = {x["code"]: x for x in got["reasons"]}
    cut = ".txt" in printed  # the default text cannot tell a buffer cut at the snaplen
    for x in want["reasons"]:
        if x["code"] not in ("unknown_to_sysdig", "truncated_buffer" if cut else ""):
            assert codes[x["code"]]["count"] == x["count"], x["code"]
    wrote = log[log["buffers"].map(lambda bs: any(b["output"] for b in bs)).astype(bool)]
    assert codes["printed_buffers"]["count"] == len(wrote) > 10
    if "new-era" in scap or not cut:  # captured at -s 80: the text cuts no more than that
        assert got["per_thread"] == want["per_thread"]


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_replay_log_cli_on_printed_output(suffix, tmp_path):
    printed = ARM64 / "old-era-zsh-s4096.sysdig-0.29.3.json.gz"
    out = tmp_path / f"log{suffix}"
    r = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "replay-log", str(printed),
                        "-o", str(out), "--batch-size", "333"], capture_output=True,
                       text=True, cwd=ROOT, timeout=120, check=False)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert r.stdout.startswith(f"{out}: 1101 records, 9 threads")


# --- printed again by the real sysdig, now ---------------------------------------------------


def _sysdig(which: str, scap: Path, *args: str) -> str:
    if which == "old":
        cmd, tmp = [OLD_SYSDIG, "-r", str(scap), *args], None
    else:
        tmp = sid_root() / "tmp" / f"formats-{scap.name}"
        tmp.write_bytes(scap.read_bytes())
        cmd = ["chroot", str(sid_root()), "sysdig", "-r", f"/tmp/{tmp.name}", *args]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=300,
                              errors="surrogateescape").stdout
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)


@pytest.mark.oracle
def test_stored_old_era_output_is_what_sysdig_0293_prints():
    scap = ARM64 / "old-era-zsh-s4096.scap"
    for args, stored in (((), "txt"), (("-j",), "json")):
        got = _sysdig("old", scap, *args).encode("utf-8", "surrogateescape")
        want = gzip.decompress((ARM64 / f"old-era-zsh-s4096.sysdig-0.29.3.{stored}.gz")
                               .read_bytes())
        assert got == want, stored


@pytest.mark.oracle
@pytest.mark.parametrize("flag", ["", "-j"])
def test_sysdig_0414_output_of_a_board_capture(flag, tmp_path):
    """A capture sysdig-kit made on the board (new era, -s 4096), printed by sysdig 0.41.4."""
    scap = DATA / "stock-0.23.2-zsh-s4096.scap"
    out = tmp_path / ("out.json" if flag else "out.txt")
    out.write_text(_sysdig("new", scap, *([flag] if flag else [])),
                   errors="surrogateescape")
    frame = read(scap)
    assert_same_records(build(frame), build(_read_printed(frame, out), arch="arm64"),
                        cut=not flag)
