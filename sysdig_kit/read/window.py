"""Time and event-number windows on frames and replay logs.

`window(x, since=, until=, evt_num=)`: `since`/`until` are absolute times (a datetime, a
pandas Timestamp, an ISO string such as "2026-11-26 16:45:00.5", or integer ns since the epoch)
or offsets from the capture's first event (a timedelta, or a string starting with "+":
"+1.5s", "+250ms", "+2min"); the window is since <= t < until. `evt_num` is an inclusive
(first, last) pair or a "A-B" / "A:B" string (either end may be empty). A replay log's record
is placed by its exit event (time and number), or by its enter when it has no exit.
"""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pandas as pd

from ..errors import KitError


def _time_col(x: pd.DataFrame) -> np.ndarray:
    """Event time in ns: the frame's evt_rawtime, or a replay log's exit (else enter) time."""
    if "evt_rawtime" in x.columns:
        return x["evt_rawtime"].to_numpy(np.int64)
    if "exit_ts" in x.columns:
        t = x["exit_ts"].astype("Int64").fillna(x["enter_ts"].astype("Int64"))
        return t.fillna(-1).to_numpy(np.int64)
    raise KitError("time window: no evt_rawtime (frame) nor exit_ts/enter_ts (replay log)")


def to_ns(value, start: int) -> int:
    """A window bound in ns since the epoch; `start`: the capture's first event."""
    if isinstance(value, (bool, np.bool_)):
        raise KitError(f"time window: {value!r} is not a time")
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (dt.timedelta, pd.Timedelta)):
        return start + int(pd.Timedelta(value).value)
    if isinstance(value, (dt.datetime, pd.Timestamp)):
        ts = pd.Timestamp(value)
        return int((ts.tz_convert("UTC").tz_localize(None) if ts.tzinfo else ts).value)
    if isinstance(value, str):
        v = value.strip()
        if v.startswith("+"):
            try:
                return start + int(pd.Timedelta(v[1:]).value)
            except ValueError:
                raise KitError(f"time window: bad offset {value!r} (e.g. +1.5s, +250ms)") from None
        if re.fullmatch(r"\d{19}", v):
            return int(v)
        try:
            return to_ns(pd.Timestamp(v), start)
        except ValueError:
            raise KitError(f"time window: bad time {value!r} (ISO time, ns since the epoch, "
                           "or +OFFSET from the capture start)") from None
    raise KitError(f"time window: {value!r} is not a time")


def parse_range(spec) -> tuple[int | None, int | None]:
    if spec is None:
        return None, None
    if isinstance(spec, str):
        m = re.fullmatch(r"\s*(\d*)\s*[-:]\s*(\d*)\s*|\s*(\d+)\s*", spec)
        if not m:
            raise KitError(f"event range {spec!r}: expected A-B, A-, -B or N")
        if m.group(3):
            return int(m.group(3)), int(m.group(3))
        return (int(m.group(1)) if m.group(1) else None, int(m.group(2)) if m.group(2) else None)
    try:
        a, b = spec
    except (TypeError, ValueError):
        raise KitError(f"event range {spec!r}: expected (first, last)") from None
    return a, b


def window_mask(x: pd.DataFrame, since=None, until=None, evt_num=None) -> np.ndarray:
    m = np.ones(len(x), dtype=bool)
    if since is not None or until is not None:
        t = _time_col(x)
        start = int(t[t >= 0].min()) if (t >= 0).any() else 0
        if since is not None:
            m &= t >= to_ns(since, start)
        if until is not None:
            m &= (t < to_ns(until, start)) & (t >= 0)
    a, b = parse_range(evt_num)
    if a is not None or b is not None:
        n = x["evt_num"].astype("Int64")
        if "enter_evt_num" in x.columns:  # a replay log: a record without exit by its enter
            n = n.fillna(x["enter_evt_num"].astype("Int64"))
        if a is not None:
            m &= (n >= a).fillna(False).to_numpy(bool)
        if b is not None:
            m &= (n <= b).fillna(False).to_numpy(bool)
    return m


def window(x: pd.DataFrame, since=None, until=None, evt_num=None) -> pd.DataFrame:
    """The rows of a frame or replay log inside the window (module docstring)."""
    out = x[window_mask(x, since, until, evt_num)].reset_index(drop=True)
    out.attrs = x.attrs
    return out
