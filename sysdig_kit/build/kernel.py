"""The kernel tree a driver is built against, and the two traps of out-of-tree modules.

1. The release string baked into the module (vermagic) must equal the board's `uname -r`
   exactly, or the board refuses it. A source tree defaults to its plain version (`6.1.176`),
   not the vendor's release (`6.1.0-50-arm64`), unless the tree was configured for it.
2. Without the board kernel's `Module.symvers` the module carries no symbol versions (CRCs) and a
   kernel with CONFIG_MODVERSIONS refuses it: `Invalid module format`, dmesg
   `no symbol version for module_layout`. It is written by the kernel's own `make modules`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import KitError

KCONFIG_ARCH = {"arm64": "CONFIG_ARM64", "x86_64": "CONFIG_X86_64", "arm": "CONFIG_ARM"}


def tree_release(tree: Path) -> str | None:
    """The release a prepared tree builds for (include/config/kernel.release), if prepared."""
    f = tree / "include" / "config" / "kernel.release"
    return f.read_text().strip() if f.is_file() else None


def check_tree(tree: str | Path, arch: str, release: str | None) -> Path:
    """Check a kernel build tree (the board kernel's `make O=` folder) before mounting it."""
    if not tree:
        raise KitError("kernel.tree is not set in the board profile: point it at the board "
                       "kernel's build folder (make O=...), holding .config and Module.symvers")
    t = Path(tree).expanduser().resolve()
    if not t.is_dir():
        raise KitError(f"kernel tree {t} not found (kernel.tree in the board profile)")
    config = t / ".config"
    if not config.is_file():
        raise KitError(f"{config} missing: {t} is not a configured kernel build tree "
                       "(use the O= folder of the board kernel's build)")
    text = config.read_text(errors="replace")
    want = KCONFIG_ARCH.get(arch, f"CONFIG_{arch.upper()}")
    if not re.search(rf"^{want}=y$", text, re.MULTILINE):
        found = [k for k in KCONFIG_ARCH.values() if re.search(rf"^{k}=y$", text, re.MULTILINE)]
        raise KitError(f"{config} is not an {arch} configuration (no {want}=y"
                       + (f"; it has {found[0]}=y" if found else "") + ")")
    if not (t / "Module.symvers").is_file():
        raise KitError(
            f"{t / 'Module.symvers'} missing: without the board kernel's symbol versions the "
            "module is refused on the board ('Invalid module format', dmesg 'no symbol version "
            "for module_layout'); copy Module.symvers from the board kernel's build into the tree")
    if not release:
        raise KitError("kernel.release is not set in the board profile: set it to the board's "
                       "`uname -r` (the module's vermagic must equal it exactly)")
    return t


def check_release(tree: Path, release: str) -> None:
    """After `modules_prepare` (in the container): the tree's release is the board's."""
    have = tree_release(tree)
    if have != release:
        raise KitError(
            f"kernel release mismatch: {tree} builds for {have!r} but the board runs {release!r} "
            "(`uname -r`, kernel.release); the board refuses a module whose vermagic differs. "
            "Use the tree that built the board's kernel, or set its version (Makefile "
            "SUBLEVEL/EXTRAVERSION, CONFIG_LOCALVERSION) to give exactly that release")
