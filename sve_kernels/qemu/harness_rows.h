/* Row-wise part of the harness (included by harness.c): layernorm, softmax, cross-entropy, embedding,
 * attention. References are written directly from the definitions, in double. */

static void test_layernorm(int64_t N, int64_t C) {
    float *x = rnd(N * C, 3.0f), *w = rnd(C, 1.0f), *b = rnd(C, 1.0f), *dy = rnd(N * C, 1.0f);
    float *out = zalloc(N * C, 4), *mean = zalloc(N, 4), *rstd = zalloc(N, 4), *dx = zalloc(N * C, 4);
    float *dw = zalloc(C, 4), *db = zalloc(C, 4);
    double *r = zalloc(N * C, 8), *rm = zalloc(N, 8), *rs = zalloc(N, 8), *rdx = zalloc(N * C, 8);
    double *rdw = zalloc(C, 8), *rdb = zalloc(C, 8);
    for (int64_t n = 0; n < N; n++) {
        const float *xr = x + n * C, *g = dy + n * C;
        double m = 0, v = 0, a = 0, bb = 0;
        for (int64_t c = 0; c < C; c++) m += xr[c];
        m /= (double)C;
        for (int64_t c = 0; c < C; c++) v += (xr[c] - m) * (xr[c] - m);
        const double s = 1.0 / sqrt(v / (double)C + 1e-5);
        rm[n] = m, rs[n] = s;
        for (int64_t c = 0; c < C; c++) {
            const double xh = (xr[c] - m) * s;
            r[n * C + c] = xh * w[c] + b[c];
            a += w[c] * g[c], bb += w[c] * g[c] * xh;
            rdw[c] += xh * g[c], rdb[c] += g[c];
        }
        for (int64_t c = 0; c < C; c++)
            rdx[n * C + c] = s * (w[c] * g[c] - a / (double)C - (xr[c] - m) * s * bb / (double)C);
    }
    FOR_IMPL(sk_layernorm_forward) {
        IMPL(out, mean, rstd, x, w, b, N, C, 1e-5f);
        check("layernorm_forward", im, out, r, N * C, 1e-5, 1e-5);
        check("layernorm_forward.mean", im, mean, rm, N, 1e-5, 1e-6);
        check("layernorm_forward.rstd", im, rstd, rs, N, 1e-5, 0);
    }
    FOR_IMPL(sk_layernorm_backward) {
        IMPL(dx, dw, db, dy, x, w, mean, rstd, N, C);
        check("layernorm_backward.dinp", im, dx, rdx, N * C, 1e-4, 1e-5);
        check("layernorm_backward.dweight", im, dw, rdw, C, 1e-4, 1e-5);
        check("layernorm_backward.dbias", im, db, rdb, C, 1e-5, 1e-5);
    }
    free(x), free(w), free(b), free(dy), free(out), free(mean), free(rstd), free(dx), free(dw), free(db);
    free(r), free(rm), free(rs), free(rdx), free(rdw), free(rdb);
}

static void test_softmax_ce(int64_t N, int64_t V) {
    float *x = rnd(N * V, 8.0f), *y = zalloc(N * V, 4), *loss = zalloc(N, 4), *d = zalloc(N * V, 4);
    int32_t *tg = zalloc(N, 4);
    double *r = zalloc(N * V, 8), *rl = zalloc(N, 8), *rd = zalloc(N * V, 8);
    for (int64_t n = 0; n < N; n++) {
        tg[n] = n % 3 == 1 ? -1 : (int32_t)((n * 7919) % V);
        double m = -INFINITY, s = 0;
        for (int64_t c = 0; c < V; c++) m = fmax(m, x[n * V + c]);
        for (int64_t c = 0; c < V; c++) s += exp(x[n * V + c] - m);
        for (int64_t c = 0; c < V; c++) {
            r[n * V + c] = exp(x[n * V + c] - m) / s;
        }
        rl[n] = tg[n] < 0 ? 0.0 : log(s) + m - x[n * V + tg[n]];
    }
    FOR_IMPL(sk_softmax_forward) { IMPL(y, x, N, V); check("softmax_forward", im, y, r, N * V, 1e-5, 1e-9); }
    FOR_IMPL(sk_crossentropy_forward) {
        IMPL(loss, y, x, tg, N, V, -1);
        check("crossentropy_forward.loss", im, loss, rl, N, 1e-5, 1e-5);
        check("crossentropy_forward.probs", im, y, r, N * V, 1e-5, 1e-9);
    }
    FOR_IMPL(sk_crossentropy_backward) { /* reference from the same float probs the kernel reads */
        for (int64_t i = 0; i < N * V; i++) rd[i] = tg[i / V] < 0 ? 0.0 : 0.5 * ((double)y[i] - (i % V == tg[i / V]));
        IMPL(d, y, tg, N, V, 0.5f, -1);
        check("crossentropy_backward", im, d, rd, N * V, 1e-5, 1e-9);
    }
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
    free(x), free(y), free(loss), free(d), free(tg), free(r), free(rl), free(rd), free(e), free(tab), free(ids);
    free(re), free(rt);
}

