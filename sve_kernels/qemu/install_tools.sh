#!/usr/bin/env bash
# Install the aarch64 cross compiler and QEMU user mode used by `make sve-test`, then unpack the aarch64
# Python + numpy folder for the binding test (python_root.sh).
# Installs only what is missing and only when root and apt-get are available; otherwise explains why it
# skips. Always exits 0: the QEMU tests then skip with the same reason instead of failing the build.
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
trap 'bash "$here/python_root.sh"' EXIT

need=()
command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || need+=(gcc-aarch64-linux-gnu)
[ -e /usr/aarch64-linux-gnu/lib/libc.so.6 ] || need+=(libc6-dev-arm64-cross)
command -v qemu-aarch64 >/dev/null 2>&1 || need+=(qemu-user)

if [ ${#need[@]} -eq 0 ]; then
    echo "sve-tools: aarch64-linux-gnu-gcc, arm64 libc and qemu-aarch64 already present"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "sve-tools: SKIP installing ${need[*]}: not root (run 'sudo make sve-tools' to enable the QEMU SVE tests)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "sve-tools: SKIP installing ${need[*]}: no apt-get on this system (install them with your package manager)"
    exit 0
fi
echo "sve-tools: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get update -qq || ! apt-get install -y -qq --no-install-recommends "${need[@]}"; then
    echo "sve-tools: WARNING apt-get could not install ${need[*]}; the QEMU SVE tests will skip"
fi
exit 0
