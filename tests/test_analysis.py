"""sysdig_kit.analysis on the two real arm64 captures shipped in notebooks/data (both eras),
and the strace reader on a real strace run. About 10 s."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure

import sysdig_kit
from sysdig_kit import analysis as A
from sysdig_kit.analysis.strace import read_strace
from sysdig_kit.errors import KitError
from sysdig_kit.read.frame import check_frame

DATA = Path(__file__).resolve().parent.parent / "notebooks" / "data"
OLD, NEW = DATA / "old-era-zsh-s4096.scap", DATA / "new-era-zsh-name.scap"
NON_SYSCALL = {"switch", "procexit", "signaldeliver", "drop"}


@pytest.fixture(scope="module", params=["old", "new"])
def cap(request):
    frame = sysdig_kit.read(OLD if request.param == "old" else NEW)
    return request.param, frame, A.replay_log(frame)


def test_counts_one_per_syscall_in_both_eras(cap):
    era, frame, log = cap
    c = A.counts(frame, "syscall")
    syscall_records = int((log["kind"] == "syscall").sum())
    assert c["count"].sum() == syscall_records
    # per thread and per process add up to the same total
    assert A.counts(log, "thread")["count"].sum() == syscall_records
    per_proc = A.counts(log, "process")
    assert per_proc["count"].sum() == syscall_records
    # the three `zsh -c` runs: three parent processes with the same count (their forked
    # children, before they exec, count on their own)
    sig = per_proc[per_proc["syscall"] == "rt_sigprocmask"]
    assert sig["count"].nlargest(3).nunique() == 1 and sig["proc_pid"].nunique() == len(sig)
    if era == "new":  # exit-only: one exit event per syscall, so the frame counts directly
        ev = frame[~frame["evt_type"].astype(str).isin(NON_SYSCALL)]
        direct = ev["evt_type"].astype(str).value_counts()
        assert c.set_index("syscall")["count"].to_dict() == direct.to_dict()
    else:  # enter+exit: a pair counts once
        assert c.set_index("syscall").loc["openat", "count"] == \
            int(((frame["evt_type"] == "openat") & (frame["evt_dir"] == "<")).sum())


def test_latency_is_exit_minus_enter_or_na():
    frame = sysdig_kit.read(OLD)
    lat = A.latency(frame)
    first_openat = lat[lat["syscall"] == "openat"].iloc[0]
    # enter evt 78 and exit evt 79 of the capture
    t = frame.set_index("evt_num")["evt_rawtime"]
    assert first_openat["latency_ns"] == t[79] - t[78] == 431328
    measured = lat["latency_ns"].dropna()
    assert len(measured) > 1000 and (measured >= 0).all()
    stats = A.latency_stats(lat).set_index("syscall")
    assert stats.loc["close", "measured"] == 144
    assert stats.loc["close", "p25_us"] <= stats.loc["close", "median_us"] <= stats.loc["close", "p75_us"]


def test_latency_exit_only_says_na_and_invents_nothing():
    lat = A.latency(sysdig_kit.read(NEW))
    assert lat["latency_ns"].isna().all()
    assert "no enter time" in lat.attrs["note"]
    stats = A.latency_stats(lat)
    assert (stats["measured"] == 0).all() and stats["median_us"].isna().all()
    fig = A.plots.latency(lat)
    texts = [t.get_text() for t in fig.texts + fig.axes[0].texts]
    assert any("exit-only" in t for t in texts)


def test_timeline_per_thread(cap):
    _, _frame, log = cap
    tl = A.timeline(log)
    assert tl["t_s"].min() == 0
    for _, g in tl.groupby("thread_tid"):
        assert g["start_ns"].is_monotonic_increasing
    assert tl["thread_tid"].nunique() == log["thread_tid"].nunique()


def test_files_and_sockets(cap):
    _era, frame, log = cap
    f = A.files(frame, log)
    paths = set(f["path"])
    assert {"/etc/ld.so.cache", "/tmp/x"} <= paths
    tmpx = f[(f["path"] == "/tmp/x") & (f["syscall"] == "openat")]
    # written by zsh three times (cat, which reads it, execs and leaves the proc.name filter)
    assert len(tmpx) == 3 and (tmpx["res"] >= 0).all()
    s = A.sockets(frame, log)
    assert len(s) == 6
    assert set(s["address"]) == {"/var/run/nscd/socket"} and set(s["family"]) == {"unix"}
    assert set(s["errno"]) == {"ENOENT"} and (s["res"] == -2).all()
    with pytest.raises(KitError):
        A.files(log)


def test_errors_by_errno(cap):
    _, _frame, log = cap
    e = A.errors(log).set_index("errno")
    sc = log[log["kind"] == "syscall"]
    assert e.loc["ENOENT", "count"] == int((sc["res"] == -2).sum())
    assert e.loc["ENOENT", "errno_num"] == 2
    by = A.errors(log, by_syscall=True)
    assert by["count"].sum() == e["count"].sum()


def test_sufficiency_table(cap):
    era, frame, log = cap
    s = A.sufficiency(frame)
    t = s.set_index("syscall")
    assert t["records"].sum() == int((log["kind"] == "syscall").sum())
    assert s.attrs["check"]["verdict"] == "insufficient"
    # rt_sigprocmask comes as a generic event without a return value in both drivers
    assert t.loc["rt_sigprocmask", "status"] == "not replayable"
    assert t.loc["rt_sigprocmask", "with_return_value"] == 0
    assert "no return value" in t.loc["rt_sigprocmask", "why"]
    assert t.loc["close", "status"] == "replayable"
    assert t.loc["close", "complete"] == t.loc["close", "records"] == 144
    assert (t["complete"] <= t["records"]).all()
    assert (t["with_complete_output"] <= t["with_output"]).all()
    if era == "new":  # default snaplen 80: 24 of 39 reads cut
        assert t.loc["read", "status"] == "partly"
        assert t.loc["read", "with_output"] - t.loc["read", "with_complete_output"] == 24
        assert "snaplen" in t.loc["read", "why"] and "-s" in t.loc["read", "remedy"]
    else:  # -s 4096: every read whole
        assert t.loc["read", "status"] == "replayable"


def test_plots_return_figures(cap):
    _, frame, log = cap
    for fig in (A.plots.counts(A.counts(log)), A.plots.timeline(A.timeline(log)),
                A.plots.errors(A.errors(log)), A.plots.sufficiency(A.sufficiency(frame)),
                A.plots.latency(A.latency(log))):
        assert isinstance(fig, Figure) and fig.axes


def _results():
    rows = []
    for variant, walls in (("none", [1.0, 1.1, 0.9, 1.0]), ("strace", [3.0, 2.0, 4.0, 3.0])):
        rows += [{"board": "b", "workload": "w", "variant": variant, "run": i + 1, "warmup": False,
                  "ok": True, "wall_s": x, "cpu_s": x / 2} for i, x in enumerate(walls)]
    rows.append({"board": "b", "workload": "w", "variant": "none", "run": 1, "warmup": True,
                 "ok": True, "wall_s": 50.0, "cpu_s": 1.0})
    return pd.DataFrame(rows)


def test_overhead_median_and_iqr():
    o = A.overhead(_results()).set_index("variant")
    assert o.loc["none", "slowdown_median"] == 1.0
    assert o.loc["strace", "slowdown_median"] == 3.0  # warm-up left out of the baseline
    assert o.loc["strace", "slowdown_q25"] == pytest.approx(2.75)
    assert o.loc["strace", "slowdown_q75"] == pytest.approx(3.25)
    assert o.loc["strace", "runs"] == 4
    assert isinstance(A.plots.overhead(_results()), Figure)
    with pytest.raises(KitError, match="not a playbook results table"):
        A.overhead(pd.DataFrame({"x": [1]}))


def test_bad_input_is_one_line_kiterror():
    with pytest.raises(KitError, match="level"):
        A.counts(sysdig_kit.read(NEW), "cpu")
    with pytest.raises(KitError, match="not an event frame"):
        A.counts(pd.DataFrame({"a": [1]}))


def test_strace_reader_on_a_real_run(tmp_path):
    out = tmp_path / "st.txt"
    subprocess.run(["strace", "-f", "-ttt", "-qq", "-o", str(out), "sh", "-c",
                    "cat /nonexistent-kit; ls / | wc -l"], capture_output=True, check=False)
    df = read_strace(out)
    check_frame(df)
    assert df.attrs["format"] == "strace"
    opens = df[(df["evt_type"] == "openat")]
    assert (opens["evt_rawres"] == -2).any()  # the ENOENT of /nonexistent-kit as -errno
    assert "wait4" in set(df["evt_type"].astype(str))  # resumed calls are kept
    assert A.errors(df).set_index("errno").loc["ENOENT", "count"] >= 1
    assert len(df["thread_tid"].unique()) >= 3  # sh, cat, ls, wc followed by -f


def test_strace_reader_unfinished_and_bad_lines(tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("10 1.000001 read(3,  <unfinished ...>\n"
                 "11 1.000002 brk(NULL) = 0x55d4e6b8e000\n"
                 "10 1.000003 <... read resumed>\"ab\", 2) = 2\n"
                 "10 1.000004 --- SIGCHLD {si_signo=SIGCHLD} ---\n"
                 "11 1.000005 exit_group(0) = ?\n"
                 "11 1.000006 +++ exited with 0 +++\n")
    df = read_strace(p)
    assert df["evt_type"].astype(str).tolist() == ["brk", "read", "exit_group"]
    assert df["evt_rawres"].tolist()[:2] == [0x55D4E6B8E000, 2]
    assert pd.isna(df["evt_rawres"].iloc[2])
    assert df["evt_rawtime"].tolist()[1] == 1_000_003_000
    p.write_text("10 1.0 read(3) = 1\nnot strace\n")
    with pytest.raises(KitError, match=r"s\.txt:2: not `strace"):
        read_strace(p)
