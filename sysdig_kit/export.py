"""Write a capture that stock sysdig reads: drop the parameters a patched driver appended.

A replay-complete capture (docs/replay-complete.md) carries exit events with more parameters
than the stock table; the stock sysdig 0.41.4 aborts on the first such converter-managed event
(libscap's converter asserts `evt_params_num <= expected_params_num`). Parameters are only
ever appended, so cutting each grown event back to the stock parameter count — its length
entries and their bytes — and fixing the event and block lengths gives exactly the event the
stock driver would have written. Every other block is copied byte for byte.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .errors import KitError
from .read import eventtable
from .read.scap import _choose_table
from .read.scap_blocks import EV_V2, EVF_V2, SHB, Source

_BLOCK = struct.Struct("<II")
_EVHDR = struct.Struct("<QQIHI")  # ts, tid, len, type, nparams (v2 event header: 26 bytes)


@dataclass
class Stripped:
    events: int = 0  # event blocks in the capture
    cut: dict = field(default_factory=dict)  # event name -> events cut back
    source_table: str = ""
    stock_table: str = ""


def stock(src: Path, dst: Path) -> Stripped:
    """Write `src` (raw or gzip scap) to `dst` (raw scap) as the stock driver would have."""
    src, dst = Path(src), Path(dst)
    if src.resolve() == dst.resolve():
        raise KitError(f"{dst}: the output would overwrite the capture; give another -o")
    table = eventtable.load(_table_of(src))
    out = Stripped(source_table=table.name, stock_table=table.base or table.name)
    base = eventtable.load(table.base) if table.base else None

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            for block in _blocks(src):
                btype = _BLOCK.unpack_from(block)[0]
                if btype in EV_V2 | EVF_V2:
                    out.events += 1
                    if base is not None:
                        block = _cut(block, btype, base, out)
                f.write(block)

    try:
        atomic_write(dst, write)
    except OSError as exc:
        raise KitError(f"cannot write {dst}: {exc.strerror or exc}") from None
    return out


def _table_of(src: Path) -> str:
    """The event table the reader picks for `src` (a patched one when events grew)."""
    s = Source(src)
    try:
        buf = s.read(8 << 20)
    finally:
        s.close()
    if len(buf) < 8 or _BLOCK.unpack_from(buf)[0] != SHB:
        raise KitError(f"{src}: not a scap capture (no section header block) at byte offset 0")
    offs, types, pos = [], [], 0
    while pos + 8 <= len(buf) and len(offs) < 200_000:
        btype, blen = _BLOCK.unpack_from(buf, pos)
        if blen < 12 or pos + blen > len(buf):
            break
        if btype in EV_V2 | EVF_V2:
            offs.append(pos)
            types.append(btype)
        pos += blen
    u8 = np.frombuffer(buf, dtype=np.uint8)
    return _choose_table(u8, np.array(offs, dtype=np.int64), np.array(types, dtype=np.int64))


def _blocks(src: Path):
    """Every block of the capture, as bytes, in order."""
    s = Source(src)
    try:
        buf, pos, at = s.read(8 << 20), 0, 0
        while True:
            if len(buf) - pos < 8:
                more = s.read(8 << 20)
                if not more:
                    break
                buf, at, pos = buf[pos:] + more, at + pos, 0
                continue
            btype, blen = _BLOCK.unpack_from(buf, pos)
            if blen < 12 or blen % 4:
                raise KitError(f"{src}: corrupt block (type {btype:#x}, length {blen}) at byte "
                               f"offset {at + pos}")
            if len(buf) - pos < blen:
                more = s.read(max(8 << 20, blen))
                if not more:
                    raise KitError(f"{src}: truncated capture: the block at byte offset "
                                   f"{at + pos} needs {blen} bytes, {len(buf) - pos} are left")
                buf, at, pos = buf[pos:] + more, at + pos, 0
                continue
            yield buf[pos:pos + blen]
            pos += blen
    finally:
        s.close()


def _cut(block: bytes, btype: int, base, out: Stripped) -> bytes:
    pre = 8 + 2 + (4 if btype in EVF_V2 else 0)  # block header, cpu id, (flags)
    ts, tid, _, etype, nparams = _EVHDR.unpack_from(block, pre)
    if etype >= base.size or nparams <= base.nparams[etype]:
        return block
    keep = int(base.nparams[etype])
    w = 4 if base.large[etype] else 2
    lens = struct.unpack_from(f"<{nparams}{'I' if w == 4 else 'H'}", block, pre + 26)
    body = pre + 26 + w * nparams
    values = block[body: body + sum(lens[:keep])]
    ev = (_EVHDR.pack(ts, tid, 26 + w * keep + len(values), etype, keep)
          + struct.pack(f"<{keep}{'I' if w == 4 else 'H'}", *lens[:keep]) + values)
    payload = block[8:pre] + ev
    pad = -len(payload) % 4
    total = 12 + len(payload) + pad
    name = str(base.names[etype])
    out.cut[name] = out.cut.get(name, 0) + 1
    return _BLOCK.pack(btype, total) + payload + b"\0" * pad + struct.pack("<I", total)
