/* Row-wise kernels: layernorm forward/backward, softmax, fused softmax + cross-entropy.
 * Rows are independent and split across OpenMP threads; column reductions for the layernorm parameter
 * gradients are split by column block and walk rows in order, so results do not depend on thread count.
 */
#include "internal.h"

/* ---- row primitives: each has a portable and an SVE body ----
 * The portable reductions keep 8 partial sums (a fixed order, so still deterministic) because without
 * -ffast-math a compiler may not reassociate a single running sum into vector lanes. */
#define LANES 8
/* Sums add SUM_BLOCK elements in float, then each block's total into a double: summed whole into a fixed number
 * of float accumulators, a row's error grew with its length (an eighteenth-session audit: softmax probabilities
 * 5e-5 off at V = 50,257 and 1e-3 at 2^20 on the portable path, 1.3e-4 at 262,144 with SVE at 128 bits). A
 * multiple of 4 SVE vectors at every vector length (4 x 64 floats at 2048 bits). */
#define SUM_BLOCK 256
static float row_sum_portable(const float *x, int64_t C) {
    double total = 0.0;
    for (int64_t b = 0; b < C; b += SUM_BLOCK) {
        const int64_t end = b + SUM_BLOCK < C ? b + SUM_BLOCK : C;
        float part[LANES] = {0.0f}, s = 0.0f;
        int64_t c = b;
        for (; c + LANES <= end; c += LANES)
            for (int j = 0; j < LANES; j++) part[j] += x[c + j];
        for (int j = 0; j < LANES; j++) s += part[j];
        for (; c < end; c++) s += x[c];
        total += s;
    }
    return (float)total;
}
static float row_max_portable(const float *x, int64_t C) {
    float part[LANES], m = -INFINITY;
    for (int j = 0; j < LANES; j++) part[j] = -INFINITY;
    int64_t c = 0;
    for (; c + LANES <= C; c += LANES)
        for (int j = 0; j < LANES; j++) part[j] = x[c + j] > part[j] ? x[c + j] : part[j];
    for (int j = 0; j < LANES; j++) m = part[j] > m ? part[j] : m;
    for (; c < C; c++) m = x[c] > m ? x[c] : m;
    return m;
}
/* y = exp(x - m), returns sum(y) */
static float row_expsum_portable(float *y, const float *x, float m, int64_t C) {
    for (int64_t c = 0; c < C; c++) y[c] = sk_expf(x[c] - m);
    return row_sum_portable(y, C);
}
static void row_scale_portable(float *y, float s, int64_t C) {
    for (int64_t c = 0; c < C; c++) y[c] *= s;
}

#if SK_HAVE_SVE
/* Four independent accumulators: one FADD/FMAX chain would wait on A64FX's 9-cycle latency per vector. */
static float row_max_sve(const float *x, int64_t C) {
    const int64_t vl = (int64_t)svcntw();
    const svbool_t pt = svptrue_b32();
    svfloat32_t a0 = svdup_n_f32(-INFINITY), a1 = a0, a2 = a0, a3 = a0;
    int64_t c = 0;
    for (; c + 4 * vl <= C; c += 4 * vl) {
        a0 = svmax_f32_x(pt, a0, svld1_f32(pt, x + c));
        a1 = svmax_f32_x(pt, a1, svld1_f32(pt, x + c + vl));
        a2 = svmax_f32_x(pt, a2, svld1_f32(pt, x + c + 2 * vl));
        a3 = svmax_f32_x(pt, a3, svld1_f32(pt, x + c + 3 * vl));
    }
    for (; c < C; c += vl) {
        svbool_t pg = svwhilelt_b32_s64(c, C);
        a0 = svmax_f32_m(pg, a0, svld1_f32(pg, x + c));
    }
    return svmaxv_f32(pt, svmax_f32_x(pt, svmax_f32_x(pt, a0, a1), svmax_f32_x(pt, a2, a3)));
}
/* acc + x[c...] over one predicate's lanes; with_exp: acc + (y[c...] = exp(x[c...] - m)), else y is unused. */
static inline svfloat32_t sum_step(svbool_t pg, svfloat32_t acc, float *y, const float *x, int64_t c, float m,
                                   int with_exp) {
    if (!with_exp) return svadd_f32_m(pg, acc, svld1_f32(pg, x + c));
    svfloat32_t e = sk_sv_exp(pg, svsub_n_f32_x(pg, svld1_f32(pg, x + c), m));
    svst1_f32(pg, y + c, e);
    return svadd_f32_m(pg, acc, e);
}
/* The row sum (with_exp: of y = exp(x - m), written to y) in blocks of SUM_BLOCK, as in row_sum_portable, each
 * over four accumulators (one summed a whole row into 4 lanes at 128 bits, and at V = 65537 the probabilities
 * missed the 1e-5 tolerance: a fifteenth-session audit). Inlined with a constant with_exp, so each caller gets
 * its own loop without the test. */
