"""Build the arm64 artifact bundle of a board: scap.ko + a relocatable sysdig + manifest.json.

`build(profile)` is what `fab build` / `fab build-juno` run. Everything happens in Docker
builder images (sysdig_kit/build/images.py); outputs land in paths.bundle_dir(board, release).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path

from .. import paths, profiles
from ..errors import KitError
from . import bundle, driver, images, kernel, userspace


def _builder(profile: profiles.Profile) -> tuple[str, str]:
    """(image name, rendered Dockerfile) of a profile's builder (one per suite and kernel
    flavour)."""
    suite, ksrc = profile.sysdig["debian_release"], profile.kernel["source"]
    text = images.render("builder", debian_release=suite, arch=profile.arch,
                         gnu_triplet=profile.cross_prefix.rstrip("-"), kernel_source=ksrc)
    return f"builder-{suite}" + ("" if ksrc == "debian-headers" else "-tree"), text


def builder_image(c, profile: profiles.Profile, logs: Path) -> str:
    """The builder image of a profile, built when missing."""
    name, text = _builder(profile)
    return images.ensure(c, name, text, logs)


def plan(profile: profiles.Profile) -> str:
    """What `build` would use, without Docker or a board: pair, builder image, kernel source,
    userspace provider, patch set files, where the bundle goes."""
    pair = profiles.pair(profile)
    name, text = _builder(profile)
    patches = driver.patch_files(pair["driver"], profile.sysdig.get("driver_patches", "default"))
    lines = [f"board {profile.name} ({profile.source_file})",
             (f"pair {profile.sysdig['pair']}: sysdig {pair['sysdig']}, driver {pair['driver']}"
              f" (Debian {pair['debian_release']})"),
             f"builder image {images.image_tag(name, text)} (rendered from {images.DOCKERFILES})",
             f"kernel source {profile.kernel['source']}",
             f"userspace {profile.sysdig['userspace']}",
             *(f"patch {s}/{f.name} sha256 {driver.sha256(f)[:16]}" for s, f in patches),
             f"bundle {paths.cache_dir('bundles', profile.name)}/<kernel release>/"]
    return "\n".join(lines)


def build(profile: profiles.Profile, force: bool = False) -> Path:
    """Build (or find current) the bundle of PROFILE; returns the bundle folder."""
    t0 = time.monotonic()
    pair = profiles.pair(profile)
    c = images.client()
    logs = paths.cache_dir("logs", profile.name)
    image = builder_image(c, profile, logs)
    kern = kernel.prepare(profile, c, image, logs)
    release, kdir, mounts = kern.release, kern.kdir, kern.mounts
    if release is None:
        release = images.read_file(c, image, "/kit/kernel-release")
    if not kdir:
        kdir = f"/usr/src/linux-headers-{release}"
    drv_version = images.read_file(c, image, "/kit/driver-version")
    if drv_version != pair["driver"]:
        raise KitError(f"the builder's driver is {drv_version}, but pair {profile.sysdig['pair']!r}"
                       f" needs {pair['driver']}: sysdig.debian_release does not match the pair")
    patches = driver.patch_files(drv_version, profile.sysdig.get("driver_patches", "default"))
    prov = userspace.provider(profile)
    inputs = {"image": image, "release": release, "kdir": kdir, "kernel": profile.kernel,
              **({"kernel_tree": kern.inputs} if kern.inputs else {}),
              "sysdig": profile.sysdig, "cross": profile.cross_prefix, "script": driver.SCRIPT,
              "patches": [(s, f.name, driver.sha256(f)) for s, f in patches],
              "userspace": prov.inputs(profile)}  # the source provider patches libs too
    inputs_sha = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    final = paths.cache_dir("bundles", profile.name) / release
    if not force and bundle.is_current(final, inputs_sha):
        images.console.print(f"bundle {final} is up to date ({time.monotonic() - t0:.1f} s)")
        return final
    stage = Path(tempfile.mkdtemp(prefix=f".{release}.", dir=final.parent))
    stage.chmod(0o755)
    try:
        t1 = time.monotonic()
        driver.build(c, profile, image, release, kdir, mounts, stage, patches, logs)
        t_driver = time.monotonic() - t1
        t1 = time.monotonic()
        us = prov.build(c, profile, image, stage, logs, patches)
        t_user = time.monotonic() - t1
        warnings = []
        libs_ref = us.get("sources", {}).get("libs", {}).get("ref")
        if libs_ref and libs_ref != pair["driver"]:
            warnings.append(f"userspace built from libs {libs_ref}, driver is {pair['driver']}: "
                            "their API/schema versions may not match")
            images.console.print(f"warning: {warnings[-1]}")
        found = bundle.verify(stage, release)
        toolchain = (stage / ".toolchain").read_text().strip()
        (stage / ".toolchain").unlink()
        mod = found["module"]
        manifest = {
            "board": profile.name, "arch": profile.arch, "kernel_release": release,
            "kernel": {**profile.kernel, "release": release, "build_dir": kdir},
            "pair": profile.sysdig["pair"],
            "driver": {"version": mod.get("version"), "api_version": mod.get("api_version"),
                       "schema_version": mod.get("schema_version"), "vermagic": mod["vermagic"],
                       "source": f"Debian {pair['debian_release']} falcosecurity-scap-dkms "
                                 + images.read_file(c, image, "/kit/driver-package"),
                       "patches": [{"set": s, "file": f.name, "sha256": driver.sha256(f)}
                                   for s, f in patches]},
            "sysdig": {"version": found["sysdig_version"], **us,
                       "run": "sysdig/bin/sysdig", "layout": bundle.RUN_NOTE},
            "toolchain": toolchain, "builder_image": image, "warnings": warnings,
            "inputs_sha256": inputs_sha,
            "built_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "build_seconds": {"driver": round(t_driver, 1), "userspace": round(t_user, 1),
                              "total": round(time.monotonic() - t0, 1)},
        }
        bundle.commit(stage, final, manifest)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    images.console.print(f"bundle {final}: scap.ko {mod.get('version')} ({mod['vermagic']}), "
                         f"sysdig {found['sysdig_version']} ({time.monotonic() - t0:.0f} s)")
    return final
