"""The emulated board's disk image: a Debian arm64 root built once with mmdebstrap, then cached.

The slow part of the emulated board. mmdebstrap runs the arm64 maintainer scripts under
qemu-user (binfmt_misc), so everything that runs there is kept small: no docs, and an initramfs
holding only the handful of modules the `virt` machine needs to reach its root disk (packing
every module under emulation costs ~20 minutes). The cache directory is named after a hash of
every input, so a changed recipe builds a new image instead of reusing a stale one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import KitError
from ..paths import cache_dir

RECIPE_VERSION = 1  # bump when the recipe below changes in a way the hash cannot see

PACKAGES = [
    "systemd-sysv", "udev", "kmod", "iproute2", "openssh-server", "zsh", "procps",
    "initramfs-tools", "linux-image-arm64", "ca-certificates",
    # `sysdig-kit replay` runs on the board (ptrace through ctypes: the stdlib only).
    "python3",
]
# What the `virt` machine needs before the root disk is mounted; all are modules in Debian.
INITRAMFS_MODULES = ["virtio_mmio", "virtio_pci", "virtio_blk", "virtio_net", "virtio_console",
                     "ext4"]

# Skip documentation and translations: less to unpack under emulation, a smaller image.
DPKG_OPTS = [f"path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")] + [
    "path-include=/usr/share/locale/locale.alias"]

NETWORK = "[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n"
FSTAB = "/dev/vda / ext4 rw,errors=remount-ro 0 1\n"


@dataclass(frozen=True)
class Image:
    dir: Path
    disk: Path  # raw ext4 root filesystem (the whole disk, no partition table)
    kernel: Path
    initrd: Path
    kernel_release: str  # `uname -r` on the booted board
    key: Path  # private SSH key authorised for root on the board


def board_dir(board: str) -> Path:
    return cache_dir("board", board)


def mirror() -> str:
    """The Debian mirror apt uses on this machine ($DEBIAN_MIRROR wins)."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    srcs = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for f in srcs:
        text = f.read_text(errors="replace") if f.is_file() else ""
        for url in re.findall(r"https?://\S+", text):
            if re.search(r"/debian/?$", url):
                return url.rstrip("/")
    return "http://deb.debian.org/debian"


def ssh_key(board: str) -> Path:
    """The board's own OpenSSH key pair (ed25519), made once; its public half goes in the image."""
    key = board_dir(board) / "id_ed25519"
    if not key.exists():
        tmp = key.with_suffix(".tmp")
        for p in (tmp, tmp.with_suffix(".tmp.pub")):
            p.unlink(missing_ok=True)
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"sysdig-kit@{board}",
                        "-f", str(tmp)], check=True)
        tmp.with_suffix(".tmp.pub").rename(key.with_suffix(".pub"))
        tmp.rename(key)
    return key


def recipe(settings: dict, pubkey: str) -> dict:
    """Every input of the image; its hash names the cache directory."""
    return {
        "version": RECIPE_VERSION,
        "release": settings.get("debian_release", "sid"),
        "mirror": settings.get("mirror") or mirror(),
        "packages": sorted(set(PACKAGES + list(settings.get("packages", [])))),
        "initramfs_modules": INITRAMFS_MODULES,
        "dpkg_opts": DPKG_OPTS,
        "disk_size": settings.get("disk_size", "3G"),
        "network": NETWORK,
        "pubkey": pubkey,
    }


def _customize_hooks(r: dict) -> list[str]:
    """Shell run by mmdebstrap on the host with $1 = the new root; values are ours, not a user's."""
    return [
        'echo board > "$1/etc/hostname"',
        f"printf '%s' '{FSTAB}' > \"$1/etc/fstab\"",
        'mkdir -p "$1/etc/systemd/network"',
        f"printf '{NETWORK}' > \"$1/etc/systemd/network/10-eth0.network\"",
        'chroot "$1" systemctl enable systemd-networkd',
        'install -d -m 700 "$1/root/.ssh"',
        f"printf '%s\\n' '{r['pubkey']}' > \"$1/root/.ssh/authorized_keys\"",
        'chmod 600 "$1/root/.ssh/authorized_keys"',
        # No password for root at the console either, so the serial log shows a usable shell.
        'chroot "$1" passwd -d root',
    ]


def _essential_hooks() -> list[str]:
    mods = "\\n".join(INITRAMFS_MODULES)
    return [
        'mkdir -p "$1/etc/initramfs-tools/conf.d" "$1/usr/share/initramfs-tools/modules.d"',
        'echo MODULES=list > "$1/etc/initramfs-tools/conf.d/sysdig-kit"',
        f"printf '{mods}\\n' > \"$1/usr/share/initramfs-tools/modules.d/sysdig-kit\"",
    ]


