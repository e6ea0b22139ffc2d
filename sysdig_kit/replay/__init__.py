"""The replay log: one record per syscall per thread, with its result and what the kernel
wrote back; a verdict on whether a capture is enough to replay; raw hook logs decoded.

    log = replay.build(sysdig_kit.read("cap.scap"), arch="arm64")   # frame (docs/replay-log.md)
    replay.write(log, "cap.parquet"); replay.ReplayLog.open("cap.parquet").cursor(tid)
"""

from __future__ import annotations

from .api import Divergence, Record, ReplayLog
from .log import FORMAT_VERSION, write, write_stream
from .log import read as read_log
from .pairing import build, build_batches

__all__ = ["FORMAT_VERSION", "Divergence", "Record", "ReplayLog", "build", "build_batches",
           "filter_frame", "read_log", "write", "write_stream"]


def filter_frame(df, proc=None, pid=None, tid=None):
    """The events of the given process names / pids / tids (any of them; None = no filter)."""
    keep = None
    for col, values in (("proc_name", proc), ("proc_pid", pid), ("thread_tid", tid)):
        if values:
            m = df[col].isin(list(values)).fillna(False).astype(bool)
            keep = m if keep is None else keep | m
    if keep is None:
        return df
    out = df[keep.to_numpy()]
    out.attrs.update(df.attrs)
    return out
