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
    mask = _mask(t, doc_ids)
    scores = np.where(mask, scores, np.float32(-np.inf))  # exp(-inf) -> exactly 0
    probs = np.empty((b, h, t, t), np.float32)
    c_kernel("softmax_forward")(probs.ctypes.data, scores.ctypes.data, b * h * t, t)
    # A score that overflowed to +-inf makes its row NaN (inf - inf), masked entries included: zero those as the
    # C kernel does, or the backward's products carry the NaN into the other documents' dk and dv.
    np.copyto(probs, np.float32(0.0), where=~mask)
    return np.matmul(probs, v), probs


def _ds(probs: np.ndarray, dp: np.ndarray) -> np.ndarray:
    """dS = P (dP - rowsum(P dP))"""
    return probs * (dp - np.sum(probs * dp, axis=-1, keepdims=True))


def backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
             probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = np.float32(1.0 / math.sqrt(q.shape[-1])) if q.shape[-1] else np.float32(1.0)
    dv = np.matmul(probs.swapaxes(-1, -2), dout)
    dp = np.matmul(dout, v.swapaxes(-1, -2))
    ds = _ds(probs, dp)
    # The sum is not finite when an entry is (or, harmlessly, when it overflows); np.isfinite(ds) would add a
    # B x H x T x T array to the step's peak memory, which trainer_bridge's memory check counts.
    if not np.isfinite(ds.sum()):
        # An inf in dP where P = 0 (masked or underflowed) gave 0 * inf = NaN in its row sum, and a non-finite row
        # sum gave NaN at the row's masked entries, which dS^T q spread to other documents. Skip P = 0 entries as
        # the C kernel does; only here, as the masks cost more than dS itself.
        live = probs != 0.0
        ds = np.where(live, _ds(probs, np.where(live, dp, np.float32(0.0))), np.float32(0.0))
    ds *= scale
    return np.matmul(ds, k), np.matmul(ds.swapaxes(-1, -2), q), dv
