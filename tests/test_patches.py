"""Driver patch sets (sysdig_kit/build/patches/<driver>/<set>/*.patch) against the pinned driver
source, the patched event table, and what the stock sysdig 0.41.4 does with patched events.

Everything real is fetched and cached under $SYSDIG_KIT_CACHE (default /var/cache/sysdig-kit):
the pinned falcosecurity-scap-dkms .deb (apt, in the sid chroot of tests/setup/20-sysdig-sid.sh),
and a sid amd64 chroot with the arm64 cross compiler and Debian's arm64 kernel headers.
Runtime: ~70 s warm (the arm64 cross-build of the patched driver is ~45 s of it); cold ~4 min.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from sysdig_kit import versions

REPO = Path(__file__).resolve().parent.parent
PATCHES = REPO / "sysdig_kit" / "build" / "patches"
TABLES = REPO / "sysdig_kit" / "data" / "event_tables"
# A stock capture of the zsh workload on the emulated board (tests/data/README.md).
CAPTURE = REPO / "tests" / "data" / "stock-0.23.2-zsh-s80.scap"
CACHE = Path(os.environ.get("SYSDIG_KIT_CACHE") or "/var/cache/sysdig-kit")

# All from the version registry (sysdig_kit/data/versions.yaml). The driver source each patch
# directory is written against: the pair's pinned dkms .deb (Debian's falcosecurity-scap-dkms).
# A different .deb (new Debian revision, new snapshot) fails here first: re-check the patches.
_SETS = [(p, s) for p in versions.pairs() for s in p.patch_sets.values()]
PINS = {p.driver: (p.dkms["package"], p.dkms["version"], p.dkms["sha256"]) for p, _ in _SETS}
# What each revision of a patch set appends to which exit events (event code -> parameter
# names, in order): the registry's revisions, oldest first (its earlier ones, then the one
# built). A revision is the patches up to its DRIVER_VERSION marker patch.
APPENDS = {(p.driver, s.name, i): {k: list(v) for k, v in r.appends.items()}
           for p, s in _SETS for i, r in enumerate((*s.earlier, s), 1)}
MODULE_VERSION = {(p.driver, s.name, i): r.module_version
                  for p, s in _SETS for i, r in enumerate((*s.earlier, s), 1)}
TABLE_OF = {(p.driver, s.name, i): (p.event_table, r.event_table)
            for p, s in _SETS for i, r in enumerate((*s.earlier, s), 1)}
SETS = sorted((d.parent.name, d.name) for d in PATCHES.glob("*/*") if d.is_dir())
APT = ["-o", "Acquire::Check-Valid-Until=false"]


def revisions(version: str, name: str) -> list[tuple[int, str, list[Path]]]:
    """(revision, module version, its patches) of a set: each marker patch (one setting
    DRIVER_VERSION "<version>+<set>.<revision>") closes a revision."""
    out, upto = [], []
    for p in sorted((PATCHES / version / name).glob("*.patch")):
        upto.append(p)
        m = re.search(r'^\+#define DRIVER_VERSION "([^"]+)"', p.read_text(), re.MULTILINE)
        if m:
            out.append((int(m.group(1).rsplit(".", 1)[1]), m.group(1), list(upto)))
    return out


REVS = [(v, n, r, mv) for v, n in SETS for r, mv, _ in revisions(v, n)]
LATEST = {(v, n): max(r for vv, nn, r, _ in REVS if (vv, nn) == (v, n)) for v, n in SETS}


def run(cmd, **kw):
    check = kw.pop("check", True)
    return subprocess.run(cmd, check=check, capture_output=True, text=True, **kw)


def sid_root() -> Path:
    """The sid chroot with sysdig 0.41.4 (built by tests/setup/20-sysdig-sid.sh if missing)."""
    root = Path(os.environ.get("SYSDIG_KIT_SYSDIG_NEW") or CACHE / "sysdig-sid-root")
    if not (root / "usr/bin/sysdig").exists():
        env = {**os.environ, "SYSDIG_KIT_CACHE": str(CACHE)}
        run(["bash", "-c", "set -e; source tests/setup/20-sysdig-sid.sh"], cwd=REPO, env=env)
    return root


def mirror() -> str:
    find = ("grep -rhE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null"
            " | grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n1")
    out = run(["bash", "-c", find], check=False).stdout.strip()
    return os.environ.get("DEBIAN_MIRROR") or out or "http://deb.debian.org/debian"


def pinned_deb(version: str) -> Path:
    pkg, debver, sha = PINS[version]
    deb = CACHE / "src" / f"{pkg}_{debver}_all.deb"
    if not deb.exists():
        root = sid_root()
        dl = root / "tmp" / f"kit-dl-{uuid.uuid4().hex}"
        dl.mkdir()
        try:
            run(["chroot", str(root), "apt-get", "-qq", *APT, "update"])
            run(["chroot", str(root), "sh", "-c",
                 f"cd /tmp/{dl.name} && apt-get -qq {' '.join(APT)} download {pkg}={debver}"])
            deb.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dl / deb.name, deb)
        finally:
            shutil.rmtree(dl, ignore_errors=True)
    got = hashlib.sha256(deb.read_bytes()).hexdigest()
    assert got == sha, (f"{deb}: sha256 {got}, pinned {sha}. The driver source moved: re-check "
                        f"every patch under {PATCHES / version} and update PINS.")
    return deb


def pinned_source(version: str) -> Path:
    """The pristine driver tree /usr/src/scap-<version> of the pinned .deb (cached, read-only)."""
    deb = pinned_deb(version)
    dest = CACHE / "src" / f"{deb.stem}.tree"
    if not dest.exists():
        tmp = dest.with_suffix(f".tmp{os.getpid()}")
        run(["dpkg-deb", "-x", str(deb), str(tmp)])
        tmp.rename(dest)
    src = dest / "usr" / "src" / f"scap-{version}"
    assert (src / "event_table.c").is_file(), f"{deb}: no usr/src/scap-{version}/event_table.c"
    return src


def patched_tree(version: str, name: str, dest: Path, revision: int | None = None,
                 patches: list[Path] | None = None) -> Path:
    """A copy of the pinned source with the set (up to `revision`, default the latest) applied,
    each patch dry-run first: any hunk that needs an offset or fuzz, or fails, fails the test
    with patch's own words."""
    shutil.copytree(pinned_source(version), dest, symlinks=True)
    if patches is None:
        revs = revisions(version, name)
        patches = next(ps for r, _, ps in reversed(revs) if revision in (None, r))
    assert patches, f"no patches in {PATCHES / version / name}"
    for p in patches:
        args = ["patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "-i", str(p)]
        dry = run(args + ["--dry-run"], cwd=dest, check=False)
        moved = re.findall(r"^(?:Hunk|.*FAILED|.*[Rr]eversed|.*fuzz|.*offset).*$", dry.stdout, re.MULTILINE)
        assert dry.returncode == 0 and not moved, (
            f"{p.relative_to(REPO)} no longer applies cleanly to the pinned {version} source "
            f"(upstream moved):\n{dry.stdout}{dry.stderr}")
        run(args, cwd=dest)
    return dest


def table(name: str) -> dict:
    return json.loads((TABLES / f"{name}.json").read_text())


def test_every_patch_directory_has_a_pin_and_a_description():
    assert SETS, f"no patch sets under {PATCHES}"
    for version, name in SETS:
        assert version in PINS, f"patches/{version}: no pinned driver source in PINS"
        revs = revisions(version, name)
        assert revs and revs[-1][2] == sorted((PATCHES / version / name).glob("*.patch")), (
            f"patches/{version}/{name}: the last patch must be a DRIVER_VERSION marker")
        assert [r for r, _, _ in revs] == list(range(1, len(revs) + 1))
        for r, mv, _ in revs:
            assert mv == f"{version}+{name}.{r}"
            assert (version, name, r) in APPENDS, f"{name}.{r}: not in data/versions.yaml"
            assert MODULE_VERSION[(version, name, r)] == mv
            assert TABLE_OF[(version, name, r)] == (f"scap-{version}", f"scap-{mv}")
        assert (version, name, len(revs) + 1) not in APPENDS, "a registered revision has no patches"


@pytest.mark.parametrize("version,name", SETS)
def test_patch_set_applies_cleanly_to_pinned_source(version, name, tmp_path):
    src = patched_tree(version, name, tmp_path / "drv")
    # Every touched line of the patched tree carries the set's name in a comment or string.
    diff = run(["diff", "-ru", str(pinned_source(version)), str(src)], check=False).stdout
    assert diff.count("replay-complete") >= 1


@pytest.mark.parametrize("version,name", SETS)
def test_readme_explains_every_patch_and_hunk(version, name):
    d = PATCHES / version / name
    readme = (d / "README.md").read_text()
    for p in sorted(d.glob("*.patch")):
        assert p.name in readme, f"{d}/README.md does not explain {p.name}"
        for f in re.findall(r"^\+\+\+ b/(\S+)", p.read_text(), re.MULTILINE):
            assert f in readme, f"{d}/README.md: {p.name} touches {f}, not explained"


@pytest.mark.parametrize("version,name,rev,module", REVS)
def test_patched_table_is_generated_from_patched_source(version, name, rev, module, tmp_path):
    """Each revision's table is the generator's output for the tree patched up to it, byte for
    byte: generated, never hand-edited."""
    src = patched_tree(version, name, tmp_path / "drv", rev)
    out = tmp_path / "tables"
    run([sys.executable, str(REPO / "tools" / "gen_event_table.py"), str(src), "-o", str(out)])
    (gen_file,) = out.glob("*.json")
    assert gen_file.name == f"scap-{module}.json"
    committed = TABLES / gen_file.name
    assert committed.read_bytes() == gen_file.read_bytes(), f"{committed.name} is stale: regenerate it"
    gen = json.loads(gen_file.read_text())
    assert gen["driver_version"] == module and gen["patch_set"] == name
    assert gen["base"] == f"scap-{version}" and gen["era"] == table(gen["base"])["era"]


def test_generator_refuses_to_overwrite_a_table_with_other_events(tmp_path):
    """A patched tree without its marker would be written under the stock name (or a new patch
    under the previous revision's name): the generator refuses, and leaves the table alone."""
    version, name = SETS[0]
    revs = revisions(version, name)
    gen = [sys.executable, str(REPO / "tools" / "gen_event_table.py")]
    cases = [  # (patches: all but a marker, the table it would overwrite)
        ([p for p in revs[0][2] if "DRIVER_VERSION" not in p.read_text()], f"scap-{version}")]
    if len(revs) > 1:
        cases.append((revs[-1][2][:-1], f"scap-{revs[-2][1]}"))
    for i, (patches, victim) in enumerate(cases):
        out = tmp_path / f"out{i}"
        out.mkdir()
        shutil.copy(TABLES / f"{victim}.json", out)
        src = patched_tree(version, name, tmp_path / f"drv{i}", patches=patches)
        p = run([*gen, str(src), "-o", str(out)], check=False)
        assert p.returncode != 0 and "refusing to overwrite" in p.stderr, p.stdout + p.stderr
        assert (out / f"{victim}.json").read_bytes() == (TABLES / f"{victim}.json").read_bytes()
    # the stock tree regenerates its own table unchanged
    out = tmp_path / "stock"
    out.mkdir()
    shutil.copy(TABLES / f"scap-{version}.json", out)
    run([*gen, str(pinned_source(version)), "-o", str(out)])
    assert (out / f"scap-{version}.json").read_bytes() == (TABLES / f"scap-{version}.json").read_bytes()


@pytest.mark.parametrize("version,name,rev,module", REVS)
def test_patched_table_only_appends_parameters(version, name, rev, module):
    stock, patched = table(f"scap-{version}")["events"], table(f"scap-{module}")["events"]
    assert len(stock) == len(patched)
    changed = {}
    for s, p in zip(stock, patched):
        n = len(s["params"])
        assert {k: v for k, v in p.items() if k != "params"} == {k: v for k, v in s.items() if k != "params"}
        assert p["params"][:n] == s["params"], f"event {s['code']} {s['name']}: not append-only"
        if len(p["params"]) > n:
            assert p["dir"] == "<", "only exit events grow"
            changed[s["code"]] = [x["name"] for x in p["params"][n:]]
    assert changed == APPENDS[(version, name, rev)]


# --- one source of truth: the write-back data and what the patched driver records ------------

def generic_cases(fillers: str) -> dict[tuple[str, str], int]:
    """(syscall, out|out2) -> argument index, from rc_generic_out in a patched ppm_fillers.c:
    each `__NR_<name>` section's `p1 = a[N]` (out) and `p2 = a[M]` (out2)."""
    body = fillers[fillers.index("static int rc_generic_out("):]
    body = body[: body.index("\n}\n")]
    found: dict[tuple[str, str], int] = {}
    parts = re.split(r"__NR_(\w+)", body)
    pending: list[str] = []  # case labels falling through to the next assignments
    for nr, chunk in zip(parts[1::2], parts[2::2]):
        pending.append(nr)
        sets = re.findall(r"\bp([12]) = a\[(\d)\]", chunk)
        for p, arg in sets:
            for name in pending:
                found[(name, "out" if p == "1" else "out2")] = int(arg)
        if sets:
            pending = []
    return found


def recorded_by(version: str, name: str, rev: int, tmp_path: Path) -> dict[tuple[str, str], int | None]:
    """What revision `rev` records: (syscall or event name, parameter) -> argument (generic
    exits, from the C) or None (appended to a dedicated event, from the table)."""
    src = patched_tree(version, name, tmp_path / f"drv{rev}", rev)
    got = {k: v for k, v in generic_cases((src / "ppm_fillers.c").read_text()).items()}
    for code, params in APPENDS[(version, name, rev)].items():
        if code != 1:  # the generic exit's res/out/out2 are per syscall, above
            ev = table(f"scap-{version}")["events"][code]["name"]
            got.update({(ev, p): None for p in params})
    return got


@pytest.mark.parametrize("version,name", SETS)
def test_write_back_data_knows_every_recorded_parameter_and_no_more(version, name, tmp_path):
    """check's no_write_back, the log's output buffers and the replayer read
    data/syscalls/write_back.csv: every parameter the patch set records must be there (with the
    revision that added it and, for generic exits, the same argument as the C), and every row
    that says the set records something must be recorded by it."""
    from sysdig_kit.replay import writeback

    by_rev = {rev: recorded_by(version, name, rev, tmp_path) for rev, _, _ in revisions(version, name)}
    latest = by_rev[max(by_rev)]
    for (sc, param), arg in latest.items():
        rows = [w for w in writeback.of(sc) if w.param == param]
        assert rows, f"{name} records {param} of {sc}; write_back.csv does not list it"
        first = f"{name}.{min(r for r, got in by_rev.items() if (sc, param) in got)}"
        assert rows[0].since == first, f"write_back.csv: {sc} {param} since {rows[0].since}, recorded since {first}"
        if arg is not None:
            assert rows[0].arg == arg, f"write_back.csv: {sc} {param} at argument {rows[0].arg}, the driver reads a[{arg}]"
    prev = latest
    ours = {(w.syscall, w.param) for w in writeback.table() if w.since and w.since.startswith(name + ".")}
    assert ours == set(prev), (f"write_back.csv lists what {name} does not record: "
                               f"{sorted(ours - set(prev))}; unlisted: {sorted(set(prev) - ours)}")


def xbuild_root() -> tuple[Path, str]:
    """sid amd64 chroot: gcc-aarch64-linux-gnu, amd64 kbuild and the arm64 headers of the same
    kernel (Debian's linux-headers-<rel>-arm64 unpacked into /usr/src). Cached."""
    root = CACHE / "replay-complete" / "xbuild-root"
    if not root.exists():
        tmp = root.with_name("xbuild-root.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        run(["mmdebstrap", "--variant=minbase",
             "--include=linux-headers-amd64,make,gcc,gcc-aarch64-linux-gnu,libc6-dev,patch",
             "--aptopt=Acquire::Check-Valid-Until \"false\"", "sid", str(tmp), mirror()])
        tmp.rename(root)
    rels = sorted(p.name[len("linux-headers-"):-len("-amd64")]
                  for p in (root / "usr/src").glob("linux-headers-*-amd64"))
    assert rels, f"{root}: no linux-headers-*-amd64"
    rel = rels[-1]
    if not (root / "usr/src" / f"linux-headers-{rel}-arm64" / "Makefile").exists():
        script = (f"set -e; dpkg --add-architecture arm64; apt-get -qq {' '.join(APT)} update; "
                  f"rm -rf /tmp/h && mkdir /tmp/h && cd /tmp/h && "
                  f"apt-get -qq {' '.join(APT)} download linux-headers-{rel}-arm64:arm64 && "
                  f"dpkg-deb -x linux-headers-{rel}-arm64_*.deb /tmp/h/x && "
                  f"mv /tmp/h/x/usr/src/linux-headers-{rel}-arm64 /usr/src/ && rm -rf /tmp/h")
        run(["chroot", str(root), "sh", "-c", script])
    return root, f"/usr/src/linux-headers-{rel}-arm64"


