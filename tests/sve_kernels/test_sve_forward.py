"""Every forward kernel through the binding against an independent float64 numpy reference, on each path."""
from __future__ import annotations

import os
import threading

import numpy as np
import pytest
import sve_np_reference as ref

import sve_kernels as sk

SIZES = [(1, 1, 1), (3, 5, 7), (17, 33, 15), (64, 96, 130), (37, 300, 263)]  # odd, prime, > one K block


def randn(rng, *shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("n,c,oc", SIZES)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matmul_forward(kernel_path, rng, n, c, oc, with_bias):
    x, w = randn(rng, n, c), randn(rng, oc, c)
    b = randn(rng, oc) if with_bias else None
    want = x.astype(np.float64) @ w.T.astype(np.float64) + (0 if b is None else b)
    np.testing.assert_allclose(sk.matmul_forward(x, w, b), want, rtol=1e-4, atol=1e-4 * np.sqrt(c))


def test_matmul_forward_zero_sizes(kernel_path):
    assert sk.matmul_forward(np.zeros((0, 4), np.float32), np.zeros((3, 4), np.float32)).shape == (0, 3)
    out = sk.matmul_forward(np.zeros((2, 0), np.float32), np.zeros((3, 0), np.float32), np.ones(3, np.float32))
    np.testing.assert_array_equal(out, np.ones((2, 3), np.float32))


@pytest.mark.parametrize("n,c,oc", SIZES)
def test_matmul_forward_f16(kernel_path, rng, n, c, oc):
    x, w, b = randn(rng, n, c).astype(np.float16), randn(rng, oc, c).astype(np.float16), randn(rng, oc)
    want = x.astype(np.float64) @ w.T.astype(np.float64) + b
    np.testing.assert_allclose(sk.matmul_forward_f16(x, w, b), want, rtol=1e-4, atol=1e-4 * np.sqrt(c))


@pytest.mark.parametrize("n,c,oc", SIZES)
def test_matmul_backward(kernel_path, rng, n, c, oc):
    x, w, dout = randn(rng, n, c), randn(rng, oc, c), randn(rng, n, oc)
    dinp, dweight, dbias = sk.matmul_backward(dout, x, w)
    d64 = dout.astype(np.float64)
    np.testing.assert_allclose(dinp, d64 @ w, rtol=1e-4, atol=1e-4 * np.sqrt(oc))
    np.testing.assert_allclose(dweight, d64.T @ x, rtol=1e-4, atol=1e-4 * np.sqrt(n))
    np.testing.assert_allclose(dbias, d64.sum(0), rtol=1e-4, atol=1e-4 * np.sqrt(n))
    assert sk.matmul_backward(dout, x, w, need_bias=False)[2] is None


def test_matmul_deterministic_across_calls(kernel_path, rng):
    """Two calls, same bits. The GEMM is threaded (M*N*K = 483,000 >= 4 SK_PAR_WORK), with two K blocks (K > KC) and
    edge tiles for each thread at every vector length; 200 x 300 by 260 x 300 took 19 s under QEMU as an A64FX."""
    x, w = randn(rng, 23, 300), randn(rng, 70, 300)
    np.testing.assert_array_equal(sk.matmul_forward(x, w), sk.matmul_forward(x, w))


@pytest.mark.parametrize("n,c", [(1, 1), (4, 7), (9, 128), (33, 257)])
def test_layernorm_forward(kernel_path, rng, n, c):
    x, w, b = randn(rng, n, c, scale=3.0) + 1.0, randn(rng, c), randn(rng, c)
    out, mean, rstd = sk.layernorm_forward(x, w, b)
    want, wmean, wrstd = ref.layernorm(x, w, b)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(mean, wmean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rstd, wrstd, rtol=1e-4)


def test_layernorm_forward_past_float_squares(kernel_path, rng):
    """Past |x - mean| = sqrt(FLT_MAX / C) the float32 variance overflowed: rstd was 0 and the output silently the
    bias (and past FLT_MAX / 256 the mean overflowed: NaN). Such rows are computed in double now, as the reference
    is; an inf or NaN input still gives NaN."""
    c = 64
    edge = np.sqrt(np.finfo(np.float32).max / c)
    alt = np.resize(np.float64([1.0, -1.0]), c)
    x = np.stack([alt * edge * 0.99, alt * edge * 1.01, alt * 1e30, alt * 3e38, np.full(c, 3e38),
                  np.where(alt > 0, np.inf, 1.0), np.where(alt > 0, np.nan, 1.0)]).astype(np.float32)
    w, b = randn(rng, c), randn(rng, c)
    out, mean, rstd = sk.layernorm_forward(x, w, b)
    with np.errstate(invalid="ignore"):
        want, wmean, wrstd = ref.layernorm(x, w, b)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(mean, wmean, rtol=1e-6)
    np.testing.assert_allclose(rstd, wrstd, rtol=1e-5)  # 3.3e-39 at 3e38: a subnormal float32
    assert np.isnan(out[5:]).all()


@pytest.mark.parametrize("shape", [(0,), (1,), (15,), (17,), (3, 5, 7), (4096 + 3,)])
def test_gelu_and_residual(kernel_path, rng, shape):
    x, y = randn(rng, *shape, scale=3.0), randn(rng, *shape)
    np.testing.assert_allclose(sk.gelu_forward(x), ref.gelu(x), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(sk.residual_forward(x, y), x + y)


def test_gelu_forward_limits(kernel_path):
    """GELU(x) -> x for large x and -> -0 for very negative x, up to FLT_MAX and inf; NaN stays NaN."""
    np.testing.assert_allclose(sk.gelu_forward(ref.GELU_EDGES), ref.gelu(ref.GELU_EDGES), rtol=1e-5, atol=1e-6)


def ulp_error(got: np.ndarray, want64: np.ndarray) -> np.ndarray:
    want32 = want64.astype(np.float32)
    return np.abs(got.astype(np.float64) - want64) / np.spacing(np.abs(want32)).astype(np.float64)


def test_exp_accuracy(kernel_path):
    x = np.linspace(-87.0, 88.5, 200_003, dtype=np.float32)
    assert ulp_error(sk.exp(x), np.exp(x.astype(np.float64))).max() <= 2.0
    edge = np.array([-1e4, -104.0, 89.0, 1e4, 0.0], np.float32)
    np.testing.assert_array_equal(sk.exp(edge), [0.0, 0.0, np.inf, np.inf, 1.0])


def test_tanh_accuracy(kernel_path):
    x = np.concatenate([np.linspace(-12, 12, 200_001), np.geomspace(1e-30, 1, 1000)]).astype(np.float32)
    assert ulp_error(sk.tanh(x), np.tanh(x.astype(np.float64))).max() <= 2.0


def test_tanh_keeps_the_sign_of_zero_and_reaches_one(kernel_path):
    """tanh(-0) was +0, and every |x| > 9 (inf included) gave 0.99999994 where tanh rounds to 1."""
    x = np.array([0.0, -0.0, 9.02, -9.02, 20.0, -20.0, np.inf, -np.inf], np.float32)
    y, rounded = sk.tanh(x), np.tanh(x.astype(np.float64)).astype(np.float32)  # numpy's float32 tanh gives 1 - 2^-24
    assert y.tolist() == rounded.tolist() == [0.0, 0.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0]
    assert np.signbit(y).tolist() == np.signbit(x).tolist()


@pytest.mark.parametrize("n,c", [(1, 1), (3, 17), (8, 1000)])
def test_softmax(kernel_path, rng, n, c):
    x = randn(rng, n, c, scale=10.0)
    y = sk.softmax_forward(x)
    np.testing.assert_allclose(y, ref.softmax(x), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("v", [50_257, 262_144])
def test_long_rows_sum_without_drift(kernel_path, v):
    """A row summed whole into a fixed number of float accumulators drifted with its length: one 0 and the rest
    -1 gave probabilities 5e-5 off at V = 50,257 on the portable path and 1.3e-4 at 262,144 with SVE at 128 bits
    (numpy: 6e-8). Blocks of 256 add into a double now."""
    x = np.full((1, v), -1.0, np.float32)
    x[0, 0] = 0.0
    e = np.exp(x.astype(np.float64) - 0.0)
    want = e / e.sum()
    np.testing.assert_allclose(sk.softmax_forward(x), want, rtol=2e-6)
    losses, probs = sk.crossentropy_forward(x, np.int32([0]))
    np.testing.assert_allclose(probs, want, rtol=2e-6)
    np.testing.assert_allclose(losses, -np.log(want[:, 0]), rtol=2e-6)
    wide = np.full((1, v), 1.0 + 2.0 ** -20, np.float32)  # layernorm's mean and variance use the same row sums
    _, mean, _ = sk.layernorm_forward(wide, np.ones(v, np.float32), np.zeros(v, np.float32))
    np.testing.assert_allclose(mean, wide[:, 0].astype(np.float64), rtol=1e-6)


def test_embedding(kernel_path, rng):
    table, ids = randn(rng, 50, 67), rng.integers(0, 50, 300).astype(np.int32)
    np.testing.assert_array_equal(sk.embedding_forward(ids, table), table[ids])
    dout, dtable = randn(rng, 300, 67), randn(rng, 50, 67)
    want = dtable.astype(np.float64).copy()
    np.add.at(want, ids, dout.astype(np.float64))
    sk.embedding_backward(ids, dout, dtable)
    np.testing.assert_allclose(dtable, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("b,h,t,d", [(1, 1, 1, 1), (2, 3, 7, 5), (1, 2, 33, 32)])
@pytest.mark.parametrize("docs", [False, True])
def test_attention_forward(kernel_path, rng, b, h, t, d, docs):
    q, k, v = (randn(rng, b, h, t, d) for _ in range(3))
    doc_ids = np.sort(rng.integers(0, 3, (b, t)), axis=1).astype(np.int32) if docs else None
    out, probs = sk.attention_forward(q, k, v, doc_ids)
    want, wprobs = ref.attention(q, k, v, doc_ids)
    np.testing.assert_allclose(probs, wprobs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)
    assert np.all(probs[..., np.triu_indices(t, 1)[0], np.triu_indices(t, 1)[1]] == 0.0)


@pytest.mark.parametrize("n,v", [(1, 2), (7, 33), (16, 1003)])
def test_crossentropy(kernel_path, rng, n, v):
    logits, targets = randn(rng, n, v, scale=4.0), rng.integers(0, v, n).astype(np.int32)
    targets[::3] = -1
    losses, probs = sk.crossentropy_forward(logits, targets)
    want, wprobs = ref.crossentropy(logits, targets)
    np.testing.assert_allclose(losses, want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(probs, wprobs, rtol=1e-5, atol=1e-7)
    dlogits = sk.crossentropy_backward(probs, targets, 0.25)
    onehot = np.zeros_like(wprobs)
    keep = targets != -1
    onehot[np.flatnonzero(keep), targets[keep]] = 1.0
    np.testing.assert_allclose(dlogits, (probs - onehot) * 0.25 * keep[:, None], rtol=1e-6, atol=1e-7)


def test_adamw(kernel_path, rng):
    p, g, m, v = randn(rng, 1001), randn(rng, 1001), randn(rng, 1001) * 0.1, np.abs(randn(rng, 1001)) * 0.1
    hp = dict(lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1)
    wp, wm, wv = ref.adamw(p, g, m, v, hp["lr"], hp["beta1"], hp["beta2"], hp["eps"], hp["weight_decay"], 3)
    sk.adamw_step(p, g, m, v, step=3, **hp)
    np.testing.assert_allclose(p, wp, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m, wm, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(v, wv, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("n", [0, 1, 4095, 4097, 100_003])
def test_sumsq_and_scale(kernel_path, rng, n):
    x = randn(rng, n)
    assert sk.sumsq(x) == pytest.approx(float(np.sum(x.astype(np.float64) ** 2)), rel=1e-12, abs=1e-12)
    y = x.copy()
    sk.scale_inplace(y, 0.5)
    np.testing.assert_array_equal(y, x * np.float32(0.5))


def test_fp16_conversion_matches_numpy(kernel_path, rng):
    bits = np.arange(1 << 16, dtype=np.uint16)  # every half value, incl. subnormals, inf, nan
    half = bits.view(np.float16)
    finite = np.isfinite(half)
    y, nonfinite = sk.fp16_to_fp32(half[finite])
    assert not nonfinite
    np.testing.assert_array_equal(y, half[finite].astype(np.float32))
    assert sk.fp16_to_fp32(half)[1]
    x = np.concatenate([randn(rng, 100_000, scale=1e-3), randn(rng, 100_000, scale=1e3), randn(rng, 1000) * 1e-6,
                        np.float32([65504.0, 65519.99, -2.0**-25, 2.0**-25 * 1.0001])])
    h, overflow = sk.fp32_to_fp16(x)
    assert not overflow
    np.testing.assert_array_equal(h.view(np.uint16), x.astype(np.float16).view(np.uint16))
    for bad in (70000.0, np.inf, np.nan):
        assert sk.fp32_to_fp16(np.float32([1.0, bad]))[1]


def assert_same_at_1_2_3_threads(run) -> None:
    """`run()`'s arrays are bitwise equal with 1, 2 and 3 OpenMP threads (the default count is restored)."""
    try:
        results = []
        for n in (1, 2, 3):
            sk.set_threads(n)
            results.append(run())
    finally:
        sk.set_threads(sve_default_threads())
    for other in results[1:]:
        for want, got in zip(results[0], other, strict=True):
            np.testing.assert_array_equal(got, want)


def test_results_independent_of_thread_count(kernel_path, rng):
    """Fixed reduction orders: 1, 2 and 3 OpenMP threads give bitwise equal results. Each size clears its kernel's
    OpenMP cutoff and gives each of 3 threads work at every vector length up to 2048 bits (checked by making the last
    thread perturb its output), and no more: past 128 bits QEMU runs every float op slowly (docs/a64fx.md). GEMM:
    M*N*K = 418,600, the forward's K = 260 > KC; embedding: 2,050 columns, over two blocks of 1,024 (SVE at 2048
    bits; 64 columns were one block, so one thread). On `blas` the matmuls are numpy's, whose OpenBLAS thread count
    set_threads does not change (docs/a64fx.md): there only the C kernels are really tested here."""
    x, lw, lb = randn(rng, 300, 260), randn(rng, 260), randn(rng, 260)
    a, w, dout = x[:23], randn(rng, 70, 260), randn(rng, 23, 70)
    ids, table_grad = rng.integers(0, 40, 64).astype(np.int32), randn(rng, 64, 2050)
    big = randn(rng, 70_001)

    def run():
        _, mean, rstd = sk.layernorm_forward(x, lw, lb)
        dtable = np.zeros((40, 2050), np.float32)
        sk.embedding_backward(ids, table_grad, dtable)
        return [sk.matmul_forward(a, w), *sk.matmul_backward(dout, a, w), *sk.layernorm_backward(x, x, lw, mean, rstd),
                dtable, np.float64(sk.sumsq(big)), sk.gelu_forward(big)]

    assert_same_at_1_2_3_threads(run)


def test_row_attention_and_optimizer_kernels_independent_of_thread_count(kernel_path, rng):
    """Attention, softmax, cross-entropy and AdamW at 1, 2 and 3 threads: bitwise equal. Forward attention splits
    (b, h, t) rows, backward (b, h) heads (3 here, one a thread), softmax and cross-entropy rows (7 of 10,000), AdamW
    elements (SVE: blocks of 64 vectors, 18 at 2048 bits); each size clears its OpenMP cutoff (checked by making the
    last thread perturb its output). The second attention has an inf in q: the C kernels (also on `blas`, which
    sends finite inputs to numpy) and their double-precision rows."""
    q, k, v, dout = (randn(rng, 1, 3, 32, 24) for _ in range(4))
    doc = np.repeat(np.int32([[0, 1, 2]]), [9, 16, 7], axis=1)
    q_inf = q.copy()
    q_inf[0, 1, 20, 0] = np.inf
    logits, targets = randn(rng, 7, 10_000, scale=4.0), rng.integers(0, 10_000, 7).astype(np.int32)
    targets[3] = -1
    param, grad, m, v2 = (randn(rng, 70_001) for _ in range(4))

    def run():
        out = []
        for qq, d in ((q, doc), (q_inf, None)):
            o, probs = sk.attention_forward(qq, k, v, d)
            out += [o, probs, *sk.attention_backward(dout, qq, k, v, probs)]
        losses, probs = sk.crossentropy_forward(logits, targets)
        p, mm, vv = param.copy(), m.copy(), np.abs(v2)
        sk.adamw_step(p, grad, mm, vv, lr=1e-3, beta1=0.9, beta2=0.95, eps=1e-8, weight_decay=0.1, step=3)
        return [*out, sk.softmax_forward(logits), losses, probs, sk.crossentropy_backward(probs, targets, 0.25),
                p, mm, vv]

    assert_same_at_1_2_3_threads(run)


def test_set_threads_holds_for_kernels_called_from_other_threads():
    """omp_set_num_threads set the calling thread's count only: a trainer calling kernels from another thread
    ran them with OpenMP's default. Every parallel region now asks for the count `info` reports."""
    seen: list[int] = []
    try:
        sk.set_threads(2)
        if sk.info()["threads"] != 2:
            pytest.skip("the kernels are built without OpenMP")
        for n in (1, 2, 1):
            sk.set_threads(n)
            worker = threading.Thread(target=lambda: seen.append(sk.info()["threads"]))
            worker.start()
            worker.join()
    finally:
        sk.set_threads(sve_default_threads())
    assert seen == [1, 2, 1]


def sve_default_threads() -> int:
    return int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 1))
