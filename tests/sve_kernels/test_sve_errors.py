"""Bad input gives a one-line TypeError (dtype) or ValueError (shape, layout, range) naming the argument."""
from __future__ import annotations

import numpy as np
import pytest
import sve_np_reference as ref

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
        # a truth test took "no" for True and None for False, and an array raised an unnamed ValueError
        (lambda: sk.matmul_backward(z(2, 4), z(2, 3), z(4, 3), need_bias="no"), TypeError,
         "need_bias: expected a bool, got str"),
        (lambda: sk.matmul_backward(z(2, 4), z(2, 3), z(4, 3), need_bias=None), TypeError, "got NoneType"),
        (lambda: sk.matmul_backward(z(2, 4), z(2, 3), z(4, 3), need_bias=z(4) == 0), TypeError, "got ndarray"),
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
                               step=0), ValueError, r"step: expected an integer in \[1, "),
        # hyperparameters ctypes would pass on unchecked (a string: an unnamed ArgumentError; 1e39: inf params)
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr="1e-3", beta1=0.9, beta2=0.9, eps=1e-8, weight_decay=0,
                               step=1), TypeError, "lr: expected a number, got str"),
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr=1e39, beta1=0.9, beta2=0.9, eps=1e-8, weight_decay=0,
                               step=1), ValueError, "lr: expected a finite float32"),
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr=1e-3, beta1=1.0, beta2=0.9, eps=1e-8, weight_decay=0,
                               step=1), ValueError, r"beta1: expected a finite float32 in \[0.0, 1.0\)"),
        (lambda: sk.layernorm_forward(z(2, 3), z(3), z(3), eps=-1.0), ValueError,
         r"eps: expected a finite float32 in \[1.17549435\d*e-38, inf\]"),
        # a denormal eps: SVE's reciprocal estimate of sqrt(0) + eps is inf, and AdamW wrote NaN where the gradient
        # was 0 (the portable path left those parameters alone)
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr=1e-3, beta1=0.9, beta2=0.9, eps=1e-40, weight_decay=0,
                               step=1), ValueError, r"eps: expected a finite float32 in \[1.17549435\d*e-38, inf\]"),
        (lambda: sk.scale_inplace(z(3), float("nan")), ValueError, r"s: expected a finite float32 in \[-inf, inf\]"),
        # a numpy scalar read "expected a numpy array of float32, got float32"
        (lambda: sk.exp(np.float32(1.0)), TypeError, "x: expected a numpy array of float32, got a numpy scalar float32"),
        # inside the bounds in float64, on them in the float32 C receives: a parameter moved by 5e4, or NaN
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr=1e-3, beta1=0.9, beta2=0.99999999, eps=1e-8, weight_decay=0,
                               step=1), ValueError, r"beta2: .* \[0.0, 1.0\), got 0.99999999 \(1.0 as float32\)$"),
        (lambda: sk.adamw_step(z(3), z(3), z(3), z(3), lr=1e-3, beta1=0.9, beta2=0.9, eps=1e-50, weight_decay=0,
                               step=1), ValueError, r"eps: .* got 1e-50 \(0.0 as float32\)$"),
        (lambda: sk.layernorm_forward(z(2, 3), z(3), z(3), eps=1e-50), ValueError, r"eps: .*\(0.0 as float32\)$"),
        # ctypes narrowed ignore_index to int32: 2**32 + 3 silently ignored the targets equal to 3
        (lambda: sk.crossentropy_forward(z(2, 3), np.int32([0, 1]), ignore_index=2**32 + 3), ValueError,
         r"ignore_index: expected an integer in \[-2147483648, 2147483647\]"),
        (lambda: sk.crossentropy_backward(z(2, 3), np.int32([0, 1]), 1.0, ignore_index=3.7), TypeError,
         "ignore_index: expected an integer, got 3.7"),
        (lambda: sk.set_threads(2**31), ValueError, r"threads: expected an integer in \[1, 1024\]"),
        (lambda: sk.exp(np.frombuffer(bytes(33), np.float32, 8, offset=1)), ValueError, "x: array must be aligned"),
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


def test_in_place_targets_must_not_overlap_other_arguments():
    """With m passed as v, m ended up holding v's values; a dout viewing dtable gave wrong sums."""
    p, g, m = z(5), z(5), z(5)
    with pytest.raises(ValueError, match="m: shares memory with v"):
        sk.adamw_step(p, g, m, m, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, step=1)
    with pytest.raises(ValueError, match="param: shares memory with grad"):
        sk.adamw_step(p, p, m, z(5), lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, step=1)
    table = z(6, 4)
    with pytest.raises(ValueError, match="dtable: shares memory with dout"):
        sk.embedding_backward(np.int32([1, 2, 3, 4]), table[:4], table)


