"""Writes notebooks/0*.ipynb from the cell texts below, without outputs (as kept in git).

    python3 notebooks/make_notebooks.py

Edit the cells here rather than in Jupyter, so the notebooks stay reviewable as code. Each
notebook has a cell tagged `parameters` (papermill style) whose defaults are real files that
ship in notebooks/data/.
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parent
SETUP = """\
%matplotlib inline
import pandas as pd
import sysdig_kit
from sysdig_kit import analysis as A
from sysdig_kit.analysis import plots
pd.set_option("display.max_colwidth", 120)"""

OVERVIEW = [
    ("md", """\
# 01 · Capture overview

What a capture holds: processes and threads, the syscalls they made, how long they took,
the files and sockets they touched and the errors they got. Set `capture` (below) to any
`.scap`, sysdig text or JSON file; every table is a plain pandas frame to keep working on."""),
    ("param", """\
capture = "data/new-era-zsh-name.scap"   # real arm64 capture (emulated board, sysdig 0.41.4)"""),
    ("code", SETUP),
    ("code", """\
frame = sysdig_kit.read(capture)
log = A.replay_log(frame)
print(f"{capture}: {len(frame):,} events, {int((log['kind'] == 'syscall').sum()):,} syscalls, "
      f"{log['thread_tid'].nunique()} threads; format {frame.attrs['format']}, "
      f"arch {frame.attrs['arch']}, {log.attrs['era']} era")
for w in frame.attrs.get("warnings") or []:
    print("warning:", w)"""),
    ("md", "## Syscalls per process and thread"),
    ("code", """\
per_thread = A.counts(log, "thread")
(per_thread.groupby(["proc_pid", "proc_name"], dropna=False)
           .agg(threads=("thread_tid", "nunique"), syscalls=("count", "sum"))
           .sort_values("syscalls", ascending=False))"""),
    ("code", "A.counts(log, \"process\").head(15)"),
    ("code", "plots.counts(A.counts(log), title=f'syscalls in {capture}')"),
    ("md", """\
## Latency per syscall (exit − enter)
Captures from libs < 0.22 have an enter and an exit event per syscall; newer ones (exit-only)
have no enter time, so latency is NA there — not estimated."""),
    ("code", """\
lat = A.latency(log)
if "note" in lat.attrs:
    print(lat.attrs["note"])
A.latency_stats(lat).head(15)"""),
    ("code", "plots.latency(lat)"),
    ("md", "## Per-thread timeline"),
    ("code", "plots.timeline(A.timeline(log))"),
    ("md", "## Files and sockets touched"),
    ("code", """\
files = A.files(frame, log)
(files.groupby("path").agg(records=("syscall", "size"), syscalls=("syscall", lambda s: ", ".join(sorted(set(s)))),
                           failed=("errno", lambda e: int(e.notna().sum())))
      .sort_values("records", ascending=False).head(20))"""),
    ("code", "A.sockets(frame, log)"),
    ("md", "## Errors by errno"),
    ("code", "errs = A.errors(log)\nerrs"),
    ("code", "plots.errors(errs)"),
]

SUFFICIENCY = [
    ("md", """\
# 02 · Is the capture enough to replay?

For every syscall of the workload: how many records the replay log holds, how many carry a
return value, how many needed output (a buffer, or memory the kernel wrote back) and got it
complete. Then the answer: what can be replayed from the log, what cannot and why, and what to
change."""),
    ("param", """\
capture = "data/new-era-zsh-name.scap"   # real arm64 capture (emulated board, sysdig 0.41.4)
manifest = None                          # capture manifest with sysdig's drop counts, if any"""),
    ("code", SETUP),
    ("code", """\
frame = sysdig_kit.read(capture)
table = A.sufficiency(frame, manifest=manifest)
check = table.attrs["check"]
print(f"verdict: {check['verdict'].upper()} ({check['era']} era, {check['syscall_records']} "
      f"syscalls, {check['threads']} threads)")
table"""),
    ("code", "plots.sufficiency(table)"),
    ("md", "## The answer"),
    ("code", """\
ok = table[table["status"] == "replayable"]
part = table[table["status"] == "partly"]
bad = table[table["status"] == "not replayable"]
n = table["records"].sum()
print(f"Replayable from the log ({ok['records'].sum()} of {n} records, {len(ok)} syscalls):")
print("  " + ", ".join(ok["syscall"]))
print()
print(f"Not replayable ({bad['records'].sum()} records, {len(bad)} syscalls) and why:")
for r in bad.itertuples():
    print(f"  {r.syscall} ({r.records}): {r.why}")
print()
print(f"Partly replayable ({part['records'].sum()} records):")
for r in part.itertuples():
    print(f"  {r.syscall}: {r.complete} of {r.records} complete; {r.why}")
issues = table.attrs["capture_issues"]
print()
print("Capture-level problems (drops, lost events):", "none" if not issues else "")
for r in issues:
    print(f"  {r['code']}: {r['detail']}")"""),
    ("md", "## What to change"),
    ("code", """\
todo = {}
for r in table[table["status"] != "replayable"].itertuples():
    for fix in filter(None, r.remedy.split("; ")):
        todo.setdefault(fix, []).append(r.syscall)
for r in table.attrs["capture_issues"]:
    todo.setdefault(r["remedy"], []).append("(whole capture)")
print("What to change:")
for fix, names in todo.items():
    print(f"- {fix}\\n    for: {', '.join(names)}")
if not todo:
    print("- nothing: every syscall of this workload can be replayed from the log")"""),
]

