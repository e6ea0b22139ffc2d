"""Plots of the analysis tables. Each function returns a matplotlib Figure and never shows it
(no pyplot state: works headless, in notebooks and in scripts alike)."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

_MPL = tuple(int(x) for x in matplotlib.__version__.split(".")[:2])


def _fig(w=8.0, h=4.5) -> tuple[Figure, object]:
    fig = Figure(figsize=(w, h), layout="constrained")
    return fig, fig.add_subplot()


def _hbox(ax, data, labels, **kw) -> None:
    """Horizontal box plot on any admitted matplotlib: 3.9 renamed labels= to tick_labels=,
    3.10 replaced vert=False by orientation= (each old name warns in the newer versions)."""
    if _MPL >= (3, 10):
        ax.boxplot(data, orientation="horizontal", tick_labels=labels, **kw)
    else:
        ax.boxplot(data, vert=False, **{"tick_labels" if _MPL >= (3, 9) else "labels": labels}, **kw)


def _note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def counts(table: pd.DataFrame, top: int = 20, title: str = "syscalls") -> Figure:
    """Horizontal bars: the `top` most frequent syscalls of a `counts()` table."""
    per = table.groupby("syscall", observed=True)["count"].sum().nlargest(top)[::-1]
    fig, ax = _fig(7, max(2.5, 0.28 * len(per) + 1))
    ax.barh(per.index.astype(str), per.to_numpy())
    ax.set_xlabel("records")
    ax.set_title(title)
    return fig


def latency(lat: pd.DataFrame, top: int = 12) -> Figure:
    """Latency distribution (box per syscall, log scale) of a `latency()` table; in exit-only
    captures a figure saying latency cannot be measured."""
    fig, ax = _fig()
    ok = lat[lat["latency_ns"].notna()]
    if ok.empty:
        _note(ax, lat.attrs.get("note") or "no syscall with both an enter and an exit time")
        return fig
    names = ok["syscall"].value_counts().index[:top].tolist()
    data = [ok.loc[ok["syscall"] == n, "latency_ns"].astype(float).to_numpy() / 1e3 for n in names]
    _hbox(ax, data, names, showfliers=True)
    ax.set_xscale("log")
    ax.set_xlabel("latency (µs, exit - enter)")
    ax.set_title("syscall latency")
    return fig


def timeline(tl: pd.DataFrame, max_threads: int = 30) -> Figure:
    """One row per thread, a tick per syscall at its start time (seconds since capture start);
    the first `max_threads` threads, the title saying how many were left out."""
    every = tl["thread_tid"].drop_duplicates().tolist()
    tids = every[:max_threads]
    fig, ax = _fig(9, max(2.5, 0.35 * len(tids) + 1.2))
    for i, tid in enumerate(tids):
        t = tl.loc[tl["thread_tid"] == tid, "t_s"].astype(float).to_numpy()
        ax.plot(t, np.full(len(t), i), "|", markersize=8)
    names = tl.drop_duplicates("thread_tid").set_index("thread_tid")["proc_name"]
    ax.set_yticks(range(len(tids)), [f"{t} {names.get(t, '')}" for t in tids])
    ax.set_xlabel("seconds since the first syscall")
    left = len(every) - len(tids)
    ax.set_title("syscalls per thread" + (f" (first {len(tids)} of {len(every)} threads; "
                                          f"{left} left out)" if left else ""))
    return fig


def errors(table: pd.DataFrame) -> Figure:
    """Failed syscalls per errno (an `errors()` table)."""
    fig, ax = _fig(6, max(2.5, 0.35 * len(table) + 1))
    if table.empty:
        _note(ax, "no failed syscalls")
        return fig
    t = table[::-1]
    ax.barh(t["errno"].astype(str), t["count"].to_numpy())
    ax.set_xlabel("failed syscalls")
    ax.set_title("errors by errno")
    return fig


def sufficiency(table: pd.DataFrame, top: int = 30) -> Figure:
    """Per syscall, complete records versus those missing a return value or a full buffer."""
    t = table.nlargest(top, "records")[::-1]
    fig, ax = _fig(8, max(3, 0.3 * len(t) + 1.2))
    y = t["syscall"].astype(str)
    # Exclusive stacks (a record may miss both its result and its output): first reason wins.
    complete = t["complete"].to_numpy()
    rest = t["records"].to_numpy() - complete
    nores = np.minimum((t["records"] - t["with_return_value"]).to_numpy(), rest)
    cut = np.minimum((t["with_output"] - t["with_complete_output"]).to_numpy(), rest - nores)
    other = rest - nores - cut
    left = np.zeros(len(t))
    for vals, label, color in ((complete, "complete", "tab:green"),
                               (nores, "no return value", "tab:red"),
                               (cut, "output missing or cut", "tab:orange"),
                               (other, "other (unpaired, never returns)", "tab:gray")):
        ax.barh(y, vals, left=left, label=label, color=color)
        left += vals
    ax.set_xlabel("records")
    ax.set_title("can the log replay it?")
    ax.legend(loc="lower right", fontsize="small")
    return fig


def overhead(results: pd.DataFrame, baseline: str = "none", title: str | None = None) -> Figure:
    """Slowdown (wall time / median wall time of the baseline) per variant, one box per
    variant and workload: the spread of the runs, never a single run."""
    r = results[~results["warmup"].astype(bool)] if "warmup" in results.columns else results
    base = r[r["variant"] == baseline].groupby(["board", "workload"])["wall_s"].median()
    r = r.join(base.rename("base"), on=["board", "workload"])
    r = r.assign(slowdown=r["wall_s"] / r["base"])
    groups = list(r.groupby(["board", "workload", "variant"], sort=False))
    fig, ax = _fig(9, max(3, 0.4 * len(groups) + 1.2))
    if not groups:
        _note(ax, "no runs")
        return fig
    _hbox(ax, [g["slowdown"].dropna().to_numpy() for _, g in groups],
          [f"{w} · {v}" for (_, w, v), _ in groups])
    ax.axvline(1.0, color="gray", linewidth=0.8, linestyle="--")
    s = r["slowdown"].dropna()
    if len(s) and s.min() > 0 and s.max() / s.min() > 10:  # strace next to sysdig: log scale
        ax.set_xscale("log")
    ax.set_xlabel(f"slowdown (wall time / median of {baseline!r})")
    boards = ", ".join(sorted(r["board"].astype(str).unique()))
    ax.set_title(title or f"capture overhead on {boards}")
    return fig