@pytest.mark.parametrize("version,name", SETS)
def test_patched_driver_cross_builds_for_arm64(version, name):
    """The latest revision (the one the build uses) compiles without a warning for arm64."""
    root, kdir = xbuild_root()
    work = root / "build" / f"{name}-{uuid.uuid4().hex[:8]}"
    work.parent.mkdir(exist_ok=True)
    patched_tree(version, name, work)
    module = revisions(version, name)[-1][1]
    proc = root / "proc"
    mounted = not os.path.ismount(proc)
    if mounted:  # objtool reads /proc
        run(["mount", "-t", "proc", "proc", str(proc)])
    try:
        b = run(["chroot", str(root), "make", "-j2", "ARCH=arm64",
                 "CROSS_COMPILE=aarch64-linux-gnu-", "-C", kdir, f"M=/build/{work.name}", "modules"],
                check=False, timeout=900)
        assert b.returncode == 0, f"cross-build failed:\n{b.stdout[-3000:]}\n{b.stderr[-3000:]}"
        # No compiler warning may come from the patched files.
        warn = [ln for ln in b.stderr.splitlines() if "warning:" in ln and "modpost" not in ln]
        assert not warn, "\n".join(warn)
        ko = work / "scap.ko"
        assert "ARM aarch64" in run(["file", str(ko)]).stdout
        assert run(["modinfo", "-F", "version", str(ko)]).stdout.strip() == module
    finally:
        if mounted:
            run(["umount", str(proc)], check=False)
        shutil.rmtree(work, ignore_errors=True)


