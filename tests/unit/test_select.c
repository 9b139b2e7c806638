/* test_select.c — token selection on the device (kernels.h "token
 * selection") and the Philox copy kernels use.
 *
 * (a) kernels/kphilox.h against share/io/dl_rng: the round function word
 *     for word on random keys / counters, and kphilox_uniform against the
 *     sampler's uniform built from dl_philox4x32_10 (sample/noise.c's
 *     mapping) at indices across a 2^32 block boundary.
 * (b) dl_k_select_tokens (kernels/cpu, OpenMP over positions) against
 *     ref_select_tokens (kernels/ref) bit for bit: tokens and confidences,
 *     and the in-place logits after CFG and suppression, over every draw
 *     (argmax, Gumbel, inverse CDF) x filters (none, top-k, top-p, both) x
 *     confidences, Philox and explicit uniforms, with ties, -inf rows
 *     and a 3-thread device.
 * (c) share/model/dl_select.h on a tiny model: dl_select_run over the last
 *     forward's logits equals the reference on a host copy of them.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_rng.h"
#include "dl_batch.h"
#include "dl_model_open.h"
#include "dl_select.h"
#include "dl_test.h"
#include "kphilox.h"
#include "ref/ref.h"

static uint64_t sm_state = 12345;
static uint64_t splitmix(void) {
    uint64_t z = (sm_state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* sample/noise.c's uniform i of stream `stream` (its philox_u), from dl_rng */
static double noise_uniform(uint64_t seed, uint64_t stream, uint64_t i) {
    uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) }, w[4];
    uint64_t blk = i >> 1;
    uint32_t ctr[4] = { (uint32_t)stream, (uint32_t)(stream >> 32), (uint32_t)(((blk >> 32) << 8) | DL_RNG_SAMPLE),
                        (uint32_t)blk };
    dl_philox4x32_10(key, ctr, w);
    int h = (int)(i & 1);
    uint64_t x = (uint64_t)w[2 * h] | (uint64_t)w[2 * h + 1] << 32;
    return ((x >> 12) + 0.5) * 0x1.0p-52;
}

static void test_philox(void) {
    int same = 1;
    for (int t = 0; t < 1000; t++) {
        uint32_t key[2] = { (uint32_t)splitmix(), (uint32_t)splitmix() }, ctr[4], a[4], b[4];
        for (int j = 0; j < 4; j++) ctr[j] = (uint32_t)splitmix();
        dl_philox4x32_10(key, ctr, a);
        kphilox4x32_10(key, ctr, b);
        same &= !memcmp(a, b, sizeof a);
    }
    DL_CHECK(same, "kphilox4x32_10 == dl_philox4x32_10 on 1000 random keys / counters");
    same = 1;
    const uint64_t idx[] = { 0, 1, 2, 3, 77, 1ull << 33, (1ull << 33) + 1, (2ull << 32) - 1, 12345678901ull };
    for (int s = 0; s < 3; s++)
        for (size_t j = 0; j < sizeof idx / sizeof *idx; j++) {
            uint64_t seed = s * 0x100000001ull + 7, stream = s * 3 + 1;
            uint32_t key[2] = { (uint32_t)seed, (uint32_t)(seed >> 32) };
            double u = kphilox_uniform(key, stream, DL_RNG_SAMPLE, idx[j]);
            same &= u == noise_uniform(seed, stream, idx[j]) && u > 0 && u < 1;
        }
    DL_CHECK(same, "kphilox_uniform == the sampler's Philox uniform (block boundaries included)");
}

/* Random logits with ties, a few -inf, and (row 3) all -inf; finite only
 * for CFG (a model's logits are finite; -inf - -inf would make NaNs, which
 * have no order). */
static void fill_logits(float *l, int rows, int V, int finite) {
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < V; v++) {
            uint64_t x = splitmix();
            float *p = &l[(size_t)r * V + v];
            *p = (float)((int)(x % 41) - 20) * 0.25f;   /* many exact ties */
            if (!finite && x % 29 == 0) *p = -INFINITY;
            if (!finite && r == 3) *p = -INFINITY;
        }
}

static int compare(dl_dev *d, dl_select_args a, const double *noise, int n_noise, const char *what) {
    (void)n_noise;
    int M = a.M, V = a.V, rows = a.cfg ? 2 * M : M;
    float *l1 = malloc(sizeof(float) * (size_t)rows * V), *l2 = malloc(sizeof(float) * (size_t)rows * V);
    uint32_t t1[64], t2[64];
    double c1[64], c2[64];
    fill_logits(l1, rows, V, a.cfg);
    memcpy(l2, l1, sizeof(float) * (size_t)rows * V);
    a.noise = noise;
    a.logits = l1; a.tok = t1; a.confidence = c1;
    int rc1 = dl_k_select_tokens(d, &a);
    a.logits = l2; a.tok = t2; a.confidence = c2;
    int rc2 = ref_select_tokens(d, &a);
    int ok = !rc1 && !rc2 && !memcmp(t1, t2, sizeof(uint32_t) * M) && !memcmp(l1, l2, sizeof(float) * (size_t)rows * V);
    for (int q = 0; q < M; q++) ok &= (isnan(c1[q]) && isnan(c2[q])) || !memcmp(&c1[q], &c2[q], sizeof(double));
    for (int q = 0; q < M; q++) ok &= t1[q] < (uint32_t)V;
    if (!ok) printf("  # %s: mismatch (tok0 %u vs %u, conf0 %.17g vs %.17g)\n", what, t1[0], t2[0], c1[0], c2[0]);
    free(l1); free(l2);
    return ok;
}

