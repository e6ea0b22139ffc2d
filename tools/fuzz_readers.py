#!/usr/bin/env python3
"""Mutation campaign against the readers: every mutant of a real capture must give a result,
a result with a warning, or a one-line KitError.

    python3 tools/fuzz_readers.py --mutants 100000 --seed 1 --workers 2     # the long campaign
    python3 tools/fuzz_readers.py --seed 1 --only 4711 --keep /tmp/m         # replay one mutant

Seeds are the captures in tests/data/fuzz/ (scap raw and gzip, sysdig text and JSON of both
eras; tests/data/fuzz/README.md). Mutant i of seed S is made by `random.Random(f"{S}:{i}")`,
so a failure is reproduced from its (seed, index) alone. Each mutant goes through `read()`,
`replay.build()`, `replay.check.check()`, `iter_batches()` → `build_batches()`, the file
entry points the CLI runs (`replay.build_file()`, `replay.check_file()`: a scap as the
reader's raw columns), show's
default lines and (scap) an fd.name filter, which walk the fd table, and events() of every
event type in a worker
process that runs under a 4 GiB address-space limit (RLIMIT_AS); a mutant that takes longer
than 10 s is a hang (the worker is killed and replaced). Anything but a result, a warning or
a one-line KitError — another exception, a MemoryError, a hang, a dead worker — is a failure.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import random
import select
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "tests" / "data" / "fuzz"
AS_LIMIT = 4 << 30
TIMEOUT = 10.0
BOUNDARY = (0, 1, 2, 3, 4, 8, 11, 12, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF,
            0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFC, 0xFFFFFFFF)


# --- seeds ----------------------------------------------------------------------------------


def seeds(root: Path = SEEDS) -> list[tuple[str, str, bytes]]:
    """(name, format, bytes as read from disk) of every seed capture."""
    out = []
    for p in sorted(root.iterdir()):
        fmt = {".scap": "scap", ".txt": "text", ".json": "json"}.get(p.suffix.removesuffix(".gz"))
        if p.name.endswith(".gz"):
            fmt = {".scap": "scap", ".txt": "text", ".json": "json"}.get(Path(p.stem).suffix)
        if fmt:
            out.append((p.name, fmt, p.read_bytes()))
    return out


def _inflate(data: bytes) -> tuple[bytes, bool]:
    if data[:2] == b"\x1f\x8b":
        return gzip.decompress(data), True
    return data, False


# --- scap mutations -------------------------------------------------------------------------


def blocks(data: bytes) -> list[tuple[int, int, int]]:
    """(offset, type, length) of the blocks that chain from offset 0."""
    out, off = [], 0
    while off + 8 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if blen < 12 or blen % 4 or off + blen > len(data):
            break
        out.append((off, btype, blen))
        off += blen
    return out


EVENT_BLOCKS = {0x204, 0x8010ABCD, 0x208, 0x216, 0x221, 0x217, 0x222}


def _length_fields(data: bytes, rng: random.Random) -> list[tuple[int, int]]:
    """(offset, width) of length-like fields of a random block: its two block lengths and,
    for events, the event length, parameter count and parameter lengths."""
    bl = blocks(data)
    if not bl:
        return [(4, 4)] if len(data) >= 8 else []
    off, btype, blen = rng.choice(bl)
    fields = [(off + 4, 4), (off + blen - 4, 4)]
    if btype in EVENT_BLOCKS:
        hdr = off + 10 + (4 if btype in (0x208, 0x217, 0x222) else 0)
        fields.append((hdr + 16, 4))  # event length
        v2 = btype in (0x216, 0x221, 0x217, 0x222)
        if v2:
            fields.append((hdr + 22, 4))  # nparams
        lens = hdr + (26 if v2 else 22)
        fields += [(lens + 2 * k, 2) for k in range(6) if lens + 2 * k + 2 <= off + blen - 4]
        fields += [(lens + 4 * k, 4) for k in range(3) if lens + 4 * k + 4 <= off + blen - 4]
    elif blen > 16:  # metadata: lengths of its entries are somewhere in the body
        fields += [(off + 8 + 2 * rng.randrange((blen - 12) // 2), 2) for _ in range(3)]
        fields += [(off + 8 + 4 * rng.randrange((blen - 12) // 4), 4) for _ in range(2)]
    return [f for f in fields if f[0] + f[1] <= len(data)]


def m_bitflip(b: bytearray, rng, **_):
    for _ in range(rng.choice((1, 1, 2, 4, 16))):
        if b:
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    return b


def m_bytes(b: bytearray, rng, **_):
    for _ in range(rng.choice((1, 2, 8))):
        if b:
            i = rng.randrange(len(b))
            n = rng.choice((1, 2, 4, 8))
            b[i:i + n] = bytes([rng.choice((0, 0xFF, 0x7F, 0x80, rng.randrange(256)))]) * n
    return b


def m_length(b: bytearray, rng, **_):
    fields = _length_fields(bytes(b), rng)
    for _ in range(rng.choice((1, 1, 2))):
        if not fields:
            break
        off, width = rng.choice(fields)
        old = int.from_bytes(b[off:off + width], "little")
        val = rng.choice(BOUNDARY + (old + 4, old - 4, old * 2, len(b), len(b) + 4, old ^ 0x8000))
        b[off:off + width] = (val % (1 << (8 * width))).to_bytes(width, "little")
    return b


def m_truncate(b: bytearray, rng, **_):
    bl = blocks(bytes(b))
    if bl and rng.random() < 0.5:  # around a block boundary
        off = rng.choice(bl)[0] + rng.choice((0, 1, 4, 7, 8, 12, 20, 30))
    else:
        off = rng.randrange(len(b) + 1) if b else 0
    return b[:off]


def m_splice(b: bytearray, rng, other: bytes, **_):
    """The head of this capture and the tail of another (or of itself)."""
    bl, ob = blocks(bytes(b)), blocks(other)
    if bl and ob and rng.random() < 0.5:
        cut = rng.choice(bl)[0]
        start = rng.choice(ob)[0]
    else:
        cut = rng.randrange(len(b) + 1) if b else 0
        start = rng.randrange(len(other) + 1) if other else 0
    return b[:cut] + other[start:]


def m_blocks(b: bytearray, rng, **_):
    """Drop, repeat or swap whole blocks."""
    bl = blocks(bytes(b))
    if len(bl) < 3:
        return m_bitflip(b, rng)
    i, j = sorted(rng.sample(range(1, len(bl)), 2))
    (o1, _, l1), (o2, _, l2) = bl[i], bl[j]
    what = rng.randrange(3)
    if what == 0:
        return b[:o1] + b[o1 + l1:]
    if what == 1:
        return b[:o1 + l1] + b[o1:o1 + l1] * rng.choice((1, 2, 100)) + b[o1 + l1:]
    return b[:o1] + b[o2:o2 + l2] + b[o1 + l1:o2] + b[o1:o1 + l1] + b[o2 + l2:]


SCAP_KINDS = {"bitflip": m_bitflip, "bytes": m_bytes, "length": m_length,
              "truncate": m_truncate, "splice": m_splice, "blocks": m_blocks}


# --- text / JSON mutations ------------------------------------------------------------------

_NASTY = [
    "9" * 5000, "-" + "9" * 400, "0x" + "f" * 4000, str(1 << 63), str(1 << 64), "-1", "0x", "1e400", "NaN", "",
    "<NA>", "\udc80", "\ud800", "\x1b[31m", "\x1b[0m", "\x00", "\r", "\t", "(", ")", "=",
    " res=", "\u202e", "😀", "(" * 1000, "=" * 1000, "a=" * 2000, "\\", '"', "\n",
]


def _lines(b: bytearray) -> list[bytes]:
    return bytes(b).split(b"\n")


def t_token(b: bytearray, rng, **_):
    """A number, word or character of a random line replaced with something hostile."""
    ls = _lines(b)
    for _ in range(rng.choice((1, 1, 3))):
        i = rng.randrange(len(ls))
        s = ls[i].decode("utf-8", "surrogateescape")
        cuts = [k for k, c in enumerate(s) if c in ' :.()=,"'] or [0]
        k = rng.choice(cuts)
        end = k + 1 + next((j for j, c in enumerate(s[k + 1:]) if c in ' :.()=,"'), len(s))
        s = s[:k + 1] + rng.choice(_NASTY) + s[min(end, len(s)):]
        ls[i] = s.encode("utf-8", "surrogatepass")
    return bytearray(b"\n".join(ls))


def t_lines(b: bytearray, rng, other: bytes, **_):
    """Lines dropped, repeated, swapped, cut, or taken from another capture."""
    ls, ol = _lines(b), other.split(b"\n")
    for _ in range(rng.choice((1, 2, 5))):
        i = rng.randrange(len(ls))
        what = rng.randrange(6)
        if what == 0:
            del ls[i]
        elif what == 1:
            ls.insert(i, ls[i] * rng.choice((1, 2)))
        elif what == 2:
            j = rng.randrange(len(ls))
            ls[i], ls[j] = ls[j], ls[i]
        elif what == 3:
            ls[i] = ls[i][:rng.randrange(len(ls[i]) + 1)]
        elif what == 4:
            ls.insert(i, rng.choice(ol))
        else:
            ls[i] = ls[i][:rng.randrange(len(ls[i]) + 1)] + rng.choice(ol)
        if not ls:
            ls = [b""]
    return bytearray(b"\n".join(ls))


def t_bytes(b: bytearray, rng, **_):
    """Raw bytes: invalid UTF-8, encoded surrogates, NULs, ANSI escapes, CRs."""
    junk = (b"\xff", b"\xed\xa0\x80", b"\xc3", b"\x00", b"\x1b[1;31m", b"\r", b"\r\n",
            b"\xf4\x90\x80\x80", b"\xe2\x80\xae")
    for _ in range(rng.choice((1, 4, 32))):
        i = rng.randrange(len(b) + 1)
        b[i:i] = rng.choice(junk)
    return b


def t_json(b: bytearray, rng, **_):
    """A JSON field given another type, a huge number, or deep nesting; or nesting alone."""
    ls = _lines(b)
    i = rng.randrange(len(ls))
    try:
        obj = json.loads(ls[i])
    except (ValueError, RecursionError):  # a line an earlier mutation nested 100,000 deep
        obj = None
    depth = rng.choice((50, 1000, 100_000))
    values = [None, True, 1.5, -1, 1 << 70, -(1 << 63) - 1, "__HUGE__", "x", "", [], {},
              "<NA>", "\udc80", "\x1b[31m", 1e308, float("nan"), "-5(EPERM)", "0x10"]
    if isinstance(obj, dict) and obj and rng.random() < 0.85:
        key = rng.choice(list(obj))
        if rng.random() < 0.15:
            text = json.dumps(obj)
            pos = text.find(json.dumps(key)) + len(json.dumps(key)) + 1
            end = text.find(",", pos)
            end = end if end > 0 else len(text) - 1
            ls[i] = (text[:pos] + "[" * depth + "1" + "]" * depth + text[end:]).encode()
            return bytearray(b"\n".join(ls))
        obj[key] = rng.choice(values)
        if rng.random() < 0.1:
            del obj[key]
        text = json.dumps(obj, ensure_ascii=rng.random() < 0.5)
        # a number too long for Python's int() (more than 4,300 digits)
        text = text.replace('"__HUGE__"', "-" * rng.randrange(2) + "9" * 5000)
        ls[i] = text.encode("utf-8", "surrogatepass")
    else:
        ls[i] = b"[" * depth + b"]" * (depth if rng.random() < 0.5 else 0)
    return bytearray(b"\n".join(ls))


TEXT_KINDS = {"token": t_token, "lines": t_lines, "bytes": t_bytes, "truncate": m_truncate,
              "bitflip": m_bitflip, "splice": m_splice}
JSON_KINDS = dict(TEXT_KINDS, json=t_json)
KINDS = {"scap": SCAP_KINDS, "text": TEXT_KINDS, "json": JSON_KINDS}


# --- special files --------------------------------------------------------------------------

def special(rng: random.Random, scap: bytes) -> tuple[str, bytes | None]:
    """(what, bytes) of a file no capture should be; None for a directory."""
    what = rng.choice(["empty", "zeros", "ones", "dir", "shb-only", "gz-empty", "gz-zeros",
                       "one-byte", "gz-magic", "random", "devzero", "gz-concat"])
    if what == "empty":
        return what, b""
    if what == "zeros":
        return what, bytes(rng.choice((1, 4, 28, 4096, 1 << 20)))
    if what == "ones":
        return what, b"\xff" * rng.choice((4, 28, 4096))
    if what == "dir":
        return what, None
    if what == "shb-only":
        return what, scap[:blocks(scap)[0][2]] if blocks(scap) else scap[:28]
    if what == "gz-empty":
        return what, gzip.compress(b"")
    if what == "gz-zeros":
        return what, gzip.compress(bytes(rng.choice((4, 1 << 20, 64 << 20))))
    if what == "one-byte":
        return what, bytes([rng.randrange(256)])
    if what == "gz-magic":
        return what, b"\x1f\x8b" + rng.randbytes(rng.choice((0, 1, 8, 100)))
    if what == "devzero":
        return what, b"/dev/zero"  # the path itself is read (a character device)
    if what == "gz-concat":
        return what, gzip.compress(scap[:1000]) + gzip.compress(scap[1000:])
    return what, rng.randbytes(rng.choice((8, 512, 65536)))


# --- making a mutant ------------------------------------------------------------------------


def mutant(seed, index: int, pool) -> dict:
    """Mutant `index` of campaign `seed`: {seed, index, format, kind, origin, data, gz}."""
    rng = random.Random(f"{seed}:{index}")
    scaps = [s for s in pool if s[1] == "scap"]
    if rng.random() < 0.02:
        what, data = special(rng, _inflate(rng.choice(scaps)[2])[0])
        return {"format": "special", "kind": what, "origin": "-", "data": data, "gz": False}
    name, fmt, raw = rng.choice(pool)
    plain, was_gz = _inflate(raw)
    other = _inflate(rng.choice([s for s in pool if s[1] == fmt] if rng.random() < 0.8
                                else pool)[2])[0]
    kinds = KINDS[fmt]
    kind = rng.choice(list(kinds))
    b = kinds[kind](bytearray(plain), rng, other=other)
    if rng.random() < 0.25:  # a second mutation of another kind
        k2 = rng.choice(list(kinds))
        b = kinds[k2](bytearray(b), rng, other=other)
        kind = f"{kind}+{k2}"
    gz = rng.random() < (0.7 if was_gz else 0.15)
    data = bytes(b)
    if gz:
        data = gzip.compress(data, compresslevel=1, mtime=0)
        if rng.random() < 0.15:  # damage the compressed stream itself
            cut = rng.randrange(len(data) + 1)
            data = data[:cut] if rng.random() < 0.5 else m_bitflip(bytearray(data), rng)
            kind += "+gzdamage"
    return {"format": fmt, "kind": kind, "origin": name, "data": bytes(data), "gz": gz}


# --- the worker: one mutant at a time, under limits -----------------------------------------


def _where(exc: BaseException) -> str:
    """file:line of the innermost sysdig_kit frame of exc's traceback."""
    tb, where = exc.__traceback__, "?"
    while tb is not None:
        fn = tb.tb_frame.f_code.co_filename
        if "sysdig_kit" in fn:
            where = f"{fn[fn.rindex('sysdig_kit'):]}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def run_one(path: str, batch_size: int) -> dict:
    """Outcome of one capture: result / warning / kiterror / failure (+ detail)."""
    import warnings

    from sysdig_kit.errors import KitError
    from sysdig_kit.read import iter_batches, read
    from sysdig_kit.read.show import lines
    from sysdig_kit.read.typed import events
    from sysdig_kit.replay import build, build_batches, build_file, check_file
    from sysdig_kit.replay.check import check

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            df = read(path)
            check(df, build(df))
            frames = list(iter_batches(path, batch_size=batch_size))
            for _ in build_batches(iter(frames)):
                pass
            # what the CLI's replay-log and check run: a scap as the reader's raw columns
            for _ in build_file(path, batch_size=batch_size):
                pass
            check_file(path, batch_size=batch_size)
            # show's default lines and fd.name walk the fd table over the /proc scan's blocks
            # (a scap's only: text/JSON already are sysdig's output and refuse both)
            if df.attrs.get("format") == "scap":
                for _ in lines(df):
                    pass
                read(path, filter="fd.name contains / or evt.arg.fd exists")
            for etype in df["evt_type"].dropna().unique():  # typed columns of every event type
                events(df, etype)
        except KitError as exc:
            msg = str(exc)
            if not msg or "\n" in msg or len(msg) > 1000:
                return {"outcome": "failure", "detail": f"KitError not one line: {msg[:200]!r}"}
            return {"outcome": "kiterror", "detail": msg[:200]}
        except MemoryError as exc:
            return {"outcome": "memory", "detail": f"MemoryError at {_where(exc)}"}
        except Exception as exc:  # noqa: BLE001  (every other exception is what we hunt)
            return {"outcome": "failure",
                    "detail": f"{type(exc).__name__} at {_where(exc)}: {str(exc)[:150]}"}
    warned = [str(w.message) for w in caught] + list(df.attrs.get("warnings") or [])
    warned += [w for f in frames for w in f.attrs.get("warnings") or []]
    if warned:
        return {"outcome": "warning", "detail": warned[0][:200]}
    return {"outcome": "result", "detail": f"{len(df)} events"}