# --- what the stock userspace does with patched events ---------------------------------------

def _value(param: dict) -> bytes:
    """A stand-in value of a parameter's type, for events synthesised in the patched layout."""
    return {"PT_ERRNO": struct.pack("<q", -4)}.get(param["type"], b"\xa5" * 8)


def synthesise(src: Path, dst: Path, appends: dict, patched: list) -> dict:
    """Copy a stock exit-only capture, giving every event in `appends` its patched layout (the
    appended parameters filled with stand-ins). Returns how many events of each code grew."""
    data, out, pos, grown = src.read_bytes(), bytearray(), 0, {}
    while pos < len(data):
        btype, blen = struct.unpack_from("<II", data, pos)
        block = data[pos:pos + blen]
        if btype in (0x216, 0x217):  # EV / EVF blocks with nparams in the event header
            pre = 8 + 2 + (4 if btype == 0x217 else 0)
            ts, tid, elen, etype, nparams = struct.unpack_from("<QQIHI", block, pre)
            if etype in appends and nparams == len(patched[etype]["params"]) - len(appends[etype]):
                lens = list(struct.unpack_from(f"<{nparams}H", block, pre + 26))
                body = block[pre + 26 + 2 * nparams: pre + elen]
                add = [_value(p) for p in patched[etype]["params"][nparams:]]
                lens += [len(a) for a in add]
                n = len(lens)
                ev = (struct.pack("<QQIHI", ts, tid, 26 + 2 * n + len(body) + sum(map(len, add)), etype, n)
                      + struct.pack(f"<{n}H", *lens) + body + b"".join(add))
                payload = block[8:pre] + ev
                pad = -len(payload) % 4
                total = 12 + len(payload) + pad
                block = struct.pack("<II", btype, total) + payload + b"\0" * pad + struct.pack("<I", total)
                grown[etype] = grown.get(etype, 0) + 1
        out += block
        pos += blen
    dst.write_bytes(bytes(out))
    return grown


