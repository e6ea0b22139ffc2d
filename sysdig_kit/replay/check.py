"""Is a capture enough to replay? A verdict, the reasons with counts (per syscall where it
helps), and for each reason what the user can do about it."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd

from .. import versions
from ..errors import KitError
from . import writeback

INSUFFICIENT, WARNING = "insufficient", "warning"


def _replay_complete_drivers() -> list[str]:
    """The drivers with a replay-complete patch set (data/versions.yaml)."""
    return [p.driver for p in versions.pairs() if "replay-complete" in p.patch_sets]


def _per(s: pd.Series) -> dict[str, int]:
    return {str(k): int(v) for k, v in Counter(s.tolist()).most_common()}


def _has(log: pd.DataFrame, flag: str) -> pd.Series:
    return log["flags"].map(lambda f: f is not None and flag in list(f)).astype(bool)


def _reason(code, severity, count, detail, remedy, total=None, per_syscall=None, **extra):
    r = {"code": code, "severity": severity, "count": int(count)}
    if total is not None:
        r["total"] = int(total)
        r["percent"] = round(100.0 * count / total, 1) if total else 0.0
    if per_syscall is not None:
        r["per_syscall"] = per_syscall
    r.update(detail=detail, remedy=remedy, **extra)
    return r


def _dedicated_in_current_driver(names) -> list[str]:
    """Of `names`, those the newest registered driver's event table has a dedicated exit for."""
    from ..read import eventtable

    table = eventtable.load(versions.pairs()[-1].event_table)
    return [n for n in names if table.code.get((n, "<"))]


def manifest_drops(path) -> int | None:
    """Kernel drops recorded in a capture manifest (sysdig's own statistics), if it has them."""
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not JSON"
        raise KitError(f"manifest {path}: {why}") from None
    if not isinstance(data, dict):
        raise KitError(f"manifest {path}: not a capture manifest (a JSON object)")
    found = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if "drop" in str(k).lower() and isinstance(v, int) and not isinstance(v, bool):
                    found.append(v)
                else:
                    walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(data)
    return max(found) if found else None


