#!/usr/bin/env python3
"""events() (column-wise) against the per-event decode_args loop, on the same events.

    python3 benchmarks/events_vs_decode_args.py [CAPTURE] [--repeat N]

The capture (default: tests/data/public/sysdig-inspect__502Error.scap) is concatenated N times
(default 20: ~190k events) so that per-call costs weigh as on a real capture; both sides decode
every event of the 8 most frequent types. CPU time (process_time) and wall time; events() best
of 5 and its first call (which also flattens the frame's evt_args once)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import sysdig_kit
from sysdig_kit.read import decode_args

DEFAULT = Path(__file__).resolve().parent.parent / "tests/data/public/sysdig-inspect__502Error.scap"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("capture", nargs="?", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=20)
    a = ap.parse_args()
    one = sysdig_kit.read(a.capture)
    df = pd.concat([one] * a.repeat, ignore_index=True)
    df.attrs = one.attrs
    types = df.evt_type.value_counts().index[:8].tolist()
    sub = df[df.evt_type.isin(types)]
    table = df.attrs["event_table"]
    c0, w0 = time.process_time(), time.perf_counter()
    for r in sub.itertuples():
        decode_args(r.evt_type, r.evt_dir, r.evt_args, table=table)
    loop_cpu, loop_wall = time.process_time() - c0, time.perf_counter() - w0
    runs = []
    for _ in range(6):
        c0, w0 = time.process_time(), time.perf_counter()
        n = sum(len(sysdig_kit.events(df, t)) for t in types)
        runs.append((time.process_time() - c0, time.perf_counter() - w0))
    first, best = runs[0], min(runs[1:])
    print(f"{n} events of {len(types)} types ({', '.join(map(str, types))})")
    print(f"decode_args loop : cpu {loop_cpu:.3f}s wall {loop_wall:.3f}s")
    print(f"events() first   : cpu {first[0]:.3f}s wall {first[1]:.3f}s  "
          f"-> {loop_cpu / first[0]:.1f}x cpu")
    print(f"events() best of 5: cpu {best[0]:.3f}s wall {best[1]:.3f}s  "
          f"-> {loop_cpu / best[0]:.1f}x cpu, {loop_wall / best[1]:.1f}x wall")


if __name__ == "__main__":
    main()