def stock_sysdig_r(path: Path):
    root = sid_root()
    tmp = root / "tmp" / f"patches-{uuid.uuid4().hex}.scap"
    shutil.copyfile(path, tmp)
    try:
        return run(["chroot", str(root), "sysdig", "-r", f"/tmp/{tmp.name}", "-p",
                    "*%evt.num %evt.rawtime %evt.cpu %thread.tid %evt.dir %evt.type %evt.rawres"],
                   check=False, timeout=300)
    finally:
        tmp.unlink(missing_ok=True)


RC = ("0.23.2", "replay-complete")
RC_LATEST = f"scap-0.23.2+replay-complete.{LATEST[RC]}"
RC_APPENDS = APPENDS[(*RC, LATEST[RC])]


def stock_output() -> str:
    """What the real sysdig 0.41.4 prints for the stock capture (the oracle, run each time)."""
    p = stock_sysdig_r(CAPTURE)
    assert p.returncode == 0 and p.stdout.count("\n") > 1000, p.stderr
    return p.stdout


def test_synthesis_is_byte_exact_when_nothing_grows(tmp_path):
    patched = table(RC_LATEST)["events"]
    assert synthesise(CAPTURE, tmp_path / "same.scap", {}, patched) == {}
    assert (tmp_path / "same.scap").read_bytes() == CAPTURE.read_bytes()


