"""Run a playbook: workloads x variants x repetitions (after warm-up) on its boards.

Every board (or this machine, for `board: local`) is reached through sysdig_kit.board. A run
starts sysdig the one way the kit runs it (sysdig_kit.capture.Sysdig: background, wait for the
header, SIGINT, `-v` statistics) with the board's own deployed sysdig, then runs one shell
script of ours that times the workload with the board's own clock (`date +%s%N`, so SSH
latency is not measured) and reads the CPU time of the workload's process tree with `times`
(for strace -f, which the script runs itself, that includes strace). Several boards run at
once, one thread each (one after the other with `parallel: false`).

The workload runs as `kit-workload -c CMD`, a copy of /bin/sh, so sysdig can follow exactly
the workload's processes with `proc.name=kit-workload or proc.aname=kit-workload`.

Outputs under OUT: results.csv and results.parquet (one row per run), raw/ (the captures as
written), captures/board=B/run=N/variant=V/WORKLOAD.parquet (event frames, a Hive-partitioned
dataset DuckDB and Spark read as it is).
"""

from __future__ import annotations

import re
import shlex
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import KitError
from .playbook import Playbook, Variant, Workload

WORKLOAD_COMM = "kit-workload"
REMOTE_DIR = "/tmp/sysdig-kit-run"
_TIMES = re.compile(r"(\d+)m([\d.]+)s")
# what produced each row (sysdig_kit.provenance): asked of each board once, after the setup
PROVENANCE = ["kernel_release", "sysdig_version", "driver_version", "patch_set", "kit_version",
              "kit_git_rev"]
RESULT_COLUMNS = ["board", "workload", "variant", "tool", "snaplen", "run", "warmup", "ok", "rc",
                  "wall_s", "cpu_s", "events", "drops", "capture_bytes", "started", "error",
                  *PROVENANCE]


# --- the run script ---------------------------------------------------------------------------

def sysdig_options(v: Variant):
    """The capture of a sysdig variant: the workload's process tree, at its snaplen."""
    from ..capture import Options

    return Options(proc=WORKLOAD_COMM, follow_children=True, snaplen=v.snaplen)


def prepare(d: str) -> str:
    """A fresh work folder `d` with the workload's shell in it."""
    q = shlex.quote
    return (f"d={q(d)}\n" + 'rm -rf "$d"; mkdir -p "$d" && cd "$d" || exit 90\n'
            + f'cp /bin/sh "$d/{WORKLOAD_COMM}" || exit 91\n')


def script(d: str, w: Workload, v: Variant, timeout: float = 600) -> str:
    """The shell script timing one run in work folder `d` (fixed text of ours; every value
    quoted). sysdig, if the variant has it, is already capturing.

    The workload runs under coreutils `timeout`, which kills its whole process group (strace
    and its tracees too), so a run that overruns leaves nothing behind on the board."""
    q = shlex.quote
    lines = [f"d={q(d)}", 'cd "$d" || exit 90']
    run = f'"$d/{WORKLOAD_COMM}" -c {q(w.run)}'
    limit = f"timeout -k 5 {max(1, round(timeout))}"
    if v.tool == "strace":
        run = f'strace -f -ttt -qq -o "$d/strace.txt" {run}'
    lines += ["t0=$(date +%s%N)", f'{limit} {run} >/dev/null 2>"$d/err" </dev/null', "rc=$?",
              "t1=$(date +%s%N)",
              # `times` in this shell (a $(...) subshell would report its own, empty, children)
              'times >"$d/times"', 'set -- $(cat "$d/times")',
              'echo "KIT rc=$rc ns=$((t1-t0)) cpu_user=$3 cpu_sys=$4"']
    if v.tool == "strace":
        lines.append('echo "KIT bytes=$(stat -c %s "$d/strace.txt")"')
    lines += ['echo KIT-STDERR; tail -c 1500 "$d/err"']
    return "\n".join(lines) + "\n"


def parse(out: str) -> dict:
    """The KIT lines of a run's output."""
    r: dict = {"sysdig_log": "", "stderr": ""}
    head, _, r["stderr"] = out.partition("KIT-STDERR\n")
    for m in re.finditer(r"^KIT (.*)$", head, re.MULTILINE):
        for kv in m[1].split():
            k, _, v = kv.partition("=")
            r[k] = v if v else True
    if "cpu_user" in r:
        r["cpu_s"] = sum(int(a) * 60 + float(b) for a, b in
                         (_TIMES.match(r[k]).groups() for k in ("cpu_user", "cpu_sys")))
    return r


