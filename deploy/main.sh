#!/usr/bin/env bash
# The main job. Until the board path exists: read a shipped real arm64 capture and summarise it.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check -e . 2>&1 | grep -v "^WARNING: Location" || true
capture="${1:-../shared/captures/arm64/old-era-zsh-s4096.scap}"
sysdig-kit info "$capture"
