/* Row-wise part of the harness (included by harness.c): layernorm, softmax, cross-entropy, embedding,
 * attention. References are written directly from the definitions, in double; the limit cases are those of
 * tests/sve_kernels (the float64 references in sve_np_reference.py), so every vector length checks them too. */

/* Layernorm forward and backward in double, and the sizes of the terms the backward adds (s*): where huge terms
 * cancel, a float result is good only to a rounding of them. */
typedef struct {
    double *y, *mean, *rstd, *dx, *dw, *db, *sdx, *sdw, *sdb;
} ln_ref;

static ln_ref layernorm_ref(const float *x, const float *w, const float *b, const float *dy, int64_t N, int64_t C) {
    ln_ref r = {zalloc(N * C, 8), zalloc(N, 8), zalloc(N, 8), zalloc(N * C, 8), zalloc(C, 8), zalloc(C, 8),
                zalloc(N * C, 8), zalloc(C, 8), zalloc(C, 8)};
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C, *g = dy + n * C;
        double m = 0, v = 0, a = 0, bb = 0, sa = 0, sbb = 0;
        for (int64_t c = 0; c < C; c++) m += xr[c];
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        const double s = 1.0 / sqrt(v / (double)C + 1e-5);
        r.mean[n] = m, r.rstd[n] = s;
        for (int64_t c = 0; c < C; c++) {
            const double xh = (xr[c] - m) * s, wg = (double)w[c] * g[c];
            r.y[n * C + c] = xh * w[c] + b[c];
            a += wg, bb += wg * xh, sa += fabs(wg), sbb += fabs(wg * xh);
            r.dw[c] += xh * g[c], r.db[c] += g[c], r.sdw[c] += fabs(xh * g[c]), r.sdb[c] += fabs((double)g[c]);
        }
        for (int64_t c = 0; c < C; c++) {
            const double xh = (xr[c] - m) * s, wg = (double)w[c] * g[c];
            r.dx[n * C + c] = s * (wg - a / (double)C - xh * bb / (double)C);
            r.sdx[n * C + c] = s * (fabs(wg) + sa / (double)C + fabs(xh) * sbb / (double)C);
        }
    }
    return r;
}

static void ln_ref_free(ln_ref *r) {
    free(r->y), free(r->mean), free(r->rstd), free(r->dx), free(r->dw), free(r->db), free(r->sdx), free(r->sdw);
    free(r->sdb);
}

static void test_layernorm(int64_t N, int64_t C) {
    float *x = rnd(N * C, 3.0f), *w = rnd(C, 1.0f), *b = rnd(C, 1.0f), *dy = rnd(N * C, 1.0f);
    float *out = zalloc(N * C, 4), *mean = zalloc(N, 4), *rstd = zalloc(N, 4), *dx = zalloc(N * C, 4);
    float *dw = zalloc(C, 4), *db = zalloc(C, 4);
    ln_ref r = layernorm_ref(x, w, b, dy, N, C);
    FOR_IMPL(sk_layernorm_forward) {
        IMPL(out, mean, rstd, x, w, b, N, C, 1e-5f);
        check("layernorm_forward", im, out, r.y, N * C, 1e-5, 1e-5);
        check("layernorm_forward.mean", im, mean, r.mean, N, 1e-5, 1e-6);
        check("layernorm_forward.rstd", im, rstd, r.rstd, N, 1e-5, 0);
    }
    FOR_IMPL(sk_layernorm_backward) {
        IMPL(dx, dw, db, dy, x, w, mean, rstd, N, C);
        check("layernorm_backward.dinp", im, dx, r.dx, N * C, 1e-4, 1e-5);
        check("layernorm_backward.dweight", im, dw, r.dw, C, 1e-4, 1e-5);
        check("layernorm_backward.dbias", im, db, r.db, C, 1e-5, 1e-5);
    }
    free(x), free(w), free(b), free(dy), free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
    ln_ref_free(&r);
}

/* Rows past sqrt(FLT_MAX / C) and huge douts (test_layernorm_*_past_float_* in tests/sve_kernels): the float
 * variance, x - mean, dnorm * (x - mean), weight * dout and its row and column sums overflow while the double
 * results are finite. The kernels redo such rows (and columns) in double; each impl's backward reads its forward. */
