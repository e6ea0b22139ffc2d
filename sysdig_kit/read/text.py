"""sysdig's text output read into the event frame: its default format and the kit's own format.

Default format (sysdig 0.29.3 and 0.41.4 print it the same way):
    %evt.num %evt.outputtime %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.info
The time is a wall-clock time of day (the local time of the machine that ran sysdig) without
a date, so `evt_rawtime` needs one: pass `date="2026-11-26"` (or `start=` any timestamp whose
date is the first event's) and `tz=` (default "UTC"). Without it the date is 1970-01-01, a
crossing of midnight adds a day, and df.attrs["warnings"] says so. Use the kit format or
`sysdig -j` when the absolute time matters: both carry ns since the epoch.

Kit format (`KIT_FORMAT` with `KIT_SYSDIG_ARGS`): tab-separated, a marker first, every field
raw, and buffers in base64 (`-b`) so `evt_args` get the captured bytes back.

evt.info is `name=value name=value ...` where values may contain spaces (execve args, env,
paths), so it is split using the parameter names and types of the event from the driver's
event tables (sysdig_kit/data/event_tables), trying each known layout of the event.
evt_rawres is the first exit parameter decoded as sysdig displays it (`-2(ENOENT)`, hex for
brk); which parameters count as the result differs between sysdig 0.29 and 0.41, told apart by
0.29's trailing space after evt.info (override with `sysdig_version=`). Values that cannot be
decoded give NA, never a guess.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import io
import json
import re
import warnings as pywarnings
import zlib
from functools import cache, lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .. import versions
from ..errors import KitError
from .frame import make_frame

KIT_MARKER = "SDKIT1"
_KIT_FIELDS = (
    "%evt.num", "%evt.rawtime", "%evt.cpu", "%thread.tid", "%proc.pid", "%evt.dir",
    "%evt.type", "%evt.rawres", "%proc.name", "%evt.info",
)
# `*` makes sysdig print events whose fields are missing (as <NA>) instead of dropping them.
KIT_FORMAT = "*" + "\t".join((KIT_MARKER,) + _KIT_FIELDS)
# -b: buffers in base64, so they round-trip byte for byte.
KIT_SYSDIG_ARGS = ("-b", "-p", KIT_FORMAT)

NA = "<NA>"
_DEFAULT_LINE = re.compile(
    r"(\d+) (\d\d):(\d\d):(\d\d)\.(\d{9}) (\d+) (.*?) \((-?\d+)\) ([<>]) (\S+)(?: (.*))?\Z", re.DOTALL
)
_PARAM_START = re.compile(r"(?:^| )([A-Za-z_][A-Za-z0-9_]*)=")
# A value of a numeric type never contains a space before its "(decoded)" part.
_NUMERIC_VALUE = re.compile(r"[-\w<>]*(?:\(.*\))?\Z", re.DOTALL)
_NUMERIC_TYPES = {
    "PT_INT8", "PT_INT16", "PT_INT32", "PT_INT64", "PT_UINT8", "PT_UINT16", "PT_UINT32",
    "PT_UINT64", "PT_ERRNO", "PT_FD", "PT_PID", "PT_UID", "PT_GID", "PT_FLAGS8", "PT_FLAGS16",
    "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16", "PT_ENUMFLAGS32", "PT_MODE",
    "PT_SYSCALLID", "PT_SIGTYPE", "PT_SIGSET", "PT_PORT", "PT_L4PROTO", "PT_SOCKFAMILY",
    "PT_BOOL", "PT_DYN",
}
# How each sysdig prints (data/versions.yaml, `text:`): an "era" here is sysdig's major.minor
# ("0.29", "0.41"). Which first exit parameter %evt.rawres reports (0.29.3: res/fd only; 0.41.4
# also the id of get[e]uid/get[e]gid), whether evt.info ends with a space, and which event
# table names the era's parameter types (hex or decimal res, e.g. mmap).


def _pair(era):
    return versions.by_series(era) or versions.default()


@cache
def _res_names(era) -> frozenset:
    return frozenset(_pair(era).text.get("rawres_params") or ("res", "fd", "res_or_fd"))


# --- event tables: the parameter layouts of each event ------------------------------------


def era_table(era) -> str | None:
    """The event table (df.attrs["event_table"]) whose layouts match sysdig `era`'s output."""
    p = versions.by_series(era)
    return p.event_table if p else None


