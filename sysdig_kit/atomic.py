"""Nothing is written half: outputs go to a temp file beside the target, then are renamed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path


def atomic_write(path, write) -> Path:
    """Call `write(tmp)` and rename tmp onto `path`; on any error the target is untouched."""
    path = Path(path)
    # a fresh name beside the target (same file system, so the rename is atomic), created by
    # the writer with the usual permissions (mkstemp would make it 0600)
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
