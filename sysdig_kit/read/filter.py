"""sysdig's filter language on frames: `compile_filter("proc.name=zsh and evt.rawres<0")`.

A small recursive-descent parser (precedence: `not` > `and` > `or`, parentheses) compiled to a
pandas boolean mask over the frame's columns. Only fields the frame holds are accepted; any
other is a one-line KitError naming it. Semantics follow libsinsp's: a comparison on a field
the event does not have (NA, e.g. `evt.rawres` on an enter event) is false, also under `!=`;
`exists` is true where the field has a value.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ..errors import KitError

# sysdig field -> (frame column, kind)
FIELDS = {
    "evt.num": ("evt_num", "int"),
    "evt.rawtime": ("evt_rawtime", "int"),
    "evt.cpu": ("evt_cpu", "int"),
    "evt.dir": ("evt_dir", "str"),
    "evt.type": ("evt_type", "str"),
    "evt.rawres": ("evt_rawres", "int"),
    "thread.tid": ("thread_tid", "int"),
    "proc.pid": ("proc_pid", "int"),
    "proc.name": ("proc_name", "str"),
    # libsinsp's: the thread's last fd, from the fd table replayed over a scap capture (see
    # with_fd_state); on sysdig's text/JSON output, the event's own `fd` parameter or the
    # result of an fd-creating call (see _with_fd)
    "fd.num": ("fd_num", "int"),
    # SUCCESS, or the errno name of a negative result (see _with_res)
    "evt.res": ("evt_res", "str"),
    # the name of the fd the event refers to, from the fd table libsinsp keeps (fdtable.py;
    # computed only when a filter names it: with_fd_state)
    "fd.name": ("fd_name", "str"),
}
_FDNAME = re.compile(r"\bfd\.name\b")
_FDNUM = re.compile(r"\bfd\.num\b")
_ARG = re.compile(r"\bevt\.(arg|rawarg)\.([A-Za-z_][A-Za-z0-9_]*)")
CMP = ("<=", ">=", "!=", "=", "==", "<", ">")
WORD_OPS = ("in", "contains", "icontains", "startswith", "endswith", "exists", "pmatch")
_TOKEN = re.compile(r"""\s*(?:(?P<lp>\()|(?P<rp>\))|(?P<comma>,)|(?P<op><=|>=|!=|==|=|<|>)
                     |(?P<q>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<w>[^\s(),=<>!"']+))""",
                    re.VERBOSE)


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise KitError(f"filter: cannot parse at {text[pos:pos + 20]!r} (position {pos})")
        pos = m.end()
        kind = m.lastgroup
        val = m.group(kind)
        if kind == "q":
            kind, val = "w", re.sub(r"\\(.)", r"\1", val[1:-1])
            out.append(("q", val))
            continue
        out.append((kind, val))
    return out


class _Parser:
    def __init__(self, text: str, df: pd.DataFrame):
        self.text, self.df = text, df
        self.unknown = df.attrs.get("unknown_fields", {})  # field -> (rows, why)
        self.why: list[str] = []
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, k: int = 0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None)

    def take(self):
        t = self.peek()
        self.i += 1
        return t

    def word(self, w: str) -> bool:
        kind, val = self.peek()
        return kind == "w" and val.lower() == w

    def parse(self) -> np.ndarray:
        if not self.toks:
            raise KitError("filter: empty")
        v, k = self.or_()
        if self.i < len(self.toks):
            raise KitError(f"filter: unexpected {self.peek()[1]!r} in {self.text!r}")
        if not k.all():  # the result of some event hangs on a value only sysdig's tables give
            raise KitError(f"filter: {self.why[0]} ({int((~k).sum())} events undecided)")
        return v

    # Masks are (value, known) pairs: Kleene's three-valued logic, so a value the frame cannot
    # give (self.unknown) only refuses the filter where it would decide an event's outcome.
    def or_(self):
        v, k = self.and_()
        while self.word("or"):
            self.take()
            v2, k2 = self.and_()
            v, k = v | v2, (k & k2) | (k & v) | (k2 & v2)
        return v, k

    def and_(self):
        v, k = self.not_()
        while self.word("and"):
            self.take()
            v2, k2 = self.not_()
            v, k = v & v2, (k & k2) | (k & ~v) | (k2 & ~v2)
        return v, k

    def not_(self):
        if self.word("not"):
            self.take()
            v, k = self.not_()
            return ~v & k, k
        return self.atom()

    def atom(self):
        kind, val = self.take()
        if kind == "lp":
            m = self.or_()
            if self.take()[0] != "rp":
                raise KitError(f"filter: missing ')' in {self.text!r}")
            return m
        if kind != "w":
            raise KitError(f"filter: expected a field, got {val!r} in {self.text!r}")
        col, ftype = self.field(val)
        known = self.known(val)
        okind, op = self.take()
        if okind == "op":
            return self.compare(val, col, ftype, op, self.value()) & known, known
        if okind == "w" and op.lower() in WORD_OPS:
            op = op.lower()
            if op == "exists":
                return col.notna().to_numpy(bool) | ~known, known
            if op in ("in", "pmatch"):
                return self.member(val, col, ftype, self.values_list()) & known, known
            return self.strop(val, col, op, self.value()) & known, known
        raise KitError(f"filter: expected an operator after {val}, got {op!r}")

    def known(self, name: str) -> np.ndarray:
        hit = self.unknown.get(name)
        if hit is None:
            return np.ones(len(self.df), dtype=bool)
        if hit[0].any():
            self.why.append(hit[1])
        return ~hit[0]

    def field(self, name: str):
        if name.startswith(("evt.arg.", "evt.rawarg.")) and name in self.df.columns:
            col = self.df[name]  # added by _with_args
            return col, "int" if str(col.dtype) == "Int64" else "str"
        if name not in FIELDS:
            known = ", ".join([*FIELDS, "evt.arg.NAME", "evt.rawarg.NAME"])
            raise KitError(f"filter: unsupported field {name!r} (this frame's fields: {known})")
        cname, ftype = FIELDS[name]
        if cname not in self.df.columns:
            raise KitError(f"filter: field {name!r} is not known for this capture "
                           f"(no {cname} column)")
        return self.df[cname], ftype

    def value(self) -> str:
        kind, val = self.take()
        if kind not in ("w", "q"):
            raise KitError(f"filter: expected a value, got {val!r} in {self.text!r}")
        return val

    def values_list(self) -> list[str]:
        if self.take()[0] != "lp":
            raise KitError(f"filter: 'in' needs a list in parentheses in {self.text!r}")
        vals = []
        while True:
            vals.append(self.value())
            kind, _ = self.take()
            if kind == "rp":
                return vals
            if kind != "comma":
                raise KitError(f"filter: expected ',' or ')' in the list in {self.text!r}")

    @staticmethod
    def _num(field: str, v: str) -> int:
        try:
            return int(v, 0)
        except ValueError:
            raise KitError(f"filter: {field} takes a number, not {v!r}") from None

    def compare(self, field, col, ftype, op, v) -> np.ndarray:
        if ftype == "int":
            x, v = col.astype("Int64"), self._num(field, v)
        else:
            x = col.astype("string")
        res = {"=": x == v, "==": x == v, "!=": x != v, "<": x < v, ">": x > v,
               "<=": x <= v, ">=": x >= v}[op]
        return res.fillna(False).to_numpy(bool)

    def member(self, field, col, ftype, vals) -> np.ndarray:
        if ftype == "int":
            return col.astype("Int64").isin([self._num(field, v) for v in vals]).fillna(
                False).to_numpy(bool)
        return col.astype("string").isin(vals).fillna(False).to_numpy(bool)

    def strop(self, field, col, op, v) -> np.ndarray:
        s = col.astype("string")
        if op == "contains":
            r = s.str.contains(v, regex=False)
        elif op == "icontains":
            r = s.str.lower().str.contains(v.lower(), regex=False)
        elif op == "startswith":
            r = s.str.startswith(v)
        else:
            r = s.str.endswith(v)
        return r.fillna(False).to_numpy(bool)


def _with_fd(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """Adds fd_num from the events' own `fd` parameter when the filter asks for fd.num."""
    if "fd.num" not in text or "fd_num" in df.columns:
        return df
    from .typed import events

    fd = pd.array([pd.NA] * len(df), dtype="Int64")
    out = df.copy()
    pos = pd.Series(np.arange(len(df)), index=df["evt_num"].to_numpy())
    table = df.attrs.get("event_table")
    creates = _creates_fd(table) if table else set()
    for t in df["evt_type"].astype(str).unique():
        ev = events(df, t)
        v = ev["fd"].astype("Int64") if "fd" in ev.columns else pd.Series(
            pd.array([pd.NA] * len(ev), dtype="Int64"))
        if t in creates or t == "fcntl":
            # libsinsp: the exit of an fd-creating call refers to the new fd (its result);
            # fcntl only creates one for F_DUPFD*
            new = (ev.evt_dir == "<") & (ev.evt_rawres >= 0).fillna(False)
            if t == "fcntl":
                new &= ev["cmd"].astype(str).str.startswith("F_DUPFD") if "cmd" in ev else False
            v = v.where(~new.to_numpy(bool), ev.evt_rawres.astype("Int64"))
        fd[pos.loc[ev.evt_num.to_numpy()].to_numpy()] = v.array
    out["fd_num"] = fd
    return out


def _with_res(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """evt_res as sysdig shows it: SUCCESS for a result >= 0, else its errno name (the number
    when the name is not known); NA where the event has no result."""
    if "evt.res" not in text or "evt_res" in df.columns or "evt_rawres" not in df.columns:
        return df
    from .typed import errno_names

    raw = df["evt_rawres"].astype("Int64")
    names = errno_names()
    neg = raw[raw < 0].dropna().unique()
    lut = {int(v): names.get(-int(v), str(int(v))) for v in neg}
    res = pd.Series("SUCCESS", index=df.index, dtype="string").where(raw.notna(), pd.NA)
    bad = (raw < 0).fillna(False).to_numpy(bool)
    res[bad] = raw[bad].map(lambda v: lut[int(v)]).astype("string")
    out = df.copy()
    out["evt_res"] = res
    return out


def _with_args(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """A column per `evt.arg.NAME` the filter names, as sysdig prints and compares it
    (render.arg_text: strings, flag names, numbers in their print format, errno and signal
    names, buffers as text); and per `evt.rawarg.NAME`, the value as the event holds it
    (numbers as Int64). Parameters sysdig renders from its thread/fd/user tables are refused
    (render.Unrenderable, a KitError naming evt.rawarg.NAME)."""
    want = sorted({(k, n) for k, n in _ARG.findall(text)} - {
        tuple(str(c).split(".")[1:]) for c in df.columns if str(c).startswith("evt.")})
    if not want:
        return df
    from .args import param_info
    from .render import arg_text_partial, rawarg
    from .typed import events

    table = df.attrs.get("event_table")
    pos = pd.Series(np.arange(len(df)), index=df["evt_num"].to_numpy())
    cols = {w: np.full(len(df), None, dtype=object) for w in want}
    ints = {w: True for w in want}
    unknown: dict[str, tuple[np.ndarray, str]] = {}
    for t in df["evt_type"].astype(str).unique():
        spec = {**param_info(t, ">", table), **param_info(t, "<", table)}  # exit's wins
        have = [w for w in want if w[1] in spec]
        if not have:
            continue
        ev = events(df, t)
        at = pos.loc[ev["evt_num"].to_numpy()].to_numpy()
        printed = df.attrs.get("args_encoding", "scap") != "scap"
        for kind, n in have:
            ptype, fmt = spec[n]
            if kind == "arg" and printed:  # text/JSON: sysdig's own text of each value
                vals, unk = _printed_arg(df, at, t, n, ptype, table)
                ints[(kind, n)] = False
                if unk[1] is not None:
                    rows = unknown.setdefault(f"evt.arg.{n}", (np.zeros(len(df), bool), unk[1]))[0]
                    rows[at[unk[0]]] = True
            elif kind == "arg" and ptype == "PT_FD" and f"fdarg.{n}" in df.columns:
                # resolved through the fd table by with_fd_state
                vals = pd.Series(df[f"fdarg.{n}"].to_numpy(dtype=object)[at])
                ints[(kind, n)] = False
            elif kind == "arg":
                vals, unk, why = arg_text_partial(ev, n, ptype, fmt, t)
                ints[(kind, n)] = False
                if unk.any():
                    rows = unknown.setdefault(f"evt.arg.{n}", (np.zeros(len(df), bool), why))[0]
                    rows[at[unk]] = True
            else:
                vals, k = rawarg(ev, n, ptype)
                ints[(kind, n)] &= k == "int"
            cols[(kind, n)][at] = vals.to_numpy(dtype=object, na_value=None)
    out = df.copy()
    out.attrs = {**df.attrs, "unknown_fields": {**df.attrs.get("unknown_fields", {}), **unknown}}
    for w in want:
        try:
            out[f"evt.{w[0]}.{w[1]}"] = pd.array(cols[w], dtype="Int64" if ints[w] else "string")
        except (OverflowError, TypeError, UnicodeEncodeError):
            # a uint64 beyond int64: compared as text; undecodable bytes: as \xNN
            from .frame import printable

            out[f"evt.{w[0]}.{w[1]}"] = pd.array(
                [None if v is None else printable(str(v)) for v in cols[w]], dtype="string")
    return out


def _printed_arg(df, at, etype, name, ptype, table):
    """(text, (unknown rows, why)) of parameter `name` of the rows `at` of a text/JSON frame."""
    from .args import param_info
    from .render import printed_arg_partial

    raws, expected = [], np.zeros(len(at), dtype=bool)
    dirs = df["evt_dir"].astype(str).to_numpy()[at]
    from . import eventtable

    own = eventtable.load(table) if table else None
    has = {}
    for d in (">", "<"):  # the event's own parameters (not the generic syscall's fallback)
        codes = own.code.get((etype, d), []) if own else []
        has[d] = name in (own.param_names(codes[-1]) if codes else param_info(etype, d, table))
    for i, args in enumerate(df["evt_args"].to_numpy()[at]):
        got = None
        for a in args if args is not None else ():
            nm, val = (a["name"], a["value"]) if isinstance(a, dict) else a
            if nm == name:
                got = val
                break
        raws.append(got)
        expected[i] = has.get(dirs[i], False)
    text, unknown, why = printed_arg_partial(raws, expected, name, ptype, etype)
    return text, (unknown, why)


def _fd_args(df: pd.DataFrame, text: str) -> list[str]:
    """The evt.arg.NAME of `text` that are file descriptors of some event."""
    names = {n for k, n in _ARG.findall(text) if k == "arg"} - {
        c[6:] for c in df.columns if str(c).startswith("fdarg.")}
    if not names:
        return []
    from . import eventtable

    t = eventtable.load(df.attrs.get("event_table") or eventtable.NEW)
    fds = {p["name"] for e in t.events for p in e["params"] if p["type"] == "PT_FD"}
    return sorted(names & fds)


def with_fd_state(df: pd.DataFrame, text: str | None, walker=None) -> pd.DataFrame:
    """`df` plus what the filter `text` needs from libsinsp's fd table: `fd_name`, `fd_num`
    and, per fd argument it names, `fdarg.NAME` (sysdig's resolved `<f>/etc/passwd`), in one pass
    over `df`, which must be the whole capture (or, with `walker`, its next batch). Nothing is
    added (and nothing computed) when the filter names neither."""
    if not text or not isinstance(text, str):
        return df
    name = bool(_FDNAME.search(text)) and "fd_name" not in df.columns
    scap = df.attrs.get("args_encoding", "scap") == "scap"
    # (a text/JSON frame holds fd arguments as sysdig printed them, resolved: _printed_arg)
    args = _fd_args(df, text) if "evt.arg." in text and scap else []
    num = scap and bool(_FDNUM.search(text)) and "fd_num" not in df.columns
    if not name and not args and not num:
        return df
    if not scap:
        what = "fd.name" if name else f"evt.arg.{args[0]}"
        raise KitError(f"filter: {what} needs the fd table of a scap capture; sysdig's "
                       f"text/JSON output does not hold one (filter the .scap, or match the "
                       f"printed evt.info)")
    from .fdwalk import columns
    from .frame import _strings

    out = df.copy()
    for col, vals in columns(df, name, args, walker, fd_num=num).items():
        # names from undecodable path bytes hold lone surrogates: _strings shows them as \xNN
        out[col] = (pd.array(vals, dtype="Int64") if col == "fd_num"
                    else _strings(vals, "string"))
    return out


def drop_fd_state(df: pd.DataFrame, before: pd.DataFrame) -> pd.DataFrame:
    """`df` without the columns with_fd_state added to `before`."""
    extra = [c for c in df.columns if c not in before.columns]
    if not extra:
        return df
    out = df.drop(columns=extra)
    out.attrs = df.attrs
    return out


def _creates_fd(table: str) -> set[str]:
    from . import eventtable

    t = eventtable.load(table)
    return {e["name"] for e in t.events if "EF_CREATES_FD" in e["flags"]}


def compile_filter(df: pd.DataFrame, text: str) -> np.ndarray:
    """The boolean mask of the events of `df` that `text` (a sysdig filter) keeps."""
    if not isinstance(text, str):
        raise KitError(f"filter: expected a string, got {type(text).__name__}")
    return evaluate(prepare(df, text), text)


def prepare(df: pd.DataFrame, text: str) -> pd.DataFrame:
    """`df` plus a column per derived field `text` names (fd.num, fd.name, evt.res,
    evt.arg.NAME, evt.rawarg.NAME), as the filter compares them."""
    return _with_args(_with_res(_with_fd(with_fd_state(df, text), text), text), text)


def evaluate(df: pd.DataFrame, text: str) -> np.ndarray:
    """compile_filter on a frame that already holds the fields `text` names (prepare, or
    columns named as the fields: `evt.arg.NAME`, `evt_res`, ...)."""
    return _Parser(text, df).parse()


def apply_filter(df: pd.DataFrame, text: str | None) -> pd.DataFrame:
    if not text:
        return df
    out = df[compile_filter(df, text)].reset_index(drop=True)
    out.attrs = df.attrs
    return out
