# Debian packages the tests use. `kit_apt_install PKG...` installs the missing ones (apt-get
# update only then); later setup steps call it for their own packages.
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
kit_apt_install sysdig mmdebstrap arch-test debootstrap strace zsh
