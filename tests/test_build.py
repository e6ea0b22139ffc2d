"""The arm64 build, for real: Docker engine (started by tests/setup/30-docker.sh), builder image,
scap.ko cross-built against the qemu-arm64 board's kernel, Debian's arm64 sysdig, verification.

Bundles and images are cached ($SYSDIG_KIT_CACHE, Docker): cold ~3 min, warm ~25 s (most of it
the deliberately failing compile).
"""

import dataclasses
import difflib
import json
import subprocess
import time
from pathlib import Path

import pytest

from sysdig_kit import build, paths, profiles
from sysdig_kit.build import bundle, driver, images, userspace
from sysdig_kit.errors import KitError

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def docker_client():
    return images.client()  # a KitError here says how to start the engine: no skip


@pytest.fixture(scope="module")
def qemu_bundle(docker_client):
    return build.build(profiles.load("qemu-arm64"))


def test_bundle_is_arm64_and_matches_the_board_kernel(qemu_bundle):
    m = bundle.load_manifest(qemu_bundle)
    rel = m["kernel_release"]
    assert qemu_bundle == paths.bundle_dir("qemu-arm64", rel)
    assert rel.endswith("-arm64")
    ko = qemu_bundle / "scap.ko"
    assert bundle.elf_machine(ko) == bundle.EM_AARCH64
    assert bundle.elf_machine(qemu_bundle / "sysdig/bin/sysdig.bin") == bundle.EM_AARCH64
    info = bundle.modinfo(ko)
    assert info["vermagic"].split()[0] == rel and "aarch64" in info["vermagic"]
    # the default build: the replay-complete driver (driver_patches: default), same API/schema
    assert (info["version"], info["api_version"], info["schema_version"]) == (
        "0.23.2+replay-complete.2", "8.0.4", "4.1.0")
    assert [p["set"] for p in m["driver"]["patches"]] == ["replay-complete"] * 6
    assert m["driver"]["vermagic"] == info["vermagic"]
    assert m["sysdig"]["version"].startswith("0.41.4")
    assert m["sysdig"]["packages"]["libfalcosecurity0.23"].startswith("0.23.2")
    assert m["toolchain"].startswith("aarch64-linux-gnu-gcc")
    # Every file is listed with its sha256, and the tree has no symlinks (copies cleanly).
    assert m["files"] == bundle.files_sha256(qemu_bundle)
    assert not [p for p in qemu_bundle.rglob("*") if p.is_symlink()]


def test_sysdig_wrapper_runs_under_qemu_user(qemu_bundle):
    # The wrapper itself (binfmt qemu-aarch64, registered by 30-docker.sh), from another folder.
    r = subprocess.run([str(qemu_bundle / "sysdig/bin/sysdig"), "--version"],
                       capture_output=True, text=True, timeout=120, check=True)
    assert r.stdout.startswith("sysdig version 0.41.4")
    # The process is named sysdig (pgrep, comm), not after the loader.
    assert (qemu_bundle / "sysdig/libexec/sysdig").read_bytes() == \
        (qemu_bundle / "sysdig/lib/ld-linux-aarch64.so.1").read_bytes()


def test_second_build_is_a_noop(qemu_bundle):
    before = (qemu_bundle / "manifest.json").read_text()
    t = time.monotonic()
    assert build.build(profiles.load("qemu-arm64")) == qemu_bundle
    assert time.monotonic() - t < 15
    assert (qemu_bundle / "manifest.json").read_text() == before


def test_failed_compile_shows_compiler_output_and_writes_nothing(docker_client, qemu_bundle,
                                                                tmp_path, monkeypatch):
    image = bundle.load_manifest(qemu_bundle)["builder_image"]
    main_c = images.read_file(docker_client, image, "/usr/src/scap-0.23.2/main.c") + "\n"
    old = main_c.splitlines(keepends=True)
    diff = difflib.unified_diff(old, ["#error sysdig-kit test: broken on purpose\n", *old],
                                "a/main.c", "b/main.c")
    sets = tmp_path / "0.23.2" / "broken"
    sets.mkdir(parents=True)
    (sets / "0001-break.patch").write_text("".join(diff))
    monkeypatch.setattr(driver, "PATCHES", tmp_path)
    q = profiles.load("qemu-arm64")
    p = dataclasses.replace(q, name="test-broken",
                            sysdig={**q.sysdig, "driver_patches": ["broken"]})
    out = paths.cache_dir("bundles", "test-broken")
    before = set(out.iterdir()) if out.is_dir() else set()  # (a killed earlier run's leftovers)
    with pytest.raises(KitError) as exc:
        build.build(p)
    msg = str(exc.value)
    assert "broken on purpose" in msg and "full log:" in msg
    log = msg.rsplit("full log: ", 1)[1].strip()
    assert "0001-break.patch" in Path(log).read_text()
    # Nothing half-written by this build: no bundle, no leftover staging folder.
    assert set(out.iterdir()) == before


def test_unknown_patch_set_is_named(docker_client):
    with pytest.raises(KitError, match="patch set 'nope' not found for driver 0.23.2"):
        driver.patch_files("0.23.2", ["nope"])


def test_no_engine_message(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(KitError, match="no Docker engine answers.*dockerd"):
        images.client()


def test_providers_share_one_interface():
    q = profiles.load("qemu-arm64")
    for name, prov in userspace.PROVIDERS.items():
        assert prov.name == name and callable(prov.build)
        json.dumps(prov.inputs(q))  # hashable inputs for the no-op check
    src = userspace.PROVIDERS["source"].inputs(q)
    assert src["sysdig_ref"] == "0.41.4" and src["libs_ref"] == "0.23.2"
    rendered = images.render("userspace-source", **userspace.PROVIDERS["source"]._params(q))
    assert "FROM debian:sid" in rendered and "0.41.4" in rendered


def test_fab_lists_every_task_with_help():
    out = subprocess.run(["fab", "-l"], capture_output=True, text=True, check=True).stdout
    for t in ("build-juno (build)", "images"):  # build: an alias of build-juno, not a copy
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(t))
        assert len(line.split()) > 2, line
