#!/usr/bin/env bash
# The Python binding itself on aarch64 + SVE: cross-compile the kernels into a shared library, then run the
# host pytest suite (tests/sve_kernels, minus the QEMU tests) with an aarch64 Python + numpy under
# qemu-aarch64, once per CPU model given. sve_kernels loads the library through SVE_KERNELS_LIB.
# Usage: binding_under_qemu.sh [CPU...]   default: a64fx max,sve-default-vector-length=16
# Exit 0 all passed, 1 a failure, 2 tools or the Python folder (python_root.sh) missing.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
pyroot="${SVE_QEMU_PYROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/jcorpus/aarch64-python}"
cc="${CROSS_CC:-aarch64-linux-gnu-gcc}"
qemu="${QEMU:-qemu-aarch64}"
if ! command -v "$cc" >/dev/null || ! command -v "$qemu" >/dev/null || [ ! -e "$pyroot/.complete" ]; then
    echo "binding-qemu: needs $cc, $qemu and the aarch64 Python folder ($pyroot): run 'make sve-tools' as root" >&2
    exit 2
fi
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
"$cc" -O3 -fno-trapping-math -fno-math-errno -std=c11 -march=armv8.2-a+sve -fopenmp -fPIC -shared \
    -I"$here/../src" "$here"/../src/*.c -lm -o "$out/libsve_kernels.so" || exit 1
[ $# -gt 0 ] || set -- a64fx max,sve-default-vector-length=16
status=0
for cpu in "$@"; do
    log="$out/pytest.log"
    (cd "$repo" && SVE_KERNELS_LIB="$out/libsve_kernels.so" OMP_NUM_THREADS=2 \
        LD_LIBRARY_PATH=/lib/aarch64-linux-gnu:/usr/lib/aarch64-linux-gnu \
        "$qemu" -L "$pyroot" -cpu "$cpu" "$pyroot/usr/bin/python3.11" -c \
        "import sys, sve_kernels as sk; print('info', sk.info()); sys.exit(__import__('pytest').main(sys.argv[1:]))" \
        -q -p no:cacheprovider tests/sve_kernels --ignore=tests/sve_kernels/test_sve_qemu.py) >"$log" 2>&1
    rc=$?
    info="$(grep -m1 '^info' "$log")"
    summary="$(tail -n 1 "$log")"
    if [ $rc -eq 0 ]; then
        echo "PASS binding -cpu $cpu: $info; $summary"
    else
        echo "FAIL binding -cpu $cpu (rc $rc): $info"
        tail -n 30 "$log"
        status=1
    fi
done
exit $status
