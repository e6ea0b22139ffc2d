"""sysdig-kit: record syscalls with sysdig on an arm64 board, read captures, build replay logs.

`sysdig_kit.read(path)` is the reader function (docs/frame.md); the reading code lives in the
subpackage `sysdig_kit.read`, whose other names are imported with
`from sysdig_kit.read import decode_args, iter_batches`.
"""

__version__ = "0.1.0"

# Binding the function after the subpackage is imported keeps `sysdig_kit.read` callable.
from .read import iter_batches, read
from .read.typed import events as _events


def events(capture_or_frame, evt_type: str, evt_dir: str | None = None, **read_kw):
    """One event type with a typed column per parameter (docs/frame.md "Typed events"), from
    a frame or a capture path (read with `read(path, **read_kw)`: filter=, since=, ...)."""
    import pandas as pd

    x = capture_or_frame
    if not isinstance(x, pd.DataFrame):
        x = read(x, **read_kw)
    return _events(x, evt_type, evt_dir)

__all__ = ["__version__", "events", "iter_batches", "read"]