def test_stock_sysdig_aborts_on_grown_converter_managed_exits(tmp_path):
    """libscap 0.23.2's savefile converter asserts that an EF_CONVERTER_MANAGED exit event has
    no more parameters than its table (converter.cpp:523); Debian builds keep assertions on."""
    patched = table(RC_LATEST)["events"]
    for code in (1, 71, 171):  # syscall (GENERIC_X), fstat, ioctl: all EF_CONVERTER_MANAGED
        assert "EF_CONVERTER_MANAGED" in patched[code]["flags"]
        f = tmp_path / f"grown-{code}.scap"
        grown = synthesise(CAPTURE, f, {code: RC_APPENDS[code]}, patched)
        assert grown[code] > 0
        p = stock_sysdig_r(f)
        assert p.returncode != 0
        assert "Assertion `evt_params_num <= expected_params_num' failed" in p.stderr


def test_stock_sysdig_ignores_grown_newfstatat(tmp_path):
    """newfstatat is not converter-managed: 0.41.4 reads the file and prints what it printed
    for the stock capture, ignoring the appended parameter."""
    patched = table(RC_LATEST)["events"]
    assert "EF_CONVERTER_MANAGED" not in patched[419]["flags"]
    f = tmp_path / "grown-419.scap"
    assert synthesise(CAPTURE, f, {419: ["stat"]}, patched)[419] == 39
    p = stock_sysdig_r(f)
    assert p.returncode == 0, p.stderr
    assert p.stdout == stock_output()


