"""Board tasks: board-up, board-down, board-reset, deploy, undeploy, capture, demo, record, replay.

Thin wrappers over sysdig_kit (the same functions serve the CLI and notebooks). The board is
`--board NAME`, else $SYSDIG_KIT_BOARD, else sysdig_kit.profiles.default_board().
Only board-up (or a task's --boot) powers a board on; the others say how when it is down.
"""

from __future__ import annotations

from sysdig_kit import paths, profiles
from sysdig_kit.errors import KitError

from ._common import kit_errors, task


def _profile(board: str | None):
    return profiles.load(board or profiles.default_board())


@task(help={"board": "board profile (default: juno if configured, else qemu-arm64)",
            "fresh": "emulated board: start from the pristine image (drops what was deployed)"})
@kit_errors
def board_up(c, board=None, fresh=False):
    """Power the board on and wait for SSH (emulated: boot, image built on first use).

    A real board: its profile's hooks.power_on command."""
    from sysdig_kit import board as _board

    b = _board.platform(_profile(board))
    if b.is_up():
        with b.connect() as conn:
            print(f"board {b.name} is up: {conn.run(['uname', '-a']).stdout.strip()}")
        return
    b.up(fresh=fresh)


@task(help={"board": "board profile"})
@kit_errors
def board_down(c, board=None):
    """Power the board off (emulated: clean poweroff, then signals; real: hooks.power_off)."""
    from sysdig_kit import board as _board

    b = _board.platform(_profile(board))
    if not b.down():
        print(f"board {b.name} is not running")


@task(help={"board": "board profile"})
@kit_errors
def board_reset(c, board=None):
    """Reset the board (after a driver oops): hooks.reset, else reboot; waits for SSH."""
    from sysdig_kit import board as _board

    _board.platform(_profile(board)).reset()


@task(help={"board": "board profile", "force": "push and reload even when the bundle is unchanged",
            "boot": "power the board on first if it is down"})
@kit_errors
def deploy(c, board=None, force=False, boot=False):
    """Push the built bundle to the board, check vermagic, load the driver, smoke-test sysdig."""
    from sysdig_kit import deploy as _deploy

    _deploy.deploy(_profile(board), force=force, boot=boot)


@task(help={"board": "board profile"})
@kit_errors
def undeploy(c, board=None):
    """Unload the driver and remove the kit's files from the board."""
    from sysdig_kit import deploy as _deploy

    _deploy.undeploy(_profile(board))


# The same names, flags and defaults as `sysdig-kit capture` (tests/test_tasks.py compares them).
@task(iterable=["evt_type"], short={"output": "o"},
      help={"board": "board profile; 'local' captures on this machine", "proc": "process name (comm)",
            "pid": "process id (thread group)", "tid": "thread id",
            "evt_type": "event type (repeatable)",
            "filter": "raw sysdig filter, ANDed with the rest (experts)",
            "follow_children": "also the processes below --proc/--pid",
            "snaplen": "bytes kept per buffer", "duration": "stop after this many seconds",
            "count": "stop after this many events", "output": "local .scap path",
            "dry_run": "print the exact sysdig command and stop",
            "boot": "power the board on first if it is down"})
@kit_errors
def capture(c, board=None, proc=None, pid=None, tid=None, evt_type=None, filter=None,
            follow_children=False, snaplen=4096, duration=None, count=None,
            output=paths.DEFAULT_CAPTURE, dry_run=False, boot=False):
    """Capture on the board with sysdig and fetch the file (+ manifest) here."""
    from sysdig_kit import capture as _capture

    num = {}
    for name, v, kind in (("pid", pid, int), ("tid", tid, int), ("count", count, int),
                          ("duration", duration, float), ("snaplen", snaplen, int)):
        try:
            num[name] = None if v is None else kind(v)
        except ValueError:
            raise KitError(f"--{name} {v!r}: not a number") from None
    opts = _capture.Options(proc=proc, evt_types=tuple(evt_type or ()), raw_filter=filter,
                            follow_children=follow_children, **num)
    opts.validate()
    prof = None if board == "local" else _profile(board)
    if dry_run:
        print(_capture.dry_run(opts, output, prof))
        return
    _capture.capture(opts, output, profile=prof, boot=boot)


@task(short={"out": "o"}, help={"board": "board profile", "out": "output folder",
            "boot": "power the board on first if it is down"})
@kit_errors
def demo(c, board=None, out=paths.OUT, boot=False):
    """Capture a scripted zsh session on the board (echo hi > /tmp/x; cat /tmp/x; exit 3)."""
    from sysdig_kit import capture as _capture

    res = _capture.capture_session(_profile(board), _capture.DEMO_SESSION, f"{out}/zsh.scap",
                                   boot=boot)
    print(f"capture {res.path}: {res.manifest['stats']}")


@task(help={"cmd": "the command to record, one string (split like a shell would, no shell)",
            "output": "local .scap path", "board": "board profile",
            "snaplen": "bytes of buffers kept (a replay needs every byte read)"})
@kit_errors
def record(c, cmd, output="out/cmd.scap", board=None, snaplen=65000):
    """`sysdig-kit capture -- CMD` on the board: CMD from its first instruction, its children,
    vDSO hidden, its stdout/stderr passed through, its exit status in the manifest."""
    import shlex

    from sysdig_kit.replayer.host import capture_command

    res = capture_command(shlex.split(cmd), output, profile=_profile(board), snaplen=int(snaplen))
    print(f"capture {res.path}: exit status {res.manifest['workload']['rc']}")


@task(help={"source": "capture or replay log (.scap, .parquet, .jsonl)",
            "cmd": "the command to replay, one string", "board": "board profile",
            "json": "write the summary here (default: stderr)"})
@kit_errors
def replay(c, source, cmd, board=None, json=None):
    """`sysdig-kit replay SOURCE --board B -- CMD`: replay the log against CMD on the board."""
    import shlex
    import sys
    import tempfile
    from pathlib import Path

    from sysdig_kit.replayer import host
    from sysdig_kit.replayer.__main__ import text

    with tempfile.TemporaryDirectory() as tmp:
        log = host.to_jsonl(source, Path(tmp))
        _, summary = host.replay_board(_profile(board), log, shlex.split(cmd),
                                       Path(json or Path(tmp) / "s.json"))
    if summary is None:
        sys.exit(2)
    if not json:
        print(text(summary), file=sys.stderr)
    sys.exit(0 if summary["outcome"] == "replayed" else 1)
