"""Is a capture enough to replay? A verdict, the reasons with counts (per syscall where it
helps), and for each reason what the user can do about it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .. import versions
from ..errors import KitError
from . import writeback

INSUFFICIENT, WARNING = "insufficient", "warning"
# what the verdict reads of a log (not args, not buffer data)
_LOG_COLUMNS = ("thread_tid", "proc_name", "seq", "kind", "syscall", "nr", "evt_num",
                "enter_evt_num", "res", "buffers", "flags")


def _replay_complete_drivers() -> list[str]:
    """The drivers with a replay-complete patch set (data/versions.yaml)."""
    return [p.driver for p in versions.pairs() if "replay-complete" in p.patch_sets]


def _list_masks(col, n: int):
    """flag -> per row, does the list column hold it (a function, computed per flag)."""
    arr = pa.chunked_array(col).combine_chunks() if n else pa.array([], pa.list_(pa.string()))
    parent = pc.list_parent_indices(arr).to_numpy()
    values = arr.flatten()

    def has(flag: str) -> np.ndarray:
        m = np.zeros(n, dtype=bool)
        m[parent[pc.equal(values, flag).to_numpy(zero_copy_only=False)]] = True
        return m

    return has


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
    t = Tally()
    t.add_frame(frame)
    t.add_log(log)
    return t.result(manifest)


def check_stream(frames, arch=None, manifest=None, proc=(), pid=(), tid=()) -> dict:
    """The verdict for a capture read frame by frame (`read.iter_batches`): gives what
    `check` gives on the whole frame and its log, in the memory of one frame. Drops and gaps
    are judged on every event, records on the selected processes/threads."""
    from .pairs import Events

    return check_events(((Events.of(df), df.attrs) for df in frames), arch, manifest,
                        proc, pid, tid)


def check_events(batches, arch=None, manifest=None, proc=(), pid=(), tid=()) -> dict:
    """check_stream from (Events, attrs[, last]) per batch (a frame's, or the scap reader's
    raw columns: replay.check_file)."""
    from .pairing import tables_of

    t = Tally()

    def seen(ev, attrs, *last):
        drop = ev.names.index("drop") if "drop" in ev.names else -1
        t.add_events(ev.num, int((ev.type == drop).sum()), attrs)
        return ev.select(proc, pid, tid), attrs, *last

    for table, header in tables_of((seen(*b) for b in batches), arch=arch, lean=True):
        t.add_table(table, header)
    return t.result(manifest)


class Tally:
    """What the verdict needs from a frame and its log, summed frame by frame: counts per
    reason and syscall (with where each syscall first shows, for the order of ties), per
    thread, exit statuses, gaps between event numbers."""

    def __init__(self):
        self.events = self.drop_events = self.gaps = self.gap_events = 0
        self.last_num = None
        self.attrs: dict = {}
        self.log_attrs: dict = {}
        self.per: dict[str, dict] = {}  # reason -> syscall -> [count, first]
        self.n = dict.fromkeys(("sc", "exits", "trunc_total", "unknown", "no_nr"), 0)
        self.need = self.have = None
        self.threads: set = set()
        self.per_thread: dict = {}  # tid -> [seq of the last record, proc_name, records, incomplete]
        self.exit_status: dict = {}  # tid -> (first, last, res)
        self.rows = 0
        self.vocab: list = []  # this log frame's syscall names (codes index it)

    def add_frame(self, frame: pd.DataFrame) -> None:
        drops = int((frame["evt_type"] == "drop").sum()) if len(frame) else 0
        self.add_events(frame["evt_num"].to_numpy(), drops, frame.attrs)

    def add_events(self, nums: np.ndarray, drops: int, attrs: dict) -> None:
        """A batch of events: their evt_num, how many are drop events, the frame's attrs."""
        self.events += len(nums)
        if self.last_num is not None and len(nums):
            nums = np.concatenate([[self.last_num], nums])
        steps = nums[1:] - nums[:-1] if len(nums) > 1 else nums[:0]
        gaps = steps[steps > 1]
        self.gaps += len(gaps)
        self.gap_events += int((gaps - 1).sum())
        if len(nums):
            self.last_num = nums[-1]
        self.drop_events += drops
        self.attrs = dict(attrs)

    def _count(self, reason: str, codes: np.ndarray, first: np.ndarray) -> None:
        """Add records (their syscall name codes into self.vocab, where each begins)."""
        per = self.per.setdefault(reason, {})
        if not len(codes):
            return
        u, inv = np.unique(codes, return_inverse=True)
        cnt = np.bincount(inv)
        lo = np.full(len(u), np.inf)
        np.minimum.at(lo, inv, first)
        for code, c, f in zip(u.tolist(), cnt.tolist(), lo.tolist()):
            name = self.vocab[code]
            old = per.get(name)
            per[name] = [c, f] if old is None else [old[0] + c, min(old[1], f)]

    def add_log(self, log: pd.DataFrame) -> None:
        from .log import SCHEMA

        cols = [c for c in _LOG_COLUMNS if c in log.columns]
        t = pa.Table.from_pandas(log[cols], preserve_index=False,
                                 schema=pa.schema([SCHEMA.field(c) for c in cols]))
        self.add_table(t, dict(log.attrs))

    def add_table(self, t: pa.Table, header: dict) -> None:
        """A log batch as an Arrow table (log.SCHEMA; args and buffer data are not read)."""
        self.log_attrs = dict(header)
        n = t.num_rows
        if not n:
            return

        def col(name):
            return pa.chunked_array(t.column(name)).combine_chunks()

        def ints(name):  # int64 with nulls as float64 NaN
            return col(name).to_numpy(zero_copy_only=False).astype("float64")

        def isna(name):
            return col(name).is_null().to_numpy(zero_copy_only=False)

        tid = col("thread_tid").to_numpy()
        self.threads.update(np.unique(tid).tolist())
        ev, en = ints("evt_num"), ints("enter_evt_num")
        # where a record begins: its first event, then its place in the stream
        first = np.where(np.isnan(en), ev, en) * 1e6 + (self.rows + np.arange(n)) % 1e6
        first = np.where(np.isnan(first), self.rows + np.arange(n), first)
        self.rows += n
        kind = col("kind")
        sc = pc.fill_null(pc.equal(kind, "syscall"), False).to_numpy(zero_copy_only=False)
        d = col("syscall").dictionary_encode()
        self.vocab = d.dictionary.to_pylist() + [None]
        names = d.indices.fill_null(len(self.vocab) - 1).to_numpy().astype(np.int64)
        fl = _list_masks(t.column("flags"), n)
        exits = sc & ~np.isnan(ev)
        res_na = isna("res")
        self.n["sc"] += int(sc.sum())
        self.n["exits"] += int(exits.sum())
        nores = exits & res_na
        self._count("no_return_value", names[nores], first[nores])

        trunc = sc & fl("truncated_buffer")
        bufs = col("buffers")
        parent = pc.list_parent_indices(bufs).to_numpy()
        flat = bufs.flatten()
        out = flat.field("output").to_numpy(zero_copy_only=False).astype(bool)
        cap = flat.field("captured_len").to_numpy(zero_copy_only=False).astype("float64")
        rep = flat.field("reported_len").to_numpy(zero_copy_only=False)
        has_out = np.zeros(n, dtype=bool)
        has_out[parent[out]] = True
        self.n["trunc_total"] += int((sc & has_out).sum())
        self._count("printed_buffers", names[sc & has_out], first[sc & has_out])
        in_trunc = trunc[parent] & out
        need = in_trunc & ~np.isnan(rep) & (cap < np.nan_to_num(rep, nan=-1))
        if need.any():
            self.need = max(self.need or 0, int(np.nanmax(rep[need])))
        have = cap[in_trunc].astype("float64")
        if np.isfinite(have).any():  # (printed cut buffers have no captured length)
            self.have = max(self.have or 0, int(np.nanmax(have)))
        self._count("truncated_buffer", names[trunc], first[trunc])
        nowb = sc & fl("no_write_back")
        self._count("no_write_back", names[nowb], first[nowb])

        unp = sc & fl("unpaired_enter")
        died = unp & fl("thread_died")
        at_end = unp & fl("capture_end")
        execs = [i for i, v in enumerate(self.vocab) if v in ("execve", "execveat")]
        exec_lost = at_end & np.isin(names, execs)
        for reason, m in (("unpaired_enter", unp & ~died & ~at_end), ("thread_died", died),
                          ("lost_after_exec", exec_lost), ("in_flight_at_end", at_end & ~exec_lost)):
            self._count(reason, names[m], first[m])
        unx = sc & fl("unpaired_exit")
        start = unx & fl("capture_start")
        self._count("unpaired_exit", names[unx & ~start], first[unx & ~start])
        self._count("started_mid_syscall", names[start], first[start])
        named = sc & fl("named_from_nr")
        self._count("unknown_to_sysdig", names[named], first[named])
        unknown = [i for i, v in enumerate(self.vocab) if v in ("<unknown>", "syscall")]
        self.n["unknown"] += int((sc & np.isin(names, unknown)).sum())
        self.n["no_nr"] += int((sc & isna("nr")).sum())

        from .api import INCOMPLETE  # the replayer's own rule for a complete record

        bad = np.zeros(n, dtype=bool)
        for f in INCOMPLETE:
            bad |= fl(f)
        self._per_thread(tid, col("seq").to_numpy(), bad, sc, col("proc_name"))
        pe = np.flatnonzero(~sc & pc.fill_null(pc.equal(kind, "procexit"), False)
                            .to_numpy(zero_copy_only=False))
        res = col("res").take(pa.array(pe, pa.int64()))
        for x, f, r in zip(tid[pe].tolist(), first[pe].tolist(), res.to_pylist()):
            old = self.exit_status.get(x)
            if old is None:
                self.exit_status[x] = (f, f, r)
            elif f >= old[1]:
                self.exit_status[x] = (old[0], f, r)

    def _per_thread(self, tid, seq, bad, sc, pname: pa.Array) -> None:
        """Records and incomplete ones per thread; its name at its last record (highest seq,
        the earliest row of it)."""
        idx = np.flatnonzero(sc)
        if not len(idx):
            return
        t, s = tid[idx], seq[idx]
        order = np.lexsort((idx, -s, t))  # per thread: highest seq first, then row order
        ts = t[order]
        heads = np.flatnonzero(np.r_[True, ts[1:] != ts[:-1]])
        counts = np.diff(np.append(heads, len(ts)))
        nbad = np.add.reduceat(bad[idx][order].astype(np.int64), heads)
        at = idx[order[heads]]
        names = pname.take(pa.array(at, pa.int64())).to_pylist()
        for x, r, b, last, v in zip(ts[heads].tolist(), counts.tolist(), nbad.tolist(),
                                    seq[at].tolist(), names):
            old = self.per_thread.get(x)
            if old is None:
                self.per_thread[x] = [last, v, r, b]
            else:
                old[2] += r
                old[3] += b
                if last > old[0]:
                    old[0], old[1] = last, v

    def _per(self, reason: str) -> dict[str, int]:
        items = sorted(self.per.get(reason, {}).items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        return {str(k): int(v[0]) for k, v in items}

    def _total(self, reason: str) -> int:
        return sum(v[0] for v in self.per.get(reason, {}).values())

    def result(self, manifest=None) -> dict:
        """The verdict, with its reasons."""
        n_sc, n_exits = self.n["sc"], self.n["exits"]
        arch = self.log_attrs.get("arch")
        reasons = []

        if not n_sc:
            reasons.append(_reason(
                "no_syscalls", INSUFFICIENT, 0, "the capture holds no syscall of the traced process",
                "check the capture's filter (e.g. proc.name) and that the process ran while "
                "sysdig was capturing"))
        nores = self._total("no_return_value")
        if nores:
            per = self._per("no_return_value")
            newer = _dedicated_in_current_driver(per)
            newest = versions.pairs()[-1]
            reasons.append(_reason(
                "no_return_value", INSUFFICIENT, nores,
                f"{nores} of {n_exits} syscall exits "
                f"({100.0 * nores / n_exits:.1f} %) carry no return value: the driver "
                "records these syscalls as generic `syscall` events, which have none",
                (f"the current driver (scap {newest.driver}, sysdig {newest.sysdig}) has events "
                 f"with a return "
                 f"value for {', '.join(newer)}; " if newer else "")
                + f"no sysdig option restores {'the others' if newer else 'them'}: capture with "
                "sysdig-kit's replay-complete driver (the default build for scap 0.23.2: board "
                "profile sysdig.driver_patches: default, docs/replay-complete.md; generic exits "
                "get `res`), or record them with your own hook (sysdig-kit decode-hooklog); if "
                "the replay does not need them, exclude them with a filter (evt.type!=...)",
                total=n_exits, per_syscall=per))

        trunc = self._total("truncated_buffer")
        cut = self.attrs.get("buffers") == "printed_cut"
        if trunc and not cut:  # printed_cut: sysdig's print length hides the snaplen
            snaplen = self.need
            reasons.append(_reason(
                "truncated_buffer", INSUFFICIENT, trunc,
                f"{trunc} syscalls had output buffers cut at the snaplen (captured at most "
                f"{self.have} bytes; the kernel wrote up to {snaplen})",
                f"capture with -s {snaplen} (the largest buffer the kernel reported)",
                total=self.n["trunc_total"],
                per_syscall=self._per("truncated_buffer"), snaplen_needed=snaplen))

        nowb = self._total("no_write_back")
        if nowb:
            per = self._per("no_write_back")
            rc_drivers = _replay_complete_drivers()
            patched = {n for n in per if any(w.since for w in writeback.of(n))}
            reasons.append(_reason(
                "no_write_back", INSUFFICIENT, nowb,
                f"{nowb} syscalls may have written to the process's memory (struct stat, "
                "signal masks, ...) and the capture does not hold what they wrote",
                "; ".join(filter(None, [
                    (f"the replay-complete driver (scap {', '.join(rc_drivers)}; the default "
                     "build, board profile sysdig.driver_patches: default, "
                     "docs/replay-complete.md) records it for "
                     + ", ".join(sorted(patched))) if patched else "",
                    ("no sysdig driver records it for " + ", ".join(sorted(set(per) - patched))
                     + ": let the replay execute them, or hook them") if set(per) - patched else "",
                ])),
                total=n_exits, per_syscall=per))

        for code, severity, detail, remedy in (
            ("unpaired_enter", INSUFFICIENT,
             "{n} syscall enters have no exit although the thread went on: events were lost",
             "capture with a larger buffer or a tighter filter to avoid drops"),
            ("thread_died", WARNING,
             "{n} threads died inside a syscall (no result exists to replay)",
             "none needed: the syscall never returned"),
            ("lost_after_exec", WARNING,
             ("{n} threads were no longer captured after execve (a proc.name filter stops "
             "matching once a child execs another program)"),
             ("to follow children, filter on the process tree (e.g. proc.apid=PID or "
             "proc.pid=PID) instead of proc.name")),
            ("in_flight_at_end", WARNING,
             "{n} syscalls were still running when the capture stopped",
             "stop the capture after the traced process has exited"),
            ("unpaired_exit", INSUFFICIENT,
             ("{n} syscall exits have no enter in the middle of a thread: events were lost "
             "(their arguments are missing)"),
             "capture with a larger buffer or a tighter filter to avoid drops"),
            ("started_mid_syscall", WARNING,
             ("{n} threads were inside a syscall when the capture started (its result is logged, "
             "its arguments are not)"), "start the capture before the traced process"),
            ("unknown_to_sysdig", WARNING,
             ("{n} syscalls are unknown to this sysdig (`<unknown>`); named from their {arch} "
             "syscall number"), "none needed for the log; a newer driver knows them"),
        ):
            n = self._total(code)
            if n:
                reasons.append(_reason(code, severity, n, detail.format(n=n, arch=arch), remedy,
                                       per_syscall=self._per(code)))
        if self.n["unknown"]:
            n = self.n["unknown"]
            printed = self.attrs.get("format") in ("text", "json")
            reasons.append(_reason(
                "unknown_syscall", INSUFFICIENT, n,
                f"{n} syscalls are unknown to the driver and have no number to name them",
                # sysdig's text and JSON print `<unknown>` without the number the scap holds
                "read the .scap file itself: sysdig's text and JSON do not print the number"
                if printed else
                "give the capture's architecture (--arch) so the syscall number names them"))

        outs = self._total("printed_buffers")
        if self.attrs.get("buffers", "raw") != "raw" and outs:
            reasons.append(_reason(
                "printed_buffers", INSUFFICIENT, outs,
                f"{outs} syscalls wrote buffers that this input holds only as sysdig "
                "printed them (non-printable bytes as '.'"
                + (f"; {trunc} cut, at the snaplen or at sysdig's print length"
                   if cut else "") + "), not their bytes",
                "read the .scap file itself, or sysdig's output with -b (base64) in the kit "
                "format (sysdig_kit.read.text.KIT_SYSDIG_ARGS)",
                per_syscall=self._per("printed_buffers")))

        if self.gaps:
            # sysdig itself numbers events it never shows (seen in real captures), so a gap is
            # a warning: the events may be internal ones, or the frame may have been filtered.
            reasons.append(_reason(
                "evt_num_gaps", WARNING, self.gaps,
                f"{self.gaps} gaps in evt_num ({self.gap_events} event numbers not in the "
                "frame: events sysdig numbers but does not show, or a filtered frame)",
                "read the whole capture, unfiltered (filter the log instead, --proc/--pid/--tid)"))

        drop_events = self.drop_events
        mdrops = manifest_drops(manifest)
        if drop_events or mdrops:
            reasons.append(_reason(
                "drops", INSUFFICIENT, max(drop_events, mdrops or 0),
                f"the driver dropped events ({drop_events} drop events in the capture"
                + (f", {mdrops} drops in the manifest" if mdrops is not None else "") + ")",
                "capture with a larger driver buffer, a tighter filter, or a lower snaplen"))

        if arch is None and n_sc:
            reasons.append(_reason(
                "no_arch", WARNING, self.n["no_nr"],
                "the capture does not say its architecture: syscall numbers are missing",
                "give --arch arm64 (or x86_64)"))

        for w in self.attrs.get("warnings") or []:
            reasons.append(_reason("reader_warning", WARNING, 1, str(w), "see the reader's message"))

        verdict = INSUFFICIENT if any(r["severity"] == INSUFFICIENT for r in reasons) else "sufficient"
        per_thread = {str(t): {"proc_name": v[1], "records": v[2], "incomplete": v[3]}
                      for t, v in sorted(self.per_thread.items())}
        status = sorted(self.exit_status.items(), key=lambda kv: kv[1][0])
        return {
            "verdict": verdict,
            "source": self.attrs.get("source"),
            "arch": arch,
            "era": self.log_attrs.get("era"),
            "events": self.events,
            "syscall_records": n_sc,
            "syscall_exits": n_exits,
            "threads": len(self.threads),
            "exit_status": {str(t): v[2] for t, v in status},
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