def test_kit_reader_reads_a_patched_capture_in_full(tmp_path):
    from sysdig_kit.read import read

    patched = table(RC_LATEST)["events"]
    f = tmp_path / "patched.scap"
    grown = synthesise(CAPTURE, f, RC_APPENDS, patched)
    assert grown == {1: 354, 71: 69, 419: 39, 171: 9}
    df = read(f)  # the reader picks the table from the parameter counts
    assert df.attrs["event_table"] == RC_LATEST
    assert len(df) == len(read(CAPTURE))
    row = df[(df.evt_type == "rt_sigprocmask") & (df.evt_dir == "<")].iloc[0]
    assert [a["name"] for a in row.evt_args] == ["ID", "nativeID", "res", "out", "out2"]
    assert {a["name"]: a["value"] for a in row.evt_args}["res"] == struct.pack("<q", -4)
    row = df[(df.evt_type == "fstat") & (df.evt_dir == "<")].iloc[0]
    assert [a["name"] for a in row.evt_args] == ["res", "fd", "stat"]
    row = df[(df.evt_type == "ioctl") & (df.evt_dir == "<")].iloc[0]
    assert [a["name"] for a in row.evt_args][-1] == "out"


# --- sysdig-kit export --stock: the inverse of synthesise ------------------------------------

