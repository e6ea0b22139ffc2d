"""Start a command for `sysdig-kit capture -- CMD`: from its first instruction, with the vDSO hidden
at every exec (so time reads enter the kernel and the capture records them) and address-space
randomisation off (so a replay maps memory where the recording did). Stdlib only (runs on the board).

The launcher forks the command, which waits; it seizes it with ptrace (stopping only at
exec/fork/clone events, never at syscalls), writes the command's pid to --pidfile, waits for
--go FILE to exist (the capture has started), lets the command exec, and exits with its status.
"""

from __future__ import annotations

import os
import signal
import time

from . import ptrace as pt
from .engine import WALL, _which

OPTIONS = pt.O_TRACECLONE | pt.O_TRACEFORK | pt.O_TRACEVFORK | pt.O_TRACEEXEC | pt.O_EXITKILL


def launch(argv: list[str], pidfile: str | None = None, go: str | None = None,
           hide_vdso: bool = True, no_aslr: bool = True, go_timeout: float = 120,
           cwd: str | None = None) -> int:
    path = _which(argv[0])
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(w)
            os.read(r, 1)
            os.close(r)
            if no_aslr:
                pt.personality(pt.ADDR_NO_RANDOMIZE)
            if cwd:  # the replay runs it here too: getcwd and PWD must be the same
                os.chdir(cwd)
                os.environ["PWD"] = cwd
            os.execv(path, argv)
        except BaseException as exc:  # noqa: BLE001
            os.write(2, f"sysdig-kit launch: cannot run {argv[0]}: {exc}\n".encode())
        os._exit(127)
    os.close(r)
    pt.seize(pid, OPTIONS)
    if pidfile:
        with open(pidfile + ".tmp", "w") as f:
            f.write(f"{pid}\n")
        os.rename(pidfile + ".tmp", pidfile)
    if go:
        deadline = time.monotonic() + go_timeout
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                raise TimeoutError(f"{go} did not appear within {go_timeout:.0f} s")
            time.sleep(0.01)
    os.write(w, b"g")
    os.close(w)
    return _follow(pid, hide_vdso)


def _follow(root: int, hide_vdso: bool) -> int:
    arch = pt.ARCHS[pt.host_arch()]
    while True:
        try:
            tid, status = os.waitpid(-1, WALL)
        except ChildProcessError:
            return 0
        if os.WIFEXITED(status) or os.WIFSIGNALED(status):
            if tid == root:
                return os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
            continue
        sig, event = os.WSTOPSIG(status), status >> 16
        try:
            if event == pt.EVENT_EXEC and hide_vdso:
                pt.hide_vdso(tid, arch)
            # Events and the first stop of new threads resume plainly; a real signal is passed on.
            pt.cont(tid, 0 if event else sig)
        except pt.PtraceError:
            continue
