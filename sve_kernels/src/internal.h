/* Internal helpers shared by the kernel files: vector math (exp, tanh) in scalar and SVE form, IEEE
 * binary16 conversion, OpenMP thresholds. Scalar exp/tanh use the same range reduction and polynomials
 * as the SVE versions, so the two paths agree to a few ULP and both stay correct under -O3.
 * Non-finite checks use integer bit tests so they survive -ffast-math (-Ofast) builds.
 */
#ifndef SVE_KERNELS_INTERNAL_H
#define SVE_KERNELS_INTERNAL_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels.h"

#if SK_HAVE_SVE
#include <arm_sve.h>
#endif
#ifdef _OPENMP
#include <omp.h>
/* The count sk_set_threads chose, for every calling thread (omp_set_num_threads sets the calling thread's
 * count only: kernels called from another thread ran with OpenMP's default); 0 until it is called. */
extern int sk_thread_count;
static inline int sk_threads(void) {
    const int n = __atomic_load_n(&sk_thread_count, __ATOMIC_RELAXED);
    return n > 0 ? n : omp_get_max_threads();
}
#endif

/* Run a loop in parallel only when it does at least this many flops/elements: a parallel region costs
 * microseconds (much more when cores are oversubscribed), so small trainer tensors stay serial. */
#define SK_PAR_WORK ((int64_t)1 << 16)

#define SK_LOG2E 1.44269504088896341f
#define SK_LN2_HI 0.693359375f
#define SK_LN2_LO (-2.12194440e-4f)
/* exp(r) = 1 + r + r^2 * P(r) on |r| <= ln2/2 (minimax coefficients, Cephes expf). */
#define SK_EXP_P0 1.9875691500e-4f
#define SK_EXP_P1 1.3981999507e-3f
#define SK_EXP_P2 8.3334519073e-3f
#define SK_EXP_P3 4.1665795894e-2f
#define SK_EXP_P4 1.6666665459e-1f
#define SK_EXP_P5 5.0000001201e-1f
/* tanh(x) = x + x^3 * Q(x^2) on |x| < 0.625 (Cephes tanhf), with x's sign (x + x^3 Q gave +0 for -0);
 * 1 - 2 / (exp(2|x|) + 1) beyond, |x| clamped at SK_TANH_XMAX: past 9.01 tanh rounds to 1, and the old clamp
 * at 9 gave 0.99999994 for every larger x and for inf. */
#define SK_TANH_Q0 (-5.70498872745e-3f)
#define SK_TANH_Q1 2.06390887954e-2f
#define SK_TANH_Q2 (-5.37397155531e-2f)
#define SK_TANH_Q3 1.33314422036e-1f
#define SK_TANH_Q4 (-3.33332819422e-1f)
#define SK_TANH_SMALL 0.625f
#define SK_TANH_XMAX 10.0f
#define SK_EXP_MIN (-104.0f) /* below: result rounds to 0 */
#define SK_EXP_MAX 88.8f     /* above: result is +inf */
#define SK_GELU_S 0.7978845608028654f /* sqrt(2/pi) */
#define SK_GELU_A 0.044715f
/* The GELU kernels evaluate at x clamped to +-SK_GELU_XMAX, where |2u| = 80: exp needs no clamp of its own, and
 * exp(-2u) and its reciprocal stay finite and normal. Further out x^3, x^2 and 2x overflow float32 for large |x| and
 * would give nan or inf, while the results at the bound already are the limits: x and slope 1 above; about -2e-34
 * and -4e-33 (for -0 and 0) below. */
#define SK_GELU_XMAX 9.67f

static inline float sk_bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline uint32_t sk_f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}
static inline int sk_finitef(float f) { return (sk_f32_bits(f) & 0x7F800000u) != 0x7F800000u; }
static inline uint64_t sk_f64_bits(double d) {
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}
static inline int sk_finite(double d) { return (sk_f64_bits(d) & 0x7FF0000000000000u) != 0x7FF0000000000000u; }
static inline int sk_isnan(double d) { return (sk_f64_bits(d) << 1) > (0x7FF0000000000000u << 1); }

