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
CAPTURE = REPO / "tests" / "data" / "arm64" / "new-era-zsh-name.scap"
CACHE = Path(os.environ.get("SYSDIG_KIT_CACHE") or "/var/cache/sysdig-kit")

# All from the version registry (sysdig_kit/data/versions.yaml). The driver source each patch
# directory is written against: the pair's pinned dkms .deb (Debian's falcosecurity-scap-dkms).
# A different .deb (new Debian revision, new snapshot) fails here first: re-check the patches.
_SETS = [(p, s) for p in versions.pairs() for s in p.patch_sets.values()]
PINS = {p.driver: (p.dkms["package"], p.dkms["version"], p.dkms["sha256"]) for p, _ in _SETS}
# What each patch set appends to which exit events (event code -> appended parameter names).
APPENDS = {(p.driver, s.name): {k: list(v) for k, v in s.appends.items()} for p, s in _SETS}
TABLE_OF = {(p.driver, s.name): (p.event_table, s.event_table) for p, s in _SETS}
MODULE_VERSION = {(p.driver, s.name): s.module_version for p, s in _SETS}

SETS = sorted((d.parent.name, d.name) for d in PATCHES.glob("*/*") if d.is_dir())
APT = ["-o", "Acquire::Check-Valid-Until=false"]


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


def patched_tree(version: str, name: str, dest: Path) -> Path:
    """A copy of the pinned source with the set applied, each patch dry-run first: any hunk that
    needs an offset or fuzz, or fails, fails the test with patch's own words."""
    shutil.copytree(pinned_source(version), dest, symlinks=True)
    patches = sorted((PATCHES / version / name).glob("*.patch"))
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
        assert (version, name) in APPENDS, f"patches/{version}/{name}: not described in APPENDS"


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


@pytest.mark.parametrize("version,name", SETS)
def test_patched_table_is_generated_from_patched_source(version, name, tmp_path):
    src = patched_tree(version, name, tmp_path / "drv")
    out = tmp_path / "tables"
    run([sys.executable, str(REPO / "tools" / "gen_event_table.py"), str(src), "-o", str(out)])
    (gen_file,) = out.glob("*.json")
    gen = json.loads(gen_file.read_text())
    stock_name, patched_name = TABLE_OF[(version, name)]
    committed = table(patched_name)
    assert committed["events"] == gen["events"], f"{patched_name}.json is stale: regenerate it"
    assert committed["ppm_sc"] == gen["ppm_sc"]
    assert committed["driver_version"] == MODULE_VERSION[(version, name)]
    assert committed["patch_set"] == name and committed["base"] == stock_name
    assert committed["era"] == table(stock_name)["era"]


@pytest.mark.parametrize("version,name", SETS)
def test_patched_table_only_appends_parameters(version, name):
    stock_name, patched_name = TABLE_OF[(version, name)]
    stock, patched = table(stock_name)["events"], table(patched_name)["events"]
    assert len(stock) == len(patched)
    changed = {}
    for s, p in zip(stock, patched):
        n = len(s["params"])
        assert {k: v for k, v in p.items() if k != "params"} == {k: v for k, v in s.items() if k != "params"}
        assert p["params"][:n] == s["params"], f"event {s['code']} {s['name']}: not append-only"
        if len(p["params"]) > n:
            assert p["dir"] == "<", "only exit events grow"
            changed[s["code"]] = [x["name"] for x in p["params"][n:]]
    assert changed == APPENDS[(version, name)]


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
    root, kdir = xbuild_root()
    work = root / "build" / f"{name}-{uuid.uuid4().hex[:8]}"
    work.parent.mkdir(exist_ok=True)
    patched_tree(version, name, work)
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
        assert run(["modinfo", "-F", "version", str(ko)]).stdout.strip() == MODULE_VERSION[(version, name)]
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


def test_synthesis_is_byte_exact_when_nothing_grows(tmp_path):
    patched = table("scap-0.23.2+replay-complete.1")["events"]
    assert synthesise(CAPTURE, tmp_path / "same.scap", {}, patched) == {}
    assert (tmp_path / "same.scap").read_bytes() == CAPTURE.read_bytes()


def test_stock_sysdig_aborts_on_grown_converter_managed_exits(tmp_path):
    """libscap 0.23.2's savefile converter asserts that an EF_CONVERTER_MANAGED exit event has
    no more parameters than its table (converter.cpp:523); Debian builds keep assertions on."""
    patched = table("scap-0.23.2+replay-complete.1")["events"]
    for code in (1, 71):  # syscall (GENERIC_X), fstat: both EF_CONVERTER_MANAGED
        assert "EF_CONVERTER_MANAGED" in patched[code]["flags"]
        f = tmp_path / f"grown-{code}.scap"
        grown = synthesise(CAPTURE, f, {code: APPENDS[("0.23.2", "replay-complete")][code]}, patched)
        assert grown[code] > 0
        p = stock_sysdig_r(f)
        assert p.returncode != 0
        assert "Assertion `evt_params_num <= expected_params_num' failed" in p.stderr


def test_stock_sysdig_ignores_grown_newfstatat(tmp_path):
    """newfstatat is not converter-managed: 0.41.4 reads the file and prints what it printed
    for the stock capture, ignoring the appended parameter."""
    patched = table("scap-0.23.2+replay-complete.1")["events"]
    assert "EF_CONVERTER_MANAGED" not in patched[419]["flags"]
    f = tmp_path / "grown-419.scap"
    assert synthesise(CAPTURE, f, {419: ["stat"]}, patched)[419] == 39
    p = stock_sysdig_r(f)
    assert p.returncode == 0, p.stderr
    assert p.stdout == (CAPTURE.parent / "new-era-zsh-name.oracle.txt").read_text()


def test_kit_reader_names_the_appended_parameters(tmp_path):
    from sysdig_kit.read import read

    patched = table("scap-0.23.2+replay-complete.1")["events"]
    f = tmp_path / "patched.scap"
    grown = synthesise(CAPTURE, f, APPENDS[("0.23.2", "replay-complete")], patched)
    assert grown == {1: 354, 71: 69, 419: 39}
    df = read(f, event_table="scap-0.23.2+replay-complete.1")
    assert df.attrs["event_table"] == "scap-0.23.2+replay-complete.1"
    row = df[(df.evt_type == "rt_sigprocmask") & (df.evt_dir == "<")].iloc[0]
    assert [a["name"] for a in row.evt_args] == ["ID", "nativeID", "res", "out", "out2"]
    assert {a["name"]: a["value"] for a in row.evt_args}["res"] == struct.pack("<q", -4)
    row = df[(df.evt_type == "fstat") & (df.evt_dir == "<")].iloc[0]
    assert [a["name"] for a in row.evt_args] == ["res", "fd", "stat"]
