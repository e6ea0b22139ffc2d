"""events(frame, type): typed parameter columns equal what the real sysdig prints for
%evt.arg.X on the oracle captures (both eras), and decoding is column-wise (fast)."""

from __future__ import annotations

import time

import oracle
import pandas as pd
import pytest

import sysdig_kit
from sysdig_kit.errors import KitError
from sysdig_kit.read import decode_args, eventtable, read
from sysdig_kit.read.args import SIGNED, STRINGS, UNSIGNED
from sysdig_kit.read.typed import flag_names

DATA = oracle.DATA
OLD_ERA = DATA / "arm64" / "old-era-zsh-s4096.scap"
NEW_ERA = DATA / "arm64" / "new-era-zsh-name.scap"
CAT_WRITE = DATA / "public" / "falco__trace_files_cat_write.scap"
BIG = DATA / "public" / "sysdig-inspect__502Error.scap"
# (capture, judge): each era read by the sysdig of its era
CASES = [(OLD_ERA, "old"), (NEW_ERA, "new"), (CAT_WRITE, "old"), (BIG, "old")]
TYPES = ["openat", "open", "read", "write", "close", "mmap", "fstat", "newfstatat", "rt_sigaction",
         "clone", "socket", "connect", "sendto", "recvfrom", "fcntl", "ioctl", "pread", "access"]
SKIP_TYPES = {"PT_SOCKADDR", "PT_SOCKTUPLE", "PT_FDLIST", "PT_DYN", "PT_CHARBUFARRAY",
              "PT_CHARBUF_PAIR_ARRAY", "PT_PID", "PT_UID", "PT_GID", "PT_SIGTYPE", "PT_MODE",
              "PT_RELTIME", "PT_ABSTIME", "PT_SIGSET", "PT_L4PROTO", "PT_SOCKFAMILY", "PT_PORT",
              "PT_DOUBLE", "PT_BOOL", "PT_SYSCALLID", "PT_IPV4ADDR", "PT_IPV6ADDR", "PT_IPNET"}

pytestmark = pytest.mark.oracle


def _params(table: str, etype: str) -> dict[str, tuple[str, str]]:
    """{param: (type, fmt)} of both directions of `etype` in `table` (exit wins)."""
    t = eventtable.load(table)
    out = {}
    for d in (">", "<"):
        for code in t.code.get((etype, d), [])[-1:]:
            for p in t.params(code):
                out.setdefault(p["name"], (p["type"], p["fmt"]))
    return out


def _printable(b: bytes, which: str) -> str:
    """sysdig's default rendering of a buffer: non-printable bytes as '.', at most 80
    characters (longer ones cut to 77 + '...'), an empty one as NULL."""
    if not b:
        return "NULL" if which == "new" else ""
    s = "".join(chr(c) if 32 <= c < 127 else "." for c in b)
    return s if len(s) <= 80 else s[:77] + "..."


def _expect(v, extra: dict, ptype: str, fmt: str, which: str) -> str | None:
    """What sysdig prints for our value; None: not comparable (an fd sysdig resolves to a
    file name)."""
    if v is None or (not isinstance(v, bytes) and pd.isna(v)):
        return "<NA>"
    if ptype in ("PT_FLAGS8", "PT_FLAGS16", "PT_FLAGS32", "PT_ENUMFLAGS8", "PT_ENUMFLAGS16",
                 "PT_ENUMFLAGS32"):
        return v if v else str(extra["raw"])
    if ptype == "PT_FD":
        if v == -100:
            return "AT_FDCWD"
        return extra["errno"] if v < 0 else None
    if ptype == "PT_ERRNO":
        return extra["errno"] if v < 0 and extra["errno"] is not pd.NA else str(v)
    if ptype in SIGNED or ptype in UNSIGNED:
        if fmt == "PF_HEX":
            return f"{v:X}"
        if fmt == "PF_OCT":
            return f"0{v:o}" if v else "0"
        return str(v)
    if ptype in STRINGS:
        return v
    return _printable(v, which)


