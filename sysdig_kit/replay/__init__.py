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
    from ..read import iter_batches

    frames = (filter_frame(df, proc, pid, tid)
              for df in iter_batches(path, batch_size=batch_size, fmt=fmt))
    yield from build_batches(frames, arch=arch)


def check_file(path, arch=None, manifest=None, proc=(), pid=(), tid=(),
               batch_size: int = BATCH, fmt=None) -> dict:
    """`sysdig-kit check` on a capture file, batch by batch: the verdict `check.check` gives
    on the whole frame, in the memory of one batch. `manifest` defaults to PATH.manifest.json."""
    from pathlib import Path

    from ..read import iter_batches
    from .check import check_stream

    if manifest is None:
        default = Path(str(path) + ".manifest.json")
        manifest = default if default.is_file() else None
    return check_stream(iter_batches(path, batch_size=batch_size, fmt=fmt), arch, manifest,
                        proc, pid, tid)
