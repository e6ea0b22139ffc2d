"""`sysdig-kit` command line: thin wrappers over the stage modules.

Each stage keeps its commands in its own section below; the work itself lives in the stage's
module so the same function serves the CLI, the Fabric tasks and a notebook.
"""

from __future__ import annotations

import logging
import sys
import warnings

import click

from . import paths
from .errors import KitError, remote_error, resource_error

# paramiko logs a failed handshake with its traceback from its transport thread (through
# logging's last-resort handler); the KitError that follows says it in one line.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def _warning_line(message, category, filename, lineno, file=None, line=None):
    """A Python warning (a reader's truncated capture, ...) as one line, without the source
    line Python would print under it."""
    click.echo(f"sysdig-kit: warning: {message}", err=True)


class _Group(click.Group):
    """Turns a KitError (bad input, missing tool), an SSH failure, an unwritable path or a
    resource exhaustion into one clear line and exit status 2."""

    def invoke(self, ctx):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _warning_line
                return super().invoke(ctx)
        except KitError as exc:
            self._fail(str(exc))
        except click.UsageError as exc:  # a bad option: one line too, and where to look
            where = exc.ctx.command_path if exc.ctx is not None else "sysdig-kit"
            self._fail(f"{exc.format_message()} (see `{where} --help`)")
        except (MemoryError, RecursionError) as exc:
            self._fail(resource_error(exc))
        except Exception as exc:
            why = remote_error(exc)
            if why is None and isinstance(exc, OSError) and exc.strerror:
                why = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
            if why is None:
                raise  # a bug: keep its traceback
            self._fail(why)

    @staticmethod
    def _fail(line: str):
        click.echo(f"sysdig-kit: error: {' '.join(line.split())}", err=True)
        sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sysdig-kit")
def main():
    """Record syscalls with sysdig on an arm64 board and turn captures into replay logs.

    \b
    The path: build (fab build-juno) -> deploy (fab deploy) -> capture -> read -> replay log
    -> analyse. This command covers capture, read and replay; `fab -l` lists the board tasks.
    """


_ARCH_DS = click.option("--arch", type=click.Choice(["arm64", "x86_64"]), default=None,
                        help="With --dataset: architecture for syscall numbers when the "
                             "capture does not say.")


# --- read: convert, info -------------------------------------------------------------------

_FMT = click.option("--format", "fmt", type=click.Choice(["scap", "text", "json"]), default=None,
                    help="Input format. Default: detected from the file's first bytes.")
_DATE = click.option("--date", default=None, metavar="YYYY-MM-DD",
                     help="Date of the first event, for sysdig's default text output, which "
                          "prints only the time of day (default: 1970-01-01, with a warning).")
_TZ = click.option("--tz", default=None, metavar="ZONE",
                   help="Time zone of the machine that printed that text (default: UTC).")


_BATCH = click.IntRange(min=1)  # 0 or fewer events per batch means nothing


def _quiet_reader():
    """For commands that report the reader's warnings themselves (from df.attrs): no second
    copy as a Python warning (the group's catch_warnings restores the filters after)."""
    warnings.simplefilter("ignore", UserWarning)


def _writable(output, suffixes: tuple[str, ...], what: str) -> None:
    """Refuse an output path before any reading: wrong name, a directory, no such folder."""
    from pathlib import Path

    out = Path(output)
    if out.suffix not in suffixes:
        raise KitError(f"{output}: {what} (the name must end in {' or '.join(suffixes)})")
    if out.is_dir():
        raise KitError(f"cannot write {output}: is a directory")
    if not out.parent.is_dir():
        raise KitError(f"cannot write {output}: no such folder {out.parent}")


def _read_kw(capture, fmt, date, tz) -> dict:
    """Reader options: --date/--tz only make sense for the default text format."""
    from pathlib import Path

    from .read import reader_for

    if Path(capture).is_dir():
        raise KitError(f"{capture}: is a directory, not a capture")
    kw = {k: v for k, v in (("date", date), ("tz", tz)) if v is not None}
    reader = _reading(capture, lambda: reader_for(capture, fmt))  # exists? which format?
    if kw and reader.__name__ != "TextReader":
        raise KitError("--date/--tz apply to sysdig's text output only; "
                       f"{capture} carries its own timestamps")
    return kw


