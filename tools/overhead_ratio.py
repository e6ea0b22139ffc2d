#!/usr/bin/env python3
"""Overhead of one driver against another from overhead-driver playbook results.

    sysdig-kit run playbooks/overhead-driver.yaml -o out/od-stock-1   # stock driver deployed
    sysdig-kit run playbooks/overhead-driver.yaml -o out/od-rc-1      # replay-complete deployed
    ... (alternate blocks so that drift of the shared host hits both)
    python3 tools/overhead_ratio.py --stock out/od-stock-*/results.csv --patched out/od-rc-*/results.csv

Per workload: each capture run's slowdown = its wall time / the median wall time with no capture
of the same block (one playbook run), so each block is its own baseline. Then the ratio of the
patched driver's median slowdown to the stock one's, with a 95 % bootstrap interval (resampling
runs within each driver). When the interval still covers 1, the runs needed for it not to
(the interval's half-width shrinks as 1/sqrt(n)) are estimated.
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import pandas as pd


def slowdowns(paths: list[str]) -> pd.DataFrame:
    out = []
    for i, p in enumerate(paths):
        r = pd.read_csv(p)
        r = r[(r["ok"].astype(bool)) & (~r["warmup"].astype(bool))]
        base = r[r["variant"] == "none"].groupby("workload")["wall_s"].median()
        cap = r[r["variant"] != "none"].copy()
        cap["slowdown"] = cap["wall_s"] / cap["workload"].map(base)
        cap["block"] = i
        out.append(cap[["workload", "variant", "block", "wall_s", "slowdown", "drops"]])
    return pd.concat(out, ignore_index=True)


def boot_ratio(a: np.ndarray, b: np.ndarray, n: int = 5000, seed: int = 1) -> tuple[float, float, float]:
    """median(b)/median(a) and its 95 % bootstrap interval."""
    rng = np.random.default_rng(seed)
    ra = np.median(rng.choice(a, (n, len(a))), axis=1)
    rb = np.median(rng.choice(b, (n, len(b))), axis=1)
    r = rb / ra
    return float(np.median(b) / np.median(a)), float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stock", nargs="+", required=True, help="results.csv of stock-driver blocks")
    ap.add_argument("--patched", nargs="+", required=True, help="results.csv of patched-driver blocks")
    a = ap.parse_args()
    s, p = slowdowns(a.stock), slowdowns(a.patched)
    print("| workload | stock slowdown, median [q25–q75] (n) | patched slowdown | patched/stock, "
          "95 % interval | verdict |")
    print("|---|---|---|---|---|")
    for wl in sorted(set(s["workload"]) & set(p["workload"])):
        x, y = s[s["workload"] == wl]["slowdown"].to_numpy(), p[p["workload"] == wl]["slowdown"].to_numpy()
        ratio, lo, hi = boot_ratio(x, y)
        if lo > 1 or hi < 1:
            verdict = "different (interval excludes 1)"
        else:
            half, diff = (hi - lo) / 2, abs(ratio - 1)
            need = math.ceil(min(len(x), len(y)) * (half / diff) ** 2) if diff > 0 else None
            verdict = (f"not distinguishable; ~{need} runs per driver would resolve a "
                       f"{100 * diff:.0f} % difference" if need else "no difference at all")

        def q(v):
            return f"{np.median(v):.2f} [{np.quantile(v, .25):.2f}–{np.quantile(v, .75):.2f}] ({len(v)})"
        print(f"| {wl} | {q(x)} | {q(y)} | {ratio:.3f} [{lo:.3f}–{hi:.3f}] | {verdict} |")
    drops = int(s["drops"].fillna(0).sum() + p["drops"].fillna(0).sum())
    print(f"\ndrops in all capture runs: {drops}")


if __name__ == "__main__":
    main()