/* exp by n = round(x log2 e), r = x - n ln2 (two-part ln2), polynomial, scale by 2^n in two halves so
 * 2^n never leaves the normal range (n in [-150, 128]). _in_range: for x in [SK_EXP_MIN, SK_EXP_MAX] (or NaN). */
static inline float sk_expf_in_range(float x) {
    float z = x * SK_LOG2E;
    int32_t n = (int32_t)(z + (z >= 0.0f ? 0.5f : -0.5f));
    float fn = (float)n;
    float r = x - fn * SK_LN2_HI - fn * SK_LN2_LO;
    float p = SK_EXP_P0;
    p = p * r + SK_EXP_P1;
    p = p * r + SK_EXP_P2;
    p = p * r + SK_EXP_P3;
    p = p * r + SK_EXP_P4;
    p = p * r + SK_EXP_P5;
    p = p * r * r + r + 1.0f;
    int32_t n1 = n >> 1, n2 = n - n1;
    return p * sk_bits_f32((uint32_t)(n1 + 127) << 23) * sk_bits_f32((uint32_t)(n2 + 127) << 23);
}
static inline float sk_expf(float x) {
    x = x < SK_EXP_MIN ? SK_EXP_MIN : x;
    return sk_expf_in_range(x > SK_EXP_MAX ? SK_EXP_MAX : x);
}

static inline float sk_tanhf(float x) {
    float ax = fabsf(x);
    float z = x * x;
    float q = SK_TANH_Q0;
    q = q * z + SK_TANH_Q1;
    q = q * z + SK_TANH_Q2;
    q = q * z + SK_TANH_Q3;
    q = q * z + SK_TANH_Q4;
    float small = copysignf(x + x * z * q, x);
    float big = 1.0f - 2.0f / (sk_expf(2.0f * (ax > SK_TANH_XMAX ? SK_TANH_XMAX : ax)) + 1.0f); /* NaN stays NaN */
    big = x < 0.0f ? -big : big;
    return ax < SK_TANH_SMALL ? small : big;
}

#if SK_HAVE_SVE
/* 1/x and sqrt(x) without FDIV/FSQRT, which A64FX does not pipeline: estimate (8 bits) + two Newton steps
 * (FRECPS / FRSQRTS) give ~1 ulp. sk_sv_sqrt maps 0 to 0 and +inf to +inf (x * rsqrt(x) would give 0 * inf
 * and inf * 0: AdamW wrote NaN into a parameter whose gradient's square overflowed). */
static inline svfloat32_t sk_sv_recip(svbool_t pg, svfloat32_t x) {
    svfloat32_t r = svrecpe_f32(x);
    r = svmul_f32_x(pg, r, svrecps_f32(x, r));
    return svmul_f32_x(pg, r, svrecps_f32(x, r));
}
static inline svfloat32_t sk_sv_sqrt(svbool_t pg, svfloat32_t x) {
    svfloat32_t r = svrsqrte_f32(x);
    r = svmul_f32_x(pg, r, svrsqrts_f32(svmul_f32_x(pg, x, r), r));
    r = svmul_f32_x(pg, r, svrsqrts_f32(svmul_f32_x(pg, x, r), r));
    svbool_t exact = svorr_b_z(pg, svcmpeq_n_f32(pg, x, 0.0f), svcmpeq_n_f32(pg, x, INFINITY)); /* inf * 0 */
    return svsel_f32(exact, x, svmul_f32_x(pg, x, r));
}

