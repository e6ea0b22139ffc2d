"""sysdig userspace for arm64, from one of two providers behind one interface.

Both write the same relocatable tree into STAGE/sysdig/:
  bin/sysdig      a sh wrapper: runs bin/sysdig.bin with the bundled loader and lib/
  libexec/sysdig  the bundled loader (ld-linux-aarch64.so.1), named so the process is `sysdig`
  bin/sysdig.bin  the arm64 executable
  lib/            every shared library it needs, glibc and its loader included
so `<install dir>/sysdig/bin/sysdig` runs on any arm64 glibc userland, whatever its release.

- `debian`: Debian's prebuilt arm64 packages (sysdig + libfalcosecurity + deps) of the pair's
  release, downloaded and unpacked in the builder image. Offline here; what CI runs.
- `source`: cross-builds falcosecurity libs + sysdig from upstream git (URL + ref) in the image of
  dockerfiles/userspace-source.Dockerfile.j2. Needs the internet (or a local mirror URL). The
  driver's patch sets are applied to libs' driver/ as well, so its libscap has the patched event
  table and reads the patched driver's captures natively (and no longer stock ones:
  docs/replay-complete.md).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from .. import paths
from . import images

WRAPPER = """#!/bin/sh
# sysdig {version} ({origin}), run with its own loader and libraries: relocatable.
d=$(dirname "$(readlink -f "$0")")/..
exec "$d/libexec/sysdig" --library-path "$d/lib" --argv0 sysdig "$d/bin/sysdig.bin" "$@"
"""

# Collects an unpacked root (ROOT) into /out/sysdig; shared by both providers.
COLLECT = r"""
mkdir -p /out/sysdig/bin /out/sysdig/lib
cp "$ROOT/usr/bin/sysdig" /out/sysdig/bin/sysdig.bin
for d in "$ROOT/lib/$TRIPLET" "$ROOT/usr/lib/$TRIPLET" "$ROOT/usr/local/lib"; do
  [ -d "$d" ] && find "$d" -maxdepth 1 -name '*.so*' -exec cp -a {} /out/sysdig/lib/ \;
done
# The loader: a real file (bookworm's .debs ship it as a symlink in /lib).
rm -f /out/sysdig/lib/ld-linux-aarch64.so.1
cp -L "$(ls "$ROOT"/lib/ld-linux-aarch64.so.1 "$ROOT"/usr/lib/$TRIPLET/ld-linux-aarch64.so.1 \
  "$ROOT"/lib/$TRIPLET/ld-linux-aarch64.so.1 2>/dev/null | head -n1)" /out/sysdig/lib/
# The loader again as libexec/sysdig: the process is named after the file exec'd, so the
# running sysdig shows as `sysdig` (comm, pgrep, proc.name), not `ld-linux-aarch6`.
mkdir -p /out/sysdig/libexec && cp /out/sysdig/lib/ld-linux-aarch64.so.1 /out/sysdig/libexec/sysdig
"""

DEBIAN = r"""
set -euo pipefail
mkdir -p /tmp/debs/partial /tmp/root
apt-get install -y -q --no-install-recommends --download-only \
  -o Dir::Cache::archives=/tmp/debs sysdig:$ARCH
