"""Every oracle capture, and what the real sysdig prints for many fields of all its events in
one run (one `sysdig -r CAP -p FORMAT` per capture and field batch, cached by oracle.run).

Which sysdig judges which capture (evt.num must mean the same event on both sides):
- 0.29.3 (`old`): the enter/exit captures (the arm64 old era and 17 public x86_64 captures;
  it refuses libs__curl_google_comments.scap and every exit-only capture);
- 0.41.4 (`new`): the exit-only captures of the stock driver. It also reads enter/exit
  captures, but converts their enter/exit pairs into single exit events as it reads and so
  numbers them differently: not a judge of those. It refuses the replay-complete captures
  (libscap's converter asserts on their extra exit parameters), as 0.29.3 does.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import oracle
import pandas as pd

import sysdig_kit
from sysdig_kit.read import eventtable
from sysdig_kit.read.args import param_info

DATA = oracle.DATA
OLD_ERA = DATA / "arm64" / "old-era-zsh-s4096.scap"
NEW_ERA = DATA / "arm64" / "new-era-zsh-name.scap"
REFUSED_PUBLIC = {"libs__curl_google_comments.scap"}
CASES = ([(OLD_ERA, "old")]
         + [(p, "old") for p in sorted((DATA / "public").glob("*.scap"))
            if p.name not in REFUSED_PUBLIC]
         + [(NEW_ERA, "new"), (DATA / "stock-0.23.2-zsh-s4096.scap", "new"),
            (DATA / "stock-0.23.2-zsh-s80.scap", "new")])
REPLAY_COMPLETE = sorted(DATA.glob("replay-complete-*.scap"))
BASE = ["evt.num", "evt.type", "evt.dir", "evt.cpu", "evt.rawtime", "evt.rawres", "evt.res",
        "thread.tid", "proc.pid", "proc.name"]
RS, FS = "\x1e", "\x1f"  # record / field separators: values may hold tabs and newlines


def case_id(x) -> str:
    return getattr(x, "name", str(x))


@cache
def frame(path: Path) -> pd.DataFrame:
    return sysdig_kit.read(path)


def arg_specs(df: pd.DataFrame) -> dict[str, dict[str, tuple[str, str]]]:
    """{event type: {parameter: (PT type, PF format)}} of the types in the frame (the exit's
    parameter when both directions name it, as events() decodes it)."""
    table = df.attrs.get("event_table")
    own = eventtable.load(table)
    out = {}
    for t in sorted(set(df.evt_type.astype(str))):
        spec = {}
        for d in (">", "<"):
            codes = own.code.get((t, d), [])
            if codes:  # the capture's own table: its names are the ones in the file
                spec.update({p["name"]: (p["type"], p.get("fmt")) for p in own.params(codes[-1])})
            else:
                spec.update(param_info(t, d, table))
        out[t] = spec
    return out


@cache
def printed(which: str, path: Path, fields: tuple[str, ...]) -> pd.DataFrame:
    """{evt.num: the printed text of each field} ('<NA>' -> None), every event (`*`)."""
    fmt = "*" + RS + FS.join(f"%{f}" for f in ("evt.num", *fields))
    try:
        text = oracle.run(which, str(path), fmt)
    except oracle.OracleError as e:
        m = re.search(r"unknown event argument (\S+)", str(e))
        if not m:
            raise
        # a name this sysdig's own table lacks: its column stays unknown (None)
        keep = tuple(f for f in fields if f != f"evt.arg.{m.group(1)}")
        if keep == fields:
            raise
        out = printed(which, path, keep)
        return out.reindex(columns=list(fields))

    rows = {}
    for rec in text.split(RS)[1:]:
        rec = rec.removesuffix("\n")
        vals = rec.split(FS)
        if len(vals) != len(fields) + 1 or not vals[0].isdigit():
            raise AssertionError(f"{path.name}: unparsable record {rec[:200]!r}")
        rows[int(vals[0])] = [None if v == "<NA>" else v for v in vals[1:]]
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(fields))