static inline __attribute__((always_inline)) float blocked_sum_sve(float *y, const float *x, float m, int64_t C,
                                                                   int with_exp) {
    const int64_t vl = (int64_t)svcntw();
    const svbool_t pt = svptrue_b32();
    double total = 0.0;
    for (int64_t b = 0; b < C; b += SUM_BLOCK) {
        const int64_t end = b + SUM_BLOCK < C ? b + SUM_BLOCK : C;
        svfloat32_t a0 = svdup_n_f32(0.0f), a1 = a0, a2 = a0, a3 = a0;
        int64_t c = b;
        for (; c + 4 * vl <= end; c += 4 * vl) {
            a0 = sum_step(pt, a0, y, x, c, m, with_exp);
            a1 = sum_step(pt, a1, y, x, c + vl, m, with_exp);
            a2 = sum_step(pt, a2, y, x, c + 2 * vl, m, with_exp);
            a3 = sum_step(pt, a3, y, x, c + 3 * vl, m, with_exp);
        }
        for (; c < end; c += vl) a0 = sum_step(svwhilelt_b32_s64(c, end), a0, y, x, c, m, with_exp);
        total += svaddv_f32(pt, svadd_f32_x(pt, svadd_f32_x(pt, a0, a1), svadd_f32_x(pt, a2, a3)));
    }
    return (float)total;
}
static float row_sum_sve(const float *x, int64_t C) { return blocked_sum_sve(NULL, x, 0.0f, C, 0); }
static float row_expsum_sve(float *y, const float *x, float m, int64_t C) { return blocked_sum_sve(y, x, m, C, 1); }
static void row_scale_sve(float *y, float s, int64_t C) {
    for (int64_t c = 0; c < C; c += (int64_t)svcntw()) {
        svbool_t pg = svwhilelt_b32_s64(c, C);
        svst1_f32(pg, y + c, svmul_n_f32_x(pg, svld1_f32(pg, y + c), s));
    }
}
#endif

/* Generates the portable and SVE variants of a kernel from one body written against the row primitives
 * (ROW_SUM, ROW_MAX, ROW_EXPSUM, ROW_SCALE) and a y[c] = f(c) map (ROW_MAP, auto-vectorised). */
#define ROW_VARIANTS(ret, name, params, ...)                                                          \
    ret name##_portable params {                                                                       \
        float (*ROW_SUM)(const float *, int64_t) = row_sum_portable;                                   \
        float (*ROW_MAX)(const float *, int64_t) = row_max_portable;                                   \
        float (*ROW_EXPSUM)(float *, const float *, float, int64_t) = row_expsum_portable;              \
        void (*ROW_SCALE)(float *, float, int64_t) = row_scale_portable;                               \
        (void)ROW_SUM; (void)ROW_MAX; (void)ROW_EXPSUM; (void)ROW_SCALE;                               \
        __VA_ARGS__                                                                                    \
    }                                                                                                  \
    SK_SVE_VARIANT(ret, name, params, __VA_ARGS__)

