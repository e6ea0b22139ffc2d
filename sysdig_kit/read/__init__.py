"""Read sysdig captures (scap, sysdig text, sysdig JSON) into one frame schema (docs/frame.md).

One reader class per input format, each with `sniff(head) -> bool`, `read(path, **kw)` and
`iter_batches(path, batch_size, **kw)`; `read()` picks the reader from the file's first bytes.
No sysdig binary, fabric or docker is needed here.
"""

from __future__ import annotations

import zlib
from pathlib import Path

from ..errors import KitError
from .args import decode_args  # noqa: F401  (the frame's raw parameters as Python values)

FORMATS = ("scap", "text", "json")


def _reader(name: str):
    # Imported lazily, one format at a time, so that reading one format never pays for the
    # others (nor a scap capture for the text reader's import).
    if name == "scap":
        from .scap import ScapReader

        return ScapReader
    if name == "json":
        from .jsonl import JsonReader

        return JsonReader
    from .text import TextReader

    return TextReader


def _head(path: Path, n: int = 4096) -> bytes:
    with open(path, "rb") as f:
        raw = f.read(n)
        if raw[:2] != b"\x1f\x8b":
            return raw
        # gzip: libscap reads it transparently, so do we. A stream cut short still has a
        # head (the reader warns about the cut); a corrupt one is the user's to know.
        z, out = zlib.decompressobj(wbits=31), b""
        try:
            while len(out) < n and raw:
                out += z.decompress(raw, n - len(out))
                raw = z.unconsumed_tail or (b"" if z.eof else f.read(1 << 16))
        except zlib.error as exc:
            raise KitError(f"{path}: corrupt gzip stream ({exc})") from None
    return out


def reader_for(path, fmt: str | None = None):
    """The reader class for `path`: named by `fmt`, else detected from the first bytes."""
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: no such file")
    if fmt is not None and fmt not in FORMATS:
        raise KitError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    head = _head(path)
    if not head:
        raise KitError(f"{path}: empty file, not a capture")
    found = next((n for n in ("scap", "json", "text") if _reader(n).sniff(head)), None)
    if fmt is not None:
        if found is not None and found != fmt:  # say so, rather than parse it as fmt
            raise KitError(f"{path}: format {fmt} given, but the file is a {found} capture "
                           "(leave the format out: it is detected)")
        return _reader(fmt)
    if found is not None:
        return _reader(found)
    hint = " (it holds terminal colour codes: print it again without colour)" \
        if b"\x1b[" in head else ""
    raise KitError(f"{path}: not a sysdig capture (scap, sysdig text or JSON) at byte offset 0"
                   + hint)


def _select(df, filter, since, until, evt_num, walker=None):
    # (filter and window are imported only when asked for: most reads use neither)
    windowed = since is not None or until is not None or evt_num is not None
    if not filter:
        if windowed:
            from .window import window

            df = window(df, since, until, evt_num)
        return df
    from .filter import apply_filter, drop_fd_state, with_fd_state

    full = df
    df = with_fd_state(df, filter, walker)  # fd state needs every event, before any window
    if windowed:
        from .window import window

        df = window(df, since, until, evt_num)
    return drop_fd_state(apply_filter(df, filter), full)


def read(path, fmt: str | None = None, filter: str | None = None, since=None, until=None,
         evt_num=None, **kwargs):
    """Read a whole capture into a pandas DataFrame (schema: docs/frame.md). `filter`: a
    sysdig filter (read/filter.py); `since`/`until`/`evt_num`: a window (read/window.py)."""
    df = reader_for(path, fmt).read(Path(path), **kwargs)
    return _select(df, filter, since, until, evt_num)


def iter_batches(path, batch_size: int = 1_000_000, fmt: str | None = None,
                 filter: str | None = None, since=None, until=None, evt_num=None, **kwargs):
    """Yield frames of at most `batch_size` events, for captures larger than memory (each
    batch filtered/windowed as `read` does; offsets count from the first batch's start)."""
    start = walker = None
    for df in reader_for(path, fmt).iter_batches(Path(path), batch_size=batch_size, **kwargs):
        if walker is None and filter and "fd" in filter and df.attrs.get("format") == "scap":
            from .fdwalk import Walker

            walker = Walker(df)  # the fd table carries on from batch to batch
        if start is None and len(df):
            start = int(df["evt_rawtime"].min())
        if (since is not None or until is not None) and start is not None:
            from .window import to_ns

            since_ns = to_ns(since, start) if since is not None else None
            until_ns = to_ns(until, start) if until is not None else None
            yield _select(df, filter, since_ns, until_ns, evt_num, walker)
        else:
            yield _select(df, filter, None, None, evt_num, walker)
