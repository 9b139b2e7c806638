/* test_kv.c — KV-cached incremental causal inference (dl_model_kv.c and
 * kernels/cpu/attention_kv.c) against full recomputation.
 *
 * 1. dl_k_attention_kv_fwd == the matching query rows of dl_k_attention_fwd
 *    DL_ATTN_CAUSAL over the whole sequence (GQA 4/2, 300 keys so the
 *    online softmax crosses several 128-key chunks, rows with different
 *    pasts, including 0), within 1e-6.
 * 2. dl_model_forward_kv on small random models (GQA with QKV bias and an
 *    untied head in HALF RoPE layout; no GQA, tied, PAIRS layout): batched
 *    prefill of prompts of different lengths (padding slots), single-token
 *    steps, multi-token chunks with n_valid 0 rows, a row restarted at
 *    pos0 = 0 — every row's logits equal dl_model_forward DL_ATTN_CAUSAL over
 *    that row's whole prefix (head at its last position) within 1e-5.
 *    Weights are dl_model_init_weights scaled x8, so logits and attention
 *    patterns are far from uniform.
 *    The first model again computing in bf16 on the reference backend
 *    (the cache, the activations and the logits' GEMM in bf16): within 5e-2
 *    of the full bf16 recompute (logits of size ~10; both round the same
 *    ops to bf16, the attention's in another order).
 * 3. Bad shapes are usage errors.
 * 4. stories260K (converted from share/data/stories260K): greedy decoding with
 *    the cache, two rows batched (BOS alone; BOS + the first 20 expected ids),
 *    both continue to expected_greedy_t0_ids.txt exactly (argmax over the
 *    512 llama2.c ids, stop at BOS as llama2.c's run.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_test.h"
#include "dl_ckpt.h"
#include "dl_model.h"
#include "dl_rng.h"

static dl_dev *dev;

static void fill(float *x, size_t n, uint64_t seed) {
    dl_rng r;
    dl_rng_init(&r, seed, 0, 0, DL_RNG_INIT);
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * dl_rng_double_open(&r) - 1.0);
}

/* ------------------------------------------------------------ 1. kernel */
static void test_kernel(void) {
    enum { B = 3, T = 300, Hq = 4, Hk = 2, E = 8, n = 6 };
    size_t nq = (size_t)B * T * Hq * E, nk = (size_t)B * T * Hk * E;
    float *q = malloc(nq * 4), *k = malloc(nk * 4), *v = malloc(nk * 4), *out = malloc(nq * 4),
          *att = malloc((size_t)B * Hq * T * T * 4), *qn = malloc((size_t)B * n * Hq * E * 4),
          *on = malloc((size_t)B * n * Hq * E * 4), *ref = malloc((size_t)B * n * Hq * E * 4);
    fill(q, nq, 1); fill(k, nk, 2); fill(v, nk, 3);
    for (size_t i = 0; i < nq; i++) q[i] *= 3.0f;   /* peaked attention */
    float *lse = malloc((size_t)B * Hq * T * 4);
    dl_k_attention_fwd(dev, DL_F32, out, lse, att, q, k, v, NULL, B, T, Hq, Hk, E, DL_ATTN_CAUSAL, 0);
    int32_t past[B] = { 0, 150, 294 };
    size_t row = (size_t)Hq * E;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++) {
            memcpy(qn + ((size_t)b * n + j) * row, q + ((size_t)b * T + past[b] + j) * row, row * 4);
            memcpy(ref + ((size_t)b * n + j) * row, out + ((size_t)b * T + past[b] + j) * row, row * 4);
        }
    dl_k_attention_kv_fwd(dev, DL_F32, on, qn, k, v, past, B, n, T, Hq, Hk, E);
    dl_tcheck("attention_kv == causal attention rows (GQA 4/2, pasts 0/150/294, 6 new)", on, ref,
              (size_t)B * n * row, 1e-6f, 1e-5f, 1e-10);
    free(q); free(k); free(v); free(out); free(att); free(lse); free(qn); free(on); free(ref);
}

/* ------------------------------------------------------------ 2. model */
typedef struct {
    dl_model *m;
    dl_kv *kv;
    int B, Tmax, V;
    uint32_t *seq;      /* host (B, Tmax): every row's tokens so far */
    int32_t *len;       /* host (B) */
    uint32_t *d_ids, *d_full;
    int32_t *d_sel;
    float *d_logits, *got, *want;   /* got / want: (B, V) host */
    int fails;
    float atol;         /* 1e-5 in f32; bf16 compute: 5e-2 (both sides round the same ops to bf16, in other orders) */
} harness;

