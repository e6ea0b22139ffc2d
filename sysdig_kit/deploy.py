"""Deploy the artifact bundle to a board: push, install, check vermagic, load the driver, smoke.

The bundle for the board's running kernel (`uname -r`) comes from
sysdig_kit.paths.bundle_dir(board, release). Its module's vermagic is checked here, on the
host, before anything is pushed or loaded: a module for another kernel is refused with a clear
message instead of insmod's "Invalid module format". A bundle is identified by the sha256 of
its manifest (which holds every file's sha256); deploying the same bundle again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import tarfile
import tempfile
import time
from pathlib import Path

from . import board, paths
from .errors import KitError

MODULE = "scap"


install_dir = board.install_dir


def module_vermagic(ko: Path) -> str:
    """The `vermagic=` string of a kernel module, read from its .modinfo (any architecture)."""
    m = re.search(rb"(?:^|\0)vermagic=([^\0]*)\0", ko.read_bytes())
    if not m:
        raise KitError(f"{ko}: no vermagic in the module; not a kernel module?")
    return m.group(1).decode(errors="replace")


def check_vermagic(ko: Path, release: str) -> str:
    vm = module_vermagic(ko)
    if vm.split()[0] != release:
        raise KitError(f"refusing to load {ko.name}: built for kernel {vm.split()[0]!r} "
                       f"(vermagic {vm!r}), but the board runs {release!r}; rebuild the bundle "
                       "for this kernel (fab build)")
    return vm


def _load_manifest(d: Path) -> dict:
    try:
        from .build.bundle import load_manifest
    except ImportError:  # the build stage is optional at runtime: the file is plain JSON
        def load_manifest(p):
            return json.loads(Path(p).read_text())
    return load_manifest(d / "manifest.json")


def _verify(d: Path, manifest: dict) -> None:
    """Every file the manifest lists is there with its sha256 (a half-copied bundle is refused)."""
    files = manifest.get("files") or manifest.get("sha256") or {}
    for rel, want in files.items():
        want = want.get("sha256") if isinstance(want, dict) else want
        f = d / rel
        if not f.is_file():
            raise KitError(f"bundle {d}: {rel} listed in manifest.json is missing")
        if hashlib.sha256(f.read_bytes()).hexdigest() != want:
            raise KitError(f"bundle {d}: {rel} does not match its sha256 in manifest.json")


def bundle_for(profile, release: str) -> tuple[Path, dict, str]:
    d = paths.bundle_dir(profile.name, release)
    if not (d / "manifest.json").is_file() or not (d / "scap.ko").is_file():
        raise KitError(f"no bundle for board {profile.name}, kernel {release} in {d}; "
                       f"build it first: fab build --board {profile.name}")
    manifest = _load_manifest(d)
    _verify(d, manifest)
    bundle_id = hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest()
    return d, manifest, bundle_id


def _state(c, inst: str) -> dict:
    q = shlex.quote
    out = c.sh(f"uname -r; cat {q(inst + '/.bundle-id')} 2>/dev/null || echo; "
                       f"test -d /sys/module/{MODULE} && echo loaded || echo unloaded; "
                       f"ls /dev/{MODULE}0 >/dev/null 2>&1 && echo dev || echo nodev",
               timeout=60).stdout.split("\n")
    release, bid, loaded, dev = (out + ["", "", "", ""])[:4]
    return {"release": release.strip(), "bundle_id": bid.strip(), "loaded": loaded == "loaded",
            "dev": dev.strip() == "dev"}


def deploy(profile, force: bool = False, log=print, boot: bool = False) -> dict:
    """Make the board run the bundle for its kernel; returns what was done (changed: bool).
    boot=True powers the board on first if it is down."""
    t0 = time.monotonic()
    inst = install_dir(profile)
    with board.connect(profile, boot=boot) as c:
        st = _state(c, inst)
        d, manifest, bundle_id = bundle_for(profile, st["release"])
        vermagic = check_vermagic(d / "scap.ko", st["release"])  # before anything is loaded
        changed = force or st["bundle_id"] != bundle_id
        if changed:
            _install(c, d, inst, bundle_id, reload=st["loaded"])
        if changed or not st["loaded"]:
            _load(c, inst)
        from .replayer.host import ship  # the replayer runs where the program runs (issue 13)

        ship(c, inst, log=log)
        _wait_dev(c)
        smoke = _smoke(c, inst)
    took = round(time.monotonic() - t0, 1)
    log(f"deployed to {profile.name} ({st['release']}): "
        f"{'installed' if changed else 'unchanged'}, driver loaded, smoke capture "
        f"{smoke} events, {took} s")
    return {"changed": changed, "kernel_release": st["release"], "vermagic": vermagic,
            "bundle": str(d), "bundle_id": bundle_id, "smoke_events": smoke, "seconds": took,
            "versions": {k: manifest.get(k) for k in ("sysdig", "driver", "versions") if k in manifest}}


def _install(c, d: Path, inst: str, bundle_id: str, reload: bool) -> None:
    q = shlex.quote
    with tempfile.TemporaryDirectory() as tmp:
        tgz = Path(tmp) / "bundle.tar.gz"
        with tarfile.open(tgz, "w:gz") as tar:
            for name in sorted(p.name for p in d.iterdir()):
                tar.add(d / name, arcname=name)
        c.push(tgz, "/tmp/sysdig-kit-bundle.tar.gz")
    if reload:  # the old driver goes before its files do
        c.run(["rmmod", MODULE], timeout=60)
    new = inst + ".new"
    c.sh(f"rm -rf {q(new)} && mkdir -p {q(new)} && "
         f"tar -xzf /tmp/sysdig-kit-bundle.tar.gz -C {q(new)} && "
         f"rm -f /tmp/sysdig-kit-bundle.tar.gz && "
         f"echo {q(bundle_id)} > {q(new + '/.bundle-id')} && "
         f"rm -rf {q(inst)} && mv {q(new)} {q(inst)}", timeout=300)


def _load(c, inst: str) -> None:
    """insmod, unless the same driver got loaded meanwhile (another session on the board).
    A refusal says what the board's kernel said (dmesg), the only place the reason is."""
    ko = shlex.quote(f"{inst}/scap.ko")
    res = c.sh(f"test -d /sys/module/{MODULE} || insmod {ko}", check=False, timeout=60)
    if not res.ok:
        dmesg = board.dmesg_tail(c, 8).replace("\n", " | ")
        raise KitError(f"insmod {inst}/scap.ko failed on board {c.name}: "
                       f"{res.stderr.strip()}; dmesg: {dmesg}")


def _wait_dev(c, timeout: float = 20) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if c.sh(f"ls /dev/{MODULE}0", check=False, timeout=30).ok:
            return
        time.sleep(0.5)
    raise KitError(f"driver loaded but /dev/{MODULE}0 did not appear within {timeout:.0f} s")


def _smoke(c, inst: str) -> int:
    res = c.run([f"{inst}/sysdig/bin/sysdig", "-n", "10"], timeout=180, check=False)
    lines = [x for x in res.stdout.splitlines() if x.strip()]
    if not res.ok or not lines:
        raise KitError(f"smoke capture `sysdig -n 10` failed on the board (rc {res.rc}): "
                       f"{(res.stderr or res.stdout).strip()[-300:]}")
    return len(lines)


def undeploy(profile, log=print) -> None:
    inst = install_dir(profile)
    with board.connect(profile) as c:
        st = _state(c, inst)
        if st["loaded"]:
            c.run(["rmmod", MODULE], timeout=60)
        c.run(["rm", "-rf", inst, inst + ".new"], timeout=60)
    log(f"undeployed from {profile.name}: driver {'unloaded' if st['loaded'] else 'was not loaded'}, "
        f"{inst} removed")
