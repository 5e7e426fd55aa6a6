"""The SVE path itself, proved under QEMU user mode: sve_kernels/qemu/run.sh cross-compiles the C harness
(SVE vs portable vs double reference) and runs it at 128, 256, 512 and 2048-bit vectors and as an A64FX.
Also runs the same harness natively (portable path) so hosts without the cross tools still check the C."""
from __future__ import annotations

import ctypes
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sve_np_reference as ref

QEMU_DIR = Path(__file__).resolve().parents[2] / "sve_kernels" / "qemu"
SRC = QEMU_DIR.parent / "src"


def _tools_or_skip() -> None:
    missing = [t for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64") if shutil.which(t) is None]
    if missing:
        subprocess.run(["bash", str(QEMU_DIR / "install_tools.sh")], check=False, timeout=900)
        missing = [t for t in ("aarch64-linux-gnu-gcc", "qemu-aarch64") if shutil.which(t) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing and not installable here (needs root + apt-get): "
                    "run 'sudo make sve-tools'")


def test_harness_under_qemu_every_vector_length():
    _tools_or_skip()
    proc = subprocess.run(["bash", str(QEMU_DIR / "run.sh"), "quick"], capture_output=True, text=True, timeout=600)
    sys.stdout.write(proc.stdout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PASS ")]
    for bits in (128, 256, 512, 2048):
        assert any(f"sve=1 vector_bits={bits} svcntb={bits // 8} " in ln for ln in lines), (bits, proc.stdout)
    assert any(ln.startswith("PASS a64fx") and "vector_bits=512" in ln for ln in lines), proc.stdout


def test_harness_native_portable(tmp_path):
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler on PATH")
    exe = tmp_path / "harness"
    cmd = [cc, "-O2", "-std=gnu11", f"-I{SRC}", str(QEMU_DIR / "harness.c"), *map(str, sorted(SRC.glob("*.c"))),
           "-lm", "-o", str(exe)]
    if subprocess.run([*cmd, "-fopenmp"], capture_output=True, timeout=300).returncode != 0:
        subprocess.run(cmd, check=True, capture_output=True, timeout=300)  # compiler without OpenMP
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip().splitlines()[-1].startswith("PASS"), proc.stdout


@pytest.mark.parametrize("opt", ["-O1", "-O2"])
def test_attention_rows_need_no_bit_identical_recomputation(tmp_path, opt):
    """attention.c computes a row whose float scores overflow again in double, each score twice (the maximum, then
    exp(x - max)), and relied on both passes giving the same bits; the float pass likewise relied on the scores it
    stored being those it tested. C promises neither: with x87's excess precision (GNU C) a value may stay unrounded
    in one place, and a compiler fusing x - max into an FMA skips the rounding of x. Scores near 1e39, where one bit
    is 1e23, then gave exp inf or 0 and the rows NaN: 61 of these 64 rows at -O1, every one at -O2, built so here.
    Compared with the float64 reference; the normal builds' results are unchanged, bit for bit."""
    cc = shutil.which("gcc")
    if cc is None or platform.machine() != "x86_64":
        pytest.skip("needs an x86-64 gcc (x87 excess precision)")
    lib = tmp_path / "libattention.so"
    subprocess.run([cc, opt, "-mfpmath=387", "-std=gnu11", "-fno-trapping-math", "-fno-math-errno", "-fPIC", "-shared",
                    f"-I{SRC}", str(SRC / "attention.c"), str(SRC / "elementwise.c"), "-lm", "-o", str(lib)],
                   check=True, capture_output=True, timeout=120)
    forward = ctypes.CDLL(str(lib)).sk_attention_forward_portable
    forward.restype, forward.argtypes = None, [ctypes.c_void_p] * 6 + [ctypes.c_int64] * 4
    r = np.random.default_rng(0)
    q, k, v = (r.standard_normal((1, 4, 16, 3)).astype(np.float32) for _ in range(3))
    q *= np.float32(2e19)  # q.k past FLT_MAX in most entries, finite in double
    k *= np.float32(2e19)
    out, probs = np.empty_like(q), np.empty((1, 4, 16, 16), np.float32)
    forward(out.ctypes.data, probs.ctypes.data, q.ctypes.data, k.ctypes.data, v.ctypes.data, None, *q.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        want, want_probs = ref.attention(q, k, v)
    np.testing.assert_allclose(probs, want_probs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


def test_binding_under_qemu_a64fx():
    """The numpy binding and this pytest suite, run by an aarch64 Python on the SVE library as an A64FX."""
    _tools_or_skip()
    subprocess.run(["bash", str(QEMU_DIR / "python_root.sh")], check=False, timeout=900)
    proc = subprocess.run(["bash", str(QEMU_DIR / "binding_under_qemu.sh"), "a64fx"], capture_output=True,
                          text=True, timeout=900)
    sys.stdout.write(proc.stdout)
    if proc.returncode == 2:
        pytest.skip("aarch64 Python folder missing and not buildable here (needs root + apt-get): "
                    "run 'sudo make sve-tools'")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "'path': 'sve', 'vector_bits': 512" in proc.stdout and " passed" in proc.stdout, proc.stdout
