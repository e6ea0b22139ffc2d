"""Many captures as one partitioned Parquet dataset (`sysdig-kit convert --dataset`), and the
analysis tables computed on it out of core by DuckDB and on a Dask cluster (a LocalCluster of
one worker process): equal to the pandas path on the same real captures. About 30 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pandas.testing as pdt
import pyarrow.parquet as pq
import pytest

import sysdig_kit
from sysdig_kit import analysis as A
from sysdig_kit import provenance, replay
from sysdig_kit.errors import KitError

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"
# (capture, board, workload): both eras of the zsh session, the patched driver (with its
# manifest: the provenance columns), a public x86_64 capture on a board of its own
CAPTURES = [(DATA / "arm64" / "old-era-zsh-s4096.scap", "qemu-arm64", "zsh"),
            (DATA / "arm64" / "new-era-zsh-name.scap", "qemu-arm64", "zsh"),
            (DATA / "replay-complete-zsh-s4096.scap", None, None),
            (DATA / "public" / "sysdig-inspect__502Error.scap", "x86", "web")]
TABLES = {
    "counts thread": lambda x, **k: A.counts(x, "thread", **k),
    "counts process": lambda x, **k: A.counts(x, "process", **k),
    "counts syscall": lambda x, **k: A.counts(x, "syscall", **k),
    "latency_stats": lambda x, **k: A.latency_stats(x, **k),
    "errors": lambda x, **k: A.errors(x, **k),
    "errors by syscall": lambda x, **k: A.errors(x, by_syscall=True, **k),
    "sufficiency": lambda x, **k: A.sufficiency(x, **k),
}


def kit(*args, check=0):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    r = subprocess.run([sys.executable, "-m", "sysdig_kit.cli", *map(str, args)], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300, check=False)
    assert r.returncode == check, r.stderr
    return r


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """The dataset, made as a user makes it: one `convert` per board and workload."""
    root = tmp_path_factory.mktemp("ds") / "ds"
    for cap, board, workload in CAPTURES:
        extra = [*(["--board", board] if board else []),
                 *(["--workload", workload] if workload else [])]
        kit("convert", cap, "--dataset", root, *extra)
    return root


@pytest.fixture(scope="module")
def logs():
    """Each capture's replay log, built in memory (the pandas path)."""
    return {cap.name.split(".")[0]: replay.build(sysdig_kit.read(cap)) for cap, _, _ in CAPTURES}


def _same(expected: pd.DataFrame, got: pd.DataFrame):
    # the quantiles: DuckDB's and numpy's interpolation may differ in the last bit
    pdt.assert_frame_equal(expected.reset_index(drop=True), got, check_exact=False, rtol=1e-12)


def test_partitions_and_provenance(ds):
    parts = sorted(p.parent.relative_to(ds).as_posix() for p in ds.rglob("log.parquet"))
    assert parts == ["board=qemu-arm64/workload=zsh/capture=new-era-zsh-name",
                     "board=qemu-arm64/workload=zsh/capture=old-era-zsh-s4096",
                     "board=qemu-arm64/workload=zsh/capture=replay-complete-zsh-s4096",
                     "board=x86/workload=web/capture=sysdig-inspect__502Error"]
    man = json.loads(Path(f"{CAPTURES[2][0]}.manifest.json").read_text())
    t = pq.read_table(ds / parts[2] / "log.parquet").to_pandas()
    # board and workload came from the manifest; the rows say what produced them
    assert man["board"] == "qemu-arm64" and man["workload"]["shell"] == "zsh"
    row = t.iloc[0]
    assert row["kernel_release"] == man["versions"]["kernel"] == "7.2.13+deb14-arm64"
    assert row["driver_version"] == man["versions"]["driver"] == "0.23.2+replay-complete.1"
    assert row["patch_set"] == "replay-complete.1" and row["sysdig_version"] == "0.41.4+repack"
    assert row["kit_version"] == sysdig_kit.__version__
    # the commit (the convert ran in another process: the tree may have turned +dirty since)
    rev = provenance.kit()["kit_git_rev"]
    assert (row["kit_git_rev"] or "").split("+")[0] == (rev or "").split("+")[0]
    # has_output is the rule sufficiency() applies to the buffers
    log = replay.build(sysdig_kit.read(CAPTURES[2][0]))
    want = log["buffers"].map(lambda b: b is not None and any(x["output"] for x in b))
    assert t["has_output"].tolist() == want.tolist() and want.any()
    # without a manifest, no versions are made up
    t0 = pq.read_table(ds / parts[0] / "log.parquet", columns=["kernel_release", "patch_set"])
    assert t0.column("kernel_release").null_count == len(t0)


@pytest.mark.parametrize("table", TABLES)
def test_duckdb_equals_pandas(ds, logs, table):
    fn = TABLES[table]
    whole = pd.concat(logs.values(), ignore_index=True)
    _same(fn(whole), fn(ds))  # DuckDB is the default engine
    # one board's partitions only, under a memory limit
    arm = pd.concat([v for k, v in logs.items() if "502" not in k], ignore_index=True)
    _same(fn(arm), fn(ds, where={"board": "qemu-arm64"}, memory_limit="256MB", threads=1))


@pytest.fixture(scope="module")
def client():
    import distributed  # the test extra has it (no skip: tests/setup installs it)

    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  memory_limit="1GB", dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_dask_cluster_equals_pandas(ds, logs, client):
    whole = pd.concat(logs.values(), ignore_index=True)
    for fn in TABLES.values():
        got = fn(ds, engine="dask", scheduler=client)
        _same(fn(whole), got)
    one = logs["new-era-zsh-name"]
    got = A.counts(ds, "syscall", engine="dask", scheduler=client.scheduler.address,
                   where={"capture": ["new-era-zsh-name"]})
    _same(A.counts(one, "syscall"), got)


def test_reconverting_replaces_a_partition(tmp_path):
    cap = CAPTURES[1][0]
    for _ in range(2):
        kit("convert", cap, "--dataset", tmp_path, "--board", "b", "--workload", "w")
    assert A.counts(tmp_path, "syscall")["count"].sum() == \
        A.counts(sysdig_kit.read(cap), "syscall")["count"].sum()
    assert [p.name for p in (tmp_path / "board=b" / "workload=w").iterdir()] == \
        ["capture=new-era-zsh-name"]  # no leftovers of the replaced one


def test_bad_input_is_one_line(tmp_path):
    with pytest.raises(KitError, match="no such dataset"):
        A.counts(tmp_path / "nope")
    with pytest.raises(KitError, match="not a sysdig-kit dataset"):
        A.latency_stats(tmp_path)
    with pytest.raises(KitError, match="not a partition"):
        A.counts(tmp_path, where={"proc_name": "zsh"})
    with pytest.raises(KitError, match="engine"):
        A.errors(tmp_path, engine="spark")
    one = CAPTURES[1][0]
    for args, word in [([one, "--dataset", tmp_path, "-o", tmp_path / "x.parquet"], "one of them"),
                       ([one, "--dataset", tmp_path, "--board", "a/b"], "partition"),
                       ([one, one, "--dataset", tmp_path], "--name"),
                       ([DATA / "README.md", "--dataset", tmp_path], "not a sysdig capture")]:
        r = kit("convert", *args, check=2)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and word in lines[0], r.stderr
    assert not any(tmp_path.iterdir())  # nothing written for refused input