# --- where runs happen: boards (or this machine) through sysdig_kit.board ----------------------

@dataclass
class _Out:
    rc: int
    stdout: str
    stderr: str


class Targets:
    """The playbook's boards, each with its platform and an open connection; `each(fn)` runs
    fn(target) on all of them, at once (threads) or one after the other."""

    def __init__(self, names: list[str], parallel: bool = True, boot: bool = False):
        from .. import board, profiles

        self.parallel = parallel
        self.plats = {}
        self.conns = {}
        try:
            for n in names:
                plat = board.platform(None if n == "local" else profiles.load(n))
                self.plats[plat.name] = plat
                self.conns[plat.name] = plat.connect(boot=boot)
        except BaseException:
            self.close()
            raise
        self.boards = list(self.plats)

    def each(self, fn) -> dict:
        if not self.parallel or len(self.boards) == 1:
            return {b: fn(b) for b in self.boards}
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(len(self.boards)) as pool:
            futures = {b: pool.submit(fn, b) for b in self.boards}
            return {b: f.result() for b, f in futures.items()}

    def sh(self, board: str, text: str, timeout: float) -> _Out:
        """A script on one board; an SSH failure (board gone) is rc 125 with the reason."""
        try:
            r = self.conns[board].sh(text, timeout=timeout, check=False)
        except KitError as exc:
            return _Out(125, "", str(exc))
        return _Out(r.rc, r.stdout, r.stderr)

    def run(self, text: str, timeout: float) -> dict[str, _Out]:
        return self.each(lambda b: self.sh(b, text, timeout))

    def capabilities(self) -> dict[str, set[str]]:
        out = {}
        for b, plat in self.plats.items():
            probe = (f"command -v strace >/dev/null && echo strace; "
                     f"command -v {shlex.quote(plat.sysdig)} >/dev/null && "
                     "{ test -e /dev/scap0 || test -e /dev/sysdig0; } && echo sysdig; true")
            res = self.sh(b, probe, 60)
            if res.rc != 0:  # SSH itself failed: say so, not "cannot run sysdig"
                raise KitError(f"board {b}: cannot run commands: {res.stderr[:300]}")
            out[b] = {"none"} | set(res.stdout.split())
        return out

    def provenance(self) -> dict[str, dict]:
        """Per board: kernel release, sysdig, driver, patch set, kit version and revision."""
        from .. import provenance
        from ..capture import versions

        return self.each(lambda b: provenance.from_versions(
            versions(self.conns[b], self.plats[b].sysdig), b))

    def close(self) -> None:
        for c in self.conns.values():
            c.close()


def _run_on(targets: Targets, b: str, d: str, w: Workload, v: Variant, timeout: float) -> dict:
    """One run on board b: sysdig started (if the variant has it), the timed script, sysdig
    stopped. The parsed KIT fields plus rc_ssh (the script's own exit status), err_ssh."""
    from ..capture import Sysdig

    prep = targets.sh(b, prepare(d), 60)
    if prep.rc != 0:
        return {"rc_ssh": prep.rc, "err_ssh": prep.stderr or prep.stdout}
    sd = None
    try:
        if v.tool == "sysdig":
            conn = targets.conns[b]
            sd = Sysdig(conn, targets.plats[b].sysdig, out=f"{d}/capture.scap",
                        work_dir=f"{d}/sysdig")
            sd.start(sysdig_options(v), timekeeper=False)  # the script times the run
            if not sd.wait_header():
                _, text = sd.stop()
                return {"rc_ssh": 0, "sysdig_failed": True, "sysdig_log": text}
        res = targets.sh(b, script(d, w, v, timeout), timeout + 60)
        p = parse(res.stdout)
        p.update(rc_ssh=res.rc, err_ssh=res.stderr)
        if sd is not None:
            time.sleep(1)  # let sysdig drain the driver's buffers
            p["sysdig_rc"], p["sysdig_log"] = sd.stop()
            p["bytes"] = sd.conn.size(sd.out)
            sd = None
        return p
    except KitError as exc:  # the board went away mid-run
        return {"rc_ssh": 125, "err_ssh": str(exc)}
    finally:
        if sd is not None:  # never leave a sysdig running on the board
            try:
                sd.stop()
            except KitError:
                pass


# --- the runner -------------------------------------------------------------------------------

