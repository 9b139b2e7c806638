/* test_dcache.c — the diffusion sampler's KV cache (dl_model_dcache.c)
 * against the full bidirectional forward, where theory says they agree.
 *
 * A random model (dim 64, 2 layers, GQA 4/2, QKV bias, weights x8), two
 * rows of canvas lengths 20 and 13 (right-padded to 20 in the full
 * forward, lens = 20 / 13).  What is compared, within 1e-5 abs + 1e-5 rel:
 *  1. refresh: the window [0, L) (every position recomputed and stored) —
 *     logits at every position == dl_model_forward DL_ATTN_BIDIR's;
 *  2. prefix: then the window [s, L) on the SAME canvas (positions < s read
 *     from the cache) — logits at s..L-1 == the full forward's: exact,
 *     because the cached prefix keys / values were computed from this very
 *     canvas (the prefix cache is exact for the cached part whenever the
 *     canvas has not changed since the refresh; once tokens are committed
 *     the cached entries are those of the block start, Fast-dLLM's
 *     approximation, which the CLI test and make bench measure instead);
 *  3. dual: the window [s, e) (prefix and suffix from the cache), same;
 *  4. cache rows: the same window through cache row 1 for forward row 0
 *     (rows[] mapping) gives row 1's logits.
 * 5. bf16 compute on the reference backend: the refresh and prefix windows
 *    against the full bf16 forward (test_bf16).
 * 1-3 run twice: on the GEMM path, then with packed weights
 * (dl_model_pack_weights, what dllm-sample's diffusion sampler runs), where
 * the window's logits are also bit-identical to the full forward's (each
 * linear's element sums the same way whatever the number of rows).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_test.h"
#include "dl_model.h"

/* 5. bf16 compute on the reference backend (the only one here with bf16
 * ops): the cache, the activations and the head in bf16, logits handed out
 * in f32.  The refresh and prefix windows against the full bf16 forward,
 * within 5e-2 abs + 2e-2 rel (logits of size ~20: both sides round the
 * same ops to bf16, the attention's sums in another order). */
static void test_bf16(const dl_config *c) {
    char err[256];
    dl_dev *dev = NULL;
    if (dl_dev_open(&dev, DL_DEV_REF, 0, err, sizeof err)) { DL_CHECK(0, "ref device (%s)", err); return; }
    dl_model m = { 0 };
    int rc = dl_model_init(&m, c, dev, err, sizeof err);
    DL_CHECK(rc == 0, "bf16: model init (%s)", rc ? err : "ok");
    if (rc) { dl_dev_close(dev); return; }
    dl_model_init_weights(&m, 9);
    for (size_t i = 0; i < m.n_decay_params; i++) m.params[i] *= 8.0f;   /* ref memory is the host's */
    enum { T = 16 };
    const int V = c->vocab_size;
    uint32_t ids[T], wids[T];
    int32_t sel[T], rows[1] = { 0 }, q0[1], nv[1], nk[1] = { T }, wsel[T];
    for (int i = 0; i < T; i++) { ids[i] = (uint32_t)(i * 7 + 3) % (uint32_t)V; sel[i] = i; }
    dl_dcache *dc = NULL;
    if ((rc = dl_model_set_compute(&m, DL_BF16, err, sizeof err)) ||
        (rc = dl_model_reserve(&m, 1, T, T, DL_ACTS_INFER, err, sizeof err)) ||
        (rc = dl_model_forward(&m, ids, NULL, 1, T, sel, NULL, T, NULL, DL_ATTN_BIDIR, 0, err, sizeof err)) ||
        (rc = dl_model_dcache_init(&dc, &m, 1, T, 1, T, err, sizeof err))) {
        DL_CHECK(0, "bf16: compute, reserve, full forward, cache (%s)", err);
        dl_model_free(&m);
        dl_dev_close(dev);
        return;
    }
    float *full = malloc(sizeof(float) * (size_t)T * V);
    memcpy(full, dl_model_logits(&m), sizeof(float) * (size_t)T * V);
    const float *lg = NULL;
    for (int k = 0; k < 2; k++) {   /* refresh [0, T), then prefix [6, T) from the cache */
        q0[0] = k ? 6 : 0;
        nv[0] = T - q0[0];
        for (int j = 0; j < nv[0]; j++) { wids[j] = ids[q0[0] + j]; wsel[j] = j; }
        rc = dl_model_forward_window(&m, dc, wids, 1, nv[0], rows, q0, nv, nk, wsel, nv[0], &lg, err, sizeof err);
        char name[128];
        snprintf(name, sizeof name, "bf16 %s: window logits == the full bf16 forward's", k ? "prefix [6, T)" : "refresh");
        if (rc) DL_CHECK(0, "%s (%s)", name, err);
        else dl_tcheck(name, lg, full + (size_t)q0[0] * V, (size_t)nv[0] * V, 5e-2f, 2e-2f, 1e-4);
    }
    free(full);
    dl_model_dcache_free(dc);
    dl_model_free(&m);
    dl_dev_close(dev);
}