@cache
def _table(name: str) -> dict:
    """(evt name, dir) -> list of distinct layouts, each a tuple of (param name, type, fmt)."""
    path = versions.registry().tables_dir / f"{name}.json"
    out: dict = {}
    for e in json.loads(path.read_text())["events"]:
        layout = tuple((p["name"], p["type"], p["fmt"]) for p in e["params"])
        lst = out.setdefault((e["name"], e["dir"]), [])
        if layout and layout not in lst:
            lst.append(layout)
    return out


@cache
def _table_names() -> tuple:
    return tuple(versions.tables())


@lru_cache(maxsize=4096)
def layouts(evt_type: str, evt_dir: str, era: str | None = None) -> tuple:
    """Known parameter layouts of an event, the era's table first, longest first."""
    names = list(_table_names())
    first = era_table(era)
    if first in names:
        names.remove(first)
        names.insert(0, first)
    seen: list = []
    for n in names:
        for lay in sorted(_table(n).get((evt_type, evt_dir), ()), key=len, reverse=True):
            if lay not in seen:
                seen.append(lay)
    return tuple(seen)


# --- evt.info ------------------------------------------------------------------------------


def _fit(info: str, layout: tuple, occ: dict, i: int, start: int, out: list,
         failed: set | None = None) -> bool:
    """Place parameter i's value at info[start:], the next parameter at one of its
    occurrences; backtrack where a numeric value would contain a space. `failed` remembers
    the (i, start) that cannot fit, so that a line with many `name=` lookalikes costs
    polynomial time, not exponential."""
    if failed is None:
        failed = set()
    elif (i, start) in failed:
        return False
    name, typ, _ = layout[i]
    numeric = typ in _NUMERIC_TYPES
    if i + 1 < len(layout):
        for p in occ.get(layout[i + 1][0], ()):
            if p <= start - 1:
                continue
            value = info[start : p - 1]
            if numeric and not _NUMERIC_VALUE.match(value):
                continue
            out.append((name, value))
            if _fit(info, layout, occ, i + 1, p + len(layout[i + 1][0]) + 1, out, failed):
                return True
            out.pop()
    value = info[start:]  # this parameter is the last one printed
    if numeric and not _NUMERIC_VALUE.match(value):
        failed.add((i, start))
        return False
    out.append((name, value))
    return True


# (type, dir, era, names found) -> the layout that explained exactly those names last time
_SIMPLE: dict = {}


@lru_cache(maxsize=4096)
def _numeric_flags(layout: tuple) -> tuple:
    return tuple(t in _NUMERIC_TYPES for _, t, _ in layout)


def split_info(info: str, evt_type: str, evt_dir: str, era: str | None = None):
    """`name=value ...` -> ([(name, value)], layout or None) using the event's known layouts;
    falls back to splitting at every ` word=` for events no table knows."""
    if not info:
        return [], None
    parts = _PARAM_START.split(info)  # ["", name, value, name, value, ...] in one C call
    names = tuple(parts[1::2])
    key = (evt_type, evt_dir, era, names)
    lay = _SIMPLE.get(key)
    if lay is not None and not parts[0]:  # fast path: each `name=` is the next parameter
        values = parts[2::2]
        if all(_NUMERIC_VALUE.match(v) for v, num in zip(values, _numeric_flags(lay)) if num):
            return list(zip(names, values)), lay
    ms = list(_PARAM_START.finditer(info))
    out, lay = _split_slow(info, evt_type, evt_dir, era, ms)
    if lay is not None and not parts[0] and tuple(n for n, _ in out) == names:
        _SIMPLE[key] = lay
    return out, lay


def _split_slow(info, evt_type, evt_dir, era, ms):
    occ: dict = {}
    for m in ms:
        occ.setdefault(m.group(1), []).append(m.start(1))
    best = None
    for lay in layouts(evt_type, evt_dir, era):
        if not info.startswith(lay[0][0] + "="):
            continue
        out: list = []
        if _fit(info, lay, occ, 0, len(lay[0][0]) + 1, out):
            # the fit that finds the most parameters wins (a shorter layout would let its
            # last value swallow the rest); on a tie, one that uses all of its layout
            score = (len(out), len(out) == len(lay))
            if best is None or score > best[0]:
                best = (score, out, lay)
    if best is not None:
        return best[1], best[2]
    if not ms or ms[0].start() != 0:
        return [("info", info)], None
    out = []
    for m, nxt in zip(ms, [*ms[1:], None]):
        end = nxt.start() if nxt is not None else len(info)
        out.append((m.group(1), info[m.end() : end]))
    return out, None


_LEADING_INT = re.compile(r"(-?)(0x)?([0-9A-Fa-f]+)")


