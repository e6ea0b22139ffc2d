"""The Fabric tasks ship in the package and agree with the CLI: names, flags, defaults."""

import os
import subprocess
import sys
from pathlib import Path

from sysdig_kit import cli, paths
from sysdig_kit.tasks import ns

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _task_flags(name: str) -> dict[str, list[str]]:
    return {a.name.replace("_", "-"): sorted(a.names, key=len)
            for a in ns[name].get_arguments()}


def _cli_flags(name: str) -> dict[str, list[str]]:
    return {max(p.opts, key=len).lstrip("-"): sorted(p.opts, key=len)
            for p in cli.main.commands[name].params if p.opts[0].startswith("-")}


def test_capture_task_and_cli_have_the_same_flags():
    task, command = _task_flags("capture"), _cli_flags("capture")
    # --keep-vdso only goes with `-- CMD` (the replayer's capture), which the task does not take
    command.pop("keep-vdso", None)
    # evt-type is repeatable in both; the flags are the CLI's, with dashes.
    assert {k: [f.lstrip("-") for f in v] for k, v in command.items()} == task
    assert task["output"] == ["o", "output"] and task["follow-children"] == ["follow-children"]
    assert "children" not in task and task["count"] == ["count"]


def test_only_the_short_flags_the_cli_has():
    # Invoke would make up -o for --count in capture (the first free letter); none are made up.
    for name in ns.task_names:
        shorts = {a.name: [n for n in a.names if len(n) == 1] for a in ns[name].get_arguments()}
        assert {k: v for k, v in shorts.items() if v} in ({}, {"output": ["o"]}, {"out": ["o"]}), name


def test_same_default_outputs():
    capture = {a.name: a.default for a in ns["capture"].get_arguments()}
    demo = {a.name: a.default for a in ns["demo"].get_arguments()}
    cli_default = {p.name: p.default for p in cli.main.commands["capture"].params}
    assert capture["output"] == cli_default["output"] == paths.DEFAULT_CAPTURE == "out/capture.scap"
    assert demo["out"] == paths.OUT


def test_build_is_build_juno():
    assert ns["build"] is ns["build-juno"]
    assert ns.task_names["build-juno"] == ["build"]  # an alias, not a second copy
    assert "build" not in dict.keys(ns.tasks)


def _run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=120,
                          check=False)


def test_fab_and_cli_dry_run_print_the_same_command(tmp_path):
    flags = ["--proc", "zsh", "--follow-children", "--count", "7", "--evt-type", "openat",
             "--evt-type", "read", "-o", "z.scap", "--dry-run", "--board", "qemu-arm64"]
    f = _run(["fab", "-r", str(ROOT), "capture", *flags], tmp_path)
    c = _run([sys.executable, "-m", "sysdig_kit.cli", "capture", *flags], tmp_path)
    assert f.returncode == c.returncode == 0, f.stderr + c.stderr
    assert f.stdout == c.stdout and "-n 7" in f.stdout and 'proc.aname="zsh"' in f.stdout


def test_bad_number_is_one_line(tmp_path):
    r = _run(["fab", "-r", str(ROOT), "capture", "--pid", "abc", "--dry-run"], tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "error: --pid 'abc': not a number"


def test_fabfile_for_ones_own_folder(tmp_path):
    r = _run([sys.executable, "-m", "sysdig_kit.cli", "fabfile", str(tmp_path / "lab")], tmp_path)
    assert r.returncode == 0, r.stderr
    (tmp_path / "lab" / "runs").mkdir()
    r = _run(["fab", "-l"], tmp_path / "lab" / "runs")  # fab looks up from the current folder
    assert r.returncode == 0, r.stderr
    for name in ("build-juno (build)", "board-up", "deploy", "capture", "demo"):
        assert name in r.stdout
    (tmp_path / "own.py").write_text("x = 1\n")
    r = _run([sys.executable, "-m", "sysdig_kit.cli", "fabfile", str(tmp_path)], tmp_path)
    assert r.returncode == 0  # a folder without a fabfile: written
    (tmp_path / "fabfile.py").write_text("print('mine')\n")
    r = _run([sys.executable, "-m", "sysdig_kit.cli", "fabfile", str(tmp_path)], tmp_path)
    assert r.returncode == 2 and "not sysdig-kit's" in r.stderr
    assert (tmp_path / "fabfile.py").read_text() == "print('mine')\n"  # never overwritten


def test_build_dry_run_plans_without_docker(tmp_path):
    from sysdig_kit import build, profiles
    from sysdig_kit.build import images

    q = profiles.load("qemu-arm64")
    text = images.render("builder", debian_release="sid", arch="arm64",
                         gnu_triplet="aarch64-linux-gnu", kernel_source="debian-headers")
    r = _run(["fab", "-r", str(ROOT), "build", "--dry-run", "--board", "qemu-arm64"], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == build.plan(q)
    assert f"builder image {images.image_tag('builder-sid', text)} " in r.stdout
