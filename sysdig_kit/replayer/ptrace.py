"""ptrace through ctypes: the few requests the replayer and the launcher need, nothing else.

Stdlib only (this module runs on the board). Register layouts per architecture are small tables
(`ARCHS`); the syscall number and arguments are read with PTRACE_GET_SYSCALL_INFO (Linux 5.3+),
which says entry or exit without guessing, and written with PTRACE_SETREGSET.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform
import struct
from dataclasses import dataclass

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.ptrace.restype = ctypes.c_long
_libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]

PTRACE_TRACEME = 0
PTRACE_CONT = 7
PTRACE_KILL = 8
PTRACE_DETACH = 17
PTRACE_SYSCALL = 24
PTRACE_SETOPTIONS = 0x4200
PTRACE_GETEVENTMSG = 0x4201
PTRACE_GETREGSET = 0x4204
PTRACE_SETREGSET = 0x4205
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_GET_SYSCALL_INFO = 0x420E

O_TRACESYSGOOD = 0x01
O_TRACEFORK = 0x02
O_TRACEVFORK = 0x04
O_TRACECLONE = 0x08
O_TRACEEXEC = 0x10
O_TRACEEXIT = 0x40
O_EXITKILL = 0x100000

EVENT_FORK, EVENT_VFORK, EVENT_CLONE, EVENT_EXEC, EVENT_VFORK_DONE, EVENT_EXIT = 1, 2, 3, 4, 5, 6
EVENT_STOP = 0x80

NT_PRSTATUS = 1
NT_ARM_SYSTEM_CALL = 0x404

INFO_NONE, INFO_ENTRY, INFO_EXIT, INFO_SECCOMP = 0, 1, 2, 3

ADDR_NO_RANDOMIZE = 0x0040000
AT_NULL, AT_IGNORE, AT_SYSINFO_EHDR = 0, 1, 33


@dataclass(frozen=True)
class Arch:
    """Where a syscall's number, arguments and return value live in NT_PRSTATUS (u64 slots)."""

    name: str
    nregs: int
    args: tuple[int, ...]
    ret: int
    nr: int | None  # slot of the syscall number that the kernel re-reads (x86_64 orig_rax)
    pc: int
    sp: int


ARCHS = {
    # struct user_regs_struct: r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi
    # orig_rax rip cs eflags rsp ss fs_base gs_base ds es fs gs
    "x86_64": Arch("x86_64", 27, args=(14, 13, 12, 7, 9, 8), ret=10, nr=15, pc=16, sp=19),
    # struct user_pt_regs: regs[31] sp pc pstate; the number is set through NT_ARM_SYSTEM_CALL
    "arm64": Arch("arm64", 34, args=(0, 1, 2, 3, 4, 5), ret=0, nr=None, pc=32, sp=31),
}


def host_arch() -> str:
    m = platform.machine()
    return {"aarch64": "arm64", "arm64": "arm64", "x86_64": "x86_64", "amd64": "x86_64"}.get(m, m)


class PtraceError(OSError):
    pass


def _call(req: int, pid: int, addr=0, data=0) -> int:
    ctypes.set_errno(0)
    r = _libc.ptrace(req, pid, ctypes.c_void_p(addr), ctypes.c_void_p(data))
    if r == -1 and ctypes.get_errno():
        e = ctypes.get_errno()
        raise PtraceError(e, f"ptrace({req:#x}, {pid}): {os.strerror(e)}")
    return r


class _Iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def seize(pid: int, options: int) -> None:
    _call(PTRACE_SEIZE, pid, 0, options)


def traceme() -> None:
    _call(PTRACE_TRACEME, 0)


def setoptions(pid: int, options: int) -> None:
    _call(PTRACE_SETOPTIONS, pid, 0, options)


def cont(pid: int, sig: int = 0) -> None:
    _call(PTRACE_CONT, pid, 0, sig)


def syscall(pid: int, sig: int = 0) -> None:
    _call(PTRACE_SYSCALL, pid, 0, sig)


def detach(pid: int, sig: int = 0) -> None:
    _call(PTRACE_DETACH, pid, 0, sig)


def geteventmsg(pid: int) -> int:
    v = ctypes.c_ulong()
    _call(PTRACE_GETEVENTMSG, pid, 0, ctypes.addressof(v))
    return v.value


def getregs(pid: int, arch: Arch) -> list[int]:
    buf = ctypes.create_string_buffer(arch.nregs * 8)
    iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), arch.nregs * 8)
    _call(PTRACE_GETREGSET, pid, NT_PRSTATUS, ctypes.addressof(iov))
    return list(struct.unpack(f"<{arch.nregs}Q", buf.raw))


def setregs(pid: int, arch: Arch, regs: list[int]) -> None:
    buf = ctypes.create_string_buffer(struct.pack(f"<{arch.nregs}Q", *(r & (2**64 - 1) for r in regs)))
    iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), arch.nregs * 8)
    _call(PTRACE_SETREGSET, pid, NT_PRSTATUS, ctypes.addressof(iov))