def compare(path, which, types=TYPES):
    df = read(path)
    table = df.attrs["event_table"]
    checked, bad = 0, []
    for etype in types:
        if not (df.evt_type == etype).any():
            continue
        params = {k: v for k, v in _params(table, etype).items() if v[0] not in SKIP_TYPES}
        if not params:
            continue
        names = list(params)
        fmt = "*%evt.num\t" + "\t".join(f"%evt.arg.{n}" for n in names)
        text = oracle.run(which, str(path), fmt, f"evt.type={etype}")
        want = {}
        for ln in text.splitlines():
            f = ln.split("\t")
            if f[0].isdigit() and len(f) == len(names) + 1:
                want[int(f[0])] = f[1:]
        ev = sysdig_kit.events(df, etype)
        assert set(ev.evt_num) == set(want), f"{path.name} {etype}: other events than sysdig's"
        for i, num in enumerate(ev.evt_num.to_numpy()):
            for j, n in enumerate(names):
                ptype, pfmt = params[n]
                v = ev[n].iloc[i] if n in ev else None
                extra = {"raw": ev[f"{n}_raw"].iloc[i] if f"{n}_raw" in ev else None,
                         "errno": ev[f"{n}_errno"].iloc[i] if f"{n}_errno" in ev else None}
                exp = _expect(v, extra, ptype, pfmt, which)
                if exp is None:
                    continue
                checked += 1
                if exp != want[num][j]:
                    bad.append((etype, int(num), n, exp, want[num][j]))
    return checked, bad


@pytest.mark.parametrize("path,which", CASES, ids=lambda x: getattr(x, "name", x))
def test_events_values_equal_sysdig(path, which):
    checked, bad = compare(path, which)
    assert checked > 100, checked
    assert not bad, f"{len(bad)} of {checked} values differ, first: {bad[:5]}"


def test_events_columns_and_dtypes():
    ev = sysdig_kit.events(NEW_ERA, "openat")
    assert str(ev.evt_time.dtype) == "datetime64[ns]"
    assert (ev.evt_time.astype("int64") == ev.evt_rawtime).all()
    assert str(ev.fd.dtype) == "Int64" and str(ev.name.dtype) == "string"
    assert str(ev["flags"].dtype) == "category" and "O_RDONLY|O_CLOEXEC" in set(ev["flags"])
    neg = ev[ev.fd < 0]
    assert len(neg) and "ENOENT" in set(neg.fd_errno)
    rd = sysdig_kit.events(NEW_ERA, "read")
    has = rd.data.notna()
    assert has.sum() > 10 and (rd.data[has].map(len) == rd.data_len[has]).all()
    assert rd.data_len[~has].isna().all()
    with pytest.raises(KitError):
        sysdig_kit.events(pd.DataFrame({"a": [1]}), "read")


def test_flag_rendering_like_libsinsp():
    tab = [(0, "PROT_NONE"), (1, "PROT_READ"), (2, "PROT_WRITE")]
    assert flag_names(0, "PT_FLAGS32", tab) == "PROT_NONE"
    assert flag_names(3, "PT_FLAGS32", tab) == "PROT_READ|PROT_WRITE"
    assert flag_names(2, "PT_ENUMFLAGS32", tab) == "PROT_WRITE"


def test_events_at_least_10x_faster_than_decode_args_loop():
    """CPU time (the shared machine's load moves wall time), best of 2 for the loop and of 5
    for events(), on ~380k events (the public capture 40 times over: per-call costs amortise
    as they would on a real capture). The loop got faster this session (param_types' tables
    loaded once): ~12x quiet, ~9x when another test suite shares the 2 cores."""
    one = read(BIG)
    df = pd.concat([one] * 40, ignore_index=True)
    df.attrs = one.attrs
    types = df.evt_type.value_counts().index[:8].tolist()
    sub = df[df.evt_type.isin(types)]
    table = df.attrs["event_table"]
    loop = float("inf")
    for _ in range(2):  # best of 2 too: both sides' CPU time grows with the machine's load
        t0 = time.process_time()
        for row in sub.itertuples():
            decode_args(row.evt_type, row.evt_dir, row.evt_args, table=table)
        loop = min(loop, time.process_time() - t0)
    vec = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        n = sum(len(sysdig_kit.events(df, t)) for t in types)
        vec = min(vec, time.process_time() - t0)
    assert n == len(sub)
    print(f"{len(sub)} events: loop {loop:.3f}s, events() {vec:.3f}s, {loop / vec:.1f}x")
    assert loop / vec >= 10, f"{len(sub)} events: loop {loop:.3f}s, events() {vec:.3f}s"
