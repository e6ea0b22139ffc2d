"""Run a playbook: workloads x variants x repetitions (after warm-up) on its boards.

Every run is one shell script of ours on the board (or here, for `board: local`): it starts the
capture (sysdig's command line from sysdig_kit.capture; or strace -f), times the workload with
the board's own clock (`date +%s%N`, so SSH latency is not measured), reads the CPU time of the
workload's process tree with `times` (for strace that includes strace itself), stops sysdig
with SIGINT and prints its statistics. Several boards run the same script at once through a
Fabric ThreadingGroup (SerialGroup with `parallel: false`).

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
import subprocess
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
RESULT_COLUMNS = ["board", "workload", "variant", "tool", "snaplen", "run", "warmup", "ok", "rc",
                  "wall_s", "cpu_s", "events", "drops", "capture_bytes", "started", "error"]


# --- the run script ---------------------------------------------------------------------------

def script(d: str, w: Workload, v: Variant, sysdig: str = "sysdig", timeout: float = 600) -> str:
    """The shell script of one run in work folder `d` (fixed text of ours; every value quoted).

    The workload runs under coreutils `timeout`, which kills its whole process group (strace
    and its tracees too), so a run that overruns leaves nothing behind on the board."""
    from ..capture import Options, sysdig_argv

    q = shlex.quote
    lines = [f"d={q(d)}", 'rm -rf "$d"; mkdir -p "$d" && cd "$d" || exit 90',
             f'cp /bin/sh "$d/{WORKLOAD_COMM}" || exit 91']
    run = f'"$d/{WORKLOAD_COMM}" -c {q(w.run)}'
    limit = f"timeout -k 5 {max(1, round(timeout))}"
    if v.tool == "sysdig":
        o = Options(proc=WORKLOAD_COMM, follow_children=True, snaplen=v.snaplen)
        argv = sysdig_argv(o, f"{d}/capture.scap", sysdig)
        lines += [f'{shlex.join(argv)} >"$d/sysdig.log" 2>&1 </dev/null &', "sp=$!", "i=0",
                  # a capture file with its header = sysdig is capturing
                  ('while [ ! -s "$d/capture.scap" ] && kill -0 $sp 2>/dev/null && '
                   '[ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done'),
                  ('kill -0 $sp 2>/dev/null || { echo "KIT sysdig_failed"; '
                   'cat "$d/sysdig.log"; exit 92; }')]
    elif v.tool == "strace":
        run = f'strace -f -ttt -qq -o "$d/strace.txt" {run}'
    lines += ["t0=$(date +%s%N)", f'{limit} {run} >/dev/null 2>"$d/err" </dev/null', "rc=$?",
              "t1=$(date +%s%N)",
              # `times` in this shell (a $(...) subshell would report its own, empty, children)
              'times >"$d/times"', 'set -- $(cat "$d/times")',
              'echo "KIT rc=$rc ns=$((t1-t0)) cpu_user=$3 cpu_sys=$4"']
    if v.tool == "sysdig":
        lines += ["sleep 1", "kill -INT $sp; wait $sp", 'echo "KIT sysdig_rc=$?"',
                  'echo "KIT bytes=$(stat -c %s "$d/capture.scap")"',
                  'echo KIT-SYSDIG-LOG; cat "$d/sysdig.log"']
    elif v.tool == "strace":
        lines.append('echo "KIT bytes=$(stat -c %s "$d/strace.txt")"')
    lines += ['echo KIT-STDERR; tail -c 1500 "$d/err"']
    return "\n".join(lines) + "\n"


def parse(out: str) -> dict:
    """The KIT lines of a run's output."""
    r: dict = {"sysdig_log": "", "stderr": ""}
    head, _, stderr = out.partition("KIT-STDERR\n")
    head, _, log = head.partition("KIT-SYSDIG-LOG\n")
    r["sysdig_log"], r["stderr"] = log, stderr
    for m in re.finditer(r"^KIT (.*)$", head, re.MULTILINE):
        for kv in m[1].split():
            k, _, v = kv.partition("=")
            r[k] = v if v else True
    if "cpu_user" in r:
        r["cpu_s"] = sum(int(a) * 60 + float(b) for a, b in
                         (_TIMES.match(r[k]).groups() for k in ("cpu_user", "cpu_sys")))
    return r


