"""The notebooks run headless (nbclient) on the real data they ship with, and say what they
must say. Six executions (each notebook also on its other shipped input), about 50 s."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NB = ROOT / "notebooks"


@pytest.fixture(autouse=True)
def _kernel_env(monkeypatch):
    # The kernel (a child process) imports the working tree's sysdig_kit, whatever is installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT),
                                                                  os.environ.get("PYTHONPATH")])))


def _execute(name: str, params: str | None = None) -> str:
    """Run a notebook (optionally with its parameters cell replaced); all its text output."""
    nb = nbformat.read(NB / name, as_version=4)
    if params is not None:
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.source = params
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NB)}}).execute()
    texts, images = [], 0
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.output_type == "stream":
                texts.append(o.text)
            elif "data" in o:
                images += "image/png" in o.data
                texts.append(o.data.get("text/plain", ""))
    return "\n".join(texts) + f"\n[images: {images}]"


def _images(out: str) -> int:
    return int(re.search(r"\[images: (\d+)\]", out)[1])


@pytest.mark.parametrize("capture", [None, "data/old-era-zsh-s4096.scap"])
def test_capture_overview(capture):
    out = _execute("01-capture-overview.ipynb",
                   None if capture is None else f"capture = {capture!r}")
    assert "arch arm64" in out and "rt_sigprocmask" in out
    assert "/var/run/nscd/socket" in out and "ENOENT" in out  # sockets and errors
    assert _images(out) == 4  # counts, latency, timeline, errors
    if capture is None:
        assert "exit_only era" in out and "no enter time" in out
    else:
        assert "enter_exit era" in out and "no enter time" not in out


@pytest.mark.parametrize("capture", [None, "data/old-era-zsh-s4096.scap"])
def test_replay_sufficiency_answers_the_question(capture):
    out = _execute("02-replay-sufficiency.ipynb",
                   None if capture is None else f"capture = {capture!r}\nmanifest = None")
    assert "verdict: INSUFFICIENT" in out
    assert "Replayable from the log" in out and "Not replayable" in out and "What to change" in out
    assert re.search(r"rt_sigprocmask \(\d+\): no return value", out)
    assert "close" in out.split("Replayable from the log")[1].split("Not replayable")[0]
    assert _images(out) == 1
    if capture is None:  # snaplen 80 cut the reads: the remedy names the snaplen needed
        assert "read: 15 of 39 complete; output buffer cut at the snaplen: 24" in out
        assert "capture with -s 967" in out


@pytest.mark.parametrize("results", [None, "data/overhead-local.results.csv"])
def test_overhead_notebook_spread_and_board_label(results):
    out = _execute("03-overhead.ipynb", None if results is None else f"results = {results!r}")
    assert "not Juno figures" in out
    if results is None:  # the shipped emulated-board result: every sysdig snaplen and strace
        assert "board qemu-arm64: an emulated board" in out
        for v in ("sysdig-s80", "sysdig-s4096", "sysdig-s65000", "strace"):
            assert v in out
    else:
        assert "board local: this machine" in out
    assert "slowdown_median" in out and "slowdown_q25" in out and "slowdown_q75" in out
    assert re.search(r"strace\s", out) and re.search(r"\d+\.\d\d \[\d+\.\d\d–\d+\.\d\d\]", out)
    assert _images(out) == 1


def test_notebooks_stored_without_outputs_and_as_generated():
    sys.path.insert(0, str(NB))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(NB))
    for name, cells in make_notebooks.NOTEBOOKS.items():
        raw = json.loads((NB / name).read_text())
        code = [c for c in raw["cells"] if c["cell_type"] == "code"]
        assert all(not c["outputs"] and c["execution_count"] is None for c in code), name
        tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
        assert len(tagged) == 1, name
        # the default points at a file that ships with the project
        path = re.search(r"=\s*\"([^\"]+)\"", "".join(tagged[0]["source"]))[1]
        assert (NB / path).is_file(), path
        # regenerating gives the same notebook: edit make_notebooks.py, not the .ipynb
        assert nbformat.reads(nbformat.writes(make_notebooks._nb(cells)), 4) == \
            nbformat.read(NB / name, as_version=4), name
