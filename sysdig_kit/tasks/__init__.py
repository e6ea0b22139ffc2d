"""Fabric tasks (`fab build-juno deploy`, `fab capture`, ...): thin wrappers over sysdig_kit.

They ship in the package, so an installed wheel has them. `fab` finds tasks through a
fabfile.py in the current folder or one above it: the repository's is one line, and so is
one's own anywhere else:

    from sysdig_kit.tasks import ns  # noqa: F401

(`sysdig-kit fabfile` writes it.) The tasks of each module are gathered flat into `ns`, so
`fab build-juno deploy` works; names and flags match the `sysdig-kit` CLI's.
"""

from invoke import Collection

from . import board, build

ns = Collection()
for _mod in (build, board):
    for _task in Collection.from_module(_mod).tasks.values():
        ns.add_task(_task)
