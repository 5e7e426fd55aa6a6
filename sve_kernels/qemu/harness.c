/* Correctness harness for every kernel: each implementation compiled into this binary (the portable C path,
 * and the SVE path on SVE builds) against a plain double-precision scalar reference, on random inputs with
 * awkward sizes derived from the run-time vector length (0, 1, VL-1, VL, VL+1, primes, > one cache block), and on
 * the limit cases tests/sve_kernels checks (overflow, +-inf, NaN), so each vector length sees them too.
 * Run under qemu-aarch64 at several vector lengths by run.sh; also builds and runs natively (portable only).
 * Usage: harness [quick]   -- quick trims the largest shapes. Exit status 0 only when every check passes.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "internal.h"

#if SK_HAVE_SVE
#define IMPLS(fn) {fn##_portable, fn##_sve}
#define NIMPL 2
#else
#define IMPLS(fn) {fn##_portable}
#define NIMPL 1
#endif
/* Runs the following block once per implementation of kernel fn, with IMPL bound to it. */
#define FOR_IMPL(fn)                                                                                      \
    for (__typeof__(&fn) *impls_ = (__typeof__(&fn)[NIMPL])IMPLS(fn); impls_; impls_ = NULL)             \
        for (int im = 0; im < NIMPL; im++)
#define IMPL impls_[im]
static const char *IMPL_NAME[] = {"portable", "sve"};

static long checks, failures;
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static float frand(float scale) { /* uniform in [-scale, scale), xorshift64* */
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return scale * ((float)((rng_state * 2685821657736338717ull) >> 40) / 8388608.0f - 1.0f);
}
static float *rnd(int64_t n, float scale) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    for (int64_t i = 0; i < n; i++) p[i] = frand(scale);
    return p;
}
static void *zalloc(int64_t n, size_t elem) { return calloc((size_t)(n > 0 ? n : 1), elem); }

/* |got - want| <= atol + rtol * size everywhere (inf and NaN must match exactly), size = |want|, or where huge terms
 * cancel the size of those terms (scale, not NULL): a float result is good only to a rounding of them. Reports the
 * first offender. */
static void check_scaled(const char *what, int im, const float *got, const double *want, const double *scale,
                         int64_t n, double rtol, double atol) {
    checks++;
    for (int64_t i = 0; i < n; i++) {
        if ((double)got[i] == want[i] || (isnan(got[i]) && isnan(want[i]))) continue;
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= atol + rtol * (scale ? scale[i] : fabs(want[i])))) {
            failures++;
            printf("FAIL %-22s %-8s index %lld of %lld: got %.9g want %.9g\n", what, IMPL_NAME[im], (long long)i,
                   (long long)n, (double)got[i], want[i]);
            return;
        }
    }
}
static void check(const char *what, int im, const float *got, const double *want, int64_t n, double rtol,
                  double atol) {
    check_scaled(what, im, got, want, NULL, n, rtol, atol);
}

static void test_matmul(int64_t N, int64_t C, int64_t OC) {
    float *x = rnd(N * C, 1.0f), *w = rnd(OC * C, 1.0f), *b = rnd(OC, 1.0f), *dout = rnd(N * OC, 1.0f);
    uint16_t *xh = zalloc(N * C, 2), *wh = zalloc(OC * C, 2);
    for (int64_t i = 0; i < N * C; i++) xh[i] = sk_f32_to_f16_bits(x[i]);
    for (int64_t i = 0; i < OC * C; i++) wh[i] = sk_f32_to_f16_bits(w[i]);
    double *ref = zalloc(N * OC, 8), *refh = zalloc(N * OC, 8), *rdx = zalloc(N * C, 8), *rdw = zalloc(OC * C, 8),
           *rdb = zalloc(OC, 8);
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) {
            double s = b[o], sh = b[o];
            for (int64_t c = 0; c < C; c++) {
                s += (double)x[n * C + c] * w[o * C + c];
                sh += (double)sk_f16_bits_to_f32(xh[n * C + c]) * sk_f16_bits_to_f32(wh[o * C + c]);
            }
            ref[n * OC + o] = s, refh[n * OC + o] = sh;
            rdb[o] += dout[n * OC + o];
            for (int64_t c = 0; c < C; c++) {
                rdx[n * C + c] += (double)dout[n * OC + o] * w[o * C + c];
                rdw[o * C + c] += (double)dout[n * OC + o] * x[n * C + c];
            }
        }
    float *out = zalloc(N * OC, 4), *dx = zalloc(N * C, 4), *dw = zalloc(OC * C, 4), *db = zalloc(OC, 4);
    const double tol = 2e-6 * (double)(C + N + OC + 8);
    FOR_IMPL(sk_matmul_forward) { IMPL(out, x, w, b, N, C, OC); check("matmul_forward", im, out, ref, N * OC, tol, tol); }
    FOR_IMPL(sk_matmul_forward_f16) {
        IMPL(out, xh, wh, b, N, C, OC);
        check("matmul_forward_f16", im, out, refh, N * OC, tol, tol);
    }
    FOR_IMPL(sk_matmul_backward) {
        IMPL(dx, dw, db, dout, x, w, N, C, OC);
        check("matmul_backward.dinp", im, dx, rdx, N * C, tol, tol);
        check("matmul_backward.dweight", im, dw, rdw, OC * C, tol, tol);
        check("matmul_backward.dbias", im, db, rdb, OC, tol, tol);
    }
    free(x), free(w), free(b), free(dout), free(xh), free(wh), free(ref), free(refh), free(rdx), free(rdw);
    free(rdb), free(out), free(dx), free(dw), free(db);
}

