"""Tables from an event frame (docs/frame.md) or a replay log (docs/replay-log.md).

All functions return plain pandas DataFrames. Counting is done on the replay log (one record per
syscall, whichever era the capture is from), so an enter+exit pair counts once.
"""

from __future__ import annotations

import ipaddress
import os
from functools import cache

import pandas as pd

from ..errors import KitError

EXIT_ONLY_NOTE = ("exit-only capture (libs >= 0.22 record only the exit of a syscall): there is "
                  "no enter time, so latency cannot be measured and is NA")
_PATH_TYPES = {"PT_FSPATH", "PT_FSRELPATH"}
_SOCK_TYPES = {"PT_SOCKADDR", "PT_SOCKTUPLE"}
# Without an event table (text/JSON frames) the parameters are known by name only.
_PATH_NAMES = {"name", "path", "pathname", "filename", "oldpath", "newpath", "linkpath", "target"}
_SOCK_NAMES = {"addr", "tuple"}
_FAMILY = {1: "unix", 2: "inet", 10: "inet6", 16: "netlink", 17: "packet"}


# --- frame or log -----------------------------------------------------------------------------

def _is_dataset(x) -> bool:
    """A path: a Parquet dataset of replay logs (analysis/dataset.py), computed out of core."""
    return isinstance(x, (str, os.PathLike))


def _is_log(x: pd.DataFrame) -> bool:
    return {"kind", "seq", "syscall"} <= set(x.columns)


def replay_log(x: pd.DataFrame, arch: str | None = None) -> pd.DataFrame:
    """The replay log of `x` (built from a frame; returned as is when `x` already is a log)."""
    if not isinstance(x, pd.DataFrame):
        raise KitError(f"expected an event frame or a replay log, got {type(x).__name__}")
    if _is_log(x):
        return x
    if "evt_type" not in x.columns:
        raise KitError("not an event frame (docs/frame.md) nor a replay log: no evt_type column")
    from ..replay import build

    return build(x, arch=arch)


def _syscalls(x) -> pd.DataFrame:
    log = replay_log(x)
    return log[log["kind"] == "syscall"]


# --- counts, latency, timeline ----------------------------------------------------------------

COUNT_KEYS = {"thread": ["proc_pid", "proc_name", "thread_tid", "syscall"],
              "process": ["proc_pid", "proc_name", "syscall"], "syscall": ["syscall"]}


def counts(x, level: str = "thread", **dataset_kw) -> pd.DataFrame:
    """Syscalls per `level`: "thread" (pid, name, tid, syscall), "process" (pid, name,
    syscall) or "syscall"; column `count`, largest first. `x` is a frame, a log, or the path
    of a dataset (analysis/dataset.py; then engine="duckdb" or "dask", see analysis/ooc.py)."""
    keys = COUNT_KEYS
    if level not in keys:
        raise KitError(f"level {level!r}: one of {', '.join(keys)}")
    if _is_dataset(x):
        from . import ooc

        return ooc.counts(x, keys[level], **dataset_kw)
    sc = _syscalls(x)
    out = (sc.groupby(keys[level], dropna=False, observed=True).size().rename("count")
           .reset_index().sort_values(["count"] + keys[level],
                                      ascending=[False] + [True] * len(keys[level])))
    return out.reset_index(drop=True)


def latency(x: pd.DataFrame) -> pd.DataFrame:
    """Per syscall record: enter/exit time and `latency_ns` = exit - enter.

    In exit-only captures (libs >= 0.22) there is no enter time: `latency_ns` is NA and
    `attrs["note"]` says so; nothing is made up."""
    log = replay_log(x)
    sc = log[log["kind"] == "syscall"]
    out = sc[["thread_tid", "proc_pid", "proc_name", "syscall", "evt_num", "enter_ts",
              "exit_ts"]].copy()
    out["latency_ns"] = (out["exit_ts"] - out["enter_ts"]).astype("Int64")
    out = out.reset_index(drop=True)
    out.attrs["era"] = log.attrs.get("era")
    if log.attrs.get("era") == "exit_only":
        out.attrs["note"] = EXIT_ONLY_NOTE
    return out


