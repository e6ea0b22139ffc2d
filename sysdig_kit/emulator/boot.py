"""Power the emulated board on and off: qemu-system-aarch64 `virt` with a Cortex-A57 (the Juno's
big core), SSH forwarded to a fixed loopback port.

The cached image stays pristine; the board writes to its own qcow2 overlay, which survives
board-down/board-up like a real board's disk (so a deployed sysdig is still there after a
reboot) and is made anew when the image changes or on `fresh=True`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import KitError
from . import image as _image

DEFAULTS = {"machine": "virt", "cpu": "cortex-a57", "smp": 2, "memory_mb": 2048, "boot_timeout": 420}


@dataclass(frozen=True)
class Running:
    pid: int
    port: int
    boot_seconds: float | None  # None: it was already up
    kernel_release: str
    serial_log: Path


def settings(profile) -> dict:
    return {**DEFAULTS, **(profile.emulator or {})}


def _state(board: str) -> Path:
    return _image.board_dir(board) / "qemu.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie or a recycled pid is not our board: check it is still QEMU.
    try:
        return "qemu-system" in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return False


def running(profile) -> dict | None:
    """The state of the board's QEMU if it is up, else None (stale state is cleared)."""
    st = _state(profile.name)
    if not st.is_file():
        return None
    info = json.loads(st.read_text())
    if _alive(info["pid"]):
        return info
    st.unlink(missing_ok=True)
    return None


def known_hosts(profile) -> Path:
    """known_hosts for the loopback board, kept in the cache (never ~/.ssh): rewritten per boot
    from the host key baked into the image, so a rebuilt board never trips a stale entry."""
    return _image.board_dir(profile.name) / "known_hosts"


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _overlay(board: str, img: _image.Image, fresh: bool) -> Path:
    ov = _image.board_dir(board) / "disk.qcow2"
    mark = ov.with_suffix(".base")
    if fresh or not ov.exists() or not mark.exists() or mark.read_text() != str(img.disk):
        ov.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(img.disk), "-F", "raw",
                        str(ov)], check=True)
        mark.write_text(str(img.disk))
    return ov


def qemu_command(profile, img: _image.Image, disk: Path, serial: Path, pidfile: Path) -> list[str]:
    s = settings(profile)
    port = int(profile.ssh.port)
    return [
        "qemu-system-aarch64", "-M", str(s["machine"]), "-cpu", str(s["cpu"]), "-smp", str(s["smp"]),
        "-m", str(s["memory_mb"]), "-display", "none", "-monitor", "none",
        "-kernel", str(img.kernel), "-initrd", str(img.initrd),
        # net.ifnames=0 keeps the NIC named eth0, which the image's networkd config expects.
        "-append", "root=/dev/vda rw console=ttyAMA0 net.ifnames=0",
        "-drive", f"file={disk},if=virtio,format=qcow2",
        "-nic", f"user,model=virtio-net-pci,hostfwd=tcp:127.0.0.1:{port}-:22",
        "-serial", f"file:{serial}", "-daemonize", "-pidfile", str(pidfile),
    ]


def up(profile, fresh: bool = False, log=print, ready=None) -> Running:
    """Boot the board (building its image first if needed) and wait until SSH answers:
    sshd's banner, then `ready()` (a command over SSH: sysdig_kit.board.qemu gives it) is true.
    Two callers at once (a test and a playbook) get one board: the second waits for the first."""
    img = _image.ensure(profile.name, profile.emulator or {}, log=log)
    with _image._lock(_image.board_dir(profile.name) / ".boot.lock"):
        return _up(profile, img, fresh, log, ready or (lambda: True))


def _up(profile, img: _image.Image, fresh: bool, log, ready) -> Running:
    info = running(profile)
    if info:
        return Running(info["pid"], info["port"], None, info["kernel_release"], Path(info["serial"]))
    d = _image.board_dir(profile.name)
    port = int(profile.ssh.port)
    if not _port_free(port):
        raise KitError(f"127.0.0.1:{port} is taken by another program; the {profile.name} board "
                       "needs it for SSH (change ssh.port in its profile)")
    known_hosts(profile).write_text(f"[127.0.0.1]:{port} {_image.host_key(img)}\n")
    serial, pidfile = d / "serial.log", d / "qemu.pid"
    pidfile.unlink(missing_ok=True)
    disk = _overlay(profile.name, img, fresh)
    t0 = time.monotonic()
    res = subprocess.run(qemu_command(profile, img, disk, serial, pidfile), capture_output=True,
                         text=True, check=False)
    if res.returncode:
        raise KitError(f"qemu-system-aarch64 failed: {res.stderr.strip().splitlines()[-1:]}")
    pid = int(pidfile.read_text())
    state = {"pid": pid, "port": port, "kernel_release": img.kernel_release, "serial": str(serial),
             "image": str(img.dir), "started": time.time()}
    _state(profile.name).write_text(json.dumps(state))
    timeout = float(settings(profile)["boot_timeout"])
    try:
        _wait_ssh(profile, pid, t0 + timeout, serial, ready)
    except BaseException:
        down(profile, log=lambda *_: None)
        raise
    took = round(time.monotonic() - t0, 1)
    log(f"board {profile.name} up: SSH on 127.0.0.1:{port} after {took} s (kernel {img.kernel_release})")
    return Running(pid, port, took, img.kernel_release, serial)


def _wait_ssh(profile, pid: int, deadline: float, serial: Path, ready) -> None:
    while time.monotonic() < deadline:
        if not _alive(pid):
            raise KitError(f"the board's QEMU exited while booting; serial log {serial}:\n"
                           + _tail(serial))
        if not _banner(int(profile.ssh.port)):
            time.sleep(2)
            continue
        if ready():
            return
        time.sleep(2)
    raise KitError(f"the board did not answer SSH within the boot timeout; serial log {serial}:\n"
                   + _tail(serial))


def _banner(port: int) -> bool:
    """sshd's banner is there. QEMU accepts on the forwarded port long before the guest
    listens, so a bare TCP connect proves nothing (and paramiko would log a traceback)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.settimeout(5)
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _tail(p: Path, n: int = 12) -> str:
    try:
        return "\n".join(p.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no serial log)"


def down(profile, timeout: float = 60, log=print, poweroff=None) -> bool:
    """Power off cleanly (`poweroff()`: a poweroff over SSH, given by sysdig_kit.board.qemu),
    else SIGTERM then SIGKILL. False if it was not up."""
    info = running(profile)
    if not info:
        return False
    pid = info["pid"]
    t0 = time.monotonic()
    if poweroff is not None:
        poweroff()  # best effort: an unreachable guest falls through to signals
    for sig, wait in ((None, timeout), (signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        if sig is not None and _alive(pid):
            os.kill(pid, sig)
        end = time.monotonic() + wait
        while _alive(pid) and time.monotonic() < end:
            time.sleep(0.5)
        if not _alive(pid):
            break
    _state(profile.name).unlink(missing_ok=True)
    log(f"board {profile.name} down after {round(time.monotonic() - t0, 1)} s")
    return True
