"""Bad input gives a one-line TypeError (dtype) or ValueError (shape, layout, range) naming the argument."""
from __future__ import annotations

import numpy as np
import pytest

import sve_kernels as sk

F = np.float32


def z(*shape, dtype=F):
    return np.zeros(shape, dtype=dtype)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: sk.matmul_forward(z(2, 3, dtype=np.float64), z(4, 3)), TypeError, "inp: expected dtype float32"),
        (lambda: sk.matmul_forward([[1.0]], z(1, 1)), TypeError, "inp: expected a numpy array"),
        (lambda: sk.matmul_forward(z(2, 3), z(4, 5)), ValueError, r"weight: expected shape \(\?, 3\)"),
        (lambda: sk.matmul_forward(z(2, 3), z(4, 3), z(5)), ValueError, r"bias: expected shape \(4\)"),
        (lambda: sk.matmul_forward(z(3, 2).T, z(4, 3)), ValueError, "inp: array must be C-contiguous"),
        (lambda: sk.matmul_forward(z(6), z(4, 3)), ValueError, "inp: expected a 2-D array"),
        (lambda: sk.matmul_backward(z(2, 5), z(2, 3), z(4, 3)), ValueError, r"dout: expected shape \(2, 4\)"),
        (lambda: sk.matmul_forward_f16(z(2, 3), z(4, 3)), TypeError, "inp: expected dtype float16"),
        (lambda: sk.layernorm_forward(z(2, 3), z(4), z(3)), ValueError, "weight"),
        (lambda: sk.gelu_backward(z(3), z(4)), ValueError, "dy: shape"),
        (lambda: sk.residual_forward(z(3), z(3, dtype=np.float16)), TypeError, "b: expected dtype float32"),
        (lambda: sk.embedding_forward(z(3, dtype=np.int64), z(4, 2)), TypeError, "ids: expected dtype int32"),
        (lambda: sk.embedding_forward(np.int32([0, 4]), z(4, 2)), ValueError, r"ids: index 4 out of range \[0, 4\)"),
        (lambda: sk.embedding_forward(np.int32([-1]), z(4, 2)), ValueError, "ids: index -1 out of range"),
        (lambda: sk.crossentropy_forward(z(2, 3), np.int32([0, 3])), ValueError, "targets: index 3 out of range"),
        (lambda: sk.crossentropy_backward(z(2, 3), np.int32([0]), 1.0), ValueError, "targets: expected shape"),
        (lambda: sk.attention_forward(z(1, 1, 2, 4), z(1, 1, 2, 4), z(1, 1, 3, 4)), ValueError, "v: expected shape"),
        (lambda: sk.attention_forward(z(1, 1, 2, 4), z(1, 1, 2, 4), z(1, 1, 2, 4), z(1, 2)), TypeError, "doc_ids"),
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr=1, beta1=0.9, beta2=0.9, eps=1e-8, weight_decay=0,
                               step=0), ValueError, "step: must be >= 1"),
        (lambda: sk.fp16_to_fp32(z(3)), TypeError, "x: expected dtype float16"),
    ],
)
def test_bad_input_messages(call, exc, match):
    with pytest.raises(exc, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_read_only_in_place_target():
    x = z(4)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="x: array must be writeable"):
        sk.scale_inplace(x, 2.0)


def test_unknown_path_env(monkeypatch):
    monkeypatch.setenv("SVE_KERNELS_PATH", "gpu")
    with pytest.raises(ValueError, match="SVE_KERNELS_PATH='gpu'"):
        sk.info()


def test_info_contract(monkeypatch):
    monkeypatch.delenv("SVE_KERNELS_PATH", raising=False)
    info = sk.info()
    assert set(info) == {"path", "vector_bits", "threads"}
    assert info["path"] in ("sve", "blas") and info["threads"] >= 1
    assert (info["vector_bits"] is None) == (info["path"] != "sve")
