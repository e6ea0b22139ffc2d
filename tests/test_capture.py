"""Capture command building: filters from options, validation, quoting, --dry-run.

The quoting tests run the exact script the board would run through a real /bin/sh here, with
a stand-in "sysdig" that records its argv: an evil value must arrive as one intact argument.
Runtime: ~2 s.
"""

import json
import shlex
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sysdig_kit import capture, profiles
from sysdig_kit.board import LocalConnection
from sysdig_kit.capture import Options, build_filter, sysdig_argv
from sysdig_kit.cli import main
from sysdig_kit.errors import KitError

EVIL = ["zsh; rm -rf /", "a'b", 'a"b', "$(reboot)", "`id`", "x\\y", "a b", "*", "-rf"]


def test_filters_from_options():
    assert build_filter(Options(proc="zsh")) == 'proc.name="zsh"'
    assert build_filter(Options(proc="zsh", follow_children=True)) == \
        '(proc.name="zsh" or proc.aname="zsh")'
    assert build_filter(Options(pid=42, follow_children=True)) == "(proc.pid=42 or proc.apid=42)"
    assert build_filter(Options(tid=7, evt_types=("openat", "write"))) == \
        "thread.tid=7 and evt.type in (openat, write)"
    assert build_filter(Options(proc="zsh", raw_filter="fd.num>2")) == \
        'proc.name="zsh" and (fd.num>2)'
    assert build_filter(Options()) == ""


def test_sysdig_argv():
    argv = sysdig_argv(Options(proc="zsh", snaplen=512, count=100, duration=2.4), "/tmp/o.scap",
                       "/opt/k/sysdig/bin/sysdig")
    # no -M: sysdig checks it only when a matching event arrives; the kit stops it itself
    assert argv == ["/opt/k/sysdig/bin/sysdig", "-v", "-s", "512", "-w", "/tmp/o.scap",
                    "-n", "100", 'proc.name="zsh"']


@pytest.mark.parametrize("value", EVIL)
def test_evil_names_are_refused(value):
    with pytest.raises(KitError):
        build_filter(Options(proc=value))
    with pytest.raises(KitError):
        build_filter(Options(evt_types=(value,)))


@pytest.mark.parametrize("bad", [{"pid": 0}, {"tid": -1}, {"snaplen": 0}, {"count": 0},
                                 {"duration": -1}, {"follow_children": True},
                                 {"raw_filter": "a\nb"}, {"raw_filter": "  "}])
def test_bad_options_are_refused(bad):
    with pytest.raises(KitError):
        Options(**bad).validate()


@pytest.mark.parametrize("value", EVIL)
def test_evil_filter_reaches_sysdig_as_one_argument(tmp_path, value):
    # A stand-in sysdig that dumps its argv as JSON into the capture file and exits 0, run
    # through the same background path a board uses (LocalConnection runs the board's sh).
    fake = tmp_path / "sysdig"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    "out = sys.argv[sys.argv.index('-w') + 1]\n"
                    "open(out, 'w').write(json.dumps(sys.argv[1:]))\n")
    fake.chmod(0o755)
    d = str(tmp_path / "work dir; $(touch pwned)")
    sd = capture.Sysdig(LocalConnection(), str(fake), work_dir=d)
    flt = f'fd.name="{value}"'
    sd.start(Options(raw_filter=flt))
    for _ in range(100):
        if not sd.poll()[0]:
            break
        time.sleep(0.05)
    rc, _ = sd.stop()
    assert rc == 0
    got = json.loads(Path(sd.out).read_text())
    assert got == sd.argv[1:]
    assert got[-1] == f"({flt})"
    assert not (tmp_path / "pwned").exists()


def test_dry_run_board_and_local():
    r = CliRunner().invoke(main, ["capture", "--proc", "zsh", "--follow-children", "--snaplen",
                                  "256", "--board", "qemu-arm64", "--dry-run"])
    assert r.exit_code == 0, r.output
    head, cmd = r.output.strip().splitlines()
    assert "qemu-arm64" in head and "127.0.0.1:2222" in head
    inst = profiles.load("qemu-arm64").install["dir"]
    assert shlex.split(cmd)[:4] == [f"{inst}/sysdig/bin/sysdig", "-v", "-s", "256"]
    assert shlex.split(cmd)[-1] == '(proc.name="zsh" or proc.aname="zsh")'
    r = CliRunner().invoke(main, ["capture", "--pid", "12", "--board", "local", "-o", "a b.scap",
                                  "--filter", "evt.type=open and fd.name contains \"x'y\"",
                                  "--dry-run"])
    assert r.exit_code == 0, r.output
    assert shlex.split(r.output) == ["sysdig", "-v", "-s", "4096", "-w", "a b.scap",
                                     "proc.pid=12 and (evt.type=open and fd.name contains \"x'y\")"]


def test_bad_input_is_one_line_error():
    r = CliRunner().invoke(main, ["capture", "--proc", "zsh; rm -rf /", "--dry-run"])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "error: --proc" in r.output
    assert "Traceback" not in r.output


def test_parse_stats():
    text = ("Driver Events:1206\nDriver Drops:0\nSuppressed by Comm:0\n"
            "Elapsed time: 0.052, Captured Events: 1206, 23192.31 eps\n")
    s = capture.parse_stats(text)
    assert s["driver_events"] == 1206 and s["driver_drops"] == 0
    assert s["suppressed_by_comm"] == 0 and s["captured_events"] == 1206
