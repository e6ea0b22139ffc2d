"""What every task module shares: KitError → Fabric's one-line Exit."""

import functools

from invoke import Exit

from sysdig_kit.errors import KitError


def kit_errors(fn):
    """A KitError becomes Fabric's one-line Exit, never a traceback."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except KitError as exc:
            raise Exit(f"error: {exc}", code=2) from None
    return wrapper
