"""The SVE path itself, proved under QEMU user mode: sve_kernels/qemu/run.sh cross-compiles the C harness
(SVE vs portable vs double reference) and runs it at 128, 256, 512 and 2048-bit vectors and as an A64FX.
Also runs the same harness natively (portable path) so hosts without the cross tools still check the C."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