int main(void) {
    char err[256];
    dl_dev *dev = NULL;
    if (dl_dev_open(&dev, DL_DEV_CPU, 2, err, sizeof err)) { printf("not ok - device: %s\n", err); return 1; }
    dl_config c;
    dl_config_default(&c);
    c.dim = 64; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 16; c.hidden_dim = 96;
    c.vocab_size = 70; c.max_seq_len = 64; c.qkv_bias = 1; c.tied = 0;
    dl_model m = { 0 };
    int rc = dl_model_init(&m, &c, dev, err, sizeof err);
    DL_CHECK(rc == 0, "model init (%s)", rc ? err : "ok");
    if (rc) return 1;
    dl_model_init_weights(&m, 9);
    for (size_t i = 0; i < m.n_decay_params; i++) m.params[i] *= 8.0f;
    enum { B = 2, T = 20 };
    const int V = c.vocab_size, L[B] = { 20, 13 };
    uint32_t ids[B * T];
    int32_t lens[B] = { L[0], L[1] }, sel[B * T];
    for (int i = 0; i < B * T; i++) ids[i] = (uint32_t)(i * 13 + 5) % (uint32_t)V;
    int M = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < L[b]; i++) sel[M++] = b * T + i;
    rc = dl_model_reserve(&m, B, T, M, DL_ACTS_INFER, err, sizeof err);
    DL_CHECK(rc == 0, "reserve (%s)", rc ? err : "ok");
    float *full = malloc(sizeof(float) * (size_t)M * V);   /* (M, V): row b position i at moff[b] + i */
    const int moff[B] = { 0, L[0] };
    dl_dcache *dc = NULL;
    rc = dl_model_dcache_init(&dc, &m, B, T, B, B * T, err, sizeof err);
    DL_CHECK(rc == 0, "cache init (%s)", rc ? err : "ok");
    if (rc) return 1;
    float *want = malloc(sizeof(float) * (size_t)B * T * V);
    uint32_t wids[B * T];
    int32_t rows[B] = { 0, 1 }, q0[B], nv[B], nk[B] = { L[0], L[1] }, wsel[B * T];
    const float *lg = NULL;
    /* twice: the GEMM path, then packed weights (what dllm-sample runs) */
    for (int pack = 0; pack < 2; pack++) {
        dl_model_pack_weights(&m, pack);
        rc = dl_model_forward(&m, ids, lens, B, T, sel, NULL, M, NULL, DL_ATTN_BIDIR, 0, err, sizeof err);
        DL_CHECK(rc == 0, "full forward%s (%s)", pack ? ", packed weights" : "", rc ? err : "ok");
        memcpy(full, dl_model_logits(&m), sizeof(float) * (size_t)M * V);
        /* window [lo[b], hi[b]) of each row; the logits of all its slots vs the full forward */
        struct { const char *what; int lo[B], hi[B]; } cases[] = {
            { "refresh [0, L)", { 0, 0 }, { 20, 13 } },
            { "prefix [s, L) on the same canvas", { 8, 4 }, { 20, 13 } },
            { "dual [s, e) on the same canvas", { 8, 4 }, { 12, 8 } },
        };
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            int n = 0, Mw = 0;
            for (int b = 0; b < B; b++) n = cases[k].hi[b] - cases[k].lo[b] > n ? cases[k].hi[b] - cases[k].lo[b] : n;
            for (int b = 0; b < B; b++) {
                q0[b] = cases[k].lo[b];
                nv[b] = cases[k].hi[b] - cases[k].lo[b];
                for (int j = 0; j < n; j++) wids[b * n + j] = j < nv[b] ? ids[b * T + q0[b] + j] : 0;
                for (int j = 0; j < nv[b]; j++) {
                    wsel[Mw] = b * n + j;
                    memcpy(want + (size_t)Mw * V, full + (size_t)(moff[b] + q0[b] + j) * V, sizeof(float) * V);
                    Mw++;
                }
            }
            rc = dl_model_forward_window(&m, dc, wids, B, n, rows, q0, nv, nk, wsel, Mw, &lg, err, sizeof err);
            char name[128];
            snprintf(name, sizeof name, "%s: window logits == full forward within 1e-5%s", cases[k].what,
                     pack ? " (packed weights)" : "");
            if (rc) DL_CHECK(0, "%s (%s)", name, err);
            else dl_tcheck(name, lg, want, (size_t)Mw * V, 1e-5f, 1e-5f, 1e-10);
            if (!rc && pack)   /* one FMA chain per element whatever the rows: bit for bit */
                DL_CHECK(memcmp(lg, want, sizeof(float) * (size_t)Mw * V) == 0,
                         "%s: packed weights, window logits bit-identical to the full forward's", cases[k].what);
        }
    }
    dl_model_pack_weights(&m, 0);
    /* 4. forward row 0 through cache row 1: row 1's window [4, 8) */
    int32_t r1[1] = { 1 }, a0[1] = { 4 }, a1[1] = { 4 }, ak[1] = { L[1] }, as[4] = { 0, 1, 2, 3 };
    for (int j = 0; j < 4; j++) wids[j] = ids[T + 4 + j];
    rc = dl_model_forward_window(&m, dc, wids, 1, 4, r1, a0, a1, ak, as, 4, &lg, err, sizeof err);
    if (rc) DL_CHECK(0, "cache row mapping (%s)", err);
    else dl_tcheck("forward row 0 on cache row 1 == row 1's full logits", lg, full + (size_t)(moff[1] + 4) * V,
                   (size_t)4 * V, 1e-5f, 1e-5f, 1e-10);
    int32_t bad[1] = { 2 };
    rc = dl_model_forward_window(&m, dc, wids, 1, 4, bad, a0, a1, ak, as, 4, &lg, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE, "a cache row out of range is a usage error (%s)", err);
    free(full); free(want);
    dl_model_dcache_free(dc);
    dl_model_free(&m);
    dl_dev_close(dev);
    test_bf16(&c);
    return dl_test_end();
}
