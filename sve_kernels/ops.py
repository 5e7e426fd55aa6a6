"""Every non-matmul kernel: layernorm, GELU, residual, embedding, softmax, attention, cross-entropy,
AdamW, gradient-norm helpers and fp16 conversion. Inputs are checked, outputs allocated here, work in C."""
from __future__ import annotations

import math

import numpy as np

from . import _blas_attention
from ._checks import F16, F32, F32_TINY, I32, array, disjoint, indices, int32, number, ptr, same_shape
from ._lib import c_kernel, kernel_path


def _empty_like(a: np.ndarray, dtype: np.dtype = F32) -> np.ndarray:
    return np.empty(a.shape, dtype=dtype)


def layernorm_forward(inp: np.ndarray, weight: np.ndarray, bias: np.ndarray,
                      eps: float = 1e-5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(out[N,C], mean[N], rstd[N]) normalising over the last axis."""
    array("inp", inp, F32, ndim=2)
    n, c = inp.shape
    array("weight", weight, F32, (c,))
    array("bias", bias, F32, (c,))
    eps = number("eps", eps, F32_TINY)
    out, mean, rstd = _empty_like(inp), np.empty(n, F32), np.empty(n, F32)
    c_kernel("layernorm_forward")(out.ctypes.data, mean.ctypes.data, rstd.ctypes.data, inp.ctypes.data,
                                  weight.ctypes.data, bias.ctypes.data, n, c, eps)
    return out, mean, rstd


def layernorm_backward(dout: np.ndarray, inp: np.ndarray, weight: np.ndarray, mean: np.ndarray,
                       rstd: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dinp[N,C], dweight[C], dbias[C])"""
    array("inp", inp, F32, ndim=2)
    n, c = inp.shape
    array("dout", dout, F32, (n, c))
    array("weight", weight, F32, (c,))
    array("mean", mean, F32, (n,))
    array("rstd", rstd, F32, (n,))
    dinp, dweight, dbias = _empty_like(inp), np.empty(c, F32), np.empty(c, F32)
    c_kernel("layernorm_backward")(dinp.ctypes.data, dweight.ctypes.data, dbias.ctypes.data, dout.ctypes.data,
                                   inp.ctypes.data, weight.ctypes.data, mean.ctypes.data, rstd.ctypes.data, n, c)
    return dinp, dweight, dbias


def _unary(name: str, x: np.ndarray) -> np.ndarray:
    array("x", x, F32)
    y = _empty_like(x)
    c_kernel(name)(y.ctypes.data, x.ctypes.data, x.size)
    return y


def _binary(name: str, a_name: str, a: np.ndarray, b_name: str, b: np.ndarray) -> np.ndarray:
    """Element-wise kernel of two same-shaped float32 arrays: kernel(out, a, b, n)."""
    array(a_name, a, F32)
    array(b_name, b, F32)
    same_shape(b_name, b, a_name, a)
    out = _empty_like(a)
    c_kernel(name)(out.ctypes.data, a.ctypes.data, b.ctypes.data, a.size)
    return out


def gelu_forward(x: np.ndarray) -> np.ndarray:
    """0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), any shape."""
    return _unary("gelu_forward", x)


def gelu_backward(x: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return _binary("gelu_backward", "x", x, "dy", dy)


def exp(x: np.ndarray) -> np.ndarray:
    """The kernels' vectorised exp (range reduction + polynomial), exposed for accuracy tests."""
    return _unary("exp", x)


def tanh(x: np.ndarray) -> np.ndarray:
    """The kernels' vectorised tanh, exposed for accuracy tests."""
    return _unary("tanh", x)


def residual_forward(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _binary("residual_forward", "a", a, "b", b)


def embedding_forward(ids: np.ndarray, table: np.ndarray) -> np.ndarray:
    """out[N,C] = table[ids]"""
    array("ids", ids, I32, ndim=1)
    array("table", table, F32, ndim=2)
    ids = indices("ids", ids, table.shape[0])
    out = np.empty((ids.shape[0], table.shape[1]), F32)
    c_kernel("embedding_forward")(out.ctypes.data, ids.ctypes.data, table.ctypes.data, ids.shape[0], table.shape[1])
    return out


def embedding_backward(ids: np.ndarray, dout: np.ndarray, dtable: np.ndarray) -> None:
    """dtable[ids[n]] += dout[n] in place (repeated ids accumulate)."""
    array("ids", ids, I32, ndim=1)
    array("dtable", dtable, F32, ndim=2, writeable=True)
    array("dout", dout, F32, (ids.shape[0], dtable.shape[1]))
    ids = indices("ids", ids, dtable.shape[0])
    disjoint("dtable", dtable, dout=dout)
    c_kernel("embedding_backward")(dtable.ctypes.data, ids.ctypes.data, dout.ctypes.data, ids.shape[0],
                                   dtable.shape[1])


def softmax_forward(x: np.ndarray) -> np.ndarray:
    """Row softmax of x[N,C] with max subtraction. A row whose max is infinite gets the limit: the entries holding
    it share the row equally (one +inf: 1 there; all -inf: uniform); a NaN makes the row NaN."""
    array("x", x, F32, ndim=2)
    y = _empty_like(x)
    if y.size == 0:  # C would walk N empty rows: 2**40 of them for a (2**40, 0) array, which takes no memory
        return y
    c_kernel("softmax_forward")(y.ctypes.data, x.ctypes.data, x.shape[0], x.shape[1])
    return y


def _finite(*arrays: np.ndarray) -> bool:
    """The BLAS path multiplies masked-out zeros too, and 0 * NaN spreads a non-finite value across documents and
    the causal mask; the C kernels skip those entries, so a non-finite input goes to them."""
    return all(bool(np.isfinite(a).all()) for a in arrays)


def attention_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray,
                      doc_ids: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Causal attention per head, scaled by 1/sqrt(D); with doc_ids[B,T], t attends only to its own document.

    A row whose float32 scores overflow is computed in double (the exact softmax); with an inf in q or k, the
    entries holding an infinite maximum score share the row equally (the softmax's limit)."""
    array("q", q, F32, ndim=4)
    b, h, t, _ = q.shape
    array("k", k, F32, q.shape)
    array("v", v, F32, q.shape)
    if doc_ids is not None:
        array("doc_ids", doc_ids, I32, (b, t))
    if b * h * t == 0:  # no row: out and probs are empty (B x H could be 2**60 heads of 0 rows)
        return _empty_like(q), np.empty((b, h, t, t), F32)
    if kernel_path() == "blas" and _finite(q, k, v):
        return _blas_attention.forward(q, k, v, doc_ids)
    out, probs = _empty_like(q), np.empty((b, h, t, t), F32)
    c_kernel("attention_forward")(out.ctypes.data, probs.ctypes.data, q.ctypes.data, k.ctypes.data, v.ctypes.data,
                                  ptr(doc_ids), *q.shape)
    return out, probs


def attention_backward(dout: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                       probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dq, dk, dv) from the forward's probs (masked entries are 0, so no mask is needed here)."""
    array("q", q, F32, ndim=4)
    b, h, t, _ = q.shape
    for name, a in (("dout", dout), ("k", k), ("v", v)):
        array(name, a, F32, q.shape)
    array("probs", probs, F32, (b, h, t, t))
    if q.size == 0:  # C walks every head, each of T = 0 rows: 2**60 of them for a (2**30, 2**30, 0, D) q
        return _empty_like(q), _empty_like(q), _empty_like(q)
    if kernel_path() == "blas" and _finite(dout, q, k, v):
        return _blas_attention.backward(dout, q, k, v, probs)
    dq, dk, dv = _empty_like(q), _empty_like(q), _empty_like(q)
    c_kernel("attention_backward")(dq.ctypes.data, dk.ctypes.data, dv.ctypes.data, dout.ctypes.data, q.ctypes.data,
                                   k.ctypes.data, v.ctypes.data, probs.ctypes.data, *q.shape)
    return dq, dk, dv


def crossentropy_forward(logits: np.ndarray, targets: np.ndarray,
                         ignore_index: int = -1) -> tuple[np.ndarray, np.ndarray]:
    """(losses[N], probs[N,V]); rows whose target == ignore_index have loss 0. With an infinite max logit, probs
    is softmax_forward's limit and the loss -log probs[target] (0 on a single +inf, +inf off the +infs)."""
    array("logits", logits, F32, ndim=2)
    n, vocab = logits.shape
    array("targets", targets, I32, (n,))
    ignore_index = int32("ignore_index", ignore_index)
    targets = indices("targets", targets, vocab, ignore=ignore_index)
    losses, probs = np.empty(n, F32), _empty_like(logits)
    c_kernel("crossentropy_forward")(losses.ctypes.data, probs.ctypes.data, logits.ctypes.data, targets.ctypes.data,
                                     n, vocab, ignore_index)
    return losses, probs


def crossentropy_backward(probs: np.ndarray, targets: np.ndarray, grad_scale: float,
                          ignore_index: int = -1) -> np.ndarray:
    """dlogits = (probs - onehot(targets)) * grad_scale; ignored rows are zero."""
    array("probs", probs, F32, ndim=2)
    n, vocab = probs.shape
    array("targets", targets, I32, (n,))
    ignore_index = int32("ignore_index", ignore_index)
    targets = indices("targets", targets, vocab, ignore=ignore_index)
    dlogits = _empty_like(probs)
    c_kernel("crossentropy_backward")(dlogits.ctypes.data, probs.ctypes.data, targets.ctypes.data, n, vocab,
                                      number("grad_scale", grad_scale), ignore_index)
    return dlogits


def adamw_step(param: np.ndarray, grad: np.ndarray, m: np.ndarray, v: np.ndarray, *, lr: float, beta1: float,
               beta2: float, eps: float, weight_decay: float, step: int) -> None:
    """In-place AdamW on 1-D param, m, v; bias correction with step >= 1; decoupled weight decay."""
    array("param", param, F32, ndim=1, writeable=True)
    array("grad", grad, F32, param.shape)
    array("m", m, F32, param.shape, writeable=True)
    array("v", v, F32, param.shape, writeable=True)
    disjoint("param", param, grad=grad, m=m, v=v)
    disjoint("m", m, grad=grad, v=v)
    disjoint("v", v, grad=grad)
    step = int32("step", step, low=1)
    lr, eps, weight_decay = number("lr", lr, 0.0), number("eps", eps, F32_TINY), number("weight_decay", weight_decay, 0.0)
    beta1, beta2 = (number(name, b, 0.0, 1.0, high_open=True) for name, b in (("beta1", beta1), ("beta2", beta2)))
    bc1, bc2 = 1.0 - math.pow(beta1, step), 1.0 - math.pow(beta2, step)
    c_kernel("adamw_step")(param.ctypes.data, grad.ctypes.data, m.ctypes.data, v.ctypes.data, param.size,
                           lr, beta1, beta2, eps, weight_decay, bc1, bc2)


def sumsq(x: np.ndarray) -> float:
    """sum(x**2) accumulated in float64 (global gradient norm)."""
    array("x", x, F32)
    return float(c_kernel("sumsq")(x.ctypes.data, x.size))


def scale_inplace(x: np.ndarray, s: float) -> None:
    array("x", x, F32, writeable=True)
    c_kernel("scale_inplace")(x.ctypes.data, x.size, number("s", s))


def fp32_to_fp16(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(float16 copy, overflow) where overflow means some result is inf or NaN (dynamic loss scaling)."""
    array("x", x, F32)
    y = _empty_like(x, F16)
    return y, bool(c_kernel("fp32_to_fp16")(y.ctypes.data, x.ctypes.data, x.size))


def fp16_to_fp32(x: np.ndarray) -> tuple[np.ndarray, bool]:
    """(float32 copy, nonfinite) where nonfinite means some input is inf or NaN."""
    array("x", x, F16)
    y = _empty_like(x)
    return y, bool(c_kernel("fp16_to_fp32")(y.ctypes.data, x.ctypes.data, x.size))
