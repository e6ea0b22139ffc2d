"""`sysdig-kit convert` and `sysdig-kit info`, run as a user runs them (a subprocess), on real
captures in every format, and on bad input (one line on stderr, exit status 2, no traceback,
nothing written). Runtime: about 25 s (each CLI run starts a Python).
"""

from __future__ import annotations

import gzip
import json
import os
import random
import subprocess
import sys

import pandas as pd
import pyarrow.parquet as pq
import pytest
from test_read_text import (
    ARM64,
    CACHE,
    NEW_ERA,
    PUBLIC,
    ROOT,
    assert_matches_oracle,
    oracle,
    sysdig_out,
)

from sysdig_kit.read import read
from sysdig_kit.read.frame import check_frame, read_parquet
from sysdig_kit.read.text import KIT_SYSDIG_ARGS

INSPECT = PUBLIC / "sysdig-inspect__502Error.scap"
CURL = PUBLIC / "libs__curl_google.scap"  # gzip-compressed


def kit(*args, check=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", *map(str, args)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300, check=False)
    if check is not None:
        assert r.returncode == check, r.stderr
    return r


@pytest.fixture(scope="module")
def work():
    d = CACHE / "cli"
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["scap", "text", "kit", "json"])
def test_convert_every_format(kind, work):
    if kind == "scap":
        src, kw, extra = INSPECT, {}, []
    elif kind == "text":
        src, kw, extra = sysdig_out(INSPECT), {"date": "2017-09-23"}, ["--date", "2017-09-23"]
    elif kind == "kit":
        src, kw, extra = sysdig_out(INSPECT, *KIT_SYSDIG_ARGS), {}, []
    else:
        src, kw, extra = sysdig_out(INSPECT, "-j"), {}, []
    out = work / f"{kind}.parquet"
    r = kit("convert", src, "-o", out, *extra, check=0)
    assert "9,478 events" in r.stdout and "Traceback" not in r.stderr
    back = read_parquet(out)
    check_frame(back)
    want = read(src, **kw)
    pd.testing.assert_frame_equal(back, want)
    assert back.attrs == want.attrs and back.attrs["source"] == str(src)
    assert_matches_oracle(back, oracle(INSPECT))
    plain = pd.read_parquet(out)  # plain pandas gets the nullable ints and attrs too
    assert str(plain["evt_rawres"].dtype) == "Int64" and plain.attrs["format"] == want.attrs["format"]
    assert not [p for p in work.iterdir() if p.name.startswith(f".{out.name}")]  # no temp left


@pytest.mark.oracle
@pytest.mark.parametrize("kind", ["scap", "text"])
def test_convert_in_batches(kind, work):
    """--batch-size: one row group per batch, the same frame as one read."""
    src = INSPECT if kind == "scap" else sysdig_out(INSPECT)
    extra = [] if kind == "scap" else ["--date", "2017-09-23"]
    out = work / f"batches-{kind}.parquet"
    kit("convert", src, "-o", out, "--batch-size", "1000", *extra, check=0)
    assert pq.ParquetFile(out).metadata.num_row_groups >= 10
    back = read_parquet(out)
    check_frame(back)
    want = read(src, **({"date": "2017-09-23"} if extra else {}))
    pd.testing.assert_frame_equal(back.astype({"evt_type": str}), want.astype({"evt_type": str}))
    assert back.attrs == want.attrs
    assert_matches_oracle(back, oracle(INSPECT))


