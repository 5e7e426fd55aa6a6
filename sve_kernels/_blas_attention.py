"""Attention on the 'blas' path (hosts without SVE): the two batched products per direction go to numpy's
BLAS, the masked row softmax to the C kernel. Same contract and masking as the C attention kernels.

Inputs here are finite (ops.py sends others to C), but their products can overflow float32: handled below, and
shown in the values as on the C paths, so without numpy's warnings (quiet_fp)."""
from __future__ import annotations

import math

import numpy as np

from ._checks import F32_MAX
from ._lib import c_kernel, quiet_fp


def _mask(t: int, doc_ids: np.ndarray | None) -> np.ndarray:
    causal = np.tril(np.ones((t, t), dtype=bool))[None, None]
    if doc_ids is None:
        return causal
    return causal & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])


def _scale(d: int) -> np.float32:
    """1 / sqrt(D) as the C kernels use it, a float32 (1 for D = 0)."""
    return np.float32(1.0 / math.sqrt(d)) if d else np.float32(1.0)


def _heads(rows: np.ndarray):
    """(b, h, the rows t of rows[b, h]) for each head with one: the float64 redo goes a head at a time, so it holds
    T x T and T x D float64 arrays, never one per row (all rows of every head overflow in a diverging run)."""
    for b, h in zip(*np.nonzero(rows.any(axis=-1)), strict=True):
        yield b, h, np.nonzero(rows[b, h])[0]


def _may_overflow(x: np.ndarray, y: np.ndarray) -> bool:
    """Whether some x[b, h, t] . y[b, h, s] can overflow float32, in any summation order: each partial sum is at
    most D max|x| max|y|. Two reductions over B x H x T x D, no T x T pass."""
    if x.size == 0:
        return False
    return x.shape[-1] * max(float(x.max()), -float(x.min())) * max(float(y.max()), -float(y.min())) >= F32_MAX / 2


def _exact_rows(q: np.ndarray, k: np.ndarray, v: np.ndarray, mask: np.ndarray, scores: np.ndarray,
                probs: np.ndarray, out: np.ndarray) -> None:
    """Redo in float64 the rows with a non-finite live score: q.k overflowing float32 to +-inf, or NaN through
    inf - inf (the row went NaN, masked entries too), or to -inf where its exact value is the row's largest (the
    row was finite and wrong). Products of float32 inputs cannot overflow float64, so this is the exact softmax,
    as the C kernels' double fallback computes it."""
    rows = ~(np.isfinite(scores) | ~mask).all(axis=-1)
    scale = float(_scale(q.shape[-1]))
    for b, h, t in _heads(rows):
        live = mask[b if mask.shape[0] > 1 else 0, 0, t]
        x = np.where(live, q[b, h, t].astype(np.float64) @ k[b, h].astype(np.float64).T * scale, -np.inf)
        e = np.exp(x - x.max(axis=-1, keepdims=True))  # the diagonal is live: the max is finite
        p = e / e.sum(axis=-1, keepdims=True)
        probs[b, h, t] = p
        out[b, h, t] = p @ v[b, h].astype(np.float64)


def forward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
            doc_ids: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    b, h, t, d = q.shape
    mask = _mask(t, doc_ids)
    probs = np.empty((b, h, t, t), np.float32)
    with quiet_fp():
        scores = np.matmul(q, k.swapaxes(-1, -2))
        scores *= _scale(d)
        scores = np.where(mask, scores, np.float32(-np.inf))  # exp(-inf) -> exactly 0
        c_kernel("softmax_forward")(probs.ctypes.data, scores.ctypes.data, b * h * t, t)
        out = np.matmul(probs, v)
        # A score that overflowed to +-inf or NaN: bounded away from normal inputs by _may_overflow (a NaN
        # probability row also makes its output row NaN: one pass over out, T / D times smaller than probs).
        if _may_overflow(q, k) or not np.isfinite(out.sum()):
            _exact_rows(q, k, v, mask, scores, probs, out)
    return out, probs


def _ds(probs: np.ndarray, dp: np.ndarray) -> np.ndarray:
    """dS = P (dP - rowsum(P dP))"""
    return probs * (dp - np.sum(probs * dp, axis=-1, keepdims=True))


def backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
             probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scale = _scale(q.shape[-1])
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
            # Scaled in float64 before the cast (P (dP - rowsum) can pass FLT_MAX while dS * scale does not).
            rows = ~np.isfinite(ds).all(axis=-1)
            ds *= scale
            for b, h, t in _heads(rows):
                dp64 = dout[b, h, t].astype(np.float64) @ v[b, h].astype(np.float64).T
                ds[b, h, t] = _ds(probs[b, h, t].astype(np.float64), dp64) * float(scale)
        else:
            ds *= scale
        return np.matmul(ds, k), np.matmul(ds.swapaxes(-1, -2), q), dv
