"""A platform per board kind: how a board is powered, reset, reached and watched.

`SshBoard` is a board that is just there (the Juno): SSH to `ssh.host`, and, when its profile
has them, commands run on this machine to power it on/off, reset it and read its serial log:

    hooks:                      # all optional; run with `sh -c` on this machine
      power_on: pdu-ctl outlet 3 on
      power_off: pdu-ctl outlet 3 off
      reset: pdu-ctl outlet 3 cycle
      serial_log: tail -n 200 /var/log/conserver/juno.log
      boot_timeout: 300         # seconds from power_on/reset to SSH

`QemuBoard` (sysdig_kit/board/qemu.py) is the emulated board; `LocalMachine` is this machine
(`--board local`). Nothing here boots a board unless asked (`up()`, or `connect(boot=True)`).
"""

from __future__ import annotations

import shlex
import socket
import subprocess
import time

from ..errors import KitError
from .connection import LocalConnection, SshConnection


def install_dir(profile) -> str:
    return (getattr(profile, "install", None) or {}).get("dir", "/opt/sysdig-kit")


def ssh_banner(host: str, port: int, timeout: float = 5) -> bool:
    """sshd's banner is there (a bare TCP connect proves nothing behind a port forward)."""
    try:
        with socket.create_connection((host, int(port)), timeout=timeout) as s:
            s.settimeout(timeout)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


class Platform:
    kind = "?"

    def __init__(self, profile):
        self.profile = profile
        self.name = profile.name

    @property
    def sysdig(self) -> str:
        """The sysdig the kit deployed on this board."""
        return f"{install_dir(self.profile)}/sysdig/bin/sysdig"

    @property
    def up_hint(self) -> str:
        return f"bring it up with `fab board-up --board {self.name}`"

    def connect(self, timeout: float = 15, boot: bool = False):
        """An open connection; boot=True powers the board on first if it is not up."""
        if boot:
            self.ensure_up()
        return self._connection(timeout).open()

    def ensure_up(self) -> None:
        if not self.is_up():
            self.up()

    def serial_log(self, lines: int = 40) -> str | None:
        return None


class LocalMachine(Platform):
    """This machine (`--board local`): sysdig from $PATH, needs the driver loaded here."""

    kind = "local"

    def __init__(self, profile=None):
        self.profile, self.name = profile, "local"

    @property
    def sysdig(self) -> str:
        return "sysdig"

    def is_up(self) -> bool:
        return True

    def up(self, fresh: bool = False, log=print) -> None:
        pass

    def _connection(self, timeout: float):
        return LocalConnection()


class SshBoard(Platform):
    """A board reached over SSH; power, reset and serial log through the profile's hooks."""

    kind = "ssh"

    def __init__(self, profile):
        super().__init__(profile)
        self.hooks = dict(getattr(profile, "hooks", None) or {})

    @property
    def up_hint(self) -> str:
        if self.hooks.get("power_on"):
            return f"power it on with `fab board-up --board {self.name}`"
        return (f"check it is powered and on the network (ssh.host in "
                f"{self.profile.source_file}), then `fab board-up --board {self.name}`")

    def _connection(self, timeout: float, known_hosts=None) -> SshConnection:
        s = self.profile.ssh
        if not s.host:
            raise KitError(f"board {self.name}: no ssh.host in {self.profile.source_file}")
        return SshConnection(self.name, s.host, int(s.port), s.user, s.key,
                             known_hosts=known_hosts, timeout=timeout, hint=self.up_hint)

    def is_up(self) -> bool:
        s = self.profile.ssh
        return bool(s.host) and ssh_banner(s.host, s.port)

    def _hook(self, what: str, timeout: float = 120) -> str | None:
        cmd = self.hooks.get(what)
        if not cmd:
            return None
        res = subprocess.run(["sh", "-c", str(cmd)], capture_output=True, text=True,
                             timeout=timeout, check=False)
        if res.returncode:
            raise KitError(f"board {self.name}: hooks.{what} `{cmd}` failed (rc "
                           f"{res.returncode}): {' '.join(res.stderr.split())[-200:]}")
        return res.stdout

    def wait_ssh(self, timeout: float | None = None) -> float:
        """Seconds until a command runs over SSH; a KitError (with the serial log) after timeout."""
        timeout = float(timeout or self.hooks.get("boot_timeout") or 300)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.is_up():
                try:
                    with self._connection(10).open() as c:
                        if c.run(["true"], timeout=20, check=False).ok:
                            return round(time.monotonic() - t0, 1)
                except KitError:
                    pass
            time.sleep(2)
        tail = self.serial_log(12)
        raise KitError(f"board {self.name} did not answer SSH within {timeout:.0f} s"
                       + (f"; serial log:\n{tail}" if tail else ""))

    def up(self, fresh: bool = False, log=print) -> None:
        if self.is_up():
            log(f"board {self.name} is up ({self.profile.ssh.host})")
            return
        if not self.hooks.get("power_on"):
            raise KitError(f"board {self.name} is not reachable at {self.profile.ssh.host}:"
                           f"{self.profile.ssh.port} and its profile has no hooks.power_on command; "
                           "power it on by hand")
        self._hook("power_on")
        log(f"board {self.name} up: SSH after {self.wait_ssh()} s")

    def down(self, log=print) -> bool:
        if self.hooks.get("power_off"):
            if self.is_up():  # a clean shutdown first, then the power
                try:
                    with self.connect(10) as c:
                        c.run(["sh", "-c", "sync; systemctl poweroff --no-block || poweroff"],
                              timeout=15, check=False)
                    time.sleep(10)
                except KitError:
                    pass
            self._hook("power_off")
            log(f"board {self.name} powered off")
            return True
        raise KitError(f"board {self.name} is a real board and its profile has no hooks.power_off "
                       "command; power it off yourself")

    def reset(self, log=print) -> None:
        """Hard reset through hooks.reset (after a driver oops); else reboot over SSH."""
        if self.hooks.get("reset"):
            self._hook("reset")
        else:
            with self.connect(10) as c:
                c.sh("(sleep 1; reboot) >/dev/null 2>&1 &", timeout=15, check=False)
            time.sleep(5)
        log(f"board {self.name} reset: SSH after {self.wait_ssh()} s")

    def serial_log(self, lines: int = 40) -> str | None:
        if not self.hooks.get("serial_log"):
            return None
        try:
            out = self._hook("serial_log", timeout=30) or ""
        except (KitError, subprocess.TimeoutExpired):
            return None
        return "\n".join(out.splitlines()[-lines:])


def dmesg_tail(conn, lines: int = 15) -> str:
    """The board kernel's last log lines (why a module did not load)."""
    res = conn.sh(f"dmesg 2>&1 | tail -n {int(lines)}", timeout=30, check=False)
    return res.stdout.strip()


def quote(*argv) -> str:
    return shlex.join(str(a) for a in argv)
