"""Cross-build the falcosecurity driver (scap.ko) for arm64 inside the builder image.

The driver source is Debian's falcosecurity-scap-dkms (/usr/src/scap-<version> in the image);
patch sets from sysdig_kit/build/patches/<driver version>/<set>/ are applied in name order.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from ..errors import KitError
from ..paths import package_data
from . import images, kernel

PATCHES = package_data("build", "patches")

# Runs in the container. KDIR: the kernel tree; /out: the staging dir; /patches: ordered patches.
SCRIPT = r"""
set -euo pipefail
src=$(ls -d /usr/src/scap-*)
cp -a "$src" /tmp/drv && cd /tmp/drv
for p in $(ls /patches/*.patch 2>/dev/null | sort); do
  echo "applying $(basename "$p")"; patch -p1 --forward --batch < "$p"
done
if [ "$KIT_KERNEL_SOURCE" != debian-headers ]; then
  # Prepare the board's tree here so kbuild's host tools (fixdep, modpost) are x86_64.
  make ARCH=$KIT_ARCH CROSS_COMPILE=$KIT_CROSS -C "$KDIR" olddefconfig modules_prepare
  rel=$(cat "$KDIR/include/config/kernel.release")
  if [ "$rel" != "$KIT_RELEASE" ]; then
    echo "KIT-ERROR: the prepared tree builds for '$rel', the board runs '$KIT_RELEASE'"; exit 3
  fi
fi
make -j"$(nproc)" ARCH=$KIT_ARCH CROSS_COMPILE=$KIT_CROSS -C "$KDIR" M=/tmp/drv modules
cp scap.ko /out/scap.ko
${KIT_CROSS}gcc --version | head -n1 > /out/.toolchain
chown -R "$KIT_UID:$KIT_GID" /out
"""


# Patch sets a profile gets unless it lists its own (`sysdig.driver_patches: default`): those of
# these names that exist for the driver version. replay-complete makes every syscall exit carry
# its return value and what the kernel wrote back (docs/replay-complete.md); `[]` is the stock
# driver.
DEFAULT_SETS = ("replay-complete",)


def resolve_sets(driver_version: str, sets) -> list[str]:
    """The profile's `driver_patches`: a list of set names, or "default" (DEFAULT_SETS that
    exist for this driver version; none for a driver without them, e.g. the 2022 one)."""
    if sets == "default":
        return [s for s in DEFAULT_SETS if (PATCHES / driver_version / s).is_dir()]
    return list(sets or [])


def patch_files(driver_version: str, sets) -> list[tuple[str, Path]]:
    """(set, file) for each patch of the listed sets, sets in the profile's order, files by name."""
    sets = resolve_sets(driver_version, sets)
    out = []
    for name in sets:
        d = PATCHES / driver_version / name
        files = sorted(d.glob("*.patch")) if d.is_dir() else []
        if not files:
            known = sorted(x.name for x in (PATCHES / driver_version).glob("*")) \
                if (PATCHES / driver_version).is_dir() else []
            raise KitError(f"driver patch set {name!r} not found for driver {driver_version} "
                           f"({d}); known: {', '.join(known) or 'none'}")
        out += [(name, f) for f in files]
    return out


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build(c, profile, image: str, release: str, kdir: str, mounts: dict, stage: Path,
          patches: list[tuple[str, Path]], log_dir: Path) -> None:
    """Build scap.ko into STAGE (the patches are copied in, numbered in application order)."""
    pdir = stage / ".patches"
    pdir.mkdir()
    for i, (_, f) in enumerate(patches):
        shutil.copy(f, pdir / f"{i:03d}-{f.name}")
    env = {"KIT_ARCH": profile.arch, "KIT_CROSS": profile.cross_prefix, "KDIR": kdir,
           "KIT_RELEASE": release, "KIT_KERNEL_SOURCE": profile.kernel["source"],
           "KIT_UID": str(os.getuid()), "KIT_GID": str(os.getgid())}
    volumes = {str(stage): {"bind": "/out", "mode": "rw"},
               str(pdir): {"bind": "/patches", "mode": "ro"}, **mounts}
    log = log_dir / "driver.log"
    try:
        images.run(c, image, ["bash", "-c", SCRIPT], volumes, log,
                   f"building scap.ko for {release}", env)
    except KitError as exc:
        marker = next((ln for ln in log.read_text().splitlines() if ln.startswith("KIT-ERROR")),
                      None)
        if marker and profile.kernel["source"] != "debian-headers":
            kernel.check_release(Path(kdir), release)
        if marker:
            raise KitError(f"{marker[11:]}; set kernel.release / the tree's CONFIG_LOCALVERSION "
                           f"so they agree (log: {log})") from None
        raise exc from None
    finally:
        shutil.rmtree(pdir, ignore_errors=True)
