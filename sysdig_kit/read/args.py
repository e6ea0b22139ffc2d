"""decode_args: an event's raw parameters (the frame's evt_args) as Python values.

Types come from the driver's event tables (data/event_tables): integers for numeric types
(signed for INT*, ERRNO, FD, PID), str for strings and paths, bytes for buffers, socket
addresses and anything the tables do not know (such as `arg<i>` parameters a patched driver
appended). An empty value decodes to None.
"""

from __future__ import annotations

import re
import struct
from functools import lru_cache

from .. import versions
from ..errors import KitError
from . import eventtable

SIGNED = {"PT_INT8", "PT_INT16", "PT_INT32", "PT_INT64", "PT_ERRNO", "PT_FD", "PT_PID"}
UNSIGNED = {"PT_UINT8", "PT_UINT16", "PT_UINT32", "PT_UINT64", "PT_FLAGS8", "PT_FLAGS16",
            "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16", "PT_ENUMFLAGS32", "PT_UID", "PT_GID",
            "PT_MODE", "PT_SIGTYPE", "PT_RELTIME", "PT_ABSTIME", "PT_PORT", "PT_L4PROTO",
            "PT_SOCKFAMILY", "PT_BOOL", "PT_SIGSET", "PT_SYSCALLID"}
STRINGS = {"PT_CHARBUF", "PT_FSPATH", "PT_FSRELPATH"}
_INT = {1: "b", 2: "h", 4: "i", 8: "q"}
_LEADING_NUM = re.compile(r"\s*(-?0x[0-9a-fA-F]+|-?\d+)")
_DATE = re.compile(rb"\s*\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
_DATE_PARTS = re.compile(r"\s*([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.([0-9]+))?")
_LEADING_HEX = re.compile(r"\s*(-?(?:0x)?[0-9a-fA-F]+)(?![0-9a-zA-Z_])")


@lru_cache(maxsize=4096)
def param_types(evt_type: str, evt_dir: str, table: str | None = None) -> dict[str, str]:
    """{parameter name: PT_* type} of an event, from `table` (the frame's
    df.attrs["event_table"]) if given, then the newest registered stock table that knows it (older tables fill
    in names the newer ones dropped); generic syscalls use the `syscall` event."""
    return {k: v[0] for k, v in param_info(evt_type, evt_dir, table).items()}


@lru_cache(maxsize=4096)
def param_info(evt_type: str, evt_dir: str, table: str | None = None) -> dict[str, tuple]:
    """{parameter name: (PT_* type, PF_* print format)}, looked up as param_types says."""
    out: dict[str, tuple] = {}
    for event in (evt_type, "syscall"):
        for t in _chain(table):
            for code in reversed(t.code.get((event, evt_dir), [])):  # newest version first
                for p in t.params(code):
                    out.setdefault(p["name"], (p["type"], p.get("fmt")))
    return out


_CHAINS: dict = {}


def _chain(table: str | None) -> list:
    """The tables param_types looks in, in order: loaded once per registry, not once per
    event type (each load asks the registry and the file system)."""
    reg = versions.registry()
    hit = _CHAINS.get((table, id(reg)))
    if hit is None or hit[0] is not reg:
        names = [t for t in (table, *reversed([x.event_table for x in reg.pairs])) if t]
        hit = (reg, [eventtable.load(n) for n in dict.fromkeys(names)])
        _CHAINS[(table, id(reg))] = hit
    return hit[1]


def decode_value(ptype: str | None, raw, encoding: str = "scap", fmt: str | None = None):
    """One parameter value: raw bytes (scap) or sysdig's text for it (text/json; `fmt`, the
    parameter's PF_* print format, says how sysdig printed a number: PF_HEX in hex without
    0x, PF_OCT with a leading 0)."""
    if raw is None:
        return None
    raw = bytes(raw)
    if encoding == "scap":
        if not raw:
            return None
        if ptype in SIGNED or ptype in UNSIGNED:
            fmt = _INT.get(len(raw))
            if fmt is None:
                return raw
            return struct.unpack("<" + (fmt if ptype in SIGNED else fmt.upper()), raw)[0]
        if ptype == "PT_DOUBLE" and len(raw) == 8:
            return struct.unpack("<d", raw)[0]
        if ptype in STRINGS:
            return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
        return raw
    if encoding in ("text", "json"):
        if ptype == "PT_ABSTIME" and _DATE.match(raw):
            # sysdig prints an absolute time as a date (the host's zone: UTC assumed)
            from datetime import UTC, datetime

            m = _DATE_PARTS.match(raw.decode("utf-8", "replace"))
            try:
                t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:  # no such date (month 13, ...): not a time sysdig printed
                return None
            return int(t.timestamp()) * 10**9 + int((m.group(2) or "").ljust(9, "0")[:9])
        if fmt in ("PF_HEX", "PF_OCT") and ptype and ptype[3:6] in ("INT", "UIN"):
            # (flags and errnos print in decimal whatever their format)
            m = _LEADING_HEX.match(raw.decode("utf-8", "replace"))
            if not m or len(m.group(1)) > 22:
                return None
            tok = m.group(1).lower().replace("0x", "")
            try:
                return int(tok, 16 if fmt == "PF_HEX" else 8) if tok.strip("-") else None
            except ValueError:  # digits of another base (8 or 9 where octal was printed)
                return None
        if ptype in SIGNED or ptype in UNSIGNED or ptype == "PT_DOUBLE":
            m = _LEADING_NUM.match(raw.decode("utf-8", "replace"))
            if not m:
                return None
            tok = m.group(1)
            if len(tok) > 21:  # longer than any 64-bit value sysdig prints: not decodable
                return None
            return int(tok, 16) if "0x" in tok.lower() else int(tok)
        if ptype in STRINGS:
            s = raw.decode("utf-8", "surrogateescape")
            return None if s == "<NA>" else s  # sysdig 0.41's text of an absent string
        return raw or None  # an empty buffer, as the scap decoding gives it
    raise KitError(f"unknown args encoding {encoding!r} (scap, text or json)")


def decode_args(evt_type, evt_dir, args, encoding: str = "scap",
                table: str | None = None) -> list[tuple[str, object]]:
    """[(name, value)] for one event's `evt_args` (a list of {'name', 'value'} dicts or of
    (name, value) pairs), in order, decoded with the driver's event table (`table`: the
    frame's df.attrs["event_table"], to decode parameters only a patched table names)."""
    info = param_info(str(evt_type), str(evt_dir), table)
    out = []
    for a in args if args is not None else ():
        name, raw = (a["name"], a["value"]) if isinstance(a, dict) else a
        # the print format says how sysdig's text wrote a number (PF_HEX: hex without 0x)
        ptype, fmt = info.get(name, (None, None))
        out.append((name, decode_value(ptype, raw, encoding, fmt)))
    return out