static double gelu_ref(double x) { return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); }

static void test_elementwise(int64_t n) {
    float *x = rnd(n, 6.0f), *y = rnd(n, 1.0f), *out = zalloc(n, 4);
    double *r = zalloc(n, 8);
    float *x14 = zalloc(n, 4); /* exp over [-84, 84] */
    for (int64_t i = 0; i < n; i++) x14[i] = x[i] * 14.0f, r[i] = exp((double)x14[i]);
    FOR_IMPL(sk_exp) { IMPL(out, x14, n); check("exp", im, out, r, n, 3e-7, 0); }
    for (int64_t i = 0; i < n; i++) r[i] = tanh((double)x[i]);
    FOR_IMPL(sk_tanh) { IMPL(out, x, n); check("tanh", im, out, r, n, 3e-7, 1e-30); }
    for (int64_t i = 0; i < n; i++) r[i] = gelu_ref(x[i]);
    FOR_IMPL(sk_gelu_forward) { IMPL(out, x, n); check("gelu_forward", im, out, r, n, 1e-6, 1e-7); }
    for (int64_t i = 0; i < n; i++) { /* central difference of the double reference */
        const double h = 1e-5;
        r[i] = y[i] * (gelu_ref(x[i] + h) - gelu_ref(x[i] - h)) / (2 * h);
    }
    FOR_IMPL(sk_gelu_backward) { IMPL(out, x, y, n); check("gelu_backward", im, out, r, n, 1e-5, 1e-6); }
    for (int64_t i = 0; i < n; i++) r[i] = (double)x[i] + y[i];
    FOR_IMPL(sk_residual_forward) { IMPL(out, x, y, n); check("residual_forward", im, out, r, n, 1e-7, 0); }
    for (int64_t i = 0; i < n; i++) r[i] = (double)(x[i] * 0.75f);
    FOR_IMPL(sk_scale_inplace) {
        memcpy(out, x, sizeof(float) * (size_t)n);
        IMPL(out, n, 0.75f);
        check("scale_inplace", im, out, r, n, 0, 0);
    }
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += (double)x[i] * x[i];
    FOR_IMPL(sk_sumsq) {
        float got = (float)IMPL(x, n);
        check("sumsq", im, &got, &ss, 1, 1e-7, 0);
    }
    /* AdamW */
    float *m = rnd(n, 0.1f), *v = rnd(n, 0.1f), *p = zalloc(n, 4), *mm = zalloc(n, 4), *vv = zalloc(n, 4);
    double *rm = zalloc(n, 8), *rv = zalloc(n, 8);
    for (int64_t i = 0; i < n; i++) {
        v[i] = fabsf(v[i]);
        rm[i] = 0.9 * m[i] + 0.1 * y[i];
        rv[i] = 0.95 * v[i] + 0.05 * (double)y[i] * y[i];
        r[i] = x[i] - 1e-2 * ((rm[i] / 0.19) / (sqrt(rv[i] / 0.0975) + 1e-8) + 0.1 * x[i]);
    }
    FOR_IMPL(sk_adamw_step) {
        memcpy(p, x, sizeof(float) * (size_t)n), memcpy(mm, m, sizeof(float) * (size_t)n);
        memcpy(vv, v, sizeof(float) * (size_t)n);
        IMPL(p, y, mm, vv, n, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f);
        check("adamw.param", im, p, r, n, 1e-5, 1e-6);
        check("adamw.m", im, mm, rm, n, 1e-6, 1e-7);
        check("adamw.v", im, vv, rv, n, 1e-6, 1e-7);
    }
    /* A finite gradient whose square overflows float32: v is inf and the step's adaptive part 0, as float32
     * numpy gives. SVE's square root of inf was inf * 0 = NaN, written into the parameter. */
    const float big[2] = {1e20f, -3e19f};
    const double keep[2] = {1.0 - 1e-2 * 0.1, -2.0 * (1.0 - 1e-2 * 0.1)};
    FOR_IMPL(sk_adamw_step) {
        float bp[2] = {1.0f, -2.0f}, bm[2] = {0}, bv[2] = {0};
        IMPL(bp, big, bm, bv, 2, 1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.19f, 0.0975f);
        check("adamw.overflowing_gradient", im, bp, keep, 2, 1e-6, 0);
    }
    free(x), free(y), free(out), free(r), free(x14), free(m), free(v), free(p), free(mm), free(vv), free(rm);
    free(rv);
}

