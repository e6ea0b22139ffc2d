"""The native scap reader against the real sysdig, file by file, event by event.

Judges (tests/oracle.py): Debian's sysdig 0.29.3 for the enter/exit era, sysdig 0.41.4 (sid
chroot, tests/setup/20-sysdig-sid.sh) for exit-only captures and SHB options. Runtime: ~40 s
on 2 cores (the sysdig runs are cached for the session).
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import oracle
import pandas as pd
import pytest

from sysdig_kit.errors import KitError
from sysdig_kit.read import decode_args, eventtable, iter_batches, read
from sysdig_kit.read.frame import check_frame
from sysdig_kit.read.scap import ScapReader

DATA = oracle.DATA
PUBLIC = sorted((DATA / "public").glob("*.scap"))
ARM64 = sorted((DATA / "arm64").glob("*.scap"))
COMMENTS = DATA / "public" / "libs__curl_google_comments.scap"
OLD_READABLE = [p for p in PUBLIC if p != COMMENTS]
OLD_ERA = DATA / "arm64" / "old-era-zsh-s4096.scap"
NEW_ERA = DATA / "arm64" / "new-era-zsh-name.scap"
BIG = DATA / "public" / "sysdig-inspect__502Error.scap"

pytestmark = pytest.mark.oracle


def _ours(df: pd.DataFrame) -> pd.DataFrame:
    out = df[oracle.COLS].copy()
    for c in ("evt_num", "evt_rawtime", "evt_cpu", "thread_tid"):
        out[c] = out[c].astype("Int64")
    for c in ("evt_dir", "evt_type"):
        out[c] = out[c].astype(str)
    return out.reset_index(drop=True)


def _assert_rows_equal(want: pd.DataFrame, got: pd.DataFrame, what: str):
    """Every sysdig row has an equal row in ours, and ours has no extra rows."""
    want = want.reset_index(drop=True)
    assert len(got) == len(want), f"{what}: {len(got)} rows, sysdig printed {len(want)}"
    w, g = _text(want), _text(got)
    bad = np.flatnonzero((w != g).any(axis=1))
    assert not len(bad), f"{what}: row {bad[0]} differs: sysdig {list(w[bad[0]])} ours {list(g[bad[0]])}"


def _text(df: pd.DataFrame) -> np.ndarray:
    return df.astype("string").fillna("<NA>").to_numpy(dtype=object)


@pytest.fixture(scope="module")
def frames():
    cache: dict[Path, pd.DataFrame] = {}

    def get(path: Path) -> pd.DataFrame:
        if path not in cache:
            cache[path] = read(path)
        return cache[path]

    return get


@pytest.mark.parametrize("path", OLD_READABLE, ids=lambda p: p.name)
def test_public_capture_matches_sysdig_0_29(path, frames):
    df = frames(path)
    check_frame(df)
    assert df.attrs["format"] == "scap" and df.attrs["args_encoding"] == "scap"
    _assert_rows_equal(oracle.rows("old", str(path)), _ours(df), path.name)


def test_shb_options_read_like_the_same_capture_without_them(frames):
    """curl_google_comments = curl_google plus SHB options. 0.29.3 refuses it; 0.41.4 reads it
    (converting enter/exit pairs into exit-only events, so it numbers them differently)."""
    with pytest.raises(oracle.OracleError):
        oracle.run("old", str(COMMENTS))
    plain, opts = frames(DATA / "public" / "libs__curl_google.scap"), frames(COMMENTS)
    pd.testing.assert_frame_equal(opts, plain)
    new = oracle.rows("new", str(COMMENTS))
    keys = ["evt_rawtime", "evt_cpu", "thread_tid", "evt_type", "evt_rawres"]
    exits = _ours(opts)
    exits = exits[exits.evt_dir == "<"]
    as_text = lambda d: d.astype("string").fillna("<NA>")
    merged = as_text(new[new.evt_dir == "<"]).merge(as_text(exits), on=keys, how="left",
                                                    indicator=True)
    assert len(new) > 500 and (merged["_merge"] == "both").all(), merged[merged._merge != "both"]


def test_old_era_arm64_names(frames):
    df = frames(OLD_ERA)
    assert df.attrs["event_table"] == eventtable.OLD and df.attrs["arch"] == "arm64"
    assert (df.evt_type == "<unknown>").any()  # rseq: no ppm_sc code in the 2022 driver
    assert (df.evt_type == "newfstatat").any()  # libscap's name, not the driver enum's


@pytest.mark.parametrize("path", ARM64, ids=lambda p: p.name)
def test_arm64_matches_live_sysdig_and_stored_oracle(path, frames):
    """Any capture dropped into captures/arm64/ is judged by the live sysdig of its era
    (0.41.4 for exit-only captures, 0.29.3 for enter/exit ones) and by its stored oracle."""
    df = frames(path)
    ours = _ours(df)
    assert df.attrs["arch"] == "arm64"
    which = "new" if df.attrs["event_table"] == eventtable.NEW else "old"
    _assert_rows_equal(oracle.rows(which, str(path)), ours, f"{path.name} (live {which} sysdig)")
    if path.with_suffix(".oracle.txt").exists():
        _assert_rows_equal(oracle.stored_rows(path), ours, f"{path.name} (stored oracle)")
    if path == NEW_ERA:
        assert df.attrs["event_table"] == eventtable.NEW
        assert ours.evt_num.iloc[0] == 400  # 66 user/group + 333 procinfo events are numbered


@pytest.mark.parametrize("path", [*OLD_READABLE, *ARM64], ids=lambda p: p.name)
def test_proc_pid_and_name_match_sysdig(path, frames):
    df = frames(path)
    which = "new" if df.attrs["event_table"] == eventtable.NEW else "old"
    want = oracle.proc(which, str(path))
    got = df[["evt_num", "proc_pid", "proc_name", "evt_type"]]
    m = want.merge(got, on="evt_num", suffixes=("_sysdig", "_ours"))
    assert len(m) == len(want)
    m = m[m.evt_type.astype(str) != "container"]  # 0.29 names a container event's thread oddly
    sample = m.iloc[:: max(1, len(m) // 2000)]  # a sample: every row of small files
    pid_ok = sample.proc_pid_sysdig.fillna(-(2**62)) == sample.proc_pid_ours.fillna(-(2**62))
    name_ok = sample.proc_name_sysdig.fillna("<NA>") == sample.proc_name_ours.astype(object).fillna("<NA>")
    assert pid_ok.all() and name_ok.all(), sample[~(pid_ok & name_ok)].head()


def test_event_tables_cover_every_event_sysdig_lists():
    for cmd, name in ((["sysdig", "-L"], eventtable.OLD),
                      (["chroot", str(oracle.sid_root()), "sysdig", "-L"], eventtable.NEW)):
        listed = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        table = eventtable.load(name)
        have = {(e["dir"], e["name"], tuple((p["type"][3:].replace("DYN", "DYNAMIC"), p["name"])
                                             for p in e["params"])) for e in table.events}
        syscalls = set(table.ppm_sc.values())
        n = 0
        for ln in listed.splitlines():
            m = re.match(r"([<>]) (\S+)\((.*)\)\s*$", ln)
            if not m:
                continue
            n += 1
            params = tuple(tuple(p.strip().split(" ", 1)) for p in m.group(3).split(",") if p.strip())
            generic = params == (("SYSCALLID", "ID"), ("UINT16", "nativeID"))
            assert (m.group(1), m.group(2), params) in have or (generic and m.group(2) in syscalls), ln
        assert n > 250


def test_batches_concatenate_to_the_whole_read(frames, tmp_path):
    for path in (BIG, DATA / "public" / "falco__trace_files_psp_run_as_user_0_container.scap"):
        whole = frames(path)
        parts = list(iter_batches(path, batch_size=1000))
        assert len(parts) > 2 and all(len(p) <= 1000 for p in parts)
        joined = pd.concat(parts, ignore_index=True)
        for c in whole.columns:
            if c != "evt_args":
                assert joined[c].astype(str).tolist() == whole[c].astype(str).tolist(), c
        assert joined.evt_args.tolist() == whole.evt_args.tolist()


def test_batches_have_the_size_asked_across_chunks(monkeypatch):
    """iter_batches(batch_size=N): N rows in every batch but the last, whatever the chunks
    (the file decoded 64 KiB at a time here), each indexed from 0 with the evt_type categories
    it holds, as read() gives them; joined, they are read()'s frame, and read() in small
    chunks is read() in one."""
    from sysdig_kit.read import scap

    psp = DATA / "public" / "falco__trace_files_psp_run_as_user_0_container.scap"
    for path, n in ((BIG, 1000), (BIG, 3333), (BIG, 10**6), (psp, 997)):
        monkeypatch.setattr(scap, "CHUNK", 4 << 20)
        whole = read(path)
        monkeypatch.setattr(scap, "CHUNK", 64 << 10)
        small = read(path)
        pd.testing.assert_frame_equal(small, whole)  # (attrs differ: arch is read from the 1st chunk)
        parts = list(iter_batches(path, batch_size=n))
        assert [len(p) for p in parts[:-1]] == [n] * (len(parts) - 1)
        assert 0 < len(parts[-1]) <= n and (n > len(whole) or len(parts) > 2)
        for p in parts:  # (the last batch of a chunk's frame cut kept its offset and categories)
            assert p.index.equals(pd.RangeIndex(len(p)))
            assert list(p.evt_type.cat.categories) == sorted(set(p.evt_type.astype(str)))
        joined = pd.concat(parts, ignore_index=True)
        pd.testing.assert_frame_equal(joined.astype({"evt_type": str}),
                                      whole.astype({"evt_type": str}))
        assert parts[-1].attrs == small.attrs


def test_generic_events_and_decode_args(frames):
    df = frames(OLD_ERA)
    pe = df[df.evt_type == "procexit"]
    decoded = [dict(decode_args("procexit", ">", a, "scap")) for a in pe.evt_args]
    assert [d["status"] >> 8 for d in decoded] == [3, 3, 3]  # `exit 3`, three times
    ex = df[(df.evt_type == "execve") & (df.evt_dir == "<")].iloc[0]
    d = dict(decode_args("execve", "<", ex.evt_args, "scap"))
    assert d["res"] == 0 and d["exe"] == "zsh" and isinstance(d["args"], bytes)
    op = df[(df.evt_type == "openat") & (df.evt_dir == "<")].iloc[0]
    d = dict(decode_args("openat", "<", op.evt_args))
    assert d["fd"] == op.evt_rawres and isinstance(d["name"], str)


def test_more_parameters_than_the_table_knows_are_kept(frames):
    """A newer (or patched) driver appends parameters: they keep their bytes as arg<i>."""
    df = ScapReader.read(NEW_ERA, event_table=eventtable.OLD)
    assert df.attrs["event_table"] == eventtable.OLD
    ex = df[df.evt_type == "execve"].iloc[0]
    names = [a["name"] for a in ex.evt_args]
    known = len(eventtable.load(eventtable.OLD).params(293))
    assert names[:3] == ["res", "exe", "args"] and names[known] == f"arg{known}"
    assert len(names) == len(frames(NEW_ERA).evt_args.iloc[0])


def test_gzip_and_raw_read_alike(frames, tmp_path):
    raw = tmp_path / "raw.scap"
    with gzip.open(DATA / "public" / "libs__test_ipv6_client.scap") as f, open(raw, "wb") as out:
        shutil.copyfileobj(f, out)
    a, b = read(raw), frames(DATA / "public" / "libs__test_ipv6_client.scap")
    pd.testing.assert_frame_equal(a.drop(columns="evt_args"), b.drop(columns="evt_args"))
    assert a.evt_args.tolist() == b.evt_args.tolist()


def _cut(src: Path, dest: Path, at: int, gz: bool = False) -> None:
    data = src.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    data = data[:at]
    dest.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gzip"])
def test_truncated_capture_keeps_complete_events_and_warns(frames, tmp_path, gz):
    whole = frames(BIG)
    size = len(BIG.read_bytes())
    cut = tmp_path / "cut.scap"
    _cut(BIG, cut, size // 2 + 3, gz=gz)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        df = read(cut)
    assert any("bytes left over" in str(x.message) for x in w)
    assert len(df.attrs["warnings"]) == 1 and "bytes left over" in df.attrs["warnings"][0]
    assert 0 < len(df) < len(whole)
    head = whole.iloc[: len(df)]
    assert df.evt_num.tolist() == head.evt_num.tolist()
    assert df.evt_args.tolist() == head.evt_args.tolist()
    # a gzip stream cut short (not re-compressed) also reads, with a warning
    gzcut = tmp_path / "gzcut.scap"
    gzdata = (DATA / "public" / "falco__trace_files_cat_write.scap").read_bytes()
    gzcut.write_bytes(gzdata[: len(gzdata) // 2])
    with pytest.warns(UserWarning):
        part = read(gzcut)
    assert any("gzip stream truncated" in m for m in part.attrs["warnings"])


def test_not_a_capture_and_corruption_name_file_and_offset(tmp_path):
    junk = tmp_path / "junk.scap"
    junk.write_bytes(b"\x0a\x0d\x0d\x0a" + b"\xff" * 100)
    with pytest.raises(KitError, match=r"junk\.scap.*byte offset \d+"):
        ScapReader.read(junk)
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(KitError, match=r"notes\.txt.*byte offset 0"):
        ScapReader.read(text)
    # corrupt mid-way: break the length of an event block in the middle of the file
    data = bytearray(BIG.read_bytes())
    blocks, off = [], 0
    while off < len(data):
        blocks.append(off)
        off += int.from_bytes(data[off + 4: off + 8], "little")
    victim = blocks[len(blocks) // 2]
    data[victim + 4: victim + 8] = (7).to_bytes(4, "little")
    bad = tmp_path / "bad.scap"
    bad.write_bytes(bytes(data))
    with pytest.raises(KitError, match=rf"bad\.scap.*byte offset {victim}\b"):
        read(bad)


def test_parameter_values_match_sysdig_rawarg(frames):
    """Raw parameter bytes, decoded, equal what sysdig 0.41.4 prints for %evt.rawarg.X."""
    fmt = "*%evt.num |%evt.rawarg.fd|%evt.rawarg.name|%evt.rawarg.size|%evt.rawarg.dirfd|"
    text = oracle.run("new", str(NEW_ERA), fmt)
    want = {}
    for ln in text.splitlines():
        num, _, rest = ln.partition(" |")
        if num.isdigit():
            want[int(num)] = dict(zip(("fd", "name", "size", "dirfd"), rest.rstrip("|").split("|")))
    df = frames(NEW_ERA)
    checked = 0
    for row in df[df.evt_type.isin(["openat", "read", "close", "fstat"])].itertuples():
        got = dict(decode_args(row.evt_type, row.evt_dir, row.evt_args))
        for k, v in want[row.evt_num].items():
            if v != "<NA>" and k in got:
                assert str(got[k]) == v, (row.evt_num, k, got[k], v)
                checked += 1
    assert checked > 400


def test_capture_without_events_reads_as_an_empty_frame(tmp_path):
    shb = (DATA / "public" / "falco__empty.scap").read_bytes()
    length = int.from_bytes(shb[4:8], "little")
    empty = tmp_path / "shb-only.scap"
    empty.write_bytes(shb[:length])
    df = read(empty)
    check_frame(df)
    assert len(df) == 0 and df.attrs["format"] == "scap" and df.attrs["scap_version"] == "1.0"


@pytest.mark.parametrize("path", [BIG, NEW_ERA, DATA / "public" / "bencer__example5_httpd.scap"],
                         ids=lambda p: p.name)
def test_small_chunks_read_the_same(path, frames, monkeypatch):
    """The capture is decoded in chunks; blocks (and process lists larger than a chunk) cut
    by chunk boundaries must not change a thing."""
    monkeypatch.setattr(sys.modules[ScapReader.__module__], "CHUNK", 50_001)
    small, whole = read(path), frames(path)
    pd.testing.assert_frame_equal(small.drop(columns="evt_args"), whole.drop(columns="evt_args"))
    assert small.evt_args.tolist() == whole.evt_args.tolist()
    assert small.attrs == whole.attrs


def test_raw_runs_join_a_short_tail_batches_do_not():
    """iter_runs (the replay log's raw columns) lets a last run shorter than a quarter of the
    batch join the one before it; iter_batches keeps the batch size asked."""
    from sysdig_kit.read.scap import ScapReader

    path = DATA / "public" / "sysdig-inspect__502Error.scap"
    n = len(read(path))
    size = n // 2 - 100  # two full batches and a short tail of ~200 events
    assert 0 < n - 2 * size < size // 4
    runs = [sum(len(p.num) for p in parts) for parts, *_ in ScapReader.iter_runs(path, size)]
    assert runs == [size, n - size]
    assert [len(b) for b in iter_batches(path, batch_size=size)] == [size, size, n - 2 * size]
    size = n // 2 - 1000  # a tail of ~2000 (over a quarter): a run of its own
    runs = [sum(len(p.num) for p in parts) for parts, *_ in ScapReader.iter_runs(path, size)]
    assert runs == [size, size, n - 2 * size]
