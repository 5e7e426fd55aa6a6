"""A GPT decoder whose forward and backward are written out on `sve_kernels` (no autograd).

Why explicit: on A64FX there is no framework worth its overhead; every hot loop is one kernel call, and
parameters and gradients each live in ONE flat float32 buffer with per-tensor views, so a single MPI
collective (or a few contiguous buckets, one per layer) moves every gradient. Layout: layer 0 … L-1,
then the "head" tensors (final LayerNorm, positions, token embeddings), so backward finishes the buckets
in reverse layer order and each can be reduced while the earlier layers are still being differentiated.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

import sve_kernels as K

PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 128, "n_heads": 4, "n_layers": 2},
    "small": {"d_model": 512, "n_heads": 8, "n_layers": 6},
}
LAYER_TENSORS = ("ln1_w", "ln1_b", "qkv_w", "qkv_b", "proj_w", "proj_b",
                 "ln2_w", "ln2_b", "fc_w", "fc_b", "fcproj_w", "fcproj_b")


@dataclass(frozen=True)
class GPTConfig:
    vocab_size: int
    seq_len: int
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 2

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if type(value) is not int or value < 1:  # a bool or a float (64.0, true) is a mistake, not a size
                raise ValueError(f"{f.name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model {self.d_model} is not divisible by n_heads {self.n_heads}")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str, base: GPTConfig | None = None) -> GPTConfig:
        """Parse a config; keys it omits come from `base` (without one, every key is required).

        Any problem is a one-line ValueError naming the key (the caller names the file).
        """
        try:
            spec = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON: {exc}") from None
        except RecursionError:
            raise ValueError("not a model config (JSON nested too deeply)") from None
        names = [f.name for f in fields(cls)]
        if not isinstance(spec, dict):
            raise ValueError("must be a JSON object")
        if unknown := sorted(set(spec) - set(names)):
            raise ValueError(f"unknown keys {unknown} (it may only contain {names})")
        if base is None and (missing := [n for n in names if n not in spec]):
            raise ValueError(f"lacks the keys {missing}")
        return cls(**{**(asdict(base) if base else {}), **spec})


def resolve_config(model: str, vocab_size: int, seq_len: int) -> GPTConfig:
    """`tiny` / `small` / path to a JSON file; vocab and context default to the shards' values."""
    if model in PRESETS:
        return GPTConfig(vocab_size=vocab_size, seq_len=seq_len, **PRESETS[model])
    path = Path(model)
    if not path.is_file():
        raise ValueError(f"--model must be tiny, small or a JSON config file, got {model!r}")
    try:
        cfg = GPTConfig.from_json(path.read_text(encoding="utf-8"), base=GPTConfig(vocab_size, seq_len))
    except ValueError as exc:
        raise ValueError(f"model config {path}: {exc}") from None
    if cfg.vocab_size < vocab_size or cfg.seq_len < seq_len:
        raise ValueError(f"model config {path} is smaller than the shards (vocab {vocab_size}, seq_len {seq_len})")
    return cfg


