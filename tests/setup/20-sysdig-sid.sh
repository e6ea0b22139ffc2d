# sysdig 0.41.4 (Debian sid) in a chroot: the oracle for new-era captures, which bookworm's
# sysdig 0.29.3 cannot read. Built once (~25 s) and cached.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kit_apt_install mmdebstrap
SID_ROOT="$SYSDIG_KIT_CACHE/sysdig-sid-root"
if [ ! -x "$SID_ROOT/usr/bin/sysdig" ]; then
  mirror="$(kit_debian_mirror)"
  rm -rf "$SID_ROOT.tmp"
  mmdebstrap --variant=minbase --include=sysdig --aptopt='Acquire::Check-Valid-Until "false"' \
    sid "$SID_ROOT.tmp" "$mirror"
  mv "$SID_ROOT.tmp" "$SID_ROOT"
fi
export SYSDIG_KIT_SYSDIG_NEW="$SID_ROOT"