def plan(pb: Playbook, caps: dict[str, set[str]], skip_unsupported: bool = False,
         say=print) -> list[Variant]:
    """The variants to run; KitError (or a notice with skip_unsupported) for variants a board
    cannot run, before anything runs."""
    missing = {b: [v.name for v in pb.variants if v.tool not in caps[b]] for b in caps}
    missing = {b: m for b, m in missing.items() if m}
    if not missing:
        return list(pb.variants)
    why = "; ".join(f"board {b} cannot run {', '.join(m)} (it can: "
                    f"{', '.join(sorted(caps[b]))})" for b, m in missing.items())
    if "local" in missing:
        hint = (" (this machine has no sysdig driver; sysdig variants need a board with the "
                "driver deployed: fab deploy)")
    else:  # sysdig needs the deployed driver loaded; strace a `setup` line installing it
        hint = " (sysdig: fab deploy loads the driver; strace: install it in `setup`)"
    if not skip_unsupported:
        raise KitError(f"{pb.where('variants')}: {why}{hint}; "
                       "run with --skip-unsupported to run the others")
    say(f"skipping: {why}")
    bad = {n for m in missing.values() for n in m}
    return [v for v in pb.variants if v.name not in bad]


def _target(pb: Playbook, boot: bool = False) -> Targets:
    if "local" in pb.boards and pb.boards != ["local"]:
        raise KitError(f"{pb.where('board')}: 'local' cannot be mixed with boards in one run")
    return Targets(pb.boards, parallel=pb.parallel, boot=boot)


def run(pb: Playbook, out: str | Path | None = None, skip_unsupported: bool = False,
        quiet: bool = False, dataset: bool = True, boot: bool = False) -> pd.DataFrame:
    """Run the playbook; returns the results table (also written to OUT/results.csv/.parquet).
    boot=True powers its boards on first if they are down."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out = Path(out or pb.output or Path("out") / pb.name)  # out/ is git-ignored
    console = Console(stderr=True, quiet=quiet)
    target = _target(pb, boot)
    work = f"{REMOTE_DIR}-{uuid.uuid4().hex[:8]}"  # this invocation's folder on the board
    try:
        if pb.setup:
            _setup(pb, target)
        variants = plan(pb, target.capabilities(), skip_unsupported, say=console.print)
        prov = target.provenance()
        for sub in ("captures", "raw"):  # a previous run's partitions would mix in
            shutil.rmtree(out / sub, ignore_errors=True)
        rows: list[dict] = []
        todo = [(w, Variant("none", "none"), k, True) for k in range(1, pb.warmup + 1)
                for w in pb.workloads]
        if pb.warmup == 0:  # still check every workload once before measuring anything
            todo = [(w, Variant("none", "none"), 0, True) for w in pb.workloads]
        # Variants interleaved within each repetition, so slow drift hits them all alike.
        todo += [(w, v, k, False) for k in range(1, pb.repetitions + 1) for w in pb.workloads
                 for v in variants]
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=False) as bar:
            job = bar.add_task(pb.name, total=len(todo))
            for w, v, k, warm in todo:
                label = "warm-up" if warm else f"run {k}/{pb.repetitions}"
                bar.update(job, description=f"{pb.name}: {w.name} · {v.name} · {label}")
                new = _one(target, work, out, w, v, k, warm, dataset, pb.timeout)
                for row in new:
                    row.update({c: prov[row["board"]][c] for c in PROVENANCE})
                if warm:
                    bad = [r for r in new if not r["ok"]]
                    if bad:
                        r = bad[0]
                        raise KitError(f"{pb.source}:{w.line}: workload {w.name!r} failed on "
                                       f"board {r['board']} (rc {r['rc']}): {r['error']}")
                rows += new
                _table(rows, pb, out, partial=True)  # a stopped playbook keeps what ran
                bar.advance(job)
    finally:
        target.run(f"rm -rf {shlex.quote(work)}", 60)
        target.close()
    results = _table(rows, pb, out)
    if not quiet:
        console.print(f"{pb.name}: {len(results)} runs -> {out}/results.csv, results.parquet"
                      + (", captures/ (Parquet dataset)" if dataset else ""))
    return results


def _table(rows: list[dict], pb: Playbook, out: Path, partial: bool = False) -> pd.DataFrame:
    """The results table; written to results.csv (+ .parquet when complete)."""
    results = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    results = results.astype({"snaplen": "Int64", "rc": "Int64", "events": "Int64",
                              "drops": "Int64", "capture_bytes": "Int64"})
    results.attrs = {"playbook": str(pb.source), "boards": pb.boards}
    out.mkdir(parents=True, exist_ok=True)
    results.to_csv(out / "results.csv", index=False)
    if not partial:
        results.to_parquet(out / "results.parquet", index=False)
    return results


def _setup(pb: Playbook, target) -> None:
    """The playbook's setup commands, once on every board; a failure stops the playbook."""
    text = "set -e\n" + "\n".join(pb.setup) + "\n"
    for board, r in target.run(text, max(pb.timeout, 600)).items():
        if r.rc != 0:
            tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit status {r.rc}"]
            raise KitError(f"{pb.where('setup')}: setup failed on board {board} (rc {r.rc}): "
                           f"{tail[0][:300]}")


