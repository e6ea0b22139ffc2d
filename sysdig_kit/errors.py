"""Errors a user can act on: the CLI prints them as one line, never a traceback."""

from __future__ import annotations

import socket


class KitError(Exception):
    """A problem with the user's input or environment, explained in one line."""


# Modules whose exceptions mean "the SSH session to the board failed" (Fabric runs on invoke and
# paramiko). Told apart by module so that this file never imports them.
_REMOTE_MODULES = ("paramiko", "invoke", "fabric")


def remote_error(exc: BaseException) -> str | None:
    """One line for an SSH, network or socket failure (paramiko, Fabric/invoke, socket), or
    None when `exc` is not one. The CLI and the Fabric tasks map these to KitError lines
    whatever layer raised them, so no board code path can leak a paramiko traceback."""
    mod = type(exc).__module__ or ""
    if isinstance(exc, BrokenPipeError):  # our own stdout closed (`| head`), not a board
        return None
    if not (mod.split(".")[0] in _REMOTE_MODULES
            or isinstance(exc, (socket.gaierror, socket.herror, ConnectionError, TimeoutError))):
        return None
    why = " ".join(str(exc).split())[:200] or type(exc).__name__
    if isinstance(exc, socket.gaierror):
        why = f"unknown host ({why})"
    elif isinstance(exc, ConnectionRefusedError):
        why = f"nothing answers ({why})"
    return f"cannot reach the board over SSH: {type(exc).__name__}: {why}"


def resource_error(exc: BaseException) -> str | None:
    """One line for running out of memory or recursion depth, or None."""
    if isinstance(exc, MemoryError):
        return ("out of memory (the input holds a length or count too large to be real, or "
                "is larger than memory: read it in batches, --batch-size)")
    if isinstance(exc, RecursionError):
        return "input nested too deeply to read (over Python's recursion limit)"
    return None
