# Debian packages the tests use; later setup steps install their own with kit_apt_install.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
kit_apt_install sysdig mmdebstrap arch-test debootstrap strace zsh
