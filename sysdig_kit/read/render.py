"""Event parameters as sysdig's text: what `sysdig -p %evt.arg.NAME` prints and what its filter
field `evt.arg.NAME` compares (libsinsp's rendering of each parameter type), column-wise from an
events() frame.

Some types sysdig renders from its thread and fd tables, which a frame does not hold: an fd as
`<f>/etc/passwd`, a pid as its thread's name, a socket address with the fd's protocol, a
relative path joined to the thread's working directory. Those raise `Unrenderable` (the caller
turns it into a one-line error naming `evt.rawarg.NAME`, the value as the event holds it).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import KitError
from . import eventtable
from .frame import printable

_WIDTH = {"8": 8, "16": 16, "32": 32, "64": 64}
# libsinsp's names of signals 1-31 (the Linux numbering of arm64 and x86_64); others: the number
SIGNALS = dict(enumerate(
    ["SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE",
     "SIGKILL", "SIGUSR1", "SIGSEGV", "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT",
     "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN", "SIGTTOU", "SIGURG", "SIGXCPU",
     "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS"], start=1))
FLAGS = {"PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16",
         "PT_ENUMFLAGS32"}
INTS = {"PT_INT8", "PT_INT16", "PT_INT32", "PT_INT64", "PT_UINT8", "PT_UINT16", "PT_UINT32",
        "PT_UINT64"}
# why sysdig's text of these types cannot be made from a frame
TABLE_BOUND = {
    "PT_FD": "a file descriptor sysdig shows resolved through its fd table (<f>/path)",
    "PT_FDLIST": "a file descriptor list sysdig shows with its fd table's types",
    "PT_PID": "a process id sysdig shows as its thread's name when its thread table knows it",
    "PT_SOCKADDR": "a socket address sysdig shows with the fd table's protocol",
    "PT_SOCKTUPLE": "a socket tuple sysdig shows with the fd table's protocol",
    "PT_UID": "a user id sysdig shows as the name its user table gives it",
    "PT_GID": "a group id sysdig shows as the name its group table gives it",
}
# sysdig prints (and its filters compare) a buffer cut to this many characters
MAX_BUF = 80


class Unrenderable(KitError):
    pass


def _width(ptype: str) -> int:
    for k, w in _WIDTH.items():
        if ptype.endswith(k):
            return w
    return 64


def _int_text(v: int, ptype: str, fmt: str) -> str:
    """libsinsp's printf of an integer parameter: decimal formats print it as the signed type
    of its width (so a uint64 of 2^64-1 prints -1), hex as unsigned upper case, octal with a
    leading 0 (just 0 for 0)."""
    w = _width(ptype)
    u = v & ((1 << w) - 1)
    if fmt == "PF_HEX":
        return f"{u:X}"
    if fmt == "PF_OCT":
        return f"0{u:o}" if u else "0"
    s = u - (1 << w) if u >> (w - 1) else u
    return f"{s:09d}" if fmt == "PF_10_PADDED_DEC" else str(s)


def _map_ints(v: pd.Series, fn) -> pd.Series:
    """fn over the distinct non-NA values only (parameters repeat a lot)."""
    ok = v.notna().to_numpy(bool)
    out = np.full(len(v), None, dtype=object)
    if ok.any():
        vals = v[ok].astype(object).to_numpy()
        uniq = {x: fn(int(x)) for x in set(vals.tolist())}
        out[ok] = [uniq[x] for x in vals]
    return pd.Series(pd.array(out, dtype="string"), index=v.index)


def _buffer_text(b: bytes | None, empty: str) -> str | None:
    if b is None:
        return None
    if not b:
        return empty
    s = "".join(chr(c) if 32 <= c < 127 else "." for c in b[:MAX_BUF + 1])
    return s if len(s) <= MAX_BUF else s[:MAX_BUF - 3] + "..."


def _buffers(v: pd.Series, era: str | None) -> pd.Series:
    """libsinsp's default text of a buffer: each non-printable byte as '.', cut to MAX_BUF
    characters ending in '...'; an empty one prints as NULL (libs >= 0.20, the exit-only era)
    or nothing (0.29.3)."""
    empty = "NULL" if era == "exit-only" else ""
    vals = pd.Series(v).array
    out = [_buffer_text(None if b is None or b is pd.NA else bytes(b), empty)
           for b in vals.to_numpy(dtype=object, na_value=None)]
    return pd.Series(pd.array(out, dtype="string"), index=v.index)


def arg_text(ev: pd.DataFrame, name: str, ptype: str | None, fmt: str | None,
             etype: str = "") -> pd.Series:
    """sysdig's text for parameter `name` of every row of the events() frame `ev` (NA where
    the event lacks it); raises Unrenderable if any row's text cannot be made."""
    text, unknown, why = arg_text_partial(ev, name, ptype, fmt, etype)
    if unknown.any():
        raise Unrenderable(why)
    return text