static void test_layernorm_limits(void) {
    enum { N = 11, C = 64 };
    const float edge = sqrtf(FLT_MAX / C), big = 3e38f;
    float *x = rnd(N * C, 1.0f), *w = rnd(C, 1.0f), *b = rnd(C, 1.0f), *dy = rnd(N * C, 1.0f);
    float *out = zalloc(N * C, 4), *mean = zalloc(N, 4), *rstd = zalloc(N, 4), *dx = zalloc(N * C, 4);
    float *dw = zalloc(C, 4), *db = zalloc(C, 4);
    for (int64_t c = 0; c < C; c++) {
        const float alt = c % 2 ? -1.0f : 1.0f, sign = frand(1.0f) < 0 ? -1.0f : 1.0f;
        const float rows[10] = {alt * edge * 0.99f, alt * edge * 1.01f, alt * 1e30f, alt * big, big,
                                c ? -big : big, alt * 1e30f, alt * 1e30f, alt * 1e30f, alt * 1e30f};
        for (int n = 0; n < 10; n++) x[n * C + c] = rows[n];
        for (int n = 6; n < 10; n++) dy[n * C + c] = n < 8 ? sign * big : -sign * big; /* a column sum through inf */
        dy[10 * C + c] = w[c] < 0 ? -2e37f : 2e37f; /* a row sum of weight * dout past FLT_MAX */
    }
    ln_ref r = layernorm_ref(x, w, b, dy, N, C);
    __typeof__(&sk_layernorm_forward) forward[NIMPL] = IMPLS(sk_layernorm_forward);
    FOR_IMPL(sk_layernorm_backward) {
        forward[im](out, mean, rstd, x, w, b, N, C, 1e-5f);
        check("layernorm_forward.limits", im, out, r.y, N * C, 1e-5, 1e-5);
        check("layernorm_forward.limits.mean", im, mean, r.mean, N, 1e-5, 1e-6);
        check("layernorm_forward.limits.rstd", im, rstd, r.rstd, N, 1e-5, 0);
        IMPL(dx, dw, db, dy, x, w, mean, rstd, N, C);
        check_scaled("layernorm_backward.limits.dinp", im, dx, r.dx, r.sdx, N * C, 1e-5, 0);
        check_scaled("layernorm_backward.limits.dweight", im, dw, r.dw, r.sdw, C, 1e-5, 0);
        check_scaled("layernorm_backward.limits.dbias", im, db, r.db, r.sdb, C, 1e-5, 0);
    }
    free(x), free(w), free(b), free(dy), free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
    ln_ref_free(&r);
}

/* p = softmax of the live entries of x[0, n) (live NULL: all), 0 elsewhere, with the limits the float64 reference
 * defines: where the live maximum is infinite, the live entries holding it share the row equally (one +inf: 1
 * there; all -inf: uniform); a NaN makes the live entries NaN. Returns the log-sum-exp, +-inf at such a limit. */
static double softmax_ref(double *p, const double *x, const int *live, int64_t n) {
    double m = -INFINITY, s = 0;
    int nan = 0;
    for (int64_t i = 0; i < n; i++)
        if (!live || live[i]) nan |= isnan(x[i]), m = x[i] > m ? x[i] : m;
    const int limit = isinf(m);
    for (int64_t i = 0; i < n; i++) {
        p[i] = live && !live[i] ? 0.0 : limit ? (double)(x[i] == m) : exp(x[i] - m);
        s += p[i];
    }
    for (int64_t i = 0; i < n; i++) p[i] = live && !live[i] ? 0.0 : nan ? NAN : p[i] / s;
    return nan ? NAN : limit ? m : m + log(s);
}

/* Softmax, cross-entropy (targets, -1 ignored) and its gradient at scale 0.5 against softmax_ref: the loss is
 * -log p[target] at a limit, log-sum-exp - logit otherwise. tol: probabilities' and gradient's rtol and atol, then
 * the loss's. */