#if SK_HAVE_SVE
#define SK_SVE_VARIANT(ret, name, params, ...)                                                        \
    ret name##_sve params {                                                                            \
        float (*ROW_SUM)(const float *, int64_t) = row_sum_sve;                                        \
        float (*ROW_MAX)(const float *, int64_t) = row_max_sve;                                        \
        float (*ROW_EXPSUM)(float *, const float *, float, int64_t) = row_expsum_sve;                  \
        void (*ROW_SCALE)(float *, float, int64_t) = row_scale_sve;                                    \
        (void)ROW_SUM; (void)ROW_MAX; (void)ROW_EXPSUM; (void)ROW_SCALE;                               \
        __VA_ARGS__                                                                                    \
    }
#else
#define SK_SVE_VARIANT(ret, name, params, ...)
#endif

/* ---------------- layernorm ---------------- */
/* One row in double: for a row whose float squares or sums overflow (|x - mean| past sqrt(FLT_MAX / C), about
 * 1.8e19 / sqrt(C), or sums past FLT_MAX), where the float variance was inf, rstd 0 and the output silently the
 * bias. Mean and rstd of finite floats fit a float (rstd perhaps as a subnormal); a non-finite input gives NaN. */
static void layernorm_row_f64(float *y, float *mean, float *rstd, const float *x, const float *weight,
                              const float *bias, int64_t C, float eps) {
    double m = 0.0, var = 0.0;
    for (int64_t c = 0; c < C; c++) m += x[c];
    m /= (double)C;
    for (int64_t c = 0; c < C; c++) var += ((double)x[c] - m) * ((double)x[c] - m);
    const double s = 1.0 / sqrt(var / (double)C + eps);
    for (int64_t c = 0; c < C; c++) y[c] = (float)(((double)x[c] - m) * s * weight[c] + bias[c]);
    *mean = (float)m;
    *rstd = (float)s;
}

ROW_VARIANTS(void, sk_layernorm_forward,
             (float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
              int64_t N, int64_t C, float eps),
             {
_Pragma("omp parallel for schedule(static) if (N * C >= SK_PAR_WORK) num_threads(sk_threads())")
                 for (int64_t n = 0; n < N; n++) {
                     const float *x = inp + n * C;
                     float *y = out + n * C;
                     const float m = C > 0 ? ROW_SUM(x, C) / (float)C : 0.0f;
                     for (int64_t c = 0; c < C; c++) y[c] = (x[c] - m) * (x[c] - m);
                     const float var = C > 0 ? ROW_SUM(y, C) / (float)C : 0.0f;
                     if (!sk_finitef(var)) { /* also when m overflowed: var is then inf or NaN too */
                         layernorm_row_f64(y, mean + n, rstd + n, x, weight, bias, C, eps);
                         continue;
                     }
                     const float s = 1.0f / sqrtf(var + eps);
                     for (int64_t c = 0; c < C; c++) y[c] = (x[c] - m) * s * weight[c] + bias[c];
                     mean[n] = m;
                     rstd[n] = s;
                 }
             })

/* One row of dinp in double, for a row whose float result is not finite: (x - mean) overflows float when |x| +
 * |mean| passes FLT_MAX, and weight * dout, its row sums or their combination can overflow while dinp, scaled by
 * a tiny rstd, is finite (the float64 reference's result). A true result past FLT_MAX still rounds to inf. */
static void layernorm_backward_row_f64(float *dx, const float *dy, const float *x, const float *weight, double m,
                                       double s, int64_t C) {
    double dmean = 0.0, dnm = 0.0;
    for (int64_t c = 0; c < C; c++) {
        const double g = (double)weight[c] * dy[c];
        dmean += g;
        dnm += g * ((x[c] - m) * s);
    }
    dmean /= (double)C;
    dnm /= (double)C;
    for (int64_t c = 0; c < C; c++)
        dx[c] = (float)(((double)weight[c] * dy[c] - dmean - (x[c] - m) * s * dnm) * s);
}

