# The emulated arm64 board: QEMU system + user emulation, binfmt_misc for running arm64 maintainer
# scripts while building its image, and the image itself, built here (cold: ~10 min, cached under
# $SYSDIG_KIT_CACHE/board/qemu-arm64) so the board tests stay short. Warm: ~1 s.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kit_apt_install qemu-system-arm qemu-user-static qemu-utils binfmt-support mmdebstrap e2fsprogs openssh-client
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
"${SYSDIG_KIT_VENV:+$SYSDIG_KIT_VENV/bin/}python3" -c 'from sysdig_kit import profiles; from sysdig_kit.emulator import image
p = profiles.load("qemu-arm64"); print("board image:", image.ensure(p.name, p.emulator).dir)'