def test_write_batches_fails_whole_when_a_later_batch_fails(tmp_path):
    """Batches are written by a second thread while the next is read: an error in a later
    batch (a write still pending) is the caller's error, and no file, partial or temporary,
    is left."""
    from sysdig_kit.errors import KitError
    from sysdig_kit.read import iter_batches
    from sysdig_kit.read.frame import write_batches

    def frames():
        for i, df in enumerate(iter_batches(INSPECT, batch_size=2000)):
            if i == 2:
                raise KitError("batch 3 is corrupt")
            yield df

    out = tmp_path / "x.parquet"
    with pytest.raises(KitError, match="batch 3"):
        write_batches(frames(), out)
    assert list(tmp_path.iterdir()) == []
    rows, _ = write_batches(iter_batches(INSPECT, batch_size=2000), out)
    assert rows == len(read(INSPECT)) == pq.ParquetFile(out).metadata.num_rows
    assert pq.ParquetFile(out).metadata.num_row_groups == -(-rows // 2000)


@pytest.mark.oracle
def test_info_summarises(work):
    want = oracle(INSPECT)
    r = kit("info", INSPECT, "--json", check=0)
    s = json.loads(r.stdout)
    assert s["format"] == "scap" and s["version"] == "1.0" and s["arch"] == "x86_64"
    assert s["events"] == len(want)
    assert s["cpus"] == sorted(want["evt_cpu"].unique().tolist())
    assert s["first_ns"] == want["evt_rawtime"].min() and s["last_ns"] == want["evt_rawtime"].max()
    top = want["evt_type"].value_counts()
    assert s["top_event_types"][0] == {"type": top.index[0], "events": int(top.iloc[0])}
    assert s["threads"] == want["thread_tid"].nunique()
    r = kit("info", INSPECT, check=0)
    for word in ("9,478", "scap 1.0", "time span", "CPUs", "processes", "top syscalls", "curl"):
        assert word in r.stdout, word
    r = kit("info", ARM64 / "new-era-zsh-name.sysdig-0.41.4.json", "--top", "3", "--json", check=0)
    s = json.loads(r.stdout)
    assert s["format"] == "json" and s["events"] == 1206 and len(s["top_event_types"]) == 3
    assert s["exits_without_res"] == int(oracle(
        NEW_ERA, stored=ARM64 / "new-era-zsh-name.oracle.txt").query("evt_dir == '<'")
        ["evt_rawres"].isna().sum())


def _bad_inputs(work):
    rnd = random.Random(7)
    (work / "random.bin").write_bytes(bytes(rnd.randrange(256) for _ in range(8192)))
    (work / "empty.scap").write_bytes(b"")
    (work / "cut.scap.gz").write_bytes(CURL.read_bytes()[:100])
    (work / "cut.txt.gz").write_bytes(gzip.compress(b"hello\n" * 1000)[:60])
    return {"missing": work / "no-such.scap", "random": work / "random.bin",
            "empty": work / "empty.scap", "truncated gzip": work / "cut.scap.gz",
            "truncated gzip text": work / "cut.txt.gz", "directory": work}


@pytest.mark.parametrize("case", ["missing", "random", "empty", "truncated gzip",
                                  "truncated gzip text", "directory"])
@pytest.mark.parametrize("cmd", ["convert", "info"])
def test_bad_input_is_one_line_and_exit_2(case, cmd, work):
    src = _bad_inputs(work)[case]
    out = work / f"bad-{cmd}.parquet"
    out.write_bytes(b"previous")
    r = kit(cmd, src, *(["-o", out] if cmd == "convert" else []), check=2)
    assert "Traceback" not in r.stderr and r.stdout == ""
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sysdig-kit: error: "), r.stderr
    assert str(src) in lines[0]
    assert out.read_bytes() == b"previous"  # nothing replaced, nothing half-written


@pytest.mark.oracle
def test_truncated_capture_keeps_complete_events(work):
    cut = work / "half.scap.gz"
    cut.write_bytes(CURL.read_bytes()[: CURL.stat().st_size // 2])
    out = work / "half.parquet"
    r = kit("convert", cut, "-o", out, check=0)
    assert "warning" in r.stderr and "Traceback" not in r.stderr
    df = read_parquet(out)
    want = oracle(CURL)
    assert 0 < len(df) < len(want) and df.attrs["warnings"]
    assert_matches_oracle(df, want.iloc[: len(df)])


def test_option_errors(work):
    r = kit("convert", INSPECT, "-o", work / "x.parquet", "--date", "2017-09-23", check=2)
    assert "--date/--tz apply to sysdig's text output only" in r.stderr
    r = kit("convert", INSPECT, "-o", work / "no-dir" / "x.parquet", check=2)
    assert r.stderr.startswith("sysdig-kit: error: cannot write") and "Traceback" not in r.stderr
    r = kit("convert", ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt", "-o", work / "t.parquet",
            "--date", "26 Nov", check=2)
    assert "YYYY-MM-DD" in r.stderr


def test_help_explains():
    top = kit("--help", check=0).stdout
    assert "convert" in top and "info" in top
    h = kit("convert", "--help", check=0).stdout
    for word in ("Parquet", "scap", "text", "JSON", "docs/frame.md", "--date", "atomically"):
        assert word in h, word
    h = kit("info", "--help", check=0).stdout
    for word in ("time span", "CPUs", "processes", "--json", "--top"):
        assert word in h, word