def test_non_finite_values_stay_in_their_document(monkeypatch):
    """The BLAS path multiplied masked-out zeros by a NaN in another document's values, so every row went NaN;
    the C kernels skip them. Both paths now agree: only document 0 (and the rows after the NaN) see it."""
    r = np.random.default_rng(0)
    q, k, v = (r.standard_normal((1, 1, 4, 8)).astype(F) for _ in range(3))
    v[0, 0, 0] = np.nan
    doc = np.int32([[0, 0, 1, 1]])
    for path in ("blas", "portable"):
        monkeypatch.setenv("SVE_KERNELS_PATH", path)
        out, probs = sk.attention_forward(q, k, v, doc)
        dq, dk, dv = sk.attention_backward(np.ones_like(q), q, k, v, probs)
        assert np.isnan(out[0, 0]).any(-1).tolist() == [True, True, False, False], path
        assert not np.isnan(dq[0, 0, 2:]).any() and not np.isnan(dv[0, 0, 2:]).any(), path


def _attention_both_ways(q, k, v, dout, doc):
    out, probs = sk.attention_forward(q, k, v, doc)
    return (out, probs, *sk.attention_backward(dout, q, k, v, probs))


def _overflowing_attention(overflow: str) -> tuple[np.ndarray, ...]:
    """q, k, v, dout (1 x 2 x 6 x 8) and doc_ids (documents 0-2, 3-5): finite float32 with products past FLT_MAX,
    all in document 0."""
    r = np.random.default_rng(0)
    q, k, v, dout = (r.standard_normal((1, 2, 6, 8)).astype(F) for _ in range(4))
    big = F(1e20)
    if overflow == "q.k":  # score (1, 0) is inf in float32
        q[..., 1, :] = k[..., 0, :] = big
    elif overflow == "q.k twice":  # (2, 0) and (2, 1) both inf; in float64 (2, 1) is twice (2, 0): 1 there
        q[..., 2, :] = k[..., 0, :] = big
        k[..., 1, :] = 2 * big
    elif overflow == "q.k nan":  # (2, 1) is inf - inf = NaN in float32, 0 in float64
        q[..., 2, :] = big
        k[..., 1, :] = np.resize(np.float32([big, -big]), 8)
    elif overflow == "q.k -inf alone":  # (0, 0) is -inf, and the only entry of row 0
        q[..., 0, :], k[..., 0, :] = big, -big
    elif overflow == "q.k -inf first":  # (1, 0) is -inf in float32 summed in order (-4e38 first), +1e38 in float64
        q[..., 1, :], k[..., 0, :] = 0.0, 0.0
        q[..., 1, :3], k[..., 0, :3] = [-4.0, big / 10, big / 10], [F(1e38), F(3e19), F(2e19)]
    elif overflow == "dout.v scaled":  # P (1, :2) = 1/2 (q = 0); dS (1, 0) = 4e38 passes FLT_MAX, dS * scale not
        q[..., 1, :] = 0.0
        k[..., :2, :] *= F(1e-3)
        dout[..., 1, :], v[..., 0, :], v[..., 1, :] = big / 10, big / 5, 0.0
    elif overflow == "dout.v masked":  # dout of document 1 times v of document 0: a masked entry of dP
        dout[..., 4, :] = v[..., 0, :] = big
    else:  # dP (1, 0) is inf - inf = NaN in float32, 0 in float64; P there is not 0
        dout[..., 1, :] = big / 5
        v[..., 0, :] = np.resize(np.float32([big / 5, -big / 5]), 8)
    return q, k, v, dout, np.int32([[0, 0, 0, 1, 1, 1]])


@pytest.mark.filterwarnings("error")  # the BLAS path printed numpy's overflow and invalid warnings
@pytest.mark.parametrize("overflow", ["q.k", "q.k twice", "q.k nan", "q.k -inf alone", "q.k -inf first",
                                      "dout.v masked", "dout.v", "dout.v scaled"])
