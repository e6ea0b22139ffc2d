"""Fabric entry point: `fab -l` lists the board tasks, which ship in the package
(sysdig_kit/tasks/). Any folder of one's own needs the same one line (`sysdig-kit fabfile`)."""

from sysdig_kit.tasks import ns  # noqa: F401