/* full causal recompute of row b's prefix; logits of its last token into want (V) */
static int full_logits(harness *h, int b, float *want) {
    char err[256];
    int L = h->len[b];
    int32_t last = L - 1;
    dl_dev_h2d(dev, h->d_full, h->seq + (size_t)b * h->Tmax, (size_t)L * 4);
    dl_dev_h2d(dev, h->d_sel, &last, 4);
    if (dl_model_forward(h->m, h->d_full, NULL, 1, L, h->d_sel, NULL, 1, NULL, DL_ATTN_CAUSAL, 0, err, sizeof err)) {
        printf("  # %s\n", err);
        return -1;
    }
    dl_dev_d2h(dev, want, dl_model_logits(h->m), (size_t)h->V * 4);
    return 0;
}

/* append new[b][0..nv[b]) to each row through the cache and compare every
 * row with nv > 0 against a full recompute */
static void step(harness *h, const char *what, int n_new, const int *nv, uint64_t seed) {
    char err[256], name[200];
    uint32_t ids[64 * 8];
    int32_t pos0[8], nval[8];
    dl_rng r;
    dl_rng_init(&r, seed, 0, 0, DL_RNG_INIT);
    for (int b = 0; b < h->B; b++) {
        pos0[b] = h->len[b];
        nval[b] = nv[b];
        for (int j = 0; j < n_new; j++) {
            uint32_t t = (uint32_t)(dl_rng_double_open(&r) * h->V) % (uint32_t)h->V;
            ids[b * n_new + j] = j < nv[b] ? t : 0;   /* padding: any valid id */
            if (j < nv[b]) h->seq[(size_t)b * h->Tmax + h->len[b] + j] = t;
        }
    }
    dl_dev_h2d(dev, h->d_ids, ids, (size_t)h->B * n_new * 4);
    int rc = dl_model_forward_kv(h->m, h->kv, h->d_ids, h->B, n_new, pos0, nval, h->d_logits, err, sizeof err);
    if (rc) { DL_CHECK(0, "%s: forward_kv (%s)", what, err); return; }
    for (int b = 0; b < h->B; b++) h->len[b] += nv[b];
    size_t n = 0;   /* rows with new tokens, concatenated */
    char rows[64] = "";
    for (int b = 0; b < h->B; b++) {
        if (!nv[b]) continue;
        dl_dev_d2h(dev, h->got + n, h->d_logits + (size_t)b * h->V, (size_t)h->V * 4);
        if (full_logits(h, b, h->want + n)) { DL_CHECK(0, "%s: full forward", what); return; }
        n += (size_t)h->V;
        snprintf(rows + strlen(rows), sizeof rows - strlen(rows), "%s%d", *rows ? "/" : "", h->len[b]);
    }
    snprintf(name, sizeof name, "%s: logits == full causal recompute (rows of %s tokens)", what, rows);
    dl_tcheck(name, h->got, h->want, n, h->atol, 0.0f, h->atol > 1e-4f ? 1e-4 : 1e-10);
}

