"""Board profiles: one YAML file per board, loaded and validated here.

Searched by name in one's own folder first ($SYSDIG_KIT_BOARDS, else ~/.config/sysdig-kit/boards),
then in the profiles shipped inside the package (sysdig_kit/boards/), so a wheel has them too.

A profile is everything that differs between boards: the Juno and the emulated arm64 board
are driven by the same tasks and differ only in their profile files.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from . import versions
from .errors import KitError
from .paths import cache_dir, package_data, user_boards_dir

BOARDS_DIR = package_data("boards")

USERSPACE_PROVIDERS = ("debian", "source")
KERNEL_SOURCES = ("debian-headers", "tree", "git", "board")
# A real board's optional hooks: commands run on this machine (sysdig_kit/board/platforms.py).
HOOK_KEYS = {"power_on", "power_off", "reset", "serial_log", "boot_timeout"}


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
    hooks: dict | None = None  # a real board's power/reset/serial-log commands (board/platforms.py)
    source_file: Path | None = None


def _check_keys(data: dict, cls, where: str) -> None:
    allowed = {f.name for f in fields(cls)} - {"source_file"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise KitError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def load(name_or_path: str | Path) -> Profile:
    """Load a board profile by name (NAME.yaml in search_dirs(), first found) or path."""
    p = Path(name_or_path)
    if not p.suffix:
        p = find(str(name_or_path))
        if p is None:
            where = " then ".join(str(d) for d in search_dirs())
            raise KitError(f"no board profile {name_or_path!r} (looked in {where}); "
                           f"known boards: {', '.join(names()) or '(none)'}")
    if not p.is_file():
        raise KitError(f"no board profile file {p}; known boards: {', '.join(names()) or '(none)'}")
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
    if ssh.get("key"):
        # $SYSDIG_KIT_CACHE names the kit's cache even when the variable is unset.
        key = str(ssh["key"]).replace("$SYSDIG_KIT_CACHE", str(cache_dir()))
        ssh = {**ssh, "key": os.path.expanduser(os.path.expandvars(key))}
    _check_build_keys(data, p)
    hooks = data.get("hooks")
    if hooks is not None and (not isinstance(hooks, dict) or set(hooks) - HOOK_KEYS):
        raise KitError(f"{p}: hooks is a mapping of {', '.join(sorted(HOOK_KEYS))} "
                       "(commands run on this machine)")
    return Profile(**{**data, "ssh": Ssh(**ssh), "source_file": p})


def _check_build_keys(data: dict, p: Path) -> None:
    sd = data["sysdig"] = data.get("sysdig") or {}
    # the consistent userspace/driver pairs (driver API/schema must match the userspace)
    known = [x.name for x in versions.pairs()]
    pair = sd["pair"] = str(sd.get("pair", versions.default().name))  # YAML: `pair: 2022` is a number
    if pair not in known:
        raise KitError(f"{p}: sysdig.pair {pair!r} unknown; known: {', '.join(known)} "
                       f"({versions.registry_path()})")
    sd.setdefault("debian_release", versions.pair(pair).debian_release)
    dp = sd.setdefault("driver_patches", "default")  # build/driver.py: DEFAULT_SETS
    if dp is None:
        sd["driver_patches"] = []
    elif dp != "default" and not (isinstance(dp, list) and all(isinstance(x, str) for x in dp)):
        raise KitError(f"{p}: sysdig.driver_patches must be `default` or a list of patch set "
                       f"names (`[]`: the stock driver), not {dp!r}")
    if sd.setdefault("userspace", "debian") not in USERSPACE_PROVIDERS:
        raise KitError(f"{p}: sysdig.userspace must be one of {', '.join(USERSPACE_PROVIDERS)}")
    k = data["kernel"] = data.get("kernel") or {}
    if k.setdefault("source", "debian-headers") not in KERNEL_SOURCES:
        raise KitError(f"{p}: kernel.source must be one of {', '.join(KERNEL_SOURCES)}")


def search_dirs() -> list[Path]:
    """Where profiles are looked up by name: one's own folder, then the packaged ones."""
    return [user_boards_dir(), BOARDS_DIR]


def find(name: str) -> Path | None:
    return next((f for d in search_dirs() if (f := d / f"{name}.yaml").is_file()), None)


def pair(profile: Profile) -> dict:
    """The sysdig/driver pair of a profile: debian_release, sysdig and driver versions."""
    x = versions.pair(profile.sysdig["pair"])
    return {"debian_release": profile.sysdig["debian_release"], "sysdig": x.sysdig, "driver": x.driver}


def _reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def default_board() -> str:
    """$SYSDIG_KIT_BOARD; else `juno` when its profile has a host that answers on its SSH port;
    else the emulated `qemu-arm64`."""
    env = os.environ.get("SYSDIG_KIT_BOARD")
    if env:
        return env
    if find("juno"):
        juno = load("juno")
        if juno.ssh.host and _reachable(juno.ssh.host, juno.ssh.port):
            return "juno"
    return "qemu-arm64"


def names() -> list[str]:
    """Every board known by name (one's own folder and the packaged profiles)."""
    return sorted({x.stem for d in search_dirs() if d.is_dir() for x in d.glob("*.yaml")})
