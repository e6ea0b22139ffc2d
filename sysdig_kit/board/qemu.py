"""The emulated arm64 board as a platform: sysdig_kit.emulator's QEMU, reached over SSH.

The emulator knows QEMU (image, boot, power-off by signals); this class adds what needs SSH:
the strictly checked host key read out of the image, "a command runs" as the boot's end, and a
clean poweroff before the signals.
"""

from __future__ import annotations

from pathlib import Path

from ..emulator import boot as _boot
from ..errors import KitError
from .platforms import SshBoard


class QemuBoard(SshBoard):
    kind = "qemu"

    def __init__(self, profile):
        super().__init__(profile)
        self.hooks = {}  # power is QEMU's

    @property
    def up_hint(self) -> str:
        return f"bring it up with `fab board-up --board {self.name}`"

    def _connection(self, timeout: float, known_hosts=None):
        kh = _boot.known_hosts(self.profile)
        if not kh.is_file():  # written at boot: never booted (or its cache was cleared)
            s = self.profile.ssh
            raise KitError(f"board {self.name} is not reachable at {s.user}@{s.host}:{s.port} "
                           f"(not running); {self.up_hint}")
        # The loopback board's host key is known from its image: checked strictly.
        return super()._connection(timeout, known_hosts=kh)

    def connect(self, timeout: float = 15, boot: bool = False):
        if not boot and not self.is_up():
            s = self.profile.ssh
            raise KitError(f"board {self.name} is not reachable at {s.user}@{s.host}:{s.port} "
                           f"(not running); {self.up_hint}")
        return super().connect(timeout, boot)

    def is_up(self) -> bool:
        return _boot.running(self.profile) is not None

    def _ready(self) -> bool:
        try:
            with self._connection(10).open() as c:
                return c.run(["true"], timeout=20, check=False).ok
        except KitError:  # not up yet: refused, reset, banner timeout, auth not ready
            return False

    def _poweroff(self) -> None:
        try:
            with self._connection(10).open() as c:
                c.run(["systemctl", "poweroff", "--no-block"], timeout=15, check=False)
        except KitError:
            pass

    def up(self, fresh: bool = False, log=print) -> _boot.Running:
        """Boot (building the image on first use; minutes) and wait for SSH. Already up: at once."""
        return _boot.up(self.profile, fresh=fresh, log=log, ready=self._ready)

    def ensure_up(self) -> None:
        self.up()  # returns at once when up; waits for a boot another process started

    def down(self, log=print) -> bool:
        return _boot.down(self.profile, log=log, poweroff=self._poweroff)

    def reset(self, log=print) -> _boot.Running:
        self.down(log=log)
        return self.up(log=log)

    def running(self) -> dict | None:
        return _boot.running(self.profile)

    def serial_log(self, lines: int = 40) -> str | None:
        info = _boot.running(self.profile)
        if not info:
            return None
        return _boot._tail(Path(info["serial"]), lines)
