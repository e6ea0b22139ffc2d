"""The judges: real sysdig binaries run on a capture, their output parsed into frames.

- `old`: Debian bookworm's /usr/bin/sysdig 0.29.3 (reads captures of the enter/exit era).
- `new`: sysdig 0.41.4 from Debian sid, in the chroot tests/setup/20-sysdig-sid.sh builds
  ($SYSDIG_KIT_SYSDIG_NEW); reads both eras, but converts old enter/exit pairs into exit-only
  events on the fly (so it numbers old captures differently from 0.29.3).

Outputs are cached for the test session, and on disk outside the repository
($SYSDIG_KIT_CACHE or /var/cache/sysdig-kit, `oracle-out/`, keyed by the sysdig binary, the
capture's bytes, the format and the filter) when that folder is writable.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import uuid
from functools import cache
from pathlib import Path

import pandas as pd

FMT = "*%evt.num %evt.rawtime %evt.cpu %thread.tid %evt.dir %evt.type %evt.rawres"
COLS = ["evt_num", "evt_rawtime", "evt_cpu", "thread_tid", "evt_dir", "evt_type", "evt_rawres"]
PROC_FMT = "*%evt.num %proc.pid |%proc.name|"
OLD_SYSDIG = "/usr/bin/sysdig"
# Every capture the tests read lives in the repository (provenance: tests/data/README.md).
DATA = Path(__file__).resolve().parent / "data"


def sid_root() -> Path:
    env = os.environ.get("SYSDIG_KIT_SYSDIG_NEW")
    if env:
        return Path(env)
    cache = os.environ.get("SYSDIG_KIT_CACHE") or "/var/cache/sysdig-kit"
    return Path(cache, "sysdig-sid-root")


class OracleError(RuntimeError):
    pass


def _disk_key(which: str, path: str, fmt, filt) -> Path | None:
    base = Path(os.environ.get("SYSDIG_KIT_CACHE") or "/var/cache/sysdig-kit", "oracle-out")
    binary = Path(OLD_SYSDIG) if which == "old" else sid_root() / "usr/bin/sysdig"
    try:
        base.mkdir(parents=True, exist_ok=True)
        if not os.access(base, os.W_OK):
            return None
        h = hashlib.sha256()
        st = binary.stat()
        h.update(f"{which}|{st.st_size}|{st.st_mtime_ns}|{fmt!r}|{filt!r}|".encode())
        h.update(Path(path).read_bytes())
    except OSError:
        return None
    return base / h.hexdigest()


@cache
def run(which: str, path: str, fmt: str | None = FMT, filt: str | None = None) -> str:
    """stdout of `sysdig -r path -p fmt [filt]` with the `old` or `new` sysdig (OracleError if
    it refuses the file); fmt None: sysdig's default output."""
    key = _disk_key(which, path, fmt, filt)
    if key is not None and key.is_file():
        return key.read_text(errors="replace")
    out = _run(which, path, fmt, filt)
    if key is not None:
        tmp = key.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(out, errors="replace")
        tmp.replace(key)
    return out


def _run(which: str, path: str, fmt, filt) -> str:
    tail = (["-p", fmt] if fmt is not None else []) + ([filt] if filt else [])
    if which == "old":
        cmd, tmp = [OLD_SYSDIG, "-r", path, *tail], None
    else:
        root = sid_root()
        if not (root / "usr/bin/sysdig").exists():
            raise FileNotFoundError(f"no sysdig 0.41.4 chroot at {root} (tests/setup/20-sysdig-sid.sh)")
        tmp = root / "tmp" / f"oracle-{uuid.uuid4().hex}.scap"
        shutil.copyfile(path, tmp)
        cmd = ["chroot", str(root), "sysdig", "-r", f"/tmp/{tmp.name}", *tail]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300,
                           check=False)
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    if p.returncode != 0:
        err = p.stderr.strip()
        raise OracleError(f"{which} sysdig refused {path}: {err[:300]}{' ... ' + err[-300:] if len(err) > 600 else ''}")
    return p.stdout


def version(which: str) -> str:
    cmd = [OLD_SYSDIG] if which == "old" else ["chroot", str(sid_root()), "sysdig"]
    return subprocess.run(cmd + ["--version"], capture_output=True, text=True,
                          check=False).stdout.strip()


def parse_rows(text: str) -> pd.DataFrame:
    """The FMT output as a frame: ints as Int64 (`<NA>` -> NA), dir/type as str."""
    lines = [ln for ln in text.splitlines() if ln and ln[0].isdigit()]
    df = pd.read_csv(io.StringIO("\n".join(lines)), sep=" ", names=COLS, header=None,
                     dtype=str, keep_default_na=False)
    for c in ("evt_num", "evt_rawtime", "evt_cpu", "thread_tid", "evt_rawres"):
        df[c] = pd.array([None if v == "<NA>" else int(v) for v in df[c]], dtype="Int64")
    return df


def parse_proc(text: str) -> pd.DataFrame:
    """PROC_FMT output: evt_num, proc_pid (Int64), proc_name (None for <NA>)."""
    rows = []
    for ln in text.splitlines():
        num, rest = ln.split(" ", 1) if " " in ln else (ln, "")
        if not num.isdigit() or "|" not in rest:
            continue
        pid, name = rest.split(" |", 1)
        name = name.removesuffix("|")
        rows.append((int(num), None if pid == "<NA>" else int(pid), None if name == "<NA>" else name))
    df = pd.DataFrame(rows, columns=["evt_num", "proc_pid", "proc_name"])
    df["proc_pid"] = df["proc_pid"].astype("Int64")
    return df


@cache
def rows(which: str, path: str) -> pd.DataFrame:
    return parse_rows(run(which, path))


@cache
def proc(which: str, path: str) -> pd.DataFrame:
    return parse_proc(run(which, path, PROC_FMT))


def stored_rows(path: Path) -> pd.DataFrame:
    """The X.oracle.txt stored beside an arm64 capture (what the sysdig that wrote it printed)."""
    return parse_rows(path.with_suffix(".oracle.txt").read_text())
