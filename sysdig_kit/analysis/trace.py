"""Export a capture (event frame) or a replay log to the Chrome trace event format (the JSON
that Perfetto's UI and chrome://tracing open).

One track per thread (pid = thread group, tid = thread, with process_name/thread_name
metadata), each syscall a complete event ('X', ts + dur) from its enter to its exit where the
capture has both (the enter/exit era), else an instant at its exit (exit-only captures);
drops, signal deliveries and process exits as instants ('i'). Times are microseconds from the
capture's first event (`ts` is a float, so nanoseconds survive as decimals).
Format reference: "Trace Event Format" (Google, docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import KitError

INSTANT_TYPES = {"signaldeliver": "signal", "drop": "drop", "procexit": "procexit"}


def _log_and_frame(x: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    from .frames import _is_log, replay_log

    if not isinstance(x, pd.DataFrame):
        raise KitError(f"expected an event frame or a replay log, got {type(x).__name__}")
    return replay_log(x), (None if _is_log(x) else x)


def chrome_trace(x: pd.DataFrame) -> dict:
    """The trace as a dict ({"traceEvents": [...], "displayTimeUnit": "ns", ...})."""
    log, frame = _log_and_frame(x)
    sc = log[log["kind"] == "syscall"]
    enter = sc["enter_ts"].astype("Int64")
    exit_ = sc["exit_ts"].astype("Int64")
    times = pd.concat([enter.dropna(), exit_.dropna()])
    if frame is not None and len(frame):
        times = pd.concat([times, frame["evt_rawtime"].astype("Int64")])
    t0 = int(times.min()) if len(times) else 0
    pid = sc["proc_pid"].astype("Int64").fillna(sc["thread_tid"]).astype(np.int64).to_numpy()
    tid = sc["thread_tid"].to_numpy(np.int64)
    name = sc["syscall"].astype(str).to_numpy()
    res = sc["res"].astype("Int64")
    errno = sc["errno"].astype("string")
    evs: list[dict] = []
    both = (enter.notna() & exit_.notna()).to_numpy(bool)
    e_ns = enter.fillna(0).to_numpy(np.int64)
    x_ns = exit_.fillna(enter).fillna(0).to_numpy(np.int64)
    for i in range(len(sc)):
        args = {"res": None if res.iat[i] is pd.NA else int(res.iat[i])}
        if errno.iat[i] is not pd.NA:
            args["errno"] = str(errno.iat[i])
        if both[i]:
            evs.append({"name": name[i], "cat": "syscall", "ph": "X",
                        "ts": (e_ns[i] - t0) / 1e3, "dur": max(x_ns[i] - e_ns[i], 0) / 1e3,
                        "pid": int(pid[i]), "tid": int(tid[i]), "args": args})
        else:
            evs.append({"name": name[i], "cat": "syscall", "ph": "i", "s": "t",
                        "ts": (x_ns[i] - t0) / 1e3, "pid": int(pid[i]), "tid": int(tid[i]),
                        "args": args})
    evs += _instants(frame if frame is not None else log, t0, frame is not None)
    evs += _metadata(log if frame is None else frame)
    return {"traceEvents": evs, "displayTimeUnit": "ns",
            "otherData": {"source": str(x.attrs.get("source", "")), "t0_ns": t0,
                          "generator": "sysdig-kit"}}


def _instants(x: pd.DataFrame, t0: int, is_frame: bool) -> list[dict]:
    out = []
    if is_frame:
        m = x["evt_type"].astype(str).isin(list(INSTANT_TYPES))
        sel = x[m.to_numpy(bool)]
        for r in sel.itertuples(index=False):
            kind = INSTANT_TYPES[str(r.evt_type)]
            pid = r.proc_pid if r.proc_pid is not pd.NA else r.thread_tid
            out.append({"name": str(r.evt_type), "cat": kind, "ph": "i",
                        "s": "g" if kind == "drop" else "t",
                        "ts": (int(r.evt_rawtime) - t0) / 1e3, "pid": int(pid),
                        "tid": int(r.thread_tid), "args": {"evt_num": int(r.evt_num)}})
    else:
        sel = x[x["kind"] == "procexit"]
        for r in sel.itertuples(index=False):
            ts = r.exit_ts if r.exit_ts is not pd.NA else r.enter_ts
            pid = r.proc_pid if r.proc_pid is not pd.NA else r.thread_tid
            out.append({"name": "procexit", "cat": "procexit", "ph": "i", "s": "t",
                        "ts": (int(ts) - t0) / 1e3, "pid": int(pid), "tid": int(r.thread_tid),
                        "args": {}})
    return out


def _metadata(x: pd.DataFrame) -> list[dict]:
    """process_name / thread_name events: one per process and per thread (its track)."""
    cols = x[["thread_tid", "proc_pid", "proc_name"]].copy()
    cols["proc_pid"] = cols["proc_pid"].astype("Int64").fillna(cols["thread_tid"])
    cols = cols.drop_duplicates("thread_tid", keep="last")
    out = []
    for pid, g in cols.groupby("proc_pid", sort=True):
        pname = g["proc_name"].dropna()
        out.append({"name": "process_name", "ph": "M", "pid": int(pid), "tid": int(pid),
                    "args": {"name": f"{pname.iloc[0] if len(pname) else '?'} ({pid})"}})
        for r in g.itertuples(index=False):
            tname = r.proc_name if r.proc_name is not pd.NA else "?"
            out.append({"name": "thread_name", "ph": "M", "pid": int(pid),
                        "tid": int(r.thread_tid), "args": {"name": f"{tname} ({r.thread_tid})"}})
    return out


def write_chrome_trace(x: pd.DataFrame, path) -> Path:
    """Write the trace JSON to `path` (atomically) and return it."""
    from ..atomic import atomic_write

    text = json.dumps(chrome_trace(x), separators=(",", ":"))
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text))
