"""`sysdig -j` output (one JSON object per line) read into the event frame.

sysdig -j prints evt.num, evt.outputtime (ns since the epoch), evt.cpu, evt.dir, evt.type,
evt.info, proc.name and thread.tid, or the fields of a `-p` format. evt.rawtime, evt.rawres
and proc.pid are used when present; otherwise evt.rawres is decoded from evt.info the way the
text reader does it. With `-b`, buffers in evt.info are base64 and decode to raw bytes
(pass `b64=True`; the output itself does not say so).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import KitError
from .text import (
    NA,
    Batch,
    Pids,
    _strip_era_space,
    cut_line,
    encode_args,
    era_table,
    lines,
    open_text,
    rawres,
    short_error,
    split_info,
    warn_cut,
)

_NEEDED = ("evt.num", "evt.cpu", "thread.tid", "evt.dir", "evt.type")


def _na(v):
    return None if v is None or v == NA or v == "" else v


class JsonReader:
    """`sysdig -j` output, one event object per line."""

    @staticmethod
    def sniff(head: bytes) -> bool:
        first = head.lstrip().split(b"\n", 1)[0]
        return first.startswith(b"{") and b'"evt.' in first

    @classmethod
    def read(cls, path, **kw):
        return next(iter(cls.iter_batches(path, batch_size=None, **kw)))

    @classmethod
    def iter_batches(cls, path, batch_size=1_000_000, sysdig_version=None, b64=False):
        """Frames of at most `batch_size` events (all in one when None). sysdig_version
        ("0.29"/"0.41") says how res was printed; detected from evt.info when None."""
        path = Path(path)
        state = {"era": sysdig_version, "kit": True, "warnings": [], "pids": Pids()}
        batch = Batch()
        yielded, seen, n = False, 0, 0
        with open_text(path) as f:
            for lineno, line in enumerate(lines(f, state["warnings"]), 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    if cut_line(line, n, state["warnings"]):  # the output was truncated
                        break
                    raise KitError(f"{path}: line {lineno} is not JSON ({exc.msg})") from None
                except (ValueError, RecursionError) as exc:  # a 5,000-digit number; [[[[...
                    why = "nested too deeply" if isinstance(exc, RecursionError) else short_error(exc)
                    raise KitError(f"{path}: line {lineno} cannot be read as JSON ({why})") from None
                if not isinstance(obj, dict):
                    raise KitError(f"{path}: line {lineno} is not a JSON object")
                try:
                    cls._add(batch, obj, path, lineno, state, b64)
                except (TypeError, ValueError, OverflowError) as exc:  # a field of another type
                    raise KitError(f"{path}: line {lineno}: a field is not what sysdig prints "
                                   f"({short_error(exc)})") from None
                n += 1
                if batch_size and len(batch) >= batch_size:
                    yield cls._frame(batch, path, state, b64)
                    yielded, batch, seen = True, Batch(), len(state["warnings"])
        warn_cut(path, state["warnings"])
        if len(batch) or not yielded or len(state["warnings"]) > seen:
            yield cls._frame(batch, path, state, b64)

    @staticmethod
    def _frame(batch, path, state, b64):
        return batch.frame(source=path, format="json", args_encoding="text",
                           buffers="raw" if b64 else "printed",
                           event_table=era_table(state["era"]),
                           warnings=list(state["warnings"]))

    @staticmethod
    def _add(batch, o, path, lineno, state, b64):
        missing = [k for k in _NEEDED if k not in o]
        if "evt.rawtime" not in o and "evt.outputtime" not in o:
            missing.append("evt.rawtime")
        if missing:
            raise KitError(f"{path}: line {lineno} lacks {', '.join(missing)} "
                           "(use plain `sysdig -j`, or add these fields to -p)")
        rawt = o.get("evt.rawtime", o.get("evt.outputtime"))
        if not isinstance(rawt, int):
            raise KitError(f"{path}: line {lineno}: time {rawt!r} is not ns since the epoch")
        d, typ, info = o["evt.dir"], o["evt.type"], o.get("evt.info") or ""
        if d not in (">", "<") or not isinstance(typ, str) or not isinstance(info, str):
            raise ValueError(f"evt.dir {d!r:.20}, evt.type {typ!r:.40}, evt.info {info!r:.40}")
        info = _strip_era_space(info, state)
        params, lay = split_info(info, typ, d, state["era"])
        if "evt.rawres" in o:
            res = _na(o["evt.rawres"])
        else:
            res = rawres(params, lay, d, state["era"])
        tid = int(o["thread.tid"])
        if "proc.pid" in o:
            pid = _na(o["proc.pid"])
            pid = None if pid is None else int(pid)
        else:
            pid = state["pids"].pid(tid, typ, d, params)
        name = _na(o.get("proc.name"))
        if name is not None and not isinstance(name, str):
            raise ValueError(f"proc.name {name!r:.40}")
        batch.add(int(o["evt.num"]), rawt, int(o["evt.cpu"]), tid, pid, name, d, typ,
                  None if res is None else int(res), encode_args(params, lay, b64=b64))
