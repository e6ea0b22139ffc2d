# The Docker engine and the base images the build Dockerfiles start FROM (no image registry is
# reachable here: base images are made with mmdebstrap + docker import). Sourced by tests/run.sh.
# Warm: a few seconds. Cold: docker.io install ~1 min, each base image ~30-60 s.
command -v dockerd >/dev/null 2>&1 || kit_apt_install docker.io
kit_apt_install qemu-user-static binfmt-support mmdebstrap
# No init system here: start dockerd ourselves, with its own log, and wait (bounded) for it.
if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd (log: /var/log/dockerd.log)"
  setsid dockerd --host unix:///var/run/docker.sock --data-root /var/lib/docker \
    --pidfile /var/run/docker.pid >>/var/log/dockerd.log 2>&1 < /dev/null &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start; see /var/log/dockerd.log"; tail -n 20 /var/log/dockerd.log; false; }
fi
# qemu-user for arm64 binaries (verifying `sysdig --version`, arm64 containers).
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || true
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 || true
# Base images, tagged as Docker Hub names them (a user with a registry just pulls instead).
_kit_mirror="$(kit_debian_mirror)"
mkdir -p "$SYSDIG_KIT_CACHE/base-images"
for _kit_suite in sid bookworm; do
  docker image inspect "debian:$_kit_suite" >/dev/null 2>&1 && continue
  _kit_tar="$SYSDIG_KIT_CACHE/base-images/debian-$_kit_suite.tar"
  if [ ! -s "$_kit_tar" ]; then
    echo "making base image debian:$_kit_suite with mmdebstrap"
    mmdebstrap --variant=minbase --format=tar --aptopt='Acquire::Check-Valid-Until "false"' \
      "$_kit_suite" "$_kit_tar.tmp" "$_kit_mirror"
    mv "$_kit_tar.tmp" "$_kit_tar"
  fi
  docker import "$_kit_tar" "debian:$_kit_suite" >/dev/null
done
unset _kit_mirror _kit_suite _kit_tar
