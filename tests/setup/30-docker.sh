# The Docker engine and the base images the build Dockerfiles start FROM (no image registry is
# reachable here: base images are made with mmdebstrap + docker import). Sourced by tests/run.sh.
# Warm: a few seconds. Cold: docker.io install ~1 min, each base image ~30-60 s.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
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
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64
# Base images, tagged as Docker Hub names them (a user with a registry just pulls instead). They
# trust what the host trusts: the host's locally added CAs (/usr/local/share/ca-certificates) go
# in, so where HTTPS to PyPI passes a TLS-inspecting proxy the host trusts, containers get through
# too. The images are labelled with a digest of those CAs; a change remakes them.
_kit_mirror="$(kit_debian_mirror)"
_kit_cas=$(if [ -d /usr/local/share/ca-certificates ]; then
             find /usr/local/share/ca-certificates -type f -name '*.crt' -print0 | sort -z | xargs -0 -r cat
           fi | sha256sum | cut -c1-12)
mkdir -p "$SYSDIG_KIT_CACHE/base-images"
for _kit_suite in sid bookworm; do
  if docker image inspect "debian:$_kit_suite" >/dev/null 2>&1 && [ "$(docker image inspect -f \
      '{{index .Config.Labels "sysdig-kit.cas"}}' "debian:$_kit_suite")" = "$_kit_cas" ]; then
    continue
  fi
  _kit_tar="$SYSDIG_KIT_CACHE/base-images/debian-$_kit_suite-cas-$_kit_cas.tar"
  if [ ! -s "$_kit_tar" ]; then
    echo "making base image debian:$_kit_suite with mmdebstrap"
    mmdebstrap --variant=minbase --format=tar --include=ca-certificates \
      --aptopt='Acquire::Check-Valid-Until "false"' \
      --customize-hook='if [ -d /usr/local/share/ca-certificates ]; then cp -r /usr/local/share/ca-certificates/. "$1/usr/local/share/ca-certificates/"; fi' \
      --customize-hook='chroot "$1" update-ca-certificates' \
      "$_kit_suite" "$_kit_tar.tmp" "$_kit_mirror"
    mv "$_kit_tar.tmp" "$_kit_tar"
  fi
  docker import --change "LABEL sysdig-kit.cas=$_kit_cas" "$_kit_tar" "debian:$_kit_suite" >/dev/null
done
unset _kit_mirror _kit_suite _kit_tar _kit_cas
