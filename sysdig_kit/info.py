"""What a capture holds, in one look: the summary behind `sysdig-kit info`.

Works batch by batch (`read.iter_batches`), so a capture larger than memory can be summarised.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

from .read import iter_batches


def summarize(path, top: int = 10, batch_size: int = 1_000_000, **read_kw) -> dict:
    """Events, time span, CPUs, processes, top event types and format of a capture."""
    events = enter = 0
    first = last = None
    cpus: set = set()
    types: Counter = Counter()
    procs: Counter = Counter()
    tids: set = set()
    no_res = exits = 0
    attrs: dict = {}
    for df in iter_batches(path, batch_size=batch_size, **read_kw):
        attrs = dict(df.attrs)
        if df.empty:
            continue
        events += len(df)
        enter += int((df["evt_dir"] == ">").sum())
        lo, hi = int(df["evt_rawtime"].min()), int(df["evt_rawtime"].max())
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
        cpus.update(int(c) for c in df["evt_cpu"].unique())
        types.update(df["evt_type"].value_counts(sort=False).to_dict())
        procs.update(df["proc_name"].fillna("<NA>").value_counts(sort=False).to_dict())
        tids.update(int(t) for t in df["thread_tid"].unique())
        ex = df["evt_dir"] == "<"
        exits += int(ex.sum())
        no_res += int(df.loc[ex, "evt_rawres"].isna().sum())
    span_ns = (last - first) if events else 0
    return {
        "file": str(path),
        "format": attrs.get("format"),
        "version": attrs.get("scap_version"),
        "arch": attrs.get("arch"),
        "event_table": attrs.get("event_table"),
        "events": events,
        "enter_events": enter,
        "exit_events": exits,
        "exits_without_res": no_res,
        "first_ns": first,
        "last_ns": last,
        "span_s": span_ns / 1e9,
        "cpus": sorted(cpus),
        "threads": len(tids),
        "processes": [{"name": n, "events": c} for n, c in procs.most_common(top)],
        "top_event_types": [{"type": t, "events": c} for t, c in types.most_common(top) if c],
        "warnings": attrs.get("warnings") or [],
    }


def _when(ns) -> str:
    if ns is None:
        return "-"
    t = dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    return f"{t:%Y-%m-%d %H:%M:%S}.{ns % 1_000_000_000:09d} UTC"


def render(s: dict, console) -> None:
    """Print a summary made by `summarize` on a rich console."""
    from rich.table import Table

    fmt = s["format"] or "?"
    if s["version"]:
        fmt += f" {s['version']}"
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("file", s["file"])
    head.add_row("format", fmt + (f" ({s['arch']})" if s["arch"] else ""))
    if s["event_table"]:
        head.add_row("event table", s["event_table"])
    head.add_row("events", f"{s['events']:,} ({s['enter_events']:,} enter, "
                           f"{s['exit_events']:,} exit; {s['exits_without_res']:,} exits "
                           "without a return value)")
    head.add_row("time span", f"{s['span_s']:.6f} s")
    head.add_row("first event", _when(s["first_ns"]))
    head.add_row("last event", _when(s["last_ns"]))
    head.add_row("CPUs", ", ".join(map(str, s["cpus"])) or "-")
    head.add_row("threads", str(s["threads"]))
    console.print(head)
    for title, key, col in (("processes", "processes", "name"),
                            ("top syscalls", "top_event_types", "type")):
        if not s[key]:
            continue
        t = Table(title=title, title_justify="left", show_edge=False)
        t.add_column(col)
        t.add_column("events", justify="right")
        for row in s[key]:
            t.add_row(str(row[col]), f"{row['events']:,}")
        console.print(t)
    for w in s["warnings"]:
        console.print(f"[yellow]warning:[/] {w}")