OVERHEAD = [
    ("md", """\
# 03 · Capture overhead

Slowdown of the workload under each capture variant (sysdig at several snaplens, `strace -f`)
against no capture, from a playbook's results table (`sysdig-kit run playbooks/overhead.yaml`).
Every figure is the median over the repetitions with its interquartile range (q25–q75), never
a single run; warm-up runs are left out."""),
    ("param", """\
results = "data/overhead-qemu-arm64.results.csv"   # shipped: the EMULATED arm64 board, 3 runs each
# also shipped: "data/overhead-local.results.csv" (this x86_64 host, no capture and strace only)"""),
    ("code", SETUP),
    ("code", """\
r = pd.read_parquet(results) if str(results).endswith(".parquet") else pd.read_csv(results)
boards = sorted(r["board"].astype(str).unique())
print(f"{results}: {len(r)} runs on {', '.join(boards)}; variants {', '.join(r['variant'].unique())}")
for b in boards:
    if b == "local":
        print(f"board local: this machine (x86_64), not an arm64 board: these figures say how the "
              f"method works, not what capturing costs on the Juno, and are not Juno figures.")
    elif b != "juno":
        print(f"board {b}: an emulated board (QEMU); emulated-board figures are not Juno figures "
              f"(instructions run in software, the syscall/probe cost ratio differs).")
failed = r[~r["ok"].astype(bool)]
if len(failed):
    print(f"{len(failed)} failed runs left out:", failed[["workload", "variant", "error"]].to_dict("records"))"""),
    ("code", """\
o = A.overhead(r)
cols = ["board", "workload", "variant", "runs", "slowdown_median", "slowdown_q25", "slowdown_q75",
        "wall_median_s", "events_median", "drops_median", "capture_bytes_median"]
o[[c for c in cols if c in o.columns]].round(3)"""),
    ("code", "plots.overhead(r)"),
    ("md", "## Slowdown per variant (median [q25–q75]), as in the README"),
    ("code", """\
cell = o.assign(s=o.apply(lambda x: f"{x.slowdown_median:.2f} [{x.slowdown_q25:.2f}–{x.slowdown_q75:.2f}]", axis=1))
summary = cell.pivot_table(index=["board", "workload"], columns="variant", values="s", aggfunc="first")
summary"""),
]


def _nb(cells) -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for kind, text in cells:
        if kind == "md":
            nb.cells.append(nbf.v4.new_markdown_cell(text))
        else:
            c = nbf.v4.new_code_cell(text)
            if kind == "param":
                c.metadata["tags"] = ["parameters"]
            nb.cells.append(c)
    for i, c in enumerate(nb.cells):  # stable ids: no diff noise on regeneration
        c["id"] = f"cell-{i:02d}"
    return nb


NOTEBOOKS = {"01-capture-overview.ipynb": OVERVIEW, "02-replay-sufficiency.ipynb": SUFFICIENCY,
             "03-overhead.ipynb": OVERHEAD}

if __name__ == "__main__":
    for name, cells in NOTEBOOKS.items():
        nbf.write(_nb(cells), HERE / name)
        print(HERE / name)