static void test_attention(int64_t B, int64_t H, int64_t T, int64_t D, int docs) {
    const int64_t n = B * H * T * D, np = B * H * T * T;
    float *q = rnd(n, 1.0f), *k = rnd(n, 1.0f), *v = rnd(n, 1.0f), *dy = rnd(n, 1.0f), *out = zalloc(n, 4);
    float *p = zalloc(np, 4), *dq = zalloc(n, 4), *dk = zalloc(n, 4), *dv = zalloc(n, 4);
    int32_t *doc = zalloc(B * T, 4);
    double *rp = zalloc(np, 8), *ro = zalloc(n, 8), *rdq = zalloc(n, 8), *rdk = zalloc(n, 8), *rdv = zalloc(n, 8);
    for (int64_t i = 0; i < B * T; i++) doc[i] = (int32_t)((i % T) / 5);
    const double sc = 1.0 / sqrt((double)D);
    for (int64_t bh = 0; bh < B * H; bh++)
        for (int64_t t = 0; t < T; t++) {
            const int64_t b = bh / H, o = bh * T * D;
            double *pr = rp + (bh * T + t) * T, m = -INFINITY, s = 0, rowdot = 0;
            double *dpr = zalloc(T, 8);
            for (int64_t u = 0; u <= t; u++) {
                if (docs && doc[b * T + u] != doc[b * T + t]) continue;
                double a = 0;
                for (int64_t d = 0; d < D; d++) a += (double)q[o + t * D + d] * k[o + u * D + d];
                pr[u] = a * sc, m = fmax(m, pr[u]);
            }
            for (int64_t u = 0; u <= t; u++)
                if (!(docs && doc[b * T + u] != doc[b * T + t])) pr[u] = exp(pr[u] - m), s += pr[u];
            for (int64_t u = 0; u <= t; u++) {
                pr[u] /= s;
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
            free(dpr);
        }
    FOR_IMPL(sk_attention_forward) {
        IMPL(out, p, q, k, v, docs ? doc : NULL, B, H, T, D);
        check("attention_forward.probs", im, p, rp, np, 1e-5, 1e-7);
        check("attention_forward.out", im, out, ro, n, 1e-4, 1e-5);
    }
    FOR_IMPL(sk_attention_backward) {
        IMPL(dq, dk, dv, dy, q, k, v, p, B, H, T, D);
        check("attention_backward.dq", im, dq, rdq, n, 1e-4, 1e-5);
        check("attention_backward.dk", im, dk, rdk, n, 1e-4, 1e-5);
        check("attention_backward.dv", im, dv, rdv, n, 1e-4, 1e-5);
    }
    free(q), free(k), free(v), free(dy), free(out), free(p), free(dq), free(dk), free(dv), free(doc), free(rp);
    free(ro), free(rdq), free(rdk), free(rdv);
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
    test_attention(1, 1, 1, 1, 0);
    test_attention(2, 2, vl + 1, vl - 1 > 0 ? vl - 1 : 1, 1);
    test_attention(1, 3, 13, 2 * vl + 3, 0);
    if (!quick) test_attention(2, 2, 37, 32, 1);
}
