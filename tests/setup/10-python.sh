# The kit with its test extras, installed editable into its own virtual environment: Debian's
# python is EXTERNALLY-MANAGED (PEP 668), so never into the system's. The venv lives in the
# checkout ($SYSDIG_KIT_VENV, default .venv): each clone runs its own code and a removed clone
# takes its venv along. `sysdig-kit` and `fab` are linked where a login shell finds them
# (/usr/local/bin for root, ~/.local/bin otherwise), and the venv's bin leads PATH for the
# steps and the tests that follow. Warm: a few seconds (pip finds everything installed).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kit_apt_install python3 python3-venv
_kit_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export SYSDIG_KIT_VENV="${SYSDIG_KIT_VENV:-$_kit_root/.venv}"
# a venv copied from elsewhere (its scripts name the old path) or broken by a python upgrade
# does not run: make it anew
if [ "$(cat "$SYSDIG_KIT_VENV/.made-at" 2>/dev/null)" != "$SYSDIG_KIT_VENV" ] \
    || ! "$SYSDIG_KIT_VENV/bin/python" -c '' 2>/dev/null; then
  /usr/bin/python3 -m venv --clear "$SYSDIG_KIT_VENV"
  echo "$SYSDIG_KIT_VENV" > "$SYSDIG_KIT_VENV/.made-at"
fi
"$SYSDIG_KIT_VENV/bin/python" -m pip install -q --disable-pip-version-check -e "$_kit_root[test]"
"$SYSDIG_KIT_VENV/bin/sysdig-kit" --version
if [ "$(id -u)" = 0 ]; then _kit_bin=/usr/local/bin; else _kit_bin="$HOME/.local/bin"; fi
mkdir -p "$_kit_bin"
for _kit_cmd in sysdig-kit fab; do
  # replace our own earlier link, never someone else's program of the same name
  if [ -e "$_kit_bin/$_kit_cmd" ] && [ ! -L "$_kit_bin/$_kit_cmd" ]; then
    echo "not linking $_kit_bin/$_kit_cmd: a file of that name is there; use $SYSDIG_KIT_VENV/bin/$_kit_cmd" >&2
    continue
  fi
  ln -sfn "$SYSDIG_KIT_VENV/bin/$_kit_cmd" "$_kit_bin/$_kit_cmd"
done
echo "sysdig-kit, fab: $_kit_bin -> $SYSDIG_KIT_VENV/bin"
export PATH="$SYSDIG_KIT_VENV/bin:$PATH"
unset _kit_root _kit_bin _kit_cmd
