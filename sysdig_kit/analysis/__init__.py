"""Analysis of captures and replay logs: tables (plain pandas), plots (matplotlib figures
returned, never shown), and the playbook runner for repeatable experiments.

    from sysdig_kit import analysis
    frame = sysdig_kit.read("zsh.scap")
    analysis.counts(frame)              # syscalls per process/thread
    analysis.sufficiency(frame)         # per syscall: records, with a return value, complete
    analysis.plots.counts(analysis.counts(frame))   # a matplotlib Figure

Every table function takes an event frame (docs/frame.md) or a replay log
(docs/replay-log.md); a frame is turned into its log with `sysdig_kit.replay.build` first.
counts, latency_stats, errors and sufficiency also take the path of a dataset made by
`sysdig-kit convert --dataset` (docs/dataset.md), computed out of core by DuckDB or on a Dask
cluster (engine="dask"; analysis/ooc.py).
"""

from __future__ import annotations

from . import plots
from .frames import (
    counts,
    errors,
    files,
    latency,
    latency_stats,
    overhead,
    replay_log,
    sockets,
    sufficiency,
    timeline,
)

__all__ = ["counts", "errors", "files", "latency", "latency_stats", "overhead", "plots",
           "replay_log", "sockets", "sufficiency", "timeline"]