def parse_int(value: str, hex_: bool = False):
    """The leading number of a printed value (`-2(ENOENT)`, `3(<f>/x)`, `AAAB17C29000`), or None."""
    m = _LEADING_INT.match(value)
    if not m or m.end() != len(value) and value[m.end()] != "(":
        return None
    sign, ox, digits = m.groups()
    if len(digits) > 20:  # longer than any 64-bit value: not a number sysdig printed
        return None
    try:
        n = int(digits, 16 if (hex_ or ox) else 10)
    except ValueError:
        return None
    n = -n if sign else n
    if n >= 1 << 63:  # sysdig prints raw values as int64
        n -= 1 << 64
    return n if -(1 << 63) <= n < 1 << 63 else None


def rawres(params: list, layout, evt_dir: str, era: str):
    """%evt.rawres from the printed parameters: the first exit parameter when sysdig counts it
    as the result, decoded per its display format (hex for PF_HEX integers)."""
    if evt_dir != "<" or not params:
        return None
    name, value = params[0]
    if name not in _res_names(era):
        return None
    hex_ = bool(layout) and layout[0][2] == "PF_HEX" and layout[0][1] != "PT_ERRNO"
    return parse_int(value, hex_)


@lru_cache(maxsize=4096)
def _buffer_names(layout: tuple) -> frozenset:
    return frozenset(n for n, t, _ in layout if t == "PT_BYTEBUF")


@lru_cache(maxsize=4096)
def _binary_names(layout: tuple) -> frozenset:
    return frozenset(n for n, t, _ in layout if t in ("PT_BYTEBUF", "PT_SOCKADDR", "PT_SOCKTUPLE"))


def encode_args(params: list, layout, b64: bool) -> list:
    """(name, text) -> (name, bytes): UTF-8 text, or the base64-decoded bytes of buffers when
    sysdig printed them with -b."""
    bufs = _buffer_names(layout) if (b64 and layout) else ()
    binary = _binary_names(layout) if layout else ()
    out = []
    for name, value in params:
        if value == "NULL" and name in binary:
            # 0.41 prints an empty buffer or address so (the 3 bytes b"5B\xcb" in base64,
            # or a 4-byte buffer "NULL", are far rarer than an empty one)
            out.append((name, b""))
            continue
        if name in bufs and value != NA:
            try:
                out.append((name, base64.b64decode(value, validate=True)))
                continue
            except (binascii.Error, ValueError):
                pass
        try:
            out.append((name, value.encode("utf-8", "surrogateescape")))
        except UnicodeEncodeError:  # a lone surrogate from a JSON escape: keep it, as UTF-8
            out.append((name, value.encode("utf-8", "surrogatepass")))
    return out


# --- the batch builder shared with the JSON reader -----------------------------------------


class Batch:
    """Columns of up to `size` events; `frame()` turns them into the frame of docs/frame.md."""

    def __init__(self):
        self.cols = {k: [] for k in (
            "evt_num", "evt_rawtime", "evt_cpu", "thread_tid", "proc_pid", "proc_name",
            "evt_dir", "evt_type", "evt_rawres", "evt_args")}

    def __len__(self):
        return len(self.cols["evt_num"])

    def add(self, num, rawtime, cpu, tid, pid, name, evt_dir, evt_type, res, args):
        c = self.cols
        c["evt_num"].append(num)
        c["evt_rawtime"].append(rawtime)
        c["evt_cpu"].append(cpu)
        c["thread_tid"].append(tid)
        c["proc_pid"].append(pid)
        c["proc_name"].append(name)
        c["evt_dir"].append(evt_dir)
        c["evt_type"].append(evt_type)
        c["evt_rawres"].append(res)
        c["evt_args"].append(args)

    def frame(self, **attrs):
        return make_frame(**self.cols, **attrs)


# Exits whose parameters name the calling thread's tid and pid (sysdig's thread info).
_THREAD_INFO_EXITS = frozenset({"clone", "clone3", "fork", "vfork", "execve", "execveat"})


class Pids:
    """thread tid -> process pid, learned from the `tid=` and `pid=` that clone/fork/execve
    exits print: the default text and `-j` have no pid column, but these events say it."""

    def __init__(self):
        self.by_tid: dict[int, int] = {}

    def pid(self, tid: int, evt_type: str, evt_dir: str, params: list):
        if evt_dir == "<" and evt_type in _THREAD_INFO_EXITS:
            p = dict(params)
            t, pid = parse_int(p.get("tid", "")), parse_int(p.get("pid", ""))
            if t == tid and pid is not None and pid > 0:
                self.by_tid[tid] = pid
                child, flags = parse_int(p.get("res", "")), p.get("flags", "")
                if evt_type != "execve" and child and child > 0 and flags[:1].isdigit():
                    # the parent's side: the child is a new process unless CLONE_THREAD
                    self.by_tid[child] = pid if "CLONE_THREAD" in flags else child
        return self.by_tid.get(tid)


