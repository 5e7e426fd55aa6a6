/* Optimizer and mixed-precision kernels: AdamW, global sum of squares (float64, fixed chunking so the
 * result is independent of thread count), in-place scaling, fp32 <-> fp16 with a non-finite flag.
 */
#include <stdlib.h>

#include "internal.h"

#define SUMSQ_CHUNK 4096 /* partial sums per chunk, then added in chunk order */

void sk_adamw_step_portable(float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1,
                            float beta2, float eps, float weight_decay, float bc1, float bc2) {
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) {
        const float g = grad[i];
        const float mi = beta1 * m[i] + (1.0f - beta1) * g, vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] -= lr * ((mi / bc1) / (sqrtf(vi / bc2) + eps) + weight_decay * param[i]);
    }
}

static double sumsq_chunk_portable(const float *x, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

static double sumsq_chunks(const float *x, int64_t n, double (*chunk)(const float *, int64_t)) {
    const int64_t nchunks = (n + SUMSQ_CHUNK - 1) / SUMSQ_CHUNK;
    if (nchunks <= 1) return n > 0 ? chunk(x, n) : 0.0;
    double *part = malloc(sizeof(double) * (size_t)nchunks);
    if (!part) abort();
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t c = 0; c < nchunks; c++)
        part[c] = chunk(x + c * SUMSQ_CHUNK, sk_min64(SUMSQ_CHUNK, n - c * SUMSQ_CHUNK));
    double s = 0.0;
    for (int64_t c = 0; c < nchunks; c++) s += part[c];
    free(part);
    return s;
}

double sk_sumsq_portable(const float *x, int64_t n) { return sumsq_chunks(x, n, sumsq_chunk_portable); }

void sk_scale_inplace_portable(float *x, int64_t n, float s) {
#pragma omp parallel for schedule(static) if (n >= 4 * SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t i = 0; i < n; i++) x[i] *= s;
}

int sk_fp32_to_fp16_portable(uint16_t *y, const float *x, int64_t n) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = sk_f32_to_f16_bits(x[i]);
        bad |= (y[i] & 0x7C00u) == 0x7C00u;
    }
    return bad;
}

int sk_fp16_to_fp32_portable(float *y, const uint16_t *x, int64_t n) {
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = sk_f16_bits_to_f32(x[i]);
        bad |= (x[i] & 0x7C00u) == 0x7C00u;
    }
    return bad;
}

#if SK_HAVE_SVE
void sk_adamw_step_sve(float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1,
                       float beta2, float eps, float weight_decay, float bc1, float bc2) {
    const int64_t vl = (int64_t)svcntw();
    const float ib1 = 1.0f / bc1, ib2 = 1.0f / bc2;
#pragma omp parallel for schedule(static) if (n >= SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t c = 0; c < n; c += 64 * vl) {
        const int64_t end = sk_min64(n, c + 64 * vl);
        for (int64_t i = c; i < end; i += vl) {
            svbool_t pg = svwhilelt_b32_s64(i, end);
            svfloat32_t g = svld1_f32(pg, grad + i), p = svld1_f32(pg, param + i);
            svfloat32_t mi = svmla_n_f32_x(pg, svmul_n_f32_x(pg, svld1_f32(pg, m + i), beta1), g, 1.0f - beta1);
            svfloat32_t vi = svmla_n_f32_x(pg, svmul_n_f32_x(pg, svld1_f32(pg, v + i), beta2),
                                           svmul_f32_x(pg, g, g), 1.0f - beta2);
            svst1_f32(pg, m + i, mi);
            svst1_f32(pg, v + i, vi);
            svfloat32_t den = svadd_n_f32_x(pg, sk_sv_sqrt(pg, svmul_n_f32_x(pg, vi, ib2)), eps);
            svfloat32_t upd = svmul_f32_x(pg, svmul_n_f32_x(pg, mi, ib1), sk_sv_recip(pg, den));
            upd = svmla_n_f32_x(pg, upd, p, weight_decay);
            svst1_f32(pg, param + i, svmls_n_f32_x(pg, p, upd, lr));
        }
    }
}

/* float64 accumulate: load each float into a 64-bit lane (ld1w .d), widen with FCVT, FMLA in double;
 * four accumulators so the loop is not bound by the FMLA latency. */
