"""The board layer: every stage reaches a board (or this machine) through it.

    from sysdig_kit import board, profiles

    b = board.platform(profiles.load("qemu-arm64"))   # or board.platform("local")
    b.up()                       # power on / boot; only when asked (fab board-up, --boot)
    with b.connect() as c:       # open now; unreachable -> KitError "board X is not reachable
        r = c.run(["uname", "-r"])   #  at ...; bring it up with `fab board-up --board X`"
        r.rc, r.stdout, r.stderr, r.ok
        c.run(argv, timeout=120, check=False)   # argv quoted element by element
        c.sh("fixed snippet of ours")           # never built from user values (quote())
        job = c.background(argv)  # detached; job.pid, job.poll(watch=path) -> (alive, bytes),
        job.signal(signal.SIGINT); job.wait(timeout) -> rc|None; job.output(); job.stop();
        job.cleanup()
        c.push(local, remote); c.pull(remote, local); c.size(remote)
    b.sysdig                     # the board's own deployed sysdig path
    b.down(); b.reset(); b.serial_log(); b.is_up(); b.ensure_up()

Platforms (one per board kind, chosen from the profile): `qemu` (an `emulator:` section:
sysdig_kit.emulator's QEMU), `ssh` (a board that is just there, the Juno, with optional
`hooks:` commands for on/off/reset/serial log), `local` (this machine). Connections:
`SshConnection` (Fabric, the profile's OpenSSH key only) and `LocalConnection`, same methods.
Running sysdig on a target (start, header, SIGINT, `-v` stats) is sysdig_kit.capture.Sysdig.
"""

from __future__ import annotations

from .connection import Job, LocalConnection, Result, SshConnection
from .platforms import LocalMachine, Platform, SshBoard, dmesg_tail, install_dir
from .qemu import QemuBoard

__all__ = ["Job", "LocalConnection", "LocalMachine", "Platform", "QemuBoard", "Result",
           "SshBoard", "SshConnection", "connect", "dmesg_tail", "install_dir", "platform"]


def platform(profile) -> Platform:
    """The platform of a board profile (or of "local" / None: this machine)."""
    if profile is None or profile == "local":
        return LocalMachine()
    if isinstance(profile, str):
        from .. import profiles

        profile = profiles.load(profile)
    if getattr(profile, "emulator", None) is not None:
        return QemuBoard(profile)
    return SshBoard(profile)


def connect(profile, timeout: float = 15, boot: bool = False):
    """An open connection to the board of `profile`; boot=True powers it on first if needed."""
    return platform(profile).connect(timeout=timeout, boot=boot)