def test_attention_overflow_matches_float64(kernel_path, overflow):
    """Finite inputs whose float32 products overflow. A q.k of +-inf or NaN made its probability row NaN on every
    path (and on the BLAS path masked entries too, and dk and dv in every row); a dout.v of inf or NaN made dS NaN
    (at a masked entry only on the BLAS path, through 0 * inf). Such rows are computed in double now, where these
    products cannot overflow: everything matches the float64 reference (so each document gets what it gets alone),
    masked entries stay exactly 0, and numpy prints no warnings."""
    q, k, v, dout, doc = _overflowing_attention(overflow)
    got = _attention_both_ways(q, k, v, dout, doc)
    out, probs = ref.attention(q, k, v, doc)
    assert np.all(got[1][..., doc[0, :, None] != doc[0]] == 0.0)
    for g, want in zip(got, (out, probs, *ref.attention_backward(dout, q, k, v, doc)), strict=True):
        assert np.isfinite(g).all()  # below, float32 round-off of the largest terms (1e20 * 1e0) where they cancel
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(want).max()))


def test_attention_overflow_redo_holds_no_per_row_arrays(kernel_path):
    """Every row of every head overflowing (a diverging run): the BLAS path's float64 redo gathered a T x D float64
    copy of k (and of v) per row, B x H x T x T x D in all: 51 GB at 8 x 12 x 1024 x 64. A head at a time, its
    peak stays near the normal case's."""
    import tracemalloc

    r = np.random.default_rng(3)
    q, k, v, dout = (r.standard_normal((1, 4, 128, 64)).astype(F) for _ in range(4))

    def peak(q, k, v, dout):
        tracemalloc.start()
        try:
            _attention_both_ways(q, k, v, dout, None)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    normal = peak(q, k, v, dout)
    q2, k2 = np.abs(q) * F(1e20), k.copy()
    k2[..., 0, :] = F(1e20)  # score (t, 0) is inf for every t
    v2 = v.copy()
    v2[..., 0, :] = F(1e20)
    big = peak(q2, k2, v2, np.abs(dout) * F(1e20))
    assert big < 2 * normal, (big, normal)


def test_attention_infinite_scores_take_the_limit(kernel_path):
    """An inf in q makes scores +-inf even in float64. The probabilities are the softmax's limit, as the float64
    reference defines it: one +inf score gets 1, several share equally, and a row of -inf only (none above another)
    is uniform; it was NaN on every path."""
    q, k, v = (np.random.default_rng(1).standard_normal((1, 2, 5, 4)).astype(F) for _ in range(3))
    k[0, 0, :, 0], k[0, 1, :, 0] = [1, -1, -2, 3, 0.5], [1, 2, 3, 1, 2]
    q[0, 0, 1:, :] = 0.0
    q[0, 0, 1:, 0] = [-np.inf, np.inf, np.inf, -np.inf]  # +inf at: s = 1; 0; 0 and 3; 1 and 2
    q[0, 1, 3] = [-np.inf, 0, 0, 0]  # -inf at s = 0..3
    out, probs = sk.attention_forward(q, k, v)
    want, wprobs = ref.attention(q, k, v)
    np.testing.assert_array_equal(wprobs[0, 0, 1:4, :4], [[0, 1, 0, 0], [1, 0, 0, 0], [0.5, 0, 0, 0.5]])
    np.testing.assert_array_equal(wprobs[0, 1, 3], [0.25, 0.25, 0.25, 0.25, 0])
    np.testing.assert_allclose(probs, wprobs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6)


