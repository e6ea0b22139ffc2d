"""Board profiles: one YAML file per board under deploy/boards/, loaded and validated here.

A profile is everything that differs between boards: the Juno and the emulated arm64 board
are driven by the same tasks and differ only in their profile files.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from .errors import KitError

BOARDS_DIR = Path(__file__).resolve().parent.parent / "deploy" / "boards"


@dataclass(frozen=True)
class Ssh:
    host: str
    port: int = 22
    user: str = "root"
    key: str | None = None  # path to the private key; None: the user's agent/defaults


@dataclass(frozen=True)
class Profile:
    name: str
    arch: str  # "arm64"
    cross_prefix: str  # "aarch64-linux-gnu-"
    ssh: Ssh
    kernel: dict = field(default_factory=dict)  # how to get the kernel tree to build against
    sysdig: dict = field(default_factory=dict)  # which sysdig/driver pair and provider
    install: dict = field(default_factory=dict)  # paths on the board
    emulator: dict | None = None  # only the emulated board has one
    source_file: Path | None = None


def _check_keys(data: dict, cls, where: str) -> None:
    allowed = {f.name for f in fields(cls)} - {"source_file"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise KitError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def load(name_or_path: str | Path) -> Profile:
    """Load a board profile by name (deploy/boards/NAME.yaml) or path."""
    p = Path(name_or_path)
    if not p.suffix:
        p = BOARDS_DIR / f"{name_or_path}.yaml"
    if not p.is_file():
        known = ", ".join(sorted(x.stem for x in BOARDS_DIR.glob("*.yaml")))
        raise KitError(f"no board profile {name_or_path!r} ({p}); known boards: {known}")
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise KitError(f"{p}: not valid YAML: {exc}".splitlines()[0]) from None
    if not isinstance(data, dict):
        raise KitError(f"{p}: a board profile is a mapping of keys to values")
    data.setdefault("name", p.stem)
    _check_keys(data, Profile, str(p))
    ssh = data.get("ssh") or {}
    if not isinstance(ssh, dict) or "host" not in ssh:
        raise KitError(f"{p}: 'ssh' needs at least 'host'")
    _check_keys(ssh, Ssh, f"{p}: ssh")
    for key in ("arch", "cross_prefix"):
        if key not in data:
            raise KitError(f"{p}: missing required key {key!r}")
    return Profile(**{**data, "ssh": Ssh(**ssh), "source_file": p})


def names() -> list[str]:
    return sorted(x.stem for x in BOARDS_DIR.glob("*.yaml"))
