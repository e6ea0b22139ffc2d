"""Fabric tasks (build-juno, deploy, board-up/down, ...): thin wrappers over sysdig_kit.

Each group of tasks lives in its own module (build_tasks, board_tasks); their tasks are
gathered flat into one collection here so that `fab build-juno deploy` works from the root.
"""

import importlib

from invoke import Collection

ns = Collection()
for _mod in ("build_tasks", "board_tasks"):
    try:
        _m = importlib.import_module(f"deploy.{_mod}")
    except ModuleNotFoundError as exc:
        if exc.name != f"deploy.{_mod}":
            raise
        continue
    for _task in Collection.from_module(_m).tasks.values():
        ns.add_task(_task)
