/* Element-wise and row-wise kernels: exp, tanh, GELU (tanh form), residual add, layernorm, embedding.
 * SVE loops are vector-length agnostic: svwhilelt predicates cover the tail, svcntw() strides.
 */
#include "internal.h"

/* ---------------- exp / tanh / gelu / residual ---------------- */
void sk_exp_portable(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) y[i] = sk_expf(x[i]);
}
void sk_tanh_portable(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) y[i] = sk_tanhf(x[i]);
}
/* GELU, tanh form, evaluated as x * sigmoid(2u) because 1 + tanh(u) = 2 / (1 + exp(-2u)): the same function
 * without the cancellation of 1 + tanh(u) near -1 (which costs ~1e-7 absolute accuracy for x < -3).
 * u is evaluated at x clamped to +-SK_GELU_XMAX (see internal.h), keeping NaN; the forward multiplies by x clamped
 * only from below, so large x gives x (inf for inf). */
static inline float gelu_lo(float x) { return x < -SK_GELU_XMAX ? -SK_GELU_XMAX : x; }
static inline float gelu_hi(float x) { return x > SK_GELU_XMAX ? SK_GELU_XMAX : x; }
static inline float gelu_u(float x) { return SK_GELU_S * (x + SK_GELU_A * x * x * x); }
static inline float gelu_e(float x) { return sk_expf_in_range(-2.0f * gelu_u(x)); } /* exp(-2u), |x| <= XMAX */
void sk_gelu_forward_portable(float *y, const float *x, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) {
        const float xl = gelu_lo(x[i]);
        y[i] = xl / (1.0f + gelu_e(gelu_hi(xl)));
    }
}
/* d/dx [x sigma(2u)] = sigma + 2 x sigma (1 - sigma) du/dx, du/dx = s (1 + 3 a x^2), 1 - sigma = e / (1 + e).
 * The factor 2 goes into du2 = 2 du/dx: exact, so the same result with one multiply fewer. */
