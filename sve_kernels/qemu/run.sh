#!/usr/bin/env bash
# Cross-compile the kernel harness for aarch64 with SVE and run it under QEMU user mode at 128, 256, 512 and
# 2048-bit vectors and on the A64FX CPU model. Prints one PASS/FAIL line per run; exits non-zero on failure.
# Usage: run.sh [quick]   (quick trims the largest shapes; the pytest wrapper uses it)
# Env: CROSS_CC (default aarch64-linux-gnu-gcc), QEMU (default qemu-aarch64), OUT (build dir),
#      KERNEL_CFLAGS (extra flags for the kernels, e.g. -Ofast to check a fast-math build).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/../src"
mode="${1:-full}"
cc="${CROSS_CC:-aarch64-linux-gnu-gcc}"
qemu="${QEMU:-qemu-aarch64}"
sysroot="${QEMU_LD_PREFIX:-/usr/aarch64-linux-gnu}"
out="${OUT:-$(mktemp -d)}"

for tool in "$cc" "$qemu"; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "sve-test: $tool not found; run 'make sve-tools' as root (installs gcc-aarch64-linux-gnu qemu-user)" >&2
        exit 2
    fi
done

# Kernels at -O3 and -std=c11, as setup.py and binding_under_qemu.sh build them (GNU C lets GCC fuse a multiply and
# an add, ISO C does not: the harness must test the library users get); the double-precision reference in the
# harness without the vectoriser (GCC 12 hits an internal error vectorising one of its reductions for SVE, and the
# reference must stay plain scalar code).
build() { # name, target flags...
    local name="$1" obj=() f
    shift
    for f in "$src"/*.c; do
        "$cc" "$@" -O3 -fno-trapping-math -fno-math-errno -std=c11 -Wall -Wextra -Werror -fopenmp ${KERNEL_CFLAGS:-} -I"$src" -c "$f" -o "$out/$name.$(basename "$f" .c).o"
        obj+=("$out/$name.$(basename "$f" .c).o")
    done
    "$cc" "$@" -O2 -fno-tree-vectorize -std=gnu11 -Wall -Wextra -Werror -fopenmp -I"$src" "$here/harness.c" \
        "${obj[@]}" -lm -o "$out/$name"
}
build harness_sve -march=armv8.2-a+sve
build harness_a64fx -mcpu=a64fx

status=0
run() { # label, binary, qemu cpu option
    local label="$1" bin="$2" cpu="$3" line
    if line="$(OMP_NUM_THREADS=2 "$qemu" -L "$sysroot" -cpu "$cpu" "$bin" "$mode" 2>&1 | tail -n 40)" \
        && [[ "$(tail -n 1 <<<"$line")" == PASS* ]]; then
        echo "PASS $label: $(tail -n 1 <<<"$line")"
        grep ' ulp ' <<<"$line" | sed 's/^ok /    /' || true
    else
        echo "FAIL $label:"
        echo "$line"
        status=1
    fi
}
for bytes in 16 32 64 256; do
    run "sve$((bytes * 8)) (-cpu max,sve-default-vector-length=$bytes)" "$out/harness_sve" \
        "max,sve-default-vector-length=$bytes"
done
run "a64fx (-mcpu=a64fx build, -cpu a64fx)" "$out/harness_a64fx" a64fx
[ -n "${OUT:-}" ] || rm -rf "$out"
# The Python binding itself under QEMU, when the aarch64 Python folder exists (python_root.sh; full mode only)
if [ "$mode" != quick ]; then
    bash "$here/binding_under_qemu.sh" a64fx max,sve-default-vector-length=16 max,sve-default-vector-length=256
    rc=$?
    if [ $rc -eq 1 ]; then status=1; elif [ $rc -eq 2 ]; then echo "SKIP binding under QEMU (no aarch64 Python folder)"; fi
fi
exit $status
