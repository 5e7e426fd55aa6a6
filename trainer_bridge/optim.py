"""AdamW on the flat parameter buffer, the warmup + cosine schedule, clipping and fp16 loss scaling.

Everything here is a pure function of (step, state arrays), so a checkpoint of `m`, `v`, the step and the
loss-scaler state resumes bit-exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

import sve_kernels as K


def lr_at(step: int, base_lr: float, warmup: int, total: int, min_ratio: float = 0.1) -> float:
    """Linear warmup over `warmup` steps, then cosine decay to min_ratio * base_lr at `total` (step starts at 1)."""
    if warmup > 0 and step <= warmup:
        return base_lr * step / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return base_lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def _merge_runs(mask: list[tuple[int, int, bool]]) -> list[tuple[int, int, bool]]:
    runs: list[tuple[int, int, bool]] = []
    for start, end, decay in mask:
        if runs and runs[-1][2] == decay and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], end, decay)
        else:
            runs.append((start, end, decay))
    return runs


class AdamW:
    """Decoupled-weight-decay Adam whose moments mirror the flat parameter buffer.

    Weight decay applies to matrices only (LayerNorm gains and biases are excluded), given as
    contiguous (start, end, decay) runs so each run is one `adamw_step` kernel call.
    """

    def __init__(self, num_params: int, decay_mask: list[tuple[int, int, bool]], *, beta1: float = 0.9,
                 beta2: float = 0.95, eps: float = 1e-8, weight_decay: float = 0.1):
        self.m = np.zeros(num_params, dtype=np.float32)
        self.v = np.zeros(num_params, dtype=np.float32)
        self.runs = _merge_runs(decay_mask)
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay
        self.t = 0  # number of applied (non-skipped) updates: the bias-correction step

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        self.t += 1
        for start, end, decay in self.runs:
            K.adamw_step(params[start:end], grads[start:end], self.m[start:end], self.v[start:end],
                         lr=lr, beta1=self.beta1, beta2=self.beta2, eps=self.eps,
                         weight_decay=self.weight_decay if decay else 0.0, step=self.t)


def clip_grad_norm(grads: np.ndarray, max_norm: float) -> float:
    """Scale grads in place so their global L2 norm is at most max_norm; returns the norm before clipping.

    Called after the allreduce, so every rank holds the same gradients and computes the same norm
    without another collective.
    """
    norm = math.sqrt(K.sumsq(grads))
    if max_norm > 0 and math.isfinite(norm) and norm > max_norm:
        K.scale_inplace(grads, max_norm / (norm + 1e-6))
    return norm


@dataclass
class LossScaler:
    """Dynamic loss scaling for fp16: halve and skip the step on overflow, double after `window` clean steps."""

    scale: float = 2.0 ** 16
    window: int = 200
    good_steps: int = 0
    min_scale: float = 1.0
    max_scale: float = 2.0 ** 24

    def update(self, overflow: bool) -> bool:
        """Record one step's outcome; returns True when the step must be skipped."""
        if overflow:
            self.scale = max(self.min_scale, self.scale / 2.0)
            self.good_steps = 0
            return True
        self.good_steps += 1
        if self.good_steps >= self.window:
            self.scale = min(self.max_scale, self.scale * 2.0)
            self.good_steps = 0
        return False

    def state_dict(self) -> dict:
        return {"scale": self.scale, "window": self.window, "good_steps": self.good_steps}

    def load_state_dict(self, state: dict) -> None:
        self.scale = float(state["scale"])
        self.window = int(state["window"])
        self.good_steps = int(state["good_steps"])
