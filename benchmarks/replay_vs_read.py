#!/usr/bin/env python3
"""The replay log and `check` against read() on the same capture, at 100k, 1M and 5M events.

Captures are built as read_vs_sysdig.py builds its big one (a real capture's event blocks
repeated, timestamps shifted; cached under $SYSDIG_KIT_CACHE/bench). Sides, each in its own
process, order rotated every round (benchmarks/rounds.py):

- read:       `sysdig_kit.read(CAP)`, the frame of docs/frame.md
- replay-log: `replay.build_file(CAP)`, what `sysdig-kit replay-log` builds (read + pairing +
              arguments + buffers + flags, batch by batch), the log frames consumed
- replay-log+write: the same written to Parquet (`replay.write_stream`), the whole CLI path
- check:      `replay.check_file(CAP)`, what `sysdig-kit check` runs, batch by batch

Goals (issue 14): replay log and check <= 2x the CPU of read(); peak RSS flat in capture size
(<= 400 MB at 5M events). Not a timed test: it prints numbers, it does not fail.

    python3 benchmarks/replay_vs_read.py                       # 100k, 1M, 5M; 5 rounds
    python3 benchmarks/replay_vs_read.py --events 1000000 --rounds 7
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_vs_sysdig import SOURCE, build_big
from rounds import START, load, rounds, summary

READ = r"""
from sysdig_kit.read import read, reader_for
reader_for(sys.argv[1])
""" + START + r"""
df = read(sys.argv[1])
_done(events=len(df), frame=int(df.memory_usage(deep=True).sum()))
"""

REPLAY = r"""
from sysdig_kit.replay import build_file
import sysdig_kit.replay.records, sysdig_kit.read.scap
""" + START + r"""
n = sum(len(log) for log in build_file(sys.argv[1]))
_done(records=n)
"""

REPLAY_WRITE = r"""
from sysdig_kit.replay import build_file, write_stream
import sysdig_kit.replay.records, sysdig_kit.read.scap
""" + START + r"""
_, n = write_stream(build_file(sys.argv[1]), sys.argv[2])
_done(records=n)
"""

CHECK = r"""
from sysdig_kit.replay import check_file
import sysdig_kit.replay.records, sysdig_kit.replay.check, sysdig_kit.read.scap
""" + START + r"""
r = check_file(sys.argv[1])
_done(verdict=r["verdict"], records=r["syscall_records"])
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--source", type=Path, default=SOURCE, help="the real capture to repeat")
    a = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {load()}")
    for n in a.events:
        cap, copies = build_big(a.source, n)
        print(f"\ncapture: {cap} ({cap.stat().st_size / 1e6:.0f} MB, {copies} copies of "
              f"{a.source.name})")
        with tempfile.TemporaryDirectory() as tmp:
            res = rounds({"read": (READ, str(cap)), "replay-log": (REPLAY, str(cap)),
                          "replay+write": (REPLAY_WRITE, str(cap), f"{tmp}/log.parquet"),
                          "check": (CHECK, str(cap))}, a.rounds)
        r = res["read"][0]
        print(f"events {r['events']:,}, frame {r['frame'] / 1e6:.0f} MB, records "
              f"{res['replay-log'][0]['records']:,}, check: {res['check'][0]['verdict']}")
        for line in summary(res, "read"):
            print(line)
        print(f"after: {load()}")


if __name__ == "__main__":
    main()
