/* test_score.c — dllm-score's estimators (score/estimate.c, linked from
 * build/score/libscore.a; estimate_internal.h exposes its buffers).
 *
 * (a) ELBO convergence: a tiny model (vocab 8 with mask id 7, 2 layers,
 *     dim 16, hash weights as tests/ref/gen_model_fixture.py's weight())
 *     and sequences of length 1..4.  The exact ELBO enumerates every mask
 *     pattern S (2^L) with its exact weight
 *        E_t[sum_{i in S} ce_i / t]  =  sum_S ce_S * w_|S|,
 *        w_m = 1/(1-eps) * int_eps^1 t^(m-1) (1-t)^(L-m) dt
 *     (closed form by expanding (1-t)^(L-m) binomially).  sc_elbo at
 *     --mc 40000 must land within 3 standard errors of it (the seed is
 *     fixed, so the check is deterministic), and its se must be small
 *     (< 1% of the value: "large --mc").  The estimate does not depend on
 *     --batch (same draws; the GEMMs' shapes change, so equal up to fp32
 *     rounding).
 * (b) Conditional estimator vs tests/data/score/cond.json (LLaDA's
 *     get_log_likelihood in PyTorch, same Philox draws; see
 *     tests/ref/gen_score_fixture.py) on model A of tests/data/model:
 *     k per group and the stratified counts must be equal, ll within 1e-5
 *     relative (fp32 forward vs float64 reference), se within 1e-3 relative;
 *     again with a memory budget that allows one row per forward.
 * (c) --causal on the converted stories260K (bin/dllm-train --init ...
 *     --steps 0, run here): per-token log-probs within 1e-4 of
 *     tests/data/score/causal_stories260k.json (an independent float64
 *     PyTorch forward); sc_elbo causal = -sum lp; sc_cond_loglik causal =
 *     the sum over the response; sc_greedy_match on llama2.c's greedy story.
 * Plus: no mask token -> -DL_EXIT_DATA, --mc 0 -> -DL_EXIT_USAGE, bad ids.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "dl_ckpt.h"
#include "dl_io.h"
#include "dl_log.h"
#include "dl_rng.h"
#include "dl_test.h"
#include "dl_fixture_weights.h"
#include "estimate_internal.h"

static char tmpdir[256];

/* gen_weights(): the reference model's weights, tests/unit/dl_fixture_weights.h */

/* Write a checkpoint of cfg with hash weights into tmpdir/name. */
static int make_ckpt(const dl_config *cfg, const char *name, char *dir, size_t dlen) {
    char err[512];
    dl_dev *dev = NULL;
    dl_model m;
    memset(&m, 0, sizeof m);
    snprintf(dir, dlen, "%s/%s", tmpdir, name);
    int rc = dl_dev_open(&dev, DL_DEV_CPU, 0, err, sizeof err);
    if (!rc) rc = dl_model_init(&m, cfg, dev, err, sizeof err);
    if (!rc) { gen_weights(&m); rc = dl_ckpt_save(&m, dir, NULL, NULL, 0, err, sizeof err); }
    if (rc) printf("  # make_ckpt %s: %s\n", name, err);
    dl_model_free(&m);
    dl_dev_close(dev);
    return rc;
}

static void tiny_config(dl_config *c) {
    dl_config_default(c);
    c->dim = 16; c->n_layers = 2; c->n_heads = 2; c->n_kv_heads = 1; c->head_dim = 8;
    c->hidden_dim = 24; c->vocab_size = 8; c->max_seq_len = 8;
    c->mask_token_id = 7; c->bos_token_id = 0; c->eos_token_id = 1;
}

/* ---------------------------------------------------------------- (a) */
static double binom(int n, int k) {
    double r = 1;
    for (int i = 1; i <= k; i++) r = r * (n - k + i) / i;
    return r;
}
/* 1/(1-eps) int_eps^1 t^(m-1) (1-t)^(L-m) dt, m >= 1 */
static double pattern_weight(int m, int L, double eps) {
    double s = 0;
    for (int j = 0; j <= L - m; j++) s += binom(L - m, j) * (j & 1 ? -1 : 1) * (1 - pow(eps, m + j)) / (m + j);
    return s / (1 - eps);
}

