"""The scap container: opening (raw, gzip), the block walk, and the metadata blocks we use.

Blocks are pcapng-like: `u32 type, u32 total_length, body, padding, u32 total_length`
(falcosecurity/libs userspace/libscap/scap_savefile.h). Only the section header, machine info
and process list blocks are parsed; every other non-event block is skipped by its length.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import KitError

SHB = 0x0A0D0D0A
SHB_MAGIC = 0x1A2B3C4D
MI = {0x201, 0x8002ABCD}
EV_V1 = {0x204, 0x8010ABCD}  # no nparams in the event header
EVF_V1 = {0x208}  # EVF: 32 bits of flags after the cpu id
EV_V2 = {0x216, 0x221}  # 0x221: "large" blocks (payload over 64 KiB)
EVF_V2 = {0x217, 0x222}
EVENT_BLOCKS = EV_V1 | EVF_V1 | EV_V2 | EVF_V2
PL_VERSION = {0x202: 1, 0x8000ABCD: 1, 0x207: 2, 0x8013ABCD: 2, 0x209: 3, 0x8014ABCD: 3,
              0x210: 4, 0x211: 5, 0x212: 6, 0x213: 7, 0x214: 8, 0x215: 9}


@dataclass
class Meta:
    """What the blocks before (and between) the events tell us."""

    scap_version: str = ""
    hostname: str = ""
    num_cpus: int = 0
    threads: dict = field(default_factory=dict)  # tid -> (pid, comm), from process list blocks
    exes: list = field(default_factory=list)  # exe paths of the process list (arch hints)


class Source:
    """The capture's bytes (raw, or inflated from gzip) as a stream, read in chunks."""

    def __init__(self, path: Path):
        self.path = path
        self.warnings: list[str] = []
        self.f = open(path, "rb")  # noqa: SIM115  (closed by close())
        self.size = self.f.seek(0, 2)
        self.f.seek(0)
        self.gz = self.f.read(2) == b"\x1f\x8b"
        self.f.seek(0)
        self.z = zlib.decompressobj(wbits=31) if self.gz else None
        self.pending = b""

    def read(self, n: int) -> bytes:
        """Up to n bytes (fewer only at the end of the stream)."""
        if not self.gz:  # a corrupt block length may ask for more than the file holds
            return self.f.read(max(0, min(n, self.size - self.f.tell())))
        parts, got = [self.pending], len(self.pending)
        while got < n:
            raw = self.f.read(1 << 20)
            if not raw:
                if self.z is not None and not self.z.eof:
                    self.warnings.append("gzip stream truncated: the capture's tail is missing")
                self.z = None
                break
            if self.z is None:
                break
            try:
                out = self.z.decompress(raw)
                while self.z.eof and self.z.unused_data:  # concatenated gzip members
                    rest = self.z.unused_data
                    self.z = zlib.decompressobj(wbits=31)
                    out += self.z.decompress(rest)
            except zlib.error as exc:
                raise KitError(f"{self.path}: corrupt gzip stream ({exc})") from None
            parts.append(out)
            got += len(out)
        data = b"".join(parts)
        self.pending = data[n:]
        return data[:n]

    def read_after(self, tail, n: int):
        """`tail` followed by up to n more bytes (fewer only at the end of the stream), in
        one new buffer: the file is read straight into it, not read and then joined. None
        at the end of the stream."""
        if self.gz:
            more = self.read(n)
            return bytes(tail) + more if more else None
        n = max(0, min(n, self.size - self.f.tell()))
        if not n:
            return None
        out = bytearray(len(tail) + n)
        out[: len(tail)] = tail
        got = self.f.readinto(memoryview(out)[len(tail):])
        if not got:
            return None
        if got < n:
            del out[len(tail) + got:]
        return out

    def close(self) -> None:
        self.f.close()


class Chunk:
    """Whole blocks of the stream (plus maybe the start of a partial one), at `base`."""

    def __init__(self, buf: bytes, base: int, path: Path):
        self.buf, self.base, self.path = buf, base, path
        self.u8 = np.frombuffer(buf, dtype=np.uint8)
        self.rest = len(buf)  # where the first incomplete block starts, after walk()
        self.need = 0  # how many bytes that block has in all, when its header is readable


