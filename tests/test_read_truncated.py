"""Truncated sysdig text and JSON (a copy cut short, a full disk, a killed `sysdig -r`): every
complete event is kept exactly as in the whole file, a cut last line is never read as an event
(it once gave `evt_type` "mpro" or wiped the previous event's evt_rawres), and the reader
warns, in df.attrs["warnings"] and as a Python warning, like the scap reader. ~5 s."""

from __future__ import annotations

import gzip
import random
import warnings
from pathlib import Path

import pandas as pd
import pytest

from sysdig_kit.read import iter_batches, read

ARM64 = Path(__file__).parent / "data" / "arm64"
OUTPUTS = ["new-era-zsh-name.sysdig-0.41.4.txt", "new-era-zsh-name.sysdig-0.41.4.json",
           "old-era-zsh-s4096.sysdig-0.29.3.txt.gz", "old-era-zsh-s4096.sysdig-0.29.3.json.gz"]
COLS = ["evt_num", "evt_rawtime", "thread_tid", "proc_pid", "evt_dir", "evt_type", "evt_rawres"]


def _raw(name: str) -> bytes:
    data = (ARM64 / name).read_bytes()
    return gzip.decompress(data) if name.endswith(".gz") else data


def _read_warned(path: Path) -> tuple[pd.DataFrame, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = read(path)
    return df, [str(w.message) for w in caught]


def _same_events(got: pd.DataFrame, whole: pd.DataFrame) -> None:
    want = whole.iloc[: len(got)].reset_index(drop=True)
    for c in COLS:
        assert got[c].astype(object).tolist() == want[c].astype(object).tolist(), c
    assert got["evt_args"].tolist() == want["evt_args"].tolist()


def _cuts(data: bytes, k: int = 12) -> list[int]:
    rng = random.Random(len(data))  # the same cuts every run
    nl = [i for i, b in enumerate(data) if b == 0x0A]
    # mid-line (the type name, the args), right after a newline, and right before one
    return sorted({*rng.sample(range(1, len(data) - 1), k), nl[5] + 1, nl[-2], nl[-1],
                   nl[len(nl) // 2] + 40})


@pytest.mark.parametrize("name", OUTPUTS)
def test_cut_output_keeps_every_complete_event_and_warns(name, tmp_path):
    data = _raw(name)
    whole = read(ARM64 / name)
    suffix = ".json" if ".json" in name else ".txt"
    for cut in _cuts(data):
        path = tmp_path / f"cut{suffix}"
        path.write_bytes(data[:cut])
        df, warned = _read_warned(path)
        complete = data[:cut].count(b"\n")  # sysdig prints one event per line
        mid_line = not data[:cut].endswith(b"\n")
        if suffix == ".json" and data[cut] == 0x0A:
            complete += 1  # only the newline is missing: the object itself is whole
            mid_line = False
        assert len(df) == complete, cut
        _same_events(df, whole)
        cut_warnings = [w for w in df.attrs["warnings"] if "cut" in w]
        assert len(cut_warnings) == mid_line, (cut, df.attrs["warnings"])
        assert len([w for w in warned if "cut" in w]) == mid_line
        if mid_line:
            assert f"kept the {complete:,} complete events" in cut_warnings[0]


@pytest.mark.parametrize("name", OUTPUTS[:2])
def test_cut_type_name_is_not_an_event(name, tmp_path):
    """The cut that made `mpro` and `fa` events: inside the last line's event type."""
    data = _raw(name)
    at = data.rindex(b" mprotect " if name.endswith(".txt") else b'"mprotect"')
    path = tmp_path / ("cut.json" if ".json" in name else "cut.txt")
    path.write_bytes(data[: at + 5])
    df, _ = _read_warned(path)
    assert "mpro" not in set(df["evt_type"].astype(str))
    assert df["evt_rawres"].iloc[-1] == read(ARM64 / name)["evt_rawres"].iloc[len(df) - 1]


def test_cut_found_after_the_last_full_batch_is_still_said(tmp_path):
    data = _raw(OUTPUTS[1])
    keep = data[: data.index(b"\n", len(data) // 2) + 1]
    path = tmp_path / "cut.json"
    path.write_bytes(keep + b'{"evt.cpu":0,"evt.di')
    n = keep.count(b"\n")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        frames = list(iter_batches(path, batch_size=n))  # the cut comes after a full batch
    assert sum(map(len, frames)) == n
    assert any("cut" in w for w in frames[-1].attrs["warnings"])


def test_cut_gzip_text_keeps_complete_lines(tmp_path):
    data = (ARM64 / OUTPUTS[2]).read_bytes()
    whole = read(ARM64 / OUTPUTS[2])
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    df, warned = _read_warned(path)
    assert 0 < len(df) < len(whole)
    _same_events(df, whole)
    assert any("ends early" in w for w in warned)
