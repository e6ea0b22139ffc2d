"""Board tasks: board-up, board-down, board-reset, deploy, undeploy, capture, demo.

Thin wrappers over sysdig_kit (the same functions serve the CLI and notebooks). The board is
`--board NAME`, else $SYSDIG_KIT_BOARD, else sysdig_kit.profiles.default_board().
Only board-up (or a task's --boot) powers a board on; the others say how when it is down.
"""

from __future__ import annotations

from invoke import task

from sysdig_kit import profiles

from ._common import kit_errors


def _profile(board: str | None):
    return profiles.load(board or profiles.default_board())


@task(help={"board": "board profile (default: juno if configured, else qemu-arm64)",
            "fresh": "emulated board: start from the pristine image (drops what was deployed)"})
@kit_errors
def board_up(c, board=None, fresh=False):
    """Power the board on and wait for SSH (emulated: build its image on first use; a real
    board: its profile's hooks.power_on command)."""
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


@task(help={"board": "board profile", "proc": "process name (comm)", "pid": "process id",
            "children": "follow the process tree (proc.aname / proc.apid)",
            "duration": "seconds", "count": "events", "snaplen": "bytes of buffers kept",
            "output": "local .scap path", "filter": "raw sysdig filter (experts)",
            "boot": "power the board on first if it is down"})
@kit_errors
def capture(c, board=None, proc=None, pid=None, children=False, duration=None, count=None,
            snaplen=4096, output="out/capture.scap", filter=None, boot=False):
    """Capture on the board with sysdig and fetch the file (+ manifest) here."""
    from sysdig_kit import capture as _capture

    opts = _capture.Options(proc=proc, pid=int(pid) if pid else None, follow_children=children,
                            duration=float(duration) if duration else None,
                            count=int(count) if count else None, snaplen=int(snaplen),
                            raw_filter=filter)
    _capture.capture(opts, output, profile=_profile(board), boot=boot)


@task(help={"board": "board profile", "out": "output folder",
            "boot": "power the board on first if it is down"})
@kit_errors
def demo(c, board=None, out="out", boot=False):
    """Capture a scripted zsh session on the board (echo hi > /tmp/x; cat /tmp/x; exit 3)."""
    from sysdig_kit import capture as _capture

    res = _capture.capture_session(_profile(board), _capture.DEMO_SESSION, f"{out}/zsh.scap",
                                   boot=boot)
    print(f"capture {res.path}: {res.manifest['stats']}")
