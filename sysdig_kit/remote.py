"""SSH to a board with Fabric: connect from a board profile; run, push, fetch.

Commands are given as argument lists and joined with shlex, so no value (a filter, a path)
ever reaches the board's shell unquoted. An emulated board is powered on here on first use,
which is the only place outside its profile and sysdig_kit.emulator that knows it is emulated.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from fabric import Connection
from paramiko import RejectPolicy

from .errors import KitError


def connect(profile, timeout: float = 15, boot: bool = False) -> Connection:
    """A Fabric Connection to the board, key auth with the profile's OpenSSH key.

    boot=True powers an emulated board on first (it waits for SSH; minutes when cold)."""
    ssh = profile.ssh
    if not ssh.host:
        raise KitError(f"board {profile.name}: no ssh.host in {profile.source_file}")
    if boot and profile.emulator is not None:
        from .emulator import boot as _boot

        _boot.up(profile)
    kwargs: dict = {}
    if ssh.key:
        key = Path(os.path.expandvars(os.path.expanduser(str(ssh.key))))
        if not key.is_file():
            raise KitError(f"board {profile.name}: SSH key {key} not found")
        # Only this key: an agent or ~/.ssh keys would make failures confusing.
        kwargs = {"key_filename": [str(key)], "look_for_keys": False, "allow_agent": False}
    c = Connection(ssh.host, user=ssh.user, port=int(ssh.port), connect_timeout=timeout,
                   connect_kwargs={**kwargs, "banner_timeout": timeout, "auth_timeout": timeout})
    if profile.emulator is not None:
        from .emulator.boot import known_hosts

        # The loopback board's host key is known from its image: check it strictly.
        c.client.load_host_keys(str(known_hosts(profile)))
        c.client.set_missing_host_key_policy(RejectPolicy())
    else:
        c.client.load_system_host_keys()
    return c


def run(c: Connection, argv: list[str], timeout: float | None = 120, warn: bool = False,
        hide: bool = True, env_prefix: str = ""):
    """Run one command on the board; argv is quoted element by element. No pty."""
    cmd = shlex.join(str(a) for a in argv)
    return c.run(env_prefix + cmd, hide=hide, warn=warn, timeout=timeout, in_stream=False,
                 pty=False)


def sh(c: Connection, script: str, timeout: float | None = 120, warn: bool = False):
    """Run a fixed shell snippet of our own (never built from user values: use quote())."""
    return c.run(script, hide=True, warn=warn, timeout=timeout, in_stream=False, pty=False)


def quote(*argv) -> str:
    return shlex.join(str(a) for a in argv)


def push(c: Connection, local: Path | str, remote: str) -> None:
    c.put(str(local), remote=remote)


def fetch(c: Connection, remote: str, local: Path | str) -> Path:
    local = Path(local)
    local.parent.mkdir(parents=True, exist_ok=True)
    c.get(remote, local=str(local))
    return local