void sk_gelu_backward_portable(float *dx, const float *x, const float *dy, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) {
        const float xi = gelu_hi(gelu_lo(x[i])), e = gelu_e(xi), sig = 1.0f / (1.0f + e);
        const float du2 = SK_GELU_S * (2.0f + 6.0f * SK_GELU_A * xi * xi);
        dx[i] = dy[i] * (sig + xi * sig * (e * sig) * du2);
    }
}
void sk_residual_forward_portable(float *out, const float *a, const float *b, int64_t n) {
#pragma omp parallel for schedule(static) if (n >= 4 * SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

#if SK_HAVE_SVE
/* Vector loop skeleton: the body (variadic) sees pg (active lanes) and i (first element). Chunked for OpenMP. */
#define SK_SV_LOOP(n, par, ...)                                                     \
    do {                                                                             \
        const int64_t vl_ = (int64_t)svcntw(), chunk_ = 64 * vl_;                    \
        const int par_ = (par);                                                      \
        _Pragma("omp parallel for schedule(static) if (par_) num_threads(sk_threads())") \
        for (int64_t c_ = 0; c_ < (n); c_ += chunk_) {                               \
            const int64_t end_ = sk_min64((n), c_ + chunk_);                         \
            for (int64_t i = c_; i < end_; i += vl_) {                               \
                svbool_t pg = svwhilelt_b32_s64(i, end_);                            \
                __VA_ARGS__                                                  \
            }                                                                        \
        }                                                                            \
    } while (0)

void sk_exp_sve(float *y, const float *x, int64_t n) {
    SK_SV_LOOP(n, n >= SK_PAR_WORK, svst1_f32(pg, y + i, sk_sv_exp(pg, svld1_f32(pg, x + i)));); }
void sk_tanh_sve(float *y, const float *x, int64_t n) {
    SK_SV_LOOP(n, n >= SK_PAR_WORK, svst1_f32(pg, y + i, sk_sv_tanh(pg, svld1_f32(pg, x + i)));); }
/* exp(-2u) and x^2 for |x| <= XMAX; callers clamp x as the portable GELU does (FMAX/FMIN keep NaN) */
static inline svfloat32_t sv_gelu_e(svbool_t pg, svfloat32_t xv, svfloat32_t *x2) {
    *x2 = svmul_f32_x(pg, xv, xv);
    svfloat32_t u = svmul_n_f32_x(pg, svmla_f32_x(pg, xv, svmul_n_f32_x(pg, *x2, SK_GELU_A), xv), SK_GELU_S);
    return sk_sv_exp_in_range(pg, svmul_n_f32_x(pg, u, -2.0f));
}
void sk_gelu_forward_sve(float *y, const float *x, int64_t n) {
    SK_SV_LOOP(n, n >= SK_PAR_WORK, {
        svfloat32_t xl = svmax_n_f32_x(pg, svld1_f32(pg, x + i), -SK_GELU_XMAX), x2;
        svfloat32_t e = sv_gelu_e(pg, svmin_n_f32_x(pg, xl, SK_GELU_XMAX), &x2);
        svst1_f32(pg, y + i, svmul_f32_x(pg, xl, sk_sv_recip(pg, svadd_n_f32_x(pg, e, 1.0f))));
    });
}
void sk_gelu_backward_sve(float *dx, const float *x, const float *dy, int64_t n) {
    SK_SV_LOOP(n, n >= SK_PAR_WORK, {
        svfloat32_t xv = svmin_n_f32_x(pg, svmax_n_f32_x(pg, svld1_f32(pg, x + i), -SK_GELU_XMAX), SK_GELU_XMAX), x2;
        svfloat32_t e = sv_gelu_e(pg, xv, &x2);
        svfloat32_t sig = sk_sv_recip(pg, svadd_n_f32_x(pg, e, 1.0f));
        svfloat32_t du2 = svmul_n_f32_x(pg, svmad_n_f32_x(pg, x2, svdup_n_f32(6.0f * SK_GELU_A), 2.0f), SK_GELU_S);
        svfloat32_t g = svmul_f32_x(pg, svmul_f32_x(pg, xv, sig), svmul_f32_x(pg, e, sig));
        g = svmla_f32_x(pg, sig, g, du2); /* sig + x sig (1 - sig) du2 */
        svst1_f32(pg, dx + i, svmul_f32_x(pg, g, svld1_f32(pg, dy + i)));
    });
}
void sk_residual_forward_sve(float *out, const float *a, const float *b, int64_t n) {
    SK_SV_LOOP(n, n >= 4 * SK_PAR_WORK,
               svst1_f32(pg, out + i, svadd_f32_x(pg, svld1_f32(pg, a + i), svld1_f32(pg, b + i))););
}
#endif

void sk_exp(float *y, const float *x, int64_t n) { SK_PICK(sk_exp)(y, x, n); }
void sk_tanh(float *y, const float *x, int64_t n) { SK_PICK(sk_tanh)(y, x, n); }
void sk_gelu_forward(float *y, const float *x, int64_t n) { SK_PICK(sk_gelu_forward)(y, x, n); }
void sk_gelu_backward(float *dx, const float *x, const float *dy, int64_t n) {
    SK_PICK(sk_gelu_backward)(dx, x, dy, n);
}
void sk_residual_forward(float *out, const float *a, const float *b, int64_t n) {
    SK_PICK(sk_residual_forward)(out, a, b, n);
}

/* ---------------- embedding ---------------- */
static void embedding_forward_impl(float *out, const int32_t *ids, const float *table, int64_t N, int64_t C) {
#pragma omp parallel for schedule(static) if (N * C >= 4 * SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t n = 0; n < N; n++) memcpy(out + n * C, table + (int64_t)ids[n] * C, sizeof(float) * (size_t)C);
}
void sk_embedding_forward_portable(float *out, const int32_t *ids, const float *table, int64_t N, int64_t C) {
    embedding_forward_impl(out, ids, table, N, C);
}

/* Scatter-add: threads own column ranges and walk the rows in order, so repeated ids add deterministically. */
void sk_embedding_backward_portable(float *dtable, const int32_t *ids, const float *dout, int64_t N, int64_t C) {
    const int64_t cb = 64;
#pragma omp parallel for schedule(static) if (N * C >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t c0 = 0; c0 < C; c0 += cb) {
        const int64_t c1 = sk_min64(C, c0 + cb);
        for (int64_t n = 0; n < N; n++) {
            float *dst = dtable + (int64_t)ids[n] * C;
            const float *src = dout + n * C;
            for (int64_t c = c0; c < c1; c++) dst[c] += src[c];
        }
    }
}

#if SK_HAVE_SVE
void sk_embedding_forward_sve(float *out, const int32_t *ids, const float *table, int64_t N, int64_t C) {
    embedding_forward_impl(out, ids, table, N, C); /* a row copy: memcpy is already vectorised */
}
void sk_embedding_backward_sve(float *dtable, const int32_t *ids, const float *dout, int64_t N, int64_t C) {
    const int64_t vl = (int64_t)svcntw(), cb = 16 * vl;
#pragma omp parallel for schedule(static) if (N * C >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t c0 = 0; c0 < C; c0 += cb) {
        const int64_t c1 = sk_min64(C, c0 + cb);
        for (int64_t n = 0; n < N; n++) {
            float *dst = dtable + (int64_t)ids[n] * C;
            const float *src = dout + n * C;
            for (int64_t c = c0; c < c1; c += vl) {
                svbool_t pg = svwhilelt_b32_s64(c, c1);
                svst1_f32(pg, dst + c, svadd_f32_x(pg, svld1_f32(pg, dst + c), svld1_f32(pg, src + c)));
            }
        }
    }
}
#endif

void sk_embedding_forward(float *out, const int32_t *ids, const float *table, int64_t N, int64_t C) {
    SK_PICK(sk_embedding_forward)(out, ids, table, N, C);
}
void sk_embedding_backward(float *dtable, const int32_t *ids, const float *dout, int64_t N, int64_t C) {
    SK_PICK(sk_embedding_backward)(dtable, ids, dout, N, C);
}
