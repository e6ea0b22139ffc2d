#!/usr/bin/env python3
"""sysdig_kit.read() against the pipeline users have today: `sysdig -r BIG -p FMT | pandas`.

Builds a large real capture once (the event blocks of a real capture repeated, timestamps
shifted so time keeps going forward; sysdig still reads it), then runs each side in its own
Python subprocess and reports wall time, peak RSS (ru_maxrss) and the frame's memory
(`df.memory_usage(deep=True).sum()`). Both sides produce the same columns (the scalar ones of
docs/frame.md, plus the event's parameters: parsed raw values for read(), sysdig's evt.info
text for the pipeline); the script checks that the scalar columns agree.

    python3 benchmarks/read_vs_sysdig.py                  # 100k, 1M and 5M events, 5 rounds
    python3 benchmarks/read_vs_sysdig.py --events 1000000 --profile   # + where read()'s time goes

Each side runs in its own process, the order rotated every round (benchmarks/rounds.py);
medians and minima are printed, with `convert`'s events/s. Goals (issue 14): read() >= 5x the
pipeline's CPU speed, peak RSS <= 2x the frame at 1M and 5M; convert >= 500k events/s at 5M.
Not a timed test: it prints numbers, it does not fail.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import platform
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from rounds import START, load, med, rounds, run_side, summary

os.environ.setdefault("SYSDIG_KIT_CACHE", "/var/cache/sysdig-kit")  # the CI cache, not ~
from sysdig_kit.paths import cache_dir

SOURCE = ROOT / "tests" / "data" / "public" / "sysdig-inspect__502Error.scap"
# event block types (falcosecurity/libs scap_savefile.h): EV (cpu id, event) and EVF (cpu id,
# 32-bit flags, event), each in its old and current numbering; the event starts with its u64 ts.
EV_BLOCKS = {0x204: 2, 0x8010ABCD: 2, 0x216: 2, 0x221: 2, 0x208: 6, 0x217: 6, 0x222: 6}
FIELDS = ("evt.num", "evt.rawtime", "evt.cpu", "thread.tid", "proc.pid", "evt.dir", "evt.type",
          "evt.rawres", "proc.name", "evt.info")
PIPE_FMT = "*" + "\t".join("%" + f for f in FIELDS)
COMPARE = ["evt_num", "evt_rawtime", "evt_cpu", "thread_tid", "evt_dir", "evt_type", "evt_rawres"]


def _blocks(data: bytes):
    off = 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if blen < 12 or off + blen > len(data):
            raise SystemExit(f"{SOURCE}: bad block at byte {off}")
        yield btype, data[off : off + blen]
        off += blen


def build_big(source: Path, min_rows: int) -> tuple[Path, int]:
    """The source's event blocks repeated until the frame has >= min_rows rows (cached)."""
    from sysdig_kit.read import read

    rows = len(read(source))
    copies = -(-min_rows // rows)
    raw = source.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    tag = hashlib.sha1(raw).hexdigest()[:10]
    out = cache_dir("bench") / f"{source.stem}-{tag}-x{copies}.v2.scap"
    if out.exists():
        return out, copies
    blocks = list(_blocks(raw))
    ts = [struct.unpack_from("<Q", b, 8 + EV_BLOCKS[t])[0] for t, b in blocks if t in EV_BLOCKS]
    ts = [t for t in ts if t]  # a few events carry no time (0)
    shift = max(ts) - min(ts) + 1_000_000  # each copy starts 1 ms after the previous ends
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(raw)  # copy 0: the file as it is (header, machine, process, fd blocks...)
        for k in range(1, copies):
            for t, b in blocks:
                if t in EV_BLOCKS:
                    at = 8 + EV_BLOCKS[t]
                    old = struct.unpack_from("<Q", b, at)[0]
                    if old:  # untimed ones are container meta-events: once is enough
                        f.write(b[:at] + struct.pack("<Q", old + k * shift) + b[at + 8 :])
    os.replace(tmp, out)
    return out, copies


# Both sides import pandas & co. before the clock starts: imports are not reading.
READ_SIDE = r"""
from sysdig_kit.read import read, reader_for
reader_for(sys.argv[1])  # loads the reader modules
""" + START + r"""
df = read(sys.argv[1])
_done(frame=int(df.memory_usage(deep=True).sum()), rows=len(df))
if len(sys.argv) > 2:
    df[%(cols)r].to_parquet(sys.argv[2])
"""

PIPE_SIDE = r"""
import csv, subprocess
import pandas as pd
cols = ["evt_num", "evt_rawtime", "evt_cpu", "thread_tid", "proc_pid", "evt_dir", "evt_type",
        "evt_rawres", "proc_name", "evt_info"]
""" + START + r"""
p = subprocess.Popen(["sysdig", "-r", sys.argv[1], "-p", sys.argv[2]], stdout=subprocess.PIPE)
df = pd.read_csv(p.stdout, sep="\t", names=cols, header=None, quoting=csv.QUOTE_NONE,
                 na_values=["<NA>"], keep_default_na=False, on_bad_lines="skip",
                 dtype={"evt_num": "int64", "evt_rawtime": "int64", "evt_cpu": "int16",
                        "thread_tid": "int64", "proc_pid": "Int64", "evt_dir": "category",
                        "evt_type": "category", "evt_rawres": "Int64", "proc_name": "string",
                        "evt_info": "string"})
p.wait()
ch = resource.getrusage(resource.RUSAGE_CHILDREN)
_c -= ch.ru_utime + ch.ru_stime  # sysdig's CPU time counts too
_done(frame=int(df.memory_usage(deep=True).sum()), rows=len(df), sysdig_rss=ch.ru_maxrss * 1024)
if len(sys.argv) > 3:
    df[%(cols)r].to_parquet(sys.argv[3])
"""

CONVERT_SIDE = r"""
from sysdig_kit.read import iter_batches, reader_for
from sysdig_kit.read.frame import write_batches
reader_for(sys.argv[1])
""" + START + r"""
rows, _ = write_batches(iter_batches(sys.argv[1]), sys.argv[2])
_done(rows=rows)
"""

PROFILE_SIDE = r"""
import cProfile, pstats, sys
import pandas, pyarrow
from sysdig_kit.read import read, reader_for
reader_for(sys.argv[1])
cProfile.run("read(sys.argv[1])", sys.argv[2])
s = pstats.Stats(sys.argv[2])
s.sort_stats("tottime").print_stats(15)
s.sort_stats("cumulative").print_stats(25)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000],
                    help="rows at least, one capture per size (100k, 1M, 5M)")
    ap.add_argument("--source", type=Path, default=SOURCE, help="the real capture to repeat")
    ap.add_argument("--rounds", type=int, default=5, help="rotated rounds (medians and minima)")
    ap.add_argument("--profile", action="store_true", help="also cProfile read()")
    a = ap.parse_args()

    import pandas as pd

    print(f"machine: {platform.node()} {platform.machine()}, {load()}")
    for n in a.events:
        big, copies = build_big(a.source, n)
        print(f"\ncapture: {big} ({big.stat().st_size / 1e6:.1f} MB, {copies} copies of "
              f"{a.source.name})")
        with tempfile.TemporaryDirectory() as tmp:
            # once, outside the clock's rounds: both sides give the same rows
            run_side(READ_SIDE % {"cols": COMPARE}, str(big), f"{tmp}/ours.parquet")
            run_side(PIPE_SIDE % {"cols": COMPARE}, str(big), PIPE_FMT, f"{tmp}/pipe.parquet")
            x = pd.read_parquet(f"{tmp}/ours.parquet").astype({"evt_dir": str, "evt_type": str})
            y = pd.read_parquet(f"{tmp}/pipe.parquet").astype({"evt_dir": str, "evt_type": str})
            same = len(x) == len(y) and all(x[c].equals(y[c]) for c in COMPARE)
            res = rounds({"read()": (READ_SIDE % {"cols": COMPARE}, str(big)),
                          "pipeline": (PIPE_SIDE % {"cols": COMPARE}, str(big), PIPE_FMT),
                          "convert": (CONVERT_SIDE, str(big), f"{tmp}/conv.parquet")}, a.rounds)
        ours, pipe, conv = res["read()"], res["pipeline"], res["convert"]
        print(f"rows: read() {ours[0]['rows']:,}   pipeline {pipe[0]['rows']:,}   "
              f"scalar columns equal: {same}")
        speed = [p["cpu"] / o["cpu"] for o, p in zip(ours, pipe)]
        print(f"pipeline CPU / read() CPU: median {med(speed):.2f}, min {min(speed):.2f} "
              f"(goal >= 5)")
        rss = [o["rss"] / o["frame"] for o in ours]
        grown = [(o["rss"] - o["base"]) / o["frame"] for o in ours]
        print(f"read() peak RSS / frame: median {med(rss):.2f} ({med(grown):.2f} counting only "
              f"what reading added; frame {ours[0]['frame'] / 1e6:.0f} MB, peak "
              f"{med([o['rss'] for o in ours]) / 1e6:.0f} MB)")
        rate = [c["rows"] / c["wall"] for c in conv]
        print(f"convert: median {med(rate) / 1e3:.0f}k events/s wall (min "
              f"{min(rate) / 1e3:.0f}k), peak RSS {med([c['rss'] for c in conv]) / 1e6:.0f} MB")
        for line in summary(res, "read()"):
            print(line)
        print(f"after: {load()}")
    if a.profile:
        with tempfile.TemporaryDirectory() as tmp:
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            subprocess.run([sys.executable, "-c", PROFILE_SIDE, str(big), f"{tmp}/prof"],
                           env=env, check=True)


if __name__ == "__main__":
    main()