static double exact_elbo(sc_ctx *c, const uint32_t *ids, int L) {
    char err[256];
    int P = 1 << L, M = 0;
    if (ensure(c, P, L, P * L, err, sizeof err)) return NAN;
    for (int s = 0; s < P; s++)
        for (int j = 0; j < L; j++) {
            c->b.ids[s * L + j] = (s >> j & 1) ? c->mask_id : ids[j];
            if (s >> j & 1) { c->b.sel[M] = s * L + j; c->b.tgt[M] = ids[j]; c->h_row[M] = s; M++; }
        }
    if (forward_ce(c, P, L, M, DL_ATTN_BIDIR, err, sizeof err)) { printf("  # %s\n", err); return NAN; }
    double cs[16] = { 0 }, tot = 0;
    for (int k = 0; k < M; k++) cs[c->h_row[k]] += c->b.ce[k];
    for (int s = 1; s < P; s++) tot += cs[s] * pattern_weight(__builtin_popcount((unsigned)s), L, c->o.eps);
    return tot;
}

static void test_elbo_exact(void) {
    dl_config cfg;
    tiny_config(&cfg);
    char dir[512], err[512];
    if (make_ckpt(&cfg, "tiny", dir, sizeof dir)) { DL_CHECK(0, "tiny checkpoint"); return; }
    sc_opts o;
    sc_opts_default(&o);
    o.mc = 40000;
    o.batch = 5000;
    o.threads = 1;   /* tiny GEMMs: OpenMP barriers would dominate */
    o.seed = 3;
    sc_ctx *c = NULL;
    int rc = sc_open(&c, dir, &o, err, sizeof err);
    DL_CHECK(rc == 0, "sc_open tiny model (vocab 8, mask 7)%s%s", rc ? ": " : "", rc ? err : "");
    if (rc) return;
    /* the weights of a length-L sequence sum to E[1/t * P(m>=1 ...)]; sanity: sum_S w_|S| |S| = L */
    for (int L = 1; L <= 4; L++) {
        double s = 0;
        for (int m = 1; m <= L; m++) s += binom(L, m) * m * pattern_weight(m, L, o.eps);
        DL_CHECK(fabs(s - L) < 1e-12, "pattern weights: sum_S |S| w_|S| = L for L=%d (%.15f)", L, s);
    }
    static const uint32_t seqs[][4] = { { 3 }, { 2, 5 }, { 0, 6, 4 }, { 1, 3, 3, 2 }, { 6, 0, 5, 4 } };
    static const int lens[] = { 1, 2, 3, 4, 4 };
    for (int q = 0; q < 5; q++) {
        int L = lens[q], nt;
        double ex = exact_elbo(c, seqs[q], L), nll, se;
        rc = sc_elbo(c, seqs[q], L, (uint64_t)q, &nll, &se, &nt, err, sizeof err);
        DL_CHECK(rc == 0 && nt == L && fabs(nll - ex) <= 3 * se && se < 0.01 * ex,
                 "ELBO L=%d: MC %.5f (se %.5f, mc %d) vs exact %.5f: %.2f se apart", L, nll, se, o.mc, ex,
                 fabs(nll - ex) / se);
    }
    /* same draws whatever --batch */
    double a, sa, b, sb;
    int na, nb;
    c->o.mc = 100;
    c->o.batch = 100;
    sc_elbo(c, seqs[4], 4, 77, &a, &sa, &na, err, sizeof err);
    c->o.batch = 7;
    sc_elbo(c, seqs[4], 4, 77, &b, &sb, &nb, err, sizeof err);
    DL_CHECK(fabs(a - b) <= 1e-6 * a && fabs(sa - sb) <= 1e-5 * sa,
             "ELBO independent of --batch up to fp32 rounding (%.9g vs %.9g)", a, b);
    c->o.mem_budget = (size_t)(3.5 * row_bytes(c, 4));
    sc_elbo(c, seqs[4], 4, 77, &b, &sb, &nb, err, sizeof err);
    DL_CHECK(fabs(a - b) <= 1e-6 * a && fabs(sa - sb) <= 1e-5 * sa,
             "ELBO split by the memory budget (3 rows per forward) = one forward (%.9g vs %.9g)", a, b);
    c->o.mem_budget = 0;
    c->o.batch = 100;
    sc_elbo(c, seqs[4], 4, 78, &b, &sb, &nb, err, sizeof err);
    DL_CHECK(a != b, "ELBO draws keyed by the record index");
    c->o.mc = 1;
    c->o.batch = 1;
    sc_elbo(c, seqs[4], 4, 77, &b, &sb, &nb, err, sizeof err);
    DL_CHECK(isnan(sb) && b >= 0, "--mc 1: se unknown (NaN)");
    /* bad id */
    uint32_t bad[2] = { 3, 8 };
    DL_CHECK(sc_elbo(c, bad, 2, 0, &b, &sb, &nb, err, sizeof err) == -DL_EXIT_DATA, "id >= vocab refused: %s", err);
    sc_close(c);

    /* no mask token: diffusion refused (data error); causal fine; --mc 0 usage */
    cfg.mask_token_id = -1;
    if (make_ckpt(&cfg, "nomask", dir, sizeof dir)) { DL_CHECK(0, "nomask checkpoint"); return; }
    o.mc = 4; o.batch = 0;
    rc = sc_open(&c, dir, &o, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "mask"), "no mask token -> data error: %s", err);
    o.causal = 1;
    rc = sc_open(&c, dir, &o, err, sizeof err);
    DL_CHECK(rc == 0, "no mask token, causal: opens");
    sc_close(c);
    o.mc = 0;
    rc = sc_open(&c, dir, &o, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE, "--mc 0 -> usage error: %s", err);
}

