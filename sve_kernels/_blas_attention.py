"""Attention on the 'blas' path (hosts without SVE): the two batched products per direction go to numpy's
BLAS, the masked row softmax to the C kernel. Same contract and masking as the C attention kernels.

Inputs here are finite (ops.py sends others to C), but their products can overflow float32: handled below, and
shown in the values as on the C paths, so without numpy's warnings (quiet_fp)."""
from __future__ import annotations

import math

import numpy as np

from ._lib import c_kernel, quiet_fp


def _mask(t: int, doc_ids: np.ndarray | None) -> np.ndarray:
    causal = np.tril(np.ones((t, t), dtype=bool))[None, None]
    if doc_ids is None:
        return causal
    return causal & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])


def _products64(x: np.ndarray, y: np.ndarray, b: np.ndarray, h: np.ndarray, t: np.ndarray) -> np.ndarray:
    """x[b, h, t] . y[b, h, s] for every s, in float64, where products of float32 inputs cannot overflow."""
    return np.einsum("nd,nsd->ns", x[b, h, t].astype(np.float64), y[b, h].astype(np.float64))


def _exact_rows(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray, probs: np.ndarray,
                out: np.ndarray) -> None:
    """Redo in float64 the rows a non-finite score made NaN (q.k overflowing float32 to +-inf, or NaN through
    inf - inf; masked entries of the row too): products of float32 inputs cannot overflow float64, so this is the
    exact softmax, as the C kernels' double fallback computes it."""
    b, h, t = np.nonzero(~np.isfinite(probs).all(axis=-1))
    scores = np.where(np.broadcast_to(mask, probs.shape)[b, h, t], _products64(q, k, b, h, t) / math.sqrt(q.shape[-1]),
                      -np.inf)
    e = np.exp(scores - scores.max(axis=-1, keepdims=True))  # the diagonal is live: the max is finite
    probs[b, h, t] = e / e.sum(axis=-1, keepdims=True)
    out[b, h, t] = np.einsum("ns,nsd->nd", probs[b, h, t], v[b, h])


def forward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
            doc_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    b, h, t, d = q.shape
    mask = _mask(t, doc_ids)
    probs = np.empty((b, h, t, t), np.float32)
    with quiet_fp():
        scores = np.matmul(q, k.swapaxes(-1, -2))
        scores *= np.float32(1.0 / math.sqrt(d)) if d else np.float32(1.0)
        scores = np.where(mask, scores, np.float32(-np.inf))  # exp(-inf) -> exactly 0
        c_kernel("softmax_forward")(probs.ctypes.data, scores.ctypes.data, b * h * t, t)
        out = np.matmul(probs, v)
        # A NaN probability row makes its output row NaN: one pass over out (T / D times smaller than probs).
        if not np.isfinite(out.sum()):
            _exact_rows(q, k, v, mask, probs, out)
    return out, probs


def _ds(probs: np.ndarray, dp: np.ndarray) -> np.ndarray:
    """dS = P (dP - rowsum(P dP))"""
    return probs * (dp - np.sum(probs * dp, axis=-1, keepdims=True))


def backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
             probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = np.float32(1.0 / math.sqrt(q.shape[-1])) if q.shape[-1] else np.float32(1.0)
    with quiet_fp():
        dv = np.matmul(probs.swapaxes(-1, -2), dout)
        dp = np.matmul(dout, v.swapaxes(-1, -2))
        ds = _ds(probs, dp)
        # The sum is not finite when an entry is (or, harmlessly, when it overflows); np.isfinite(ds) would add a
        # B x H x T x T array to the step's peak memory, which trainer_bridge's memory check counts.
        if not np.isfinite(ds.sum()):
            # An inf in dP where P = 0 (masked or underflowed) gave 0 * inf = NaN in its row sum, and a non-finite
            # row sum gave NaN at the row's masked entries, which dS^T q spread to other documents. Skip P = 0
            # entries as the C kernel does; only here, as the masks cost more than dS itself.
            live = probs != 0.0
            ds = np.where(live, _ds(probs, np.where(live, dp, np.float32(0.0))), np.float32(0.0))
            # A live dP past FLT_MAX (or a row sum or dP - rowsum): those rows in float64, as the C kernel does.
            b, h, t = np.nonzero(~np.isfinite(ds).all(axis=-1))
            ds[b, h, t] = _ds(probs[b, h, t].astype(np.float64), _products64(dout, v, b, h, t))
        ds *= scale
        return np.matmul(ds, k), np.matmul(ds.swapaxes(-1, -2), q), dv