static void check_softmax_ce(const char *label, const float *x, const int32_t *tg, int64_t N, int64_t V,
                             const double tol[4]) {
    float *y = zalloc(N * V, 4), *loss = zalloc(N, 4), *d = zalloc(N * V, 4);
    double *row = zalloc(V, 8), *r = zalloc(N * V, 8), *rl = zalloc(N, 8), *rd = zalloc(N * V, 8);
    char name[64];
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < V; c++) row[c] = x[n * V + c];
        const double lse = softmax_ref(r + n * V, row, NULL, V);
        rl[n] = tg[n] < 0 ? 0.0 : isinf(lse) ? -log(r[n * V + tg[n]]) : lse - x[n * V + tg[n]];
    }
    FOR_IMPL(sk_softmax_forward) {
        IMPL(y, x, N, V);
        snprintf(name, sizeof name, "softmax_forward%s", label);
        check(name, im, y, r, N * V, tol[0], tol[1]);
    }
    FOR_IMPL(sk_crossentropy_forward) {
        IMPL(loss, y, x, tg, N, V, -1);
        snprintf(name, sizeof name, "crossentropy_forward%s.loss", label);
        check(name, im, loss, rl, N, tol[2], tol[3]);
        snprintf(name, sizeof name, "crossentropy_forward%s.probs", label);
        check(name, im, y, r, N * V, tol[0], tol[1]);
    }
    FOR_IMPL(sk_crossentropy_backward) { /* reference from the same float probs the kernel reads */
        for (int64_t i = 0; i < N * V; i++) rd[i] = tg[i / V] < 0 ? 0.0 : 0.5 * ((double)y[i] - (i % V == tg[i / V]));
        IMPL(d, y, tg, N, V, 0.5f, -1);
        snprintf(name, sizeof name, "crossentropy_backward%s", label);
        check(name, im, d, rd, N * V, tol[0], tol[1]);
    }
    free(y), free(loss), free(d), free(row), free(r), free(rl), free(rd);
}

static void test_softmax_ce(int64_t N, int64_t V) {
    static const double tol[4] = {1e-5, 1e-9, 1e-5, 1e-5};
    float *x = rnd(N * V, 8.0f);
    int32_t *tg = zalloc(N, 4);
    for (int64_t n = 0; n < N; n++) tg[n] = n % 3 == 1 ? -1 : (int32_t)((n * 7919) % V);
    check_softmax_ce("", x, tg, N, V, tol);
    /* embedding: rows of x as a table of N rows, ids with repeats */
    float *e = zalloc(2 * N * V, 4), *tab = zalloc(N * V, 4);
    int32_t *ids = zalloc(2 * N, 4);
    double *re = zalloc(2 * N * V, 8), *rt = zalloc(N * V, 8);
    for (int64_t i = 0; i < 2 * N; i++) ids[i] = (int32_t)((i * 5) % (N > 0 ? N : 1));
    for (int64_t i = 0; i < 2 * N; i++)
        for (int64_t c = 0; c < V; c++) re[i * V + c] = x[ids[i] * V + c], rt[ids[i] * V + c] += x[ids[i] * V + c];
    FOR_IMPL(sk_embedding_forward) { IMPL(e, ids, x, 2 * N, V); check("embedding_forward", im, e, re, 2 * N * V, 0, 0); }
    FOR_IMPL(sk_embedding_backward) {
        memset(tab, 0, sizeof(float) * (size_t)(N * V));
        IMPL(tab, ids, e, 2 * N, V);
        check("embedding_backward", im, tab, rt, N * V, 1e-6, 1e-6);
    }
    free(x), free(tg), free(e), free(tab), free(ids), free(re), free(rt);
}

/* Logit rows (V >= 3) whose maximum is +-inf or NaN among finite ones (test_softmax_and_crossentropy_take_the_limit):
 * exp(x - max) was inf - inf = NaN for the row and its loss. +infs sit in the first and last vector and the tail,
 * so the SVE loops' predicated ends see them. */
