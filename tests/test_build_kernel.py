"""Kernel tree checks for the Juno path (a prepared `make O=` tree), on small fake trees:
each trap gives one message naming the file. No Docker needed; well under a second."""

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