for d in /tmp/debs/*.deb; do
  dpkg-deb -x "$d" /tmp/root
  dpkg-deb --show --showformat='${Package} ${Version}\n' "$d" >> /out/.packages
done
ROOT=/tmp/root
""" + COLLECT + r"""
chown -R "$KIT_UID:$KIT_GID" /out
"""


class Debian:
    name = "debian"

    def inputs(self, profile) -> dict:
        return {"provider": self.name, "debian_release": profile.sysdig["debian_release"],
                "script": DEBIAN, "wrapper": WRAPPER}

    def build(self, c, profile, builder_image: str, stage: Path, log_dir: Path,
              patches: list[tuple[str, Path]] = ()) -> dict:
        # Debian's prebuilt sysdig has the stock table whatever the driver: it reads patched
        # captures once exported (sysdig-kit export --stock); sysdig-kit reads them natively.
        triplet = profile.cross_prefix.rstrip("-")
        env = {"ARCH": profile.arch, "TRIPLET": triplet,
               "KIT_UID": str(os.getuid()), "KIT_GID": str(os.getgid())}
        images.run(c, builder_image, ["bash", "-c", DEBIAN],
                   {str(stage): {"bind": "/out", "mode": "rw"}}, log_dir / "userspace.log",
                   "unpacking Debian's arm64 sysdig", env)
        pk = dict(ln.split(" ", 1) for ln in (stage / ".packages").read_text().splitlines())
        (stage / ".packages").unlink()
        origin = f"Debian {profile.sysdig['debian_release']} packages"
        _wrapper(stage, pk.get("sysdig", "?"), origin)
        return {"provider": self.name, "origin": origin, "packages": pk}


SOURCE = r"""
set -euo pipefail
git config --global safe.directory '*'
# /w is a cache folder per (sysdig ref, libs ref): a rerun reuses the trees and the build.
clone() {  # URL REF DIR: a tag/branch shallowly, else any commit; kept when already there
  if [ ! -e "$3/.kit-cloned" ]; then
    rm -rf "$3"
    git clone -q --depth 1 --branch "$2" "$1" "$3" 2>/dev/null \
      || { rm -rf "$3"; git clone -q "$1" "$3" && git -C "$3" checkout -q "$2"; }
    touch "$3/.kit-cloned"
  fi
  git -C "$3" rev-parse HEAD > "/out/.commit-$(basename "$3")"
}
clone "$LIBS_GIT" "$LIBS_REF" /w/src/libs
clone "$SYSDIG_GIT" "$SYSDIG_REF" /w/src/sysdig
# The driver's patch sets (replay-complete) go into libs' own driver/ too: libscap compiles
# driver/event_table.c, so this sysdig knows the appended parameters and reads the patched
# driver's captures natively. Marker patches (driver_config.h: not in libs, which has a .in)
# are skipped. Applied once per cache folder (its name carries the patches' hash).
if [ ! -e /w/src/libs/.kit-patched ]; then
  for p in $(ls /patches/*.patch 2>/dev/null | sort); do
    if grep -q '^+++ b/driver_config.h' "$p"; then continue; fi
    echo "applying $(basename "$p") to libs/driver"; patch -p1 --forward --batch -d /w/src/libs/driver < "$p"
  done
  touch /w/src/libs/.kit-patched
fi
mkdir -p /w/build && cd /w/build
# `-include cstdint`: releases older than GCC 13 relied on <cstdint> coming in transitively.
cmake -DCMAKE_TOOLCHAIN_FILE=/toolchain.cmake -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_CXX_FLAGS="-include cstdint" \
  -DUSE_BUNDLED_DEPS=OFF -DFALCOSECURITY_LIBS_SOURCE_DIR=/w/src/libs \
  -DDRIVER_SOURCE_DIR=/w/src/libs/driver -DSYSDIG_VERSION="$SYSDIG_REF" \
  -DBUILD_DRIVER=OFF -DBUILD_BPF=OFF -DBUILD_SYSDIG_MODERN_BPF=OFF -DBUILD_LIBSCAP_MODERN_BPF=OFF \
  -DBUILD_LIBSCAP_GVISOR=OFF -DCREATE_TEST_TARGETS=OFF -DMINIMAL_BUILD=ON \
  -DUSE_BUNDLED_TBB=OFF -DUSE_BUNDLED_JSONCPP=OFF -DUSE_BUNDLED_VALIJSON=OFF -DUSE_BUNDLED_RE2=OFF -DUSE_BUNDLED_B64=OFF -DUSE_BUNDLED_ZLIB=OFF -DUSE_BUNDLED_LUAJIT=OFF \
  -DUSE_BUNDLED_NJSON=OFF -DUSE_BUNDLED_YAMLCPP=OFF -DUSE_BUNDLED_NCURSES=OFF -DUSE_BUNDLED_JQ=OFF -DUSE_BUNDLED_ONIGURUMA=OFF -DUSE_BUNDLED_UTHASH=OFF /w/src/sysdig
make -j"$(nproc)" sysdig
mkdir -p "$ROOT/usr/bin" "$ROOT/usr/lib/$TRIPLET"
cp /w/build/userspace/sysdig/sysdig "$ROOT/usr/bin/sysdig"
# The shared libraries it needs: DT_NEEDED, transitively, from the suite's arm64 libraries.
todo="$ROOT/usr/bin/sysdig"
while [ -n "$todo" ]; do
  f=${todo%% *}; todo=${todo#"$f"}; todo=${todo# }
  for n in $($TRIPLET-readelf -d "$f" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'); do
    [ -e "$ROOT/usr/lib/$TRIPLET/$n" ] && continue
    src=$(ls /usr/lib/$TRIPLET/$n /lib/$TRIPLET/$n /usr/$TRIPLET/lib/$n 2>/dev/null | head -n1 || true)
    [ -n "$src" ] || { echo "KIT-ERROR: $n (needed by $f) not found"; exit 3; }
    cp -L "$src" "$ROOT/usr/lib/$TRIPLET/$n"; todo="$todo $ROOT/usr/lib/$TRIPLET/$n"; todo=${todo# }
  done
done
""" + COLLECT + r"""
chown -R "$KIT_UID:$KIT_GID" /out
"""


class Source:
    name = "source"

    def _params(self, profile) -> dict:
        src = profile.sysdig.get("source") or {}
        return {"debian_release": profile.sysdig["debian_release"], "arch": profile.arch,
                "triplet": profile.cross_prefix.rstrip("-"),
                "libs_git": src["libs"]["git"], "libs_ref": str(src["libs"]["ref"]),
                "sysdig_git": src["sysdig"]["git"], "sysdig_ref": str(src["sysdig"]["ref"])}

    def inputs(self, profile) -> dict:
        return {"provider": self.name, **self._params(profile), "script": SOURCE,
                "wrapper": WRAPPER}

    def build(self, c, profile, builder_image: str, stage: Path, log_dir: Path,
              patches: list[tuple[str, Path]] = ()) -> dict:
        p = self._params(profile)
        tag = ""
        if patches:  # a patched libs gets its own cache folder (trees and build)
            h = hashlib.sha256(b"".join(f.read_bytes() for _, f in patches)).hexdigest()[:12]
            tag = f"_patched-{h}"
        image = images.ensure(c, "userspace-source",
                              images.render("userspace-source", **p), log_dir)
        env = {"ROOT": "/opt/root", "TRIPLET": p["triplet"],
               "LIBS_GIT": p["libs_git"], "LIBS_REF": p["libs_ref"],
               "SYSDIG_GIT": p["sysdig_git"], "SYSDIG_REF": p["sysdig_ref"],
               "KIT_UID": str(os.getuid()), "KIT_GID": str(os.getgid())}
        work = paths.cache_dir("source-build", f"sysdig-{p['sysdig_ref']}_libs-{p['libs_ref']}{tag}")
        pdir = work / "patches"
        shutil.rmtree(pdir, ignore_errors=True)
        pdir.mkdir()
        for i, (_, f) in enumerate(patches):
            shutil.copy(f, pdir / f"{i:03d}-{f.name}")
        volumes = {str(stage): {"bind": "/out", "mode": "rw"}, str(work): {"bind": "/w", "mode": "rw"},
                   str(pdir): {"bind": "/patches", "mode": "ro"}}
        for url in (p["libs_git"], p["sysdig_git"]):  # a local clone/mirror: mounted read-only
            local = url.removeprefix("file://")
            if local.startswith("/"):
                volumes[local] = {"bind": local, "mode": "ro"}
        images.run(c, image, ["bash", "-c", SOURCE], volumes, log_dir / "userspace.log",
                   f"cross-building sysdig {p['sysdig_ref']} + libs {p['libs_ref']}", env)
        commits = {n: (stage / f".commit-{n}").read_text().strip() for n in ("libs", "sysdig")}
        for n in commits:
            (stage / f".commit-{n}").unlink()
        origin = f"source: sysdig {p['sysdig_ref']}, libs {p['libs_ref']}"
        _wrapper(stage, p["sysdig_ref"], origin)
        return {"provider": self.name, "origin": origin, "image": image,
                "sources": {n: {"git": p[f"{n}_git"], "ref": p[f"{n}_ref"], "commit": commits[n]}
                            for n in ("libs", "sysdig")},
                "libs_driver_patches": [f.name for _, f in patches
                                        if "+++ b/driver_config.h" not in f.read_text()]}


PROVIDERS = {"debian": Debian(), "source": Source()}


def provider(profile):
    return PROVIDERS[profile.sysdig["userspace"]]


def _flatten(lib: Path) -> None:
    """Replace symlinks by the files they name (a copy keeps no links: scp/sftp/manifest-safe);
    drop the versioned real files only symlinks led to (the loader asks for sonames) and the
    unversioned `.so` development links."""
    targets = set()
    for link in sorted(p for p in lib.iterdir() if p.is_symlink()):
        real = link.resolve()
        link.unlink()
        if link.name.endswith(".so") or not real.is_file():
            continue
        shutil.copy2(real, link)
        if real.parent == lib:
            targets.add(real.name)
    names = {p.name for p in lib.iterdir()}
    for t in targets - {n for n in names if _is_soname(n, names)}:
        (lib / t).unlink(missing_ok=True)


def _is_soname(name: str, names: set) -> bool:
    """NAME is needed as is: the loader, or no shorter versioned name of the same library."""
    if name.startswith("ld-linux"):
        return True
    stem = name.split(".so")[0] + ".so"
    return not any(n != name and n.startswith(stem + ".") and name.startswith(n + ".")
                   for n in names)


def _wrapper(stage: Path, version: str, origin: str) -> None:
    _flatten(stage / "sysdig" / "lib")
    w = stage / "sysdig" / "bin" / "sysdig"
    w.write_text(WRAPPER.format(version=version, origin=origin))
    w.chmod(0o755)
