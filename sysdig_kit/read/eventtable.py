"""The driver's event tables (data/event_tables/*.json, made by tools/gen_event_table.py).

One table per driver version (and per patch set), registered in data/versions.yaml. `EventTable` adds the lookup arrays the scap reader indexes with
numpy (per event code: name, direction, category, flags, parameter names and types).
"""

from __future__ import annotations

import json
from functools import cache

import numpy as np

from .. import versions
from ..errors import KitError

# The oldest registered table (sysdig 0.29's 2022 driver, enter/exit pairs) and the default
# pair's (libs 0.23.2, exit-only): names kept for the tests; the readers choose among every
# registered table (versions.tables()).
OLD = versions.pairs()[0].event_table
NEW = versions.default().event_table

EC_INTERNAL = 1 << 8
EC_SYSCALL = 1 << 9
EC_SYSCALL_MASK = EC_SYSCALL - 1  # libsinsp's get_category(): syscall category bits only
GENERIC_E, GENERIC_X = 0, 1  # the `syscall` events whose first parameter names the syscall


def available() -> list[str]:
    """The tables on disk next to the version registry."""
    return sorted(p.stem for p in versions.registry().tables_dir.glob("*.json"))


class EventTable:
    def __init__(self, name: str, raw: dict):
        self.name = name
        self.events = raw["events"]
        self.era = raw.get("era", "enter-exit")  # "exit-only": libs >= 0.22 semantics
        self.base = raw.get("base")  # a patched table: the stock table it appends to
        self.ppm_sc = {int(k): v for k, v in raw["ppm_sc"].items()}
        n = len(self.events)
        self.size = n
        self.names = np.array([e["name"] for e in self.events], dtype=object)
        self.category = np.array([e["category"] for e in self.events], dtype=np.int64)
        self.nparams = np.array([len(e["params"]) for e in self.events], dtype=np.int64)
        self.large = np.array(["EF_LARGE_PAYLOAD" in e["flags"] for e in self.events])
        self.creates_fd = np.array(["EF_CREATES_FD" in e["flags"] for e in self.events])
        # events libsinsp handles without making up a thread entry for an unknown tid
        self.skip_reset = np.array(["EF_SKIPPARSERESET" in e["flags"] for e in self.events])
        # Not printed by sysdig: internal events, and the user/group table events libsinsp
        # consumes into its own state (both still numbered).
        swallowed = ("useradded", "userdeleted", "groupadded", "groupdeleted")
        self.hidden = ((self.category & EC_SYSCALL_MASK & EC_INTERNAL) != 0) | np.isin(
            self.names, swallowed)
        self.is_container = self.names == "container"
        self.code = {}  # (name, dir) -> codes, newest last
        for e in self.events:
            self.code.setdefault((e["name"], e["dir"]), []).append(e["code"])

    def params(self, code: int) -> list[dict]:
        return self.events[code]["params"] if 0 <= code < self.size else []

    def param_names(self, code: int) -> dict[str, int]:
        """{parameter name: position} of an event code (cached)."""
        cache = self.__dict__.setdefault("_pnames", {})
        if code not in cache:
            cache[code] = {p["name"]: i for i, p in reversed(list(enumerate(self.params(code))))}
        return cache[code]

    def param_index(self, name: str) -> np.ndarray:
        """Per event code, the position of the parameter called `name` (-1 if none)."""
        cache = self.__dict__.setdefault("_pindex", {})
        if name not in cache:
            cache[name] = self._param_index(name)
        return cache[name]

    def _param_index(self, name: str) -> np.ndarray:
        return np.array([next((i for i, p in enumerate(e["params"]) if p["name"] == name), -1)
                         for e in self.events], dtype=np.int64)

    def syscall_name(self, sc: int) -> str:
        # codes the table has no name for print as libscap 0.29's unknown entry
        return self.ppm_sc.get(int(sc)) or "<unknown>"


def load(name: str) -> EventTable:
    """The event table called `name` (a file stem under event_tables/ next to the registry)."""
    path = versions.registry().tables_dir / f"{name}.json"
    if not path.is_file():
        raise KitError(f"unknown event table {name!r}; available: {', '.join(available())}")
    return _load(str(path), name)


@cache
def _load(path: str, name: str) -> EventTable:
    with open(path) as f:
        return EventTable(name, json.load(f))