def _bad_capture() -> tuple:
    """What reading a bad capture can raise (zlib: a corrupt gzip stream; MemoryError: a
    length field taken on trust; RecursionError: absurdly nested JSON)."""
    import zlib

    return (OSError, EOFError, zlib.error, UnicodeError, ValueError, OverflowError,
            MemoryError, RecursionError)


def _cannot_read(capture, exc) -> KitError:
    why = resource_error(exc) or " ".join(str(exc).split())[:300] or type(exc).__name__
    return KitError(f"{capture}: cannot read it: {why}")


def _reading(capture, fn):
    """Run fn(); turn I/O and decoding failures of a bad capture into one-line errors."""
    try:
        return fn()
    except _bad_capture() as exc:
        raise _cannot_read(capture, exc) from None


def _read_errors(capture, frames):
    """The frames (an iterable, or a function returning one, called here), with a bad
    capture's failures turned into one-line errors (so that the writer's own OSErrors stay
    the writer's)."""
    it = iter(_reading(capture, frames) if callable(frames) else frames)
    while True:
        try:
            df = next(it)
        except StopIteration:
            return
        except _bad_capture() as exc:
            raise _cannot_read(capture, exc) from None
        yield df


@main.command("convert")
@click.argument("captures", nargs=-1, required=True, type=click.Path(), metavar="CAPTURE...")
@click.option("-o", "--output", default=None, type=click.Path(),
              help="The Parquet file to write (replaced atomically; never left half-written).")
@click.option("--dataset", default=None, type=click.Path(file_okay=False), metavar="DIR",
              help="Instead: add the captures' replay logs to the Parquet dataset DIR, "
                   "partitioned board=/workload=/capture= (created if missing).")
@click.option("--board", default=None, help="With --dataset: the board partition (default: "
              "the capture's manifest, else 'unknown').")
@click.option("--workload", default=None, help="With --dataset: the workload partition "
              "(default: the manifest's, else 'unknown').")
@click.option("--name", default=None, help="With --dataset and one capture: its partition "
              "(default: the file name up to the first dot).")
@_ARCH_DS
@_FMT
@_DATE
@_TZ
@click.option("--batch-size", type=_BATCH, default=None, metavar="EVENTS",
              help="Events read and written at a time (one Parquet row group each; default "
                   "1,000,000, with --dataset 100,000).")
def convert_cmd(captures, output, dataset, board, workload, name, arch, fmt, date, tz,
                batch_size):
    """Read CAPTURE into the event frame and save it as Parquet; or, with --dataset, add
    many captures to one partitioned Parquet dataset of replay logs.

    CAPTURE is a sysdig capture (.scap, plain or gzip), or what `sysdig -r` printed: its
    default text, the kit's lossless text format (sysdig_kit.read.text.KIT_SYSDIG_ARGS), or
    JSON (-j). The frame (one row per event, columns named after sysdig's fields, see
    docs/frame.md) keeps its metadata (format, arch, warnings...) in the Parquet file.
    Captures larger than memory are fine: they are converted --batch-size events at a time.

    The dataset (DIR/board=B/workload=W/capture=C/log.parquet: replay-log records, one row per
    syscall, with the provenance columns) is what sysdig_kit.analysis's tables take as a path,
    computed out of core by DuckDB or on a Dask cluster (docs/dataset.md).

    \b
    Example:  sysdig-kit convert trace.scap -o trace.parquet
    Then:     pandas.read_parquet("trace.parquet")  or  sysdig_kit.read.frame.read_parquet(...)
    Dataset:  sysdig-kit convert runs/*.scap --dataset ds --board juno --workload zsh
    Then:     sysdig_kit.analysis.counts("ds", level="syscall")
    """
    if (output is None) == (dataset is None):
        raise KitError("convert writes either -o FILE.parquet or --dataset DIR (one of them)")
    if dataset is not None:
        return _convert_dataset(captures, dataset, board, workload, name, arch, fmt,
                                batch_size or 100_000)
    if len(captures) != 1:
        raise KitError("-o takes one capture (many captures go into a --dataset DIR)")
    if board or workload or name or arch:
        raise KitError("--board/--workload/--name/--arch go with --dataset")
    capture = captures[0]
    batch_size = batch_size or 1_000_000
    from .read import iter_batches
    from .read.frame import write_batches

    _writable(output, (".parquet",), "convert writes Parquet")
    _quiet_reader()  # the warnings are printed below, once
    kw = _read_kw(capture, fmt, date, tz)
    # batch by batch: memory stays that of one batch, whatever the capture's size
    frames = _read_errors(capture,
                          lambda: iter_batches(capture, batch_size=batch_size, fmt=fmt, **kw))
    try:
        rows, attrs = write_batches(frames, output)
    except OSError as exc:
        raise KitError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"{output}: {rows:,} events ({attrs.get('format')})")
    for w in attrs.get("warnings") or []:
        click.echo(f"warning: {w}", err=True)


