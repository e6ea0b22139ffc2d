"""analysis tables on a dataset of replay logs (analysis/dataset.py) that need not fit in memory.

Two engines, same tables as the pandas path (tests/test_dataset.py holds them equal):

- engine="duckdb" (the default, embedded): SQL over the Parquet files; DuckDB streams them,
  reads only the columns a table needs and spills to `temp_directory` past `memory_limit`
  (e.g. "1GB"; DuckDB's default is 80 % of RAM). `threads` caps its threads.
- engine="dask": dask.dataframe on a dask.distributed cluster, for what outgrows one machine.
  `scheduler` is a Client or a scheduler address ("tcp://host:8786"); without it the current
  client (`distributed.Client(...)` made beforehand), else dask's local threads. The workers
  must see the dataset at the same path (a shared file system or object store URL).

`where` keeps some partitions: {"board": "qemu-arm64", "capture": ["a", "b"]}.
Only counts per group come back to the caller, never records.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import KitError
from . import dataset as ds

_DUCK_OPTS = ("memory_limit", "threads", "temp_directory")


def _where(where: dict | None) -> str:
    """SQL condition on the partition columns (values quoted: a view cannot be prepared)."""
    conds = []
    for k, v in (where or {}).items():
        if k not in ds.PARTITIONS:
            raise KitError(f"where: {k!r} is not a partition ({', '.join(ds.PARTITIONS)})")
        vals = [v] if isinstance(v, str) else list(v)
        conds.append(f"{k} IN ({', '.join(_lit(str(x)) for x in vals)})")
    return " AND ".join(conds) or "TRUE"


def _engine(engine: str) -> str:
    if engine not in ("duckdb", "dask"):
        raise KitError(f"engine {engine!r}: duckdb or dask")
    return engine


# --- DuckDB ----------------------------------------------------------------------------------

def _duck_query(path, select: str, where: dict | None, **opts) -> pd.DataFrame:
    """`select` runs over the view `log` (the dataset's syscall records, partitions kept)."""
    try:
        import duckdb
    except ImportError:
        raise KitError("engine duckdb needs DuckDB: pip install 'sysdig-kit[dataset]'") from None
    cond = _where(where)
    bad = set(opts) - set(_DUCK_OPTS)
    if bad:
        raise KitError(f"unknown option(s) for DuckDB: {', '.join(sorted(bad))}")
    ds.files(path)  # a one-line error when it is not a dataset
    config = {k: str(v) for k, v in opts.items() if v is not None}
    glob = str(Path(path) / "board=*" / "workload=*" / "capture=*" / ds.FILE)
    con = duckdb.connect(config=config)
    try:
        con.execute("SET enable_progress_bar = false")  # it would print into our stdout
        con.execute(f"CREATE VIEW log AS SELECT * FROM read_parquet({_lit(glob)}, "
                    f"hive_partitioning = true) WHERE kind = 'syscall' AND {cond}")
        return con.execute(select).fetch_df()
    except duckdb.Error as exc:
        raise KitError(f"{path}: DuckDB: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# --- Dask ------------------------------------------------------------------------------------

def _dask_frame(path, columns: list[str], where: dict | None, scheduler=None):
    try:
        import dask.dataframe as dd
    except ImportError:
        raise KitError("engine dask needs Dask: pip install 'sysdig-kit[dataset]'") from None
    _where(where)  # same checks
    ds.files(path)
    filters = [("kind", "==", "syscall")]
    for k, v in (where or {}).items():
        filters.append((k, "in", [v] if isinstance(v, str) else [str(x) for x in v]))
    cols = list(dict.fromkeys(columns + ["kind"]))
    df = dd.read_parquet(str(path), columns=cols, filters=filters, dtype_backend="pyarrow")
    return df[df["kind"] == "syscall"]


def _compute(obj, scheduler):
    """Compute on `scheduler` (a Client or an address), else the current client or threads."""
    if scheduler is None:
        return obj.compute()
    if isinstance(scheduler, str):
        from distributed import Client

        with Client(scheduler) as client:
            return client.compute(obj).result()
    return scheduler.compute(obj).result()


# --- the tables -------------------------------------------------------------------------------

def counts(path, keys: list[str], engine: str = "duckdb", where: dict | None = None,
           scheduler=None, **opts) -> pd.DataFrame:
    """frames.counts on a dataset: records per `keys` (frames.COUNT_KEYS of the level)."""
    if _engine(engine) == "duckdb":
        k = ", ".join(keys)
        out = _duck_query(path, f"SELECT {k}, count(*) AS count FROM log GROUP BY {k}",
                          where, **opts)
    else:
        df = _dask_frame(path, keys, where, scheduler)
        out = _compute(df.groupby(keys, dropna=False, observed=True).size(), scheduler)
        out = out.rename("count").reset_index()
    out = _types(out, {"proc_pid": "Int64", "proc_name": "string", "thread_tid": "int64",
                       "syscall": "string", "count": "int64"})
    out = out.sort_values(["count"] + keys, ascending=[False] + [True] * len(keys))
    return out.reset_index(drop=True)


_QUANTILES = {"p25_us": 0.25, "median_us": 0.5, "p75_us": 0.75, "p95_us": 0.95}


def _stats_part(part: pd.DataFrame) -> pd.DataFrame:
    """latency figures of the syscalls in one partition, as frames.latency_stats computes
    them (pandas' linear quantiles)."""
    rows = []
    for name, us in part.groupby("syscall", observed=True)["us"]:
        m = us.astype("float64").dropna()
        row = {"syscall": name, "records": len(us), "measured": len(m),
               **{c: m.quantile(q) if len(m) else None for c, q in _QUANTILES.items()},
               "max_us": m.max() if len(m) else None}
        rows.append(row)
    cols = ["syscall", "records", "measured", *_QUANTILES, "max_us"]
    return pd.DataFrame(rows, columns=cols).astype({c: "float64" for c in cols[1:]}).astype(
        {"syscall": "string"})


def latency_stats(path, engine: str = "duckdb", where: dict | None = None, scheduler=None,
                  **opts) -> pd.DataFrame:
    if _engine(engine) == "duckdb":
        out = _duck_latency(path, where, **opts)
    else:
        df = _dask_frame(path, ["syscall", "enter_ts", "exit_ts"], where, scheduler)
        df = df.assign(us=(df["exit_ts"] - df["enter_ts"]).astype("float64[pyarrow]") / 1e3)
        # exact quantiles need all of a syscall's values together: a shuffle by syscall puts
        # them in one partition, then pandas computes them there
        cols = ["records", "measured", *_QUANTILES, "max_us"]
        meta = pd.DataFrame({"syscall": pd.Series(dtype="string"),
                             **{c: pd.Series(dtype="float64") for c in cols}})
        part = df[["syscall", "us"]].shuffle("syscall").map_partitions(_stats_part, meta=meta)
        out = _compute(part, scheduler)
    out = _types(out, {"syscall": "string", "records": "int64", "measured": "int64",
                       **{c: "Float64" for c in (*_QUANTILES, "max_us")}})
    out = out[["syscall", "records", "measured", "median_us", "p25_us", "p75_us", "p95_us",
               "max_us"]]
    out = out.sort_values("syscall").sort_values("records", ascending=False, kind="stable")
    return out.reset_index(drop=True)


def _duck_latency(path, where, **opts) -> pd.DataFrame:
    """Exact quantiles out of core. DuckDB's quantile_cont holds every value of a group in
    memory (it failed at 512 MB on 48M records), so: a histogram per (syscall, latency) (a
    hash aggregate, which spills), cumulative counts over it, and per quantile the two values
    around its position q*(n-1) (the first latency whose cumulative count passes each rank);
    pandas' linear interpolation between them is done here, on a few numbers per syscall."""
    picks = []
    for i, q in enumerate(_QUANTILES.values()):
        # in float64 as numpy computes the position, so both pick the same ranks
        lo = f"floor(CAST({q!r} AS DOUBLE) * CAST(total - 1 AS DOUBLE))"
        picks += [f"min(lat) FILTER (WHERE cum > {lo}) AS lo{i}",
                  f"min(lat) FILTER (WHERE cum > least({lo} + 1, total - 1)) AS hi{i}"]
    raw = _duck_query(path, f"""
        WITH l AS (SELECT syscall, exit_ts - enter_ts AS lat FROM log),
        r AS (SELECT syscall, count(*) AS records FROM l GROUP BY syscall),
        h AS (SELECT syscall, lat, count(*) AS n FROM l WHERE lat IS NOT NULL
              GROUP BY syscall, lat),
        c AS (SELECT syscall, lat,
                     sum(n) OVER (PARTITION BY syscall ORDER BY lat
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
                     sum(n) OVER (PARTITION BY syscall) AS total FROM h),
        k AS (SELECT syscall, total, max(lat) AS mx, {", ".join(picks)} FROM c
              GROUP BY syscall, total)
        SELECT r.syscall, r.records, coalesce(k.total, 0) AS measured, k.* EXCLUDE (syscall)
        FROM r LEFT JOIN k ON r.syscall = k.syscall""", where, **opts)
    out = raw[["syscall", "records", "measured"]].copy()
    n = raw["measured"].astype("float64")
    for i, (c, q) in enumerate(_QUANTILES.items()):
        pos = q * (n - 1)
        frac = pos - np.floor(pos)
        lo = raw[f"lo{i}"].astype("float64") / 1e3
        hi = raw[f"hi{i}"].astype("float64") / 1e3
        out[c] = lo + (hi - lo) * frac
    out["max_us"] = raw["mx"].astype("float64") / 1e3
    return out


def error_counts(path, engine: str = "duckdb", where: dict | None = None, scheduler=None,
                 **opts) -> pd.DataFrame:
    """Failed records per (errno, syscall), with errno_num (for frames.errors_table)."""
    if _engine(engine) == "duckdb":
        return _duck_query(path, """
            SELECT errno, syscall, count(*) AS count, max(-res) AS errno_num FROM log
            WHERE errno IS NOT NULL GROUP BY errno, syscall""", where, **opts)
    df = _dask_frame(path, ["errno", "syscall", "res"], where, scheduler)
    df = df[~df["errno"].isna()]
    df = df.assign(errno_num=-df["res"])
    g = df.groupby(["errno", "syscall"], observed=True)
    out = _compute(g.agg(count=("res", "size"), errno_num=("errno_num", "max")), scheduler)
    return out.reset_index()


def sufficiency_sums(path, flags: list[str], sums: list[str], engine: str = "duckdb",
                     where: dict | None = None, scheduler=None, **opts) -> pd.DataFrame:
    """Per syscall, the counts frames.sufficiency_table turns into the sufficiency table:
    `sums` (frames.SUFFICIENCY_SUMS) and f_FLAG for each of the incomplete `flags`."""
    if _engine(engine) == "duckdb":
        has = {f: f"list_contains(flags, {_lit(f)})" for f in flags + ["never_returns"]}
        nowb = has.get("no_write_back", "FALSE")
        trunc = has.get("truncated_buffer", "FALSE")
        incomplete = " OR ".join(has[f] for f in flags) or "FALSE"
        per_flag = ", ".join(f"sum(({has[f]})::INT) AS f_{f}" for f in flags)
        out = _duck_query(path, f"""
            SELECT syscall, count(*) AS records, count(res) AS with_return_value,
                   sum(needs::INT) AS with_output,
                   sum((needs AND NOT ({trunc}) AND NOT ({nowb}))::INT) AS with_complete_output,
                   sum((NOT ({incomplete}))::INT) AS complete,
                   sum(({has['never_returns']})::INT) AS never, {per_flag}
            FROM (SELECT *, (has_output OR {nowb}) AS needs FROM log)
            GROUP BY syscall""", where, **opts)
    else:
        df = _dask_frame(path, ["syscall", "res", "has_output", "flags"], where, scheduler)
        cols = sums + [f"f_{f}" for f in flags]
        meta = pd.DataFrame({"syscall": pd.Series(dtype="string"),
                             **{c: pd.Series(dtype="int64") for c in cols}})
        part = df.map_partitions(_sufficiency_rows, flags, meta=meta)
        out = _compute(part.groupby("syscall").sum(), scheduler).reset_index()
    out = _types(out, {"syscall": "string"})
    return out.set_index("syscall").astype("int64")


def _sufficiency_rows(part: pd.DataFrame, flags: list[str]) -> pd.DataFrame:
    """Per record of one partition: the 0/1 columns sufficiency counts (flags matched with
    Arrow, not a Python loop per record)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    fl = pa.array(part["flags"].array)
    n = len(part)
    parents = pc.list_parent_indices(fl).to_numpy()
    flat = pc.list_flatten(fl)

    def has(f):
        hit = pc.equal(flat, f).fill_null(False).to_numpy(zero_copy_only=False)
        return np.bincount(parents[hit], minlength=n) > 0

    per = {f: has(f) for f in flags}
    zero = np.zeros(n, bool)
    nowb, trunc = per.get("no_write_back", zero), per.get("truncated_buffer", zero)
    needs = part["has_output"].fillna(False).to_numpy(bool) | nowb
    incomplete = np.logical_or.reduce(list(per.values())) if per else zero
    return pd.DataFrame({
        "syscall": part["syscall"].astype("string").to_numpy(), "records": 1,
        "with_return_value": part["res"].notna().to_numpy(int), "with_output": needs.astype(int),
        "with_complete_output": (needs & ~trunc & ~nowb).astype(int),
        "complete": (~incomplete).astype(int), "never": has("never_returns").astype(int),
        **{f"f_{f}": m.astype(int) for f, m in per.items()}}).astype(
        {"syscall": "string"})


def _types(df: pd.DataFrame, types: dict) -> pd.DataFrame:
    """The pandas path's dtypes, whichever engine made the frame."""
    conv = {}
    for c, t in types.items():
        if c not in df.columns:
            continue
        s = df[c]
        if t in ("int64", "Int64", "Float64"):
            s = pd.to_numeric(pd.Series(s.to_numpy(dtype=object), index=df.index),
                              errors="raise") if s.dtype == object else s
        conv[c] = s.astype(t) if t != "string" else s.astype("string")
    return df.assign(**conv)
