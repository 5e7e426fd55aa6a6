/* Matrix multiplication: one blocked GEMM driver (C += A * B with arbitrary strides for A and B, so the
 * forward product and both backward products share it) and two register-blocked micro-kernels:
 * SVE (MR x 2 vectors, the BLIS armsve shape with unindexed FMLA on broadcast A) and portable C.
 * A and B are packed per cache block into contiguous panels; fp16 operands are converted while packing.
 * Each C tile is owned by one thread and accumulated over K in a fixed order, so results are bitwise
 * independent of the thread count.
 */
#include <stdlib.h>

#include "internal.h"

#define KC 256          /* K block: an A panel (KC x MR) plus a B panel (KC x NR) stay in L1 */
#define NC 1024         /* N block: a packed B block (KC x NC floats = 1 MiB) stays in L2 */
#define MR_SVE 10       /* rows per SVE micro-tile: 10 x 2 accumulators = 20 of the 32 Z registers; 20 FMLA
                           over 2 pipes take 10 cycles, covering A64FX's 9-cycle FMLA latency */
#define MR_PORT 6       /* portable micro-tile 6 x 8: 12 SSE/NEON accumulators (v0..v5 below) */
#define NR_PORT 8

typedef struct {
    const void *p;
    int64_t rs, cs; /* element (i, j) lives at p[i * rs + j * cs] */
    int f16;        /* 1: IEEE binary16 storage */
} operand;

typedef void (*ukernel_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t mr,
                           int64_t nr);

static inline float load_elem(const operand *op, int64_t i, int64_t j, int hw16) {
    int64_t off = i * op->rs + j * op->cs;
    if (!op->f16) return ((const float *)op->p)[off];
    uint16_t bits = ((const uint16_t *)op->p)[off];
#if SK_HAVE_SVE
    if (hw16) {
        __fp16 h;
        memcpy(&h, &bits, sizeof h);
        return (float)h;
    }
#endif
    (void)hw16;
    return sk_f16_bits_to_f32(bits);
}

/* Pack rows [i0, i0+m) x cols [k0, k0+kc) of A into panels of `mr` rows: buf[panel][k][ii], zero padded. */
static void pack_a(float *buf, const operand *a, int64_t i0, int64_t m, int64_t k0, int64_t kc, int64_t mr,
                   int hw16) {
    for (int64_t ip = 0; ip < m; ip += mr) {
        float *dst = buf + ip * kc;
        int64_t rows = sk_min64(mr, m - ip);
        if (a->cs == 1 && !a->f16) { /* rows contiguous in k: walk each row once */
            for (int64_t ii = 0; ii < rows; ii++) {
                const float *src = (const float *)a->p + (i0 + ip + ii) * a->rs + k0;
                for (int64_t k = 0; k < kc; k++) dst[k * mr + ii] = src[k];
            }
        } else {
            for (int64_t k = 0; k < kc; k++)
                for (int64_t ii = 0; ii < rows; ii++) dst[k * mr + ii] = load_elem(a, i0 + ip + ii, k0 + k, hw16);
        }
        for (int64_t ii = rows; ii < mr; ii++)
            for (int64_t k = 0; k < kc; k++) dst[k * mr + ii] = 0.0f;
    }
}

/* Pack rows [k0, k0+kc) x cols [j0, j0+n) of B into panels of `nr` columns: buf[panel][k][jj]. */
static void pack_b_panel(float *dst, const operand *b, int64_t k0, int64_t kc, int64_t j0, int64_t cols,
                         int64_t nr, int hw16) {
    if (b->cs == 1 && !b->f16) {
        for (int64_t k = 0; k < kc; k++) {
            const float *src = (const float *)b->p + (k0 + k) * b->rs + j0;
            for (int64_t jj = 0; jj < cols; jj++) dst[k * nr + jj] = src[jj];
            for (int64_t jj = cols; jj < nr; jj++) dst[k * nr + jj] = 0.0f;
        }
        return;
    }
    for (int64_t jj = 0; jj < nr; jj++)
        for (int64_t k = 0; k < kc; k++) dst[k * nr + jj] = jj < cols ? load_elem(b, k0 + k, j0 + jj, hw16) : 0.0f;
}

/* Portable micro-kernel. With GCC/Clang the 8-wide rows are written as generic vectors (two 128-bit
 * registers on SSE/NEON), because the auto-vectoriser otherwise vectorises along k with shuffles; any other
 * compiler gets the plain loop. */
