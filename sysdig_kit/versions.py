"""The sysdig/driver pairs the kit knows, as data: sysdig_kit/data/versions.yaml.

Profiles (sysdig.pair), the build, the readers (which event table a capture needs, how a
sysdig version prints text), `check` and the patch tests all ask here, so adding a version is a
row in that file plus its event table (tools/gen_event_table.py) in event_tables/ next to it.
$SYSDIG_KIT_VERSIONS names another registry file (its tables next to it), e.g. to try a version
the installed kit does not ship yet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import yaml

from .errors import KitError
from .paths import package_data

ERAS = ("enter-exit", "exit-only")
_PAIR_KEYS = {"sysdig", "driver", "event_table", "era", "debian_release", "dkms", "text",
              "patch_sets"}


@dataclass(frozen=True)
class PatchSet:
    name: str
    event_table: str  # the table the patched driver's events follow
    module_version: str  # what the patched scap.ko reports (modinfo -F version)
    appends: dict  # event code -> names of the parameters the set appends
    earlier: tuple = ()  # PatchSet of each older revision, oldest first (captures of them exist)


@dataclass(frozen=True)
class Pair:
    name: str
    sysdig: str
    driver: str
    event_table: str
    era: str  # enter-exit | exit-only
    debian_release: str
    dkms: dict = field(default_factory=dict)  # package, version, sha256 of the driver source
    text: dict = field(default_factory=dict)  # trailing_space, rawres_params
    patch_sets: dict = field(default_factory=dict)  # name -> PatchSet

    @property
    def series(self) -> str:
        """sysdig's major.minor ("0.41"): how the text and JSON readers name its output style."""
        return ".".join(self.sysdig.split(".")[:2])

    def tables(self) -> list[str]:
        """The stock table, then each patch set's."""
        return [self.event_table, *(t for s in self.patch_sets.values()
                                    for t in (*(e.event_table for e in s.earlier), s.event_table))]


@dataclass(frozen=True)
class Registry:
    path: Path
    pairs: tuple  # Pair, oldest first
    default: str

    @property
    def tables_dir(self) -> Path:
        return self.path.parent / "event_tables"


def registry_path() -> Path:
    env = os.environ.get("SYSDIG_KIT_VERSIONS")
    return Path(env) if env else _packaged()


@cache
def _packaged() -> Path:
    # (asked for every event table a reader loads: importlib.resources once, not each time)
    return package_data("data", "versions.yaml")


def registry() -> Registry:
    p = registry_path()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        raise KitError(f"no version registry {p}") from None
    return _load(str(p), mtime)


@cache
def _load(path: str, _mtime: int) -> Registry:
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text()) or {}
    except yaml.YAMLError as exc:
        raise KitError(f"{p}: not valid YAML: {exc}".splitlines()[0]) from None
    raw = data.get("pairs") if isinstance(data, dict) else None
    if not isinstance(raw, dict) or not raw:
        raise KitError(f"{p}: needs a 'pairs' mapping of pair name -> versions")
    pairs = tuple(_pair(p, str(name), row) for name, row in raw.items())
    default = str(data.get("default", pairs[-1].name))
    if default not in {x.name for x in pairs}:
        raise KitError(f"{p}: default {default!r} is not one of the pairs")
    return Registry(p, pairs, default)


def _pair(p: Path, name: str, row) -> Pair:
    where = f"{p}: pair {name!r}"
    if not isinstance(row, dict):
        raise KitError(f"{where}: a mapping of keys to values")
    unknown = sorted(set(row) - _PAIR_KEYS)
    missing = sorted({"sysdig", "driver", "event_table", "era", "debian_release"} - set(row))
    if unknown or missing:
        raise KitError(f"{where}: " + "; ".join(filter(None, [
            unknown and f"unknown key(s) {', '.join(unknown)}",
            missing and f"missing key(s) {', '.join(missing)}"])))
    if row["era"] not in ERAS:
        raise KitError(f"{where}: era must be one of {', '.join(ERAS)}")
    sets = {}
    for sname, s in (row.get("patch_sets") or {}).items():
        if not isinstance(s, dict) or "event_table" not in s:
            raise KitError(f"{where}: patch set {sname!r} needs an event_table")
        earlier = []
        for e in s.get("earlier") or []:
            if not isinstance(e, dict) or "event_table" not in e:
                raise KitError(f"{where}: patch set {sname!r}: each earlier revision needs an "
                               "event_table")
            earlier.append(_patch_set(str(sname), e))
        sets[str(sname)] = _patch_set(str(sname), s, tuple(earlier))
    return Pair(name=name, **{k: str(row[k]) for k in ("sysdig", "driver", "event_table", "era",
                                                        "debian_release")},
                dkms=dict(row.get("dkms") or {}), text=dict(row.get("text") or {}),
                patch_sets=sets)


def _patch_set(name: str, s: dict, earlier: tuple = ()) -> PatchSet:
    return PatchSet(name, str(s["event_table"]), str(s.get("module_version", "")),
                    {int(k): tuple(v) for k, v in (s.get("appends") or {}).items()}, earlier)


def pairs() -> tuple:
    """Every known pair, oldest first."""
    return registry().pairs


def pair(name: str) -> Pair:
    for x in pairs():
        if x.name == str(name):
            return x
    raise KitError(f"unknown sysdig/driver pair {name!r}; known: "
                   f"{', '.join(x.name for x in pairs())} ({registry_path()})")


def default() -> Pair:
    return pair(registry().default)


def tables() -> list[str]:
    """Every registered event table, in registry order (each pair's stock table, then its
    patched ones): the candidates a capture's table is chosen from."""
    return [t for x in pairs() for t in x.tables()]


def owner(table: str) -> tuple[Pair, PatchSet | None] | None:
    """The pair (and patch set, for a patched table) an event table belongs to."""
    for x in pairs():
        if table == x.event_table:
            return x, None
        for s in x.patch_sets.values():
            for r in (*s.earlier, s):
                if table == r.event_table:
                    return x, r
    return None


def by_series(series: str | None) -> Pair | None:
    """The newest pair whose sysdig is `series` ("0.29", "0.41"), if any."""
    return next((x for x in reversed(pairs()) if x.series == series), None)