def open_text(path: Path):
    """A text stream over a plain or gzip-compressed file (undecodable bytes kept as-is)."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else open(path, "rb")  # noqa: SIM115 (closed by caller)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="surrogateescape", newline="\n")


def _int_or_none(s: str):
    return None if s == NA or s == "" else int(s)


def _name_or_none(s: str):
    return None if s == NA else s


# --- the reader ----------------------------------------------------------------------------


class _Clock:
    """Time of day -> ns since the epoch, from a date and a time zone; counts midnights."""

    def __init__(self, date, start, tz):
        try:
            self.tz = ZoneInfo(tz or "UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise KitError(f"unknown time zone {tz!r}") from None
        self.guessed = date is None and start is None
        if start is not None:
            if isinstance(start, (int, float)):
                start = dt.datetime.fromtimestamp(start / 1e9, self.tz)
            elif isinstance(start, str):
                start = dt.datetime.fromisoformat(start)
            date = start.astimezone(self.tz).date() if start.tzinfo else start.date()
        if isinstance(date, str):
            try:
                date = dt.date.fromisoformat(date)
            except ValueError:
                raise KitError(f"date {date!r} is not YYYY-MM-DD") from None
        self.date = date or dt.date(1970, 1, 1)
        self.days = 0
        self.last = None
        self.midnights = 0

    def ns(self, h: str, m: str, s: str, frac: str) -> int:
        tod = (int(h) * 3600 + int(m) * 60 + int(s)) * 1_000_000_000 + int(frac)
        if self.last is not None and tod < self.last - 12 * 3600 * 1_000_000_000:
            self.days += 1  # the clock went back by more than half a day: midnight passed
            self.midnights += 1
        self.last = tod
        day = self.date + dt.timedelta(days=self.days)
        midnight = dt.datetime(day.year, day.month, day.day, tzinfo=self.tz)
        return int(midnight.timestamp()) * 1_000_000_000 + tod


class TextReader:
    """sysdig's text output: the default format, or the kit's own (`KIT_FORMAT`)."""

    @staticmethod
    def sniff(head: bytes) -> bool:
        line = head.split(b"\n", 1)[0].decode("utf-8", "replace")
        return line.startswith(KIT_MARKER + "\t") or bool(_DEFAULT_LINE.match(line))

    @classmethod
    def read(cls, path, **kw):
        frames = list(cls.iter_batches(path, batch_size=None, **kw))
        return frames[0]

    @classmethod
    def iter_batches(cls, path, batch_size=1_000_000, date=None, start=None, tz=None,
                     sysdig_version=None):
        """Frames of at most `batch_size` events (all in one when None).

        date/start/tz: see the module doc. sysdig_version ("0.29" or "0.41"): which sysdig
        printed a default-format file (decides how res is printed); detected when None."""
        path = Path(path)
        clock = _Clock(date, start, tz)
        state = {"era": sysdig_version, "kit": None, "warnings": [], "pids": Pids()}
        batch = Batch()
        yielded = False
        seen = 0  # warnings already on a yielded frame
        with open_text(path) as f:
            for n, rec in enumerate(_records(f, path, state["warnings"]), 1):
                try:
                    cls._add(batch, rec, clock, state)
                except (ValueError, OverflowError) as exc:  # a number or field sysdig never prints
                    raise KitError(f"{path}: event {n} of the text is malformed "
                                   f"({short_error(exc)})") from None
                if batch_size and len(batch) >= batch_size:
                    yield cls._frame(batch, path, clock, state)
                    yielded, batch, seen = True, Batch(), len(state["warnings"])
        warn_cut(path, state["warnings"])
        # an empty capture still gives one (empty) frame, and a cut found after the last
        # full batch one that says so
        if len(batch) or not yielded or len(state["warnings"]) > seen:
            yield cls._frame(batch, path, clock, state)

    @staticmethod
    def _frame(batch, path, clock, state):
        warnings = list(state["warnings"])
        if not state["kit"] and clock.guessed and len(batch):
            warnings.append("sysdig's default text has no date: evt_rawtime counts from "
                            "1970-01-01 (pass date= and tz= to read())")
        return batch.frame(source=path, format="text", args_encoding="text",
                           buffers="raw" if state["kit"] else "printed_cut",
                           event_table=era_table(state["era"]), warnings=warnings)

    @staticmethod
    def _add(batch, line, clock, state):
        if line.startswith(KIT_MARKER + "\t"):
            state["kit"] = True
            f = line.split("\t", 10)
            if len(f) < 11:
                raise KitError(f"kit-format line has {len(f)} fields, not 11: {line[:80]!r}")
            _, num, rawt, cpu, tid, pid, d, typ, res, name, info = f
            if d not in (">", "<"):
                raise ValueError(f"direction {d[:20]!r}")
            info = _strip_era_space(info, state)
            params, lay = split_info(info, typ, d, state["era"])
            # sysdig prints -1 for an event without a thread; <NA> would mean the same
            tid = -1 if tid == NA else int(tid)
            batch.add(int(num), int(rawt), int(cpu), tid, _int_or_none(pid),
                      _name_or_none(name), d, typ, _int_or_none(res),
                      encode_args(params, lay, b64=True))
            return
        m = _DEFAULT_LINE.match(line)
        if m is None:  # its first line matched; what followed is no value sysdig prints
            raise ValueError(f"continued by {line.partition(chr(10))[2][:40]!r}")
        num, h, mi, s, frac, cpu, name, tid, d, typ, info = m.groups()
        info = _strip_era_space(info or "", state)
        params, lay = split_info(info, typ, d, state["era"])
        tid = int(tid)
        batch.add(int(num), clock.ns(h, mi, s, frac), int(cpu), tid,
                  state["pids"].pid(tid, typ, d, params),
                  _name_or_none(name), d, typ, rawres(params, lay, d, state["era"]),
                  encode_args(params, lay, b64=False))


def _strip_era_space(info: str, state: dict) -> str:
    """0.29.x ends evt.info with a space after the last parameter, 0.41 does not: tell the
    era from the first event with parameters (the newest registered sysdig that prints so),
    and drop that one space."""
    if state["era"] is None and info.strip():
        state["era"] = _era_of(info.endswith(" "))
    if info.endswith(" ") and _pair(state["era"]).text.get("trailing_space"):
        return info[:-1]
    return info


@cache
def _era_of(trailing_space: bool) -> str:
    return next((p.series for p in reversed(versions.pairs())
                 if bool(p.text.get("trailing_space")) == trailing_space), versions.default().series)


def warn_cut(path, found: list) -> None:
    """A truncated text or JSON output warns like a truncated scap (and says so in attrs)."""
    for w in found:
        if "cut" in w or "ends early" in w:
            pywarnings.warn(f"{path}: {w}", stacklevel=4)


def lines(f, warnings: list):
    """The lines of f; a gzip stream that ends early stops them with a warning."""
    n = 0
    try:
        for line in f:
            n += 1
            yield line
    except EOFError:
        warnings.append(f"compressed stream ends early: kept the {n:,} lines before the cut")
    except (OSError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        name = getattr(f.buffer, "name", "") or ""
        raise KitError(f"{name}: corrupt gzip stream after line {n:,} ({exc})") from None


def short_error(exc: BaseException) -> str:
    """An exception's message on one short line (it may quote hostile input)."""
    return " ".join(str(exc).split())[:160]


