#!/usr/bin/env bash
# Unpack an aarch64 Python 3.11 with numpy and pytest (Debian arm64 packages, extracted with dpkg -x, nothing
# installed system-wide) into a folder, so binding_under_qemu.sh can run the sve_kernels binding and its
# pytest suite under qemu-aarch64. Needs root + apt-get the first time (adds the arm64 package lists).
# Usage: python_root.sh [DIR]   DIR defaults to $SVE_QEMU_PYROOT or ~/.cache/jcorpus/aarch64-python.
# Always exits 0; prints SKIP with the reason when the folder cannot be made.
set -u
dir="${1:-${SVE_QEMU_PYROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/jcorpus/aarch64-python}}"
if [ -e "$dir/.complete" ]; then
    echo "python-root: ready at $dir"
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "python-root: SKIP: building the aarch64 Python folder needs root and apt-get (Debian arm64 packages)"
    exit 0
fi
pkgs=(python3.11 python3.11-minimal libpython3.11-minimal libpython3.11-stdlib python3-numpy libblas3 liblapack3
      libgfortran5 libexpat1 zlib1g libffi8 libbz2-1.0 liblzma5 libssl3 libcrypt1 libuuid1 libsqlite3-0
      libncursesw6 libtinfo6 libreadline8 libgomp1 libgcc-s1 libc6 libstdc++6)
arch_pkgs=("${pkgs[@]/%/:arm64}")
pure=(python3-pytest python3-attr python3-more-itertools python3-pkg-resources python3-pluggy python3-py
      python3-iniconfig python3-packaging)
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    dpkg --add-architecture arm64
fi
if ! apt-cache show python3.11:arm64 >/dev/null 2>&1; then
    apt-get update -qq || { echo "python-root: SKIP: apt-get update failed"; exit 0; }
fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 777 "$tmp"
if ! (cd "$tmp" && apt-get download -qq "${arch_pkgs[@]}" "${pure[@]}" >/dev/null 2>&1); then
    echo "python-root: SKIP: apt-get download of the arm64 packages failed"
    exit 0
fi
mkdir -p "$tmp/root"
for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
# Debian points libblas.so.3 / liblapack.so.3 at the implementation through alternatives (postinst, not run)
ln -sf blas/libblas.so.3 "$tmp/root/usr/lib/aarch64-linux-gnu/libblas.so.3"
ln -sf lapack/liblapack.so.3 "$tmp/root/usr/lib/aarch64-linux-gnu/liblapack.so.3"
touch "$tmp/root/.complete"
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$tmp/root" "$dir"
echo "python-root: aarch64 Python + numpy + pytest unpacked at $dir"
exit 0
