/* test_bd3.c — block diffusion (BD3LM) training against the PyTorch
 * reference of tests/ref/gen_bd3_fixture.py (tests/data/bd3/fixture.json):
 * model A and the masked batch of tests/data/model (B = 3 rows, L = 16), run
 * as dllm-train --block-diffusion 4 runs it: rows [x_t ; x_0] (2L ids), mask
 * DL_ATTN_BD3 block 4 (both halves at RoPE positions 0..L-1, lens cutting
 * both), loss at the masked positions of the x_t half, `all` normalisation.
 * The reference builds bd3lms' three-part block_diff_mask on its own, so this
 * checks the kernels' mask, the positions and the layout, forward (ce, loss)
 * and backward (every tensor's gradient: stored samples + sums).
 * Sampling side: the exact block cache of dllm-sample (clean blocks' keys /
 * values computed once, block by block, with dl_model_forward_window; the
 * current block a window over them) gives the logits of the block-causal
 * full forward (DL_ATTN_BLOCK) within fp32 summation order (atol 1e-5 +
 * rtol 1e-4; not bit-identical: the cached attention and the smaller GEMMs
 * sum in another order).
 * Also: the x_t (+) x_0 forward differs from a plain bidirectional one (the
 * mask matters), and a clean x_0 query's output does not depend on x_t.
 * Tolerances as test_model.c (fp32 against float64): ce atol 1e-5 + rtol
 * 1e-4, loss 1e-5 relative, gradients rtol 1e-4 + 1e-5 x max |g|, sums
 * within 1e-4 of sum |g|, sum of squares 2e-4 relative.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dl_test.h"
#include "dl_fixture_weights.h"
#include "dl_loss.h"
#include "dl_model.h"

static dl_dev *dev;
static json_t *fm, *fb;   /* tests/data/model/fixture.json (batch), tests/data/bd3/fixture.json */

static int32_t *ints(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    int32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = (int32_t)json_integer_value(json_array_get(a, i));
    return v;
}
static float *floats(json_t *a, size_t *n) {
    *n = json_array_size(a);
    float *v = malloc((*n ? *n : 1) * sizeof *v);
    for (size_t i = 0; i < *n; i++) v[i] = (float)json_number_value(json_array_get(a, i));
    return v;
}
static json_t *bat(const char *k) { return json_object_get(json_object_get(fm, "batch"), k); }
static void *dput(const void *h, size_t bytes) {
    void *p = dl_dev_alloc(dev, bytes ? bytes : 4);
    if (bytes) dl_dev_h2d(dev, p, h, bytes);
    return p;
}

/* dl_attn_bd3_ranges (what the CPU kernel walks) is dl_attn_visible's set
 * for every query and key, over half-lengths, blocks and cuts incl. ragged ones. */
static void check_ranges(void) {
    int bad = 0, cases = 0;
    for (int L = 1; L <= 12; L++)
        for (int block = 1; block <= L + 1; block++)
            for (int len = -1; len <= L + 2; len++) {
                int T = 2 * L;
                for (int i = 0; i < T; i++) {
                    int r[4], jend = 0;
                    dl_attn_bd3_ranges(i, len, T, block, r);
                    if (!(r[0] <= r[1] || r[0] == r[1]) || (r[1] > r[0] && r[3] > r[2] && r[1] > r[2])) bad++;
                    for (int j = 0; j < T; j++) {
                        int in = (j >= r[0] && j < r[1]) || (j >= r[2] && j < r[3]);
                        if (in != dl_attn_visible(i, j, len, T, DL_ATTN_BD3, block)) bad++;
                        if (in) jend = j + 1;
                    }
                    if (jend != dl_attn_jend(i, len, T, DL_ATTN_BD3, block)) bad++;
                    cases++;
                }
            }
    DL_CHECK(bad == 0, "BD3 visible keys as two ranges == dl_attn_visible for every key (%d queries, %d bad)", cases,
             bad);
}