# --- where runs happen: here, or boards through a Fabric group ---------------------------------

@dataclass
class _Out:
    rc: int
    stdout: str
    stderr: str


class Local:
    """`board: local`: this machine. No sysdig driver here, so normally none and strace."""

    def __init__(self):
        self.boards = ["local"]

    def capabilities(self) -> dict[str, set[str]]:
        can = {"none"}
        if shutil.which("strace"):
            can.add("strace")
        if shutil.which("sysdig") and (Path("/dev/scap0").exists() or Path("/dev/sysdig0").exists()):
            can.add("sysdig")
        return {"local": can}

    def sysdig(self, board: str) -> str:
        return "sysdig"

    def run(self, text: str, timeout: float) -> dict[str, _Out]:
        try:
            p = subprocess.run(["sh", "-c", text], capture_output=True, text=True,
                               timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            return {"local": _Out(124, "", f"timed out after {timeout:g} s")}
        return {"local": _Out(p.returncode, p.stdout, p.stderr)}

    def get(self, remote: str, local_dir: Path) -> dict[str, Path]:
        dst = local_dir / "local" / Path(remote).name
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(remote, dst)
        return {"local": dst}

    def close(self) -> None:
        pass


class Boards:
    """One or more board profiles as a Fabric ThreadingGroup (or SerialGroup)."""

    def __init__(self, names: list[str], parallel: bool = True):
        from fabric import SerialGroup, ThreadingGroup

        from .. import profiles, remote

        self.profiles = [profiles.load(n) for n in names]
        conns = [remote.connect(p, boot=True) for p in self.profiles]
        self.group = (ThreadingGroup if parallel else SerialGroup).from_connections(conns)
        self.name_of = {id(c): p.name for c, p in zip(conns, self.profiles)}
        self.addr = {(c.host, int(c.port)): p.name for c, p in zip(conns, self.profiles)}
        self.boards = [p.name for p in self.profiles]

    def sysdig(self, board: str) -> str:
        from ..deploy import install_dir

        prof = next(p for p in self.profiles if p.name == board)
        return f"{install_dir(prof)}/sysdig/bin/sysdig"

    def capabilities(self) -> dict[str, set[str]]:
        out = {}
        for p in self.profiles:
            probe = (f"command -v strace >/dev/null && echo strace; "
                     f"test -x {shlex.quote(self.sysdig(p.name))} && "
                     "{ test -e /dev/scap0 || test -e /dev/sysdig0; } && echo sysdig; true")
            res = self.run(probe, 60)[p.name]
            if res.rc != 0:  # SSH itself failed: say so, not "cannot run sysdig"
                raise KitError(f"board {p.name}: cannot run commands over SSH "
                               f"({p.ssh.user}@{p.ssh.host}:{p.ssh.port}): {res.stderr[:300]}")
            out[p.name] = {"none"} | set(res.stdout.split())
        return out

    def run(self, text: str, timeout: float) -> dict[str, _Out]:
        from fabric.exceptions import GroupException

        try:
            res = self.group.run(text, hide=True, warn=True, timeout=timeout, in_stream=False,
                                 pty=False)
        except GroupException as exc:
            res = exc.result
        out = {}
        for c, r in res.items():
            name = self.name_of[id(c)]
            if isinstance(r, Exception):
                out[name] = _Out(125, "", f"{type(r).__name__}: {r}")
            else:
                out[name] = _Out(r.return_code, r.stdout, r.stderr)
        return out

    def get(self, remote: str, local_dir: Path) -> dict[str, Path]:
        tmp = local_dir / "_fetch"
        self.group.get(remote, local=f"{tmp}/{{host}}-{{port}}/{{basename}}")
        out = {}
        for (host, port), name in self.addr.items():
            src = tmp / f"{host}-{port}" / Path(remote).name
            dst = local_dir / name / Path(remote).name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(src, dst)
            out[name] = dst
        shutil.rmtree(tmp, ignore_errors=True)
        return out

    def close(self) -> None:
        self.group.close()


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


def _target(pb: Playbook):
    if pb.boards == ["local"]:
        return Local()
    if "local" in pb.boards:
        raise KitError(f"{pb.where('board')}: 'local' cannot be mixed with boards in one run")
    return Boards(pb.boards, parallel=pb.parallel)


def run(pb: Playbook, out: str | Path | None = None, skip_unsupported: bool = False,
        quiet: bool = False, dataset: bool = True) -> pd.DataFrame:
    """Run the playbook; returns the results table (also written to OUT/results.csv/.parquet)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out = Path(out or pb.output or Path("out") / pb.name)  # out/ is git-ignored
    console = Console(stderr=True, quiet=quiet)
    target = _target(pb)
    work = f"{REMOTE_DIR}-{uuid.uuid4().hex[:8]}"  # this invocation's folder on the board
    try:
        if pb.setup:
            _setup(pb, target)
        variants = plan(pb, target.capabilities(), skip_unsupported, say=console.print)
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


def _one(target, d: str, out: Path, w: Workload, v: Variant, k: int, warm: bool,
         dataset: bool, timeout: float) -> list[dict]:
    """One run on every board of the target (work folder `d`); its result rows."""
    rows = []
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    # One sysdig path per board; boards of one group share the install dir in practice.
    text = script(d, w, v, target.sysdig(target.boards[0]), timeout)
    res = target.run(text, timeout + 180)  # + sysdig's start and stop
    capfile = {"sysdig": "capture.scap", "strace": "strace.txt"}.get(v.tool)
    fetched, err_fetch = {}, None
    if capfile and not warm and any(r.rc == 0 for r in res.values()):
        raw = out / "raw" / w.name / f"run{k}-{v.name}"
        try:
            fetched = target.get(f"{d}/{capfile}", raw)
        except (OSError, KitError) as exc:  # a failed run leaves no file: reported below
            err_fetch = str(exc)
    for board, r in res.items():
        p = parse(r.stdout)
        rc = int(p["rc"]) if "rc" in p else None
        ok = r.rc == 0 and rc == 0 and "sysdig_failed" not in p
        err = ""
        if not ok:
            tail = (p["stderr"] or r.stderr).strip().splitlines()[-1:]
            err = tail[0][:300] if tail else f"no error output (exit status {rc})"
            if rc is None:  # the script did not get to time the workload
                out_tail = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
                err = f"the run did not finish (rc {r.rc}): {out_tail[0][:300]}"
            if rc == 124:
                err = f"timed out after {timeout:g} s (playbook timeout)"
            if "sysdig_failed" in p:
                err = f"sysdig did not start: {p['sysdig_log'].strip()[-300:] or r.stdout[-300:]}"
        row = {"board": board, "workload": w.name, "variant": v.name, "tool": v.tool,
               "snaplen": v.snaplen, "run": k, "warmup": warm, "ok": ok, "rc": rc,
               "wall_s": int(p["ns"]) / 1e9 if "ns" in p else None, "cpu_s": p.get("cpu_s"),
               "events": None, "drops": None, "capture_bytes": int(p["bytes"]) if "bytes" in p
               else None, "started": started, "error": err}
        if v.tool == "sysdig":
            from ..capture import parse_stats

            row["drops"] = parse_stats(p["sysdig_log"]).get("driver_drops")
        elif v.tool == "strace":
            row["drops"] = 0  # ptrace stops the tracee: strace cannot drop
        if board in fetched:
            row["events"] = _store(fetched[board], board, k, v, w, out, dataset)
        elif capfile and not warm and ok and err_fetch:
            row["error"] = f"capture not fetched: {err_fetch}"
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
