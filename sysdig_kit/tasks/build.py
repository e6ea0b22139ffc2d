"""Build tasks: build-juno (alias build), images. Thin wrappers over sysdig_kit.build.

The board is `--board NAME`, else $SYSDIG_KIT_BOARD, else sysdig_kit.profiles.default_board()
(juno when its profile names a host that answers, else the emulated qemu-arm64) — so
`fab build-juno deploy` builds for and deploys to the same board.
"""

from __future__ import annotations

from sysdig_kit import profiles

from ._common import kit_errors, task


# One task under two names: `build-juno` is the documented one (the Juno is the target), `build`
# reads better for the emulated board; both build for the *selected* board.
@task(aliases=["build"],
      help={"board": "board profile (default: juno if configured and reachable, else qemu-arm64)",
            "force": "rebuild even when the bundle is current",
            "dry_run": "print what the build would use (pair, images, patches) and stop"})
@kit_errors
def build_juno(c, board=None, force=False, dry_run=False):
    """Cross-build scap.ko + arm64 sysdig for the selected board (Juno by default) in Docker."""
    from sysdig_kit import build as _b

    p = profiles.load(board or profiles.default_board())
    print(_b.plan(p) if dry_run else _b.build(p, force=force))


@task(help={"board": "board profile (default: the selected board)"})
@kit_errors
def images(c, board=None):
    """Build (or find cached) the Docker builder images of a board profile and list them."""
    from sysdig_kit import build as _b
    from sysdig_kit import paths
    from sysdig_kit.build import images as _images

    p = profiles.load(board or profiles.default_board())
    print(_b.builder_image(_images.client(), p, paths.cache_dir("logs", p.name)))