def worker() -> None:
    """Read `path batch_size` lines on stdin, answer one JSON line each on stdout."""
    import resource

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))
    import importlib

    # imported before the limit: the imports are not what is tested
    for mod in ("sysdig_kit.read.jsonl", "sysdig_kit.read.scap", "sysdig_kit.read.text",
                "sysdig_kit.replay.check"):
        importlib.import_module(mod)

    resource.setrlimit(resource.RLIMIT_AS, (AS_LIMIT, AS_LIMIT))
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing the code under test prints may corrupt the protocol
    out.write("ready\n")  # the watchdog starts once the imports are done
    out.flush()
    for line in sys.stdin:
        path, bs = line.split("\t")
        try:
            res = run_one(path, int(bs))
        except MemoryError:
            res = {"outcome": "memory", "detail": "MemoryError outside the reader"}
        out.write(json.dumps(res) + "\n")
        out.flush()


class Worker:
    """A worker process; `run` gives its answer, or a hang/crash outcome (then it restarts)."""

    def __init__(self, workdir: Path, n: int):
        self.dir, self.n, self.p = workdir, n, None

    def _start(self):
        env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        self.p = subprocess.Popen([sys.executable, __file__, "--worker"], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env,
                                  text=True, cwd=self.dir)
        ready, _, _ = select.select([self.p.stdout], [], [], 300)
        if not ready or self.p.stdout.readline() != "ready\n":
            raise RuntimeError("fuzz worker did not start")

    def run(self, m: dict, batch_size: int) -> dict:
        if self.p is None or self.p.poll() is not None:
            self._start()
        path = self.dir / f"w{self.n}"
        if path.is_dir():
            path.rmdir()
        elif path.exists():
            path.unlink()
        if m["data"] is None:
            path.mkdir()
        elif m["kind"] == "devzero":
            path = Path("/dev/zero")
        else:
            path.write_bytes(m["data"])
        t0 = time.monotonic()
        self.p.stdin.write(f"{path}\t{batch_size}\n")
        self.p.stdin.flush()
        ready, _, _ = select.select([self.p.stdout], [], [], TIMEOUT)
        if not ready:
            self.stop()
            return {"outcome": "hang", "detail": f"no answer in {TIMEOUT:.0f} s"}
        line = self.p.stdout.readline()
        if not line:
            rc = self.p.wait()
            self.p = None
            return {"outcome": "failure", "detail": f"worker died (exit status {rc})"}
        res = json.loads(line)
        res["seconds"] = time.monotonic() - t0
        return res

    def stop(self):
        if self.p is not None:
            self.p.kill()
            self.p.wait()
            self.p = None


