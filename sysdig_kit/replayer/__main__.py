"""The board-side entry point (stdlib only): `python3 -m <package> replay LOG.jsonl [--json F] -- CMD`
and `python3 -m <package> launch [--pidfile F] [--go F] -- CMD`. Exit status of replay: 0 the run
replayed without divergence, 1 divergence or a record it could not restore, 2 bad input."""

from __future__ import annotations

import argparse
import json
import sys

from .logfile import Log, LogError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sysdig-kit-replayer")
    sub = p.add_subparsers(dest="verb", required=True)
    r = sub.add_parser("replay", help="replay a JSON Lines replay log against CMD")
    r.add_argument("log")
    r.add_argument("--json", dest="json_out", default=None, help="write the summary here")
    r.add_argument("--keep-vdso", action="store_true", help="do not hide the vDSO")
    r.add_argument("--timeout", type=float, default=600)
    r.add_argument("--cwd", default=None, help="run CMD in this directory (as recorded)")
    la = sub.add_parser("launch", help="start CMD for a capture (vDSO hidden, no ASLR)")
    la.add_argument("--pidfile", default=None)
    la.add_argument("--go", default=None, help="wait until this file exists before the exec")
    la.add_argument("--keep-vdso", action="store_true")
    la.add_argument("--cwd", default=None, help="run CMD in this directory")
    return p


def _cmd(args) -> list[str]:
    cmd = args.cmd
    if not cmd:
        print("sysdig-kit-replayer: error: no command after --", file=sys.stderr)
        sys.exit(2)
    return cmd


def text(summary: dict) -> str:
    """The human summary (stderr)."""
    t = summary["totals"]
    lines = [(f"replay: {summary['outcome']}: {t['replayed']} of {t['records']} records "
             f"(injected {t['injected']}, executed and verified {t['executed']}, restored "
             f"{t['restored']}, executed unverified {t['unverified']}; {t['buffers']} buffers, "
             f"{t['bytes']} bytes written); exit status {summary['exit_status']} "
             f"(recorded {summary['recorded_exit_status']}); {len(summary['threads'])} threads, "
             f"{summary['seconds']} s")]
    rep = summary.get("report")
    if rep:
        where = ""
        if "thread" in rep:
            where = (f"thread {rep['thread']} (replayed as {rep['replayed_tid']}) seq "
                     f"{rep.get('seq')} evt_num {rep.get('evt_num')}: ")
        lines.append(f"replay: {summary['outcome']}: {where}{rep['detail']}")
        if rep.get("asked"):
            lines.append(f"  asked:    {rep['asked']['syscall']} {' '.join(rep['asked']['args'])}")
        if rep.get("recorded"):
            r = rep["recorded"]
            lines.append(f"  recorded: {r['syscall']} res={r['res']} {r['args']}")
        for r in rep.get("last_matching", []):
            lines.append(f"  matched:  seq {r['seq']} evt_num {r['evt_num']} {r['syscall']} "
                         f"res={r['res']}")
    return "\n".join(lines)


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cut = argv.index("--") if "--" in argv else len(argv)
    args = _parser().parse_args(argv[:cut])
    args.cmd = argv[cut + 1:]
    if args.verb == "launch":
        from .launcher import launch
        try:
            return launch(_cmd(args), args.pidfile, args.go, hide_vdso=not args.keep_vdso,
                          cwd=args.cwd)
        except (OSError, TimeoutError) as exc:
            print(f"sysdig-kit launch: error: {exc}", file=sys.stderr)
            return 2
    from .engine import Replayer
    cmd = _cmd(args)
    try:
        rep = Replayer(Log.open(args.log), cmd, hide_vdso=not args.keep_vdso,
                       timeout=args.timeout, cwd=args.cwd)
    except (LogError, ValueError, OSError) as exc:
        print(f"sysdig-kit replay: error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = rep.run()
    except FileNotFoundError as exc:
        print(f"sysdig-kit replay: error: {exc}", file=sys.stderr)
        return 2
    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(summary, f, indent=1)
    else:
        print(text(summary), file=sys.stderr)
    return 0 if summary["outcome"] == "replayed" else 1


if __name__ == "__main__":
    sys.exit(main())