/* ---------------------------------------------------------------- (b) */
static uint32_t *json_ids(json_t *a, int *n) {
    *n = (int)json_array_size(a);
    uint32_t *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    for (int i = 0; i < *n; i++) v[i] = (uint32_t)json_integer_value(json_array_get(a, i));
    return v;
}

static void test_cond_fixture(void) {
    json_error_t je;
    json_t *fx = json_load_file("tests/data/score/cond.json", 0, &je);
    if (!fx) { DL_CHECK(0, "load tests/data/score/cond.json: %s", je.text); return; }
    dl_config cfg;
    char dir[512], err[512];
    int rc = dl_config_load(&cfg, "tests/data/model/config.json", err, sizeof err);
    if (rc || make_ckpt(&cfg, "modelA", dir, sizeof dir)) { DL_CHECK(0, "model A checkpoint: %s", err); return; }
    sc_opts o;
    sc_opts_default(&o);
    o.threads = 1;
    sc_ctx *c = NULL;
    if ((rc = sc_open(&c, dir, &o, err, sizeof err))) { DL_CHECK(0, "sc_open model A: %s", err); return; }
    json_t *cases = json_object_get(fx, "cases");
    for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < json_array_size(cases); i++) {
        json_t *k = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(k, "name"));
        int np, nr;
        uint32_t *p = json_ids(json_object_get(k, "prompt"), &np), *r = json_ids(json_object_get(k, "answer"), &nr);
        c->o.mc = (int)json_integer_value(json_object_get(k, "mc"));
        c->o.batch = (int)json_integer_value(json_object_get(k, "batch"));
        c->o.cfg = json_number_value(json_object_get(k, "cfg"));
        c->o.seed = (uint64_t)json_integer_value(json_object_get(k, "seed"));
        uint64_t index = (uint64_t)json_integer_value(json_object_get(k, "index"));
        /* pass 1: a memory budget of 1.5 rows: every forward holds one row (cfg: 2) */
        c->o.mem_budget = pass ? (size_t)(1.5 * row_bytes(c, np + nr)) : 0;
        const char *how = pass ? ", one row per forward" : "";
        /* the draws */
        json_t *ks = json_object_get(k, "k"), *xs = json_object_get(k, "x");
        int draws_ok = 1;
        for (size_t g = 0; g < json_array_size(ks); g++) {
            dl_rng rr;
            dl_rng_init(&rr, c->o.seed, index, (uint32_t)g, DL_RNG_SCORE);
            int kk = 1 + (int)dl_rng_below(&rr, (uint32_t)nr);
            draws_ok &= kk == json_integer_value(json_array_get(ks, g));
            json_t *xg = json_array_get(xs, g);
            for (size_t b = 0; b < json_array_size(xg); b++)
                draws_ok &= stratified_count(kk, (int)b, nr, (int)json_array_size(xg)) ==
                            json_integer_value(json_array_get(xg, b));
        }
        if (!pass) DL_CHECK(draws_ok, "cond '%s': k and stratified counts as the reference", name);
        double ll, se, ref = json_number_value(json_object_get(k, "ll"));
        json_t *jse = json_object_get(k, "se");
        rc = sc_cond_loglik(c, p, np, r, nr, index, &ll, &se, err, sizeof err);
        DL_CHECK(rc == 0 && fabs(ll - ref) <= 1e-5 * fabs(ref), "cond '%s'%s: ll %.8f vs reference %.8f (rel %.2g)%s%s",
                 name, how, ll, ref, fabs(ll - ref) / fabs(ref), rc ? ": " : "", rc ? err : "");
        if (json_is_number(jse)) {
            double rse = json_number_value(jse);
            DL_CHECK(fabs(se - rse) <= 1e-3 * rse + 1e-9, "cond '%s'%s: se %.6g vs %.6g", name, how, se, rse);
        } else {
            DL_CHECK(isnan(se), "cond '%s'%s: se NaN with --mc 1", name, how);
        }
        free(p);
        free(r);
    }
    c->o.mem_budget = 0;
    /* greedy (diffusion): the answer made of the model's own argmax predictions matches */
    uint32_t prompt[5] = { 10, 20, 30, 40, 50 }, resp[3];
    int nr = 3, n = 8;
    ensure(c, 1, n, nr, err, sizeof err);
    ensure_logits(c, (size_t)nr * c->V, err, sizeof err);
    memcpy(c->b.ids, prompt, sizeof prompt);
    for (int j = 0; j < nr; j++) { c->b.ids[5 + j] = c->mask_id; c->b.sel[j] = 5 + j; }
    forward_logits(c, 1, n, nr, 0, DL_ATTN_BIDIR, err, sizeof err);
    for (int j = 0; j < nr; j++) {
        int best = 0;
        for (int v = 1; v < c->V - 1; v++) if (c->h_logits[(size_t)j * c->V + v] > c->h_logits[(size_t)j * c->V + best]) best = v;
        resp[j] = (uint32_t)best;
    }
    int match = -1;
    rc = sc_greedy_match(c, prompt, 5, resp, nr, &match, err, sizeof err);
    DL_CHECK(rc == 0 && match == 1, "greedy (diffusion): its own argmax answer matches");
    resp[1] = (resp[1] + 1) % 299;
    rc = sc_greedy_match(c, prompt, 5, resp, nr, &match, err, sizeof err);
    DL_CHECK(rc == 0 && match == 0, "greedy (diffusion): a changed token does not");
    sc_close(c);
    json_decref(fx);
}