/* bf16: the model computes in bf16 (dl_model_set_compute; dev must have bf16 ops: ref) */
static void test_model(const char *label, int n_heads, int n_kv, int tied, int bias, dl_rope_layout layout, int bf16) {
    char err[256];
    dl_config c;
    dl_config_default(&c);
    c.dim = 32; c.n_layers = 2; c.n_heads = n_heads; c.n_kv_heads = n_kv; c.head_dim = 8; c.hidden_dim = 48;
    c.vocab_size = 61; c.max_seq_len = 64; c.tied = tied; c.qkv_bias = bias; c.rope_layout = layout;
    dl_model m;
    int rc = dl_model_init(&m, &c, dev, err, sizeof err);
    DL_CHECK(rc == 0, "%s: model init (%s)", label, rc ? err : "");
    if (rc) return;
    dl_model_init_weights(&m, 11);
    /* x8 on every matrix, and biases / norm weights made non-trivial */
    float *p = malloc(m.n_params * 4);
    dl_dev_d2h(dev, p, m.params, m.n_params * 4);
    for (size_t i = 0; i < m.n_decay_params; i++) p[i] *= 8.0f;
    {
        dl_rng r;
        dl_rng_init(&r, 5, 0, 0, DL_RNG_INIT);
        for (size_t i = m.n_decay_params; i < m.n_params; i++) p[i] += (float)(0.5 * dl_rng_double_open(&r) - 0.25);
    }
    dl_dev_h2d(dev, m.params, p, m.n_params * 4);
    free(p);
    if (bf16 && (rc = dl_model_set_compute(&m, DL_BF16, err, sizeof err))) {
        DL_CHECK(0, "%s: bf16 compute (%s)", label, err);
        dl_model_free(&m);
        return;
    }

    harness h = { .m = &m, .B = 3, .Tmax = 40, .V = c.vocab_size, .atol = bf16 ? 5e-2f : 1e-5f };
    rc = dl_model_kv_init(&h.kv, &m, h.B, h.Tmax, 9, err, sizeof err);
    DL_CHECK(rc == 0, "%s: kv cache for 3 rows x 40 positions, 9 new per call (%s)", label, rc ? err : "");
    rc = rc ? rc : dl_model_reserve(&m, 1, h.Tmax, 1, DL_ACTS_INFER, err, sizeof err);
    if (rc) { dl_model_free(&m); return; }
    h.seq = calloc((size_t)h.B * h.Tmax, 4);
    h.len = calloc((size_t)h.B, 4);
    h.d_ids = dl_dev_alloc(dev, (size_t)h.B * 9 * 4);
    h.d_full = dl_dev_alloc(dev, (size_t)h.Tmax * 4);
    h.d_sel = dl_dev_alloc(dev, 4);
    h.d_logits = dl_dev_alloc(dev, (size_t)h.B * h.V * 4);
    h.got = malloc((size_t)h.B * h.V * 4);
    h.want = malloc((size_t)h.B * h.V * 4);

    char what[128];
    snprintf(what, sizeof what, "%s prefill 1/5/9", label);
    step(&h, what, 9, (int[]){ 1, 5, 9 }, 100);
    for (int s = 0; s < 6; s++) {
        snprintf(what, sizeof what, "%s step %d", label, s + 1);
        step(&h, what, 1, (int[]){ 1, 1, 1 }, 200 + s);
    }
    snprintf(what, sizeof what, "%s chunk 3/0/2", label);
    step(&h, what, 3, (int[]){ 3, 0, 2 }, 300);
    snprintf(what, sizeof what, "%s chunk 7/9/4", label);
    step(&h, what, 9, (int[]){ 7, 9, 4 }, 301);
    /* row 1 restarts from scratch: its old cache beyond the new prompt is stale */
    h.len[1] = 0;
    snprintf(what, sizeof what, "%s restart row 1 (2 tokens), others 1", label);
    step(&h, what, 2, (int[]){ 1, 2, 1 }, 400);
    snprintf(what, sizeof what, "%s after restart", label);
    step(&h, what, 1, (int[]){ 1, 1, 1 }, 401);

    /* usage errors */
    int32_t pos0[3] = { 39, 0, 0 }, nv[3] = { 2, 1, 1 };
    rc = dl_model_forward_kv(&m, h.kv, h.d_ids, 3, 2, pos0, nv, h.d_logits, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE, "%s: a row past T_max is a usage error (%s)", label, err);
    rc = dl_model_forward_kv(&m, h.kv, h.d_ids, 4, 1, pos0, NULL, h.d_logits, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE, "%s: more rows than reserved is a usage error (%s)", label, err);
    rc = dl_model_forward_kv(&m, h.kv, h.d_ids, 1, 10, pos0 + 1, NULL, h.d_logits, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE, "%s: more new tokens than n_max is a usage error (%s)", label, err);

    dl_model_kv_free(h.kv);
    dl_dev_free(dev, h.d_ids); dl_dev_free(dev, h.d_full); dl_dev_free(dev, h.d_sel); dl_dev_free(dev, h.d_logits);
    free(h.seq); free(h.len); free(h.got); free(h.want);
    dl_model_free(&m);
}

/* ------------------------------------------------------------ 4. stories260K */
#define S260 "share/data/stories260K/"

