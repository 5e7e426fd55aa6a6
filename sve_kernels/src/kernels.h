/* sve_kernels: transformer training kernels (float32, fp16 storage where marked).
 *
 * Every public kernel sk_X dispatches to sk_X_sve (ARM SVE, vector-length agnostic, compiled only when
 * __ARM_FEATURE_SVE is defined) or to sk_X_portable (plain C, always compiled). Both are exported so the
 * QEMU harness can compare them in one binary. Conventions follow llm.c: out = inp @ weight^T + bias.
 * Sizes are int64_t; all arrays are dense row-major. Results never depend on the OpenMP thread count:
 * every output element is owned by one thread and reductions run in a fixed order.
 */
#ifndef SVE_KERNELS_H
#define SVE_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__ARM_FEATURE_SVE)
#define SK_HAVE_SVE 1
#else
#define SK_HAVE_SVE 0
#endif

/* Declares the public kernel plus its portable (and, on SVE builds, SVE) implementation. */
#if SK_HAVE_SVE
#define SK_DECL(ret, name, args) ret name args; ret name##_portable args; ret name##_sve args;
#else
#define SK_DECL(ret, name, args) ret name args; ret name##_portable args;
#endif

/* ---- info ---- */
int sk_has_sve(void);
int sk_vector_bits(void); /* SVE vector length in bits, 0 without SVE */
int sk_max_threads(void);
void sk_set_threads(int n); /* threads of every later parallel kernel call, from any thread; no-op without OpenMP */

/* ---- matmul: out[N,OC] = inp[N,C] @ weight[OC,C]^T (+ bias[OC]); bias may be NULL ---- */
SK_DECL(void, sk_matmul_forward,
        (float *out, const float *inp, const float *weight, const float *bias, int64_t N, int64_t C, int64_t OC))
/* dinp = dout @ weight, dweight = dout^T @ inp, dbias = column sums of dout (dbias may be NULL);
 * outputs are overwritten. */
SK_DECL(void, sk_matmul_backward,
        (float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
         int64_t N, int64_t C, int64_t OC))
/* fp16 storage (IEEE binary16 bit patterns), fp32 accumulate. */
SK_DECL(void, sk_matmul_forward_f16,
        (float *out, const uint16_t *inp, const uint16_t *weight, const float *bias, int64_t N, int64_t C,
         int64_t OC))

/* ---- layernorm over the last axis ---- */
SK_DECL(void, sk_layernorm_forward,
        (float *out, float *mean, float *rstd, const float *inp, const float *weight, const float *bias,
         int64_t N, int64_t C, float eps))
SK_DECL(void, sk_layernorm_backward,
        (float *dinp, float *dweight, float *dbias, const float *dout, const float *inp, const float *weight,
         const float *mean, const float *rstd, int64_t N, int64_t C))

/* ---- element-wise ---- */
SK_DECL(void, sk_gelu_forward, (float *y, const float *x, int64_t n))
SK_DECL(void, sk_gelu_backward, (float *dx, const float *x, const float *dy, int64_t n))
SK_DECL(void, sk_residual_forward, (float *out, const float *a, const float *b, int64_t n))
SK_DECL(void, sk_exp, (float *y, const float *x, int64_t n))
SK_DECL(void, sk_tanh, (float *y, const float *x, int64_t n))

/* ---- embedding; ids must be in [0, V) (checked by the caller) ---- */
SK_DECL(void, sk_embedding_forward, (float *out, const int32_t *ids, const float *table, int64_t N, int64_t C))
SK_DECL(void, sk_embedding_backward, (float *dtable, const int32_t *ids, const float *dout, int64_t N, int64_t C))

/* ---- softmax / cross-entropy ---- */
SK_DECL(void, sk_softmax_forward, (float *y, const float *x, int64_t N, int64_t C))
/* targets[n] == ignore_index: loss 0; other targets must be in [0, V). */
SK_DECL(void, sk_crossentropy_forward,
        (float *losses, float *probs, const float *logits, const int32_t *targets, int64_t N, int64_t V,
         int32_t ignore_index))
SK_DECL(void, sk_crossentropy_backward,
        (float *dlogits, const float *probs, const int32_t *targets, int64_t N, int64_t V, float grad_scale,
         int32_t ignore_index))

/* ---- causal attention, q/k/v/out [B,H,T,D], probs [B,H,T,T]; doc_ids [B,T] or NULL ---- */
SK_DECL(void, sk_attention_forward,
        (float *out, float *probs, const float *q, const float *k, const float *v, const int32_t *doc_ids,
         int64_t B, int64_t H, int64_t T, int64_t D))
SK_DECL(void, sk_attention_backward,
        (float *dq, float *dk, float *dv, const float *dout, const float *q, const float *k, const float *v,
         const float *probs, int64_t B, int64_t H, int64_t T, int64_t D))

/* ---- optimizer and mixed precision ---- */
/* bc1 = 1 - beta1^step, bc2 = 1 - beta2^step (computed by the caller in double). */
SK_DECL(void, sk_adamw_step,
        (float *param, const float *grad, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
         float eps, float weight_decay, float bc1, float bc2))
SK_DECL(double, sk_sumsq, (const float *x, int64_t n))
SK_DECL(void, sk_scale_inplace, (float *x, int64_t n, float s))
/* Return 1 when any converted value is inf or NaN, else 0. */
SK_DECL(int, sk_fp32_to_fp16, (uint16_t *y, const float *x, int64_t n))
SK_DECL(int, sk_fp16_to_fp32, (float *y, const uint16_t *x, int64_t n))

#ifdef __cplusplus
}
#endif
#endif