/* ---------------------------------------------------------------- (c) */
static void test_causal_stories(void) {
    char train[512];   /* $DLLM_BIN/dllm-train (make test-asan), else bin/dllm-train */
    snprintf(train, sizeof train, "%s/dllm-train", getenv("DLLM_BIN") ? getenv("DLLM_BIN") : "bin");
    if (access(train, X_OK)) { printf("skip - causal stories260K: %s is not built\n", train); return; }
    json_error_t je;
    json_t *fx = json_load_file("tests/data/score/causal_stories260k.json", 0, &je);
    if (!fx) { DL_CHECK(0, "load causal_stories260k.json: %s", je.text); return; }
    char dir[512], cmd[2048], err[512];
    snprintf(dir, sizeof dir, "%s/s260", tmpdir);
    snprintf(cmd, sizeof cmd, "%s -q --init share/data/stories260K/stories260K.bin -o '%s' --steps 0", train, dir);
    int rc = system(cmd);
    DL_CHECK(rc == 0, "convert stories260K (dllm-train --steps 0)");
    if (rc) return;
    sc_opts o;
    sc_opts_default(&o);
    o.causal = 1;
    o.threads = 1;
    sc_ctx *c = NULL;
    if ((rc = sc_open(&c, dir, &o, err, sizeof err))) { DL_CHECK(0, "sc_open stories260K: %s", err); return; }
    json_t *ss = json_object_get(fx, "sentences");
    for (size_t i = 0; i < json_array_size(ss); i++) {
        json_t *s = json_array_get(ss, i), *jl = json_object_get(s, "logprobs");
        int n;
        uint32_t *ids = json_ids(json_object_get(s, "ids"), &n);
        double *lp = malloc((size_t)n * sizeof *lp), worst = 0, sum = 0;
        rc = sc_causal_logprobs(c, ids, n, lp, err, sizeof err);
        for (int j = 0; j < n - 1; j++) {
            double ref = json_number_value(json_array_get(jl, (size_t)j));
            if (fabs(lp[j] - ref) > worst) worst = fabs(lp[j] - ref);
            sum += ref;
        }
        DL_CHECK(rc == 0 && (int)json_array_size(jl) == n - 1 && worst <= 1e-4,
                 "causal log-probs, sentence %zu (%d ids): max |diff| %.2g", i, n, worst);
        double nll, se, ll;
        int nt;
        rc = sc_elbo(c, ids, n, 0, &nll, &se, &nt, err, sizeof err);
        DL_CHECK(rc == 0 && nt == n - 1 && se == 0 && fabs(nll + sum) <= 1e-4 * fabs(sum),
                 "causal sc_elbo = exact NLL (%.5f vs %.5f)", nll, -sum);
        double tail = 0;
        for (int j = 4; j < n - 1; j++) tail += json_number_value(json_array_get(jl, (size_t)j));
        rc = sc_cond_loglik(c, ids, 5, ids + 5, n - 5, 0, &ll, &se, err, sizeof err);
        DL_CHECK(rc == 0 && se == 0 && fabs(ll - tail) <= 1e-4 * fabs(tail),
                 "causal sc_cond_loglik = sum over the response (%.5f vs %.5f)", ll, tail);
        free(ids);
        free(lp);
    }
    /* greedy: llama2.c's greedy story continues its own prefix */
    FILE *f = fopen("share/data/stories260K/expected_greedy_t0_ids.txt", "r");
    uint32_t g[64];
    int n = 1;
    g[0] = 1;   /* BOS */
    while (f && n < 40 && fscanf(f, "%u", &g[n]) == 1) n++;
    if (f) fclose(f);
    int match = -1;
    rc = sc_greedy_match(c, g, 20, g + 20, n - 20, &match, err, sizeof err);
    DL_CHECK(rc == 0 && match == 1, "greedy (causal): llama2.c's greedy story matches (%d tokens)", n - 20);
    g[30] = g[30] == 400 ? 401 : 400;
    rc = sc_greedy_match(c, g, 20, g + 20, n - 20, &match, err, sizeof err);
    DL_CHECK(rc == 0 && match == 0, "greedy (causal): one changed token does not");
    DL_CHECK(sc_cond_loglik(c, g, 0, g, 5, 0, &(double){ 0 }, &(double){ 0 }, err, sizeof err) == -DL_EXIT_DATA,
             "causal: empty prompt refused (%s)", err);
    sc_close(c);
    json_decref(fx);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "%s/dllm-test-score.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) { printf("not ok - mkdtemp\n"); return 1; }
    double t0 = dl_now();
    test_elbo_exact();
    printf("  # (a) %.1f s\n", dl_now() - t0);
    t0 = dl_now();
    test_cond_fixture();
    printf("  # (b) %.1f s\n", dl_now() - t0);
    t0 = dl_now();
    test_causal_stories();
    printf("  # (c) %.1f s\n", dl_now() - t0);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd)) printf("  # could not remove %s\n", tmpdir);
    return dl_test_end();
}
