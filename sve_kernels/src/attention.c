/* Causal self-attention per head, optionally restricted to the current document (doc_ids).
 * Forward: threads split (b, h, t) rows. Backward: threads split (b, h) heads and walk t in order, so the
 * dk/dv accumulation order is fixed. One implementation is written against dot/axpy primitives and
 * instantiated for the portable and the SVE primitives (constant function pointers inline at -O3).
 */
#include <float.h>
#include <stdlib.h>

#include "internal.h"

typedef float (*dot_fn)(const float *, const float *, int64_t);
typedef void (*axpy_fn)(float *, float, const float *, int64_t); /* y += a * x */

static float dot_portable(const float *a, const float *b, int64_t n) {
    float s = 0.0f;
    for (int64_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
static void axpy_portable(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

#if SK_HAVE_SVE
static float dot_sve(const float *a, const float *b, int64_t n) {
    const int64_t vl = (int64_t)svcntw();
    const svbool_t pt = svptrue_b32();
    svfloat32_t a0 = svdup_n_f32(0.0f), a1 = a0; /* two FMLA chains: head dims are short */
    int64_t i = 0;
    for (; i + 2 * vl <= n; i += 2 * vl) {
        a0 = svmla_f32_x(pt, a0, svld1_f32(pt, a + i), svld1_f32(pt, b + i));
        a1 = svmla_f32_x(pt, a1, svld1_f32(pt, a + i + vl), svld1_f32(pt, b + i + vl));
    }
    for (; i < n; i += vl) {
        svbool_t pg = svwhilelt_b32_s64(i, n);
        a0 = svmla_f32_m(pg, a0, svld1_f32(pg, a + i), svld1_f32(pg, b + i));
    }
    return svaddv_f32(pt, svadd_f32_x(pt, a0, a1));
}
static void axpy_sve(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i += (int64_t)svcntw()) {
        svbool_t pg = svwhilelt_b32_s64(i, n);
        svst1_f32(pg, y + i, svmla_n_f32_x(pg, svld1_f32(pg, y + i), svld1_f32(pg, x + i), a));
    }
}
#endif

/* q.k in double, where products of float32 inputs cannot overflow (|q_i k_i| <= FLT_MAX^2). */
static double dot_f64(const float *a, const float *b, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

/* A row with a non-finite float score, in double: q.k of finite inputs overflows float (to +-inf, or NaN through
 * inf - inf), which gave the row NaN, and never double, so this is the float64 reference's exact softmax (1 on a
 * score far above the rest). With an inf in q or k a double score can be infinite too: the live entries holding an
 * infinite maximum share the row equally, the softmax's limit (one +inf: 1 there; all -inf, none above another:
 * uniform); a NaN score makes the row NaN. Writes the live entries' weights to p and returns 1 / their sum; the
 * dots are done twice (max, then exp) so that no buffer is needed.
 * The second pass must not rely on recomputing the maximum's score bit for bit: C does not promise it (x87's
 * excess precision keeps one pass's score unrounded; a compiler may fuse x - mx into an FMA, which skips the
 * rounding of x). These scores reach 1e39, where one bit is 1e23 and exp of it inf or 0: the row was NaN
 * (tests/sve_kernels/test_sve_qemu.py builds it so). So the maximum gets weight 1 by its index and no other entry
 * more than 1, and the sum lies in [1, t + 1] whatever the rounding; where a score rounds the same both times (the
 * -std=c11 builds of setup.py and the QEMU harness) that is exactly exp(x - mx), bit for bit as before. The
 * limit's x == mx compares infinities only, which are exact. */
static float row_weights_f64(float *p, const float *qt, const float *kh, const int32_t *doc, int64_t t, int64_t D,
                             double scale) {
    double mx = -INFINITY;
    int64_t at = t;
    int nan = 0;
    for (int64_t s = 0; s <= t; s++) {
        if (doc && doc[s] != doc[t]) continue;
        const double x = dot_f64(qt, kh + s * D, D) * scale;
        nan |= sk_isnan(x);
        if (x > mx) mx = x, at = s;
    }
    const int limit = !sk_finite(mx);
    double sum = 0.0;
    for (int64_t s = 0; s <= t; s++) {
        if (doc && doc[s] != doc[t]) continue;
        const double x = dot_f64(qt, kh + s * D, D) * scale, d = x - mx;
        const double e = limit ? (double)(x == mx) : s == at || !(d < 0.0) ? 1.0 : exp(d);
        p[s] = (float)e;
        sum += e;
    }
    return nan ? NAN : (float)(1.0 / sum);
}

static inline void attention_forward_impl(float *out, float *probs, const float *q, const float *k, const float *v,
                                          const int32_t *doc_ids, int64_t B, int64_t H, int64_t T, int64_t D,
                                          dot_fn dot, axpy_fn axpy, void (*vexp)(float *, const float *, int64_t)) {
    const float scale = D > 0 ? 1.0f / sqrtf((float)D) : 1.0f;
#pragma omp parallel for schedule(static) if (B * H * T * T * D >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t row = 0; row < B * H * T; row++) {
        const int64_t t = row % T, bh = row / T, b = bh / H;
        const float *qt = q + row * D, *kh = k + bh * T * D, *vh = v + bh * T * D;
        const int32_t *doc = doc_ids ? doc_ids + b * T : NULL;
        float *p = probs + row * T, *o = out + row * D;
        float mx = -INFINITY, inv = NAN;
        uint32_t bad = 0;
        for (int64_t s = 0; s <= t; s++) {
            if (doc && doc[s] != doc[t]) continue;
            p[s] = dot(qt, kh + s * D, D) * scale;
            mx = p[s] > mx ? p[s] : mx;
            bad |= !sk_finitef(p[s]);
        }
        /* Any non-finite score, not only the maximum: an overflowing q.k can round to -inf where its exact value is
         * the row's largest (-1.01 FLT_MAX + 5e38, summed in order), which gave it probability 0. */
        if (!bad) {
            for (int64_t s = 0; s <= t; s++) p[s] = (doc && doc[s] != doc[t]) ? -INFINITY : p[s] - mx;
            vexp(p, p, t + 1); /* exp(-inf) clamps to exp(-104) = 0 */
            float sum = 0.0f;
            for (int64_t s = 0; s <= t; s++) sum += p[s];
            inv = 1.0f / sum;
        }
        /* The sum is in [1, t + 1] when the stored scores are what was tested and maxed (exp(0) = 1 at the maximum);
         * under excess precision (x87) they may not be, and a sum of inf gave inv = 0 and NaN weights: redone too. */
        if (!sk_finitef(inv) || inv == 0.0f) inv = row_weights_f64(p, qt, kh, doc, t, D, scale);
        for (int64_t d = 0; d < D; d++) o[d] = 0.0f;
        for (int64_t s = 0; s <= t; s++) {
            p[s] = (doc && doc[s] != doc[t]) ? 0.0f : p[s] * inv;
            if (p[s] != 0.0f) axpy(o, p[s], vh + s * D, D);
        }
        for (int64_t s = t + 1; s < T; s++) p[s] = 0.0f;
    }
}

/* Row t of dS * scale in double, for a row where float could overflow: dP = dout.v of finite inputs can overflow
 * float (to +-inf, or NaN through inf - inf), as can its row sum or dP - rowsum, and never double. */
static void row_ds_f64(float *ds, const float *p, const float *dot_t, const float *vh, int64_t t, int64_t D,
                       double scale) {
    double rowdot = 0.0;
    for (int64_t s = 0; s <= t; s++)
        if (p[s] != 0.0f) rowdot += p[s] * dot_f64(dot_t, vh + s * D, D);
    for (int64_t s = 0; s <= t; s++)
        ds[s] = p[s] != 0.0f ? (float)(p[s] * (dot_f64(dot_t, vh + s * D, D) - rowdot) * scale) : 0.0f;
}

/* dS[t,s] = P[t,s] (dP[t,s] - sum_s' P[t,s'] dP[t,s']), dP = dout v^T; masked entries have P = 0. */
static inline void attention_backward_impl(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                           const float *k, const float *v, const float *probs, int64_t B,
                                           int64_t H, int64_t T, int64_t D, dot_fn dot, axpy_fn axpy) {
    const float scale = D > 0 ? 1.0f / sqrtf((float)D) : 1.0f;
    memset(dk, 0, sizeof(float) * (size_t)(B * H * T * D));
    memset(dv, 0, sizeof(float) * (size_t)(B * H * T * D));
#pragma omp parallel for schedule(static) if (B * H * T * T * D >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t bh = 0; bh < B * H; bh++) {
        float *ds = malloc(sizeof(float) * (size_t)(T > 0 ? T : 1));
        if (!ds) abort();
        const int64_t base = bh * T * D;
        for (int64_t t = 0; t < T; t++) {
            const float *p = probs + (bh * T + t) * T, *dot_t = dout + base + t * D, *qt = q + base + t * D;
            float *dqt = dq + base + t * D;
            float rowdot = 0.0f, big = 0.0f;
            for (int64_t s = 0; s <= t; s++) {
                if (p[s] == 0.0f) continue; /* masked (or underflowed): no dS, and its dP may be inf */
                ds[s] = dot(dot_t, v + base + s * D, D);
                rowdot += p[s] * ds[s];
                big = fabsf(ds[s]) > big ? fabsf(ds[s]) : big;
            }
            /* Below FLT_MAX / 4, P (dP - rowdot) * scale cannot overflow (P <= 1, scale <= 1); NaN fails too. */
            const int exact = !(big < FLT_MAX / 4 && fabsf(rowdot) < FLT_MAX / 4);
            if (exact) row_ds_f64(ds, p, dot_t, v + base, t, D, scale);
            for (int64_t d = 0; d < D; d++) dqt[d] = 0.0f;
            for (int64_t s = 0; s <= t; s++) {
                if (p[s] == 0.0f) continue;
                const float g = exact ? ds[s] : p[s] * (ds[s] - rowdot) * scale;
                axpy(dqt, g, k + base + s * D, D);
                axpy(dk + base + s * D, g, qt, D);
                axpy(dv + base + s * D, p[s], dot_t, D);
            }
        }
        free(ds);
    }
}

void sk_attention_forward_portable(float *out, float *probs, const float *q, const float *k, const float *v,
                                   const int32_t *doc_ids, int64_t B, int64_t H, int64_t T, int64_t D) {
    attention_forward_impl(out, probs, q, k, v, doc_ids, B, H, T, D, dot_portable, axpy_portable, sk_exp_portable);
}
void sk_attention_backward_portable(float *dq, float *dk, float *dv, const float *dout, const float *q,
                                    const float *k, const float *v, const float *probs, int64_t B, int64_t H,
                                    int64_t T, int64_t D) {
    attention_backward_impl(dq, dk, dv, dout, q, k, v, probs, B, H, T, D, dot_portable, axpy_portable);
}
#if SK_HAVE_SVE
void sk_attention_forward_sve(float *out, float *probs, const float *q, const float *k, const float *v,
                              const int32_t *doc_ids, int64_t B, int64_t H, int64_t T, int64_t D) {
    attention_forward_impl(out, probs, q, k, v, doc_ids, B, H, T, D, dot_sve, axpy_sve, sk_exp_sve);
}
void sk_attention_backward_sve(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                               const float *v, const float *probs, int64_t B, int64_t H, int64_t T, int64_t D) {
    attention_backward_impl(dq, dk, dv, dout, q, k, v, probs, B, H, T, D, dot_sve, axpy_sve);
}
#endif

void sk_attention_forward(float *out, float *probs, const float *q, const float *k, const float *v,
                          const int32_t *doc_ids, int64_t B, int64_t H, int64_t T, int64_t D) {
    SK_PICK(sk_attention_forward)(out, probs, q, k, v, doc_ids, B, H, T, D);
}
void sk_attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k,
                           const float *v, const float *probs, int64_t B, int64_t H, int64_t T, int64_t D) {
    SK_PICK(sk_attention_backward)(dq, dk, dv, dout, q, k, v, probs, B, H, T, D);
}