static inline svfloat32_t sk_sv_exp_in_range(svbool_t pg, svfloat32_t x) {
    svfloat32_t fn = svrintn_f32_x(pg, svmul_n_f32_x(pg, x, SK_LOG2E));
    svfloat32_t r = svmls_n_f32_x(pg, x, fn, SK_LN2_HI); /* x - fn * ln2_hi */
    r = svmls_n_f32_x(pg, r, fn, SK_LN2_LO);
    svfloat32_t p = svdup_n_f32(SK_EXP_P0);
    p = svmad_n_f32_x(pg, p, r, SK_EXP_P1); /* p * r + c */
    p = svmad_n_f32_x(pg, p, r, SK_EXP_P2);
    p = svmad_n_f32_x(pg, p, r, SK_EXP_P3);
    p = svmad_n_f32_x(pg, p, r, SK_EXP_P4);
    p = svmad_n_f32_x(pg, p, r, SK_EXP_P5);
    svfloat32_t r2 = svmul_f32_x(pg, r, r);
    p = svmla_f32_x(pg, svadd_n_f32_x(pg, r, 1.0f), p, r2); /* 1 + r + p r^2 */
    return svscale_f32_x(pg, p, svcvt_s32_f32_x(pg, fn));
}
static inline svfloat32_t sk_sv_exp(svbool_t pg, svfloat32_t x) {
    return sk_sv_exp_in_range(pg, svmin_n_f32_x(pg, svmax_n_f32_x(pg, x, SK_EXP_MIN), SK_EXP_MAX));
}

static inline svfloat32_t sk_sv_tanh(svbool_t pg, svfloat32_t x) {
    svfloat32_t ax = svabs_f32_x(pg, x);
    svfloat32_t z = svmul_f32_x(pg, x, x);
    svfloat32_t q = svdup_n_f32(SK_TANH_Q0);
    q = svmad_n_f32_x(pg, q, z, SK_TANH_Q1);
    q = svmad_n_f32_x(pg, q, z, SK_TANH_Q2);
    q = svmad_n_f32_x(pg, q, z, SK_TANH_Q3);
    q = svmad_n_f32_x(pg, q, z, SK_TANH_Q4);
    svfloat32_t small = svmla_f32_x(pg, x, svmul_f32_x(pg, x, z), q); /* x's sign but for -0: OR it back */
    small = svreinterpret_f32_u32(svorr_u32_x(pg, svreinterpret_u32_f32(small),
                                              svand_n_u32_x(pg, svreinterpret_u32_f32(x), 0x80000000u)));
    svfloat32_t e = sk_sv_exp(pg, svmul_n_f32_x(pg, svmin_n_f32_x(pg, ax, SK_TANH_XMAX), 2.0f));
    svfloat32_t big = svsubr_n_f32_x(pg, svmul_n_f32_x(pg, sk_sv_recip(pg, svadd_n_f32_x(pg, e, 1.0f)), 2.0f), 1.0f);
    svbool_t neg = svcmplt_n_f32(pg, x, 0.0f);
    big = svneg_f32_m(big, neg, big);
    return svsel_f32(svcmplt_n_f32(pg, ax, SK_TANH_SMALL), small, big);
}
#endif

/* IEEE binary16 <-> binary32 with round-to-nearest-even, subnormals, inf and NaN (portable reference). */
static inline uint16_t sk_f32_to_f16_bits(float f) {
    uint32_t x = sk_f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u, ax = x & 0x7FFFFFFFu;
    if (ax > 0x7F800000u) return (uint16_t)(sign | 0x7E00u | ((ax >> 13) & 0x3FFu)); /* NaN stays NaN */
    if (ax >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u);                         /* >= 65520 -> inf */
    if (ax < 0x38800000u) {                                                            /* half subnormal */
        uint32_t e = ax >> 23, m = (ax & 0x7FFFFFu) | 0x800000u, shift = 126u - e;
        if (e == 0 || shift > 24u) return (uint16_t)sign;
        uint32_t h = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
        if (rem > half || (rem == half && (h & 1u))) h++;
        return (uint16_t)(sign | h);
    }
    uint32_t h = (ax >> 13) - (112u << 10), rem = ax & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) h++;
    return (uint16_t)(sign | h);
}

static inline float sk_f16_bits_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1Fu, m = h & 0x3FFu;
    if (e == 0x1Fu) return sk_bits_f32(sign | 0x7F800000u | (m << 13));
    if (e == 0) return sk_bits_f32(sign | sk_f32_bits((float)m * 5.9604644775390625e-8f)); /* m * 2^-24 */
    return sk_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

/* The implementation a public kernel dispatches to. */
#if SK_HAVE_SVE
#define SK_PICK(name) name##_sve
#else
#define SK_PICK(name) name##_portable
#endif

static inline int64_t sk_min64(int64_t a, int64_t b) { return a < b ? a : b; }

#endif
