"""Backward kernels against central finite differences of the forward kernels, and layernorm's and attention's
also against their float64 numpy references (`sve_np_reference`), every element.

Loss L = sum(forward(...) * R) for a fixed random R, so dL/dout = R; each analytic gradient from a backward
kernel is compared with (L(x + h e_i) - L(x - h e_i)) / 2h at a sample of coordinates i. The forward runs in
float32, so h and the tolerance are chosen for float32 round-off (h = 1e-2, ~1e-2 relative). Where differences cannot resolve the slope (|x| up to FLT_MAX),
GELU's backward is compared with its analytic float64 derivative instead."""
from __future__ import annotations

import numpy as np
import pytest
import sve_np_reference as ref

import sve_kernels as sk

H = 1e-2


def fd_check(loss, x: np.ndarray, analytic: np.ndarray, rng, samples: int = 12, rtol: float = 2e-2,
             atol: float = 2e-3) -> None:
    flat, grad = x.reshape(-1), analytic.reshape(-1)
    for i in rng.choice(flat.size, size=min(samples, flat.size), replace=False):
        keep = flat[i]
        flat[i] = keep + H
        up = loss()
        flat[i] = keep - H
        down = loss()
        flat[i] = keep
        numeric = (up - down) / (2 * H)
        assert abs(numeric - grad[i]) <= atol + rtol * abs(numeric), (int(i), numeric, float(grad[i]))