static void test_stories(void) {
    char err[512], scratch[] = "/tmp/dllm-kv-XXXXXX", tj[4096];
    if (!mkdtemp(scratch)) { DL_CHECK(0, "mkdtemp"); return; }
    dl_model m;
    int rc = dl_convert_load(&m, S260 "stories260K.bin", NULL, scratch, tj, sizeof tj, dev, err, sizeof err);
    DL_CHECK(rc == 0, "convert stories260K (%s)", rc ? err : "");
    if (!rc) {
        uint32_t want[512];
        int nw = 0;
        FILE *f = fopen(S260 "expected_greedy_t0_ids.txt", "r");
        unsigned x;
        while (f && nw < 512 && fscanf(f, "%u", &x) == 1) want[nw++] = x;
        if (f) fclose(f);
        enum { B = 2, P1 = 20, TM = 420 };
        int V = m.cfg.vocab_size;
        dl_kv *kv = NULL;
        rc = dl_model_kv_init(&kv, &m, B, TM, P1 + 1, err, sizeof err);
        DL_CHECK(rc == 0, "stories260K kv cache (%s)", rc ? err : "");
        uint32_t ids[B * (P1 + 1)] = { 0 }, got[B][TM];
        int ng[B] = { 0, P1 }, done[B] = { 0, 0 };
        int32_t pos0[B] = { 0, 0 }, nv[B] = { 1, P1 + 1 };
        ids[0] = 1;
        ids[P1 + 1] = 1;
        for (int j = 0; j < P1; j++) { ids[P1 + 2 + j] = want[j]; got[1][j] = want[j]; }
        uint32_t *d_ids = dl_dev_alloc(dev, sizeof ids);
        float *d_logits = dl_dev_alloc(dev, sizeof(float) * B * V), *lg = malloc(sizeof(float) * B * V);
        int n_new = P1 + 1;
        while (!rc && (!done[0] || !done[1])) {
            dl_dev_h2d(dev, d_ids, ids, sizeof(uint32_t) * B * n_new);
            rc = dl_model_forward_kv(&m, kv, d_ids, B, n_new, pos0, nv, d_logits, err, sizeof err);
            if (rc) { DL_CHECK(0, "stories260K forward_kv (%s)", err); break; }
            dl_dev_d2h(dev, lg, d_logits, sizeof(float) * B * V);
            for (int b = 0; b < B; b++) {
                pos0[b] += nv[b];
                if (done[b]) { nv[b] = 0; continue; }
                int best = 0;
                for (int i = 1; i < 512; i++) if (lg[b * V + i] > lg[b * V + best]) best = i;
                if (best == 1 || ng[b] == 400) { done[b] = 1; nv[b] = 0; continue; }
                got[b][ng[b]++] = (uint32_t)best;
                ids[b] = (uint32_t)best;   /* n_new = 1 from now on: row b's slot is ids[b] */
                nv[b] = 1;
            }
            n_new = 1;
        }
        for (int b = 0; b < B; b++) {
            int same = ng[b] == nw, fd = -1;
            for (int i = 0; i < ng[b] && i < nw; i++) if (got[b][i] != want[i]) { same = 0; fd = i; break; }
            DL_CHECK(same && nw == 345, "stories260K greedy with the kv cache, row %d (prompt BOS%s) == "
                     "expected_greedy_t0_ids.txt (%d ids, got %d, first diff %d)", b, b ? " + 20 ids" : "", nw,
                     ng[b], fd);
        }
        dl_dev_free(dev, d_ids);
        dl_dev_free(dev, d_logits);
        free(lg);
        dl_model_kv_free(kv);
        dl_model_free(&m);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", scratch);
    if (system(cmd)) printf("# could not remove %s\n", scratch);
}

int main(void) {
    char err[256];
    int rc = dl_dev_open(&dev, DL_DEV_CPU, 0, err, sizeof err);
    DL_CHECK(rc == 0, "cpu device (%s)", rc ? err : "");
    if (rc) return dl_test_end();
    test_kernel();
    test_model("GQA 4/2 bias untied half", 4, 2, 0, 1, DL_ROPE_HALF, 0);
    test_model("MHA 4/4 tied pairs", 4, 4, 1, 0, DL_ROPE_PAIRS, 0);
    /* bf16 compute (the cache in bf16) on the reference backend, the one with bf16 ops here */
    dl_dev *cpu = dev;
    if (dl_dev_open(&dev, DL_DEV_REF, 0, err, sizeof err) == 0) {
        test_model("ref bf16 GQA 4/2 bias untied half", 4, 2, 0, 1, DL_ROPE_HALF, 1);
        dl_dev_close(dev);
    } else DL_CHECK(0, "ref device (%s)", err);
    dev = cpu;
    test_stories();
    dl_dev_close(dev);
    return dl_test_end();
}