# --- the campaign ---------------------------------------------------------------------------

OK = ("result", "warning", "kiterror")


def campaign(n: int, seed, workers: int = 1, start: int = 0, log=None, pool=None,
             checkpoint=None) -> dict:
    """Run mutants start..start+n-1; figures by format, kind and outcome, and the failures.
    `checkpoint(stats)` is called every 1,000 mutants (a long run keeps its figures)."""
    import threading

    log = log or (lambda msg: print(msg, flush=True))
    pool = pool or seeds()
    stats = {"by_format": collections.Counter(), "by_kind": collections.Counter(),
             "outcomes": collections.Counter(), "failures": [],
             "outcome_by_format": collections.defaultdict(collections.Counter)}
    lock = threading.Lock()
    todo = iter(range(start, start + n))
    t0 = time.monotonic()
    done = [0]

    def loop(w: Worker):
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                return
            try:
                m = mutant(seed, i, pool)
            except Exception as exc:  # noqa: BLE001  (a harness bug: counted, never a lost thread)
                m = {"format": "harness", "kind": "mutator", "origin": "-"}
                res = {"outcome": "failure",
                       "detail": f"the mutator raised {type(exc).__name__}: {str(exc)[:100]}"}
            else:
                rng = random.Random(f"{seed}:{i}:batch")
                res = w.run(m, rng.choice((150, 250, 1000)))
            with lock:
                done[0] += 1
                stats["by_format"][m["format"]] += 1
                stats["by_kind"][f"{m['format']}:{m['kind'].split('+')[0]}"] += 1
                stats["outcomes"][res["outcome"]] += 1
                stats["outcome_by_format"][m["format"]][res["outcome"]] += 1
                if res["outcome"] not in OK:
                    f = {"seed": seed, "index": i, "format": m["format"], "kind": m["kind"],
                         "origin": m["origin"], **res}
                    stats["failures"].append(f)
                    log(f"FAIL seed={seed} index={i} {m['format']}/{m['kind']} from "
                        f"{m['origin']}: {res['outcome']}: {res['detail']}")
                if done[0] % 1000 == 0:
                    log(f"{done[0]:,} mutants, {time.monotonic() - t0:.0f} s: "
                        f"{dict(stats['outcomes'])}")
                    if checkpoint:
                        checkpoint({**stats, "mutants": done[0],
                                    "seconds": time.monotonic() - t0})

    with tempfile.TemporaryDirectory(prefix="sysdig-kit-fuzz-") as tmp:
        ws = [Worker(Path(tmp), k) for k in range(workers)]
        threads = [threading.Thread(target=loop, args=(w,)) for w in ws]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for w in ws:
            w.stop()
    stats["seconds"] = time.monotonic() - t0
    stats["mutants"] = done[0]  # what ran: equals n unless a worker thread died
    return stats


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mutants", type=int, default=1000)
    ap.add_argument("--seed", default="1")
    ap.add_argument("--start", type=int, default=0, help="first mutant index")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--only", type=int, default=None, help="run just mutant ONLY")
    ap.add_argument("--keep", type=Path, default=None, help="with --only: write the mutant here")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.worker:
        worker()
        return 0
    if a.only is not None:
        m = mutant(a.seed, a.only, seeds())
        print(f"mutant {a.only}: {m['format']}/{m['kind']} from {m['origin']}")
        if a.keep is not None and m["data"] is not None:
            a.keep.write_bytes(m["data"])
            print(f"written to {a.keep}")
        a.mutants, a.start = 1, a.only
    def save(st):
        if a.json:
            st = {**st, "seed": a.seed, "start": a.start, "command": " ".join(sys.argv)}
            a.json.write_text(json.dumps(st, indent=1, default=dict))

    st = campaign(a.mutants, a.seed, a.workers, a.start, checkpoint=save)
    save(st)
    print(f"{st['mutants']:,} mutants in {st['seconds']:.0f} s; outcomes {dict(st['outcomes'])}")
    print("by format:", dict(st["by_format"]))
    for fmt, c in sorted(st["outcome_by_format"].items()):
        print(f"  {fmt}: {dict(c)}")
    print("by kind:", dict(sorted(st["by_kind"].items())))
    return 1 if st["failures"] else 0


if __name__ == "__main__":
    sys.exit(main())