def latency_stats(x, **dataset_kw) -> pd.DataFrame:
    """Latency distribution per syscall in µs: records, measured, median, p25, p75, p95, max
    (NA where nothing was measured); most frequent syscall first (ties in name order). A
    dataset path is computed out of core (the quantiles are exact, as here)."""
    if _is_dataset(x):
        from . import ooc

        return ooc.latency_stats(x, **dataset_kw)
    lat = x if "latency_ns" in x.columns else latency(x)
    us = lat["latency_ns"].astype("Float64") / 1e3
    g = us.groupby(lat["syscall"], observed=True)
    out = pd.DataFrame({
        "records": g.size(),
        "measured": g.count(),
        "median_us": g.median(),
        "p25_us": g.quantile(0.25),
        "p75_us": g.quantile(0.75),
        "p95_us": g.quantile(0.95),
        "max_us": g.max(),
    })
    for c in ("median_us", "p25_us", "p75_us", "p95_us", "max_us"):
        out[c] = out[c].astype("Float64").where(out["measured"] > 0, pd.NA)
    out = out.astype({"records": "int64", "measured": "int64"})  # the same in every pandas
    out = out.sort_values(["records"], ascending=False, kind="stable").reset_index()
    out.attrs.update(lat.attrs)
    return out


def timeline(x: pd.DataFrame) -> pd.DataFrame:
    """Per thread, its syscalls in order: start/end (ns), `t_s` seconds since the first record
    of the capture and `dur_s` (NA without an enter time)."""
    log = replay_log(x)
    sc = log[log["kind"] == "syscall"]
    start = sc["enter_ts"].fillna(sc["exit_ts"])
    t0 = start.min() if len(start) else 0
    out = pd.DataFrame({
        "thread_tid": sc["thread_tid"], "proc_pid": sc["proc_pid"],
        "proc_name": sc["proc_name"], "seq": sc["seq"], "syscall": sc["syscall"],
        "start_ns": start, "end_ns": sc["exit_ts"],
        "t_s": (start - t0).astype("Float64") / 1e9,
        "dur_s": (sc["exit_ts"] - sc["enter_ts"]).astype("Float64") / 1e9,
    })
    out = out.sort_values(["thread_tid", "seq"]).reset_index(drop=True)
    out.attrs["era"] = log.attrs.get("era")
    return out


# --- files and sockets ------------------------------------------------------------------------

@cache
def _param_types(table: str | None) -> dict:
    """(event name, dir) -> {parameter: type} from the driver's event table."""
    if not table:
        return {}
    from ..read import eventtable

    try:
        t = eventtable.load(table)
    except KitError:
        return {}
    out: dict = {}
    for e in t.events:
        out.setdefault((e["name"], e["dir"]), {}).update({p["name"]: p["type"] for p in e["params"]})
    return out


def _params_of(frame: pd.DataFrame, types: set[str], names: set[str]) -> dict[int, list]:
    """evt_num -> [(param, raw value)] of the parameters of the given types (or names, for
    frames without an event table)."""
    ptypes = _param_types(frame.attrs.get("event_table"))
    out: dict[int, list] = {}
    cols = zip(frame["evt_num"].tolist(), frame["evt_type"].astype(str).tolist(),
               frame["evt_dir"].astype(str).tolist(), frame["evt_args"].tolist())
    for num, typ, d, args in cols:
        if not args:
            continue
        known = ptypes.get((typ, d))
        hit = [(a["name"], a["value"]) for a in args
               if (known.get(a["name"]) in types if known else a["name"] in names)]
        if hit:
            out[num] = hit
    return out


def _cstr(v: bytes) -> str:
    return bytes(v).split(b"\0", 1)[0].decode(errors="replace")


def _per_record(frame, log, types, names):
    """For each syscall record, the matching parameters of its exit, else of its enter."""
    found = _params_of(frame, types, names)
    sc = log[log["kind"] == "syscall"]
    for row in sc.itertuples(index=False):
        hit = []
        for num in (row.evt_num, row.enter_evt_num):
            if num is not pd.NA and num is not None and int(num) in found:
                hit = found[int(num)]
                break
        if hit:
            yield row, hit


def _frame_and_log(frame, log):
    if _is_log(frame):
        raise KitError("files()/sockets() need the event frame (its parameters), not a log")
    return frame, (log if log is not None else replay_log(frame))


