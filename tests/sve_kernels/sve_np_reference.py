"""Independent numpy (float64) references for the sve_kernels tests."""
from __future__ import annotations

import numpy as np

S = np.sqrt(2.0 / np.pi)
F32_MAX = float(np.finfo(np.float32).max)
# GELU inputs beside ordinary ones: x^3 and x^2 overflow float32 beyond ~7e12 and ~2e19, and +-inf, NaN.
GELU_EDGES = np.float32([1e4, 1e10, 1e20, 3e38, F32_MAX, np.inf, 0.0, 0.5, 1.0, 3.0, 9.5, 12.0])
GELU_EDGES = np.concatenate([GELU_EDGES, -GELU_EDGES, np.float32([np.nan])])


def f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


def layernorm(x, w, b, eps=1e-5):
    x, w, b = f64(x, w, b)
    mean = x.mean(axis=1)
    rstd = 1.0 / np.sqrt(((x - mean[:, None]) ** 2).mean(axis=1) + eps)
    return (x - mean[:, None]) * rstd[:, None] * w + b, mean, rstd


def _gelu_sigmoids(x):
    """(x clipped to +-FLT_MAX, sigmoid(2u), 1 - sigmoid(2u)) with u = S (x + 0.044715 x^3): the tanh form as
    0.5 (1 + tanh(u)) = sigmoid(2u), from e = exp(-2|u|) <= 1 so nothing overflows (x^3 of a float32 is finite in
    float64). At +-FLT_MAX the sigmoids are already exactly 0 or 1, so clipping +-inf there gives their limits."""
    (x,) = f64(x)
    x = np.clip(x, -F32_MAX, F32_MAX)
    u = S * (x + 0.044715 * x**3)
    e = np.exp(-2.0 * np.abs(u))
    return x, np.where(u >= 0, 1.0, e) / (1.0 + e), np.where(u >= 0, e, 1.0) / (1.0 + e)


def gelu(x):
    """x sigmoid(2u): -> x as x -> inf and -> -0 as x -> -inf (x is clipped below at -FLT_MAX, where sig is already
    0, so -inf gives -0 rather than -inf * 0 = nan)."""
    _, sig, _ = _gelu_sigmoids(x)
    return np.maximum(f64(x)[0], -F32_MAX) * sig


def gelu_grad(x):
    """d/dx x sigmoid(2u) = sig + 2 x sig (1 - sig) du/dx, du/dx = S (1 + 3 a x^2): -> 1 and -> 0 at +-inf."""
    x, sig, rest = _gelu_sigmoids(x)
    return sig + 2.0 * x * sig * rest * S * (1.0 + 3.0 * 0.044715 * x**2)


def softmax(x, live=None):
    """Softmax over the last axis's `live` entries (all if None; the others get 0). Where the live maximum is
    infinite, the live entries holding it share the row equally: the limit for one +inf (1 there) or several, and
    for all -inf, none above another. A NaN makes the row NaN."""
    (x,) = f64(x)
    live = np.ones(x.shape, bool) if live is None else np.broadcast_to(live, x.shape)
    x = np.where(live, x, -np.inf)
    m = x.max(axis=-1, keepdims=True)
    limit = np.isinf(m)
    with np.errstate(invalid="ignore"):
        e = np.where(limit, live & (x == m), np.exp(x - np.where(limit, 0.0, m)))
    return np.where(live, e / e.sum(axis=-1, keepdims=True), 0.0)


def attention(q, k, v, doc_ids=None):
    """Scores in float64, where products of float32 inputs cannot overflow; masked entries have probability 0."""
    q, k, v = f64(q, k, v)
    t, d = q.shape[2], q.shape[3]
    with np.errstate(invalid="ignore"):  # an inf in q or k: inf * 0
        scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)
    mask = np.tril(np.ones((t, t), dtype=bool))[None, None]
    if doc_ids is not None:
        mask = mask & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])
    probs = softmax(scores, mask)
    return probs @ v, probs


def layernorm_backward(dy, x, w, eps=1e-5):
    """(dx, dw, db) of y = xhat w + b, xhat = (x - mean) rstd: dx = rstd (g - mean(g) - xhat mean(g xhat)), g = dy w."""
    dy, x, w = f64(dy, x, w)
    _, mean, rstd = layernorm(x, np.ones_like(w), np.zeros_like(w), eps)
    xhat = (x - mean[:, None]) * rstd[:, None]
    g = dy * w
    dx = rstd[:, None] * (g - g.mean(axis=1, keepdims=True) - xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, (dy * xhat).sum(axis=0), dy.sum(axis=0)


def layernorm_backward_scale(dy, x, w, eps=1e-5):
    """The sizes (dx, dw, db) of the terms layernorm_backward adds: where they are huge and cancel, a float result is
    only good to a rounding of them, so tolerances are relative to these, not to the (possibly tiny) result."""
    dy, x, w = f64(dy, x, w)
    _, mean, rstd = layernorm(x, np.ones_like(w), np.zeros_like(w), eps)
    xhat = np.abs(x - mean[:, None]) * rstd[:, None]
    g = np.abs(dy * w)
    dx = rstd[:, None] * (g + g.mean(axis=1, keepdims=True) + xhat * (g * xhat).mean(axis=1, keepdims=True))
    return dx, np.abs(dy * xhat).sum(axis=0), np.abs(dy).sum(axis=0)


def attention_backward(dout, q, k, v, doc_ids=None):
    """(dq, dk, dv) of out = P v, P = softmax(q k^T / sqrt(d)) under the causal (and document) mask:
    dv = P^T dout, dS = P (dP - rowsum(dP P)) with dP = dout v^T, dq = dS k / sqrt(d), dk = dS^T q / sqrt(d)."""
    dout, q, k, v = f64(dout, q, k, v)
    _, probs = attention(q, k, v, doc_ids)
    scale = 1.0 / np.sqrt(q.shape[-1])
    dp = dout @ np.swapaxes(v, -1, -2)
    ds = probs * (dp - (dp * probs).sum(axis=-1, keepdims=True))
    return ds @ k * scale, np.swapaxes(ds, -1, -2) @ q * scale, np.swapaxes(probs, -1, -2) @ dout


def crossentropy(logits, targets, ignore_index=-1):
    """(losses, probs): loss = logsumexp - logit[target] = -log p[target]. Where a row's maximum is infinite, -log of
    softmax's limit: log k on one of the k entries holding +inf (0 for one), +inf off them, log V for all -inf."""
    (logits,) = f64(logits)
    probs = softmax(logits)
    m = logits.max(axis=1, keepdims=True)
    rows, picked = np.arange(len(targets)), np.where(targets == ignore_index, 0, targets)
    with np.errstate(invalid="ignore", divide="ignore"):  # inf - inf in the unused lse; -log 0 = inf
        lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
        loss = np.where(np.isinf(m[:, 0]), -np.log(probs[rows, picked]), lse - logits[rows, picked])
    return np.where(targets == ignore_index, 0.0, loss), probs


def adamw(param, grad, m, v, lr, beta1, beta2, eps, wd, step):
    param, grad, m, v = f64(param, grad, m, v)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    mhat, vhat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param - lr * (mhat / (np.sqrt(vhat) + eps) + wd * param), m, v
