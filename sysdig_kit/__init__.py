"""sysdig-kit: record syscalls with sysdig on an arm64 board, read captures, build replay logs.

`sysdig_kit.read(path)` is the reader function (docs/frame.md); the reading code lives in the
subpackage `sysdig_kit.read`, whose other names are imported with
`from sysdig_kit.read import decode_args, iter_batches`.
"""

__version__ = "0.1.0"

# Binding the function after the subpackage is imported keeps `sysdig_kit.read` callable.
from .read import iter_batches, read
from .read.typed import events as _events


def events(capture_or_frame, evt_type: str, evt_dir: str | None = None, fd_name: bool = False,
           **read_kw):
    """One event type with a typed column per parameter (docs/frame.md "Typed events"), from
    a frame or a capture path (read with `read(path, **read_kw)`: filter=, since=, ...).
    `fd_name`: add sysdig's fd.name, from the fd table replayed over the whole capture (so a
    frame given must be a whole scap capture; a path's filter/window apply afterwards)."""
    import pandas as pd

    x = capture_or_frame
    if not fd_name:
        return _events(x if isinstance(x, pd.DataFrame) else read(x, **read_kw), evt_type,
                       evt_dir)
    from .read import _select
    from .read.fdwalk import fd_names

    picks = {k: read_kw.pop(k, None) for k in ("filter", "since", "until", "evt_num")}
    if not isinstance(x, pd.DataFrame):
        x = read(x, **read_kw)
    if "fd_name" not in x.columns:
        attrs = x.attrs
        x = x.assign(fd_name=fd_names(x))
        x.attrs = attrs
    return _events(_select(x, *picks.values()), evt_type, evt_dir)


__all__ = ["__version__", "events", "iter_batches", "read"]
