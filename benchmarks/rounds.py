"""Rotated rounds: every side in its own Python process, the order rotated each round, so that
a shared machine's load falls on all sides alike; medians and minima of CPU time and peak RSS.

A side is Python source run with `python3 -c SRC ARGS...` that prints one JSON line
{"cpu": s, "wall": s, "rss": bytes, "base": bytes, ...}; imports happen before its clock
starts (imports are not the work measured). Used by the scripts in this directory.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# What every side starts with: the clock and peak RSS after the imports.
PRELUDE = r"""
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
import pandas, pyarrow
def _rss():
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec, so a child would report its
    # parent's peak (the benchmark process holds big frames)
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))
def _done(**extra):
    print(json.dumps({"cpu": time.process_time() - _c, "wall": time.perf_counter() - _t,
                      "rss": _rss(), "base": _base, **extra}))
"""
START = "_base = _rss(); _t, _c = time.perf_counter(), time.process_time()\n"


def run_side(src: str, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", PRELUDE + src, *args], env=env,
                       capture_output=True, text=True, check=False)
    if r.returncode:
        raise SystemExit(f"side failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def rounds(sides: dict[str, tuple], n: int, log=print) -> dict[str, list[dict]]:
    """{side: [result per round]}; sides = {name: (src, *args)}; order rotated per round."""
    names = list(sides)
    out: dict[str, list[dict]] = {k: [] for k in names}
    for r in range(n):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            out[k].append(run_side(*sides[k]))
        log(f"  round {r + 1}/{n}: " + ", ".join(
            f"{k} {out[k][-1]['cpu']:.2f} s" for k in names))
    return out


def med(xs):
    return statistics.median(xs)


def summary(res: dict[str, list[dict]], base: str) -> list[str]:
    """Per side: median and min CPU, the ratio to `base` (per round, then median and min),
    peak RSS (median)."""
    lines = []
    for k, runs in res.items():
        cpu = [x["cpu"] for x in runs]
        ratio = [x["cpu"] / b["cpu"] for x, b in zip(runs, res[base])]
        rss = med([x["rss"] for x in runs]) / 1e6
        grown = med([x["rss"] - x["base"] for x in runs]) / 1e6
        extra = "" if k == base else f"  {k}/{base} CPU: median {med(ratio):.2f}, min {min(ratio):.2f}"
        lines.append(f"{k:>12}: CPU median {med(cpu):6.2f} s, min {min(cpu):6.2f} s; peak RSS "
                     f"{rss:6.0f} MB ({grown:.0f} MB over the imports){extra}")
    return lines


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