def _record_cols(row) -> dict:
    return {"evt_num": row.evt_num, "thread_tid": row.thread_tid, "proc_pid": row.proc_pid,
            "proc_name": row.proc_name, "syscall": row.syscall, "res": row.res,
            "errno": row.errno}


def files(frame: pd.DataFrame, log: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every path a syscall named (open, stat, exec, ...): one row per (record, path)."""
    frame, log = _frame_and_log(frame, log)
    text = frame.attrs.get("args_encoding") != "scap"
    rows = []
    for row, hit in _per_record(frame, log, _PATH_TYPES, _PATH_NAMES):
        seen = set()
        for name, v in hit:
            path = bytes(v).decode(errors="replace") if text else _cstr(v)
            if path and path not in seen and path != "<NA>":
                seen.add(path)
                rows.append({**_record_cols(row), "param": name, "path": path})
    cols = ["evt_num", "thread_tid", "proc_pid", "proc_name", "syscall", "res", "errno",
            "param", "path"]
    return pd.DataFrame(rows, columns=cols).convert_dtypes()


def _sockaddr(b: bytes) -> tuple[str, str]:
    fam = b[0]
    if fam == 1:
        rest = b[1:]
        return "unix", ("@" + _cstr(rest[1:]) if rest[:1] == b"\0" else _cstr(rest))
    if fam == 2 and len(b) >= 7:
        return "inet", f"{ipaddress.IPv4Address(b[1:5])}:{int.from_bytes(b[5:7], 'little')}"
    if fam == 10 and len(b) >= 19:
        return "inet6", f"[{ipaddress.IPv6Address(b[1:17])}]:{int.from_bytes(b[17:19], 'little')}"
    return _FAMILY.get(fam, f"family {fam}"), b[1:].hex()


def _socktuple(b: bytes) -> tuple[str, str]:
    fam = b[0]
    if fam == 2 and len(b) >= 13:
        src, dst = _sockaddr(b[0:7])[1], _sockaddr(b[0:1] + b[7:13])[1]
        return "inet", f"{src} -> {dst}"
    if fam == 10 and len(b) >= 37:
        src, dst = _sockaddr(b[0:19])[1], _sockaddr(b[0:1] + b[19:37])[1]
        return "inet6", f"{src} -> {dst}"
    if fam == 1 and len(b) >= 17:
        return "unix", _cstr(b[17:])
    return _FAMILY.get(fam, f"family {fam}"), b[1:].hex()


def sockets(frame: pd.DataFrame, log: pd.DataFrame | None = None) -> pd.DataFrame:
    """Socket endpoints syscalls named (connect, bind, accept, sendto, ...): family, address."""
    frame, log = _frame_and_log(frame, log)
    text = frame.attrs.get("args_encoding") != "scap"
    rows = []
    for row, hit in _per_record(frame, log, _SOCK_TYPES, _SOCK_NAMES):
        for name, v in hit:
            v = bytes(v)
            if not v:
                continue
            if text:
                fam, addr = "", v.decode(errors="replace")
            else:
                fam, addr = (_socktuple if name == "tuple" else _sockaddr)(v)
            rows.append({**_record_cols(row), "param": name, "family": fam, "address": addr})
            break  # the first endpoint is enough (connect has both addr and tuple)
    cols = ["evt_num", "thread_tid", "proc_pid", "proc_name", "syscall", "res", "errno",
            "param", "family", "address"]
    return pd.DataFrame(rows, columns=cols).convert_dtypes()


# --- errors, sufficiency ----------------------------------------------------------------------

def errors(x, by_syscall: bool = False, **dataset_kw) -> pd.DataFrame:
    """Failed syscalls by errno (count, which syscalls, most first); by_syscall=True: per
    (syscall, errno). Ties in name order. A dataset path is counted out of core."""
    if _is_dataset(x):
        from . import ooc

        per = ooc.error_counts(x, **dataset_kw)
    else:
        sc = _syscalls(x)
        bad = sc[sc["errno"].notna()]
        per = (bad.assign(errno_num=-bad["res"])
               .groupby(["errno", "syscall"], observed=True)
               .agg(count=("syscall", "size"), errno_num=("errno_num", "max")).reset_index())
    return errors_table(per, by_syscall)


def errors_table(per: pd.DataFrame, by_syscall: bool = False) -> pd.DataFrame:
    """errors()'s table from counts per (errno, syscall) with errno_num, whichever engine
    counted them."""
    per = per.astype({"errno": "string", "syscall": "string", "count": "int64"})
    per = per.sort_values(["count", "syscall", "errno"], ascending=[False, True, True],
                          kind="stable")
    if by_syscall:
        return per[["syscall", "errno", "count"]].reset_index(drop=True)
    rows = []
    for errno, g in per.groupby("errno", observed=True, sort=True):
        rows.append({"errno": errno, "errno_num": int(g["errno_num"].max()),
                     "count": int(g["count"].sum()),
                     "syscalls": ", ".join(f"{k} {v}" for k, v in zip(g["syscall"], g["count"]))})
    out = pd.DataFrame(rows, columns=["errno", "errno_num", "count", "syscalls"])
    out = out.astype({"errno": "string", "errno_num": "int64", "count": "int64",
                      "syscalls": "string"})
    return out.sort_values("count", ascending=False, kind="stable").reset_index(drop=True)


_WHY = {
    "no_return_value": "no return value (the driver logs it as a generic `syscall` event)",
    "truncated_buffer": "output buffer cut at the snaplen",
    "unpaired_enter": "enter without exit (events lost or capture ended)",
    "no_write_back": "what it wrote to the process's memory is not in the capture",
}
_REMEDY = {
    "no_return_value": "a driver with dedicated events for it (the replay-complete patch set), "
                       "or your own syscall hook",
    "truncated_buffer": "capture with a larger snaplen (-s)",
    "unpaired_enter": "stop the capture after the process exits; avoid drops",
    "no_write_back": "the replay-complete driver patch set, or replay it for real / hook it",
}


def _incomplete_flags() -> list[str]:
    # The replayer's own rule (replay.Record.complete), so both always agree.
    from ..replay.api import INCOMPLETE

    order = list(_WHY)
    return sorted(INCOMPLETE, key=lambda f: (order.index(f) if f in order else 99, f))


def _has_flag(flags: pd.Series, flag: str) -> pd.Series:
    return flags.map(lambda f: f is not None and flag in list(f)).astype(bool)


def sufficiency(x, manifest=None, **dataset_kw) -> pd.DataFrame:
    """Can each syscall be replayed from the log? One row per syscall: records, with a return
    value, needing output (a buffer or memory written back), with complete output, complete
    records (the replayer's rule), status, why, remedy.

    Given a frame, `attrs["check"]` holds the full `sysdig-kit check` result (verdict, capture
    level reasons such as drops), and `attrs["capture_issues"]` its insufficient reasons that
    are not about single records (drops, lost events). Given a dataset path, the per-syscall
    counts are computed out of core (analysis/ooc.py)."""
    if _is_dataset(x):
        from . import ooc

        return sufficiency_table(ooc.sufficiency_sums(x, _incomplete_flags(), SUFFICIENCY_SUMS,
                                                      **dataset_kw))
    log = replay_log(x)
    sc = log[log["kind"] == "syscall"]
    result = None
    if not _is_log(x):
        from ..replay.check import check

        result = check(x, log, manifest)
    remedies = {r["code"]: r["remedy"] for r in (result or {}).get("reasons", [])}
    incomplete_flags = _incomplete_flags()
    flags = sc["flags"]
    per_flag = {f: _has_flag(flags, f) for f in incomplete_flags}
    has_out = sc["buffers"].map(lambda b: b is not None and any(x["output"] for x in b))
    nowb = per_flag.get("no_write_back", pd.Series(False, index=sc.index))
    trunc = per_flag.get("truncated_buffer", pd.Series(False, index=sc.index))
    needs = has_out | nowb
    incomplete = pd.Series(False, index=sc.index)
    for m in per_flag.values():
        incomplete |= m
    d = pd.DataFrame({"syscall": sc["syscall"], "records": 1, "with_return_value":
                      sc["res"].notna(), "with_output": needs,
                      "with_complete_output": needs & ~trunc & ~nowb, "complete": ~incomplete,
                      "never": _has_flag(flags, "never_returns"),
                      **{f"f_{f}": m for f, m in per_flag.items()}})
    sums = d.groupby("syscall", observed=True).sum().astype("int64")
    out = sufficiency_table(sums, remedies)
    out.attrs["era"] = log.attrs.get("era")
    if result is not None:
        out.attrs["check"] = result
        out.attrs["capture_issues"] = [r for r in result["reasons"]
                                       if r["severity"] == "insufficient"
                                       and r["code"] not in incomplete_flags]
    return out


SUFFICIENCY_SUMS = ["records", "with_return_value", "with_output", "with_complete_output",
                    "complete", "never"]


def sufficiency_table(sums: pd.DataFrame, remedies: dict | None = None) -> pd.DataFrame:
    """sufficiency()'s table from its per-syscall counts (index syscall; SUFFICIENCY_SUMS and
    f_<flag> for each incomplete flag), whichever engine counted them."""
    remedies = remedies or {}
    rows = []
    for name, g in sums.sort_index().iterrows():
        why, fix = [], []
        for f in _incomplete_flags():
            n = int(g.get(f"f_{f}", 0))
            if n:
                why.append(f"{_WHY.get(f, f)}: {n}")
                # check's own remedy where it is specific (the snaplen a capture needs)
                fix.append(remedies[f] if f == "truncated_buffer" and f in remedies
                           else _REMEDY.get(f) or remedies.get(f, ""))
        if g["never"]:
            why.append(f"never returns (nothing to replay): {int(g['never'])}")
        n, ok = int(g["records"]), int(g["complete"])
        rows.append({"syscall": name, "records": n,
                     "with_return_value": int(g["with_return_value"]),
                     "with_output": int(g["with_output"]),
                     "with_complete_output": int(g["with_complete_output"]), "complete": ok,
                     "status": "replayable" if ok == n else "not replayable" if ok == 0
                     else "partly", "why": "; ".join(why), "remedy": "; ".join(fix)})
    out = pd.DataFrame(rows, columns=["syscall", "records", "with_return_value", "with_output",
                                      "with_complete_output", "complete", "status", "why",
                                      "remedy"])
    order = {"not replayable": 0, "partly": 1, "replayable": 2}
    # stable, so equal (status, records) stay in syscall order whichever engine counted
    return out.sort_values(["status", "records"], key=lambda s: s.map(order)
                           if s.name == "status" else -s, kind="stable").reset_index(drop=True)


# --- overhead (playbook results) --------------------------------------------------------------

def overhead(results: pd.DataFrame, baseline: str = "none") -> pd.DataFrame:
    """Slowdown per (board, workload, variant) from a playbook results table: each measured
    run's wall time over the median wall time of `baseline`, summarised as median and
    interquartile range (q25, q75); warm-up runs left out."""
    need = {"board", "workload", "variant", "wall_s"}
    if not need <= set(results.columns):
        raise KitError(f"not a playbook results table: missing {', '.join(sorted(need - set(results.columns)))}")
    r = results[~results["warmup"].astype(bool)] if "warmup" in results.columns else results
    if "ok" in r.columns:
        r = r[r["ok"].astype(bool)]
    keys = ["board", "workload"]
    base = (r[r["variant"] == baseline].groupby(keys)["wall_s"].median()
            .rename("base_wall_s").reset_index())
    r = r.merge(base, on=keys, how="left")
    r["slowdown"] = r["wall_s"] / r["base_wall_s"]
    g = r.groupby(keys + ["variant"], sort=False)
    q = lambda p: (lambda s: s.quantile(p))
    out = g.agg(runs=("wall_s", "size"), wall_median_s=("wall_s", "median"),
                wall_q25_s=("wall_s", q(0.25)), wall_q75_s=("wall_s", q(0.75)),
                slowdown_median=("slowdown", "median"), slowdown_q25=("slowdown", q(0.25)),
                slowdown_q75=("slowdown", q(0.75)))
    for col in ("cpu_s", "events", "drops", "capture_bytes"):
        if col in r.columns:
            out[f"{col}_median"] = g[col].median()
    return out.reset_index()
