"""The explicit GPT backward against independent oracles.

Oracles: central finite differences of a float64 numpy re-implementation of the same math (per layer and for
the whole model), and PyTorch autograd on the whole model when torch is installed.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest

import sve_kernels as K
from trainer_bridge.model import (
    GPT,
    GPTConfig,
    activation_floats,
    attention_workspace_floats,
    check_fits,
    doc_ids_from_offsets,
    param_layout,
    positions_from_doc_ids,
    resolve_config,
)
from trainer_bridge.optim import AdamW, LossScaler, clip_grad_norm, lr_at

RNG = np.random.default_rng(7)
SMALL = GPTConfig(vocab_size=23, seq_len=6, d_model=8, n_heads=2, n_layers=2)


# ---------------- float64 reference of the same math ----------------
def ln64(x, w, b, eps=1e-5):
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps) * w + b


def gelu64(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def attn64(q, k, v, doc_ids=None):
    T, D = q.shape[2], q.shape[3]
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(D)
    mask = np.tril(np.ones((T, T), bool))[None, None]
    if doc_ids is not None:
        mask = mask & (doc_ids[:, None, :, None] == doc_ids[:, None, None, :])
    s = np.where(mask, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def ce64(logits, targets):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ok = targets >= 0
    return -np.where(ok, logp[np.arange(len(targets)), np.where(ok, targets, 0)], 0.0)


def logits64(cfg: GPTConfig, flat: np.ndarray, ids, doc_ids=None, positions=None) -> np.ndarray:
    """Logits [B, T, V] of the whole GPT in float64, written independently of trainer_bridge.model; `positions`
    [B, T] index wpe (None: 0 … T-1)."""
    P, off = {}, 0
    for name, shape in param_layout(cfg):
        n = math.prod(shape)
        P[name] = flat[off:off + n].reshape(shape).astype(np.float64)
        off += n
    B, T = ids.shape
    C, H = cfg.d_model, cfg.n_heads
    x = P["wte"][ids] + (P["wpe"][:T] if positions is None else P["wpe"][positions])
    for i in range(cfg.n_layers):
        g = {k.split(".", 1)[1]: v for k, v in P.items() if k.startswith(f"h{i}.")}
        qkv = ln64(x, g["ln1_w"], g["ln1_b"]) @ g["qkv_w"].T + g["qkv_b"]
        q, k, v = (qkv[..., j * C:(j + 1) * C].reshape(B, T, H, C // H).transpose(0, 2, 1, 3) for j in range(3))
        a = attn64(q, k, v, doc_ids).transpose(0, 2, 1, 3).reshape(B, T, C)
        x = x + a @ g["proj_w"].T + g["proj_b"]
        h = gelu64(ln64(x, g["ln2_w"], g["ln2_b"]) @ g["fc_w"].T + g["fc_b"])
        x = x + h @ g["fcproj_w"].T + g["fcproj_b"]
    return ln64(x, P["lnf_w"], P["lnf_b"]) @ P["wte"].T


def model64(cfg: GPTConfig, flat: np.ndarray, ids, targets, doc_ids=None, positions=None) -> float:
    """Summed loss of the whole GPT in float64."""
    logits = logits64(cfg, flat, ids, doc_ids, positions)
    return float(ce64(logits.reshape(ids.size, -1), targets.reshape(-1)).sum())


def fd_grad(f, x: np.ndarray, idx, eps=1e-6) -> np.ndarray:
    out = []
    for i in idx:
        old = x.flat[i]
        x.flat[i] = old + eps
        hi = f()
        x.flat[i] = old - eps
        lo = f()
        x.flat[i] = old
        out.append((hi - lo) / (2 * eps))
    return np.array(out)


def f32(*shape, scale=1.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


# ---------------- per layer ----------------
def check(analytic: np.ndarray, f, x64: np.ndarray, n=12, rtol=2e-3, atol=2e-5):
    idx = RNG.choice(x64.size, size=min(n, x64.size), replace=False)
    np.testing.assert_allclose(analytic.reshape(-1)[idx], fd_grad(f, x64, idx), rtol=rtol, atol=atol)


def test_linear_backward():
    x, w, b, dy = f32(5, 7), f32(4, 7), f32(4), f32(5, 4)
    dx, dw, db = K.matmul_backward(dy, x, w)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    loss = lambda: float(((x64 @ w64.T + b64) * dy).sum())  # noqa: E731
    for analytic, arg in ((dx, x64), (dw, w64), (db, b64)):
        check(analytic, loss, arg)


def test_layernorm_backward():
    x, w, b, dy = f32(6, 10, scale=3), f32(10), f32(10), f32(6, 10)
    out, mean, rstd = K.layernorm_forward(x, w, b)
    x64, w64, b64 = x.astype(np.float64), w.astype(np.float64), b.astype(np.float64)
    np.testing.assert_allclose(out, ln64(x64, w64, b64), rtol=1e-4, atol=1e-5)
    dx, dw, db = K.layernorm_backward(dy, x, w, mean, rstd)
    loss = lambda: float((ln64(x64, w64, b64) * dy).sum())  # noqa: E731
    for analytic, arg in ((dx, x64), (dw, w64), (db, b64)):
        check(analytic, loss, arg)


def test_gelu_backward():
    x, dy = f32(50, scale=2), f32(50)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(K.gelu_forward(x), gelu64(x64), rtol=1e-5, atol=1e-6)
    check(K.gelu_backward(x, dy), lambda: float((gelu64(x64) * dy).sum()), x64, n=50)


@pytest.mark.parametrize("masked", [False, True])
def test_attention_backward(masked):
    B, H, T, D = 2, 2, 5, 4
    q, k, v, dy = f32(B, H, T, D), f32(B, H, T, D), f32(B, H, T, D), f32(B, H, T, D)
    doc = doc_ids_from_offsets([[0, 2], [0, 1, 4]], T) if masked else None
    out, probs = K.attention_forward(q, k, v, doc)
    q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
    np.testing.assert_allclose(out, attn64(q64, k64, v64, doc), rtol=1e-4, atol=1e-5)
    dq, dk, dv = K.attention_backward(dy, q, k, v, probs)
    loss = lambda: float((attn64(q64, k64, v64, doc) * dy).sum())  # noqa: E731
    for analytic, arg in ((dq, q64), (dk, k64), (dv, v64)):
        check(analytic, loss, arg)


def test_crossentropy_backward_with_ignored_rows():
    logits, tgt = f32(6, 9, scale=2), np.array([1, 8, -1, 0, 3, -1], dtype=np.int32)
    losses, probs = K.crossentropy_forward(logits, tgt)
    l64 = logits.astype(np.float64)
    np.testing.assert_allclose(losses, ce64(l64, tgt), rtol=1e-5, atol=1e-6)
    check(K.crossentropy_backward(probs, tgt, 0.5), lambda: 0.5 * float(ce64(l64, tgt).sum()), l64, n=30)


def test_embedding_backward_scatter_adds_repeated_ids():
    ids, dout = np.array([2, 0, 2, 2], dtype=np.int32), f32(4, 3)
    table = np.zeros((4, 3), dtype=np.float32)
    K.embedding_backward(ids, dout, table)
    np.testing.assert_allclose(table[2], dout[[0, 2, 3]].sum(0), rtol=1e-6)
    assert not table[[1, 3]].any()


# ---------------- whole model ----------------
def batch(cfg, B=2):
    ids = RNG.integers(0, cfg.vocab_size, size=(B, cfg.seq_len))
    tgt = RNG.integers(0, cfg.vocab_size, size=(B, cfg.seq_len))
    tgt[0, -2:] = -1  # padding
    return ids, tgt


def perturbed_model(cfg, seed=3):
    m = GPT(cfg, seed=seed)
    m.params += np.random.default_rng(seed).normal(0, 0.2, m.num_params).astype(np.float32)  # leave init symmetry
    return m


@pytest.mark.parametrize("masked", [False, True])
def test_model_gradients_match_float64_finite_differences(masked):
    """Masked: documents and their own positions (the wpe gradient is then a scatter-add by position)."""
    m = perturbed_model(SMALL)
    ids, tgt = batch(SMALL)
    doc = doc_ids_from_offsets([[0, 3], [0, 2, 5]], SMALL.seq_len) if masked else None
    pos = positions_from_doc_ids(doc) if masked else None
    losses = m.forward(ids, tgt, doc, positions=pos)
    flat64 = m.params.astype(np.float64)
    assert abs(float(losses.sum()) - model64(SMALL, flat64, ids, tgt, doc, pos)) < 1e-4
    m.backward(1.0)
    idx = RNG.choice(m.num_params, 60, replace=False)
    wpe = (m.p["wpe"].ctypes.data - m.params.ctypes.data) // 4  # its offset in the flat buffer: sample it too
    idx = np.concatenate([idx, wpe + RNG.choice(m.p["wpe"].size, 12, replace=False)])
    fd = fd_grad(lambda: model64(SMALL, flat64, ids, tgt, doc, pos), flat64, idx)
    np.testing.assert_allclose(m.grads[idx], fd, rtol=3e-3, atol=3e-5)


def test_positions_restart_at_each_document_with_the_document_mask():
    """DESIGN: doc_offsets serve attention masks and position resets. With --doc-mask, a document packed mid-row
    got the positions of where it landed, so the same document gave other logits depending on its neighbours. Now
    the trainer's batch restarts positions at each document: the second document's logits are those of it fed alone
    at position 0, by the float64 model (and by this one)."""
    from trainer_bridge.train import _batch

    cfg = GPTConfig(vocab_size=29, seq_len=12, d_model=16, n_heads=2, n_layers=2)
    m = perturbed_model(cfg)
    row = RNG.integers(0, cfg.vocab_size, cfg.seq_len + 1).astype(np.int32)
    start = 5  # the second document: row positions 5 … 11

    class TwoDocuments:
        last_lengths = np.array([cfg.seq_len + 1])

        def next_batch_with_offsets(self):
            return row[None, :], [np.array([0, start])]

    ids, targets, doc, pos = _batch(TwoDocuments(), doc_mask=True)
    assert pos.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 3, 4, 5, 6]]
    packed = m.forward(ids, targets, doc, positions=pos)
    packed_logits = m.forward(ids, None, doc, positions=pos)[start:]
    alone = row[None, start:-1]
    want = logits64(cfg, m.params.astype(np.float64), alone)[0]
    np.testing.assert_allclose(packed_logits, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(packed_logits, m.forward(alone), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(packed[start:], m.forward(alone, targets[:, start:]), rtol=1e-5, atol=1e-6)
    assert _batch(TwoDocuments(), doc_mask=True, doc_positions=False)[3] is None  # a checkpoint from before


def test_model_gradients_match_torch_autograd():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: `pip install torch` for the autograd oracle")
    cfg = GPTConfig(vocab_size=31, seq_len=12, d_model=16, n_heads=4, n_layers=2)
    m = perturbed_model(cfg)
    ids, tgt = batch(cfg, B=3)
    n_valid = int((tgt >= 0).sum())
    losses = m.forward(ids, tgt)
    m.backward(1.0 / n_valid)
    flat = torch.tensor(m.params.astype(np.float64), requires_grad=True)
    P, off = {}, 0
    for name, shape in param_layout(cfg):
        P[name] = flat[off:off + math.prod(shape)].view(shape)
        off += math.prod(shape)
    B, T, C, H = 3, cfg.seq_len, cfg.d_model, cfg.n_heads
    F = torch.nn.functional
    x = P["wte"][torch.tensor(ids)] + P["wpe"][:T]
    for i in range(cfg.n_layers):
        g = {k.split(".", 1)[1]: v for k, v in P.items() if k.startswith(f"h{i}.")}
        qkv = F.linear(F.layer_norm(x, (C,), g["ln1_w"], g["ln1_b"]), g["qkv_w"], g["qkv_b"])
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in qkv.split(C, dim=-1))
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + F.linear(a, g["proj_w"], g["proj_b"])
        h = F.gelu(F.linear(F.layer_norm(x, (C,), g["ln2_w"], g["ln2_b"]), g["fc_w"], g["fc_b"]), approximate="tanh")
        x = x + F.linear(h, g["fcproj_w"], g["fcproj_b"])
    logits = F.linear(F.layer_norm(x, (C,), P["lnf_w"], P["lnf_b"]), P["wte"])
    loss = F.cross_entropy(logits.view(B * T, -1), torch.tensor(tgt).view(-1), ignore_index=-1)
    loss.backward()
    assert abs(float(losses.sum()) / n_valid - loss.item()) < 1e-5
    np.testing.assert_allclose(m.grads, flat.grad.numpy(), rtol=1e-3, atol=2e-6)


def test_flat_buffer_views_and_buckets_cover_every_parameter():
    m = GPT(SMALL)
    assert all(np.shares_memory(v, m.params) for v in m.p.values())
    assert all(np.shares_memory(v, m.grads) for v in m.g.values())
    edges = sorted(m.buckets)
    assert edges[0][0] == 0 and edges[-1][1] == m.num_params
    assert all(a[1] == b[0] for a, b in zip(edges, edges[1:], strict=False))
    seen = []
    ids, tgt = batch(SMALL)
    m.forward(ids, tgt)
    m.backward(1.0, on_bucket=lambda lo, hi: seen.append((lo, hi)))
    assert seen == m.buckets  # layers last-to-first, then the embedding/head bucket


def test_fp16_forward_stays_close_to_fp32():
    cfg = GPTConfig(vocab_size=50, seq_len=16, d_model=32, n_heads=4, n_layers=2)
    m32 = perturbed_model(cfg)
    m16 = GPT(cfg, params=m32.params.copy(), fp16=True)
    ids, tgt = batch(cfg)
    l32, l16 = m32.forward(ids, tgt), m16.forward(ids, tgt)
    np.testing.assert_allclose(l16.sum(), l32.sum(), rtol=2e-3)
    m32.backward(1.0)
    m16.backward(1.0)
    cos = float(m16.grads @ m32.grads / np.linalg.norm(m16.grads) / np.linalg.norm(m32.grads))
    assert cos > 0.999


def test_configs_and_errors(tmp_path):
    tiny = resolve_config("tiny", 32000, 256)
    assert (tiny.d_model, tiny.n_heads, tiny.n_layers, tiny.vocab_size, tiny.seq_len) == (128, 4, 2, 32000, 256)
    assert resolve_config("small", 100, 64).n_layers == 6
    spec = tmp_path / "m.json"
    spec.write_text('{"d_model": 64, "n_heads": 4, "n_layers": 3}')
    assert resolve_config(str(spec), 100, 64) == GPTConfig(100, 64, 64, 4, 3)
    spec.write_text('{"d_model": 64, "heads": 4}')
    with pytest.raises(ValueError, match="may only contain"):
        resolve_config(str(spec), 100, 64)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(10, 8, d_model=10, n_heads=3)
    with pytest.raises(ValueError, match=r"lacks the keys \['vocab_size'\]"):  # a checkpoint's config is complete
        GPTConfig.from_json('{"seq_len": 8, "d_model": 16, "n_heads": 2, "n_layers": 1}')
    with pytest.raises(ValueError, match="exceeds the model context"):
        GPT(SMALL).forward(np.zeros((1, SMALL.seq_len + 1), dtype=np.int32))


@pytest.mark.parametrize(("spec", "needle"), [
    ('{"d_model": "64"}', "d_model must be a positive integer, got '64'"),
    ('{"d_model": 64.0, "n_heads": 4, "n_layers": 1}', "d_model must be a positive integer, got 64.0"),
    ('{"n_layers": true}', "n_layers must be a positive integer, got True"),
    ('{"n_heads": 0}', "n_heads must be a positive integer, got 0"),
    ('{"seq_len": null}', "seq_len must be a positive integer, got None"),
    ('{"d_model": 64, "layers": 2}', "unknown keys ['layers']"),
    ('[64, 4, 2]', "must be a JSON object"),
    ('{"d_model": 64', "not valid JSON"),
    ("[" * 100_000, "not a model config (JSON nested too deeply)"),  # was a RecursionError traceback per rank
])
def test_json_config_values_are_checked_key_by_key(tmp_path, spec, needle):
    """A wrong type used to be a TypeError traceback, and `true` was silently 1 layer."""
    path = tmp_path / "c.json"
    path.write_text(spec)
    with pytest.raises(ValueError, match=re.escape(f"model config {path}: {needle}")):
        resolve_config(str(path), 100, 64)


# ---------------- optimizer pieces ----------------
def test_adamw_matches_a_float64_reference_and_skips_decay_on_vectors():
    m = GPT(SMALL)
    opt = AdamW(m.num_params, m.decay_mask(), weight_decay=0.1)
    p64, m64, v64 = m.params.astype(np.float64), np.zeros(m.num_params), np.zeros(m.num_params)
    decay = np.zeros(m.num_params)
    for lo, hi, d in m.decay_mask():
        decay[lo:hi] = 0.1 if d else 0.0
    for t in range(1, 4):
        g = RNG.standard_normal(m.num_params).astype(np.float32)
        opt.step(m.params, g, lr=1e-2)
        m64 = 0.9 * m64 + 0.1 * g
        v64 = 0.95 * v64 + 0.05 * g.astype(np.float64) ** 2
        upd = (m64 / (1 - 0.9 ** t)) / (np.sqrt(v64 / (1 - 0.95 ** t)) + 1e-8)
        p64 = p64 - 1e-2 * (upd + decay * p64)
    np.testing.assert_allclose(m.params, p64, rtol=1e-5, atol=1e-6)


def test_schedule_clip_and_loss_scaler():
    assert lr_at(1, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(10, 1.0, 10, 100) == pytest.approx(1.0)
    assert lr_at(100, 1.0, 10, 100) == pytest.approx(0.1)
    assert lr_at(55, 1.0, 10, 100) == pytest.approx(0.55)
    g = np.full(100, 0.5, dtype=np.float32)
    assert clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    assert float(np.linalg.norm(g)) == pytest.approx(1.0, rel=1e-5)
    s = LossScaler(scale=8.0, window=2)
    assert s.update(True) and s.scale == 4.0
    assert not s.update(False) and not s.update(False) and s.scale == 8.0


def test_a_single_padded_row_keeps_its_inputs():
    """With one row per rank, rows[:, :-1] and rows[:, 1:] are views of one buffer: masking the padding's
    targets with -1 wrote -1 into the inputs too (a crash at `global_batch == ranks`)."""
    from trainer_bridge.train import _batch

    class OneRow:
        last_lengths = np.array([3])

        def next_batch_with_offsets(self):
            return np.array([[5, 6, 7, 0, 0, 0]], dtype=np.int32), [np.array([0])]

    ids, targets, _, positions = _batch(OneRow(), doc_mask=False)
    assert positions is None
    assert ids.tolist() == [[5, 6, 7, 0, 0]] and targets.tolist() == [[6, 7, -1, -1, -1]]


def _float_bytes(obj) -> int:
    if isinstance(obj, np.ndarray):
        return obj.nbytes if obj.dtype == np.float32 else 0
    if isinstance(obj, dict | list):
        return sum(map(_float_bytes, obj.values() if isinstance(obj, dict) else obj))
    return 0


@pytest.mark.parametrize("C, H, L, V, T, B", [(64, 4, 2, 500, 32, 3), (32, 2, 3, 100, 128, 2)])
def test_activation_estimate_is_what_forward_keeps(C, H, L, V, T, B):
    """The memory check's activation term against the arrays forward really caches for backward, plus the
    logits and their gradient (vocab-wide rows that live beside the cache)."""
    cfg = GPTConfig(vocab_size=V, seq_len=T, d_model=C, n_heads=H, n_layers=L)
    model = GPT(cfg, seed=0)
    ids = np.random.default_rng(0).integers(0, V, size=(B, T))
    model.forward(ids, targets=ids)
    kept = _float_bytes(model._cache) + 2 * B * T * V * 4
    assert 0.98 < 4 * activation_floats(cfg, B, T) / kept <= 1.0


@pytest.mark.parametrize("C, H, L, V, T, B", [(32, 16, 1, 100, 256, 2), (32, 8, 2, 100, 512, 2), (64, 4, 2, 500, 32, 3)])
def test_activation_and_attention_workspace_are_the_peak_of_a_step(C, H, L, V, T, B):
    """Activations plus attention's workspace against the peak numpy allocates during forward and backward
    (tracemalloc): with 16 heads of 256 tokens the cache alone was 0.37 of it, so a run the check accepted
    could run out of memory mid-run."""
    import tracemalloc

    cfg = GPTConfig(vocab_size=V, seq_len=T, d_model=C, n_heads=H, n_layers=L)
    model = GPT(cfg, seed=0)
    ids = np.random.default_rng(0).integers(0, V, size=(B, T))
    tracemalloc.start()
    try:
        model.forward(ids, targets=ids)
        model.backward(1.0 / ids.size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    estimate = 4 * (activation_floats(cfg, B, T) + attention_workspace_floats(cfg, B, T))
    assert 0.95 < estimate / peak < 1.05


def test_a_run_that_cannot_fit_is_refused_before_allocation():
    """Weights of 0.6M parameters fit anywhere; 16 rows of 32k tokens need 1 TiB of attention probabilities
    (the check counted only weights and optimizer state, so this failed mid-run on every rank)."""
    cfg = GPTConfig(vocab_size=3000, seq_len=32768, d_model=128, n_heads=4, n_layers=2)
    check_fits(cfg, 8 << 30, batch=1, tokens=512)
    with pytest.raises(ValueError, match=r"GiB for the activations of 16 rows of 32768 tokens, a rank has 8.0 GiB"):
        check_fits(cfg, 8 << 30, batch=16, tokens=32768)
    weights_only = GPTConfig(vocab_size=3000, seq_len=8, d_model=4096, n_heads=4, n_layers=8)
    with pytest.raises(ValueError, match="GiB for its weights, gradients and AdamW moments"):
        check_fits(weights_only, 8 << 30, batch=1, tokens=8)