static void test_softmax_ce_limits(int64_t V) {
    enum { N = 10 };
    static const double tol[4] = {1e-6, 1e-7, 1e-5, 1e-6};
    float *x = rnd(N * V, 8.0f);
    const int32_t tg[N] = {(int32_t)V - 1, 1, (int32_t)V / 2, -1, 0, 0, 1, 2, (int32_t)V - 1, 1};
    x[V - 1] = INFINITY;                                    /* one +inf, the target: p 1, loss 0 */
    x[V] = INFINITY;                                        /* off the target: loss +inf */
    x[2 * V] = x[2 * V + V / 2] = INFINITY;                 /* two: 1/2 each, loss log 2 */
    x[3 * V] = x[4 * V - 1] = INFINITY;                     /* ignored target: loss 0 */
    for (int64_t c = 0; c < V; c++) x[4 * V + c] = x[7 * V + c] = -INFINITY; /* all -inf: uniform, loss log V */
    x[5 * V] = INFINITY, x[5 * V + 1] = NAN;                /* a NaN: the row and its loss NaN */
    x[7 * V - 1] = NAN, x[7 * V + V / 2] = NAN;
    for (int64_t c = 0; c < V / 2; c++) x[8 * V + c] = -INFINITY; /* finite max: 0 at -inf */
    x[9 * V + 1] = 3e38f, x[10 * V - 1] = -3e38f;           /* finite max, x - max overflows: 0 there */
    check_softmax_ce(".limits", x, tg, N, V, tol);
    free(x);
}

static double max_abs(const double *a, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fabs(a[i]) > m ? fabs(a[i]) : m;
    return m;
}

/* Attention forward (and backward) of the given inputs against the definitions: scores in double, where products
 * of float32 inputs cannot overflow, softmax_ref over the causal (and document) mask; masked entries must be
 * exactly 0. wide: inputs near 1e20, where float round-off of the largest terms stays where they cancel, so each
 * output's absolute tolerance scales with its largest value (as tests/sve_kernels does). */
static void check_attention(const char *label, const float *q, const float *k, const float *v, const float *dy,
                            const int32_t *doc, int64_t B, int64_t H, int64_t T, int64_t D, int wide, int backward) {
    const int64_t n = B * H * T * D, np = B * H * T * T;
    float *out = zalloc(n, 4), *p = zalloc(np, 4), *dq = zalloc(n, 4), *dk = zalloc(n, 4), *dv = zalloc(n, 4);
    double *rp = zalloc(np, 8), *ro = zalloc(n, 8), *rdq = zalloc(n, 8), *rdk = zalloc(n, 8), *rdv = zalloc(n, 8);
    double *score = zalloc(T, 8), *dpr = zalloc(T, 8);
    int *live = zalloc(np, sizeof(int));
    const double sc = 1.0 / sqrt((double)D);
    for (int64_t bh = 0; bh < B * H; bh++)
        for (int64_t t = 0; t < T; t++) {
            const int64_t b = bh / H, o = bh * T * D, row = (bh * T + t) * T;
            double *pr = rp + row, rowdot = 0;
            for (int64_t u = 0; u < T; u++) {
                live[row + u] = u <= t && !(doc && doc[b * T + u] != doc[b * T + t]);
                double a = 0;
                for (int64_t d = 0; live[row + u] && d < D; d++) a += (double)q[o + t * D + d] * k[o + u * D + d];
                score[u] = a * sc, dpr[u] = 0;
            }
            softmax_ref(pr, score, live + row, T);
            for (int64_t u = 0; u <= t; u++) {
                for (int64_t d = 0; d < D; d++) {
                    ro[o + t * D + d] += pr[u] * v[o + u * D + d];
                    dpr[u] += (double)dy[o + t * D + d] * v[o + u * D + d];
                    rdv[o + u * D + d] += pr[u] * dy[o + t * D + d];
                }
                rowdot += pr[u] * dpr[u];
            }
            for (int64_t u = 0; u <= t; u++)
                for (int64_t d = 0; d < D; d++) {
                    const double g = pr[u] * (dpr[u] - rowdot) * sc;
                    rdq[o + t * D + d] += g * k[o + u * D + d];
                    rdk[o + u * D + d] += g * q[o + t * D + d];
                }
        }
    const struct {
        const char *what;
        const float *got;
        const double *want;
        int64_t n;
        double rtol, atol;
    } outs[5] = {{"attention_forward.probs", p, rp, np, 1e-5, 1e-7}, {"attention_forward.out", out, ro, n, 1e-4, 1e-5},
                 {"attention_backward.dq", dq, rdq, n, 1e-4, 1e-5}, {"attention_backward.dk", dk, rdk, n, 1e-4, 1e-5},
                 {"attention_backward.dv", dv, rdv, n, 1e-4, 1e-5}};
    char name[64];
    FOR_IMPL(sk_attention_backward) {
        __typeof__(&sk_attention_forward) forward[NIMPL] = IMPLS(sk_attention_forward);
        forward[im](out, p, q, k, v, doc, B, H, T, D);
        if (backward) IMPL(dq, dk, dv, dy, q, k, v, p, B, H, T, D);
        for (int i = 0; i < (backward ? 5 : 2); i++) {
            snprintf(name, sizeof name, "%s%s", outs[i].what, label);
            const double big = max_abs(outs[i].want, outs[i].n);
            check(name, im, outs[i].got, outs[i].want, outs[i].n, wide ? 1e-5 : outs[i].rtol,
                  wide ? 1e-5 * (big > 1 ? big : 1) : outs[i].atol);
        }
        checks++;
        for (int64_t i = 0; i < np; i++)
            if (!live[i] && p[i] != 0.0f) {
                printf("FAIL attention masked probability%s %s: index %lld is %g\n", label, IMPL_NAME[im],
                       (long long)i, (double)p[i]);
                failures++;
                break;
            }
    }
    free(out), free(p), free(dq), free(dk), free(dv), free(rp), free(ro), free(rdq), free(rdk), free(rdv);
    free(score), free(dpr), free(live);
}