static void test_kernel(void) {
    char err[256];
    dl_dev *d = NULL;
    if (dl_dev_open(&d, DL_DEV_CPU, 3, err, sizeof err)) { DL_CHECK(0, "open cpu: %s", err); return; }
    enum { M = 12, V = 97 };
    uint64_t stream[M], base[M];
    int32_t row[M];
    for (int q = 0; q < M; q++) { stream[q] = 1000 + q % 3; base[q] = (uint64_t)q * V + (q % 2); row[q] = M - 1 - q; }
    double *noise = malloc(sizeof(double) * (M * V + 2));
    for (int i = 0; i < M * V + 2; i++) noise[i] = ((splitmix() >> 11) + 0.5) * 0x1.0p-53;
    uint32_t sup[3] = { 5, 1000, 17 };
    const dl_sel_draw draws[] = { DL_SEL_ARGMAX, DL_SEL_GUMBEL, DL_SEL_INVCDF, DL_SEL_DREAM };
    const struct { int k; double p; } filt[] = { { 0, 1 }, { 7, 1 }, { 0, 0.6 }, { 9, 0.8 }, { 0, 0 }, { 1, 1 } };
    const dl_sel_conf confs[] = { DL_CONF_NONE, DL_CONF_PROB, DL_CONF_PROB0, DL_CONF_MARGIN, DL_CONF_NEGENT };
    int all = 1, n = 0;
    for (int di = 0; di < 4; di++)
      for (int ti = 0; ti < (draws[di] == DL_SEL_DREAM ? 2 : 1); ti++)   /* Dream: filters act at T = 0 too */
        for (int fi = 0; fi < 6; fi++)
            for (int ci = 0; ci < 5; ci++)
                for (int mode = 0; mode < 4; mode++) {   /* bit 0: explicit noise, bit 1: cfg (else rows) */
                    dl_select_args a = {
                        .M = M, .V = V, .cfg = mode >> 1, .cfg_w1 = 1.5f, .row = mode >> 1 ? NULL : row,
                        .suppress = sup, .n_suppress = 3, .mask_id = (uint32_t)(V - 1), .draw = draws[di],
                        .temperature = ti ? 0.0 : 0.8, .top_k = filt[fi].k, .top_p = filt[fi].p, .conf = confs[ci],
                        .key = { 0x1234, 99 }, .purpose = DL_RNG_SAMPLE, .noise_stream = stream, .noise_base = base,
                    };
                    char what[128];
                    snprintf(what, sizeof what, "draw %d, T %g, top-k %d, top-p %g, conf %d, mode %d", draws[di],
                             a.temperature, filt[fi].k, filt[fi].p, confs[ci], mode);
                    all &= compare(d, a, mode & 1 ? noise : NULL, M * V + 2, what);
                    n++;
                }
    DL_CHECK(all, "dl_k_select_tokens (cpu, 3 threads) == ref_select_tokens bit for bit (%d configurations)", n);
    free(noise);
    dl_dev_close(d);
}

/* (b') DL_SEL_DREAM against values worked by hand (Dream's sample_tokens at
 * temperature 0, so no noise):
 *   l = (2, 1, 0, -1), top-p 0.7: softmax = e^-j / 1.553 = .644 .237 .087 .032;
 *   the mass through id 0 is .644 <= .7, so id 1 is kept; through id 1 .881 >
 *   .7: id 2 is not.  q over {0, 1} = (s, 1 - s), s = 1 / (1 + e^-1):
 *   PROB s, MARGIN 2s - 1, NEGENT s log(s + 1e-10) + (1-s) log(1-s + 1e-10).
 *   l = (1, 3, 3, 0), top-k 1: both 3s kept (ties), q = (0, .5, .5, 0):
 *   token 1 (the lower id), MARGIN 0, PROB .5. */