/* GELU and its slope as x sigmoid(2u), from e = exp(-2|u|) <= 1: nothing overflows for a float32 x (x^3 is finite
 * in double), and +-inf are clipped to +-FLT_MAX, where the sigmoid is already exactly 0 or 1 (their limits). */
static void gelu_ref_limits(double x, double *y, double *slope) {
    const double s = 0.7978845608028654, a = 0.044715;
    const double xl = x < -FLT_MAX ? -FLT_MAX : x, xc = xl > FLT_MAX ? FLT_MAX : xl; /* NaN stays NaN */
    const double u = s * (xc + a * xc * xc * xc), e = exp(-2.0 * fabs(u));
    const double sig = (u >= 0 ? 1.0 : e) / (1.0 + e), rest = (u >= 0 ? e : 1.0) / (1.0 + e);
    *y = xl * sig;
    *slope = sig + 2.0 * xc * sig * rest * s * (1.0 + 3.0 * a * xc * xc);
}

/* Extreme finite inputs (x^3 and x^2 overflow float32 beyond ~7e12 and ~2e19), +-inf and NaN among ordinary ones:
 * GELU -> x and slope -> 1 as x -> inf, both -> 0 as x -> -inf, and dx = dy * slope stays finite. */
static void test_gelu_limits(void) {
    const float edges[] = {1e4f, 1e10f, 1e20f, 3e38f, FLT_MAX, INFINITY, 0.0f, 0.5f, 1.0f, 3.0f, 9.5f, 12.0f};
    enum { NE = sizeof edges / sizeof edges[0], N = 2 * NE + 1 };
    float x[N], *dy = rnd(N, 1.0f), out[N];
    double ry[N], rdx[N];
    for (int i = 0; i < NE; i++) x[i] = edges[i], x[NE + i] = -edges[i];
    x[N - 1] = NAN;
    for (int i = 0; i < N; i++) gelu_ref_limits(x[i], &ry[i], &rdx[i]), rdx[i] *= dy[i];
    FOR_IMPL(sk_gelu_forward) { IMPL(out, x, N); check("gelu_forward.limits", im, out, ry, N, 1e-6, 1e-7); }
    FOR_IMPL(sk_gelu_backward) { IMPL(out, x, dy, N); check("gelu_backward.limits", im, out, rdx, N, 1e-5, 1e-6); }
    free(dy);
}

/* Bitwise: tanh keeps the sign of zero and is exactly +-1 where it rounds there (|x| > 9.01) and at +-inf. */
static void test_tanh_limits(void) {
    const float x[] = {0.0f, -0.0f, 9.02f, -9.02f, 20.0f, -20.0f, FLT_MAX, -FLT_MAX, INFINITY, -INFINITY};
    enum { N = sizeof x / sizeof x[0] };
    float out[N];
    FOR_IMPL(sk_tanh) {
        IMPL(out, x, N);
        checks++;
        for (int i = 0; i < N; i++) {
            float want = x[i] == 0.0f ? x[i] : copysignf(1.0f, x[i]);
            if (sk_f32_bits(out[i]) != sk_f32_bits(want)) {
                printf("FAIL tanh.limits %s: %g -> %g want %g\n", IMPL_NAME[im], (double)x[i], (double)out[i],
                       (double)want);
                failures++;
                break;
            }
        }
    }
}

