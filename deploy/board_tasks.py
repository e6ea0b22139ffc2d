"""Board tasks: board-up, board-down, deploy, undeploy, capture, demo.

Thin wrappers over sysdig_kit (the same functions serve the CLI and notebooks). The board is
`--board NAME`, else $SYSDIG_KIT_BOARD, else sysdig_kit.profiles.default_board().
"""

from __future__ import annotations

from invoke import Exit, task

from sysdig_kit import profiles

from ._common import kit_errors


def _profile(board: str | None):
    return profiles.load(board or profiles.default_board())


@task(help={"board": "board profile (default: juno if configured, else qemu-arm64)",
            "fresh": "emulated board: start from the pristine image (drops what was deployed)"})
@kit_errors
def board_up(c, board=None, fresh=False):
    """Power the board on and wait for SSH (the emulated board: build its image on first use)."""
    p = _profile(board)
    if p.emulator is None:
        from sysdig_kit import remote

        with remote.connect(p) as conn:
            print(remote.run(conn, ["uname", "-a"]).stdout.strip())
        return
    from sysdig_kit.emulator import boot

    r = boot.up(p, fresh=fresh)
    if r.boot_seconds is None:
        print(f"board {p.name} already up (pid {r.pid}, SSH 127.0.0.1:{r.port})")


@task(help={"board": "board profile"})
@kit_errors
def board_down(c, board=None):
    """Power the emulated board off (clean poweroff, then signals)."""
    p = _profile(board)
    if p.emulator is None:
        raise Exit(f"board {p.name} is a real board; power it off yourself")
    from sysdig_kit.emulator import boot

    if not boot.down(p):
        print(f"board {p.name} is not running")


@task(help={"board": "board profile", "force": "push and reload even when the bundle is unchanged"})
@kit_errors
def deploy(c, board=None, force=False):
    """Push the built bundle to the board, check vermagic, load the driver, smoke-test sysdig."""
    from sysdig_kit import deploy as _deploy

    _deploy.deploy(_profile(board), force=force)


@task(help={"board": "board profile"})
@kit_errors
def undeploy(c, board=None):
    """Unload the driver and remove the kit's files from the board."""
    from sysdig_kit import deploy as _deploy

    _deploy.undeploy(_profile(board))


@task(help={"board": "board profile", "proc": "process name (comm)", "pid": "process id",
            "children": "follow the process tree (proc.aname / proc.apid)",
            "duration": "seconds", "count": "events", "snaplen": "bytes of buffers kept",
            "output": "local .scap path", "filter": "raw sysdig filter (experts)"})
@kit_errors
def capture(c, board=None, proc=None, pid=None, children=False, duration=None, count=None,
            snaplen=4096, output="out/capture.scap", filter=None):
    """Capture on the board with sysdig and fetch the file (+ manifest) here."""
    from sysdig_kit import capture as _capture

    opts = _capture.Options(proc=proc, pid=int(pid) if pid else None, follow_children=children,
                            duration=float(duration) if duration else None,
                            count=int(count) if count else None, snaplen=int(snaplen),
                            raw_filter=filter)
    _capture.capture(opts, output, profile=_profile(board))


@task(help={"board": "board profile", "out": "output folder"})
@kit_errors
def demo(c, board=None, out="out"):
    """Capture a scripted zsh session on the board (echo hi > /tmp/x; cat /tmp/x; exit 3)."""
    from sysdig_kit import capture as _capture

    res = _capture.capture_session(_profile(board), _capture.DEMO_SESSION, f"{out}/zsh.scap")
    print(f"capture {res.path}: {res.manifest['stats']}")
