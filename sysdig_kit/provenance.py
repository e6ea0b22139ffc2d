"""What produced a result: the columns every experiment result row and every dataset row
carries (kernel release, sysdig and driver versions, patch set, board, kit version and git
revision), from a capture's manifest or a board's answer to capture.versions()."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

COLUMNS = ["board", "kernel_release", "sysdig_version", "driver_version", "patch_set",
           "kit_version", "kit_git_rev"]


@cache
def kit() -> dict:
    """This kit's version and, when it runs from a git checkout, the commit (`+dirty` when the
    tree has changes); None outside a checkout (an installed wheel)."""
    from . import __version__

    root = Path(__file__).resolve().parent.parent
    rev = None
    if (root / ".git").exists():
        try:
            out = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty=+dirty",
                                  "--abbrev=12", "--match=NO-TAGS"], capture_output=True,
                                 text=True, timeout=20, check=False)
            rev = out.stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            rev = None
    return {"kit_version": __version__, "kit_git_rev": rev}


def patch_set(driver: str | None) -> str | None:
    """The patch set a driver version names: the kit's builds append `+NAME.N` (e.g.
    `0.23.2+replay-complete.1`); a stock driver is "none"; unknown driver: None."""
    if not driver:
        return None
    return driver.split("+", 1)[1] if "+" in driver else "none"


def _sysdig(v: str | None) -> str | None:
    # `sysdig --version` prints "sysdig version 0.41.4+repack"
    return v.split()[-1] if v else None


def from_versions(versions: dict | None, board: str | None) -> dict:
    """The provenance columns from capture.versions() (or a manifest's "versions")."""
    v = versions or {}
    return {"board": board, "kernel_release": v.get("kernel") or None,
            "sysdig_version": _sysdig(v.get("sysdig")), "driver_version": v.get("driver"),
            "patch_set": patch_set(v.get("driver")), **kit()}


def from_manifest(manifest: dict | None) -> dict:
    """The provenance columns of a capture from its manifest (capture.py); the kit columns are
    the manifest's own when it has them (the kit that captured), else this kit's."""
    m = manifest or {}
    out = from_versions(m.get("versions"), m.get("board"))
    if m.get("kit"):
        out.update({k: m["kit"].get(k) for k in ("kit_version", "kit_git_rev")})
    return out
