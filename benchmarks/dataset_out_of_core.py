"""The analysis tables on a dataset several times larger than the memory the query may use.

The dataset (cached under $SYSDIG_KIT_CACHE/bench, built once): the replay log of a real
capture (tests/data/public/sysdig-inspect__502Error.scap's events repeated ~106 times, ~1M
events, see read_vs_sysdig.py) converted by `sysdig_kit.analysis.dataset.add_capture` into one
partition, then copied into --partitions partitions (board=bench-0/1, capture=cNNN), each
copy's thread ids, pids and event numbers moved so that the copies are distinct threads.

Each query runs in its own process under an address-space limit (RLIMIT_AS, what `prlimit
--as` sets) with DuckDB's memory_limit, and reports wall/CPU time and peak RSS (VmHWM). The
pandas path (reading just the columns the same table needs into a frame) runs under the same
limit, to show it does not fit.

    python3 benchmarks/dataset_out_of_core.py                 # 100 partitions, ~48M records
    python3 benchmarks/dataset_out_of_core.py --partitions 20 --memory-limit 256MB
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from read_vs_sysdig import SOURCE, build_big
from rounds import PRELUDE, ROOT, START, load

from sysdig_kit.analysis import dataset
from sysdig_kit.paths import cache_dir

# Columns each table reads (DuckDB reads no other); the pandas side loads them into a frame.
QUERIES = {
    "counts(thread)": ("A.counts(ds, 'thread', **kw)",
                       ["kind", "proc_pid", "proc_name", "thread_tid", "syscall"]),
    "counts(syscall)": ("A.counts(ds, 'syscall', **kw)", ["kind", "syscall"]),
    "latency_stats": ("A.latency_stats(ds, **kw)", ["kind", "syscall", "enter_ts", "exit_ts"]),
    "errors": ("A.errors(ds, **kw)", ["kind", "errno", "syscall", "res"]),
    "sufficiency": ("A.sufficiency(ds, **kw)", ["kind", "syscall", "res", "has_output", "flags"]),
}

DUCK_SIDE = r"""
from sysdig_kit import analysis as A
import duckdb
ds, kw = sys.argv[1], json.loads(sys.argv[2])
""" + START + r"""
out = %(expr)s
_done(rows=len(out))
"""

PANDAS_SIDE = r"""
import pandas as pd
ds, cols = sys.argv[1], json.loads(sys.argv[2])
""" + START + r"""
try:
    df = pd.read_parquet(ds, columns=cols, dtype_backend="pyarrow")
    _done(rows=len(df), frame=int(df.memory_usage(deep=True).sum()))
except MemoryError:
    _done(error="MemoryError")
"""


# The same table on a Dask LocalCluster (workers are processes: their peak RSS is asked of them)
DASK_SIDE = r"""
from distributed import Client, LocalCluster
from sysdig_kit import analysis as A
ds, kw = sys.argv[1], json.loads(sys.argv[2])
def _hwm():
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmHWM:"))
with LocalCluster(n_workers=kw["workers"], threads_per_worker=1, processes=True,
                  memory_limit=kw["worker_memory"], dashboard_address=":0") as cl, \
        Client(cl) as client:
""" + START.replace("_base", "    _base").replace("_t, _c", "    _t, _c") + r"""
    out = %(expr)s
    workers = client.run(_hwm)