def _lookup(d: Path, key: Path) -> Image | None:
    info = d / "image.json"
    if not info.is_file():
        return None
    meta = json.loads(info.read_text())
    return Image(d, d / "rootfs.img", d / "vmlinuz", d / "initrd.img", meta["kernel_release"], key)


@contextlib.contextmanager
def _lock(path: Path):
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield


def ensure(board: str = "qemu-arm64", settings: dict | None = None, log=print) -> Image:
    """The cached image for these settings, built first if missing (minutes, cold)."""
    settings = settings or {}
    key = ssh_key(board)
    r = recipe(settings, key.with_suffix(".pub").read_text().strip())
    digest = hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()[:16]
    d = board_dir(board) / f"image-{digest}"
    if img := _lookup(d, key):
        return img
    with _lock(board_dir(board) / ".image.lock"):
        if img := _lookup(d, key):  # built by another process while we waited
            return img
        _build(r, d, log)
    return _lookup(d, key)


def _need(tool: str, package: str) -> None:
    if not shutil.which(tool):
        raise KitError(f"{tool} not found; install the Debian package {package}")


def _build(r: dict, d: Path, log) -> None:
    _need("mmdebstrap", "mmdebstrap")
    _need("mkfs.ext4", "e2fsprogs")
    if not Path("/proc/sys/fs/binfmt_misc/qemu-aarch64").exists():
        raise KitError("arm64 binaries cannot run here: install qemu-user-static binfmt-support and "
                       "mount binfmt_misc (tests/setup/40-board.sh does both)")
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    root = tmp / "root"
    tmp.mkdir(parents=True)
    cmd = ["mmdebstrap", "--arch=arm64", "--variant=minbase", "--mode=root",
           "--include=" + ",".join(r["packages"]),
           "--aptopt=Acquire::Check-Valid-Until \"false\"",
           *(f"--dpkgopt={o}" for o in r["dpkg_opts"]),
           *(f"--essential-hook={h}" for h in _essential_hooks()),
           *(f"--customize-hook={h}" for h in _customize_hooks(r)),
           r["release"], str(root), r["mirror"]]
    t0 = time.monotonic()
    log(f"building the {r['release']} arm64 board image (mmdebstrap under qemu-user, minutes)")
    with open(tmp / "mmdebstrap.log", "w") as out:
        rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT,
                            check=False).returncode
    if rc:
        tail = (tmp / "mmdebstrap.log").read_text(errors="replace").splitlines()[-15:]
        raise KitError(f"mmdebstrap failed (rc {rc}); log: {tmp / 'mmdebstrap.log'}\n"
                       + "\n".join(tail))
    t1 = time.monotonic()
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise KitError(f"no kernel in the new root {root}/boot")
    rel = kernels[-1].name.removeprefix("vmlinuz-")
    shutil.copy(kernels[-1], tmp / "vmlinuz")
    shutil.copy(root / "boot" / f"initrd.img-{rel}", tmp / "initrd.img")
    disk = tmp / "rootfs.img"
    subprocess.run(["truncate", "-s", r["disk_size"], str(disk)], check=True)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(disk)], check=True)
    shutil.rmtree(root)
    meta = {"kernel_release": rel, "recipe": r, "build_seconds": round(time.monotonic() - t0, 1),
            "mmdebstrap_seconds": round(t1 - t0, 1), "built_at": time.strftime("%FT%TZ", time.gmtime())}
    (tmp / "image.json").write_text(json.dumps(meta, indent=2) + "\n")
    tmp.rename(d)
    log(f"board image ready in {meta['build_seconds']} s: kernel {rel}, {d}")


def host_key(img: Image) -> str:
    """The board's SSH host key ("ssh-ed25519 AAAA..."), read once out of the disk image."""
    saved = img.dir / "ssh_host_ed25519_key.pub"
    if not saved.is_file():
        out = subprocess.run(["debugfs", "-R", "cat /etc/ssh/ssh_host_ed25519_key.pub", str(img.disk)],
                             capture_output=True, text=True, check=True).stdout.split()
        if len(out) < 2 or out[0] != "ssh-ed25519":
            raise KitError(f"no SSH host key in the board image {img.disk}")
        saved.write_text(" ".join(out[:2]) + "\n")
    return saved.read_text().strip()