def _convert_dataset(captures, root, board, workload, name, arch, fmt, batch_size):
    from pathlib import Path

    from .analysis import dataset
    from .replay import build_file

    if name and len(captures) > 1:
        raise KitError("--name names one capture; many are named after their files")
    names = [name or Path(c).name.split(".")[0] for c in captures]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise KitError(f"two captures would be partition capture={dup[0]}: convert them "
                       f"one at a time with --name")
    for kind, v in (("board", board), ("workload", workload), *(("capture", n) for n in names)):
        if v is not None:
            dataset.check_value(kind, v)
    for c in captures:
        _read_kw(c, fmt, None, None)  # every capture exists and is one, before writing any
    _quiet_reader()
    try:
        Path(root).mkdir(parents=True, exist_ok=True)
        for c, n in zip(captures, names):
            logs = _read_errors(c, lambda c=c: build_file(c, arch, batch_size=batch_size,
                                                            fmt=fmt))
            path, rows = dataset.add_capture(root, c, board, workload, n, logs=logs)
            click.echo(f"{path}: {rows:,} records")
    except OSError as exc:
        raise KitError(f"cannot write {root}: {exc.strerror or exc}") from None


@main.command("export")
@click.argument("capture", type=click.Path())
@click.option("--stock", is_flag=True, required=True,
              help="Drop the parameters a patched driver (replay-complete) appended, so that "
                   "stock sysdig and sysdig-inspect read the capture.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="The .scap to write (replaced atomically; never left half-written).")
def export_cmd(capture, stock, output):
    """Write CAPTURE as the stock driver would have recorded it.

    Every event keeps the parameters the stock table has; what the replay-complete patch set
    appended (generic exits' res/out/out2, fstat/newfstatat's stat, getdents64's dirents,
    ioctl's out) is cut off, with the event and block lengths fixed. A stock capture comes out
    byte for byte the same. The replay log needs the appended parameters: keep the original.

    \b
    Example:  sysdig-kit export zsh.scap --stock -o zsh.stock.scap && sysdig -r zsh.stock.scap
    """
    from pathlib import Path

    from . import export

    if not Path(capture).is_file():
        raise KitError(f"{capture}: no such capture")
    r = export.stock(Path(capture), Path(output))
    cut = ", ".join(f"{k} {v}" for k, v in sorted(r.cut.items(), key=lambda kv: -kv[1]))
    click.echo(f"{output}: {r.events:,} events, read with {r.source_table}; "
               + (f"cut back to {r.stock_table}: {sum(r.cut.values()):,} ({cut})" if r.cut
                  else "nothing appended: copied as is"))


@main.command("info")
@click.argument("capture", type=click.Path())
@_FMT
@_DATE
@_TZ
@click.option("--top", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many processes/syscalls to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info_cmd(capture, fmt, date, tz, top, as_json):
    """Summarise CAPTURE: file format and version, number of events, time span, CPUs,
    processes and the most frequent syscalls (event types).

    Reads any capture `convert` reads, batch by batch (large captures are fine).
    """
    import json

    from rich.console import Console

    from .info import render, summarize

    _quiet_reader()  # the summary lists the reader's warnings
    kw = _read_kw(capture, fmt, date, tz)
    s = _reading(capture, lambda: summarize(capture, top=top, fmt=fmt, **kw))
    if as_json:
        click.echo(json.dumps(s, indent=2))
    else:
        render(s, Console(highlight=False))


# --- read: show (events printed like `sysdig -r`) ------------------------------------------

@main.command("show")
@click.argument("capture", type=click.Path())
@click.argument("filter_words", nargs=-1, metavar="[FILTER]")
@click.option("-p", "--print", "print_fmt", default=None, metavar="FORMAT",
              help="sysdig -p format (%evt.num %proc.name %evt.info ...; '*' prints events "
                   "with missing fields too). Default: sysdig -r's line.")
@click.option("--since", default=None, metavar="TIME",
              help="From TIME: ISO time, ns since the epoch, or +OFFSET from the capture "
                   "start (+1.5s, +250ms).")
@click.option("--until", default=None, metavar="TIME", help="Before TIME (same forms).")
@click.option("--evt-num", default=None, metavar="A-B", help="Event numbers A to B (inclusive).")
@click.option("--no-pager", is_flag=True, help="Never page, even on a terminal.")
def show_cmd(capture, filter_words, print_fmt, since, until, evt_num, no_pager):
    """Print CAPTURE's events the way `sysdig -r CAPTURE [FILTER]` does, no sysdig needed.

    FILTER is sysdig's filter language (proc.name=zsh and evt.type in (openat, read)), for
    the fields a frame holds (see docs/frame.md). Paged when stdout is a terminal.
    """
    from .read import _select, read
    from .read.show import lines

    filt = " ".join(filter_words) or None
    # the fd table and thread names need every event: select after reading the whole capture
    full = _reading(capture, lambda: read(capture))
    sel = _select(full, filt, since, until, evt_num)
    out = lines(full, print_fmt, only=full["evt_num"].isin(sel["evt_num"]).to_numpy())
    if sys.stdout.isatty() and not no_pager:
        click.echo_via_pager(ln + "\n" for ln in out)
    else:
        for ln in out:
            click.echo(ln)


@main.command("export-trace")
@click.argument("source", type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(),
              help="The Chrome trace JSON to write (Perfetto UI, chrome://tracing).")
@click.option("--html", default=None, type=click.Path(),
              help="Also write a self-contained zoomable HTML timeline (needs plotly).")
@click.option("--since", default=None, metavar="TIME", help="As for `show`.")
@click.option("--until", default=None, metavar="TIME", help="As for `show`.")
def export_trace_cmd(source, output, html, since, until):
    """Export SOURCE (a capture, or a replay log .parquet/.jsonl) to the Chrome trace event
    format: a track per thread, syscalls as enter->exit slices where the capture has both,
    signals/drops/process exits as instants."""
    from pathlib import Path

    from .analysis.trace import write_chrome_trace
    from .read.window import window

    if Path(source).suffix in (".parquet", ".jsonl"):
        from .replay import read_log

        x = _reading(source, lambda: read_log(source))
        if since is not None or until is not None:
            x = window(x, since, until)
    else:
        from .read import read

        x = _reading(source, lambda: read(source, since=since, until=until))
    out = write_chrome_trace(x, output)
    click.echo(f"{out}: Chrome trace written")
    if html:
        from .analysis.interactive import timeline_html

        click.echo(f"{timeline_html(x, html)}: interactive timeline written")


# --- replay: replay-log, check, decode-hooklog ---------------------------------------------


def _replay_frame(capture, arch, proc=(), pid=(), tid=()):
    from .read import read  # not sysdig_kit.read: importing the subpackage shadows it
    from .replay import build, filter_frame

    frame = _reading(capture, lambda: read(capture))
    return frame, _reading(capture, lambda: build(filter_frame(frame, proc, pid, tid), arch=arch))


_ARCH = click.option("--arch", type=click.Choice(["arm64", "x86_64"]), default=None,
                     help="Architecture for syscall numbers when the capture does not say.")


def _abs_window(capture, since, until) -> tuple:
    """since/until in ns since the epoch; offsets count from the capture's first event (as
    read()'s window does), found by reading its first batch only."""
    if since is None and until is None:
        return None, None
    from .read import iter_batches
    from .read.window import to_ns

    start = 0
    for df in _read_errors(capture, lambda: iter_batches(capture, batch_size=10_000)):
        if len(df):
            start = int(df["evt_rawtime"].min())
            break
    return tuple(None if v is None else to_ns(v, start) for v in (since, until))


@main.command("replay-log")
@click.argument("capture", type=click.Path(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="LOG.parquet (for tools) or LOG.jsonl (for people).")
@_ARCH
@click.option("--proc", multiple=True, help="Only these process names (repeatable).")
@click.option("--pid", multiple=True, type=int, help="Only these process ids (repeatable).")
@click.option("--tid", multiple=True, type=int, help="Only these thread ids (repeatable).")
@click.option("--batch-size", type=_BATCH, default=100_000, show_default=True,
              help="Events read at a time (captures larger than memory are streamed).")
@click.option("--since", default=None, metavar="TIME", help="Only records whose event (the "
              "exit, else the enter) is from TIME on; forms as for `show`.")
@click.option("--until", default=None, metavar="TIME", help="... and before TIME.")
@click.option("--evt-num", default=None, metavar="A-B",
              help="Only records whose event number is A to B (inclusive).")
def replay_log(capture, output, arch, proc, pid, tid, batch_size, since, until, evt_num):
    """Turn CAPTURE into a replay log: one record per syscall per thread (docs/replay-log.md)."""
    from .read.window import parse_range, window
    from .replay import build_file, write_stream

    _writable(output, (".parquet", ".jsonl", ".json"), "a replay log is Parquet or JSON Lines")
    _read_kw(capture, None, None, None)  # exists, is a capture
    parse_range(evt_num)  # a bad range: refused before any work
    bounds = _abs_window(capture, since, until)
    threads, flagged = set(), 0

    def logs():
        nonlocal flagged
        for log in _read_errors(capture, lambda: build_file(
                capture, arch, proc, pid, tid, batch_size=batch_size)):
            if bounds != (None, None) or evt_num is not None:
                log = window(log, *bounds, evt_num)
            threads.update(log["thread_tid"].tolist())
            flagged += int(log["flags"].map(len).gt(0).sum())
            yield log

    try:
        _, n = write_stream(logs(), output)
    except OSError as exc:  # reading errors are KitErrors by now: this is the writing
        raise KitError(f"cannot write {output}: {exc.strerror or exc}") from None
    click.echo(f"{output}: {n} records, {len(threads)} threads, {flagged} flagged "
               f"(sysdig-kit check {capture} says why)")


@main.command("check")
@click.argument("capture", type=click.Path(dir_okay=False))
@_ARCH
@click.option("--manifest", type=click.Path(dir_okay=False), default=None,
              help="Capture manifest with sysdig's drop statistics (default: CAPTURE.manifest.json).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--proc", multiple=True, help="Judge only these process names (repeatable).")
@click.option("--pid", multiple=True, type=int, help="Judge only these process ids.")
@click.option("--tid", multiple=True, type=int, help="Judge only these thread ids.")
@click.option("--replay", is_flag=True, help="Also replay the log against the command after "
              "--: sufficient only if it replays (sysdig-kit replay).")
@click.option("--board", default=None, help="With --replay: replay on this board "
              "(default: this machine).")
@click.option("--timeout", type=float, default=600, show_default=True,
              help="With --replay: seconds without progress before giving up.")
@click.option("--batch-size", type=_BATCH, default=100_000, show_default=True,
              help="Events read at a time (captures larger than memory are streamed).")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def check_cmd(capture, arch, manifest, as_json, proc, pid, tid, replay, board, timeout, cmd,
              batch_size):
    """Is CAPTURE enough to replay? Exit 0 sufficient, 1 insufficient, 2 bad input.

    \b
    sysdig-kit check CAPTURE --replay [--board B] -- CMD ARGS...   (the experiment)"""
    import json
    from pathlib import Path

    from .replay.check import check, render

    if manifest is not None and not Path(manifest).is_file():
        raise KitError(f"--manifest {manifest}: no such file")
    default = Path(str(capture) + ".manifest.json")
    manifest = manifest or (default if default.is_file() else None)
    _quiet_reader()  # check lists the reader's warnings among its reasons
    _read_kw(capture, None, None, None)  # exists, is a capture
    # Drops and gaps are judged on the whole capture, records on the selected threads.
    if replay:  # the replay needs the whole log
        frame, log = _replay_frame(capture, arch, proc, pid, tid)
        result = check(frame, log, manifest)
    else:  # batch by batch, in the memory of one batch
        from .replay import check_file

        result = _reading(capture, lambda: check_file(
            capture, arch, manifest, proc, pid, tid, batch_size=batch_size))
    from .replayer.host import vdso_warning

    if (warn := vdso_warning(capture)) is not None:
        result["reasons"].append({"code": "vdso_visible", "severity": "warning", "count": 1,
                                  "detail": warn, "remedy": "capture with `sysdig-kit capture "
                                  "-- CMD`, which hides the vDSO from CMD and its children"})
    if replay:
        result = _fold_replay(result, capture, log, board, list(cmd), timeout)
    click.echo(json.dumps(result, indent=2) if as_json else render(result))
    sys.exit(0 if result["verdict"] == "sufficient" else 1)


def _fold_replay(result, capture, log, board, cmd, timeout) -> dict:
    """`check --replay`: run the replay; "sufficient" only for what replayed."""
    import tempfile
    from pathlib import Path

    from .replay import write

    if not cmd:
        raise KitError("--replay needs the command after --: check CAPTURE --replay -- CMD ARGS")
    with tempfile.TemporaryDirectory() as tmp:
        jl = write(log, Path(tmp) / "log.jsonl")
        _, summary = _run_replay(jl, cmd, board, Path(tmp) / "summary.json", timeout, False,
                                 out_to_stderr=True)
    result["replay"] = summary
    if summary is None or summary["outcome"] != "replayed":
        rep = (summary or {}).get("report") or {}
        where = (f"thread {rep['thread']} seq {rep.get('seq')} evt_num {rep.get('evt_num')}: "
                 if "thread" in rep else "")
        result["reasons"].append({
            "code": f"replay_{(summary or {}).get('outcome', 'failed')}", "severity": "insufficient",
            "count": 1, "detail": f"the replay of `{' '.join(cmd)}` stopped: {where}"
                                  f"{rep.get('detail', 'no summary')}",
            "remedy": "see the replay report (sysdig-kit replay CAPTURE -- CMD)"})
        result["verdict"] = "insufficient"
    else:
        t = summary["totals"]
        result["reasons"].append({
            "code": "replayed", "severity": "info", "count": t["replayed"],
            "detail": f"`{' '.join(cmd)}` replayed: {t['replayed']} of {t['records']} records "
                      f"({t['injected']} injected, {t['executed']} executed and verified, "
                      f"{t['restored']} restored), exit status {summary['exit_status']}",
            "remedy": "none needed"})
    return result


def _run_replay(log, cmd, board, json_out, timeout, keep_vdso, out_to_stderr=False):
    from .replayer import host

    if board in (None, "local"):
        return host.replay_here(log, cmd, json_out, timeout, keep_vdso, out_to_stderr)
    from . import profiles

    return host.replay_board(profiles.load(board), log, cmd, json_out, timeout, keep_vdso,
                             out_to_stderr=out_to_stderr)


@main.command("replay", context_settings={"ignore_unknown_options": True})
@click.argument("source", type=click.Path(dir_okay=False))
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--board", default=None, help="Replay on this board (default: this machine, "
              "whose architecture must be the log's).")
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None,
              help="Write the summary here instead of stderr.")
@click.option("--timeout", type=float, default=600, show_default=True,
              help="Seconds without progress before giving up (a stuck replay).")
@click.option("--keep-vdso", is_flag=True, help="Do not hide the vDSO (only for logs captured "
              "with --keep-vdso).")
def replay_cmd(source, cmd, board, json_out, timeout, keep_vdso):
    """Replay SOURCE (a capture, or a .parquet/.jsonl replay log) against CMD under ptrace.

    \b
    sysdig-kit replay out/cmd.scap [--board B] [--json F] -- CMD ARGS...
    Every syscall of CMD must match the log (else: divergence); results are injected or run
    and verified (sysdig_kit/data/replayer/policy.csv). CMD's stdout/stderr pass through; the
    summary goes to stderr or --json. Exit 0 replayed, 1 divergence or a record the log cannot
    restore, 2 bad input."""
    import json
    import tempfile
    from pathlib import Path

    from .replayer import host
    from .replayer.__main__ import text

    with tempfile.TemporaryDirectory() as tmp:
        log = host.to_jsonl(source, Path(tmp))
        out = Path(json_out) if json_out else Path(tmp) / "summary.json"
        rc, summary = _run_replay(log, list(cmd), board, out, timeout, keep_vdso)
        if summary is None:
            raise KitError(f"the replayer gave no summary (rc {rc})")
        if not json_out:
            click.echo(text(summary), err=True)
        else:
            Path(json_out).write_text(json.dumps(summary, indent=1) + "\n")
    sys.exit(0 if summary["outcome"] == "replayed" else 1)


@main.command("decode-hooklog")
@click.argument("logfile", type=click.Path(dir_okay=False))
@click.option("--arch", type=click.Choice(["arm64", "x86_64"]), default="arm64", show_default=True)
@click.option("--pattern", default=None,
              help="Regex with a named group (?P<nr>...); other named groups become columns.")
@click.option("--base", type=click.Choice(["auto", "16", "10"]), default="auto", show_default=True,
              help="How numbers are written (auto: 0x.. hex, else decimal).")
@click.option("--nr-field", type=int, default=2, show_default=True,
              help="Which numbered field (`2: 0x3f`) holds the syscall number.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the frame to .csv or .parquet.")
def decode_hooklog(logfile, arch, pattern, base, nr_field, output):
    """Decode raw syscall-hook log lines (numbers) into syscall names."""
    from .replay.hooklog import DEFAULT_PATTERN, decode, summary

    df = decode(logfile, arch=arch, pattern=pattern or DEFAULT_PATTERN,
                base=None if base == "auto" else int(base), nr_field=nr_field)
    if output:
        if output.endswith(".parquet"):
            df.to_parquet(output, index=False)
        elif output.endswith(".csv"):
            df.to_csv(output, index=False)
        else:
            raise KitError(f"{output}: name must end in .csv or .parquet")
    click.echo(summary(df))


# --- Fabric tasks from any folder ----------------------------------------------------------

FABFILE = ('"""Fabric tasks of sysdig-kit (fab -l): build-juno, deploy, capture, ..."""\n\n'
           "from sysdig_kit.tasks import ns  # noqa: F401\n")


@main.command("fabfile")
@click.argument("folder", type=click.Path(file_okay=False), default=".")
def fabfile_cmd(folder):
    """Write FOLDER/fabfile.py (one import) so that `fab` run there or below finds the kit's
    board tasks (they ship in the package: sysdig_kit.tasks)."""
    from pathlib import Path

    f = Path(folder) / "fabfile.py"
    if f.exists() and f.read_text() != FABFILE:
        raise KitError(f"{f} exists and is not sysdig-kit's; add the line "
                       "`from sysdig_kit.tasks import ns` to it yourself")
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(FABFILE)
    click.echo(f"wrote {f}: `fab -l` there lists the board tasks")


# --- capture -------------------------------------------------------------------------------

@main.command("capture")
@click.option("--proc", help="process name (comm), e.g. zsh")
@click.option("--pid", type=int, help="process id (thread group)")
@click.option("--tid", type=int, help="thread id")
@click.option("--evt-type", "evt_types", multiple=True, help="event type (repeatable)")
@click.option("--filter", "raw_filter", help="raw sysdig filter, ANDed with the rest (experts)")
@click.option("--follow-children", is_flag=True,
              help="also the processes below --proc/--pid (they are renamed once they exec)")
@click.option("--snaplen", type=int, default=None,
              help="bytes kept per buffer [default: 4096; 65000 (sysdig's largest) with -- CMD, whose replay "
                   "needs every byte read]")
@click.option("--duration", type=float, help="stop after this many seconds")
@click.option("--count", type=int, help="stop after this many events")
@click.option("-o", "--output", default=paths.DEFAULT_CAPTURE, show_default=True, help="local .scap path")
@click.option("--board", help="board profile; 'local' captures on this machine "
              "[default: $SYSDIG_KIT_BOARD, else juno if configured, else qemu-arm64]")
@click.option("--dry-run", is_flag=True, help="print the exact sysdig command and stop")
@click.option("--boot", is_flag=True, help="power the board on first if it is down "
              "(otherwise a board that is down is an error saying how to bring it up)")
@click.option("--keep-vdso", is_flag=True, help="with -- CMD: leave the vDSO visible (time read "
              "through it is then in no capture)")
@click.argument("cmd", nargs=-1, type=click.UNPROCESSED)
def capture_cmd(proc, pid, tid, evt_types, raw_filter, follow_children, snaplen, duration, count,
                output, board, dry_run, boot, keep_vdso, cmd):
    """Capture syscalls with sysdig on a board (or here) into a .scap file plus a manifest.

    Stops on --duration (the kit's timer, then SIGINT), --count (sysdig's -n) or Ctrl-C; the
    manifest (OUTPUT.manifest.json) says which (stop_reason) and keeps sysdig's own event and
    drop counts.

    \b
    sysdig-kit capture [--board B] -o OUT.scap -- CMD ARGS...
    runs CMD on the board under capture from its first instruction, with every process it
    starts, its stdout/stderr passed through, the vDSO hidden (time reads enter the kernel) and
    address-space randomisation off, stops when CMD exits and keeps its exit status in the
    manifest (workload.rc): what `sysdig-kit replay` needs."""
    from . import capture, profiles

    if cmd:
        if proc or pid or tid or follow_children or evt_types or raw_filter or dry_run:
            raise KitError("-- CMD captures CMD and its children: no --proc/--pid/--tid/"
                           "--follow-children/--evt-type/--filter/--dry-run with it")
        from .replayer.host import capture_command

        prof = None if board == "local" else profiles.load(board or profiles.default_board())
        res = capture_command(list(cmd), output, profile=prof, snaplen=snaplen or 65000,
                              keep_vdso=keep_vdso, boot=boot)
        sys.exit(res.manifest["workload"]["rc"] or 0)
    snaplen = snaplen or 4096

    opts = capture.Options(proc=proc, pid=pid, tid=tid, evt_types=tuple(evt_types),
                           raw_filter=raw_filter, follow_children=follow_children,
                           snaplen=snaplen, duration=duration, count=count)
    opts.validate()
    prof = None if board == "local" else profiles.load(board or profiles.default_board())
    if dry_run:
        click.echo(capture.dry_run(opts, output, prof))
        return
    capture.capture(opts, output, profile=prof, boot=boot)



# --- analysis: run ---------------------------------------------------------------------------

@main.command("run")
@click.argument("playbook", type=click.Path(dir_okay=False))
@click.option("--board", "boards", multiple=True,
              help="Run on this board instead of the playbook's (repeatable; 'local' = here).")
@click.option("-o", "--out", default=None,
              help="Results folder [default: the playbook's `output`, else out/NAME].")
@click.option("--repetitions", type=int, default=None, help="Override the playbook's repetitions.")
@click.option("--skip-unsupported", is_flag=True,
              help="Run the variants a board can run and skip the others (default: refuse).")
@click.option("--check", "check_only", is_flag=True,
              help="Validate the playbook and print the plan; run nothing.")
@click.option("--boot", is_flag=True, help="Power its boards on first if they are down.")
def run_cmd(playbook, boards, out, repetitions, skip_unsupported, check_only, boot):
    """Run PLAYBOOK (playbooks/*.yaml): workloads x capture variants x repetitions.

    Writes OUT/results.csv and .parquet (variant, run, wall time, CPU time, events, drops,
    capture size) and the captures as a Parquet dataset OUT/captures/board=/run=/variant=/.
    Exit status 0 when every run succeeded, 1 when some failed (the results say which),
    2 for a bad playbook or option.

    \b
    Example:  sysdig-kit run playbooks/overhead.yaml
              sysdig-kit run playbooks/overhead.yaml --board local --skip-unsupported
    """
    from .analysis import playbook as pbmod
    from .analysis import runner

    pb = pbmod.load(playbook, boards=list(boards) or None)
    if repetitions is not None:
        if repetitions < 1:
            raise KitError("--repetitions: 1 or more")
        pb.repetitions = repetitions
    runs = len(pb.workloads) * max(pb.warmup, 1) + \
        len(pb.workloads) * len(pb.variants) * pb.repetitions
    click.echo(f"{pb.source}: {pb.name} on {', '.join(pb.boards)}: {len(pb.workloads)} workloads"
               f" x {len(pb.variants)} variants ({', '.join(v.name for v in pb.variants)}) x "
               f"{pb.repetitions} repetitions, {pb.warmup} warm-up: {runs} runs per board")
    if check_only:
        return
    results = runner.run(pb, out=out, skip_unsupported=skip_unsupported, boot=boot)
    runs = results[~results["warmup"].astype(bool)]
    failed = runs[~runs["ok"].astype(bool)]
    if len(failed):  # the results are written; the exit status says they are not all there
        first = failed.iloc[0]
        every = "every run failed" if len(failed) == len(runs) else "some runs failed"
        click.echo(f"sysdig-kit: error: {every}: {len(failed)} of {len(runs)} (first: "
                   f"{first['workload']} · {first['variant']} on {first['board']}: "
                   f"{' '.join(str(first['error']).split())[:200]})", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