def param_layout(cfg: GPTConfig) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes in buffer order (see the module docstring for why this order)."""
    C = cfg.d_model
    shapes = {"ln1_w": (C,), "ln1_b": (C,), "qkv_w": (3 * C, C), "qkv_b": (3 * C,),
              "proj_w": (C, C), "proj_b": (C,), "ln2_w": (C,), "ln2_b": (C,),
              "fc_w": (4 * C, C), "fc_b": (4 * C,), "fcproj_w": (C, 4 * C), "fcproj_b": (C,)}
    out = [(f"h{i}.{n}", shapes[n]) for i in range(cfg.n_layers) for n in LAYER_TENSORS]
    out += [("lnf_w", (C,)), ("lnf_b", (C,)), ("wpe", (cfg.seq_len, C)), ("wte", (cfg.vocab_size, C))]
    return out


def param_count(cfg: GPTConfig) -> int:
    return sum(math.prod(s) for _, s in param_layout(cfg))


TRAIN_BYTES_PER_PARAM = 16  # float32 weights, gradients and both AdamW moments
FP16_BYTES_PER_PARAM = 6  # fp16's rounded weights, and their float32 view


def activation_floats(cfg: GPTConfig, batch: int, tokens: int) -> int:
    """Floats one forward keeps for backward (`GPT.forward`'s cache): per position and layer, 16 d_model-wide
    rows (input, LayerNorms, q k v, attention output, residual, MLP pre- and post-GELU) and n_heads x `tokens`
    attention probabilities; then three vocab-wide rows at the head (logits, probabilities, their gradient)."""
    C, T = cfg.d_model, tokens
    return batch * T * (cfg.n_layers * (16 * C + cfg.n_heads * T) + 2 * C + 3 * cfg.vocab_size)


def attention_workspace_floats(cfg: GPTConfig, batch: int, tokens: int) -> int:
    """Floats attention holds beside the cache at its peak: two batch x n_heads x tokens x tokens arrays
    (forward: the masked scores and their unmasked source; backward: the probabilities' gradient and the
    softmax product). With many heads and long rows they are most of the peak: 2.6x the cache alone."""
    return 2 * batch * cfg.n_heads * tokens * tokens


def check_fits(cfg: GPTConfig, memory: int, batch: int, tokens: int, fp16: bool = False) -> None:
    """Refuse a run whose weights, optimizer state and activations exceed `memory` bytes (one rank's share of
    its node): numpy would fail to allocate them (or the machine would swap to a halt) only after the run has
    started, on every rank."""
    state = param_count(cfg) * (TRAIN_BYTES_PER_PARAM + (FP16_BYTES_PER_PARAM if fp16 else 0))
    acts = 4 * (activation_floats(cfg, batch, tokens) + attention_workspace_floats(cfg, batch, tokens))
    if state + acts > memory:
        raise ValueError(f"model {cfg.to_json()} has {param_count(cfg):,} parameters: training needs "
                         f"{state / 2**30:,.1f} GiB for its weights, gradients and AdamW moments and "
                         f"{acts / 2**30:,.1f} GiB for the activations of {batch} rows of {tokens} tokens, "
                         f"a rank has {memory / 2**30:,.1f} GiB")


def _views(flat: np.ndarray, layout: list[tuple[str, tuple[int, ...]]]) -> dict[str, np.ndarray]:
    views, off = {}, 0
    for name, shape in layout:
        n = math.prod(shape)
        views[name] = flat[off:off + n].reshape(shape)
        off += n
    return views


def doc_ids_from_offsets(doc_offsets: list, T: int) -> np.ndarray:
    """Per-position document index for rows whose documents start at `doc_offsets` (intra-document mask)."""
    out = np.zeros((len(doc_offsets), T), dtype=np.int32)
    pos = np.arange(T)
    for b, starts in enumerate(doc_offsets):
        starts = np.asarray(sorted(int(s) for s in starts if 0 < int(s) < T), dtype=np.int64)
        out[b] = np.searchsorted(starts, pos, side="right")
    return out


def positions_from_doc_ids(doc_ids: np.ndarray) -> np.ndarray:
    """Each token's position inside its document segment, [B, T] int32, 0 at every segment start: with the
    document mask, a document packed mid-row then sees the positions it would alone (DESIGN's position resets).
    A split document's continuation restarts at 0 too, as it cannot attend to its part in the previous row."""
    doc_ids = np.asarray(doc_ids)
    T = doc_ids.shape[1]
    starts = np.ones(doc_ids.shape, dtype=bool)
    starts[:, 1:] = doc_ids[:, 1:] != doc_ids[:, :-1]
    pos = np.arange(T, dtype=np.int32)
    return pos - np.maximum.accumulate(np.where(starts, pos, 0), axis=1).astype(np.int32)


class GPT:
    """Pre-LN decoder: tokens+positions → L × [LN→attn→+, LN→GELU MLP→+] → LN → tied LM head."""

    def __init__(self, cfg: GPTConfig, seed: int = 0, params: np.ndarray | None = None, fp16: bool = False):
        self.cfg, self.fp16 = cfg, fp16
        self.layout = param_layout(cfg)
        self.num_params = param_count(cfg)
        if params is None:
            params = self._init(seed)
        if params.shape != (self.num_params,) or params.dtype != np.float32:
            raise ValueError(f"params must be float32[{self.num_params}], got {params.dtype}{list(params.shape)}")
        self.params = np.ascontiguousarray(params)
        self.grads = np.zeros_like(self.params)
        self.p, self.g = _views(self.params, self.layout), _views(self.grads, self.layout)
        self.buckets = self._buckets()
        self._half: dict[str, np.ndarray] = {}
        self._half_f32: dict[str, np.ndarray] = {}
        self._cache: dict = {}

    def _init(self, seed: int) -> np.ndarray:
        flat = np.zeros(self.num_params, dtype=np.float32)
        rng = np.random.default_rng(seed)
        std_proj = 0.02 / math.sqrt(2 * self.cfg.n_layers)
        for name, view in _views(flat, self.layout).items():
            leaf = name.split(".")[-1]
            if leaf.endswith("_b"):
                continue
            if leaf in ("ln1_w", "ln2_w", "lnf_w"):
                view[...] = 1.0
            else:
                std = std_proj if leaf in ("proj_w", "fcproj_w") else 0.02
                view[...] = rng.normal(0.0, std, size=view.shape).astype(np.float32)
        return flat

    def _buckets(self) -> list[tuple[int, int]]:
        """Contiguous [start, end) slices in the order backward completes them: layers L-1 … 0, then head."""
        per_layer = sum(math.prod(s) for n, s in self.layout[:len(LAYER_TENSORS)])
        L = self.cfg.n_layers
        out = [(i * per_layer, (i + 1) * per_layer) for i in reversed(range(L))]
        return out + [(L * per_layer, self.num_params)]

    def decay_mask(self) -> list[tuple[int, int, bool]]:
        """(start, end, apply_weight_decay) per tensor: matrices decay, LayerNorm weights and biases don't."""
        out, off = [], 0
        for _name, shape in self.layout:
            n = math.prod(shape)
            out.append((off, off + n, len(shape) == 2))
            off += n
        return out

    # ---- linear layers (fp32, or fp16 storage with fp32 accumulation) ----
    def refresh_half(self) -> None:
        """Round the master weights to float16 once per step (A64FX has FP16 SIMD, no BF16)."""
        half, _ = K.fp32_to_fp16(self.params)
        self._half = _views(half, self.layout)
        self._half_f32 = _views(K.fp16_to_fp32(half)[0], self.layout)

    def _w(self, name: str) -> np.ndarray:
        return self._half_f32[name] if self.fp16 else self.p[name]

    def _linear(self, x: np.ndarray, w: str, b: str | None) -> np.ndarray:
        bias = self.p[b] if b else None
        if self.fp16:
            return K.matmul_forward_f16(K.fp32_to_fp16(x)[0], self._half[w], bias)
        return K.matmul_forward(x, self.p[w], bias)

    def _linear_back(self, dout: np.ndarray, x: np.ndarray, w: str, b: str | None) -> np.ndarray:
        dx, dw, db = K.matmul_backward(dout, x, self._w(w), need_bias=b is not None)
        self.g[w] += dw
        if b:
            self.g[b] += db
        return dx

    # ---- forward / backward ----
    def forward(self, ids: np.ndarray, targets: np.ndarray | None = None, doc_ids: np.ndarray | None = None,
                ignore_index: int = -1, positions: np.ndarray | None = None) -> np.ndarray:
        """Per-token losses [B*T] when targets are given, else logits [B*T, V]; caches what backward needs.

        `positions` [B, T] picks each token's row of `wpe` (`positions_from_doc_ids` for per-document positions);
        None is 0 … T-1 in every row."""
        cfg = self.cfg
        B, T = ids.shape
        if T > cfg.seq_len:
            raise ValueError(f"sequence length {T} exceeds the model context {cfg.seq_len}")
        C, H = cfg.d_model, cfg.n_heads
        D = C // H
        if self.fp16:
            self.refresh_half()
        flat_ids = np.ascontiguousarray(ids.reshape(-1), dtype=np.int32)
        x = K.embedding_forward(flat_ids, self.p["wte"])
        pos = None
        if positions is None:
            x = (x.reshape(B, T, C) + self.p["wpe"][:T]).reshape(B * T, C)
        else:
            if np.shape(positions) != (B, T):
                raise ValueError(f"positions must have the shape of ids {[B, T]}, got {list(np.shape(positions))}")
            pos = np.ascontiguousarray(np.reshape(positions, -1), dtype=np.int32)
            x += K.embedding_forward(pos, self.p["wpe"])  # checks 0 <= pos < seq_len
        layers = []
        for i in range(cfg.n_layers):
            n = f"h{i}."
            c: dict = {"x": x}
            c["ln1"], c["m1"], c["r1"] = K.layernorm_forward(x, self.p[n + "ln1_w"], self.p[n + "ln1_b"])
            qkv = self._linear(c["ln1"], n + "qkv_w", n + "qkv_b").reshape(B, T, 3, H, D).transpose(2, 0, 3, 1, 4)
            c["q"], c["k"], c["v"] = (np.ascontiguousarray(qkv[j]) for j in range(3))
            att, c["probs"] = K.attention_forward(c["q"], c["k"], c["v"], doc_ids)
            c["att"] = np.ascontiguousarray(att.transpose(0, 2, 1, 3)).reshape(B * T, C)
            x2 = K.residual_forward(x, self._linear(c["att"], n + "proj_w", n + "proj_b"))
            c["x2"] = x2
            c["ln2"], c["m2"], c["r2"] = K.layernorm_forward(x2, self.p[n + "ln2_w"], self.p[n + "ln2_b"])
            c["h"] = self._linear(c["ln2"], n + "fc_w", n + "fc_b")
            c["gelu"] = K.gelu_forward(c["h"])
            x = K.residual_forward(x2, self._linear(c["gelu"], n + "fcproj_w", n + "fcproj_b"))
            layers.append(c)
        lnf, mf, rf = K.layernorm_forward(x, self.p["lnf_w"], self.p["lnf_b"])
        logits = self._linear(lnf, "wte", None)
        self._cache = {"ids": flat_ids, "pos": pos, "B": B, "T": T, "layers": layers, "xf": x, "lnf": lnf, "mf": mf,
                       "rf": rf, "ignore_index": ignore_index}
        if targets is None:
            return logits
        tgt = np.ascontiguousarray(targets.reshape(-1), dtype=np.int32)
        losses, probs = K.crossentropy_forward(logits, tgt, ignore_index)
        self._cache.update(probs=probs, targets=tgt)
        return losses

    def backward(self, grad_scale: float, on_bucket: Callable[[int, int], None] | None = None) -> None:
        """Gradients of grad_scale * sum(losses) into self.grads (zeroed first).

        `on_bucket(start, end)` is called as soon as a bucket's gradients are final, so the caller can
        start its allreduce while earlier layers are still being differentiated.
        """
        c0, cfg = self._cache, self.cfg
        if "probs" not in c0:
            raise RuntimeError("backward() needs a forward() with targets first")
        B, T, C, H = c0["B"], c0["T"], cfg.d_model, cfg.n_heads
        D = C // H
        self.grads.fill(0.0)
        dlogits = K.crossentropy_backward(c0["probs"], c0["targets"], float(grad_scale), c0["ignore_index"])
        c0["probs"] = None  # the largest activation; free it early
        dlnf = self._linear_back(dlogits, c0["lnf"], "wte", None)
        del dlogits
        dx, dw, db = K.layernorm_backward(dlnf, c0["xf"], self.p["lnf_w"], c0["mf"], c0["rf"])
        self.g["lnf_w"] += dw
        self.g["lnf_b"] += db
        for i in reversed(range(cfg.n_layers)):
            n, c = f"h{i}.", c0["layers"][i]
            dgelu = self._linear_back(dx, c["gelu"], n + "fcproj_w", n + "fcproj_b")
            dh = K.gelu_backward(c["h"], dgelu)
            dln2 = self._linear_back(dh, c["ln2"], n + "fc_w", n + "fc_b")
            dx2, dw, db = K.layernorm_backward(dln2, c["x2"], self.p[n + "ln2_w"], c["m2"], c["r2"])
            self.g[n + "ln2_w"] += dw
            self.g[n + "ln2_b"] += db
            dx2 = K.residual_forward(dx2, dx)
            datt = self._linear_back(dx2, c["att"], n + "proj_w", n + "proj_b")
            datt = np.ascontiguousarray(datt.reshape(B, T, H, D).transpose(0, 2, 1, 3))
            dq, dk, dv = K.attention_backward(datt, c["q"], c["k"], c["v"], c["probs"])
            dqkv = np.ascontiguousarray(np.stack([dq, dk, dv]).transpose(1, 3, 0, 2, 4)).reshape(B * T, 3 * C)
            dln1 = self._linear_back(dqkv, c["ln1"], n + "qkv_w", n + "qkv_b")
            dxin, dw, db = K.layernorm_backward(dln1, c["x"], self.p[n + "ln1_w"], c["m1"], c["r1"])
            self.g[n + "ln1_w"] += dw
            self.g[n + "ln1_b"] += db
            dx = K.residual_forward(dxin, dx2)
            if on_bucket is not None:
                on_bucket(*self.buckets[cfg.n_layers - 1 - i])
        if c0["pos"] is None:
            self.g["wpe"][:T] += dx.reshape(B, T, C).sum(axis=0)
        else:
            K.embedding_backward(c0["pos"], dx, self.g["wpe"])
        K.embedding_backward(c0["ids"], dx, self.g["wte"])
        self._cache = {}
        if on_bucket is not None:
            on_bucket(*self.buckets[-1])

    def next_token_logits(self, ids: np.ndarray) -> np.ndarray:
        """Logits [V] for the token after the last one of `ids` (cropped to the context)."""
        ids = np.asarray(ids, dtype=np.int32)[-self.cfg.seq_len:]
        logits = self.forward(ids[None, :])
        self._cache = {}
        return logits[-1]