static void test_attention(int64_t B, int64_t H, int64_t T, int64_t D, int docs) {
    const int64_t n = B * H * T * D;
    float *q = rnd(n, 1.0f), *k = rnd(n, 1.0f), *v = rnd(n, 1.0f), *dy = rnd(n, 1.0f);
    int32_t *doc = zalloc(B * T, 4);
    for (int64_t i = 0; i < B * T; i++) doc[i] = (int32_t)((i % T) / 5);
    check_attention("", q, k, v, dy, docs ? doc : NULL, B, H, T, D, 0, 1);
    free(q), free(k), free(v), free(dy), free(doc);
}

/* Sets position t of both heads of a (2 x 6 x 8) to value, with alternating signs along D when alt. */
static void set_pos(float *a, int64_t t, float value, int alt) {
    for (int64_t h = 0; h < 2; h++)
        for (int64_t d = 0; d < 8; d++) a[(h * 6 + t) * 8 + d] = alt && d % 2 ? -value : value;
}

/* Finite inputs whose float32 products overflow (test_attention_overflow_matches_float64): q.k of +-inf or NaN
 * made the row NaN, dout.v of inf or NaN made dS NaN; such rows are computed in double, and each document gets
 * what it gets alone. Then an inf in q (test_attention_infinite_scores_take_the_limit): scores infinite in double
 * too, the softmax's limit; forward only, as there. */
