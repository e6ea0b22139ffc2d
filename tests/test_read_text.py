"""The text reader against the real sysdig: 0.29.3 (Debian) live on every public capture and the
old-era arm64 one, 0.41.4 (the sid chroot of tests/setup/20-sysdig-sid.sh) on the new-era one.

Also the oracle helpers used by tests/test_read_json.py and tests/test_cli_read.py.
Runtime: about 10 s (sysdig runs once per capture and format per session).
"""

from __future__ import annotations

import atexit
import base64
import functools
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pandas as pd
import pytest
from oracle import DATA

from sysdig_kit.errors import KitError
from sysdig_kit.read import read
from sysdig_kit.read.frame import check_frame
from sysdig_kit.read.text import KIT_FORMAT, KIT_SYSDIG_ARGS, TextReader, layouts

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = DATA / "public"
ARM64 = DATA / "arm64"
OLD_ERA = ARM64 / "old-era-zsh-s4096.scap"
NEW_ERA = ARM64 / "new-era-zsh-name.scap"
ORACLE_FMT = "*%evt.num %evt.rawtime %evt.cpu %thread.tid %evt.dir %evt.type %evt.rawres"
# sysdig 0.29.3 refuses this one (SHB block options); see captures/public/README.md
REFUSED_BY_0293 = {"libs__curl_google_comments.scap"}
PUBLIC_READ = sorted(p.name for p in PUBLIC.glob("*.scap") if p.name not in REFUSED_BY_0293)
CACHE = Path(os.environ.get("SYSDIG_KIT_TEST_OUT", "/tmp/sysdig-kit-test-oracle")) / str(os.getpid())
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)  # sysdig's outputs live one session


def _sid_root() -> Path:
    cache = os.environ.get("SYSDIG_KIT_CACHE", "/var/cache/sysdig-kit")
    root = Path(os.environ.get("SYSDIG_KIT_SYSDIG_NEW") or Path(cache, "sysdig-sid-root"))
    assert (root / "usr/bin/sysdig").exists(), f"no sysdig 0.41.4 chroot at {root}: run tests/run.sh"
    return root


@functools.cache
def sysdig_out(capture: Path, *args: str, new: bool = False) -> Path:
    """What `sysdig -r capture ARGS` prints (0.41.4 in the sid chroot if `new`), saved in a
    file; run once per session. Time zone UTC, so the default format's times are UTC."""
    assert shutil.which("sysdig") or new, "Debian's sysdig missing: run tests/run.sh"
    CACHE.mkdir(parents=True, exist_ok=True)
    out = CACHE / f"{capture.name}.{uuid.uuid4().hex[:8]}.out"
    env = dict(os.environ, TZ="UTC")
    if new:
        root = _sid_root()
        inside = f"/tmp/{uuid.uuid4().hex[:8]}-{capture.name}"
        shutil.copy(capture, root / inside.lstrip("/"))
        cmd = ["chroot", str(root), "sysdig", "-r", inside, *args]
    else:
        cmd = ["sysdig", "-r", str(capture), *args]
    with open(out, "wb") as f:
        r = subprocess.run(cmd, check=False, stdout=f, stderr=subprocess.PIPE, env=env, timeout=300)
    if new:
        (root / inside.lstrip("/")).unlink()
    assert r.returncode == 0, f"{cmd}: {r.stderr.decode()[-300:]}"
    return out


def oracle(capture: Path, new: bool = False, stored: Path | None = None) -> pd.DataFrame:
    """sysdig's own values per event (ORACLE_FMT), as a frame with the reader's column names."""
    path = stored or sysdig_out(capture, "-p", ORACLE_FMT, new=new)
    rows = [ln.split(" ") for ln in path.read_text().splitlines() if ln]
    cols = ["evt_num", "evt_rawtime", "evt_cpu", "thread_tid", "evt_dir", "evt_type", "evt_rawres"]
    df = pd.DataFrame(rows, columns=cols)
    for c in ("evt_num", "evt_rawtime", "evt_cpu", "thread_tid"):
        df[c] = df[c].astype("int64")
    df["evt_rawres"] = pd.array([None if v == "<NA>" else int(v) for v in df["evt_rawres"]],
                                dtype="Int64")
    return df


