"""The artifact bundle of one board and kernel release: scap.ko, sysdig/, manifest.json.

Built in a staging folder next to it and renamed into place only when verified, so the bundle
folder never holds half a build. manifest.json records the inputs' hash: a run with the same
inputs finds it and stops (the no-op).
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
from pathlib import Path

from ..errors import KitError
from .driver import sha256

EM_AARCH64 = 183
RUN_NOTE = ("<install dir>/sysdig/bin/sysdig: a sh wrapper running sysdig/bin/sysdig.bin with the "
            "bundled loader (sysdig/libexec/sysdig, so the process is named sysdig) and "
            "sysdig/lib/ (glibc included); relocatable, needs no libraries from the board")


def load_manifest(path: str | Path) -> dict:
    """manifest.json of a bundle (PATH: the bundle folder or the file itself)."""
    p = Path(path)
    if p.is_dir():
        p = p / "manifest.json"
    if not p.is_file():
        raise KitError(f"no bundle manifest at {p}: run `fab build` for this board first")
    return json.loads(p.read_text())


def elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        raise KitError(f"{path} is not an ELF file")
    return struct.unpack("<H", head[18:20])[0]


def modinfo(ko: Path) -> dict:
    """The .modinfo strings of a module (vermagic, version, api_version, ...), without kmod."""
    info = {}
    for item in ko.read_bytes().split(b"\0"):
        for key in (b"vermagic", b"version", b"api_version", b"schema_version", b"srcversion"):
            if item.startswith(key + b"=") and key.decode() not in info:
                info[key.decode()] = item[len(key) + 1:].decode(errors="replace")
    return info


def sysdig_version(tree: Path) -> str:
    """`sysdig --version` of the arm64 tree, under qemu-user (the host is x86_64)."""
    qemu = shutil.which("qemu-aarch64-static") or shutil.which("qemu-aarch64")
    if not qemu:
        raise KitError("qemu-user is needed to verify the arm64 sysdig: apt-get install "
                       "qemu-user-static")
    cmd = [qemu, str(tree / "libexec" / "sysdig"), "--library-path", str(tree / "lib"),
           "--argv0", "sysdig", str(tree / "bin" / "sysdig.bin"), "--version"]
    r = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or "sysdig version" not in r.stdout:
        raise KitError(f"the arm64 sysdig does not run under qemu-user (rc {r.returncode}): "
                       f"{(r.stderr or r.stdout).strip()[-400:]}")
    return r.stdout.strip().split()[-1]


def verify(stage: Path, release: str) -> dict:
    """ELF machine AArch64 for the module and sysdig; vermagic names the board's release;
    sysdig --version runs. Returns what was found, for the manifest."""
    ko = stage / "scap.ko"
    for f in (ko, stage / "sysdig" / "bin" / "sysdig.bin"):
        if elf_machine(f) != EM_AARCH64:
            raise KitError(f"{f.name}: ELF machine {elf_machine(f)}, not AArch64 ({EM_AARCH64})")
    info = modinfo(ko)
    if info.get("vermagic", "").split(" ")[0] != release:
        raise KitError(f"scap.ko vermagic {info.get('vermagic')!r} does not start with the "
                       f"board's kernel release {release!r}")
    return {"module": info, "sysdig_version": sysdig_version(stage / "sysdig")}


def files_sha256(root: Path) -> dict:
    return {str(p.relative_to(root)): sha256(p) for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.name != "manifest.json"}


def is_current(final: Path, inputs_sha: str) -> bool:
    """The bundle exists, was built from these inputs and its files are intact."""
    m = final / "manifest.json"
    if not m.is_file():
        return False
    man = json.loads(m.read_text())
    return man.get("inputs_sha256") == inputs_sha and man.get("files") == files_sha256(final)


def commit(stage: Path, final: Path, manifest: dict) -> None:
    """Write the manifest and move the staged bundle into place (old one removed after)."""
    manifest["files"] = files_sha256(stage)
    (stage / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    old = final.with_name(final.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    stage.rename(final)
    shutil.rmtree(old, ignore_errors=True)
