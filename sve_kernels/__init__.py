"""Transformer training kernels in C (ARM SVE on A64FX, portable C elsewhere) with a numpy API.

The contract (argument order, shapes, dtypes) is fixed for the trainer; see docs/a64fx.md for the build,
the path selection (SVE_KERNELS_PATH=auto|sve|portable|blas) and the performance model."""
from ._lib import set_threads
from .matmul import info, matmul_backward, matmul_forward, matmul_forward_f16
from .ops import (
    adamw_step,
    attention_backward,
    attention_forward,
    crossentropy_backward,
    crossentropy_forward,
    embedding_backward,
    embedding_forward,
    exp,
    fp16_to_fp32,
    fp32_to_fp16,
    gelu_backward,
    gelu_forward,
    layernorm_backward,
    layernorm_forward,
    residual_forward,
    scale_inplace,
    softmax_forward,
    sumsq,
    tanh,
)

__all__ = [
    "adamw_step", "attention_backward", "attention_forward", "crossentropy_backward", "crossentropy_forward",
    "embedding_backward", "embedding_forward", "exp", "fp16_to_fp32", "fp32_to_fp16", "gelu_backward",
    "gelu_forward", "info", "layernorm_backward", "layernorm_forward", "matmul_backward", "matmul_forward",
    "matmul_forward_f16", "residual_forward", "scale_inplace", "set_threads", "softmax_forward", "sumsq", "tanh",
]