def arg_text_partial(ev: pd.DataFrame, name: str, ptype: str | None, fmt: str | None,
                     etype: str = "") -> tuple[pd.Series, np.ndarray, str | None]:
    """(text, unknown, why): sysdig's text where it can be made; `unknown` marks the rows whose
    text needs sysdig's tables (`why` says which, naming evt.rawarg.NAME)."""
    what = f"evt.arg.{name} of {etype}" if etype else f"evt.arg.{name}"
    none = np.zeros(len(ev), dtype=bool)
    if name not in ev.columns:
        return pd.Series(pd.array([None] * len(ev), dtype="string"), index=ev.index), none, None
    v = ev[name]
    fmt = fmt or "PF_DEC"
    if ptype in FLAGS:
        names = v.astype("string")
        raw = ev[f"{name}_raw"] if f"{name}_raw" in ev.columns else v
        # no flag matched: libsinsp prints the number
        num = _map_ints(raw, str)
        return names.where(names.notna() & (names != ""), num), none, None
    if ptype in INTS:
        return _map_ints(v, lambda x: _int_text(x, ptype, fmt)), none, None
    if ptype == "PT_ERRNO":
        from .typed import errno_names

        en = errno_names()
        return _map_ints(v, lambda x: en.get(-x, str(x)) if x < 0 else str(x)), none, None
    if ptype == "PT_SIGTYPE":
        return _map_ints(v, lambda x: SIGNALS.get(x & 0xFF, str(x & 0xFF))), none, None
    if ptype in ("PT_CHARBUF", "PT_FSPATH", "PT_FSRELPATH"):
        s = v.astype("string")
        if ptype == "PT_CHARBUF":
            return s, none, None
        rel = np.array([x is not None and not x.startswith("/") and x != "<NA>"
                        for x in s.to_numpy(dtype=object, na_value=None)], dtype=bool)
        why = None
        if rel.any():
            why = (f"{what}: {int(rel.sum())} relative path(s) (e.g. {s[rel].iloc[0]!r}), which "
                   f"sysdig shows joined to the thread's working directory, not held in a "
                   f"frame: use evt.rawarg.{name} for the path as the call gave it")
        return s.where(~rel, None), rel, why
    if ptype == "PT_SYSCALLID" and ev.attrs.get("event_table"):
        tab = eventtable.load(ev.attrs["event_table"])
        return _map_ints(v, tab.syscall_name), none, None
    if ptype == "PT_BYTEBUF":
        table = ev.attrs.get("event_table")
        return _buffers(v, eventtable.load(table).era if table else None), none, None
    if ptype in TABLE_BOUND:
        why = (f"{what} is {TABLE_BOUND[ptype]}, which a frame does not hold: "
               f"use evt.rawarg.{name}")
    else:
        why = (f"{what} is a {ptype or 'parameter of unknown type'}, whose sysdig text is not "
               f"made here: use evt.rawarg.{name}")
    known_absent = pd.Series(v).isna().to_numpy(bool)
    return (pd.Series(pd.array([None] * len(ev), dtype="string"), index=ev.index),
            ~known_absent, why)


_RESOLVED = re.compile(r"([^()]*)\((.*)\)", re.DOTALL)


def printed_arg_partial(raws: list, expected: np.ndarray, name: str, ptype: str | None,
                        etype: str = "") -> tuple[pd.Series, np.ndarray, str | None]:
    """As arg_text_partial, from sysdig's own printed text of each value (text/JSON frames:
    `raws`, bytes or None where the line lacks it; `expected`: the event has the parameter).
    sysdig prints `raw(resolved)` when it resolves a value and compares the resolved part, so
    an fd prints and compares as `<f>/etc/passwd`; strings and buffers are taken as printed.
    A parameter the event has but the line lacks, and an unresolved relative path, are
    unknown."""
    what = f"evt.arg.{name} of {etype}" if etype else f"evt.arg.{name}"
    out = np.full(len(raws), None, dtype=object)
    unknown = np.zeros(len(raws), dtype=bool)
    whys = set()
    for i, b in enumerate(raws):
        if b is None:
            if expected[i]:
                unknown[i] = True
                whys.add(f"{what} is not in sysdig's printed line: filter the .scap capture")
            continue
        v = printable(bytes(b).decode("utf-8", "surrogateescape"))  # undecodable: \xNN
        if ptype not in ("PT_CHARBUF", "PT_BYTEBUF"):
            m = _RESOLVED.fullmatch(v)
            if m:
                v = m.group(2)
            elif ptype in ("PT_FSPATH", "PT_FSRELPATH") and not v.startswith("/") and v != "<NA>":
                unknown[i] = True
                whys.add(f"{what}: the relative path {v!r} sysdig compares joined to the "
                         f"thread's working directory, not printed: use evt.rawarg.{name}")
                continue
        out[i] = v
    return (pd.Series(pd.array(out, dtype="string")), unknown,
            min(whys) if whys else None)


_RAW_INTS = FLAGS | INTS | {"PT_ERRNO", "PT_FD", "PT_PID", "PT_UID", "PT_GID", "PT_SIGTYPE",
                            "PT_MODE", "PT_SIGSET", "PT_SYSCALLID", "PT_RELTIME", "PT_ABSTIME"}


def rawarg(ev: pd.DataFrame, name: str, ptype: str | None) -> tuple[pd.Series, str]:
    """The value as the event holds it (sysdig's evt.rawarg.NAME): (column, 'int' or 'str')."""
    if ptype in _RAW_INTS:
        if name not in ev.columns:
            return pd.Series(pd.array([None] * len(ev), dtype="Int64"), index=ev.index), "int"
        return (ev[f"{name}_raw"] if f"{name}_raw" in ev.columns else ev[name]), "int"
    if ptype in ("PT_CHARBUF", "PT_FSPATH", "PT_FSRELPATH"):
        if name not in ev.columns:
            return pd.Series(pd.array([None] * len(ev), dtype="string"), index=ev.index), "str"
        return ev[name].astype("string"), "str"
    raise Unrenderable(f"evt.rawarg.{name} is a {ptype or 'parameter of unknown type'}: not "
                       f"compared as a number or a string here")
