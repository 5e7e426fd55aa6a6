"""Edges of the binding found by a review of its safety. A probe that crashed or hung the process runs in a Python
process of its own, so a segfault or a hang fails its test instead of taking pytest down."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
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


HUGE_EMPTY = {  # zero-size arrays, so no memory, whose other dimensions are 2**40 (or 2**20 x 2**20)
    "softmax_forward": ("sk.softmax_forward(np.empty((2**40, 0), F))", [(2**40, 0)]),
    "matmul_forward": ("sk.matmul_forward(np.empty((2**40, 0), F), np.empty((0, 0), F))", [(2**40, 0)]),
    "matmul_forward_f16": ("sk.matmul_forward_f16(np.empty((2**40, 0), H), np.empty((0, 0), H))", [(2**40, 0)]),
    "attention_forward": ("sk.attention_forward(*[np.empty((2**20, 2**20, 0, 1), F)] * 3)",
                          [(2**20, 2**20, 0, 1), (2**20, 2**20, 0, 0)]),
    "attention_backward": ("sk.attention_backward(*[np.empty((2**20, 2**20, 0, 1), F)] * 4, "
                           "np.empty((2**20, 2**20, 0, 0), F))", [(2**20, 2**20, 0, 1)] * 3),
}


@pytest.mark.parametrize("path", ["portable", "sve" if sk.info()["path"] == "sve" else "blas"])
@pytest.mark.parametrize("name", sorted(HUGE_EMPTY))
def test_empty_outputs_return_without_walking_huge_dimensions(name, path):
    """A zero-size array can have a 2**40 dimension and no memory. C walked those 2**40 empty rows (softmax, the
    matmul's bias fill), and attention backward every one of 2**40 heads of 0 rows (the BLAS path's batched products
    too): the call never returned. A kernel whose outputs are all empty is not called now."""
    call, shapes = HUGE_EMPTY[name]
    proc = run_probe(f"""
        import numpy as np
        import sve_kernels as sk
        F, H = np.float32, np.float16
        got = {call}
        got = got if isinstance(got, tuple) else (got,)
        assert [g.shape for g in got] == {shapes!r}, [g.shape for g in got]
        assert all(g.dtype == F for g in got)
        print("returned")
    """, path, timeout=60.0)
    assert proc.returncode == 0 and "returned" in proc.stdout, (proc.returncode, proc.stderr[-2000:])


def test_empty_inputs_still_give_the_results_numpy_gives(kernel_path):
    """The early returns keep every result: a matmul with C = 0 is its bias (not empty: computed), N x 0 rows have
    no softmax, T = 0 has no attention row."""
    rng = np.random.default_rng(0)
    bias = rng.standard_normal(3).astype(np.float32)
    np.testing.assert_array_equal(sk.matmul_forward(np.zeros((2, 0), np.float32), np.zeros((3, 0), np.float32),
                                                    bias), np.broadcast_to(bias, (2, 3)))
    assert sk.matmul_forward(np.zeros((4, 5), np.float32), np.zeros((0, 5), np.float32)).shape == (4, 0)
    assert sk.softmax_forward(np.zeros((3, 0), np.float32)).shape == (3, 0)
    q = np.zeros((2, 3, 0, 4), np.float32)
    out, probs = sk.attention_forward(q, q, q, np.zeros((2, 0), np.int32))
    assert out.shape == q.shape and probs.shape == (2, 3, 0, 0)
    assert [g.shape for g in sk.attention_backward(q, q, q, q, probs)] == [q.shape] * 3
    q = rng.standard_normal((1, 2, 3, 0)).astype(np.float32)  # D = 0: rows of zero scores, uniform over the past
    out, probs = sk.attention_forward(q, q, q)
    np.testing.assert_allclose(probs[0, 1], np.tril(np.ones((3, 3))) / np.arange(1, 4)[:, None], rtol=1e-6)


@pytest.mark.parametrize("call,match", [
    (lambda: sk.scale_inplace(np.ones(2, np.float32), 10**400), r"^s: expected a finite float32 in \[-inf, inf\], "
                                                                r"got an integer of 1329 bits$"),
    (lambda: sk.crossentropy_backward(np.ones((1, 2), np.float32), np.int32([0]), -(10**309)),
     r"^grad_scale: .* got a negative integer of 1027 bits$"),
    (lambda: sk.set_threads(10**5000), r"^threads: expected an integer in \[1, 1024\], got an integer of 16610 bits$"),
])
def test_integers_past_float_range_are_named(call, match):
    """An int past float64's range raised OverflowError "int too large to convert to float", naming no argument; one
    of more than 4300 digits raised an unrelated ValueError while the message was being formatted."""
    with pytest.raises(ValueError, match=match):
        call()


FORK = """
    import os, time
    import numpy as np
    import sve_kernels as sk

    sk.set_threads(2)
    want = sk.info()["threads"]  # 1 without OpenMP
    x = np.linspace(-80.0, 80.0, 1 << 20, dtype=np.float32)
    y = sk.exp(x)  # a parallel region: libgomp's thread pool now exists
    pid = os.fork()
    if pid == 0:
        code = 3
        try:
            same = np.array_equal(sk.exp(x), y)  # hung here: a parallel region of 2 threads
            code = 0 if same and sk.info()["threads"] == 1 else 4
            try:
                sk.set_threads(2)
                code = 5
            except ValueError as exc:
                code = code if "forked after kernel calls" in str(exc) else 6
        finally:
            os._exit(code)
    end = time.monotonic() + 30.0
    while time.monotonic() < end:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            print("child exit", os.waitstatus_to_exitcode(status), "parent kept", sk.info()["threads"] == want)
            break
        time.sleep(0.05)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        print("child hung")
"""


def test_kernels_in_a_process_forked_after_kernel_calls():
    """libgomp's threads do not survive fork(), and its first parallel region of 2 threads in the child waited for
    them forever: a multiprocessing worker (fork is the default on Linux) hung at its first kernel call. Such a
    child now runs kernels on one thread, and asking it for more is a clear error; the parent keeps its count."""
    proc = run_probe(FORK, "portable", timeout=90.0)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["child", "exit", "0", "parent", "kept", "True"], proc.stdout
