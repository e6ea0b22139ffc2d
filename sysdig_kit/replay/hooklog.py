"""Read raw syscall-hook output (kernel log lines with numbers) into a frame with names.

Default line format, as printed by a hand-written hook:
    [  207.532130] [my_sysdig:] call syscall 0x122bbec0, 2: 0x3f, 3:0x8d66090
i.e. kernel timestamp, tag, a first value (the hook's context, e.g. a task pointer), then
numbered fields `k: value`; field 2 is the syscall number (`nr_field`), the others become
columns f3, f4, ... Any regex with a named group `nr` (or `fields`) works; other named groups
become columns. Numbers are read with their prefix (0x.. hex, else
decimal) unless a base is forced. Lines that do not match are counted, never fatal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from ..errors import KitError
from . import syscalls

DEFAULT_PATTERN = (
    r"\[\s*(?P<time>\d+\.\d+)\]\s*\[(?P<tag>[^\]]*)\]\s*call syscall\s+(?P<ctx>\w+)"
    r"(?P<fields>(?:\s*,\s*\d+\s*:\s*\w+)+)"
)
NUMERIC = ("nr", "ctx", "arg")
_FIELD = re.compile(r"(\d+)\s*:\s*(\w+)")


def _int(text: str, base: int | None) -> int:
    return int(text, base) if base else int(text, 0)


def decode(path, arch: str = "arm64", pattern: str = DEFAULT_PATTERN,
           base: int | None = None, nr_field: int = 2, max_examples: int = 5) -> pd.DataFrame:
    """Frame with one row per matching line: line, time, nr, syscall, and the pattern's other
    groups. A `fields` group (`, 2: 0x3f, 3:0x8d66090`) is split into numbered fields: field
    `nr_field` is the syscall number, the others become columns f<k>.
    df.attrs: arch, lines, malformed (count), malformed_examples, unknown_nr."""
    arch = syscalls.normalize_arch(arch)
    try:
        rx = re.compile(pattern)
    except re.error as exc:
        raise KitError(f"bad --pattern: {exc}") from None
    if "nr" not in rx.groupindex and "fields" not in rx.groupindex:
        raise KitError("--pattern needs a named group (?P<nr>...) for the syscall number "
                       "(or (?P<fields>...) holding `k: value` fields)")
    path = Path(path)
    if not path.is_file():
        raise KitError(f"{path}: no such file")
    table = syscalls.table(arch)
    rows, bad, examples, total = [], 0, [], 0
    with open(path, errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            total += 1
            m = rx.search(line)
            try:
                if m is None:
                    raise ValueError("no match")
                g = m.groupdict()
                row = {"line": lineno}
                for k, v in g.items():
                    if k == "fields":
                        fields = {int(a): _int(b, base) for a, b in _FIELD.findall(v or "")}
                        row["nr"] = fields.pop(nr_field, None)
                        row.update({f"f{a}": b for a, b in fields.items()})
                    elif k == "time":
                        row[k] = float(v) if v is not None else None
                    elif k in NUMERIC or k == "nr":
                        row[k] = _int(v, base) if v is not None else None
                    else:
                        row[k] = v
                if row["nr"] is None:
                    raise ValueError("no syscall number")
            except ValueError:
                bad += 1
                if len(examples) < max_examples:
                    examples.append(f"line {lineno}: {line.rstrip()[:120]}")
                continue
            row["syscall"] = table.get(row["nr"])
            rows.append(row)
    extra = sorted({k for r in rows for k in r if k.startswith("f") and k[1:].isdigit()},
                   key=lambda k: int(k[1:]))
    df = pd.DataFrame(rows, columns=_columns(rx, extra))
    for c in df.columns:
        if c in ("nr", "line"):
            df[c] = df[c].astype("Int64")
        elif c in NUMERIC or c in extra:  # hook values may be kernel pointers (>= 2**63)
            df[c] = df[c].astype("UInt64")
        elif c in ("syscall", "tag") or df[c].dtype == object:
            df[c] = df[c].astype(pd.StringDtype())
    df.attrs.update(source=str(path), arch=arch, lines=total, malformed=bad,
                    malformed_examples=examples,
                    unknown_nr=int(df["syscall"].isna().sum()) if len(df) else 0)
    return df


def _columns(rx: re.Pattern, extra: list[str]) -> list[str]:
    groups = [g for g in sorted(rx.groupindex, key=rx.groupindex.get) if g != "fields"]
    if "fields" in rx.groupindex and "nr" not in groups:
        groups.append("nr")
    return ["line", *groups, *extra, "syscall"]


def summary(df: pd.DataFrame) -> str:
    a = df.attrs
    counts = df["syscall"].fillna("<unknown nr>").value_counts()
    head = (f"{a['source']}: {len(df)} syscalls decoded ({a['arch']}) from {a['lines']} lines; "
            f"{a['malformed']} malformed, {a['unknown_nr']} with a number not in the table")
    lines = [head]
    lines += [f"  {name:<24} {n}" for name, n in counts.items()]
    lines += [f"  malformed {e}" for e in a["malformed_examples"]]
    return "\n".join(lines)
