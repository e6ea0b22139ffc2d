"""sysdig-kit: record syscalls with sysdig on an arm64 board, read captures, build replay logs."""

__version__ = "0.1.0"


def read(path, **kwargs):
    """Read a capture (scap, sysdig text or JSON) into a pandas frame; see docs/frame.md."""
    from .read import read as _read

    return _read(path, **kwargs)
