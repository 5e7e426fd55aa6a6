"""Matrix products (llm.c convention: out = inp @ weight.T + bias) and info().

On the 'blas' path (the default on hosts without SVE) the products go to numpy's BLAS, which is far
faster on x86 than portable C; SVE_KERNELS_PATH=portable selects the C micro-kernel instead."""
from __future__ import annotations

import numpy as np

from . import _lib
from ._checks import F16, F32, array, flag, ptr


def info() -> dict:
    """{"path": "sve"|"portable"|"blas", "vector_bits": int|None, "threads": int}"""
    return {"path": _lib.kernel_path(), "vector_bits": _lib.VECTOR_BITS, "threads": _lib.max_threads()}


def _check_bias(bias: np.ndarray | None, oc: int) -> np.ndarray | None:
    return None if bias is None else array("bias", bias, F32, (oc,))


def _forward(kernel: str, dtype: np.dtype, inp: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """out_f32[N,OC] = inp[N,C] @ weight[OC,C].T + bias[OC], inputs stored as `dtype`, accumulated in float32."""
    array("inp", inp, dtype, ndim=2)
    n, c = inp.shape
    array("weight", weight, dtype, (None, c))
    oc = weight.shape[0]
    bias = _check_bias(bias, oc)
    if n * oc == 0:  # the C bias fill walks N rows of OC = 0 columns: 2**40 of them for a (2**40, 0) inp
        return np.empty((n, oc), dtype=F32)
    if _lib.kernel_path() == "blas":
        with _lib.quiet_fp():
            out = inp.astype(F32, copy=False) @ weight.astype(F32, copy=False).T
            if bias is not None:
                out += bias
        return out
    out = np.empty((n, oc), dtype=F32)
    _lib.c_kernel(kernel)(out.ctypes.data, inp.ctypes.data, weight.ctypes.data, ptr(bias), n, c, oc)
    return out


def matmul_forward(inp: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """out[N,OC] = inp[N,C] @ weight[OC,C].T + bias[OC]"""
    return _forward("matmul_forward", F32, inp, weight, bias)


def matmul_forward_f16(inp: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """float16 storage, float32 accumulate: out_f32[N,OC] = inp_f16 @ weight_f16.T + bias_f32."""
    return _forward("matmul_forward_f16", F16, inp, weight, bias)


def matmul_backward(dout: np.ndarray, inp: np.ndarray, weight: np.ndarray,
                    need_bias: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(dinp = dout @ weight, dweight = dout.T @ inp, dbias = dout.sum(0) or None)"""
    array("inp", inp, F32, ndim=2)
    n, c = inp.shape
    array("weight", weight, F32, (None, c))
    oc = weight.shape[0]
    array("dout", dout, F32, (n, oc))
    need_bias = flag("need_bias", need_bias)
    if _lib.kernel_path() == "blas":
        with _lib.quiet_fp():
            dbias = dout.sum(axis=0, dtype=F32) if need_bias else None
            return dout @ weight, np.ascontiguousarray(dout.T @ inp), dbias
    dinp = np.empty((n, c), dtype=F32)
    dweight = np.empty((oc, c), dtype=F32)
    dbias = np.empty(oc, dtype=F32) if need_bias else None
    _lib.c_kernel("matmul_backward")(dinp.ctypes.data, dweight.ctypes.data, ptr(dbias), dout.ctypes.data,
                                     inp.ctypes.data, weight.ctypes.data, n, c, oc)
    return dinp, dweight, dbias