def read_shb(buf: bytes, path, meta: Meta) -> int:
    """Check the section header block; return the offset of the next block."""
    if len(buf) < 28 or struct.unpack_from("<I", buf, 0)[0] != SHB:
        raise KitError(f"{path}: not a scap capture (no section header block) at byte offset 0")
    _, length, magic, major, minor = struct.unpack_from("<IIIHH", buf, 0)
    if magic != SHB_MAGIC:
        raise KitError(f"{path}: bad section header magic {magic:#x} at byte offset 8")
    if length < 28 or length % 4 or length > len(buf):  # options (if any) are skipped by length
        raise KitError(f"{path}: corrupt section header length {length} at byte offset 4")
    meta.scap_version = f"{major}.{minor}"
    return length


def read_meta_block(buf, btype: int, off: int, length: int, meta: Meta) -> None:
    if btype in MI and length >= 8 + 4 + 8 + 8 + 128 + 4:
        meta.num_cpus = struct.unpack_from("<I", buf, off + 8)[0]
        meta.hostname = bytes(buf[off + 28: off + 156]).split(b"\0", 1)[0].decode("utf-8", "replace")
    elif btype in PL_VERSION:
        _read_proclist(buf, off + 8, off + length - 4, PL_VERSION[btype], meta)


def _read_proclist(buf, p: int, end: int, version: int, meta: Meta) -> None:
    """tid, pid, comm and exe of every thread of a process list block (format versions 1-9)."""
    u16 = struct.Struct("<H").unpack_from
    try:
        while end - p >= 4:
            start = p
            sub_len = 0
            if version == 9:
                sub_len = struct.unpack_from("<I", buf, p)[0]
                p += 4
            tid, pid = struct.unpack_from("<qq", buf, p)
            p += 24 + (8 if version >= 6 else 0) + (8 if version >= 8 else 0)  # ptid, sid, vpgid
            n = u16(buf, p)[0]
            comm = bytes(buf[p + 2: p + 2 + n]).split(b"\0", 1)[0].decode("utf-8", "replace")
            p += 2 + n
            n = u16(buf, p)[0]
            exe = bytes(buf[p + 2: p + 2 + n]).split(b"\0", 1)[0].decode("utf-8", "replace")
            meta.threads[tid] = (pid, comm)
            meta.exes.append(exe)
            if sub_len:  # versioned entries say their own length
                if sub_len < 8:
                    return
                p = start + sub_len
                continue
            p += 2 + n
            if version >= 7:  # exepath
                p += 2 + u16(buf, p)[0]
            p += 2 + u16(buf, p)[0]  # args
            p += 2 + u16(buf, p)[0]  # cwd
            p += 8 + 4 + 4 + 4  # fdlimit, flags, uid, gid
            if version >= 2:
                p += 4 + 4 + 4 + 8 + 8  # vmsize, vmrss, vmswap, pfmajor, pfminor
                if version >= 3:
                    p += 2 + u16(buf, p)[0]  # env
                if version >= 4:
                    p += 8 + 8  # vtid, vpid
                    p += 2 + u16(buf, p)[0]  # cgroups
                    if version >= 5:
                        p += 2 + u16(buf, p)[0]  # root
    except struct.error:
        return  # a short entry at the end: keep what we have (libscap would refuse the file)