static void test_fp16(void) {
    const int64_t n = 65536;
    uint16_t *h = zalloc(n, 2), *h2 = zalloc(n, 2);
    float *f = zalloc(n, 4);
    double *r = zalloc(n, 8);
    int64_t nfinite = 0;
    for (int64_t i = 0; i < n; i++) /* every finite half value */
        if (((i >> 10) & 0x1F) != 0x1F) h[nfinite] = (uint16_t)i, r[nfinite] = sk_f16_bits_to_f32((uint16_t)i), nfinite++;
    FOR_IMPL(sk_fp16_to_fp32) {
        int bad = IMPL(f, h, nfinite);
        check("fp16_to_fp32", im, f, r, nfinite, 0, 0);
        checks++, failures += bad != 0;
        uint16_t inf = 0x7C00;
        float one;
        checks++, failures += IMPL(&one, &inf, 1) != 1;
    }
    for (int64_t i = 0; i < nfinite; i++) f[i] = sk_f16_bits_to_f32(h[i]) * (1.0f + frand(1e-3f)); /* off-grid */
    FOR_IMPL(sk_fp32_to_fp16) { /* bitwise: SVE FCVT against the portable RNE bit code */
        int bad = IMPL(h2, f, nfinite);
        checks++;
        for (int64_t i = 0; i < nfinite; i++)
            if (h2[i] != sk_f32_to_f16_bits(f[i]) && !bad) {
                printf("FAIL fp32_to_fp16 %s: %.9g -> 0x%04x want 0x%04x\n", IMPL_NAME[im], (double)f[i], h2[i],
                       sk_f32_to_f16_bits(f[i]));
                failures++;
                break;
            }
        float big[3] = {1.0f, 65520.0f, 2.0f};
        checks++, failures += IMPL(h2, big, 3) != 1;
    }
    free(h), free(h2), free(f), free(r);
}

/* Dense sweep: max error in float32 ulps of exp on [-87, 88.5] and tanh on [-12, 12] plus tiny arguments. */
static double max_ulp(const float *got, const double *want, int64_t n) {
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        float w = fabsf((float)want[i]);
        double ulp = (double)nextafterf(w, INFINITY) - (double)w, e = fabs((double)got[i] - want[i]) / ulp;
        worst = e > worst ? e : worst;
    }
    return worst;
}
static void test_ulp(double limit) {
    const int64_t n = 100003;
    float *x = zalloc(n, 4), *y = zalloc(n, 4);
    double *r = zalloc(n, 8);
    for (int64_t i = 0; i < n; i++) x[i] = -87.0f + 175.5f * (float)i / (float)(n - 1), r[i] = exp((double)x[i]);
    FOR_IMPL(sk_exp) {
        IMPL(y, x, n);
        double u = max_ulp(y, r, n);
        checks++, failures += !(u <= limit);
        printf("%s exp max %.2f ulp (limit %.1f) [%s]\n", u <= limit ? "ok" : "FAIL", u, limit, IMPL_NAME[im]);
    }
    for (int64_t i = 0; i < n; i++) {
        x[i] = i % 2 ? -12.0f + 24.0f * (float)i / (float)(n - 1) : ldexpf(1.0f + (float)i / (float)n, -(int)(i % 60));
        r[i] = tanh((double)x[i]);
    }
    FOR_IMPL(sk_tanh) {
        IMPL(y, x, n);
        double u = max_ulp(y, r, n);
        checks++, failures += !(u <= limit);
        printf("%s tanh max %.2f ulp (limit %.1f) [%s]\n", u <= limit ? "ok" : "FAIL", u, limit, IMPL_NAME[im]);
    }
    free(x), free(y), free(r);
}

#include "harness_rows.h"

int main(int argc, char **argv) {
    const int quick = argc > 1 && strcmp(argv[1], "quick") == 0;
    const int64_t vl = SK_HAVE_SVE ? sk_vector_bits() / 32 : 16;
    const int64_t ns[] = {0, 1, vl - 1, vl, vl + 1, 2 * vl + 3, 7, 13, 97, 4099};
    for (size_t i = 0; i < sizeof ns / sizeof ns[0]; i++) test_elementwise(ns[i]);
    test_gelu_limits();
    test_tanh_limits();
    test_fp16();
    test_ulp(2.0);
    test_matmul(0, 5, 3), test_matmul(4, 0, 3), test_matmul(1, 1, 1), test_matmul(vl - 1, vl + 1, 2 * vl + 3);
    test_matmul(13, 31, 97), test_matmul(9, 8 * vl + 1, 2 * vl - 1);
    if (!quick) test_matmul(11, 300, 17), test_matmul(3, 5, 1030); /* K and N beyond one cache block */
    test_rows(vl, quick);
    printf("%s sve=%d vector_bits=%d svcntb=%d threads=%d checks=%ld failures=%ld\n", failures ? "FAIL" : "PASS",
           SK_HAVE_SVE, sk_vector_bits(), sk_vector_bits() / 8, sk_max_threads(), checks, failures);
    return failures ? 1 : 0;
}