#if defined(__GNUC__)
typedef float sk_v8f __attribute__((vector_size(NR_PORT * sizeof(float))));
#endif
static void ukernel_portable(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t mr,
                             int64_t nr) {
    float acc[MR_PORT][NR_PORT];
#if defined(__GNUC__)
    /* named accumulators (an array of vectors would live in memory) */
    sk_v8f v0 = {0}, v1 = {0}, v2 = {0}, v3 = {0}, v4 = {0}, v5 = {0};
    for (int64_t k = 0; k < kc; k++, a += MR_PORT, b += NR_PORT) {
        sk_v8f bk;
        memcpy(&bk, b, sizeof bk);
        v0 += a[0] * bk, v1 += a[1] * bk, v2 += a[2] * bk, v3 += a[3] * bk, v4 += a[4] * bk, v5 += a[5] * bk;
    }
    memcpy(acc[0], &v0, sizeof v0), memcpy(acc[1], &v1, sizeof v1), memcpy(acc[2], &v2, sizeof v2);
    memcpy(acc[3], &v3, sizeof v3), memcpy(acc[4], &v4, sizeof v4), memcpy(acc[5], &v5, sizeof v5);
#else
    memset(acc, 0, sizeof acc);
    for (int64_t k = 0; k < kc; k++)
        for (int i = 0; i < MR_PORT; i++)
            for (int j = 0; j < NR_PORT; j++) acc[i][j] += a[k * MR_PORT + i] * b[k * NR_PORT + j];
#endif
    for (int64_t i = 0; i < mr; i++)
        for (int64_t j = 0; j < nr; j++) c[i * ldc + j] += acc[i][j];
}

#if SK_HAVE_SVE
#define SK_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9)
#define SK_DECL_ACC(i) svfloat32_t c##i##0 = svdup_n_f32(0.0f), c##i##1 = svdup_n_f32(0.0f);
#define SK_FMLA(i)                                \
    c##i##0 = svmla_n_f32_x(pt, c##i##0, b0, a[i]); \
    c##i##1 = svmla_n_f32_x(pt, c##i##1, b1, a[i]);
