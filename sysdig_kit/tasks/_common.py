"""What every task module shares: KitError → Fabric's one-line Exit, and explicit short flags."""

from __future__ import annotations

import functools
import logging

from invoke import Exit, Task
from invoke import task as _invoke_task

from sysdig_kit.errors import KitError, remote_error

# paramiko logs a failed handshake with its traceback (logging's last-resort handler); the
# one-line error below says it.
logging.getLogger("paramiko").addHandler(logging.NullHandler())


def kit_errors(fn):
    """A KitError becomes Fabric's one-line Exit, never a traceback; so does an SSH, network
    or socket failure (paramiko, Fabric) from whatever layer raised it."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KitError as exc:
            raise Exit(f"error: {exc}", code=2) from None
        except Exception as exc:
            why = remote_error(exc)
            if why is None or isinstance(exc, Exit):
                raise
            raise Exit(f"error: {' '.join(why.split())}", code=2) from None
    return wrapper


class KitTask(Task):
    """A task whose short flags are the ones it names, as the `sysdig-kit` CLI has them.

    Invoke gives every parameter the first free letter of its name by default, so in `capture`
    `-o` meant --count (`c` was taken by --children); here only `short` makes short flags."""

    def __init__(self, body, short: dict | None = None, **kwargs):
        self.short = dict(short or {})
        super().__init__(body, auto_shortflags=False, **kwargs)

    def arg_opts(self, name, default, taken_names):
        opts = super().arg_opts(name, default, taken_names)
        if name in self.short:
            opts["names"].append(self.short[name])
        return opts


def task(*args, **kwargs):
    """invoke.task with KitTask: explicit short flags only (`short={"output": "o"}`)."""
    return _invoke_task(*args, klass=KitTask, **kwargs)
