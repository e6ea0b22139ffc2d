"""The replay log: one record per syscall per thread, with its result and what the kernel
wrote back; a verdict on whether a capture is enough to replay; raw hook logs decoded.

    log = replay.build(sysdig_kit.read("cap.scap"), arch="arm64")   # frame (docs/replay-log.md)
    replay.write(log, "cap.parquet"); replay.ReplayLog.open("cap.parquet").cursor(tid)

Files of any size, batch by batch in flat memory (what the CLI uses):

    replay.write_stream(replay.build_file("cap.scap"), "cap.parquet")
    replay.check_file("cap.scap")["verdict"]
"""

from __future__ import annotations

from .api import Divergence, Record, ReplayLog
from .log import FORMAT_VERSION, write, write_stream
from .log import read as read_log
from .pairing import build, build_batches, filter_frame

__all__ = ["FORMAT_VERSION", "Divergence", "Record", "ReplayLog", "build", "build_batches",
           "build_file", "check_file", "filter_frame", "read_log", "write", "write_stream"]

BATCH = 100_000  # events read at a time by the file entry points: memory stays ~300 MB


def build_file(path, arch=None, proc=(), pid=(), tid=(), batch_size: int = BATCH, fmt=None):
    """The replay log of a capture file as frames, read and built `batch_size` events at a
    time (threads whose syscalls span batches are paired across them): for write_stream, or
    pd.concat when the log fits in memory."""
    from .log import make_log_table
    from .pairing import tables_of

    events = ((e.select(proc, pid, tid), attrs, last)
              for e, attrs, last in _events(path, batch_size, fmt))
    for table, header in tables_of(events, arch):
        yield make_log_table(table, **header)


def check_file(path, arch=None, manifest=None, proc=(), pid=(), tid=(),
               batch_size: int = BATCH, fmt=None) -> dict:
    """`sysdig-kit check` on a capture file, batch by batch: the verdict `check.check` gives
    on the whole frame, in the memory of one batch. `manifest` defaults to PATH.manifest.json."""
    from pathlib import Path

    from .check import check_events

    if manifest is None:
        default = Path(str(path) + ".manifest.json")
        manifest = default if default.is_file() else None
    return check_events(_events(path, batch_size, fmt), arch, manifest, proc, pid, tid)


def _events(path, batch_size: int, fmt=None):
    """(Events, attrs, whether it is known to be the last batch) of each batch of a capture
    file: from the scap reader's raw columns (no frame built only to be taken apart), from
    the frames of the other readers."""
    from pathlib import Path

    import pandas as pd

    from ..read import iter_batches, reader_for
    from .pairs import Events

    reader = reader_for(path, fmt)
    if not hasattr(reader, "iter_runs"):
        for df in iter_batches(path, batch_size=batch_size, fmt=fmt):
            yield Events.of(df), df.attrs, False
        return
    for run in reader.iter_runs(Path(path), batch_size=batch_size):
        if isinstance(run, pd.DataFrame):  # a capture without events
            yield Events.of(run), run.attrs, True
        else:
            yield Events.of_parts(run[0]), run[1], run[2]