def set_syscall_nr(pid: int, arch: Arch, nr: int) -> None:
    """Change the syscall a tracee stopped at entry will run; -1 skips it (the kernel then
    returns -ENOSYS, which the exit stop overwrites)."""
    if arch.nr is not None:
        regs = getregs(pid, arch)
        regs[arch.nr] = nr
        setregs(pid, arch, regs)
        return
    buf = ctypes.create_string_buffer(struct.pack("<i", nr))
    iov = _Iovec(ctypes.cast(buf, ctypes.c_void_p), 4)
    _call(PTRACE_SETREGSET, pid, NT_ARM_SYSTEM_CALL, ctypes.addressof(iov))


@dataclass
class SyscallInfo:
    op: int
    nr: int = -1
    args: tuple[int, ...] = ()
    rval: int = 0
    is_error: bool = False
    sp: int = 0


def syscall_info(pid: int) -> SyscallInfo:
    buf = ctypes.create_string_buffer(128)
    _call(PTRACE_GET_SYSCALL_INFO, pid, 128, ctypes.addressof(buf))
    op, _arch, _ip, sp = struct.unpack_from("<B3xIQQ", buf.raw, 0)
    if op == INFO_ENTRY or op == INFO_SECCOMP:
        nr, *args = struct.unpack_from("<7Q", buf.raw, 24)
        return SyscallInfo(op, nr=nr if nr < 2**63 else nr - 2**64, args=tuple(args), sp=sp)
    if op == INFO_EXIT:
        rval, err = struct.unpack_from("<qB", buf.raw, 24)
        return SyscallInfo(op, rval=rval, is_error=bool(err), sp=sp)
    return SyscallInfo(op, sp=sp)


# --- tracee memory ---------------------------------------------------------------------------

_libc.process_vm_writev.restype = ctypes.c_ssize_t
_libc.process_vm_readv.restype = ctypes.c_ssize_t


def write_mem(pid: int, addr: int, data: bytes) -> None:
    """Write bytes into the tracee (process_vm_writev; /proc/PID/mem for what it refuses,
    e.g. read-only pages, which a stopped tracee's ptracer may still write)."""
    if not data:
        return
    src = ctypes.create_string_buffer(data, len(data))
    local = _Iovec(ctypes.cast(src, ctypes.c_void_p), len(data))
    remote = _Iovec(ctypes.c_void_p(addr), len(data))
    n = _libc.process_vm_writev(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n == len(data):
        return
    fd = os.open(f"/proc/{pid}/mem", os.O_RDWR)
    try:
        if os.pwrite(fd, data, addr) != len(data):
            raise OSError(f"short write into {pid} at {addr:#x}")
    finally:
        os.close(fd)


def read_mem(pid: int, addr: int, size: int) -> bytes:
    if size <= 0:
        return b""
    dst = ctypes.create_string_buffer(size)
    local = _Iovec(ctypes.cast(dst, ctypes.c_void_p), size)
    remote = _Iovec(ctypes.c_void_p(addr), size)
    n = _libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    if n > 0:
        return dst.raw[:n]
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.pread(fd, size, addr)
    except OSError:
        return b""
    finally:
        os.close(fd)


def read_cstr(pid: int, addr: int, limit: int = 4096) -> bytes:
    out = b""
    while len(out) < limit:
        # Read up to the next page boundary only: the string may end just before an unmapped page.
        chunk = read_mem(pid, addr + len(out), 4096 - ((addr + len(out)) % 4096))
        if not chunk:
            break
        if b"\0" in chunk:
            return out + chunk[:chunk.index(b"\0")]
        out += chunk
    return out


def hide_vdso(pid: int, arch: Arch) -> bool:
    """At an exec stop: turn AT_SYSINFO_EHDR into AT_IGNORE in the new image's auxiliary vector,
    so that libc finds no vDSO and makes real syscalls for time (which a capture then records).
    The stack at exec: argc, argv[], NULL, envp[], NULL, auxv pairs up to AT_NULL."""
    sp = getregs(pid, arch)[arch.sp]
    argc = struct.unpack("<Q", read_mem(pid, sp, 8))[0]
    p = sp + 8 * (argc + 2)
    while struct.unpack("<Q", read_mem(pid, p, 8))[0]:
        p += 8
    p += 8
    for _ in range(64):
        key = struct.unpack("<Q", read_mem(pid, p, 8))[0]
        if key == AT_NULL:
            return False
        if key == AT_SYSINFO_EHDR:
            write_mem(pid, p, struct.pack("<Q", AT_IGNORE))
            return True
        p += 16
    return False


def personality(persona: int) -> int:
    return _libc.personality(ctypes.c_ulong(persona))
