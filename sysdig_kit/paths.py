"""Where heavy, reusable outputs live: outside the repository, shared by runs and by CI."""

from __future__ import annotations

import os
from importlib import resources
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


def package_data(*parts: str) -> Path:
    """A folder or file shipped inside the package (board profiles, Dockerfile templates, patch
    sets, generated tables): found through importlib.resources so a wheel install has them too."""
    node = resources.files("sysdig_kit")
    for part in parts:
        node = node / part
    return Path(str(node))


def user_boards_dir() -> Path:
    """One's own board profiles: $SYSDIG_KIT_BOARDS, else $XDG_CONFIG_HOME/sysdig-kit/boards
    (~/.config/sysdig-kit/boards). Searched before the packaged ones; not created."""
    env = os.environ.get("SYSDIG_KIT_BOARDS")
    if env:
        return Path(env).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config, "sysdig-kit", "boards")


# Where outputs go unless told, for the CLI and the Fabric tasks alike: out/ of the current folder.
OUT = "out"
DEFAULT_CAPTURE = f"{OUT}/capture.scap"
