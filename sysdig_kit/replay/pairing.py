"""Turn an event frame (docs/frame.md) into one record per syscall, per thread, in order.

Both eras of the format: enter+exit pairs (libs < 0.22) and lone exits carrying every
parameter (libs >= 0.22). A thread is a small state machine: at most one syscall in flight.
Every syscall event ends up in exactly one record (never lost, never invented); non-syscall
events make no record, except `procexit`, which becomes the thread's last record with the
exit status (exit_group never returns, so this is where `exit 3` shows).

The work is column-wise (pairs.py pairs, records.py decodes and assembles); frames of one
capture can be fed one after the other (`build_batches`), memory staying that of one frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import pandas as pd

from ..errors import KitError
from . import syscalls
from .pairs import CLONES, EXECS, NEVER_RETURNS, NON_SYSCALL, Events, Pairing  # noqa: F401
from .records import assemble

GENERIC_PARAMS = ("ID", "nativeID")


def build(df: pd.DataFrame, arch: str | None = None) -> pd.DataFrame:
    """The replay log of frame `df` (one row per record; columns in log.COLUMNS)."""
    from .log import make_log_table

    arch = _arch(df.attrs, arch)
    p = Pairing()
    ev, recs = p.feed(Events.of(df), final=True)
    return make_log_table(assemble(ev, recs, arch, df.attrs), **_header(df.attrs, arch, p))


def build_batches(frames: Iterable[pd.DataFrame], arch: str | None = None
                  ) -> Iterator[pd.DataFrame]:
    """Replay-log frames from a stream of event frames (`sysdig_kit.read.iter_batches`), for
    captures larger than memory. Each yielded frame holds the records completed so far, in
    order of their first event; a thread's records keep their `seq` across frames. The era is
    decided by the first frame with syscalls, so frames should not be tiny (thousands of
    events; iter_batches' default is a million)."""
    from .log import make_log_table

    for table, header in build_tables(frames, arch):
        yield make_log_table(table, **header)


def build_tables(frames: Iterable[pd.DataFrame], arch: str | None = None, lean: bool = False
                 ) -> Iterator[tuple]:
    """What build_batches yields, as (Arrow table of log.SCHEMA, header fields): no pandas
    frame in between. `lean`: without args and buffer data (records.assemble), for check."""
    return tables_of(((Events.of(df), df.attrs) for df in frames), arch, lean)


def tables_of(batches: Iterable[tuple], arch: str | None = None,
              lean: bool = False) -> Iterator[tuple]:
    """build_tables from (Events, the frame's attrs[, True if known to be the last]) per
    batch: what a frame gives, or the scap reader's raw columns (Events.of_parts). A batch
    known to be the last closes what is still in flight itself (no batch of its own)."""
    p, held, first, closed = Pairing(), [], None, False
    for ev, attrs, *last in batches:
        if first is None:
            first, arch = attrs, _arch(attrs, arch)
        closed = bool(last and last[0])
        ev, recs = p.feed(ev, final=closed)
        held.append(assemble(ev, recs, arch, attrs, lean))
        if p.exit_only is None and not closed:  # no syscall yet: the era is unknown
            continue
        yield _concat(held), _header(attrs, arch, p)
        held = []
    if first is not None and not closed:
        ev, recs = p.feed(Events.empty(), final=True)  # what is still in flight
        held.append(assemble(ev, recs, arch, first, lean))
        yield _concat(held), _header(first, arch, p)


def _concat(tables):
    import pyarrow as pa

    return tables[0] if len(tables) == 1 else pa.concat_tables(tables)


def _header(attrs: dict, arch, p: Pairing) -> dict:
    return {"arch": arch, "source": attrs.get("source"),
            "era": "exit_only" if p.exit_only in (True, None) else "enter_exit",
            "reader_warnings": list(attrs.get("warnings") or [])}


def _arch(attrs: dict, arch: str | None) -> str | None:
    given = syscalls.normalize_arch(arch)
    found = syscalls.normalize_arch(attrs.get("arch")) if attrs.get("arch") else None
    if given and found and given != found:
        raise KitError(f"--arch {given} contradicts the capture, which is {found}")
    return found or given


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