def _limit_rows(c: int) -> tuple[np.ndarray, np.ndarray]:
    """Logit rows of length c whose maximum is +-inf or NaN, among finite ones, and their targets (-1: ignored).
    Infs sit in the first and last vector and in the tail, so the SVE loops' predicated ends see them."""
    inf, nan = np.inf, np.nan
    x = np.random.default_rng(5).standard_normal((10, c)).astype(F) * 4
    rows = [([c - 1], inf, c - 1), ([0], inf, 1), ([0, c // 2], inf, c // 2), ([0, c - 1], inf, -1)]
    for r, (where, value, _) in enumerate(rows):
        x[r, where] = value
    x[4] = -inf  # all -inf: uniform, loss log c
    x[5, [0, 1]] = [inf, nan]  # NaN: the row (and loss) NaN, whether the max skips NaN or not
    x[6, c - 1] = nan
    x[7] = -inf
    x[7, c // 2] = nan
    x[8, : c // 2] = -inf  # finite max: the normal path, exactly 0 at -inf
    x[9, [1, c - 1]] = [F(3e38), F(-3e38)]  # finite max, x - max overflows to -inf: 0 there
    targets = np.int32([t for *_, t in rows] + [0, 0, 1, 2, c - 1, 1])
    return x, targets


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("c", [3, 1003])
def test_softmax_and_crossentropy_take_the_limit(kernel_path, c):
    """A +inf logit or a row of -inf only made exp(x - max) inf - inf = NaN, so the row's probabilities and its loss
    were NaN on every path. They are the limits the float64 reference defines, as attention's: one +inf gets 1,
    k of them 1/k each, a row of -inf only is uniform; the loss is -log of the target's probability (0, log k, +inf,
    log V) and the gradient p - onehot is finite. A NaN logit still gives a NaN row."""
    x, targets = _limit_rows(c)
    want, wprobs = ref.crossentropy(x, targets)
    losses, probs = sk.crossentropy_forward(x, targets)
    np.testing.assert_allclose(sk.softmax_forward(x), wprobs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(probs, wprobs, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(losses, want, rtol=1e-5, atol=1e-6)
    assert [wprobs[0, c - 1], wprobs[2, 0] * 2, wprobs[4, 0] * c] == pytest.approx([1.0, 1.0, 1.0])
    assert want[:5].tolist() == [0.0, np.inf, pytest.approx(np.log(2)), 0.0, pytest.approx(np.log(c))]
    assert np.isnan(want[5:8]).all() and np.isnan(wprobs[5:8]).all() and np.isfinite(want[8:]).all()
    dlogits = sk.crossentropy_backward(probs, targets, 0.5)
    onehot = np.zeros_like(wprobs)
    keep = targets != -1
    onehot[np.flatnonzero(keep), targets[keep]] = 1.0
    np.testing.assert_allclose(dlogits, (wprobs - onehot) * 0.5 * keep[:, None], rtol=1e-6, atol=1e-7)
    assert np.isfinite(dlogits[np.r_[0:5, 8:10]]).all()


def test_crossentropy_loss_keeps_the_log_sum_at_large_logits(kernel_path):
    """loss = (log-sum + max) - l[target] rounded the log-sum away where max's ulp exceeds it: two equal logits at
    1e8 (ulp 8) gave loss 0 instead of log 2. max - l[target] is formed first now."""
    x = np.float32([[1e8, 1e8, 0.0], [-1e8, 0.0, -1e8 - 8]])
    losses, _ = sk.crossentropy_forward(x, np.int32([0, 0]))
    np.testing.assert_allclose(losses, ref.crossentropy(x, np.int32([0, 0]))[0], rtol=1e-6)


@pytest.mark.filterwarnings("error")
def test_matmul_overflow_is_inf_without_warnings(kernel_path):
    """A product past FLT_MAX is inf on every path; numpy's BLAS printed a RuntimeWarning for it too."""
    a, w = np.full((2, 3), 1e20, F), np.full((4, 3), 1e20, F)
    a[1] = 1.0
    with np.errstate(over="ignore"):  # the reference's own cast to float32
        want = (a.astype(np.float64) @ w.T.astype(np.float64)).astype(F)
    np.testing.assert_array_equal(sk.matmul_forward(a, w), want)
    dinp, dweight, _ = sk.matmul_backward(want, a, w)
    assert np.isinf(dinp).all() and np.isinf(dweight).all()


def test_tanh_of_nan_is_nan():
    """The portable kernel clamped NaN to 9 and returned 0.99999994 (the SVE kernel returned NaN)."""
    assert np.isnan(sk.tanh(np.array([np.nan, 1.0], F))).tolist() == [True, False]


def test_adamw_bias_correction_uses_the_float32_betas_the_kernel_updates_with():
    """1 - beta2 is 1.19e-7 in float32 and 1e-7 in float64 for beta2 = 0.9999999: the first step was 8% short."""
    p, g, m, v = np.zeros(4, np.float32), np.ones(4, np.float32), np.zeros(4, np.float32), np.zeros(4, np.float32)
    sk.adamw_step(p, g, m, v, lr=1.0, beta1=0.9, beta2=0.9999999, eps=1e-12, weight_decay=0.0, step=1)
    np.testing.assert_allclose(p, -1.0, rtol=1e-5)  # the first AdamW step is lr * sign(g)


def test_a_zero_d_array_is_a_number():
    """A 0-d array (np.array(2.0), np.asarray of a number) was refused as "got ndarray"; it is the number it
    holds, and a 1-element array is still no number."""
    x = np.ones(3, np.float32)
    sk.scale_inplace(x, np.array(2.0))
    assert x.tolist() == [2.0, 2.0, 2.0]
    with pytest.raises(TypeError, match="s: expected a number, got ndarray"):
        sk.scale_inplace(x, np.array([2.0]))
