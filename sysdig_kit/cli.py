"""`sysdig-kit` command line: thin wrappers over the stage modules.

Each stage keeps its commands in its own section below; the work itself lives in the stage's
module so the same function serves the CLI, the Fabric tasks and a notebook.
"""

from __future__ import annotations

import sys

import click

from .errors import KitError


class _Group(click.Group):
    """Turns a KitError (bad input, missing tool) into one clear line and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except KitError as exc:
            click.echo(f"sysdig-kit: error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sysdig-kit")
def main():
    """Record syscalls with sysdig on an arm64 board and turn captures into replay logs.

    \b
    The path: build (fab build-juno) -> deploy (fab deploy) -> capture -> read -> replay log
    -> analyse. This command covers capture, read and replay; `fab -l` lists the board tasks.
    """


# --- read: convert, info -------------------------------------------------------------------


# --- replay: replay-log, check, decode-hooklog ---------------------------------------------


# --- capture -------------------------------------------------------------------------------


# --- analysis: run ---------------------------------------------------------------------------


if __name__ == "__main__":
    main()