def walk(cap: Chunk, start: int, meta: Meta, max_events: int | None = None):
    """Yield (event block offsets, block types) in runs of up to `max_events`.

    Blocks chain by their lengths, a sequential dependency; to keep Python out of the per-event
    loop, every 4-byte word that could start an event block (its type, a sane length and a
    matching trailing length) is found with numpy first, and runs of candidates that chain
    end to end are taken whole. Python only steps over what breaks a run: metadata blocks
    (parsed into `meta`), unknown blocks (skipped by length), a payload word that merely looked
    like a block, a corrupt block (KitError with its offset) or a partial last block (where
    it starts is left in cap.rest, its full length in cap.need).
    """
    buf, n = cap.buf, len(cap.buf)
    n4 = n // 4
    u32 = np.frombuffer(buf, dtype="<u4", count=n4) if n4 else np.zeros(0, "<u4")
    c = np.flatnonzero(((u32 - np.uint32(0x200)) < np.uint32(0x100)) | (u32 == 0x8010ABCD))
    v = u32[c]
    c = c[np.logical_or.reduce([v == t for t in EVENT_BLOCKS])]
    c = c[c + 1 < n4]
    length = u32[c + 1].astype(np.int64)
    ok = (length >= 12) & (length % 4 == 0) & (c + length // 4 <= n4)
    c, length = c[ok], length[ok]
    ok = u32[c + length // 4 - 1] == length
    c, length = c[ok], length[ok]
    ends = c + length // 4
    breaks = np.flatnonzero(ends[:-1] != c[1:])  # a run ends where the next block is elsewhere
    limit = max_events or (1 << 62)
    unpack = struct.Struct("<II").unpack_from
    pos = start // 4
    runs: list[np.ndarray] = []
    have = yielded = 0
    while True:
        if pos * 4 + 8 > n:
            cap.rest, cap.need = min(pos * 4, n), 8
            break
        k = int(np.searchsorted(c, pos))
        if k < len(c) and c[k] == pos:
            r = int(np.searchsorted(breaks, k))
            last = int(breaks[r]) if r < len(breaks) else len(c) - 1
            last = min(last, k + (limit - have) - 1)
            runs.append(c[k: last + 1])
            have += last + 1 - k
            pos = int(ends[last])
            if have >= limit:
                o = np.concatenate(runs)
                yield o * 4, u32[o]
                runs, have, yielded = [], 0, yielded + 1
            continue
        off = pos * 4
        at = cap.base + off
        btype, blen = unpack(buf, off)
        if blen < 12 or blen % 4:
            raise KitError(f"{cap.path}: corrupt block (type {btype:#x}, length {blen}) "
                           f"at byte offset {at}")
        if off + blen > n:
            cap.rest, cap.need = off, blen
            break
        if struct.unpack_from("<I", buf, off + blen - 4)[0] != blen:
            raise KitError(f"{cap.path}: corrupt block (type {btype:#x}: trailing length "
                           f"differs from {blen}) at byte offset {at}")
        if btype in EVENT_BLOCKS:  # a real event block cannot fail the candidate checks
            raise KitError(f"{cap.path}: corrupt event block at byte offset {at}")
        if btype != SHB:  # a second SHB: a concatenated capture, its metadata follows
            read_meta_block(buf, btype, off, blen, meta)
        pos += blen // 4
    if runs or not yielded:
        o = np.concatenate(runs) if runs else np.zeros(0, dtype=np.int64)
        yield o.astype(np.int64) * 4, u32[o]


def gather(u8: np.ndarray, pos: np.ndarray, dtype, chunk: int = 1 << 18) -> np.ndarray:
    """Little-endian values of `dtype` at arbitrary (unaligned) byte positions."""
    dt = np.dtype(dtype).newbyteorder("<")
    size = dt.itemsize
    if size > 1 and len(pos) and not np.any(pos & 1):  # even positions: 16-bit words
        u16 = u8[: len(u8) // 2 * 2].view("<u2")
        w = pos >> 1
        if size == 2:
            return u16[w].view(np.dtype(dtype))
        acc = u16[w].astype(np.uint64)
        for k in range(1, size // 2):
            acc |= u16[w + k].astype(np.uint64) << np.uint64(16 * k)
        return acc.astype(f"<u{size}").view(np.dtype(dtype))
    out = np.empty(len(pos), dtype=dt)
    step = np.arange(size, dtype=np.int64)
    for i in range(0, len(pos), chunk):
        p = pos[i: i + chunk]
        out[i: i + chunk] = u8[p[:, None] + step].view(dt).ravel()
    return out.astype(np.dtype(dtype), copy=False)


# --- the state blocks libsinsp starts from (read only when show / fd.name ask for them) ---
FDL = {0x203: 1, 0x8001ABCD: 1, 0x218: 2}
UL = {0x206: 1, 0x8012ABCD: 1, 0x220: 2}


@dataclass
class StateBlocks:
    """The capture's /proc scan: threads, their fds, users and groups."""

    threads: dict = field(default_factory=dict)  # tid -> dict(pid, comm, cwd, uid, gid)
    fds: dict = field(default_factory=dict)  # tid -> [(fd, type, info)] (scap_fd_type numbers)
    users: dict = field(default_factory=dict)  # uid -> name
    groups: dict = field(default_factory=dict)  # gid -> name


def read_state_blocks(path: Path) -> StateBlocks:
    """The process, fd and user list blocks before the first event (libscap reads the same
    ones at open). Malformed entries end their block's parse: what came before is kept."""
    st = StateBlocks()
    src = Source(Path(path))
    try:
        head = src.read(28)
        if len(head) < 28 or struct.unpack_from("<I", head, 0)[0] != SHB:
            return st
        rest = src.read(struct.unpack_from("<I", head, 4)[0] - 28)
        del rest
        while True:
            hdr = src.read(8)
            if len(hdr) < 8:
                break
            btype, blen = struct.unpack("<II", hdr)
            if blen < 12 or btype in EVENT_BLOCKS:
                break
            body = src.read(blen - 8)
            if len(body) < blen - 8:
                break
            try:
                if btype in PL_VERSION:
                    _state_proclist(body, len(body) - 4, PL_VERSION[btype], st)
                elif btype in FDL:
                    _state_fdlist(body, len(body) - 4, FDL[btype], st)
                elif btype in UL:
                    _state_userlist(body, len(body) - 4, UL[btype], st)
            except (struct.error, IndexError, ValueError):
                continue
    finally:
        src.close()
    return st


def _str16(buf, p: int) -> tuple[str, int]:
    n = struct.unpack_from("<H", buf, p)[0]
    raw = bytes(buf[p + 2: p + 2 + n])
    if len(raw) < n:
        raise ValueError("short string")
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace"), p + 2 + n


def _entries(buf, end: int, sized: bool, one, p: int = 0) -> None:
    """Call `one(p) -> end of that entry` for each entry of a list block from `p`; entries of
    the `sized` (newer) versions start with their length, which says where the next begins."""
    while end - p >= 4:
        start, sub_len = p, 0
        if sized:
            sub_len = struct.unpack_from("<I", buf, p)[0]
            if sub_len < 8:
                return
            p += 4
        p = one(p)
        if sub_len:
            p = start + sub_len


def _state_proclist(buf, end: int, version: int, st: StateBlocks) -> None:
    def one(p: int) -> int:
        tid, pid = struct.unpack_from("<qq", buf, p)
        p += 24 + (8 if version >= 6 else 0) + (8 if version >= 8 else 0)
        comm, p = _str16(buf, p)
        _exe, p = _str16(buf, p)
        if version >= 7:
            _, p = _str16(buf, p)
        _args, p = _str16(buf, p)
        cwd, p = _str16(buf, p)
        uid, gid = struct.unpack_from("<II", buf, p + 12)
        st.threads[tid] = {"pid": pid, "comm": comm, "cwd": cwd, "uid": uid, "gid": gid}
        if version == 9:  # sized: the rest is skipped by its length
            return p
        p += 8 + 4 + 4 + 4
        if version >= 2:
            p += 4 + 4 + 4 + 8 + 8
            if version >= 3:
                p += 2 + struct.unpack_from("<H", buf, p)[0]
            if version >= 4:
                p += 16
                p += 2 + struct.unpack_from("<H", buf, p)[0]
                if version >= 5:
                    p += 2 + struct.unpack_from("<H", buf, p)[0]
        return p

    _entries(buf, end, version == 9, one)


_FD_FIXED = {3: 4 + 4 + 2 + 2 + 1, 5: 4 + 2 + 1, 4: 16 + 16 + 2 + 2 + 1, 6: 16 + 2 + 1}


def _state_fdlist(buf, end: int, version: int, st: StateBlocks) -> None:
    tid = struct.unpack_from("<q", buf, 0)[0]
    out = st.fds.setdefault(tid, [])

    def one(p: int) -> int:
        fd, _ino, ftype = struct.unpack_from("<qQB", buf, p)
        p += 17
        if ftype in _FD_FIXED:
            info = bytes(buf[p: p + _FD_FIXED[ftype]])
            p += _FD_FIXED[ftype]
        elif ftype == 8:  # unix: source, destination, path
            src, dst = struct.unpack_from("<QQ", buf, p)
            name, p = _str16(buf, p + 16)
            info = (src, dst, name)
        elif ftype == 16:  # file v2: open flags, path (then dev, by sub_len)
            name, p = _str16(buf, p + 4)
            info = name
        elif ftype == 0:
            info = ""
        else:
            info, p = _str16(buf, p)
        out.append((fd, ftype, info))
        return p

    _entries(buf, end, version == 2, one, p=8)


def _state_userlist(buf, end: int, version: int, st: StateBlocks) -> None:
    def one(p: int) -> int:
        kind = buf[p]
        p += 1
        if kind == 0:  # USERBLOCK_TYPE_USER: uid, gid, name, homedir, shell
            uid = struct.unpack_from("<I", buf, p)[0]
            name, p = _str16(buf, p + 8)
            _, p = _str16(buf, p)
            _, p = _str16(buf, p)
            st.users.setdefault(uid, name)
        else:
            gid = struct.unpack_from("<I", buf, p)[0]
            name, p = _str16(buf, p + 4)
            st.groups.setdefault(gid, name)
        return p

    _entries(buf, end, version == 2, one)
