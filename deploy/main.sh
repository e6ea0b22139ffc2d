#!/usr/bin/env bash
# The main job: the whole record path on a board (the emulated arm64 board unless a Juno is
# configured): board up -> build -> deploy -> capture a scripted zsh session -> frame ->
# replay log -> check. Leaves out/zsh.scap (+ .manifest.json), out/zsh.parquet,
# out/zsh.replay.jsonl and out/zsh.replay.parquet. Cold (nothing cached): ~15-20 min; warm: ~3 min.
set -euo pipefail
cd "$(dirname "$0")/.."
export SYSDIG_KIT_CACHE="${SYSDIG_KIT_CACHE:-/var/cache/sysdig-kit}"
mkdir -p "$SYSDIG_KIT_CACHE"
# What a fresh Debian machine lacks (packages, the kit, the Docker engine and base images, QEMU
# and the board image): the same idempotent steps the test command runs, fast when warm.
for step in tests/setup/00-apt.sh tests/setup/10-python.sh tests/setup/30-docker.sh tests/setup/40-board.sh; do
  echo "== setup: $step"
  # shellcheck source=/dev/null
  source "$step"
done
board="${SYSDIG_KIT_BOARD:-$("$SYSDIG_KIT_VENV/bin/python" -c 'from sysdig_kit import profiles; print(profiles.default_board())')}"
export SYSDIG_KIT_BOARD="$board"
out="${SYSDIG_KIT_OUT:-out}"  # where the job leaves its files
mkdir -p "$out"
echo "== board: $board"

# Power the board off again at the end if this script powered it on (board-up does).
was_up=$("$SYSDIG_KIT_VENV/bin/python" -c 'import sys; from sysdig_kit import board; print(int(board.platform(sys.argv[1]).is_up()))' "$board")
if [ "$was_up" = 0 ]; then trap 'fab board-down' EXIT; fi

fab board-up
fab build deploy
fab demo --out "$out"

# Read, replay log, verdict (the read and replay stages run anywhere: no board needed).
if sysdig-kit --help | grep -q '^  convert'; then
  sysdig-kit convert "$out/zsh.scap" -o "$out/zsh.parquet"
fi
sysdig-kit replay-log "$out/zsh.scap" -o "$out/zsh.replay.parquet"
sysdig-kit replay-log "$out/zsh.scap" -o "$out/zsh.replay.jsonl"
ls -l "$out"
# The verdict is the job's result: exit 0 only when the capture is enough to replay (the
# default build's replay-complete driver records every return value and write-back).
sysdig-kit check "$out/zsh.scap"