def check(frame: pd.DataFrame, log: pd.DataFrame, manifest=None) -> dict:
    """The verdict for a capture (`frame`) and its replay log (`log`)."""
    sc = log[log["kind"] == "syscall"]
    exits = sc[sc["evt_num"].notna()]
    reasons = []

    if not len(sc):
        reasons.append(_reason(
            "no_syscalls", INSUFFICIENT, 0, "the capture holds no syscall of the traced process",
            "check the capture's filter (e.g. proc.name) and that the process ran while "
            "sysdig was capturing"))
    nores = exits[exits["res"].isna()]
    if len(nores):
        per = _per(nores["syscall"])
        newer = _dedicated_in_current_driver(per)
        newest = versions.pairs()[-1]
        reasons.append(_reason(
            "no_return_value", INSUFFICIENT, len(nores),
            f"{len(nores)} of {len(exits)} syscall exits "
            f"({100.0 * len(nores) / len(exits):.1f} %) carry no return value: the driver "
            "records these syscalls as generic `syscall` events, which have none",
            (f"the current driver (scap {newest.driver}, sysdig {newest.sysdig}) has events "
             f"with a return "
             f"value for {', '.join(newer)}; " if newer else "")
            + f"no sysdig option restores {'the others' if newer else 'them'}: capture with "
            "sysdig-kit's replay-complete driver (the default build for scap 0.23.2: board "
            "profile sysdig.driver_patches: default, docs/replay-complete.md; generic exits get "
            "`res`), or record them with your own hook (sysdig-kit decode-hooklog); if the "
            "replay does not need them, exclude them with a filter (evt.type!=...)",
            total=len(exits), per_syscall=per))

    trunc = sc[_has(sc, "truncated_buffer")]
    cut = frame.attrs.get("buffers") == "printed_cut"
    if len(trunc) and not cut:  # printed_cut: sysdig's print length hides the snaplen
        need = [int(b["reported_len"]) for bufs in trunc["buffers"] for b in bufs
                if b["output"] and b["reported_len"] is not None
                and b["captured_len"] < b["reported_len"]]
        have = [int(b["captured_len"]) for bufs in trunc["buffers"] for b in bufs if b["output"]]
        snaplen = max(need)
        reasons.append(_reason(
            "truncated_buffer", INSUFFICIENT, len(trunc),
            f"{len(trunc)} syscalls had output buffers cut at the snaplen (captured at most "
            f"{max(have)} bytes; the kernel wrote up to {snaplen})",
            f"capture with -s {snaplen} (the largest buffer the kernel reported)",
            total=int((sc["buffers"].map(lambda b: any(x["output"] for x in b))).sum()),
            per_syscall=_per(trunc["syscall"]), snaplen_needed=snaplen))

    nowb = sc[_has(sc, "no_write_back")]
    if len(nowb):
        per = _per(nowb["syscall"])
        rc_drivers = _replay_complete_drivers()
        patched = {n for n in per if any(w.since for w in writeback.of(n))}
        reasons.append(_reason(
            "no_write_back", INSUFFICIENT, len(nowb),
            f"{len(nowb)} syscalls may have written to the process's memory (struct stat, "
            "signal masks, ...) and the capture does not hold what they wrote",
            "; ".join(filter(None, [
                (f"the replay-complete driver (scap {', '.join(rc_drivers)}; the default build, "
                 "board profile sysdig.driver_patches: default, docs/replay-complete.md) records "
                 "it for " + ", ".join(sorted(patched))) if patched else "",
                ("no sysdig driver records it for " + ", ".join(sorted(set(per) - patched))
                 + ": let the replay execute them, or hook them") if set(per) - patched else "",
            ])),
            total=len(exits), per_syscall=per))

    unp_enter = sc[_has(sc, "unpaired_enter")]
    died = unp_enter[_has(unp_enter, "thread_died")]
    at_end = unp_enter[_has(unp_enter, "capture_end")]
    exec_lost = at_end[at_end["syscall"].isin(["execve", "execveat"])]
    mid = unp_enter.drop(died.index.union(at_end.index))
    if len(mid):
        reasons.append(_reason(
            "unpaired_enter", INSUFFICIENT, len(mid),
            f"{len(mid)} syscall enters have no exit although the thread went on: events "
            "were lost", "capture with a larger buffer or a tighter filter to avoid drops",
            per_syscall=_per(mid["syscall"])))
    if len(died):
        reasons.append(_reason(
            "thread_died", WARNING, len(died),
            f"{len(died)} threads died inside a syscall (no result exists to replay)",
            "none needed: the syscall never returned", per_syscall=_per(died["syscall"])))
    if len(exec_lost):
        reasons.append(_reason(
            "lost_after_exec", WARNING, len(exec_lost),
            f"{len(exec_lost)} threads were no longer captured after execve (a proc.name "
            "filter stops matching once a child execs another program)",
            "to follow children, filter on the process tree (e.g. proc.apid=PID or "
            "proc.pid=PID) instead of proc.name", per_syscall=_per(exec_lost["syscall"])))
    rest_end = at_end.drop(exec_lost.index)
    if len(rest_end):
        reasons.append(_reason(
            "in_flight_at_end", WARNING, len(rest_end),
            f"{len(rest_end)} syscalls were still running when the capture stopped",
            "stop the capture after the traced process has exited",
            per_syscall=_per(rest_end["syscall"])))

    unp_exit = sc[_has(sc, "unpaired_exit")]
    start = unp_exit[_has(unp_exit, "capture_start")]
    lost = unp_exit.drop(start.index)
    if len(lost):
        reasons.append(_reason(
            "unpaired_exit", INSUFFICIENT, len(lost),
            f"{len(lost)} syscall exits have no enter in the middle of a thread: events were "
            "lost (their arguments are missing)",
            "capture with a larger buffer or a tighter filter to avoid drops",
            per_syscall=_per(lost["syscall"])))
    if len(start):
        reasons.append(_reason(
            "started_mid_syscall", WARNING, len(start),
            f"{len(start)} threads were inside a syscall when the capture started (its "
            "result is logged, its arguments are not)",
            "start the capture before the traced process", per_syscall=_per(start["syscall"])))

    named = sc[_has(sc, "named_from_nr")]
    if len(named):
        reasons.append(_reason(
            "unknown_to_sysdig", WARNING, len(named),
            f"{len(named)} syscalls are unknown to this sysdig (`<unknown>`); named from "
            f"their {log.attrs.get('arch')} syscall number",
            "none needed for the log; a newer driver knows them",
            per_syscall=_per(named["syscall"])))
    unknown = sc[sc["syscall"].isin(["<unknown>", "syscall"])]
    if len(unknown):
        printed = frame.attrs.get("format") in ("text", "json")
        reasons.append(_reason(
            "unknown_syscall", INSUFFICIENT, len(unknown),
            f"{len(unknown)} syscalls are unknown to the driver and have no number to name them",
            # sysdig's text and JSON print `<unknown>` without the number the scap file holds
            "read the .scap file itself: sysdig's text and JSON do not print the number"
            if printed else
            "give the capture's architecture (--arch) so the syscall number names them"))

    if frame.attrs.get("buffers", "raw") != "raw":
        outs = sc[sc["buffers"].map(lambda bs: any(b["output"] for b in bs)).astype(bool)]
        if len(outs):
            reasons.append(_reason(
                "printed_buffers", INSUFFICIENT, len(outs),
                f"{len(outs)} syscalls wrote buffers that this input holds only as sysdig "
                "printed them (non-printable bytes as '.'"
                + (f"; {len(trunc)} cut, at the snaplen or at sysdig's print length"
                   if cut else "") + "), not their bytes",
                "read the .scap file itself, or sysdig's output with -b (base64) in the kit "
                "format (sysdig_kit.read.text.KIT_SYSDIG_ARGS)",
                per_syscall=_per(outs["syscall"])))

    nums = frame["evt_num"].to_numpy()
    steps = nums[1:] - nums[:-1] if len(nums) > 1 else nums[:0]
    gaps = steps[steps > 1]
    if len(gaps):
        # sysdig itself numbers events it never shows (seen in real captures), so a gap is
        # a warning: the events may be internal ones, or the frame may have been filtered.
        reasons.append(_reason(
            "evt_num_gaps", WARNING, len(gaps),
            f"{len(gaps)} gaps in evt_num ({int((gaps - 1).sum())} event numbers not in the "
            "frame: events sysdig numbers but does not show, or a filtered frame)",
            "read the whole capture, unfiltered (filter the log instead, --proc/--pid/--tid)"))

    drop_events = int((frame["evt_type"].astype(str) == "drop").sum())
    mdrops = manifest_drops(manifest)
    if drop_events or mdrops:
        reasons.append(_reason(
            "drops", INSUFFICIENT, max(drop_events, mdrops or 0),
            f"the driver dropped events ({drop_events} drop events in the capture"
            + (f", {mdrops} drops in the manifest" if mdrops is not None else "") + ")",
            "capture with a larger driver buffer, a tighter filter, or a lower snaplen"))

    if log.attrs.get("arch") is None and len(sc):
        reasons.append(_reason(
            "no_arch", WARNING, int(sc["nr"].isna().sum()),
            "the capture does not say its architecture: syscall numbers are missing",
            "give --arch arm64 (or x86_64)"))

    for w in frame.attrs.get("warnings") or []:
        reasons.append(_reason("reader_warning", WARNING, 1, str(w), "see the reader's message"))

    verdict = INSUFFICIENT if any(r["severity"] == INSUFFICIENT for r in reasons) else "sufficient"
    procexits = log[log["kind"] == "procexit"]
    from .api import INCOMPLETE  # the replayer's own rule for a complete record

    bad = sc["flags"].map(lambda f: bool(INCOMPLETE.intersection(f))).astype(bool)
    per_thread = {
        str(tid): {"proc_name": None if pd.isna(g["proc_name"].iloc[-1]) else g["proc_name"].iloc[-1],
                   "records": len(g), "incomplete": int(bad[g.index].sum())}
        for tid, g in sc.groupby("thread_tid")}
    return {
        "verdict": verdict,
        "source": frame.attrs.get("source"),
        "arch": log.attrs.get("arch"),
        "era": log.attrs.get("era"),
        "events": len(frame),
        "syscall_records": len(sc),
        "syscall_exits": len(exits),
        "threads": int(log["thread_tid"].nunique()),
        "exit_status": {str(t): (None if pd.isna(r) else int(r))
                        for t, r in zip(procexits["thread_tid"], procexits["res"])},
        "manifest_drops": mdrops,
        "per_thread": per_thread,
        "reasons": reasons,
    }


def render(result: dict) -> str:
    """The verdict as text for people."""
    head = (f"{result['verdict'].upper()}: {result['source']} ({result['arch'] or 'arch ?'}, "
            f"{result['era']} era): {result['syscall_records']} syscalls, "
            f"{result['syscall_exits']} exits, {result['threads']} threads")
    lines = [head]
    for r in result["reasons"]:
        lines.append(f"- [{r['severity']}] {r['code']}: {r['detail']}")
        if r.get("per_syscall"):
            top = list(r["per_syscall"].items())
            shown = ", ".join(f"{k} {v}" for k, v in top[:12])
            more = f", ... (+{len(top) - 12} more)" if len(top) > 12 else ""
            lines.append(f"    per syscall: {shown}{more}")
        lines.append(f"    remedy: {r['remedy']}")
    if result.get("per_thread"):
        lines.append("incomplete records per thread: " + ", ".join(
            f"{t} ({v['proc_name']}) {v['incomplete']}/{v['records']}"
            for t, v in list(result["per_thread"].items())[:12]))
    if result["exit_status"]:
        lines.append("exit status (procexit): " + ", ".join(
            f"tid {t}: {s}" for t, s in result["exit_status"].items()))
    return "\n".join(lines)
