# Helpers for the setup steps (sourced by each of them, so any step also runs on its own:
# `bash tests/setup/30-docker.sh`). Not a step itself: tests/run.sh sources [0-9]*.sh only.

# `kit_apt_install PKG...` installs the missing ones (apt-get update only then).
kit_apt_install() {
  local p missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  fi
}

# The Debian mirror apt uses, from deb822 sources (current Debian) or sources.list (older);
# $DEBIAN_MIRROR wins. Missing files are fine: a fresh Debian 12 has no sources.list.
kit_debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local f m=""
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    # the first http(s) URI ending in /debian on a `URIs:` or `deb` line (awk: no match is no error)
    m=$(awk '/^[[:space:]]*(URIs:|deb )/ { for (i = 2; i <= NF; i++)
           if ($i ~ /^https?:\/\/.*\/debian\/?$/) { print $i; exit } }' "$f")
    [ -n "$m" ] && break
  done
  echo "${m:-http://deb.debian.org/debian}"
}
