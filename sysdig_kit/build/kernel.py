"""The kernel tree a driver is built against (a provider per kernel.source, at the end), and
the two traps of out-of-tree modules.

1. The release string baked into the module (vermagic) must equal the board's `uname -r`
   exactly, or the board refuses it. A source tree defaults to its plain version (`6.1.176`),
   not the vendor's release (`6.1.0-50-arm64`), unless the tree was configured for it.
2. Without the board kernel's `Module.symvers` the module carries no symbol versions (CRCs) and a
   kernel with CONFIG_MODVERSIONS refuses it: `Invalid module format`, dmesg
   `no symbol version for module_layout`. It is written by the kernel's own `make modules`.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
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


# --- kernel source providers ------------------------------------------------------------------
# kernel.source in the profile picks one; each gives the tree the driver is built against:
#   debian-headers  Debian's arm64 headers of the board's suite (the builder image has them)
#   tree            a prepared `make O=` folder of the board kernel's build (kernel.tree)
#   git             kernel.git {url, ref, config}: cloned here, configured, modules_prepare'd
#                   in the builder; kernel.release and kernel.symvers say what the board runs
#   board           like git, but config (/proc/config.gz or /boot/config-R), release (uname -r)
#                   and Module.symvers are taken from the running board (as LISA's kmod builder)

@dataclass
class Prepared:
    release: str | None  # None: the builder image resolves it (debian-headers)
    kdir: str  # the tree in the container ("": the image's /usr/src/linux-headers-<release>)
    mounts: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)  # what identifies this kernel (bundle hash)


def prepare(profile, c=None, image: str | None = None, log_dir: Path | None = None) -> Prepared:
    """The kernel tree of a profile, by its provider (kernel.source)."""
    k = profile.kernel
    src = k.get("source", "debian-headers")
    if src == "debian-headers":
        if k.get("debian_release", profile.sysdig["debian_release"]) != \
                profile.sysdig["debian_release"]:
            raise KitError("kernel.debian_release must equal sysdig.debian_release (the driver "
                           "source and the headers come from one suite)")
        return Prepared(k.get("release"), "")
    if src == "tree":
        tree = check_tree(k.get("tree"), profile.arch, k.get("release"))
        mounts = {str(tree): {"bind": str(tree), "mode": "rw"}}
        if k.get("src"):  # an O= tree's Makefile names its source tree by absolute path
            s = Path(k["src"]).expanduser().resolve()
            mounts[str(s)] = {"bind": str(s), "mode": "ro"}
        return Prepared(k["release"], str(tree), mounts)
    if src in ("git", "board"):
        return _git(profile, from_board=src == "board", c=c, image=image, log_dir=log_dir)
    raise KitError(f"kernel.source {src!r}: one of debian-headers, tree, git, board")


def board_facts(conn) -> dict:
    """From a running board: its release, kernel config text and Module.symvers text (or None
    where the board has none), in two round trips."""
    release = conn.run(["uname", "-r"], timeout=30).stdout.strip()
    q = shlex.quote
    cfg = conn.sh(f"zcat /proc/config.gz 2>/dev/null || cat {q('/boot/config-' + release)}",
                  timeout=60, check=False)
    sym = conn.sh("; ".join(f"test -f {q(p)} && exec cat {q(p)}" for p in symvers_on_board(release))
                  + "; zcat " + q(f"/boot/symvers-{release}.gz") + " 2>/dev/null", timeout=120,
                  check=False)
    return {"release": release, "config": cfg.stdout if "CONFIG_" in cfg.stdout else None,
            "symvers": sym.stdout if sym.stdout.strip() else None}


def symvers_on_board(release: str) -> list[str]:
    """Where distributions keep the running kernel's Module.symvers (kernel headers/devsrc)."""
    return [f"/lib/modules/{release}/build/Module.symvers",
            f"/usr/src/linux-headers-{release}/Module.symvers",
            f"/usr/lib/modules/{release}/build/Module.symvers"]


def makefile_version(tree: Path) -> str:
    """VERSION.PATCHLEVEL.SUBLEVEL + EXTRAVERSION of a kernel source tree's Makefile."""
    f = tree / "Makefile"
    if not f.is_file():
        raise KitError(f"{tree}: no Makefile, not a kernel source tree")
    v = dict(re.findall(r"^(VERSION|PATCHLEVEL|SUBLEVEL|EXTRAVERSION)\s*=[ \t]*(\S*)",
                        f.read_text(errors="replace"), re.MULTILINE))
    if "VERSION" not in v or "PATCHLEVEL" not in v:
        raise KitError(f"{f}: no VERSION/PATCHLEVEL, not a kernel Makefile")
    return f"{v['VERSION']}.{v['PATCHLEVEL']}.{v.get('SUBLEVEL') or 0}{v.get('EXTRAVERSION', '')}"


def set_release(config: str, base: str, release: str) -> str:
    """The .config text with CONFIG_LOCALVERSION making the tree build for `release` (the
    board's `uname -r`): the tree gives `base`, the suffix comes from here. The tree is no git
    checkout (see clone()), so kbuild appends no `+`."""
    if not release.startswith(base):
        raise KitError(f"the kernel source is version {base}, but the board runs {release}: "
                       "point kernel.git.ref at the board kernel's source")
    suffix = release[len(base):]
    out = [ln for ln in config.splitlines()
           if not re.match(r"^(# )?CONFIG_LOCALVERSION(_AUTO)?[= ]", ln)]
    out += [f'CONFIG_LOCALVERSION="{suffix}"', "# CONFIG_LOCALVERSION_AUTO is not set"]
    return "\n".join(out) + "\n"


