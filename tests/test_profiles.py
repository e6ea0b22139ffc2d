"""Board profiles: the shipped files load, defaults and bad input give one-line errors."""

from pathlib import Path

import pytest

import sysdig_kit
from sysdig_kit import profiles, versions
from sysdig_kit.errors import KitError


def test_shipped_profiles_load():
    assert {"juno", "qemu-arm64"} <= set(profiles.names())
    q = profiles.load("qemu-arm64")
    assert (q.arch, q.cross_prefix, q.ssh.host, q.ssh.user) == (
        "arm64", "aarch64-linux-gnu-", "127.0.0.1", "root")
    assert q.ssh.key.endswith("board/qemu-arm64/id_ed25519") and "$" not in q.ssh.key
    assert profiles.pair(q) == {"debian_release": "sid", "sysdig": "0.41.4", "driver": "0.23.2"}
    assert q.kernel["source"] == "debian-headers" and q.install["dir"]
    assert profiles.load("juno").kernel["source"] == "tree"


def test_default_board(monkeypatch):
    monkeypatch.delenv("SYSDIG_KIT_BOARD", raising=False)
    # The shipped juno profile has no host yet: the emulated board is the default.
    assert profiles.default_board() == "qemu-arm64"
    monkeypatch.setenv("SYSDIG_KIT_BOARD", "juno")
    assert profiles.default_board() == "juno"


def test_bad_profiles(tmp_path):
    with pytest.raises(KitError, match="no board profile"):
        profiles.load("nosuchboard")
    bad = tmp_path / "b.yaml"
    bad.write_text("arch: arm64\ncross_prefix: x-\nssh: {host: h}\nsysdig: {pair: 1999}\n")
    with pytest.raises(KitError, match="sysdig.pair"):
        profiles.load(bad)
    bad.write_text("arch: arm64\ncross_prefix: x-\nssh: {host: h}\nkernel: {source: magic}\n")
    with pytest.raises(KitError, match="kernel.source"):
        profiles.load(bad)


def test_shipped_files_live_in_the_package():
    # A wheel carries only what is inside sysdig_kit/: profiles, templates and patches are there.
    from sysdig_kit.build import driver, images

    pkg = Path(sysdig_kit.__file__).resolve().parent
    for d in (profiles.BOARDS_DIR, images.DOCKERFILES, driver.PATCHES):
        assert d.resolve().is_relative_to(pkg), d
    assert sorted(x.name for x in images.DOCKERFILES.glob("*.j2")) == [
        "builder.Dockerfile.j2", "userspace-source.Dockerfile.j2"]


def test_own_boards_folder_comes_first(tmp_path, monkeypatch):
    monkeypatch.setenv("SYSDIG_KIT_BOARDS", str(tmp_path))
    (tmp_path / "lab.yaml").write_text("arch: arm64\ncross_prefix: aarch64-linux-gnu-\n"
                                       "ssh: {host: lab.example}\n")
    (tmp_path / "juno.yaml").write_text("arch: arm64\ncross_prefix: aarch64-linux-gnu-\n"
                                        "ssh: {host: juno.lab.example, port: 2200}\n")
    assert {"lab", "juno", "qemu-arm64"} <= set(profiles.names())
    assert profiles.load("lab").ssh.host == "lab.example"
    juno = profiles.load("juno")  # one's own juno hides the packaged one
    assert (juno.ssh.host, juno.ssh.port, juno.source_file) == (
        "juno.lab.example", 2200, tmp_path / "juno.yaml")
    assert profiles.load("qemu-arm64").source_file.parent == profiles.BOARDS_DIR
    with pytest.raises(KitError, match=r"looked in .*known boards: .*lab"):
        profiles.load("nosuchboard")


def test_own_boards_default_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("SYSDIG_KIT_BOARDS", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert profiles.search_dirs()[0] == tmp_path / "sysdig-kit" / "boards"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert profiles.search_dirs()[0] == tmp_path / ".config" / "sysdig-kit" / "boards"


def test_replay_complete_is_on_by_default_where_the_driver_has_it(tmp_path):
    from sysdig_kit.build import driver

    for name in profiles.names():  # every shipped profile builds the default sets
        assert profiles.load(name).sysdig["driver_patches"] == "default"
    assert driver.resolve_sets("0.23.2", "default") == ["replay-complete"]
    assert driver.resolve_sets(versions.pair("2022").driver, "default") == []  # none for it
    assert [s for s, _ in driver.patch_files("0.23.2", "default")] == ["replay-complete"] * 6
    f = tmp_path / "b.yaml"
    f.write_text("arch: arm64\ncross_prefix: x-\nssh: {host: h}\nsysdig: {driver_patches: []}\n")
    assert profiles.load(f).sysdig["driver_patches"] == []  # the stock driver, by choice
    f.write_text("arch: arm64\ncross_prefix: x-\nssh: {host: h}\n")
    assert profiles.load(f).sysdig["driver_patches"] == "default"
    f.write_text("arch: arm64\ncross_prefix: x-\nssh: {host: h}\nsysdig: {driver_patches: yes}\n")
    with pytest.raises(KitError, match="driver_patches must be `default` or a list"):
        profiles.load(f)
