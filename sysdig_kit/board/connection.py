"""A connection to a target: run an argv, run one in the background, push, pull.

`SshConnection` is Fabric (OpenSSH keys, the profile's key only); `LocalConnection` is this
machine with the same methods, so a capture or a playbook run does not care where it runs.
Commands are argument lists joined with shlex: no value ever reaches a shell unquoted.
`sh()` is for fixed snippets of the kit's own (build them with `quote()`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal as _signal
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import KitError

quote = shlex.join


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.rc == 0


def _argv(argv) -> str:
    return shlex.join(str(a) for a in argv)


class _Base:
    name = "?"

    def run(self, argv, timeout: float | None = 120, check: bool = True) -> Result:
        """Run one command; `check`: a non-zero exit is a KitError naming the command."""
        res = self.sh(_argv(argv), timeout=timeout, check=False)
        if check and not res.ok:
            raise KitError(f"{self.where}: `{_argv(argv)[:200]}` failed (rc {res.rc}): "
                           + " ".join((res.stderr or res.stdout).split())[-300:])
        return res

    def background(self, argv, log_dir: str | None = None) -> Job:
        """Start argv detached from this connection (it outlives a dropped SSH session); its
        stdout, stderr, pid and exit status go to files in `log_dir` (a new folder in /tmp)."""
        d = log_dir or f"/tmp/sysdig-kit-job-{uuid.uuid4().hex[:8]}"
        q = shlex.quote
        # A command started with `&` by a non-interactive shell has SIGINT ignored (POSIX), and
        # cannot even trap it; GNU env (coreutils >= 8.31) gives it back its default. sysdig
        # sets its own handler, so it stops on SIGINT either way.
        inner = ('E=; env --default-signal=INT true 2>/dev/null && E="env --default-signal=INT"; '
                 f"$E {_argv(argv)} >{q(d + '/stdout')} 2>{q(d + '/stderr')} </dev/null & "
                 f"echo $! >{q(d + '/pid')}; wait $!; echo $? >{q(d + '/rc')}")
        self.sh(f"mkdir -p {q(d)} && cd {q(d)} && "
                f"(nohup sh -c {q(inner)} >/dev/null 2>&1 </dev/null &)", timeout=30)
        for _ in range(200):
            res = self.sh(f"cat {q(d + '/pid')} 2>/dev/null", timeout=30, check=False)
            if res.stdout.strip():
                return Job(self, d, int(res.stdout))
            time.sleep(0.1)
        raise KitError(f"{self.where}: `{_argv(argv)[:200]}` did not start")

    def size(self, path: str) -> int:
        """Bytes in a file on the target (0 when it does not exist yet)."""
        res = self.sh(f"stat -c %s {shlex.quote(path)} 2>/dev/null || echo 0", timeout=30,
                      check=False)
        return int((res.stdout.split() or ["0"])[0])

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Job:
    """A command running in the background on a target (see Connection.background)."""

    def __init__(self, conn: _Base, d: str, pid: int):
        self.conn, self.dir, self.pid = conn, d, pid

    def poll(self, watch: str | None = None) -> tuple[bool, int]:
        """(still running, bytes in the file `watch`) in one round trip."""
        q = shlex.quote
        size = f"stat -c %s {q(watch)} 2>/dev/null || echo 0; " if watch else "echo 0; "
        res = self.conn.sh(size + f"test -e {q(self.dir + '/rc')} && echo done || echo running",
                           timeout=30, check=False)
        got = res.stdout.split() + ["0", "running"]
        return got[1] == "running", int(got[0])

    def alive(self) -> bool:
        return self.poll()[0]

    def signal(self, sig: int = _signal.SIGINT) -> None:
        name = _signal.Signals(sig).name.removeprefix("SIG")
        self.conn.run(["kill", f"-{name}", str(self.pid)], timeout=30, check=False)

    def wait(self, timeout: float | None = None, every: float = 0.3) -> int | None:
        """The exit status, or None if it still runs after `timeout` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        while self.alive():
            if end is not None and time.monotonic() >= end:
                return None
            time.sleep(every)
        return self.rc()

    def rc(self) -> int | None:
        res = self.conn.sh(f"cat {shlex.quote(self.dir + '/rc')} 2>/dev/null", timeout=30,
                           check=False)
        return int(res.stdout) if res.stdout.strip() else None

    def output(self) -> str:
        """Its stdout then stderr, as written so far."""
        q = shlex.quote
        return self.conn.sh(f"cat {q(self.dir + '/stdout')} {q(self.dir + '/stderr')} "
                            "2>/dev/null", timeout=30, check=False).stdout

    def stop(self, timeout: float = 60) -> int | None:
        """SIGINT, then SIGKILL if it is still there after `timeout`; its exit status. One
        round trip: the waiting happens on the target (each SSH command costs ~1 s on a busy
        emulated board)."""
        q = shlex.quote
        rc, n = q(self.dir + "/rc"), max(1, round(timeout * 10))
        res = self.conn.sh(
            f"test -e {rc} || kill -INT {self.pid} 2>/dev/null; i=0; "
            f"while [ ! -e {rc} ] && [ $i -lt {n} ]; do sleep 0.1; i=$((i+1)); done; "
            f"test -e {rc} || {{ kill -KILL {self.pid} 2>/dev/null; sleep 1; }}; "
            f"cat {rc} 2>/dev/null", timeout=timeout + 60, check=False)
        return int(res.stdout) if res.stdout.strip() else None

    def cleanup(self) -> None:
        self.conn.run(["rm", "-rf", self.dir], timeout=30, check=False)


