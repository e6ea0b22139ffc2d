"""Kernel tree checks for the Juno path (a prepared `make O=` tree), on small fake trees:
each trap gives one message naming the file; the `git` provider on a local repository made
here (clone a tag/branch/commit, apply a config and the board's release, Module.symvers, then
modules_prepare by kbuild's release rule); `board` facts read from a running kernel. No Docker,
no network; ~2 s."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from sysdig_kit.build import kernel
from sysdig_kit.errors import KitError


def tree(tmp_path, config="CONFIG_ARM64=y\nCONFIG_MODULES=y\n", symvers=True, release=None):
    t = tmp_path / "out"
    t.mkdir()
    if config is not None:
        (t / ".config").write_text(config)
    if symvers:
        (t / "Module.symvers").write_text("0x12345678\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n")
    if release:
        (t / "include" / "config").mkdir(parents=True)
        (t / "include" / "config" / "kernel.release").write_text(release + "\n")
    return t


def test_good_tree(tmp_path):
    t = tree(tmp_path, release="6.1.0-juno")
    assert kernel.check_tree(t, "arm64", "6.1.0-juno") == t.resolve()
    kernel.check_release(t, "6.1.0-juno")
    assert kernel.tree_release(t) == "6.1.0-juno"


def test_unset_or_missing_tree(tmp_path):
    with pytest.raises(KitError, match="kernel.tree is not set"):
        kernel.check_tree("", "arm64", "6.1.0")
    with pytest.raises(KitError, match="not found"):
        kernel.check_tree(tmp_path / "nope", "arm64", "6.1.0")


def test_missing_config(tmp_path):
    t = tree(tmp_path, config=None)
    with pytest.raises(KitError, match=r"out/\.config missing"):
        kernel.check_tree(t, "arm64", "6.1.0")


def test_wrong_arch_config(tmp_path):
    t = tree(tmp_path, config="CONFIG_X86_64=y\nCONFIG_MODULES=y\n")
    with pytest.raises(KitError, match=r"\.config is not an arm64 configuration.*CONFIG_X86_64=y"):
        kernel.check_tree(t, "arm64", "6.1.0")


def test_missing_module_symvers(tmp_path):
    t = tree(tmp_path, symvers=False)
    with pytest.raises(KitError, match=r"out/Module.symvers missing.*Invalid module format"):
        kernel.check_tree(t, "arm64", "6.1.0")


def test_release_unset_or_mismatch(tmp_path):
    t = tree(tmp_path, release="6.1.176")
    with pytest.raises(KitError, match="kernel.release is not set.*uname -r"):
        kernel.check_tree(t, "arm64", None)
    # Checked once the container has prepared the tree (a stale file must not block a fix).
    kernel.check_tree(t, "arm64", "6.1.0-50-arm64")
    with pytest.raises(KitError, match="release mismatch.*'6.1.176'.*'6.1.0-50-arm64'"):
        kernel.check_release(t, "6.1.0-50-arm64")
    kernel.check_release(t, "6.1.176")


# --- kernel source providers: git (a local repository made here, no network) and board ----

FAKE_MAKEFILE = """\
VERSION = 6
PATCHLEVEL = 1
SUBLEVEL = 176
EXTRAVERSION =
-include .config
LV := $(patsubst "%",%,$(CONFIG_LOCALVERSION))
# kbuild's rule: the Makefile's version + CONFIG_LOCALVERSION (+ `+` in a dirty git checkout)
kernelrelease:
\t@echo $(VERSION).$(PATCHLEVEL).$(SUBLEVEL)$(EXTRAVERSION)$(LV)$(shell test -d .git && echo +)
olddefconfig:
\t@test -f .config
modules_prepare:
\t@mkdir -p include/config && $(MAKE) -s kernelrelease > include/config/kernel.release
"""


def _git(repo, *args):
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def kernel_repo(tmp_path, monkeypatch):
    """A kernel-shaped git repository: two commits, the first tagged v6.1.176."""
    monkeypatch.setenv("SYSDIG_KIT_CACHE", str(tmp_path / "cache"))
    repo = tmp_path / "linux"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    (repo / "Makefile").write_text(FAKE_MAKEFILE)
    _git(repo, "add", "Makefile")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    _git(repo, "tag", "v6.1.176")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "README").write_text("two\n")
    _git(repo, "add", "README")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "two")
    cfg = tmp_path / "juno.config"
    cfg.write_text('CONFIG_ARM64=y\nCONFIG_MODULES=y\nCONFIG_LOCALVERSION="-old"\n'
                   "CONFIG_LOCALVERSION_AUTO=y\n")
    sym = tmp_path / "Module.symvers"
    sym.write_text("0x12345678\tmodule_layout\tvmlinux\tEXPORT_SYMBOL\t\n")
    return repo, first, cfg, sym


def _prof(repo, ref, cfg, sym, release="6.1.176-juno1", **kw):
    k = {"source": "git", "git": {"url": str(repo), "ref": ref, "config": str(cfg)},
         "release": release, "symvers": str(sym) if sym else None, **kw}
    return SimpleNamespace(name="juno-t", arch="arm64", cross_prefix="aarch64-linux-gnu-",
                           kernel=k, sysdig={"debian_release": "sid"})


def test_git_provider_clones_configures_and_prepares(kernel_repo):
    repo, first, cfg, sym = kernel_repo
    p = kernel.prepare(_prof(repo, "v6.1.176", cfg, sym))
    tree = Path(p.kdir)
    assert p.release == "6.1.176-juno1" and p.inputs["commit"] == first
    assert not (tree / ".git").exists() and not (tree / "README").exists()  # the tag's tree
    config = (tree / ".config").read_text()
    assert 'CONFIG_LOCALVERSION="-juno1"' in config and "CONFIG_ARM64=y" in config
    assert '"-old"' not in config and "CONFIG_LOCALVERSION_AUTO=y" not in config
    assert (tree / "Module.symvers").read_text() == sym.read_text()
    assert p.mounts == {str(tree): {"bind": str(tree), "mode": "rw"}}
    # what the builder then runs on it: olddefconfig modules_prepare (kbuild's release rule)
    subprocess.run(["make", "-s", "-C", str(tree), "olddefconfig", "modules_prepare"],
                   check=True, capture_output=True)
    kernel.check_release(tree, "6.1.176-juno1")
    # a branch and a commit id (not a branch tip) work too; the clone is cached per url+ref
    assert kernel.prepare(_prof(repo, first, cfg, sym)).inputs["commit"] == first
    tip = kernel.prepare(_prof(repo, "main", cfg, sym))
    assert tip.inputs["commit"] == _git(repo, "rev-parse", "main")
    assert (Path(tip.kdir) / "README").is_file()


@pytest.mark.parametrize("change, match", [
    ({"ref": "no-such-ref"}, "'no-such-ref' is not a branch, tag or commit"),
    ({"release": "6.6.0-juno"}, "source is version 6.1.176, but the board runs 6.6.0-juno"),
    ({"sym": None}, "kernel.symvers: the board kernel's Module.symvers"),
    ({"cfg": "/no/such.config"}, "kernel.git.config '/no/such.config'"),
    ({"url": ""}, "needs kernel.git.url and kernel.git.ref"),
])
def test_git_provider_errors_are_one_line(kernel_repo, change, match):
    repo, _, cfg, sym = kernel_repo
    args = {"repo": repo, "ref": "v6.1.176", "cfg": cfg, "sym": sym, "release": "6.1.176-juno1"}
    args.update({k: v for k, v in change.items() if k != "url"})
    prof = _prof(args["repo"], args["ref"], args["cfg"], args["sym"], args["release"])
    if "url" in change:
        prof.kernel["git"]["url"] = ""
    with pytest.raises(KitError, match=match) as e:
        kernel.prepare(prof)
    assert "\n" not in str(e.value)


def test_board_facts_from_a_running_kernel():
    # this machine stands in for the board: the same commands run over SSH on a real one
    import os

    from sysdig_kit.board import LocalConnection

    facts = kernel.board_facts(LocalConnection())
    assert facts["release"] == os.uname().release
    if Path("/proc/config.gz").exists():
        assert "CONFIG_" in facts["config"]
    assert facts["symvers"] is None or "\t" in facts["symvers"]