static inline svfloat64_t sumsq_step(svbool_t pg, svfloat64_t acc, const float *x) {
    svfloat64_t d = svcvt_f64_f32_x(pg, svreinterpret_f32_u64(svld1uw_u64(pg, (const uint32_t *)x)));
    return svmla_f64_m(pg, acc, d, d);
}
static double sumsq_chunk_sve(const float *x, int64_t n) {
    const int64_t vd = (int64_t)svcntd();
    const svbool_t pt = svptrue_b64();
    svfloat64_t a0 = svdup_n_f64(0.0), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 4 * vd <= n; i += 4 * vd) {
        a0 = sumsq_step(pt, a0, x + i);
        a1 = sumsq_step(pt, a1, x + i + vd);
        a2 = sumsq_step(pt, a2, x + i + 2 * vd);
        a3 = sumsq_step(pt, a3, x + i + 3 * vd);
    }
    for (; i < n; i += vd) a0 = sumsq_step(svwhilelt_b64_s64(i, n), a0, x + i);
    return svaddv_f64(pt, svadd_f64_x(pt, svadd_f64_x(pt, a0, a1), svadd_f64_x(pt, a2, a3)));
}
double sk_sumsq_sve(const float *x, int64_t n) { return sumsq_chunks(x, n, sumsq_chunk_sve); }

void sk_scale_inplace_sve(float *x, int64_t n, float s) {
    const int64_t vl = (int64_t)svcntw();
#pragma omp parallel for schedule(static) if (n >= 4 * SK_PAR_WORK) num_threads(sk_threads())
    for (int64_t c = 0; c < n; c += 64 * vl) {
        const int64_t end = sk_min64(n, c + 64 * vl);
        for (int64_t i = c; i < end; i += vl) {
            svbool_t pg = svwhilelt_b32_s64(i, end);
            svst1_f32(pg, x + i, svmul_n_f32_x(pg, svld1_f32(pg, x + i), s));
        }
    }
}

/* FCVT writes each half into the low 16 bits of its 32-bit lane; ST1H stores those low halves. */
int sk_fp32_to_fp16_sve(uint16_t *y, const float *x, int64_t n) {
    svbool_t bad = svpfalse_b();
    for (int64_t i = 0; i < n; i += (int64_t)svcntw()) {
        svbool_t pg = svwhilelt_b32_s64(i, n);
        svfloat16_t h = svcvt_f16_f32_x(pg, svld1_f32(pg, x + i));
        svuint32_t bits = svand_n_u32_x(pg, svreinterpret_u32_f16(h), 0xFFFFu);
        svst1h_u32(pg, y + i, bits);
        bad = svorr_b_z(svptrue_b32(), bad, svcmpeq_n_u32(pg, svand_n_u32_x(pg, bits, 0x7C00u), 0x7C00u));
    }
    return svptest_any(svptrue_b32(), bad);
}

int sk_fp16_to_fp32_sve(float *y, const uint16_t *x, int64_t n) {
    svbool_t bad = svpfalse_b();
    for (int64_t i = 0; i < n; i += (int64_t)svcntw()) {
        svbool_t pg = svwhilelt_b32_s64(i, n);
        svuint32_t bits = svld1uh_u32(pg, x + i);
        svst1_f32(pg, y + i, svcvt_f32_f16_x(pg, svreinterpret_f16_u32(bits)));
        bad = svorr_b_z(svptrue_b32(), bad, svcmpeq_n_u32(pg, svand_n_u32_x(pg, bits, 0x7C00u), 0x7C00u));
    }
    return svptest_any(svptrue_b32(), bad);
}
#endif

void sk_adamw_step(float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1,
                   float beta2, float eps, float weight_decay, float bc1, float bc2) {
    SK_PICK(sk_adamw_step)(param, grad, m, v, n, lr, beta1, beta2, eps, weight_decay, bc1, bc2);
}
double sk_sumsq(const float *x, int64_t n) { return SK_PICK(sk_sumsq)(x, n); }
void sk_scale_inplace(float *x, int64_t n, float s) { SK_PICK(sk_scale_inplace)(x, n, s); }
int sk_fp32_to_fp16(uint16_t *y, const float *x, int64_t n) { return SK_PICK(sk_fp32_to_fp16)(y, x, n); }
int sk_fp16_to_fp32(float *y, const uint16_t *x, int64_t n) { return SK_PICK(sk_fp16_to_fp32)(y, x, n); }

int sk_has_sve(void) { return SK_HAVE_SVE; }
int sk_vector_bits(void) {
#if SK_HAVE_SVE
    return (int)svcntb() * 8;
#else
    return 0;
#endif
}
#ifdef _OPENMP
int sk_thread_count;
#endif
void sk_set_threads(int n) {
#ifdef _OPENMP
    __atomic_store_n(&sk_thread_count, n > 0 ? n : 1, __ATOMIC_RELAXED);
#else
    (void)n;
#endif
}
int sk_max_threads(void) {
#ifdef _OPENMP
    return sk_threads();
#else
    return 1;
#endif
}
