"""Board profiles: the shipped files load, defaults and bad input give one-line errors."""

import pytest

from sysdig_kit import profiles
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
