"""The per-syscall policy (data/replayer/policy.csv) and the syscall tables, read with the stdlib.

The data directory is the package's own `data/` when the replayer is shipped to a board
(`ship_files`), else sysdig_kit/data in the source tree.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

ACTIONS = ("inject", "execute", "restore", "run")


def data_dir() -> Path:
    here = Path(__file__).resolve().parent
    return here / "data" if (here / "data").is_dir() else here.parent / "data"


def _rows(path: Path) -> list[dict]:
    lines = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    return list(csv.DictReader(lines))


@dataclass(frozen=True)
class Write:
    param: str
    arg: int
    optional: bool = False
    iov: bool = False
    sized_by_res: bool = False  # the kernel wrote as many bytes as it returned
    to_fd: bool = False  # the bytes went to the file descriptor in ARG, not to memory


@dataclass(frozen=True)
class Check:
    name: str
    arg: int
    kind: str  # "n" number, "s" C string, "b" bytes


@dataclass(frozen=True)
class Rule:
    syscall: str
    action: str
    writes: tuple[Write, ...] = ()
    checks: tuple[Check, ...] = ()
    pids: tuple[int, ...] = ()


DEFAULT = "execute"
NOT_INJECTABLE = ("msghdr", "control", "fdlist", "tuple")


@dataclass(frozen=True)
class Spec:
    """One write-back: the event parameter `param` goes to the pointer in argument `arg` (+offset)
    as `type` (bytes, iovec, i32, i64, str); `length` res: as many bytes as returned; `when`: the
    results for which the kernel writes it. From data/syscalls/write_back.csv when it has these
    columns, else from the policy's `writes`."""

    param: str
    arg: int
    offset: int = 0
    type: str = "bytes"
    length: str = ""
    when: str = "res>=0"
    optional: bool = False
    to_fd: bool = False
    what: str = ""

    def applies(self, res: int) -> bool:
        op, val = self.when[3:5].strip("0123456789-"), int(self.when.lstrip("res<>=!"))
        return {"<": res < val, "<=": res <= val, ">": res > val, ">=": res >= val,
                "==": res == val, "!=": res != val}.get(op, res >= 0)


def _spec(w: Write) -> Spec:
    return Spec(w.param, w.arg, type="iovec" if w.iov else "bytes",
                length="res" if w.sized_by_res else "",
                when="res>0" if w.sized_by_res else "res>=0", optional=w.optional, to_fd=w.to_fd)


def _parse(row: dict) -> Rule:
    writes = []
    for w in filter(None, (row.get("writes") or "").split(";")):
        param, dest = w.split(">")
        optional, iov, by_res, to_fd = "?" in dest, "iov" in dest, "r" in dest, "@" in dest
        arg = int(dest.replace("?", "").replace("iov", "").replace("r", "").replace("@", ""))
        writes.append(Write(param, arg, optional, iov, by_res, to_fd))
    checks = []
    for c in filter(None, (row.get("check") or "").split(";")):
        name, dest = c.split("=")
        kind = dest[0] if dest[0] in "sb" else "n"
        checks.append(Check(name, int(dest.lstrip("sb")), kind))
    pids = tuple(int(p) for p in filter(None, (row.get("pids") or "").split(";")))
    if row["action"] not in ACTIONS:
        raise ValueError(f"policy: {row['syscall']}: unknown action {row['action']!r}")
    return Rule(row["syscall"], row["action"], tuple(writes), tuple(checks), pids)


class Policy:
    def __init__(self, arch: str, path: Path | None = None):
        self.arch = arch
        self.rules: dict[str, Rule] = {}
        for row in _rows(path or data_dir() / "replayer" / "policy.csv"):
            if row["arch"] in ("*", arch):
                self.rules[row["syscall"]] = _parse(row)
        self.names = syscall_names(arch)
        self.table = write_back_specs()

    def writes(self, rule: Rule, syscall: str) -> list[Spec]:
        """Where what `syscall` (sysdig's name, as in the log) wrote goes in the tracee."""
        own = [_spec(w) for w in rule.writes]
        specs = self.table.get(syscall) or self.table.get(rule.syscall)
        if specs is None:
            return own
        return list(specs) + [s for s in own if s.to_fd]

    def rule(self, nr: int) -> Rule:
        name = self.names.get(nr, f"nr {nr}")
        return self.rules.get(name) or Rule(name, DEFAULT)


def syscall_names(arch: str) -> dict[int, str]:
    """number -> kernel name, from data/syscalls/<arch>.csv (generated from the UAPI headers)."""
    return {int(r["nr"]): r["name"] for r in _rows(data_dir() / "syscalls" / f"{arch}.csv")}


def write_back(path: Path | None = None) -> dict[str, list[str]]:
    """data/syscalls/write_back.csv: syscall -> the parameters that carry what it wrote."""
    out: dict[str, list[str]] = {}
    for r in _rows(path or data_dir() / "syscalls" / "write_back.csv"):
        params = r.get("carried_by") if "carried_by" in r else r.get("param")
        out.setdefault(r["syscall"], []).extend(p for p in (params or "").split("|") if p)
    return out


def write_back_specs(path: Path | None = None) -> dict[str, list[Spec]]:
    """write_back.csv's destinations (columns arg, offset, type, length, when), by syscall;
    {} for a table without them (then the policy's `writes` say where)."""
    rows = _rows(path or data_dir() / "syscalls" / "write_back.csv")
    if not rows or "arg" not in rows[0]:
        return {}
    out: dict[str, list[Spec]] = {}
    for r in rows:
        if not (r.get("arg") or "").strip():
            continue
        out.setdefault(r["syscall"], []).append(Spec(
            r.get("param") or "", int(r["arg"]), int(r.get("offset") or 0),
            r.get("type") or "bytes", r.get("length") or "", r.get("when") or "res>=0",
            what=r.get("what") or ""))
    return out


SHIP = ("replayer/policy.csv", "syscalls/arm64.csv", "syscalls/x86_64.csv",
        "syscalls/write_back.csv")


def ship_files() -> dict[str, Path]:
    """What a board needs of this package: relative name -> file (the modules and their data)."""
    here = Path(__file__).resolve().parent
    files = {p.name: p for p in here.glob("*.py") if p.name != "host.py"}
    files.update({f"data/{rel}": data_dir() / rel for rel in SHIP})
    return files
