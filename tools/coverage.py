#!/usr/bin/env python3
"""Syscall frequencies and replay flags of the coverage playbook's captures, per driver.

    sysdig-kit run playbooks/coverage.yaml -o out/coverage-stock   # stock driver deployed
    sysdig-kit run playbooks/coverage.yaml -o out/coverage-rc      # replay-complete deployed
    python3 tools/coverage.py out/coverage-stock out/coverage-rc [--json F]

Prints (markdown) per workload and run folder: syscall records, and how many are flagged
no_return_value / no_write_back / truncated_buffer; then every syscall with its count per
workload and, per run folder, its flagged records. Counts come from the replay log
(sysdig_kit.replay.build) of each capture (raw/<workload>/run*/<board>/capture.scap).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path

import pandas as pd

FLAGS = ("no_return_value", "no_write_back", "truncated_buffer")
WB = "write_back_bytes"  # records holding what the kernel wrote (a non-empty output buffer)
EMPTY = "write_back_empty"  # records that wrote back (by write_back.csv) and hold none of it


def logs(folder: Path):
    """(workload, replay log) of every measured capture of a playbook output folder."""
    from sysdig_kit.read import read
    from sysdig_kit.replay import build

    for cap in sorted(folder.glob("raw/*/run*/*/capture.scap")):
        if "warmup" in cap.parts[-3]:
            continue
        df = read(cap)
        yield cap.parts[-4], build(df, arch="arm64"), df.attrs.get("event_table")


def measure(folder: Path) -> dict:
    from sysdig_kit.replay import writeback

    per = defaultdict(lambda: {"records": Counter(), WB: Counter(), EMPTY: Counter(),
                               **{f: Counter() for f in FLAGS}})
    tables = set()
    for wl, log, table in logs(folder):
        tables.add(table)
        sc = log[log["kind"] == "syscall"]
        for name, flags, bufs, res in zip(sc["syscall"], sc["flags"], sc["buffers"], sc["res"]):
            res = None if pd.isna(res) else int(res)
            per[wl]["records"][name] += 1
            full = any(b["output"] and b["data"] for b in (bufs if bufs is not None else []))
            if full:
                per[wl][WB][name] += 1
            elif any(w.written(res) and w.type in writeback.BUFFER_TYPES
                     for w in writeback.of(name)) and res is not None:
                per[wl][EMPTY][name] += 1  # a NULL pointer, or a driver that did not copy it
            for f in FLAGS:
                if flags is not None and f in list(flags):
                    per[wl][f][name] += 1
    return {"tables": sorted(t for t in tables if t), "workloads": per}


def report(runs: dict[str, dict]) -> str:
    lines = []
    names = list(runs)
    wls = sorted({w for r in runs.values() for w in r["workloads"]})
    lines += ["| workload | " + " | ".join(f"{n}: records, no_return_value, no_write_back, "
                                            "truncated, with write-back bytes, write-back empty" for n in names) + " |",
              "|---|" + "---|" * len(names)]
    for w in wls:
        cells = []
        for n in names:
            d = runs[n]["workloads"].get(w)
            cells.append("—" if d is None else
                         f"{sum(d['records'].values())}, " + ", ".join(
                             str(sum(d[f].values())) for f in (*FLAGS, WB, EMPTY)))
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    lines.append("")
    first = runs[names[0]]["workloads"]
    total = Counter()
    for d in first.values():
        total.update(d["records"])
    lines += ["| syscall | all | " + " | ".join(wls) + " | " +
              " | ".join(f"{n}: nores/nowb/trunc/wb/empty" for n in names) + " |",
              "|---|---|" + "---|" * (len(wls) + len(names))]
    for name, count in total.most_common():
        per_wl = [str(first.get(w, {}).get("records", Counter()).get(name, 0)) for w in wls]
        flagged = []
        for n in names:
            ws = runs[n]["workloads"].values()
            flagged.append("/".join(str(sum(d[f].get(name, 0) for d in ws)) for f in (*FLAGS, WB, EMPTY)))
        lines.append(f"| {name} | {count} | " + " | ".join(per_wl) + " | " + " | ".join(flagged) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("folders", nargs="+", type=Path, help="playbook output folders")
    ap.add_argument("--json", type=Path, help="also write the counts as JSON")
    a = ap.parse_args()
    runs = {f.name: measure(f) for f in a.folders}
    for n, r in runs.items():
        print(f"{n}: event tables {', '.join(r['tables'])}")
    print(report(runs))
    if a.json:
        a.json.write_text(json.dumps({n: {"tables": r["tables"], "workloads": {
            w: {k: dict(v) for k, v in d.items()} for w, d in r["workloads"].items()}}
            for n, r in runs.items()}, indent=1))


if __name__ == "__main__":
    main()