#define SK_STORE(i)                                                                \
    if (i < mr) {                                                                  \
        float *ci = c + i * ldc;                                                   \
        svst1_f32(p0, ci, svadd_f32_x(p0, svld1_f32(p0, ci), c##i##0));            \
        svst1_f32(p1, ci + vl, svadd_f32_x(p1, svld1_f32(p1, ci + vl), c##i##1));  \
    }

/* C[mr, nr] += A panel (kc x 10) * B panel (kc x 2VL); nr <= 2VL columns are stored under predicates. */
static void ukernel_sve(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int64_t mr,
                        int64_t nr) {
    const int64_t vl = (int64_t)svcntw();
    const svbool_t pt = svptrue_b32();
    SK_ROWS(SK_DECL_ACC)
    for (int64_t k = 0; k < kc; k++) {
        svfloat32_t b0 = svld1_f32(pt, b), b1 = svld1_f32(pt, b + vl);
        SK_ROWS(SK_FMLA)
        a += MR_SVE;
        b += 2 * vl;
    }
    const svbool_t p0 = svwhilelt_b32_s64(0, nr), p1 = svwhilelt_b32_s64(vl, nr);
    SK_ROWS(SK_STORE)
}
#endif

/* C[M,N] (row stride ldc) += A[M,K] * B[K,N]. */
static void gemm(int64_t M, int64_t N, int64_t K, const operand *A, const operand *B, float *C, int64_t ldc,
                 int use_sve) {
    if (M <= 0 || N <= 0 || K <= 0) return;
    int64_t mr = MR_PORT, nr = NR_PORT;
    ukernel_fn uk = ukernel_portable;
#if SK_HAVE_SVE
    if (use_sve) {
        mr = MR_SVE;
        nr = 2 * (int64_t)svcntw();
        uk = ukernel_sve;
    }
#endif
    const int64_t mpad = (M + mr - 1) / mr * mr, ncmax = sk_min64(NC, N), npad = (ncmax + nr - 1) / nr * nr;
    float *abuf = malloc(sizeof(float) * (size_t)(mpad * sk_min64(KC, K)));
    float *bbuf = malloc(sizeof(float) * (size_t)(npad * sk_min64(KC, K)));
    if (!abuf || !bbuf) abort();
    const int par = M * N * K >= SK_PAR_WORK * 4;
    for (int64_t jc = 0; jc < N; jc += NC) {
        const int64_t nc = sk_min64(NC, N - jc), npan = (nc + nr - 1) / nr, mpan = mpad / mr;
        for (int64_t pc = 0; pc < K; pc += KC) {
            const int64_t kc = sk_min64(KC, K - pc);
#pragma omp parallel if (par) num_threads(sk_threads())
            {
#pragma omp for schedule(static)
                for (int64_t jp = 0; jp < npan; jp++)
                    pack_b_panel(bbuf + jp * kc * nr, B, pc, kc, jc + jp * nr, sk_min64(nr, nc - jp * nr), nr,
                                 use_sve);
#pragma omp for schedule(static)
                for (int64_t ip = 0; ip < mpan; ip++)
                    pack_a(abuf + ip * mr * kc, A, ip * mr, sk_min64(mr, M - ip * mr), pc, kc, mr, use_sve);
                /* tiles: B panel outer so it stays in L1 while A panels stream from L2 */
#pragma omp for schedule(static)
                for (int64_t t = 0; t < npan * mpan; t++) {
                    const int64_t jp = t / mpan, ip = t % mpan;
                    uk(kc, abuf + ip * mr * kc, bbuf + jp * kc * nr, C + ip * mr * ldc + jc + jp * nr, ldc,
                       sk_min64(mr, M - ip * mr), sk_min64(nr, nc - jp * nr));
                }
            }
        }
    }
    free(abuf);
    free(bbuf);
}

static void fill_bias(float *out, const float *bias, int64_t N, int64_t OC) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t o = 0; o < OC; o++) out[n * OC + o] = bias ? bias[o] : 0.0f;
}

static void forward_impl(float *out, const void *inp, const void *weight, const float *bias, int64_t N,
                         int64_t C, int64_t OC, int f16, int use_sve) {
    fill_bias(out, bias, N, OC);
    const operand A = {inp, C, 1, f16}, B = {weight, 1, C, f16}; /* B(k, j) = weight[j, k] */
    gemm(N, OC, C, &A, &B, out, OC, use_sve);
}

static void backward_impl(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                          const float *weight, int64_t N, int64_t C, int64_t OC, int use_sve) {
    memset(dinp, 0, sizeof(float) * (size_t)(N * C));
    memset(dweight, 0, sizeof(float) * (size_t)(OC * C));
    const operand dO = {dout, OC, 1, 0}, W = {weight, C, 1, 0}, dOt = {dout, 1, OC, 0}, X = {inp, C, 1, 0};
    gemm(N, C, OC, &dO, &W, dinp, C, use_sve);     /* dinp = dout @ weight */
    gemm(OC, C, N, &dOt, &X, dweight, C, use_sve); /* dweight = dout^T @ inp */
    if (dbias) {
        for (int64_t o = 0; o < OC; o++) dbias[o] = 0.0f;
        for (int64_t n = 0; n < N; n++)
            for (int64_t o = 0; o < OC; o++) dbias[o] += dout[n * OC + o];
    }
}

void sk_matmul_forward_portable(float *out, const float *inp, const float *weight, const float *bias, int64_t N,
                                int64_t C, int64_t OC) {
    forward_impl(out, inp, weight, bias, N, C, OC, 0, 0);
}
void sk_matmul_forward_f16_portable(float *out, const uint16_t *inp, const uint16_t *weight, const float *bias,
                                    int64_t N, int64_t C, int64_t OC) {
    forward_impl(out, inp, weight, bias, N, C, OC, 1, 0);
}
void sk_matmul_backward_portable(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                                 const float *weight, int64_t N, int64_t C, int64_t OC) {
    backward_impl(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 0);
}

#if SK_HAVE_SVE
void sk_matmul_forward_sve(float *out, const float *inp, const float *weight, const float *bias, int64_t N,
                           int64_t C, int64_t OC) {
    forward_impl(out, inp, weight, bias, N, C, OC, 0, 1);
}
void sk_matmul_forward_f16_sve(float *out, const uint16_t *inp, const uint16_t *weight, const float *bias,
                               int64_t N, int64_t C, int64_t OC) {
    forward_impl(out, inp, weight, bias, N, C, OC, 1, 1);
}
void sk_matmul_backward_sve(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *weight, int64_t N, int64_t C, int64_t OC) {
    backward_impl(dinp, dweight, dbias, dout, inp, weight, N, C, OC, 1);
}
#endif

void sk_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int64_t N, int64_t C,
                       int64_t OC) {
    SK_PICK(sk_matmul_forward)(out, inp, weight, bias, N, C, OC);
}
void sk_matmul_forward_f16(float *out, const uint16_t *inp, const uint16_t *weight, const float *bias, int64_t N,
                           int64_t C, int64_t OC) {
    SK_PICK(sk_matmul_forward_f16)(out, inp, weight, bias, N, C, OC);
}
void sk_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int64_t N, int64_t C, int64_t OC) {
    SK_PICK(sk_matmul_backward)(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
}