/* dinp = rstd * (dnorm - mean(dnorm) - norm * mean(dnorm * norm)), dnorm = weight * dout, norm = (x - mean) * rstd
 * (formed first: dnorm * (x - mean) overflowed near |x| = FLT_MAX). Both means are ROW_SUMs: mean(dnorm * norm) was
 * one serial float sum (FADDA on SVE), latency-bound and drifting with C. A row or column whose float result is not
 * finite is redone in double; on finite rows that costs an integer test in the last pass. */
ROW_VARIANTS(void, sk_layernorm_backward,
             (float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
              const float *mean, const float *rstd, int64_t N, int64_t C),
             {
_Pragma("omp parallel for schedule(static) if (N * C >= SK_PAR_WORK) num_threads(sk_threads())")
                 for (int64_t n = 0; n < N; n++) {
                     const float *x = inp + n * C, *dy = dout + n * C;
                     float *dx = dinp + n * C;
                     const float m = mean[n], s = rstd[n];
                     for (int64_t c = 0; c < C; c++) dx[c] = weight[c] * dy[c];
                     const float dmean = C > 0 ? ROW_SUM(dx, C) / (float)C : 0.0f;
                     for (int64_t c = 0; c < C; c++) dx[c] *= (x[c] - m) * s;
                     const float dnm = C > 0 ? ROW_SUM(dx, C) / (float)C : 0.0f;
                     uint32_t bad = 0; /* an inf or NaN: integer exponent tests, vectorised, kept under -Ofast */
                     for (int64_t c = 0; c < C; c++) {
                         dx[c] = (weight[c] * dy[c] - dmean - (x[c] - m) * s * dnm) * s;
                         bad |= !sk_finitef(dx[c]);
                     }
                     if (bad) layernorm_backward_row_f64(dx, dy, x, weight, m, s, C);
                 }
                 const int64_t cb = 64;
_Pragma("omp parallel for schedule(static) if (N * C >= SK_PAR_WORK) num_threads(sk_threads())")
                 for (int64_t c0 = 0; c0 < C; c0 += cb) {
                     const int64_t c1 = sk_min64(C, c0 + cb);
                     for (int64_t c = c0; c < c1; c++) dweight[c] = dbias[c] = 0.0f;
                     for (int64_t n = 0; n < N; n++) {
                         const float *x = inp + n * C, *dy = dout + n * C, m = mean[n], s = rstd[n];
                         for (int64_t c = c0; c < c1; c++) {
                             dweight[c] += (x[c] - m) * s * dy[c];
                             dbias[c] += dy[c];
                         }
                     }
                     for (int64_t c = c0; c < c1; c++) {
                         if (sk_finitef(dweight[c]) && sk_finitef(dbias[c])) continue;
                         double dw = 0.0, db = 0.0; /* a column sum past FLT_MAX midway, or an overflowed x - mean */
                         for (int64_t n = 0; n < N; n++) {
                             dw += ((double)inp[n * C + c] - mean[n]) * rstd[n] * dout[n * C + c];
                             db += dout[n * C + c];
                         }
                         dweight[c] = (float)dw;
                         dbias[c] = (float)db;
                     }
                 }
             })

/* ---------------- softmax and cross-entropy ---------------- */
/* The softmax of a row whose maximum m is not finite, where exp(x - m) was inf - inf = NaN for the whole row: its
 * limit, as the float64 reference defines it (attention's double fallback does the same). The entries equal to m
 * share the row equally (one +inf: 1 there; k of them: 1/k each; all -inf, none above another: uniform); a NaN
 * makes the row NaN (SVE's FMAX gives m = NaN, the portable max skips NaN). Returns how many share, 0 for NaN.
 * Scalar: a finite m (every normal row) never gets here, and then the sum is in [1, C] or NaN from a NaN. */
static int64_t softmax_limit_row(float *y, const float *x, float m, int64_t C) {
    int64_t k = 0;
    int nan = 0;
    for (int64_t c = 0; c < C; c++) {
        nan |= sk_isnan(x[c]);
        k += x[c] == m;
    }
    const float p = nan ? NAN : 1.0f / (float)k;
    for (int64_t c = 0; c < C; c++) y[c] = nan || x[c] == m ? p : 0.0f;
    return nan ? 0 : k;
}

