"""Independent numpy (float64) references for the sve_kernels tests."""
from __future__ import annotations

import numpy as np

S = np.sqrt(2.0 / np.pi)


def f64(*arrays):
    return [None if a is None else np.asarray(a, dtype=np.float64) for a in arrays]


def layernorm(x, w, b, eps=1e-5):
    x, w, b = f64(x, w, b)
    mean = x.mean(axis=1)
    rstd = 1.0 / np.sqrt(((x - mean[:, None]) ** 2).mean(axis=1) + eps)
    return (x - mean[:, None]) * rstd[:, None] * w + b, mean, rstd


def gelu(x):
    (x,) = f64(x)
    return 0.5 * x * (1.0 + np.tanh(S * (x + 0.044715 * x**3)))


def softmax(x):
    (x,) = f64(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def attention(q, k, v, doc_ids=None):
    q, k, v = f64(q, k, v)
    t, d = q.shape[2], q.shape[3]
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)
    mask = np.tril(np.ones((t, t), dtype=bool))[None, None]
    if doc_ids is not None:
        mask = mask & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])
    scores = np.where(mask, scores, -np.inf)
    probs = softmax(scores.reshape(-1, t)).reshape(scores.shape)
    return probs @ v, probs


def crossentropy(logits, targets, ignore_index=-1):
    (logits,) = f64(logits)
    m = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - m).sum(axis=1)) + m[:, 0]
    rows = np.arange(len(targets))
    picked = logits[rows, np.where(targets == ignore_index, 0, targets)]
    return np.where(targets == ignore_index, 0.0, lse - picked), softmax(logits)


def adamw(param, grad, m, v, lr, beta1, beta2, eps, wd, step):
    param, grad, m, v = f64(param, grad, m, v)
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    mhat, vhat = m / (1 - beta1**step), v / (1 - beta2**step)
    return param - lr * (mhat / (np.sqrt(vhat) + eps) + wd * param), m, v