_done(rows=len(out), workers=sorted(workers.values()))
"""


def build_dataset(partitions: int) -> Path:
    big, _ = build_big(SOURCE, 1_000_000)
    root = cache_dir("bench") / f"dataset-{big.stem}-p{partitions}.v1"
    if (root / ".complete").exists():
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"building {root} (once) ...", flush=True)
    first, n = dataset.add_capture(root, big, "bench-0", "web", "c000")
    base = pq.read_table(first)
    meta = pq.read_schema(first).metadata
    for i in range(1, partitions):
        shift = i * 10_000_000  # far above any real tid/pid/event number of the source
        t = base
        for c in ("thread_tid", "proc_pid", "evt_num", "enter_evt_num"):
            t = t.set_column(t.schema.get_field_index(c), c, pc.add(t[c], shift))
        part = root / f"board=bench-{i % 2}" / "workload=web" / f"capture=c{i:03d}"
        part.mkdir(parents=True)
        pq.write_table(t.replace_schema_metadata(meta), part / dataset.FILE,
                       row_group_size=100_000)
    (root / ".complete").write_text(f"{partitions} partitions of {n} records\n")
    return root


def sizes(root: Path) -> dict:
    """On disk; records; uncompressed Parquet bytes of every column and per column."""
    files = dataset.files(root)
    disk = sum(f.stat().st_size for f in root.rglob("*.parquet"))
    md = pq.ParquetFile(files[0]).metadata
    per_col: dict[str, int] = {}
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for c in range(rg.num_columns):
            col = rg.column(c)
            name = col.path_in_schema.split(".")[0]
            per_col[name] = per_col.get(name, 0) + col.total_uncompressed_size
    k = len(files)
    # Arrow's in-memory size of each column (one partition measured, times the partitions)
    t = pq.read_table(files[0])
    arrow = {c: t[c].nbytes * k for c in t.column_names}
    return {"files": k, "records": md.num_rows * k, "disk": disk,
            "uncompressed": {c: v * k for c, v in per_col.items()}, "arrow": arrow}


def run(src: str, args: list[str], as_limit: int | None) -> dict:
    def limit():
        if as_limit:
            resource.setrlimit(resource.RLIMIT_AS, (as_limit, as_limit))

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-c", PRELUDE + src, *args], env=env,
                       capture_output=True, text=True, check=False, preexec_fn=limit)
    lines = r.stdout.strip().splitlines()
    if r.returncode or not lines:
        tail = (r.stderr.strip().splitlines() or ["?"])[-1]
        return {"error": f"rc {r.returncode}: {tail[:200]}"}
    return json.loads(lines[-1])


def _bytes(text: str) -> int:
    for unit, m in {"GiB": 2**30, "MiB": 2**20, "GB": 10**9, "MB": 10**6}.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * m)
    return int(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--memory-limit", default="512MB", help="DuckDB's memory_limit")
    ap.add_argument("--as-limit", default="2GiB",
                    help="RLIMIT_AS of each query process (prlimit --as); 0: none")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=list(QUERIES))
    ap.add_argument("--no-pandas", action="store_true", help="skip the pandas side")
    ap.add_argument("--dask", default=None, metavar="WORKERSxMEMORY",
                    help="instead of DuckDB, a Dask LocalCluster, e.g. 2x768MiB")
    ap.add_argument("--pandas-capped", action="store_true",
                    help="also run the pandas side under the RLIMIT_AS")
    a = ap.parse_args()
    as_limit = _bytes(a.as_limit)
    root = build_dataset(a.partitions)
    s = sizes(root)
    print(f"dataset {root}: {s['files']} partitions, {s['records']:,} records, "
          f"{s['disk'] / 1e9:.2f} GB on disk, {sum(s['uncompressed'].values()) / 1e9:.1f} GB "
          f"uncompressed, {sum(s['arrow'].values()) / 1e9:.1f} GB as Arrow")
    print(f"limits: DuckDB memory_limit {a.memory_limit}, threads {a.threads}; RLIMIT_AS "
          f"{a.as_limit}; {load()}")
    kw = json.dumps({"memory_limit": a.memory_limit, "threads": a.threads})
    for name in a.only:
        expr, cols = QUERIES[name]
        need = sum(s["arrow"][c] for c in cols)
        if a.dask:
            n, mem = a.dask.split("x")
            dkw = json.dumps({"workers": int(n), "worker_memory": mem})
            d = run(DASK_SIDE % {"expr": expr.replace("**kw", "engine='dask', scheduler=client")},
                    [str(root), dkw], None)
            line = f"{name:>16}: columns {need / 1e9:.2f} GB as Arrow; Dask {a.dask} "
        else:
            d = run(DUCK_SIDE % {"expr": expr}, [str(root), kw], as_limit)
            line = f"{name:>16}: columns {need / 1e9:.2f} GB as Arrow; DuckDB "
        if "error" in d:
            line += f"FAILED {d['error']}"
        else:
            line += (f"{d['wall']:.1f} s wall, {d['cpu']:.1f} s CPU, peak RSS "
                     f"{d['rss'] / 1e6:.0f} MB ({d['rows']} rows)")
            if "workers" in d:
                line += " client; workers " + ", ".join(f"{w / 1e6:.0f}" for w in d["workers"])
                line += " MB"
        if not a.no_pandas:
            p = run(PANDAS_SIDE, [str(root), json.dumps(cols)], None)
            line += "; pandas read_parquet of those columns: " + (
                p.get("error") or f"{p['wall']:.1f} s wall, peak RSS {p['rss'] / 1e6:,.0f} MB")
        if a.pandas_capped:
            p = run(PANDAS_SIDE, [str(root), json.dumps(cols)], as_limit)
            line += "; under the limit: " + (p.get("error") or "fits")
        print(line, flush=True)
    print(load())


if __name__ == "__main__":
    main()