int main(void) {
    check_ranges();
    char err[256];
    json_error_t je;
    fm = json_load_file("tests/data/model/fixture.json", 0, &je);
    fb = json_load_file("tests/data/bd3/fixture.json", 0, &je);
    dl_config c;
    if (!fm || !fb || dl_config_load(&c, "tests/data/model/config.json", err, sizeof err) ||
        dl_dev_open(&dev, DL_DEV_CPU, 0, err, sizeof err)) {
        DL_CHECK(0, "fixtures, config and device (run from the repository root)");
        return dl_test_end();
    }
    int B = (int)json_integer_value(bat("B")), L = (int)json_integer_value(bat("T")), T = 2 * L, M, n;
    int block = (int)json_integer_value(json_object_get(fb, "block"));
    int32_t *xt = ints(bat("xt"), &n), *x0 = ints(bat("x0"), &n), *lens = ints(bat("lens"), &n);
    int32_t *np = ints(bat("n_prompt"), &n), *sel = ints(json_object_get(fb, "sel"), &M);
    uint32_t *ids = malloc((size_t)B * T * sizeof *ids), *tg = malloc((size_t)M * sizeof *tg);
    int32_t *sel2 = malloc((size_t)M * sizeof *sel2), *row = malloc((size_t)M * sizeof *row);
    float *tpos = malloc((size_t)M * sizeof *tpos);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < L; i++) {   /* row b: [x_t ; x_0] */
            ids[(size_t)b * T + i] = (uint32_t)xt[b * L + i];
            ids[(size_t)b * T + L + i] = (uint32_t)x0[b * L + i];
        }
    for (int k = 0; k < M; k++) {
        row[k] = sel[k] / L;
        sel2[k] = row[k] * T + sel[k] % L;
        tg[k] = (uint32_t)x0[sel[k]];
        tpos[k] = (float)json_real_value(json_array_get(bat("t"), row[k]));
    }
    dl_model m;
    DL_CHECK(!dl_model_init(&m, &c, dev, err, sizeof err) && !dl_model_alloc_grads(&m, err, sizeof err) &&
             !dl_model_reserve(&m, B, T, M, DL_ACTS_TRAIN, err, sizeof err), "model A, %d x %d reserved", B, T);
    gen_weights(&m);
    uint32_t *d_ids = dput(ids, (size_t)B * T * 4), *d_tg = dput(tg, (size_t)M * 4);
    int32_t *d_lens = dput(lens, (size_t)B * 4), *d_sel = dput(sel2, (size_t)M * 4);
    float *d_ce = dl_dev_alloc(dev, (size_t)M * 4), *ce = malloc((size_t)M * sizeof *ce);
    float *dce = malloc((size_t)M * sizeof *dce);

    int rc = dl_model_forward(&m, d_ids, d_lens, B, T, d_sel, d_tg, M, d_ce, DL_ATTN_BD3, block, err, sizeof err);
    DL_CHECK(rc == 0, "forward [x_t ; x_0] DL_ATTN_BD3 block %d: %s", block, rc ? err : "ok");
    dl_dev_d2h(dev, ce, d_ce, (size_t)M * 4);
    size_t nref;
    float *ref = floats(json_object_get(fb, "ce"), &nref);
    DL_CHECK(nref == (size_t)M, "%d masked positions", M);
    dl_tcheck("ce (x_t half) vs PyTorch bd3lms mask", ce, ref, (size_t)M, 1e-5f, 1e-4f, 1e-9);
    dl_loss_cfg lc = { DL_NORM_ALL, 0, 0 };
    dl_loss_batch lb = { .M = M, .row = row, .t = tpos, .n_rows = B, .n_prompt = np, .L = L, .total_rows = B,
                         .total_eligible = (double)json_integer_value(bat("eligible")), .total_masked = M };
    double loss = dl_loss_eval(&lc, &lb, ce, dce, NULL), lref = json_real_value(json_object_get(fb, "loss_all"));
    DL_CHECK(fabs(loss - lref) <= 1e-5 * fabs(lref), "loss all %.9g == reference %.9g", loss, lref);
    float *d_dce = dput(dce, (size_t)M * 4);
    dl_model_zero_grads(&m);
    DL_CHECK(dl_model_backward(&m, d_dce, err, sizeof err) == 0, "backward");
    float *g = malloc(m.n_params * sizeof *g);
    dl_dev_d2h(dev, g, m.grads, m.n_params * sizeof *g);
    int bad = 0;
    for (int i = 0; i < m.n_tensors; i++) {
        const dl_tensor *t = &m.tensors[i];
        size_t nt = t->ndim == 2 ? (size_t)t->shape[0] * t->shape[1] : (size_t)t->shape[0], ns, k = 0;
        const float *gt = g + t->offset;
        float *rs = floats(json_object_get(json_object_get(fb, "grad_sample"), t->name), &ns);
        float *sums = floats(json_object_get(json_object_get(fb, "grad_sums"), t->name), &k);
        float *got = malloc((ns ? ns : 1) * sizeof *got);
        size_t s = (nt / 256) | 1;
        k = 0;
        for (size_t j = 0; j < nt && k < ns; j += s) got[k++] = gt[j];
        float mx = 0;
        for (size_t j = 0; j < ns; j++) mx = fmaxf(mx, fabsf(rs[j]));
        double s0 = 0, s2 = 0;
        for (size_t j = 0; j < nt; j++) { s0 += gt[j]; s2 += (double)gt[j] * gt[j]; }
        int ok = ns > 0 && k == ns && dl_tcheck(t->name, got, rs, ns, 1e-5f * mx + 1e-10f, 1e-4f, 1e-8) &&
                 fabs(s0 - sums[0]) <= 1e-4 * sums[1] + 1e-12 && fabs(s2 - sums[2]) <= 2e-4 * sums[2] + 1e-12;
        if (!ok) { printf("  # %s: sums %g %g ref %g %g\n", t->name, s0, s2, sums[0], sums[2]); bad++; }
        free(rs); free(sums); free(got);
    }
    DL_CHECK(bad == 0, "every gradient of the BD3 loss == PyTorch's (%d tensors off)", bad);

    /* the mask matters: a bidirectional forward over the same 2L ids differs */
    rc = dl_model_forward(&m, d_ids, d_lens, B, T, d_sel, d_tg, M, d_ce, DL_ATTN_BIDIR, 0, err, sizeof err);
    float *ceb = malloc((size_t)M * sizeof *ceb);
    dl_dev_d2h(dev, ceb, d_ce, (size_t)M * 4);
    double dmax = 0;
    for (int k = 0; k < M; k++) dmax = fmax(dmax, fabs(ceb[k] - ce[k]));
    DL_CHECK(rc == 0 && dmax > 1e-3, "bidirectional over [x_t ; x_0] differs (max |d ce| %.3g)", dmax);

    /* clean queries never see x_t: change x_t, the x_0 half's logits stay bit-identical */
    int32_t csel[4] = { L, L + 5, 2 * T - 1, T + L + 2 };   /* x_0 positions of rows 0, 0, 2, 1 */
    int32_t *d_csel = dput(csel, sizeof csel);
    float a[4 * 300], bb[4 * 300];
    int V = c.vocab_size;
    rc = dl_model_forward(&m, d_ids, d_lens, B, T, d_csel, NULL, 4, NULL, DL_ATTN_BD3, block, err, sizeof err);
    dl_dev_d2h(dev, a, dl_model_logits(&m), (size_t)4 * V * 4);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < L; i++) ids[(size_t)b * T + i] = (uint32_t)((i * 7 + b) % (V - 1));
    dl_dev_h2d(dev, d_ids, ids, (size_t)B * T * 4);
    rc |= dl_model_forward(&m, d_ids, d_lens, B, T, d_csel, NULL, 4, NULL, DL_ATTN_BD3, block, err, sizeof err);
    dl_dev_d2h(dev, bb, dl_model_logits(&m), (size_t)4 * V * 4);
    DL_CHECK(rc == 0 && V <= 300 && !memcmp(a, bb, (size_t)4 * V * 4), "x_0 half's logits do not depend on x_t");

    /* the block cache: canvas x0 row 0 with block 2 ([8, 12)) half masked and
     * [12, 16) all masks; logits of block 2 cached vs recomputed */
    {
        const int cl = 16, mid = (int)c.mask_token_id;
        uint32_t cv[16];
        for (int i = 0; i < cl; i++) cv[i] = i >= 12 || i == 9 || i == 10 ? (uint32_t)mid : (uint32_t)x0[i];
        int32_t fsel[4] = { 8, 9, 10, 11 }, wsel[4] = { 0, 1, 2, 3 };
        uint32_t *d_cv = dput(cv, sizeof cv);
        int32_t *d_fsel = dput(fsel, sizeof fsel);
        float full[4 * 300], *cached = malloc(sizeof full);
        rc = dl_model_forward(&m, d_cv, NULL, 1, cl, d_fsel, NULL, 4, NULL, DL_ATTN_BLOCK, block, err, sizeof err);
        dl_dev_d2h(dev, full, dl_model_logits(&m), (size_t)4 * V * 4);
        dl_dcache *dc = NULL;
        rc |= dl_model_dcache_init(&dc, &m, 1, cl, 1, 4, err, sizeof err);
        const float *wl = NULL;
        int32_t r0 = 0;
        for (int k = 0; k < 2 && !rc; k++) {   /* clean blocks 0, 1: each sees the cache before it and itself */
            int32_t q0 = k * block, nv = block, nk = (k + 1) * block;
            rc = dl_model_forward_window(&m, dc, cv + q0, 1, block, &r0, &q0, &nv, &nk, wsel, 0, &wl, err,
                                         sizeof err);
        }
        int32_t q0 = 8, nv = 4, nk = 12;   /* the current block: itself + the clean cache [0, 8) */
        if (!rc) rc = dl_model_forward_window(&m, dc, cv + 8, 1, 4, &r0, &q0, &nv, &nk, wsel, 4, &wl, err, sizeof err);
        if (!rc) dl_dev_d2h(dev, cached, wl, (size_t)4 * V * 4);
        DL_CHECK(rc == 0, "block cache forwards: %s", rc ? err : "ok");
        double md = 0;
        for (int k = 0; k < 4 * V; k++) md = fmax(md, fabs(cached[k] - full[k]));
        if (!rc) dl_tcheck("block-cached logits == block-causal full forward's", cached, full, (size_t)4 * V, 1e-5f,
                           1e-4f, 1e-9);
        printf("  # block cache vs full: max |d logit| %.3g (%s)\n", md, md == 0 ? "bit-identical" : "fp32 order");
        dl_model_dcache_free(dc);
        dl_dev_free(dev, d_cv); dl_dev_free(dev, d_fsel);
        free(cached);
    }

    dl_dev_free(dev, d_ids); dl_dev_free(dev, d_tg); dl_dev_free(dev, d_lens); dl_dev_free(dev, d_sel);
    dl_dev_free(dev, d_ce); dl_dev_free(dev, d_dce); dl_dev_free(dev, d_csel);
    free(ids); free(tg); free(sel2); free(row); free(tpos); free(ce); free(dce); free(ref); free(g); free(ceb);
    free(xt); free(x0); free(lens); free(np); free(sel);
    dl_model_free(&m);
    dl_dev_close(dev);
    json_decref(fm); json_decref(fb);
    return dl_test_end();
}
