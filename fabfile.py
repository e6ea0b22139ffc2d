"""Fabric entry point: `fab -l` lists the board tasks, which live in deploy/."""

from deploy import ns  # noqa: F401