def randn(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def f64sum(a, r):
    return float(np.sum(a.astype(np.float64) * r))


def test_matmul_backward_fd(kernel_path, rng):
    x, w, b = randn(rng, 6, 11), randn(rng, 5, 11), randn(rng, 5)
    r = randn(rng, 6, 5)
    dinp, dweight, dbias = sk.matmul_backward(r, x, w)
    loss = lambda: f64sum(sk.matmul_forward(x, w, b), r)  # noqa: E731
    fd_check(loss, x, dinp, rng)
    fd_check(loss, w, dweight, rng)
    fd_check(loss, b, dbias, rng)


def test_layernorm_backward_fd(kernel_path, rng):
    x, w, b, r = randn(rng, 4, 19), randn(rng, 19), randn(rng, 19), randn(rng, 4, 19)
    _, mean, rstd = sk.layernorm_forward(x, w, b)
    dinp, dweight, dbias = sk.layernorm_backward(r, x, w, mean, rstd)
    loss = lambda: f64sum(sk.layernorm_forward(x, w, b)[0], r)  # noqa: E731
    fd_check(loss, x, dinp, rng)
    fd_check(loss, w, dweight, rng)
    fd_check(loss, b, dbias, rng)


def test_layernorm_backward_against_numpy(kernel_path, rng):
    x, w, b, dy = randn(rng, 5, 37), randn(rng, 37), randn(rng, 37), randn(rng, 5, 37)
    _, mean, rstd = sk.layernorm_forward(x, w, b)
    for got, want in zip(sk.layernorm_backward(dy, x, w, mean, rstd), ref.layernorm_backward(dy, x, w), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_layernorm_backward_past_float_range(kernel_path, rng):
    """Rows past sqrt(FLT_MAX / C) (whose forward is computed in double) and huge douts. dnorm * (x - mean)
    overflowed near |x| = FLT_MAX, x - mean past FLT_MAX when x and mean differ in sign, and weight * dout, its row
    sums and the column sums midway, while the float64 reference's results are finite: dinp, dweight went inf or
    NaN. Tolerances are relative to the sizes of the terms that cancel (`layernorm_backward_scale`)."""
    c, big = 64, np.float32(3e38)
    alt = np.resize(np.float32([1.0, -1.0]), c)
    edge = np.float32(np.sqrt(np.finfo(np.float32).max / c))
    sign = np.sign(rng.standard_normal(c)).astype(np.float32)
    rows = [(alt * edge * 0.99, None), (alt * edge * 1.01, None), (alt * 1e30, None), (alt * big, None),
            (np.full(c, big), None), (np.where(np.arange(c) == 0, big, -big), None),  # x - mean past FLT_MAX
            # dout * weight past FLT_MAX and a column sum through inf (+, +, -, -), dinp finite (rstd 1e-30)
            (alt * 1e30, sign * big), (alt * 1e30, sign * big), (alt * 1e30, -sign * big), (alt * 1e30, -sign * big),
            (randn(rng, c), None)]  # a row sum of weight * dout past FLT_MAX (filled in below)
    x = np.stack([r for r, _ in rows]).astype(np.float32)
    w = randn(rng, c)
    dy = np.stack([randn(rng, c) if d is None else d for _, d in rows]).astype(np.float32)
    dy[-1] = np.float32(2e37) * np.sign(w)
    _, mean, rstd = sk.layernorm_forward(x, w, randn(rng, c))
    got = sk.layernorm_backward(dy, x, w, mean, rstd)
    for g, want, scale in zip(got, ref.layernorm_backward(dy, x, w), ref.layernorm_backward_scale(dy, x, w),
                              strict=True):
        assert np.abs(want).max() < np.finfo(np.float32).max  # every true result is a finite float32
        assert np.isfinite(g).all()
        bad = np.abs(g - want) > 1e-5 * scale
        assert not bad.any(), (np.argwhere(bad)[:5].tolist(), g[bad][:5], want[bad][:5])


def test_gelu_backward_fd(kernel_path, rng):
    x = (randn(rng, 257) * 3).astype(np.float32)
    r = randn(rng, 257)
    dx = sk.gelu_backward(x, r)
    fd_check(lambda: f64sum(sk.gelu_forward(x), r), x, dx, rng, samples=40)


def test_gelu_backward_limits(kernel_path, rng):
    """The slope -> 1 for large x and -> 0 for very negative x, so dx = dy * slope is finite for any finite x."""
    x, dy = ref.GELU_EDGES, randn(rng, ref.GELU_EDGES.size)
    np.testing.assert_allclose(sk.gelu_backward(x, dy), dy * ref.gelu_grad(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("docs", [False, True])
def test_attention_backward_fd(kernel_path, rng, docs):
    q, k, v = randn(rng, 2, 2, 9, 4), randn(rng, 2, 2, 9, 4), randn(rng, 2, 2, 9, 4)
    doc_ids = np.repeat(np.int32([[0, 0, 0, 1, 1, 1, 1, 2, 2]]), 2, axis=0) if docs else None
    r = randn(rng, *q.shape)
    _, probs = sk.attention_forward(q, k, v, doc_ids)
    dq, dk, dv = sk.attention_backward(r, q, k, v, probs)
    loss = lambda: f64sum(sk.attention_forward(q, k, v, doc_ids)[0], r)  # noqa: E731
    fd_check(loss, q, dq, rng, samples=20)
    fd_check(loss, k, dk, rng, samples=20)
    fd_check(loss, v, dv, rng, samples=20)


@pytest.mark.parametrize("docs", [False, True])
def test_attention_backward_against_numpy(kernel_path, rng, docs):
    q, k, v, dout = (randn(rng, 2, 3, 11, 8) for _ in range(4))
    doc_ids = np.repeat(np.int32([[0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2]]), 2, axis=0) if docs else None
    _, probs = sk.attention_forward(q, k, v, doc_ids)
    got = sk.attention_backward(dout, q, k, v, probs)
    for g, want in zip(got, ref.attention_backward(dout, q, k, v, doc_ids), strict=True):
        np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-5)


def test_crossentropy_backward_fd(kernel_path, rng):
    logits, targets = randn(rng, 5, 13), np.int32([3, -1, 0, 12, 7])
    _, probs = sk.crossentropy_forward(logits, targets)
    dlogits = sk.crossentropy_backward(probs, targets, grad_scale=1.0)
    loss = lambda: float(sk.crossentropy_forward(logits, targets)[0].astype(np.float64).sum())  # noqa: E731
    fd_check(loss, logits, dlogits, rng, samples=30)
    assert np.all(dlogits[1] == 0.0)


def test_embedding_backward_fd(kernel_path, rng):
    table, ids, r = randn(rng, 7, 5), np.int32([1, 3, 1, 6, 1]), randn(rng, 5, 5)
    dtable = np.zeros_like(table)
    sk.embedding_backward(ids, r, dtable)
    fd_check(lambda: f64sum(sk.embedding_forward(ids, table), r), table, dtable, rng, samples=20)


def test_softmax_jacobian(kernel_path, rng):
    """softmax has no backward kernel; its forward must still be differentiable consistently (used by CE)."""
    x, r = randn(rng, 3, 8), randn(rng, 3, 8)
    y = sk.softmax_forward(x).astype(np.float64)
    analytic = (y * (r - (y * r).sum(1, keepdims=True))).astype(np.float32)
    fd_check(lambda: f64sum(sk.softmax_forward(x), r), x, analytic, rng, samples=20)
