"""The emulated arm64 board: cached image, boot to SSH with key auth, a Cortex-A57, clean power-off.

Needs the board image (built by tests/setup/40-board.sh, ~11-15 min cold). Runtime: ~2-2.5 min
(one boot under TCG + power-off); the cache test alone is under a second.
"""

import subprocess
import time

import pytest

from sysdig_kit import board, profiles
from sysdig_kit.emulator import boot, image
from sysdig_kit.errors import KitError

pytestmark = pytest.mark.board


@pytest.fixture(scope="module")
def prof():
    return profiles.load("qemu-arm64")


def img_key(prof) -> str:
    return image.ensure(prof.name, prof.emulator).key.with_suffix(".pub").read_text()


def test_image_is_cached_and_keyed(prof):
    t0 = time.monotonic()
    img = image.ensure(prof.name, prof.emulator)
    assert time.monotonic() - t0 < 5  # warm: no rebuild
    for f in (img.disk, img.kernel, img.initrd, img.key):
        assert f.is_file() and f.stat().st_size > 0
    assert img.kernel_release.endswith("-arm64")
    assert img.initrd.stat().st_size < 40e6  # the small MODULES=list initramfs
    assert image.host_key(img).startswith("ssh-ed25519 ")
    # The cache key follows the recipe: another package list is another image directory.
    pub = img.key.with_suffix(".pub").read_text().strip()
    base = image.recipe(prof.emulator, pub)
    other = image.recipe({**prof.emulator, "packages": ["strace"]}, pub)
    assert base != other and image.recipe(prof.emulator, pub) == base


def test_qemu_command(prof):
    img = image.ensure(prof.name, prof.emulator)
    cmd = boot.qemu_command(prof, img, img.disk, img.dir / "s.log", img.dir / "q.pid")
    assert cmd[:5] == ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a57"]
    assert f"hostfwd=tcp:127.0.0.1:{prof.ssh.port}-:22" in " ".join(cmd)  # loopback only


def test_boot_ssh_poweroff(prof):
    plat = board.platform(prof)
    assert plat.kind == "qemu"
    was_up = boot.running(prof)
    try:
        r = plat.up()
        if not was_up:
            assert r.boot_seconds is not None and r.boot_seconds < 420
            print(f"\nboot to SSH: {r.boot_seconds} s")
        assert boot.running(prof)["pid"] == r.pid
        assert plat.up().boot_seconds is None  # already up: nothing done
        with plat.connect() as c:
            script = "uname -m; uname -r; grep -m1 'CPU part' /proc/cpuinfo; command -v zsh; id -un"
            out = c.run(["sh", "-c", script]).stdout.split("\n")
        assert out[0] == "aarch64"
        assert out[1] == r.kernel_release
        assert out[2].split(":")[1].strip() == "0xd07"  # Cortex-A57
        assert out[3].endswith("/zsh") and out[4] == "root"
        # Key auth only, and a strictly checked host key: a wrong host key is refused.
        kh = boot.known_hosts(prof)
        good = kh.read_text()
        try:
            other = " ".join(img_key(prof).split()[:2])  # a valid key, but not the board's
            kh.write_text(good.split(" ssh-ed25519 ")[0] + " " + other + "\n")
            with pytest.raises(KitError, match="(?i)host key"):
                plat.connect()
        finally:
            kh.write_text(good)
    finally:
        if not was_up:
            t0 = time.monotonic()
            assert plat.down(log=lambda *_: None)
            print(f"power-off: {time.monotonic() - t0:.1f} s")
    if not was_up:
        assert boot.running(prof) is None
        left = subprocess.run(["pgrep", "-f", f"hostfwd=tcp:127.0.0.1:{prof.ssh.port}-"],
                              capture_output=True, text=True, check=False).stdout
        assert not left.strip()