def clone(url: str, ref: str, dest: Path) -> str:
    """`url` at `ref` (branch, tag or commit) into dest, without .git; the commit id.
    Shallow when the server allows it. Cached: an existing dest with its commit is kept."""
    mark = dest.parent / (dest.name + ".commit")
    if dest.is_dir() and mark.is_file():
        return mark.read_text().strip()
    tmp = dest.parent / (dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)

    def git(*args, check=True):
        r = subprocess.run(["git", "-C", str(tmp), *args], capture_output=True, text=True,
                           check=False, timeout=3600)
        if check and r.returncode:
            raise KitError(f"git {args[0]} {url} {ref}: "
                           + (" ".join(r.stderr.split())[-300:] or f"exit {r.returncode}"))
        return r

    try:
        git("init", "-q")
        if git("fetch", "-q", "--depth", "1", url, ref, check=False).returncode:
            git("fetch", "-q", url)  # a commit id some servers will not serve shallowly
            git("fetch", "-q", "--tags", url, check=False)
            rev = git("rev-parse", "--verify", f"{ref}^{{commit}}", check=False)
            target = rev.stdout.strip() if rev.returncode == 0 else None
            if target is None:
                raise KitError(f"git: {ref!r} is not a branch, tag or commit of {url}")
        else:
            target = "FETCH_HEAD"
        git("checkout", "-q", "--detach", target)
        commit = git("rev-parse", "HEAD").stdout.strip()
        shutil.rmtree(tmp / ".git")  # no git checkout: kbuild adds no `+` to the release
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
        mark.write_text(commit + "\n")
        return commit
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _git(profile, from_board: bool, c=None, image=None, log_dir=None) -> Prepared:
    from ..paths import cache_dir

    k = profile.kernel
    g = k.get("git") or {}
    url, ref = g.get("url"), g.get("ref")
    if not url or not ref:
        raise KitError(f"kernel.source: {k['source']} needs kernel.git.url and kernel.git.ref "
                       "(the board kernel's source)")
    config_src = "board" if from_board else g.get("config")
    release = k.get("release")
    symvers_src = "board" if from_board else k.get("symvers")
    facts = None
    if "board" in (config_src, symvers_src) or release in (None, "board"):
        from .. import board

        with board.connect(profile) as conn:
            facts = board_facts(conn)
    if release in (None, "board"):
        if facts is None:
            raise KitError("kernel.release is not set: the board's `uname -r`")
        release = facts["release"]
    key = hashlib.sha256(f"{url}\0{ref}".encode()).hexdigest()[:16]
    tree = cache_dir("kernels", profile.name) / key
    commit = clone(url, ref, tree)
    # config: the board's, a file, or a defconfig target made in the builder
    if config_src == "board":
        if not facts or not facts["config"]:
            raise KitError(f"board {profile.name} has no /proc/config.gz nor /boot/config-"
                           f"{release}: set kernel.git.config to the kernel's .config file")
        config = facts["config"]
    elif config_src and Path(str(config_src)).expanduser().is_file():
        config = Path(str(config_src)).expanduser().read_text()
    elif config_src and re.fullmatch(r"[\w.-]*defconfig", str(config_src)):
        config = _defconfig(profile, tree, str(config_src), c, image, log_dir)
    else:
        raise KitError(f"kernel.git.config {config_src!r}: a .config file, a defconfig target "
                       "(e.g. defconfig), or `board`")
    (tree / ".config").write_text(set_release(config, makefile_version(tree), release))
    if symvers_src == "board":
        if not facts or not facts["symvers"]:
            raise KitError(
                f"board {profile.name} has no Module.symvers (looked in "
                f"{', '.join(symvers_on_board(release))}): install its kernel headers there, or "
                "set kernel.symvers to the file from the kernel's build")
        (tree / "Module.symvers").write_text(facts["symvers"])
    elif symvers_src and Path(str(symvers_src)).expanduser().is_file():
        shutil.copyfile(Path(str(symvers_src)).expanduser(), tree / "Module.symvers")
    else:
        raise KitError("kernel.symvers: the board kernel's Module.symvers (a file, or `board`); "
                       "without it the board refuses the module ('Invalid module format')")
    check_tree(tree, profile.arch, release)
    inputs = {"url": url, "ref": ref, "commit": commit, "release": release,
              "config_sha256": hashlib.sha256((tree / ".config").read_bytes()).hexdigest(),
              "symvers_sha256": hashlib.sha256((tree / "Module.symvers").read_bytes()).hexdigest()}
    return Prepared(release, str(tree), {str(tree): {"bind": str(tree), "mode": "rw"}}, inputs)


def _defconfig(profile, tree: Path, target: str, c, image, log_dir) -> str:
    """`make ARCH=... <target>` in the builder image (kconfig needs flex, bison, a compiler)."""
    if c is None or image is None:
        raise KitError(f"kernel.git.config {target!r} is made in the builder image (fab build)")
    from . import images

    (tree / ".config").unlink(missing_ok=True)
    images.run(c, image, ["make", "-C", str(tree), f"ARCH={profile.arch}",
                          f"CROSS_COMPILE={profile.cross_prefix}", target],
               {str(tree): {"bind": str(tree), "mode": "rw"}}, log_dir / "defconfig.log",
               f"make {target}")
    return (tree / ".config").read_text()
