"""Chrome trace event export: every event carries the fields the Trace Event Format documents
for its phase, one named track per thread, syscalls as complete events where the era has an
enter and an exit, instants otherwise; signals/drops/process exits as instants."""

from __future__ import annotations

import json

import oracle
import pytest

import sysdig_kit
from sysdig_kit.analysis.trace import chrome_trace, write_chrome_trace
from sysdig_kit.replay import build

DATA = oracle.DATA
OLD_ERA = DATA / "arm64" / "old-era-zsh-s4096.scap"
NEW_ERA = DATA / "arm64" / "new-era-zsh-name.scap"
BIG = DATA / "public" / "sysdig-inspect__502Error.scap"
# Trace Event Format: required keys per phase (X complete, i instant, M metadata)
REQUIRED = {"X": {"name", "ph", "ts", "dur", "pid", "tid"}, "i": {"name", "ph", "ts", "pid", "tid", "s"},
            "M": {"name", "ph", "pid", "tid", "args"}}


def _validate(trace: dict) -> dict[str, list]:
    assert set(trace) >= {"traceEvents"} and trace["displayTimeUnit"] in ("ms", "ns")
    by: dict[str, list] = {}
    for e in trace["traceEvents"]:
        assert e["ph"] in REQUIRED, e
        assert REQUIRED[e["ph"]] <= set(e), e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int)
        if e["ph"] != "M":
            assert isinstance(e["ts"], float | int) and e["ts"] >= 0
            assert isinstance(e.get("args", {}), dict)
        if e["ph"] == "X":
            assert e["dur"] >= 0
        if e["ph"] == "i":
            assert e["s"] in ("g", "p", "t")
        if e["ph"] == "M":
            assert e["name"] in ("process_name", "thread_name") and "name" in e["args"]
        by.setdefault(e["ph"], []).append(e)
    json.dumps(trace)  # serialisable as is
    return by


@pytest.mark.parametrize("path", [OLD_ERA, NEW_ERA, BIG], ids=lambda p: p.name)
def test_trace_validates_and_counts(path, tmp_path):
    df = sysdig_kit.read(path)
    log = build(df)
    sc = log[log.kind == "syscall"]
    by = _validate(chrome_trace(df))
    both = int((sc.enter_ts.notna() & sc.exit_ts.notna()).sum())
    assert len(by.get("X", [])) == both
    inst = [e for e in by.get("i", []) if e["cat"] == "syscall"]
    assert len(inst) == len(sc) - both
    threads = {e["tid"] for e in by["M"] if e["name"] == "thread_name"}
    assert threads == set(df.thread_tid.unique())
    signals = int(df.evt_type.astype(str).isin(["signaldeliver", "drop", "procexit"]).sum())
    assert len([e for e in by.get("i", []) if e["cat"] != "syscall"]) == signals
    out = write_chrome_trace(df, tmp_path / "t.json")
    _validate(json.loads(out.read_text()))


def test_era_decides_slices():
    old = _validate(chrome_trace(sysdig_kit.read(OLD_ERA)))
    new = _validate(chrome_trace(sysdig_kit.read(NEW_ERA)))
    assert len(old["X"]) > 1000  # enter/exit pairs: slices
    assert len(new.get("X", [])) < 10  # exit-only: instants
    assert any(e["cat"] == "signal" for e in new["i"])


def test_trace_from_a_replay_log():
    log = build(sysdig_kit.read(OLD_ERA))
    by = _validate(chrome_trace(log))
    assert len(by["X"]) > 1000 and any(e["cat"] == "procexit" for e in by["i"])


def test_interactive_timeline_is_self_contained_html(tmp_path):
    pytest.importorskip("plotly")
    from sysdig_kit.analysis.interactive import timeline_figure, timeline_html

    df = sysdig_kit.read(BIG)
    out = timeline_html(df, tmp_path / "t.html", max_threads=10)
    html = out.read_text()
    # plotly.js inlined, no <script src=...> to fetch: opens offline
    assert "<script" in html and "<script src=" not in html and len(html) > 1_000_000
    fig = timeline_figure(df, max_threads=10)
    n = df.thread_tid.nunique()
    assert f"{n - 10} quieter threads left out" in fig.layout.title.text
    assert "left out" not in timeline_figure(sysdig_kit.read(OLD_ERA)).layout.title.text


def test_static_timeline_says_how_many_threads_it_left_out():
    from sysdig_kit import analysis as A

    log = build(sysdig_kit.read(BIG))
    tl = A.timeline(log)
    n = tl.thread_tid.nunique()
    assert n > 30
    assert f"first 30 of {n} threads; {n - 30} left out" in A.plots.timeline(tl).axes[0].get_title()
    assert "left out" not in A.plots.timeline(tl, max_threads=n).axes[0].get_title()


def test_export_trace_cli(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "t.json"
    subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "export-trace", str(OLD_ERA), "-o",
                    str(out), "--since", "+100ms"], check=True, capture_output=True)
    by = _validate(json.loads(out.read_text()))
    assert by["X"]
    p = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", "export-trace",
                        str(tmp_path / "none.scap"), "-o", str(out)], capture_output=True,
                       text=True, check=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1
