"""`strace -f -ttt` output (the peer tracer in playbooks) as an event frame (docs/frame.md).

One exit event per completed syscall (strace prints a call once it returns; an `<unfinished
...>` line and its `<... resumed>` line make one event, at the resume time). The call's text is
kept as one `args` parameter; the return value is the number strace printed, negative errno for
failures (`-1 ENOENT` -> -2), NA for `?` (exit_group, a thread killed mid-call).
"""

from __future__ import annotations

import csv
import re
from functools import cache
from importlib import resources
from pathlib import Path

from ..errors import KitError

_LINE = re.compile(r"^(?P<tid>\d+)\s+(?P<s>\d+)\.(?P<us>\d+)\s+(?P<rest>.*)$")
_CALL = re.compile(r"^(?:<\.\.\. (?P<resumed>\w+) resumed>|(?P<name>\w+)\()(?P<body>.*)$")
_RET = re.compile(r"\)\s+=\s+(?P<ret>0x[0-9a-fA-F]+|-?\d+|\?)(?:<[^>]*>)?(?:\s+(?P<err>E[A-Z0-9]+))?")


@cache
def _errno() -> dict[str, int]:
    text = resources.files("sysdig_kit").joinpath("data", "errno.csv").read_text()
    rows = csv.reader(ln for ln in text.splitlines() if ln and not ln.startswith("#"))
    next(rows)
    return {name: int(num) for num, name in rows}


def read_strace(path) -> object:
    """Read strace's output file (`strace -f -ttt -o FILE`) into an event frame."""
    from ..read.frame import make_frame

    path = Path(path)
    cols: dict[str, list] = {k: [] for k in ("num", "ts", "tid", "type", "res", "args")}
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise KitError(f"{path}: cannot read it: {exc.strerror or exc}") from None
    for lineno, line in enumerate(lines, 1):
        m = _LINE.match(line)
        if not m:
            if line.strip():
                raise KitError(f"{path}:{lineno}: not `strace -f -ttt` output: {line[:60]!r}")
            continue
        rest = m["rest"]
        call = _CALL.match(rest)
        if call is None or rest.endswith("<unfinished ...>"):
            continue  # signals (---), exits (+++), and halves of an interrupted call
        r = list(_RET.finditer(rest))
        ret = r[-1] if r else None
        if ret is None:
            continue
        val = ret["ret"]
        res = None if val == "?" else int(val, 0)
        if res is not None and res >= 1 << 63:  # an address above int64: as the kernel's long
            res -= 1 << 64
        if res == -1 and ret["err"]:
            res = -_errno().get(ret["err"], 1)
        cols["num"].append(len(cols["num"]) + 1)
        cols["ts"].append(int(m["s"]) * 1_000_000_000 + int(m["us"].ljust(9, "0")[:9]))
        cols["tid"].append(int(m["tid"]))
        cols["type"].append(call["resumed"] or call["name"])
        cols["res"].append(res)
        cols["args"].append([("args", rest.encode())])
    n = len(cols["num"])
    return make_frame(evt_num=cols["num"], evt_rawtime=cols["ts"], evt_cpu=[0] * n,
                      thread_tid=cols["tid"], proc_pid=[None] * n, proc_name=[None] * n,
                      evt_dir=["<"] * n, evt_type=cols["type"], evt_rawres=cols["res"],
                      evt_args=cols["args"], source=str(path), format="strace",
                      args_encoding="text")
