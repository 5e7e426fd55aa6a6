"""Attention on the 'blas' path (hosts without SVE): the two batched products per direction go to numpy's
BLAS, the masked row softmax to the C kernel. Same contract and masking as the C attention kernels."""
from __future__ import annotations

import math

import numpy as np

from ._lib import c_kernel


def _mask(t: int, doc_ids: np.ndarray | None) -> np.ndarray:
    causal = np.tril(np.ones((t, t), dtype=bool))[None, None]
    if doc_ids is None:
        return causal
    return causal & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])


def forward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
            doc_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    b, h, t, d = q.shape
    scores = np.matmul(q, k.swapaxes(-1, -2))
    scores *= np.float32(1.0 / math.sqrt(d)) if d else np.float32(1.0)
    scores = np.where(_mask(t, doc_ids), scores, np.float32(-np.inf))  # exp(-inf) -> exactly 0
    probs = np.empty((b, h, t, t), np.float32)
    c_kernel("softmax_forward")(probs.ctypes.data, scores.ctypes.data, b * h * t, t)
    return np.matmul(probs, v), probs


def backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
             probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = np.float32(1.0 / math.sqrt(q.shape[-1])) if q.shape[-1] else np.float32(1.0)
    dv = np.matmul(probs.swapaxes(-1, -2), dout)
    dp = np.matmul(dout, v.swapaxes(-1, -2))
    ds = probs * (dp - np.sum(probs * dp, axis=-1, keepdims=True))
    ds *= scale
    return np.matmul(ds, k), np.matmul(ds.swapaxes(-1, -2), q), dv