def cut_line(line: str, n: int, warnings: list) -> bool:
    """sysdig ends every line it prints with a newline: a last line without one was cut (the
    output was truncated) and is dropped with a warning rather than read as an event."""
    if line.endswith("\n"):
        return False
    warnings.append(f"output cut in its last line ({len(line)} characters without a newline, "
                    f"dropped): kept the {n:,} complete events before it")
    return True


def _records(f, path, warnings):
    """Whole events: a line that does not start an event continues the previous one (values
    such as a container's JSON or a file name can hold a newline)."""
    cur = None
    kit = None
    n = 0
    for line in lines(f, warnings):
        if cut_line(line, n + (cur is not None), warnings):
            break
        line = line.removesuffix("\n")
        if kit is None and line.strip():
            kit = line.startswith(KIT_MARKER + "\t")
        if line.startswith(KIT_MARKER + "\t") if kit else _DEFAULT_LINE.match(line):
            if cur is not None:
                n += 1
                yield cur
            cur = line
        elif cur is None:
            if not line.strip():
                continue
            shown = repr(line[:60])
            if "\x1b[" in line:
                shown = "terminal colour codes (print it again without colour)"
            elif any(c < " " and c != "\t" for c in line[:200]):
                shown = "binary data"  # never dumped into the error line
            raise KitError(f"{path}: not sysdig text output at line 1: {shown}")
        else:
            cur += "\n" + line
    if cur is not None:
        yield cur
