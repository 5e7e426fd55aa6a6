"""Edges of the binding found by a review of its safety. A probe that crashed or hung the process runs in a Python
process of its own, so a segfault or a hang fails its test instead of taking pytest down."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import sve_kernels as sk

ROOT = Path(sk.__file__).resolve().parents[1]  # the sve_kernels under test, not another install


def run_probe(code: str, path: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Runs `code` in a fresh interpreter on kernel path `path`; a hang past `timeout` fails the test."""
    pythonpath = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = dict(os.environ, SVE_KERNELS_PATH=path, PYTHONPATH=pythonpath)
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=ROOT)
    except OSError as exc:  # binding_under_qemu.sh: qemu-user cannot exec the aarch64 interpreter again
        pytest.skip(f"cannot start {sys.executable}: {exc}")
    except subprocess.TimeoutExpired:
        pytest.fail(f"the probe hung (> {timeout} s)")


RACE = """
    import sys, threading, time
    import numpy as np
    import sve_kernels as sk

    n, c, v = 4096, 256, 64
    ids = np.zeros(n, np.int32)
    stop = False

    def flip():  # runs while the kernel holds no GIL: writes an id far past the table, then takes it back
        while not stop:
            ids[7] = 2**30
            ids[7] = 0

    threading.Thread(target=flip, daemon=True).start()
    table, dtable = np.zeros((v, c), np.float32), np.zeros((v, c), np.float32)
    dout, probs = np.ones((n, c), np.float32), np.full((n, v), 1 / v, np.float32)
    calls = {
        "embedding_forward": lambda: sk.embedding_forward(ids, table),
        "embedding_backward": lambda: sk.embedding_backward(ids, dout, dtable),
        "crossentropy_forward": lambda: sk.crossentropy_forward(probs, ids),
        "crossentropy_backward": lambda: sk.crossentropy_backward(probs, ids, 1.0),
    }
    call, refused, end = calls[sys.argv[1] if len(sys.argv) > 1 else "{name}"], 0, time.monotonic() + 2.0
    while time.monotonic() < end:
        try:
            call()
        except ValueError as exc:  # the check saw 2**30: a clean refusal is fine
            assert "index 1073741824 out of range" in str(exc), exc
            refused += 1
    stop = True
    print("survived", refused)
"""


@pytest.mark.parametrize("name", ["embedding_forward", "embedding_backward", "crossentropy_forward",
                                  "crossentropy_backward"])
def test_ids_changed_by_another_thread_during_the_call(name):
    """ctypes releases the GIL for the call, so another thread could change ids or targets after the range check:
    C then read table row 2**30 (embedding forward, cross-entropy) or added into it (the backwards), and the
    process died of a segfault within a few hundred calls. C now gets a private copy that was checked."""
    proc = run_probe(RACE.replace("{name}", name), "portable")
    assert proc.returncode == 0 and "survived" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
