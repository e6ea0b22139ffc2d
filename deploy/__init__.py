"""Fabric tasks (build-juno, deploy, board-up/down, ...): thin wrappers over sysdig_kit.

Each group of tasks lives in its own module; they are gathered into one collection here so
that `fab build-juno deploy` works from the repository's root.
"""

from invoke import Collection

ns = Collection()
for _mod in ("build_tasks", "board_tasks"):
    try:
        ns.add_collection(Collection.from_module(__import__(f"deploy.{_mod}", fromlist=["_"])), name=None)
    except ModuleNotFoundError as exc:
        if exc.name != f"deploy.{_mod}":
            raise
