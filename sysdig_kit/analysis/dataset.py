"""Many captures as one Hive-partitioned Parquet dataset of replay-log records, for tables that
outgrow one machine's memory.

    ROOT/board=B/workload=W/capture=C/log.parquet

Each file holds one capture's replay log (docs/replay-log.md, every column), one row group per
batch, plus `has_output` (the record has an output buffer: what sufficiency() counts without
reading the bytes) and the provenance columns (sysdig_kit.provenance: kernel release, sysdig and
driver versions, patch set, kit version and git revision). DuckDB, Dask, Spark and
pyarrow.dataset read it as it is; sysdig_kit.analysis's table functions take its path
(analysis/ooc.py computes them out of core).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .. import provenance
from ..errors import KitError

PARTITIONS = ("board", "workload", "capture")
FILE = "log.parquet"
_META_KEY = b"sysdig_kit.dataset"
_SAFE = re.compile(r"^[A-Za-z0-9._+-]+$")


def schema() -> pa.Schema:
    from ..replay.log import SCHEMA

    extra = [pa.field("has_output", pa.bool_())]
    extra += [pa.field(c, pa.string()) for c in provenance.COLUMNS if c != "board"]
    return pa.schema(list(SCHEMA) + extra)


def has_output(buffers: pa.Array) -> np.ndarray:
    """Per record: does any of its buffers say output=True (sufficiency()'s `needs`)."""
    buffers = buffers.combine_chunks() if isinstance(buffers, pa.ChunkedArray) else buffers
    out = pc.struct_field(pc.list_flatten(buffers), "output").fill_null(False)
    parents = pc.list_parent_indices(buffers).to_numpy()
    hits = np.bincount(parents[out.to_numpy(zero_copy_only=False)], minlength=len(buffers))
    return hits > 0


def check_value(kind: str, v: str) -> str:
    if not v or not _SAFE.match(v) or v in (".", ".."):
        raise KitError(f"{kind} {v!r}: a partition value is letters, digits and . _ + - only")
    return v


def _manifest(capture: Path) -> dict | None:
    p = Path(f"{capture}.manifest.json")
    if not p.is_file():
        return None
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise KitError(f"{p}: not a capture manifest ({exc})") from None


def add_capture(root, capture, board: str | None = None, workload: str | None = None,
                name: str | None = None, arch: str | None = None,
                batch_size: int = 100_000, logs=None) -> tuple[Path, int]:
    """Convert one capture into its partition of the dataset at `root` (replacing the
    partition if it was there; written aside and renamed into place, so a reader never sees
    half of it). board/workload default to the capture's manifest (else "unknown"), name to the
    file's stem. `logs`: the capture's log frames when the caller builds them (default
    replay.build_file(capture, arch)). Returns the partition's file and its number of
    records."""
    from ..replay import build_file
    from ..replay.log import COLUMNS, _header, _table

    capture = Path(capture)
    man = _manifest(capture)
    prov = provenance.from_manifest(man)
    board = check_value("board", board or (man or {}).get("board") or "unknown")
    wl = (man or {}).get("workload")
    workload = check_value("workload", workload or (wl.get("shell") if isinstance(wl, dict) else wl)
                      or "unknown")
    name = check_value("capture", name or capture.name.split(".")[0])
    part = Path(root) / f"board={board}" / f"workload={workload}" / f"capture={name}"
    tmp = part.parent / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir(parents=True)
    sch = schema()
    writer, n = None, 0
    try:
        if logs is None:
            logs = build_file(capture, arch, batch_size=batch_size)
        for log in logs:
            t = _table(log)
            cols = {c: t[c] for c in COLUMNS}
            cols["has_output"] = pa.array(has_output(t["buffers"]))
            for c in sch.names[len(COLUMNS) + 1:]:
                cols[c] = pa.array([prov[c]] * len(t), pa.string())
            t = pa.table(cols, schema=sch)
            if writer is None:
                meta = {_META_KEY: json.dumps({**_header(log), **prov}, default=str).encode()}
                writer = pq.ParquetWriter(tmp / FILE, sch.with_metadata(meta))
            writer.write_table(t.replace_schema_metadata(writer.schema.metadata))
            n += len(t)
        if writer is None:  # a capture without events: an empty partition still says so
            pq.write_table(sch.empty_table(), tmp / FILE)
    except BaseException:
        if writer is not None:
            writer.close()
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if writer is not None:
        writer.close()
    if part.exists():
        old = part.parent / f".{name}.{uuid.uuid4().hex[:8]}.old"
        part.rename(old)
        tmp.rename(part)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(part)
    return part / FILE, n


def files(root) -> list[Path]:
    """The dataset's partition files (a KitError when `root` is not a dataset)."""
    root = Path(root)
    if not root.is_dir():
        raise KitError(f"{root}: no such dataset (a directory made by `sysdig-kit convert "
                       f"--dataset`)")
    found = sorted(p for p in root.glob(f"board=*/workload=*/capture=*/{FILE}"))
    if not found:
        raise KitError(f"{root}: not a sysdig-kit dataset (no board=*/workload=*/capture=*/"
                       f"{FILE})")
    return found
