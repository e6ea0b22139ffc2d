"""Syscall numbers per architecture and errno names, from the generated tables in data/.

The tables come from the kernel's UAPI headers (tools/gen_syscall_tables.py). arm64 uses the
generic table (`read` is 63); x86_64 its own (`read` is 0).
"""

from __future__ import annotations

import csv
from functools import cache
from importlib import resources

from ..errors import KitError

ARCHES = ("arm64", "x86_64")
_ALIASES = {"aarch64": "arm64", "amd64": "x86_64", "x86-64": "x86_64"}


def normalize_arch(arch: str | None) -> str | None:
    if arch is None:
        return None
    a = _ALIASES.get(arch.lower(), arch.lower())
    if a not in ARCHES:
        raise KitError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHES)}")
    return a


def _rows(*path: str) -> list[list[str]]:
    text = resources.files("sysdig_kit").joinpath("data", *path).read_text()
    lines = [ln for ln in text.splitlines() if ln and not ln.startswith("#")]
    return list(csv.reader(lines))[1:]  # first non-comment line is the header


@cache
def table(arch: str) -> dict[int, str]:
    """number -> name for `arch` (arm64 or x86_64)."""
    return {int(nr): name for nr, name in _rows("syscalls", f"{normalize_arch(arch)}.csv")}


@cache
def numbers(arch: str) -> dict[str, int]:
    """name -> number for `arch`; sysdig's names for a few syscalls are mapped too."""
    by_name = {name: nr for nr, name in table(arch).items()}
    # sysdig names some events after the libc call rather than the syscall.
    for sysdig_name, kernel_name in (("stat", "newfstatat"), ("lstat", "newfstatat"),
                                     ("fstatat", "newfstatat"), ("pread", "pread64"),
                                     ("pwrite", "pwrite64"), ("eventfd", "eventfd2"),
                                     ("signalfd", "signalfd4"), ("inotify_init", "inotify_init1"),
                                     ("epoll_create", "epoll_create1"), ("dup2", "dup3"),
                                     ("pipe", "pipe2"), ("fork", "clone"), ("vfork", "clone"),
                                     ("open", "openat"), ("creat", "openat"), ("mkdir", "mkdirat"),
                                     ("unlink", "unlinkat"), ("rmdir", "unlinkat"),
                                     ("symlink", "symlinkat"), ("link", "linkat"),
                                     ("rename", "renameat"), ("access", "faccessat"),
                                     ("poll", "ppoll"), ("select", "pselect6"),
                                     ("epoll_wait", "epoll_pwait"), ("getdents", "getdents64"),
                                     ("chmod", "fchmodat"), ("chown", "fchownat"),
                                     ("mmap2", "mmap"), ("fcntl64", "fcntl"),
                                     ("sigreturn", "rt_sigreturn"), ("prlimit", "prlimit64")):
        if sysdig_name not in by_name and kernel_name in by_name:
            by_name[sysdig_name] = by_name[kernel_name]
    return by_name


def number(arch: str | None, name: str) -> int | None:
    """The syscall number of `name` on `arch`, None when unknown or no architecture given."""
    if arch is None:
        return None
    return numbers(arch).get(name)


def name(arch: str, nr: int) -> str | None:
    return table(arch).get(nr)


@cache
def errno_names() -> dict[int, str]:
    return {int(n): name for n, name in _rows("errno.csv")}


def errno_name(res: int | None) -> str | None:
    """`ENOENT` for -2; None for non-negative or unknown values."""
    if res is None or res >= 0:
        return None
    return errno_names().get(-res)