def _one(target: Targets, d: str, out: Path, w: Workload, v: Variant, k: int, warm: bool,
         dataset: bool, timeout: float) -> list[dict]:
    """One run on every board of the target (work folder `d`); its result rows."""
    from ..capture import parse_stats

    rows = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    res = target.each(lambda b: _run_on(target, b, d, w, v, timeout))
    capfile = {"sysdig": "capture.scap", "strace": "strace.txt"}.get(v.tool)
    for board, p in res.items():
        rc = int(p["rc"]) if "rc" in p else None
        ok = p["rc_ssh"] == 0 and rc == 0 and "sysdig_failed" not in p \
            and p.get("sysdig_rc", 0) in (0, None)
        err = ""
        if not ok:
            tail = (p.get("stderr") or p.get("err_ssh") or "").strip().splitlines()[-1:]
            err = tail[0][:300] if tail else f"no error output (exit status {rc})"
            if rc is None:  # the script did not get to time the workload
                out_tail = (p.get("err_ssh") or "").strip().splitlines()[-1:] or ["no output"]
                err = f"the run did not finish (rc {p['rc_ssh']}): {out_tail[0][:300]}"
            if rc == 124:
                err = f"timed out after {timeout:g} s (playbook timeout)"
            if "sysdig_failed" in p:
                err = f"sysdig did not start: {p['sysdig_log'].strip()[-300:]}"
            elif p.get("sysdig_rc") not in (0, None):
                err = f"sysdig failed (rc {p['sysdig_rc']}): {p['sysdig_log'].strip()[-300:]}"
        row = {"board": board, "workload": w.name, "variant": v.name, "tool": v.tool,
               "snaplen": v.snaplen, "run": k, "warmup": warm, "ok": ok, "rc": rc,
               "wall_s": int(p["ns"]) / 1e9 if "ns" in p else None, "cpu_s": p.get("cpu_s"),
               "events": None, "drops": None, "capture_bytes": int(p["bytes"]) if "bytes" in p
               else None, "started": started, "error": err}
        if v.tool == "sysdig":
            row["drops"] = parse_stats(p.get("sysdig_log", "")).get("driver_drops")
        elif v.tool == "strace":
            row["drops"] = 0  # ptrace stops the tracee: strace cannot drop
        if capfile and not warm and rc == 0 and p["rc_ssh"] == 0:
            dst = out / "raw" / w.name / f"run{k}-{v.name}" / board / capfile
            try:
                target.conns[board].pull(f"{d}/{capfile}", dst)
            except (OSError, KitError) as exc:  # a failed run leaves no file
                if ok:
                    row["error"] = f"capture not fetched: {exc}"
            else:
                row["events"] = _store(dst, board, k, v, w, out, dataset)
        rows.append(row)
    return rows


def _store(path: Path, board: str, k: int, v: Variant, w: Workload, out: Path,
           dataset: bool) -> int:
    """Read a fetched capture into an event frame; add it to the Parquet dataset."""
    from ..read import read
    from .strace import read_strace

    try:
        frame = read_strace(path) if v.tool == "strace" else read(path)
    except KitError as exc:
        raise KitError(f"{path}: run {k} of {w.name}/{v.name} on {board}: {exc}") from None
    if dataset:
        from ..read.frame import to_parquet

        part = out / "captures" / f"board={board}" / f"run={k}" / f"variant={v.name}"
        part.mkdir(parents=True, exist_ok=True)
        frame = frame.assign(workload=pd.Series([w.name] * len(frame), dtype="string"))
        to_parquet(frame, part / f"{w.name}.parquet")
    return len(frame)