ROW_VARIANTS(void, sk_softmax_forward, (float *y, const float *x, int64_t N, int64_t C), {
_Pragma("omp parallel for schedule(static) if (N * C >= SK_PAR_WORK) num_threads(sk_threads())")
    for (int64_t n = 0; n < N; n++) {
        const float m = ROW_MAX(x + n * C, C);
        if (!sk_finitef(m)) softmax_limit_row(y + n * C, x + n * C, m, C);
        else ROW_SCALE(y + n * C, 1.0f / ROW_EXPSUM(y + n * C, x + n * C, m, C), C);
    }
})

/* loss = log(sum exp(l - max)) + (max - l[target]): no log of a rounded probability, and the log-sum is not lost
 * in rounding log-sum + max (at max = 1e8, loss 0 for two equal logits instead of log 2). A row with an infinite
 * max gets -log of the limit probability: log k on one of k entries sharing it (0 for a single +inf), +inf off
 * them; NaN with a NaN logit. */
ROW_VARIANTS(void, sk_crossentropy_forward,
             (float *losses, float *probs, const float *logits, const int32_t *targets, int64_t N, int64_t V,
              int32_t ignore_index),
             {
_Pragma("omp parallel for schedule(static) if (N * V >= SK_PAR_WORK) num_threads(sk_threads())")
                 for (int64_t n = 0; n < N; n++) {
                     const float *l = logits + n * V, m = ROW_MAX(l, V);
                     float *p = probs + n * V;
                     const int32_t t = targets[n]; /* l[t] only when t != ignore_index: it may be -1 */
                     if (!sk_finitef(m)) {
                         const int64_t k = softmax_limit_row(p, l, m, V);
                         losses[n] = t == ignore_index ? 0.0f : k == 0 ? NAN : l[t] == m ? logf((float)k) : INFINITY;
                         continue;
                     }
                     const float s = ROW_EXPSUM(p, l, m, V);
                     ROW_SCALE(p, 1.0f / s, V);
                     losses[n] = t == ignore_index ? 0.0f : logf(s) + (m - l[t]);
                 }
             })

ROW_VARIANTS(void, sk_crossentropy_backward,
             (float *dlogits, const float *probs, const int32_t *targets, int64_t N, int64_t V, float grad_scale,
              int32_t ignore_index),
             {
_Pragma("omp parallel for schedule(static) if (N * V >= SK_PAR_WORK) num_threads(sk_threads())")
                 for (int64_t n = 0; n < N; n++) {
                     float *d = dlogits + n * V;
                     const float *p = probs + n * V;
                     if (targets[n] == ignore_index) {
                         memset(d, 0, sizeof(float) * (size_t)V);
                         continue;
                     }
                     for (int64_t c = 0; c < V; c++) d[c] = p[c] * grad_scale;
                     d[targets[n]] -= grad_scale;
                 }
             })

void sk_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                          const float *bias, int64_t N, int64_t C, float eps) {
    SK_PICK(sk_layernorm_forward)(out, mean, rstd, inp, weight, bias, N, C, eps);
}
void sk_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                           const float *weight, const float *mean, const float *rstd, int64_t N, int64_t C) {
    SK_PICK(sk_layernorm_backward)(dinp, dweight, dbias, dout, inp, weight, mean, rstd, N, C);
}
void sk_softmax_forward(float *y, const float *x, int64_t N, int64_t C) { SK_PICK(sk_softmax_forward)(y, x, N, C); }
void sk_crossentropy_forward(float *losses, float *probs, const float *logits, const int32_t *targets, int64_t N,
                             int64_t V, int32_t ignore_index) {
    SK_PICK(sk_crossentropy_forward)(losses, probs, logits, targets, N, V, ignore_index);
}
void sk_crossentropy_backward(float *dlogits, const float *probs, const int32_t *targets, int64_t N, int64_t V,
                              float grad_scale, int32_t ignore_index) {
    SK_PICK(sk_crossentropy_backward)(dlogits, probs, targets, N, V, grad_scale, ignore_index);
}