def test_stock_export_gives_back_the_stock_capture_byte_for_byte(tmp_path):
    """Every appended parameter of the latest revision, on every event that has it, cut back
    off: the very bytes of the stock capture, which the real sysdig 0.41.4 then reads exactly
    as it reads the stock capture."""
    from sysdig_kit.export import stock

    patched = tmp_path / "patched.scap"
    synthesise(CAPTURE, patched, RC_APPENDS, table(RC_LATEST)["events"])
    assert stock_sysdig_r(patched).returncode != 0  # the stock sysdig cannot read it as is
    out = tmp_path / "stock.scap"
    r = stock(patched, out)
    assert r.source_table == RC_LATEST and r.stock_table == "scap-0.23.2"
    assert r.cut == {"syscall": 354, "fstat": 69, "newfstatat": 39, "ioctl": 9}
    assert out.read_bytes() == CAPTURE.read_bytes()
    p = stock_sysdig_r(out)
    assert p.returncode == 0, p.stderr
    assert p.stdout == stock_output()
    # a stock capture passes through unchanged
    assert stock(CAPTURE, tmp_path / "again.scap").cut == {}
    assert (tmp_path / "again.scap").read_bytes() == CAPTURE.read_bytes()


def test_stock_export_of_a_board_capture_reads_in_stock_sysdig(tmp_path):
    """A real replay-complete capture (tests/data) exported: the stock sysdig reads every
    event of it (it aborts on the original), and the kit reads both the same but for the
    appended parameters."""
    from sysdig_kit.export import stock
    from sysdig_kit.read import read

    src = REPO / "tests" / "data" / "replay-complete-zsh-s4096.scap"
    assert stock_sysdig_r(src).returncode != 0
    out = tmp_path / "stock.scap"
    r = stock(src, out)
    assert r.cut and r.stock_table == "scap-0.23.2"
    p = stock_sysdig_r(out)
    assert p.returncode == 0, p.stderr
    a, b = read(src), read(out)
    assert b.attrs["event_table"] == "scap-0.23.2"
    assert len(p.stdout.splitlines()) == len(b) == len(a)
    assert list(a["evt_num"]) == list(b["evt_num"]) and list(a["evt_type"]) == list(b["evt_type"])


def test_export_refuses_bad_input(tmp_path):
    from click.testing import CliRunner

    from sysdig_kit.cli import main

    bad = tmp_path / "bad.scap"
    bad.write_bytes(b"not a capture at all")
    for args in (["export", str(bad), "--stock", "-o", str(tmp_path / "o.scap")],
                 ["export", str(tmp_path / "none.scap"), "--stock", "-o", str(tmp_path / "o.scap")],
                 ["export", str(CAPTURE), "--stock", "-o", str(CAPTURE)]):
        r = CliRunner().invoke(main, args)
        assert r.exit_code == 2 and r.output.startswith("sysdig-kit: error:"), r.output
    assert not (tmp_path / "o.scap").exists()


def test_board_capture_of_revision_2_reads_in_full_and_exports_for_stock_sysdig(tmp_path):
    """A real revision-2 capture (tests/data): the kit reads every event with the revision's
    table, and its replay log lacks no return value and no write-back (statx's struct statx,
    getdents64's entries, llistxattr's res are there); exported, the stock sysdig 0.41.4 reads
    every event (it aborts on the original)."""
    from sysdig_kit.export import stock
    from sysdig_kit.read import read
    from sysdig_kit.replay import build

    src = REPO / "tests" / "data" / "replay-complete-2-ls-etc-s65000.scap"
    df = read(src)
    assert df.attrs["event_table"] == RC_LATEST and not df.attrs.get("warnings")
    log = build(df)
    sc = log[log["kind"] == "syscall"]
    flagged = sc["flags"].map(lambda f: bool({"no_return_value", "no_write_back"} & set(f)))
    assert not flagged.any(), sc[flagged][["syscall", "flags"]]
    out = {s: [b for bufs in sc[sc["syscall"] == s]["buffers"] for b in bufs if b["output"]]
           for s in ("statx", "getdents64")}
    assert out["statx"] and all(b["captured_len"] == 256 for b in out["statx"])
    assert any(b"hostname" in b["data"] for b in out["getdents64"])
    assert stock_sysdig_r(src).returncode != 0
    exported = tmp_path / "stock.scap"
    stock(src, exported)
    p = stock_sysdig_r(exported)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == len(read(exported)) == len(df)