def assert_matches_oracle(df: pd.DataFrame, want: pd.DataFrame, times: bool = True):
    """Every event sysdig printed has a row with equal values, in the same order."""
    cols = ["evt_num", "evt_cpu", "thread_tid", "evt_dir", "evt_type", "evt_rawres"]
    cols += ["evt_rawtime"] if times else []
    got = df[cols].astype({"evt_dir": str, "evt_type": str, "evt_cpu": "int64"})
    exp = want[cols].astype({"evt_dir": str, "evt_type": str})
    assert len(got) == len(exp)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), exp.reset_index(drop=True))


def args_of(df: pd.DataFrame, i: int) -> dict:
    return {a["name"]: a["value"] for a in df["evt_args"].iloc[i]}


def utc_date(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%d")


# --- default format ------------------------------------------------------------------------


@pytest.mark.oracle
@pytest.mark.parametrize("name", PUBLIC_READ)
def test_default_text_matches_sysdig_0293(name):
    cap = PUBLIC / name
    want = oracle(cap)
    date = utc_date(int(want["evt_rawtime"].iloc[0])) if len(want) else None
    df = TextReader.read(sysdig_out(cap), date=date)
    check_frame(df)
    assert df.attrs["format"] == "text" and df.attrs["args_encoding"] == "text"
    assert_matches_oracle(df, want)


@pytest.mark.oracle
def test_old_era_arm64_text_matches_stored_oracle():
    df = TextReader.read(sysdig_out(OLD_ERA), date="2026-11-26")
    assert_matches_oracle(df, oracle(OLD_ERA, stored=ARM64 / "old-era-zsh-s4096.oracle.txt"))
    assert df.attrs["event_table"].startswith("scap-0.1.1dev")


def test_new_era_text_of_sysdig_0414_matches_its_oracle():
    df = TextReader.read(ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt", date="2026-11-26", tz="UTC")
    check_frame(df)
    assert_matches_oracle(df, oracle(NEW_ERA, stored=ARM64 / "new-era-zsh-name.oracle.txt"))
    assert df.attrs["event_table"] == "scap-0.23.2" and df.attrs["warnings"] == []


def test_values_with_spaces_split_by_the_event_layout():
    df = TextReader.read(ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt", date="2026-11-26")
    ex = df.index[(df["evt_type"] == "execve") & (df["evt_dir"] == "<")][0]
    a = args_of(df, ex)
    assert a["args"] == b"-c.echo hi > /tmp/x; cat /tmp/x; ls /; exit 3."
    assert a["exe_ino_ctime"] == b"2026-11-26 16:26:39.000000000"  # a time, with a space
    assert a["tid"] == b"365(zsh)" and a["filename"] == b"/usr/bin/zsh"
    names = [x["name"] for x in df["evt_args"].iloc[ex]]
    assert names[:4] == ["res", "exe", "args", "tid"] and len(names) == len(set(names)) > 25
    op = df.index[(df["evt_type"] == "openat") & (df["evt_dir"] == "<")][0]
    assert args_of(df, op)["dirfd"] == b"-100(AT_FDCWD)"


def test_text_oddities_process_names_with_spaces_and_lookalike_params():
    lines = [
        # a comm with spaces, and a read whose data holds " fd=" (0.41.4 layout: res data fd size)
        ("7 16:44:59.923398816 0 my zsh (365) < read res=11 data=x fd=bar y "
        "fd=3(<f>/tmp/a b) size=11"),
        "8 16:44:59.923398817 1 <NA> (-1) > switch next=0 pgft_maj=0 pgft_min=0",
        ("9 16:44:59.923398818 1 zsh (365) < openat fd=-2(ENOENT) dirfd=-100(AT_FDCWD) "
        "name=/no such flags=1(O_RDONLY) mode=0 dev=0 ino=0"),
        ("10 16:44:59.923398819 1 zsh (365) < brk res=AAAB17C29000 vm_size=1260 vm_rss=132 "
        "vm_swap=0 addr=0"),
    ]
    p = CACHE / "odd.txt"
    CACHE.mkdir(parents=True, exist_ok=True)
    p.write_text("\n".join(lines) + "\n")
    df = TextReader.read(p)
    assert list(df["proc_name"].astype(object).fillna("NA")) == ["my zsh", "NA", "zsh", "zsh"]
    assert df["thread_tid"].tolist() == [365, -1, 365, 365]
    assert args_of(df, 0) == {"res": b"11", "data": b"x fd=bar y", "fd": b"3(<f>/tmp/a b)",
                              "size": b"11"}
    assert args_of(df, 2)["name"] == b"/no such"
    assert df["evt_rawres"].tolist() == [11, pd.NA, -2, 0xAAAB17C29000]


def test_multiline_values_and_na_names():
    # the container event's JSON ends with a newline: one event over two lines
    df = TextReader.read(sysdig_out(PUBLIC / "falco__trace_files_psp_privileged.scap"))
    assert len(df) == 1 and df["evt_type"].iloc[0] == "container"
    assert args_of(df, 0)["json"].startswith(b'{"container":')
    df = TextReader.read(sysdig_out(PUBLIC / "falco__trace_files_psp_run_as_user_0_container.scap"))
    assert df["proc_name"].isna().any() and not (df["proc_name"] == "<NA>").any()


def test_dates_default_tz_and_midnight():
    p = CACHE / "midnight.txt"
    CACHE.mkdir(parents=True, exist_ok=True)
    p.write_text("1 23:59:59.900000000 0 zsh (5) > close fd=3\n"
                 "2 00:00:00.100000000 0 zsh (5) < close res=0\n")
    df = TextReader.read(p)
    assert df["evt_rawtime"].tolist() == [86_399_900_000_000, 86_400_100_000_000]
    assert "no date" in df.attrs["warnings"][0]
    df = TextReader.read(p, date="2026-11-26", tz="Europe/Paris")  # UTC+1 in November
    first = pd.Timestamp("2026-11-26 22:59:59.9", tz="UTC").value
    assert df["evt_rawtime"].tolist() == [first, first + 200_000_000]
    assert df.attrs["warnings"] == []
    start = TextReader.read(p, start=pd.Timestamp("2026-11-26 23:00", tz="UTC").value)
    assert start["evt_rawtime"].iloc[0] == pd.Timestamp("2026-11-26 23:59:59.9", tz="UTC").value
    with pytest.raises(KitError, match="YYYY-MM-DD"):
        TextReader.read(p, date="26/11/2026")
    with pytest.raises(KitError, match="time zone"):
        TextReader.read(p, date="2026-11-26", tz="Mars/Olympus")


def test_batches_continue_and_equal_the_whole_read():
    path = sysdig_out(PUBLIC / "sysdig-inspect__502Error.scap")
    whole = TextReader.read(path, date="2017-09-23")
    parts = list(TextReader.iter_batches(path, batch_size=1000, date="2017-09-23"))
    assert [len(b) for b in parts[:-1]] == [1000] * (len(parts) - 1)
    joined = pd.concat(parts, ignore_index=True)
    assert joined["evt_num"].tolist() == whole["evt_num"].tolist()
    assert joined["evt_rawtime"].tolist() == whole["evt_rawtime"].tolist()
    assert joined["evt_rawres"].equals(whole["evt_rawres"])
    new_txt = ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt"  # 1206 events: no empty tail batch
    assert [len(b) for b in TextReader.iter_batches(new_txt, batch_size=603)] == [603, 603]


def test_sniff():
    new_txt = (ARM64 / "new-era-zsh-name.sysdig-0.41.4.txt").read_bytes()[:4096]
    assert TextReader.sniff(new_txt)
    assert TextReader.sniff(b"SDKIT1\t1\t2\t0\t5\t5\t>\tclose\t<NA>\tzsh\tfd=3\n")
    assert not TextReader.sniff((ARM64 / "new-era-zsh-name.sysdig-0.41.4.json").read_bytes()[:99])
    assert not TextReader.sniff(OLD_ERA.read_bytes()[:4096])
    assert not TextReader.sniff(b"hello world\n")


# --- the kit's own format ------------------------------------------------------------------


def test_kit_format_constants():
    assert KIT_FORMAT.startswith("*SDKIT1\t") and "%evt.rawres" in KIT_FORMAT
    assert KIT_SYSDIG_ARGS == ("-b", "-p", KIT_FORMAT)


def _kit(cap: Path, new: bool = False) -> pd.DataFrame:
    return TextReader.read(sysdig_out(cap, *KIT_SYSDIG_ARGS, new=new))


@pytest.mark.oracle
@pytest.mark.parametrize("name", PUBLIC_READ)
def test_kit_format_round_trips_public(name):
    cap = PUBLIC / name
    df = _kit(cap)
    check_frame(df)
    assert_matches_oracle(df, oracle(cap))
    assert "no date" not in " ".join(df.attrs["warnings"])
    pids = sysdig_out(cap, "-p", "*%evt.num %proc.pid %proc.name").read_text().splitlines()
    want = [None if ln.split(" ", 2)[1] == "<NA>" else int(ln.split(" ", 2)[1]) for ln in pids]
    assert df["proc_pid"].astype(object).where(df["proc_pid"].notna(), None).tolist() == want


def _buffers(df, evt_type, name="data"):
    rows = df.index[(df["evt_type"] == evt_type) & (df["evt_dir"] == "<")]
    return [(int(df["evt_rawres"].iloc[i]), args_of(df, i)[name]) for i in rows]


@pytest.mark.oracle
def test_kit_format_buffers_are_the_captured_bytes_old_era():
    df = _kit(OLD_ERA)
    assert_matches_oracle(df, oracle(OLD_ERA, stored=ARM64 / "old-era-zsh-s4096.oracle.txt"))
    reads = _buffers(df, "read")
    elf = [b for res, b in reads if b.startswith(b"\x7fELF")]
    assert elf and all(len(b) == 832 for b in elf)  # -s 4096: whole 832-byte ELF headers
    assert all(len(b) == min(res, 4096) for res, b in reads if res >= 0)
    assert (b"hi\n") in [b for _, b in _buffers(df, "write")]  # echo hi > /tmp/x
    ex = df.index[(df["evt_type"] == "execve") & (df["evt_dir"] == "<")][0]
    assert args_of(df, ex)["args"] == b"-c\0echo hi > /tmp/x; cat /tmp/x; ls /; exit 3\0"


@pytest.mark.oracle
def test_kit_format_round_trips_new_era_with_sysdig_0414():
    df = _kit(NEW_ERA, new=True)
    want = oracle(NEW_ERA, new=True)
    assert_matches_oracle(df, want)
    assert_matches_oracle(df, oracle(NEW_ERA, stored=ARM64 / "new-era-zsh-name.oracle.txt"))
    assert df.attrs["event_table"] == "scap-0.23.2"
    reads = _buffers(df, "read")
    assert reads and all(len(b) == min(res, 80) for res, b in reads if res >= 0)  # snaplen 80
    ex = df.index[(df["evt_type"] == "execve") & (df["evt_dir"] == "<")][0]
    a = args_of(df, ex)
    assert a["args"] == b"-c\0echo hi > /tmp/x; cat /tmp/x; ls /; exit 3\0"
    assert b"SSH_CONNECTION=10.0.2.2 35430 10.0.2.15 22\0" in a["env"]  # whole, with spaces
    assert base64.b64encode(a["env"]).decode() in sysdig_out(
        NEW_ERA, *KIT_SYSDIG_ARGS, new=True).read_text()


@pytest.mark.oracle
@pytest.mark.parametrize("name", [*PUBLIC_READ, OLD_ERA.name, NEW_ERA.name])
def test_kit_format_buffers_equal_the_scap_bytes(name):
    """Every buffer parameter (PT_BYTEBUF: data, args, env, cgroups...) of the kit format reads
    back as exactly the bytes the native scap reader finds in the file."""
    cap = ARM64 / name if name in (OLD_ERA.name, NEW_ERA.name) else PUBLIC / name
    df = _kit(cap, new=cap == NEW_ERA)
    scap = read(cap).set_index("evt_num")["evt_args"]
    n = 0
    for num, typ, d, args in zip(df["evt_num"], df["evt_type"], df["evt_dir"], df["evt_args"]):
        bufs = {p[0] for lay in layouts(typ, d) for p in lay if p[1] == "PT_BYTEBUF"}
        if not bufs:
            continue
        raw = {a["name"]: a["value"] for a in scap.loc[num]}
        for a in args:
            if a["name"] in bufs:
                assert a["value"] == raw[a["name"]], (num, typ, a["name"])
                n += 1
    big = {"sysdig-inspect__502Error.scap", OLD_ERA.name, NEW_ERA.name}
    assert n > 50 or name not in big
