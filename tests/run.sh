#!/usr/bin/env bash
# The test command (README, .ci/run): install and start what the tests need, then run them all.
# Idempotent: every setup step checks before it installs; heavy outputs are cached under
# $SYSDIG_KIT_CACHE (default /var/cache/sysdig-kit), outside the repository.
set -euo pipefail
cd "$(dirname "$0")/.."
export SYSDIG_KIT_CACHE="${SYSDIG_KIT_CACHE:-/var/cache/sysdig-kit}"
mkdir -p "$SYSDIG_KIT_CACHE"
for step in tests/setup/[0-9]*.sh; do
  echo "== setup: $step"
  start=$(date +%s)
  # shellcheck source=/dev/null
  source "$step"
  echo "== setup: $step done in $(( $(date +%s) - start )) s"
done
# the venv tests/setup/10-python.sh made (its bin leads PATH: `sysdig-kit`, `fab` are this checkout's)
exec "$SYSDIG_KIT_VENV/bin/python" -m pytest "$@"
