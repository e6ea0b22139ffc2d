"""A wheel built from the repository, installed in a fresh venv, works with no checkout around:
board profiles, Dockerfile templates, patch sets, event tables and the Fabric tasks all ship
in it. The venv (in a temporary folder) sees this interpreter's packages for the dependencies, but
the kit itself comes from the wheel (asserted).
Runtime ~40 s (the wheel build is most of it; pip fetches setuptools for the isolated build)."""

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def _run(argv, cwd, env, timeout=300):
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv bin folder, env): the kit installed from a freshly built wheel."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # only what the wheel is made of: no build/ left in the checkout
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / f, src / f)
    shutil.copytree(ROOT / "sysdig_kit", src / "sysdig_kit",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
              str(src)], tmp, env)
    assert r.returncode == 0, r.stdout + r.stderr
    (wheel,) = (tmp / "dist").glob("sysdig_kit-*.whl")
    # A venv of this run's own (concurrent runs must not share one), made in well under a
    # second: no pip inside, this pip installs into it (--python).
    home = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(home)
    # The dependencies: this interpreter's own packages, also when it is itself a venv (as in
    # tests/run.sh), which system_site_packages would not reach. Plain path entries: no .pth
    # in them runs, so a checkout's editable install stays out.
    (site_dir,) = home.glob("lib/python*/site-packages")
    (site_dir / "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    r = _run([sys.executable, "-m", "pip", "--python", str(home / "bin" / "python"), "install",
              "-q", "--no-deps", str(wheel)], tmp, env)
    assert r.returncode == 0, r.stdout + r.stderr
    return home / "bin", {**env, "SYSDIG_KIT_BOARDS": str(tmp / "no-own-boards")}


@pytest.fixture
def away(tmp_path):
    """A folder of the user's, with no checkout in it or above it."""
    assert not any((p / "sysdig_kit").exists() for p in (tmp_path, *tmp_path.parents))
    return tmp_path


def test_the_kit_comes_from_the_wheel(installed, away):
    bin_, env = installed
    r = _run([str(bin_ / "python"), "-c", "import sysdig_kit; print(sysdig_kit.__file__)"],
             away, env)
    assert r.returncode == 0 and r.stdout.startswith(str(bin_.parent)), r.stdout + r.stderr


def test_capture_dry_run_knows_the_boards(installed, away):
    bin_, env = installed
    r = _run([str(bin_ / "sysdig-kit"), "capture", "--dry-run", "--proc", "zsh"], away, env)
    assert r.returncode == 0, r.stderr
    assert "# on board qemu-arm64" in r.stdout and 'proc.name="zsh"' in r.stdout
    assert "/sysdig -v -s 4096 -w " in r.stdout
    r = _run([str(bin_ / "sysdig-kit"), "capture", "--dry-run", "--board", "nope"], away, env)
    assert r.returncode == 2 and "known boards: juno, qemu-arm64" in r.stderr
    assert "Traceback" not in r.stderr


def test_read_and_replay_commands(installed, away):
    bin_, env = installed
    kit = str(bin_ / "sysdig-kit")
    patched, stock = DATA / "replay-complete-zsh-s4096.scap", DATA / "stock-0.23.2-zsh-s4096.scap"
    for f in (patched, stock, Path(str(patched) + ".manifest.json")):
        shutil.copy(f, away / f.name)
    r = _run([kit, "check", patched.name], away, env)
    assert r.returncode == 0 and r.stdout.startswith("SUFFICIENT"), r.stdout + r.stderr
    r = _run([kit, "check", stock.name], away, env)
    assert r.returncode == 1 and r.stdout.startswith("INSUFFICIENT"), r.stdout + r.stderr
    r = _run([kit, "info", stock.name], away, env)
    assert r.returncode == 0 and "scap-0.23.2" in r.stdout, r.stdout + r.stderr
    r = _run([kit, "replay-log", patched.name, "-o", "log.jsonl"], away, env)
    assert r.returncode == 0 and (away / "log.jsonl").stat().st_size > 0, r.stderr
    r = _run([kit, "convert", stock.name, "-o", "f.parquet"], away, env)
    assert r.returncode == 0 and (away / "f.parquet").is_file(), r.stderr


def test_fab_tasks_from_ones_own_folder(installed, away):
    bin_, env = installed
    r = _run([str(bin_ / "sysdig-kit"), "fabfile", "."], away, env)
    assert r.returncode == 0, r.stderr
    r = _run([str(bin_ / "python"), "-m", "fabric", "-l"], away, env)
    assert r.returncode == 0, r.stdout + r.stderr
    for name in ("build-juno (build)", "board-up", "deploy", "capture", "demo", "images"):
        assert name in r.stdout
    r = _run([str(bin_ / "python"), "-m", "fabric", "capture", "--dry-run", "--proc", "zsh",
              "-o", "z.scap"], away, env)
    assert r.returncode == 0 and "-w " in r.stdout and 'proc.name="zsh"' in r.stdout, r.stderr


def test_build_inputs_ship(installed, away):
    """What `fab build-juno` reads before Docker: the profile, the rendered builder Dockerfile
    and the patch set, all from the installed package."""
    bin_, env = installed
    code = ("from sysdig_kit import profiles; from sysdig_kit.build import driver, images\n"
            "p = profiles.load('qemu-arm64')\n"
            "print(sorted(f.name for f in images.DOCKERFILES.glob('*.j2')))\n"
            "print(len(driver.patch_files('0.23.2', ['replay-complete'])))\n"
            "print(p.source_file)\n")
    r = _run([str(bin_ / "python"), "-c", code], away, env)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "['builder.Dockerfile.j2', 'userspace-source.Dockerfile.j2']"
    assert lines[1] == "6" and lines[2].startswith(str(bin_.parent))  # replay-complete.2
    assert _run([str(bin_ / "sysdig-kit"), "fabfile", "."], away, env).returncode == 0
    r = _run([str(bin_ / "python"), "-m", "fabric", "build", "--dry-run"], away, env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pair current: sysdig 0.41.4, driver 0.23.2 (Debian sid)" in r.stdout
    assert "builder image sysdig-kit/builder-sid:" in r.stdout
