"""Fixtures shared by the board-tier tests: the emulated arm64 board, up and with a bundle."""

import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _wait_ssh(plat, timeout: float = 600) -> None:
    from sysdig_kit.errors import KitError

    end = time.monotonic() + timeout
    while True:
        try:
            with plat.connect() as c:
                c.sh("true", timeout=30)
            return
        except KitError:  # any SSH failure while it boots: try again
            if time.monotonic() > end:
                raise
            time.sleep(5)


@pytest.fixture(scope="module")
def board():
    """(profile, kernel release) of the emulated board, booted (the tests ask for it) unless
    it was up, with its bundle built (cached); powered off afterwards, even on failure, if
    this fixture booted it."""
    from sysdig_kit import board as _board
    from sysdig_kit import paths, profiles

    prof = profiles.load("qemu-arm64")
    plat = _board.platform(prof)
    was_up = plat.is_up()
    try:
        r = plat.up()
        print(f"\nboot to SSH: {r.boot_seconds} s" if r.boot_seconds else "\nboard already up")
        _wait_ssh(plat)  # up() returns at once when another process is still booting it
        if not (paths.bundle_dir(prof.name, r.kernel_release) / "manifest.json").is_file():
            t0 = time.monotonic()
            subprocess.run(["fab", "build", "--board", prof.name], cwd=ROOT, check=True,
                           timeout=3000)
            print(f"build: {time.monotonic() - t0:.0f} s")
        yield prof, r.kernel_release
    finally:
        if not was_up:
            plat.down(log=print)
