# The emulated arm64 board: QEMU system + user emulation, binfmt_misc for running arm64 maintainer
# scripts while building its image, and the image itself, built here (cold: ~10 min, cached under
# $SYSDIG_KIT_CACHE/board/qemu-arm64) so the board tests stay short. Warm: ~1 s.
board_pkgs=(qemu-system-arm qemu-user-static qemu-utils binfmt-support mmdebstrap e2fsprogs openssh-client)
board_missing=()
for p in "${board_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || board_missing+=("$p")
done
if [ ${#board_missing[@]} -gt 0 ]; then
  echo "installing: ${board_missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${board_missing[@]}"
fi
if [ ! -e /proc/sys/fs/binfmt_misc/status ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
python3 -c 'from sysdig_kit import profiles; from sysdig_kit.emulator import image
p = profiles.load("qemu-arm64"); print("board image:", image.ensure(p.name, p.emulator).dir)'