# --- over SSH ----------------------------------------------------------------------------------

def _ssh_errors() -> tuple:
    from invoke.exceptions import CommandTimedOut, UnexpectedExit
    from paramiko.ssh_exception import SSHException

    return (OSError, EOFError, SSHException, CommandTimedOut, UnexpectedExit)


class SshConnection(_Base):
    """One board over SSH (Fabric), key auth with the profile's OpenSSH key only.

    `known_hosts`: a file whose keys are checked strictly (the emulated board's), else the
    user's known_hosts as OpenSSH would. `hint`: how to bring the board up, said when it
    cannot be reached."""

    def __init__(self, name: str, host: str, port: int = 22, user: str = "root",
                 key: str | None = None, known_hosts: Path | None = None, timeout: float = 15,
                 hint: str = ""):
        from fabric import Connection
        from paramiko import RejectPolicy

        self.name, self.hint = name, hint
        self.where = f"board {name}"
        self.address = f"{user}@{host}:{port}"
        kwargs: dict = {}
        if key:
            k = Path(os.path.expandvars(os.path.expanduser(str(key))))
            if not k.is_file():
                raise KitError(f"board {name}: SSH key {k} not found")
            # Only this key: an agent or ~/.ssh keys would make failures confusing.
            kwargs = {"key_filename": [str(k)], "look_for_keys": False, "allow_agent": False}
        self.fabric = Connection(host, user=user, port=int(port), connect_timeout=timeout,
                                 connect_kwargs={**kwargs, "banner_timeout": timeout,
                                                 "auth_timeout": timeout})
        if known_hosts is not None:
            self.fabric.client.load_host_keys(str(known_hosts))
            self.fabric.client.set_missing_host_key_policy(RejectPolicy())
        else:
            self.fabric.client.load_system_host_keys()

    def open(self) -> SshConnection:
        """Connect now; an unreachable board is one KitError naming it and how to bring it up."""
        try:
            self.fabric.open()
        except _ssh_errors() as exc:
            raise KitError(self.unreachable(exc)) from None
        return self

    def unreachable(self, exc) -> str:
        from paramiko.ssh_exception import BadHostKeyException

        why = " ".join(str(exc).split()) or type(exc).__name__
        if isinstance(exc, BadHostKeyException) or "not found in known_hosts" in why:
            return (f"board {self.name} at {self.address}: its SSH host key is not the known one "
                    f"({why[:160]}); refusing to connect")
        if isinstance(exc, (ConnectionRefusedError, socket.timeout, TimeoutError)) or \
                "Unable to connect" in why:
            why = "nothing answers" if "efused" in why or "Unable" in why else why
        return f"board {self.name} is not reachable at {self.address} ({why[:160]})" + \
            (f"; {self.hint}" if self.hint else "")

    def sh(self, script: str, timeout: float | None = 120, check: bool = True) -> Result:
        try:
            r = self.fabric.run(script, hide=True, warn=True, timeout=timeout, in_stream=False,
                                pty=False)
        except _ssh_errors() as exc:
            if not self.fabric.is_connected:
                raise KitError(self.unreachable(exc)) from None
            raise KitError(f"board {self.name}: `{script[:120]}`: {type(exc).__name__}: "
                           f"{' '.join(str(exc).split())[:200]}") from None
        res = Result(r.return_code, r.stdout, r.stderr)
        if check and not res.ok:
            raise KitError(f"board {self.name}: `{script[:200]}` failed (rc {res.rc}): "
                           + " ".join((res.stderr or res.stdout).split())[-300:])
        return res

    def push(self, local: Path | str, remote: str) -> None:
        self.fabric.put(str(local), remote=remote)

    def pull(self, remote: str, local: Path | str) -> Path:
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        self.fabric.get(remote, local=str(local))
        return local

    def close(self) -> None:
        self.fabric.close()


# --- this machine ------------------------------------------------------------------------------

class LocalConnection(_Base):
    """This machine, with the same methods as SshConnection (paths are local paths)."""

    name = "local"
    where = "this machine"
    address = "localhost"

    def open(self) -> LocalConnection:
        return self

    def sh(self, script: str, timeout: float | None = 120, check: bool = True) -> Result:
        # Its own session, so a timeout kills everything it started.
        p = subprocess.Popen(["sh", "-c", script], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, _signal.SIGKILL)
            out, err = p.communicate()
            return Result(124, out, err + f"\ntimed out after {timeout:g} s")
        res = Result(p.returncode, out, err)
        if check and not res.ok:
            raise KitError(f"this machine: `{script[:200]}` failed (rc {res.rc}): "
                           + " ".join((res.stderr or res.stdout).split())[-300:])
        return res

    def background(self, argv, log_dir: str | None = None) -> Job:
        d = log_dir or tempfile.mkdtemp(prefix="sysdig-kit-job-")
        return super().background(argv, d)

    def push(self, local: Path | str, remote: str) -> None:
        shutil.copyfile(local, remote)

    def pull(self, remote: str, local: Path | str) -> Path:
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        if Path(remote).resolve() != local.resolve():
            shutil.copyfile(remote, local)
        return local

    def close(self) -> None:
        pass
