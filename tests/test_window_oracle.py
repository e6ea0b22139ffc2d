"""Time and event-number windows select exactly the events the real sysdig selects for the
equivalent filter (`evt.rawtime>=A and evt.rawtime<B`, `evt.num>=A and evt.num<=B`), on a
capture of each era: on read(), on the replay log, and on the CLI (`show`, `replay-log`).

Offsets (`+250ms`) count from the frame's first event, which is the first event sysdig prints.
(sysdig's own `evt.reltime` counts from the first event libsinsp reads, which on the old-era
capture is one it consumes itself, 1.66 s earlier; on the new-era capture the two agree, which
the test checks against `evt.reltime`.)"""

from __future__ import annotations

import json

import oracle
import oracle_fields as of
import pandas as pd
import pytest
from click.testing import CliRunner

import sysdig_kit
from sysdig_kit.cli import main
from sysdig_kit.read.window import window
from sysdig_kit.replay import build

pytestmark = pytest.mark.oracle
CASES = [(of.OLD_ERA, "old"), (of.NEW_ERA, "new")]


def _nums(which, path, filt) -> set[int]:
    return {int(x) for x in oracle.run(which, str(path), "%evt.num", filt).split()}


def _bounds(df):
    t = df.evt_rawtime.to_numpy()
    t0, span = int(t.min()), int(t.max() - t.min())
    a, b = t0 + span // 5, t0 + 3 * span // 5
    n = df.evt_num.to_numpy()
    return t0, a, b, int(n[len(n) // 4]), int(n[len(n) // 2])


@pytest.mark.parametrize("path,which", CASES, ids=of.case_id)
def test_read_windows_equal_sysdig(path, which):
    df = of.frame(path)
    t0, a, b, n1, n2 = _bounds(df)
    want = _nums(which, path, f"evt.rawtime>={a} and evt.rawtime<{b}")
    assert 0 < len(want) < len(df)
    iso = lambda ns: str(pd.Timestamp(ns, unit="ns"))
    for since, until in [(a, b), (iso(a), iso(b)), (f"+{a - t0}ns", f"+{b - t0}ns"),
                         (pd.Timestamp(a, unit="ns"), pd.Timedelta(b - t0, unit="ns"))]:
        got = set(sysdig_kit.read(path, since=since, until=until).evt_num)
        assert got == want, (since, until, sorted(got ^ want)[:5])
    want_n = _nums(which, path, f"evt.num>={n1} and evt.num<={n2}")
    assert 0 < len(want_n) < len(df)
    assert set(sysdig_kit.read(path, evt_num=f"{n1}-{n2}").evt_num) == want_n
    assert set(sysdig_kit.read(path, evt_num=(n1, n2)).evt_num) == want_n
    # with a filter: both applied
    f = "evt.dir='<' and evt.rawres>=0"
    both = _nums(which, path, f"{f} and evt.rawtime>={a} and evt.rawtime<{b}")
    assert set(sysdig_kit.read(path, filter=f, since=a, until=b).evt_num) == both
    if which == "new":  # here libsinsp's first event is the frame's: offsets agree with reltime
        rel = _nums(which, path, f"evt.reltime>={a - t0} and evt.reltime<{b - t0}")
        assert set(sysdig_kit.read(path, since=f"+{a - t0}ns", until=f"+{b - t0}ns").evt_num) == rel


def _key(log) -> list[int]:
    """The event a record is numbered by: its exit, else its enter."""
    return log.evt_num.astype("Int64").fillna(log.enter_evt_num.astype("Int64")).astype(int).tolist()


@pytest.mark.parametrize("path,which", CASES, ids=of.case_id)
def test_replay_log_windows_equal_sysdig(path, which):
    """A log record is in a window when the event it is numbered by (its exit, else its
    enter) is: the records kept are those whose evt_num sysdig's filter keeps."""
    df = of.frame(path)
    log = build(df)
    t0, a, b, n1, n2 = _bounds(df)
    lognums = set(_key(log))
    want = _nums(which, path, f"evt.rawtime>={a} and evt.rawtime<{b}") & lognums
    got = window(log, since=a, until=b)
    assert 0 < len(got) < len(log)
    assert set(_key(got)) == want and len(got) == len(want)
    assert window(log, since=f"+{a - t0}ns", until=f"+{b - t0}ns").equals(got)
    want_n = _nums(which, path, f"evt.num>={n1} and evt.num<={n2}") & lognums
    assert set(_key(window(log, evt_num=f"{n1}-{n2}"))) == want_n


def _jkeys(out) -> set[int]:
    recs = [json.loads(ln) for ln in out.read_text().splitlines()]
    return {r["evt_num"] if r.get("evt_num") is not None else r["enter_evt_num"] for r in recs}


@pytest.mark.parametrize("path,which", CASES, ids=of.case_id)
def test_cli_windows_equal_sysdig(path, which, tmp_path):
    df = of.frame(path)
    t0, a, b, n1, n2 = _bounds(df)
    run = CliRunner().invoke
    r = run(main, ["show", str(path), "--no-pager", "-p", "%evt.num", "--since", f"+{a - t0}ns",
                   "--until", str(b), "evt.dir='<'"])
    assert r.exit_code == 0, r.output
    want = _nums(which, path, f"evt.dir='<' and evt.rawtime>={a} and evt.rawtime<{b}")
    assert {int(x) for x in r.output.split()} == want
    r = run(main, ["show", str(path), "--no-pager", "-p", "%evt.num", "--evt-num", f"{n1}-{n2}"])
    assert {int(x) for x in r.output.split()} == _nums(which, path, f"evt.num>={n1} and evt.num<={n2}")
    out = tmp_path / "w.jsonl"
    r = run(main, ["replay-log", str(path), "-o", str(out), "--since", f"+{a - t0}ns",
                   "--until", f"+{b - t0}ns"])
    assert r.exit_code == 0, r.output
    got = _jkeys(out)
    lognums = set(_key(build(df)))
    assert got == _nums(which, path, f"evt.rawtime>={a} and evt.rawtime<{b}") & lognums
    r = run(main, ["replay-log", str(path), "-o", str(out), "--evt-num", f"{n1}-{n2}"])
    got = _jkeys(out)
    assert got == _nums(which, path, f"evt.num>={n1} and evt.num<={n2}") & lognums
    r = run(main, ["replay-log", str(path), "-o", str(out), "--since", "yesterday-ish"])
    assert r.exit_code == 2 and "time window" in r.output
