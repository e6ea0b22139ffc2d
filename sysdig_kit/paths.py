"""Where heavy, reusable outputs live: outside the repository, shared by runs and by CI."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$SYSDIG_KIT_CACHE, else /var/cache/sysdig-kit for root (what tests/run.sh and CI use, so
    `fab board-up` by hand finds the image the tests built), else ~/.cache/sysdig-kit."""
    default = "/var/cache/sysdig-kit" if os.geteuid() == 0 else Path.home() / ".cache" / "sysdig-kit"
    root = os.environ.get("SYSDIG_KIT_CACHE") or default
    p = Path(root, *parts)
    p.mkdir(parents=True, exist_ok=True)
    return p


def bundle_dir(board: str, kernel_release: str) -> Path:
    """The artifact bundle of one board and kernel release (scap.ko, sysdig/, manifest.json)."""
    return cache_dir("bundles", board, kernel_release)
