#!/usr/bin/env bash
# The dependency floors pyproject.toml declares, tested: the lowest version of every direct
# dependency it admits (uv's `--resolution lowest-direct`; the rest resolve as usual), in a venv
# cached outside the repository (keyed by pyproject.toml), running the tests that need neither
# the board, Docker nor a real sysdig, nor the driver cross-build. Extra arguments go to pytest.
# Called by .ci/run after the whole suite. Cold: ~1 min to make the venv; the tests ~4 min.
set -euo pipefail
cd "$(dirname "$0")/.."
export SYSDIG_KIT_CACHE="${SYSDIG_KIT_CACHE:-/var/cache/sysdig-kit}"
source tests/setup/lib.sh
kit_apt_install python3 python3-venv
key=$( (cat pyproject.toml; /usr/bin/python3 --version) | sha256sum | cut -c1-12)
venv="$SYSDIG_KIT_CACHE/venv-floors/$key"
mkdir -p "$SYSDIG_KIT_CACHE/venv-floors"
# one run at a time per cache: the editable install below points the venv at this checkout
exec 9>"$SYSDIG_KIT_CACHE/venv-floors/lock"
flock 9
if [ ! -e "$venv/.complete" ]; then
  rm -rf "$venv"
  /usr/bin/python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check uv==0.13.9
  "$venv/bin/uv" pip install -q --system-certs --python "$venv/bin/python" \
    --resolution lowest-direct -e '.[test]'
  touch "$venv/.complete"
fi
"$venv/bin/uv" pip install -q --system-certs --python "$venv/bin/python" --no-deps -e .
echo "== floors: $("$venv/bin/python" -c 'import importlib.metadata as m
print(", ".join(f"{n} {m.version(n)}" for n in ("numpy", "pandas", "pyarrow", "matplotlib",
      "click", "rich", "pyyaml", "jinja2", "fabric", "docker", "pytest", "hypothesis",
      "nbclient", "ipykernel", "duckdb", "dask", "distributed")))')"
PATH="$venv/bin:$PATH" "$venv/bin/python" -m pytest -p no:cacheprovider \
  -m "not board and not docker and not oracle" -k "not cross_builds" "$@"