static void test_attention_limits(void) {
    static const char *const cases[] = {" [q.k]", " [q.k twice]", " [q.k nan]", " [q.k -inf alone]",
                                        " [q.k -inf first]", " [dout.v scaled]", " [dout.v masked]", " [dout.v]"};
    const int32_t doc[6] = {0, 0, 0, 1, 1, 1};
    const float big = 1e20f;
    for (int c = 0; c < 8; c++) { /* 1 x 2 x 6 x 8, documents 0-2 and 3-5; the overflow is in document 0 */
        float *q = rnd(96, 1.0f), *k = rnd(96, 1.0f), *v = rnd(96, 1.0f), *dy = rnd(96, 1.0f);
        if (c == 0) set_pos(q, 1, big, 0), set_pos(k, 0, big, 0);                      /* score (1, 0) inf */
        if (c == 1) set_pos(q, 2, big, 0), set_pos(k, 0, big, 0), set_pos(k, 1, 2 * big, 0); /* (2, 1) wins */
        if (c == 2) set_pos(q, 2, big, 0), set_pos(k, 1, big, 1);                      /* inf - inf, 0 in double */
        if (c == 3) set_pos(q, 0, big, 0), set_pos(k, 0, -big, 0);                     /* row 0's only entry -inf */
        if (c == 4) { /* (1, 0) is -inf summed in order in float (-4e38 first), +1e38 in double */
            set_pos(q, 1, 0.0f, 0), set_pos(k, 0, 0.0f, 0);
            for (int64_t h = 0; h < 2; h++) {
                float *qh = q + (h * 6 + 1) * 8, *kh = k + h * 48;
                qh[0] = -4.0f, qh[1] = qh[2] = big / 10, kh[0] = 1e38f, kh[1] = 3e19f, kh[2] = 2e19f;
            }
        }
        if (c == 5) { /* P (1, :2) = 1/2; dS (1, 0) = 4e38 passes FLT_MAX, dS * scale does not */
            set_pos(q, 1, 0.0f, 0), set_pos(dy, 1, big / 10, 0), set_pos(v, 0, big / 5, 0), set_pos(v, 1, 0.0f, 0);
            for (int64_t h = 0; h < 2; h++)
                for (int64_t i = 0; i < 16; i++) k[h * 48 + i] *= 1e-3f;
        }
        if (c == 6) set_pos(dy, 4, big, 0), set_pos(v, 0, big, 0); /* a masked entry of dP */
        if (c == 7) set_pos(dy, 1, big / 5, 0), set_pos(v, 0, big / 5, 1); /* dP (1, 0) inf - inf, 0 in double */
        check_attention(cases[c], q, k, v, dy, doc, 1, 2, 6, 8, 1, 1);
        free(q), free(k), free(v), free(dy);
    }
    float *q = rnd(40, 1.0f), *k = rnd(40, 1.0f), *v = rnd(40, 1.0f), *dy = rnd(40, 1.0f); /* 1 x 2 x 5 x 4 */
    const float k0[2][5] = {{1, -1, -2, 3, 0.5f}, {1, 2, 3, 1, 2}}, q0[4] = {-INFINITY, INFINITY, INFINITY, -INFINITY};
    for (int64_t s = 0; s < 5; s++) k[s * 4] = k0[0][s], k[20 + s * 4] = k0[1][s];
    for (int64_t t = 1; t < 5; t++)
        for (int64_t d = 0; d < 4; d++) q[t * 4 + d] = d ? 0.0f : q0[t - 1]; /* +inf at: 1; 0; 0 and 3; 1 and 2 */
    q[20 + 12] = -INFINITY, q[20 + 13] = q[20 + 14] = q[20 + 15] = 0.0f;   /* head 1, t = 3: all -inf, uniform */
    check_attention(" [inf in q]", q, k, v, dy, NULL, 1, 2, 5, 4, 0, 0);
    free(q), free(k), free(v), free(dy);
}

static void test_rows(int64_t vl, int quick) {
    const int64_t cs[] = {1, vl - 1, vl + 1, 2 * vl + 3, 31, 257};
    for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) {
        if (cs[i] <= 0) continue;
        test_layernorm(5, cs[i]);
        test_softmax_ce(7, cs[i]);
    }
    test_layernorm(0, 8), test_softmax_ce(0, 8);
    test_softmax_ce(2, 65537); /* a vocabulary: one accumulator over a row missed 1e-5 at 128 and 256 bits */
    test_softmax_ce_limits(3), test_softmax_ce_limits(2 * vl + 3), test_softmax_ce_limits(1003);
    test_layernorm_limits();
    test_attention(1, 1, 1, 1, 0);
    test_attention(2, 2, vl + 1, vl - 1 > 0 ? vl - 1 : 1, 1);
    test_attention(1, 3, 13, 2 * vl + 3, 0);
    if (!quick) test_attention(2, 2, 37, 32, 1);
    test_attention_limits();
}
