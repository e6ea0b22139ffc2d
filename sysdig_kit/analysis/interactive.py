"""A zoomable per-thread timeline (plotly), saved as one self-contained HTML file that works
offline (plotly.js inlined). plotly is an optional extra: `pip install sysdig-kit[interactive]`.

Each thread is a row; a syscall is a bar from its enter to its exit where the capture has both
(enter/exit era), else a marker at its exit (exit-only era); hovering shows syscall, result
and errno. Signals, drops and process exits are diamonds on their thread's row.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import KitError
from .trace import chrome_trace


def _plotly():
    try:
        import plotly.graph_objects as go
    except ImportError:
        raise KitError("the interactive timeline needs plotly: pip install "
                       "'sysdig-kit[interactive]' (or plotly)") from None
    return go


def timeline_figure(x: pd.DataFrame, max_threads: int | None = None):
    """A plotly Figure of `x` (an event frame or a replay log); `max_threads` keeps the
    busiest threads and says in the title how many it left out."""
    go = _plotly()
    evs = [e for e in chrome_trace(x)["traceEvents"] if e["ph"] in ("X", "i")]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in chrome_trace(x)["traceEvents"]
             if e["ph"] == "M" and e["name"] == "thread_name"}
    if not evs:
        raise KitError("nothing to draw: no syscalls or instants")
    df = pd.DataFrame(evs)
    df["track"] = [names.get((p, t), str(t)) for p, t in zip(df["pid"], df["tid"])]
    busiest = df["track"].value_counts()
    left_out = 0
    if max_threads is not None and len(busiest) > max_threads:
        left_out = len(busiest) - max_threads
        df = df[df["track"].isin(busiest.index[:max_threads])]
    df["ms"] = df["ts"] / 1e3
    df["hover"] = [f"{n} res={a.get('res')} {a.get('errno', '')}".strip()
                   for n, a in zip(df["name"], df["args"].map(lambda a: a or {}))]
    fig = go.Figure()
    sl = df[df["ph"] == "X"]
    if len(sl):
        fig.add_trace(go.Bar(base=sl["ms"], x=np.maximum(sl["dur"] / 1e3, 1e-4), y=sl["track"],
                             orientation="h", name="syscall (enter→exit)",
                             hovertext=sl["hover"], hoverinfo="text+x"))
    for cat, symbol in (("syscall", "line-ns-open"), ("signal", "diamond"),
                        ("drop", "x"), ("procexit", "square")):
        pts = df[(df["ph"] == "i") & (df["cat"] == cat)]
        if len(pts):
            fig.add_trace(go.Scatter(x=pts["ms"], y=pts["track"], mode="markers",
                                     marker={"symbol": symbol, "size": 9}, name=cat,
                                     hovertext=pts["hover"], hoverinfo="text+x"))
    title = f"syscalls per thread ({df['track'].nunique()} threads"
    title += f"; {left_out} quieter threads left out)" if left_out else ")"
    fig.update_layout(title=title, xaxis_title="ms since the capture's first event",
                      barmode="overlay", height=max(300, 28 * df["track"].nunique() + 150))
    return fig


def timeline_html(x: pd.DataFrame, path, max_threads: int | None = None) -> Path:
    """Write the timeline as a self-contained HTML file (plotly.js inlined: works offline)."""
    from ..atomic import atomic_write

    fig = timeline_figure(x, max_threads)
    html = fig.to_html(include_plotlyjs=True, full_html=True)
    return atomic_write(path, lambda tmp: Path(tmp).write_text(html))