static void test_dream_by_hand(void) {
    char err[256];
    dl_dev *d = NULL;
    if (dl_dev_open(&d, DL_DEV_CPU, 1, err, sizeof err)) { DL_CHECK(0, "open cpu: %s", err); return; }
    const double sg = 1.0 / (1.0 + exp(-1.0));
    const struct { float l[4]; int k; double p; dl_sel_conf c; uint32_t tok; double want; } cs[] = {
        { { 2, 1, 0, -1 }, 0, 0.7, DL_CONF_PROB, 0, sg },
        { { 2, 1, 0, -1 }, 0, 0.7, DL_CONF_MARGIN, 0, 2 * sg - 1 },
        { { 2, 1, 0, -1 }, 0, 0.7, DL_CONF_NEGENT, 0, sg * log(sg + 1e-10) + (1 - sg) * log(1 - sg + 1e-10) },
        { { 1, 3, 3, 0 }, 1, 1, DL_CONF_PROB, 1, 0.5 },
        { { 1, 3, 3, 0 }, 1, 1, DL_CONF_MARGIN, 1, 0.0 },
    };
    uint64_t zero = 0;
    int ok = 1;
    for (size_t i = 0; i < sizeof cs / sizeof *cs; i++)
        for (int b = 0; b < 2; b++) {   /* cpu, then ref */
            float l[4];
            memcpy(l, cs[i].l, sizeof l);
            uint32_t tok = 99;
            double c = -1;
            dl_select_args a = { .M = 1, .V = 4, .logits = l, .mask_id = 4, .draw = DL_SEL_DREAM, .temperature = 0,
                                 .top_k = cs[i].k, .top_p = cs[i].p, .conf = cs[i].c, .noise_stream = &zero,
                                 .noise_base = &zero, .tok = &tok, .confidence = &c };
            int rc = b ? ref_select_tokens(d, &a) : dl_k_select_tokens(d, &a);
            if (rc || tok != cs[i].tok || fabs(c - cs[i].want) > 1e-12) {
                printf("  # case %zu (%s): tok %u conf %.17g, want %u %.17g\n", i, b ? "ref" : "cpu", tok, c,
                       cs[i].tok, cs[i].want);
                ok = 0;
            }
        }
    DL_CHECK(ok, "DL_SEL_DREAM: Dream's top-p / top-k (ties kept) and confidences on q, worked by hand");
    dl_dev_close(d);
}

/* (c) the share/model wrapper on a real forward's logits */
static void test_wrapper(void) {
    char err[256];
    dl_config c;
    dl_config_default(&c);
    c.dim = 16; c.n_layers = 1; c.n_heads = 2; c.n_kv_heads = 2; c.head_dim = 8; c.hidden_dim = 32;
    c.vocab_size = 40; c.max_seq_len = 16; c.mask_token_id = 39;
    dl_model m;
    int rc = dl_model_open_config(&m, &c, 5, "cpu", 2, err, sizeof err);
    DL_CHECK(rc == 0, "dl_model_open_config%s%s", rc ? ": " : "", rc ? err : "");
    if (rc) return;
    enum { B = 2, T = 8, M = 6 };
    dl_batch bt = { 0 };
    dl_selector sel = { 0 };
    dl_select_cfg sc = { .draw = DL_SEL_GUMBEL, .conf = DL_CONF_MARGIN, .temperature = 1.0, .top_k = 10,
                         .top_p = 0.9, .cfg = 0.5, .mask_id = 39, .purpose = DL_RNG_SAMPLE };
    rc = dl_model_reserve(&m, B, T, 2 * M, DL_ACTS_INFER, err, sizeof err);
    if (!rc) rc = dl_batch_reserve(&bt, &m, B, B * T, 2 * M, err, sizeof err);
    if (!rc) rc = dl_select_init(&sel, &m, &sc, M, 0, err, sizeof err);
    DL_CHECK(rc == 0, "reserve, batch, selector%s%s", rc ? ": " : "", rc ? err : "");
    if (rc) { dl_model_close(&m); return; }
    for (int i = 0; i < B * T; i++) bt.ids[i] = (uint32_t)(i * 7 % 39);
    for (int q = 0; q < 2 * M; q++) bt.sel[q] = q;
    rc = dl_batch_forward(&bt, B, T, 2 * M, 0, 0, DL_ATTN_BIDIR, 0, err, sizeof err);
    float *host = malloc(sizeof(float) * 2 * M * c.vocab_size);
    dl_batch_download_logits(&bt, 2 * M, host);
    for (int q = 0; q < M; q++) { sel.stream[q] = 3; sel.base[q] = (uint64_t)q * c.vocab_size; }
    if (!rc) rc = dl_select_run(&sel, M, 77, err, sizeof err);
    uint32_t tok[M];
    double conf[M];
    dl_select_args a = { .M = M, .V = c.vocab_size, .logits = host, .cfg = 1, .cfg_w1 = 1.5f, .mask_id = 39,
                         .draw = DL_SEL_GUMBEL, .temperature = 1.0, .top_k = 10, .top_p = 0.9, .conf = DL_CONF_MARGIN,
                         .key = { 77, 0 }, .purpose = DL_RNG_SAMPLE, .noise_stream = sel.stream,
                         .noise_base = sel.base, .tok = tok, .confidence = conf };
    ref_select_tokens(NULL, &a);
    DL_CHECK(rc == 0 && !memcmp(tok, sel.tok, sizeof tok) && !memcmp(conf, sel.conf, sizeof conf),
             "dl_select_run on the model's logits == the reference on a host copy");
    free(host);
    dl_select_free(&sel);
    dl_batch_free(&bt);
    dl_model_close(&m);
}

int main(void) {
    test_philox();
    test_kernel();
    test_dream_by_hand();
    test_wrapper();
    return dl_test_end();
}
