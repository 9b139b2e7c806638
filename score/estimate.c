/* score/estimate.c — the likelihood estimators of dllm-score (score.h).
 *
 * One record at a time; the Monte-Carlo rows of a record go through the
 * model together (--batch rows per forward, default all --mc rows), at
 * T = the record's length (no padding: every row of a forward has the same
 * length), bidirectional attention for diffusion, causal for the chain rule.
 * A forward is split into several when its activations (estimated by
 * row_bytes) would exceed mem_budget; that changes no draw, only fp32
 * rounding (GEMM shapes).  Buffers (device ids / sel / targets / ce, host
 * copies, the model's activations) grow to the largest shape seen and are
 * kept.
 *
 * Draws (docs/ALGORITHMS.md §4), all from dl_rng keyed (seed, index, copy,
 * DL_RNG_SCORE):
 *  ELBO, sample s (copy = s): t = eps + (1 - eps) u, u = dl_rng_double ([0,1),
 *    so t in [eps, 1)); then for position j = 0..n-1 in order, masked when
 *    dl_rng_double < t.  term_s = sum_{masked} ce_j / t (0 when nothing is
 *    masked: the sample still counts).  nll = mean_s term_s, se = sd / sqrt(mc)
 *    (sd with the n-1 denominator; mc = 1 gives se = NaN: unknown).
 *  Conditional (LLaDA get_log_likelihood), answer length T, rows in groups of
 *    b = --batch (the last group holds what is left of --mc), group g (copy = g):
 *    k = 1 + dl_rng_below(T); row i of the group masks exactly
 *      x_i = ((round(k + i*T/b) - 1) mod T) + 1
 *    answer tokens, round() half to even (numpy/torch), computed exactly in
 *    integers: (k*b + i*T) / b.  Which tokens: a permutation perm of 0..T-1
 *    by Fisher-Yates (for j = T-1 down to 1: swap(perm[j], perm[below(j+1)])),
 *    drawn for each row in row order after k; answer position j is masked when
 *    perm[j] < x_i (LLaDA: is_mask = (arange(T) < x)[randperm(T)]).  The
 *    prompt is never masked.  term_i = (T / x_i) sum_{masked} ce; the
 *    estimate is -mean over all mc rows (LLaDA: loss / p_mask, sum / b,
 *    mean over groups, negated); se = sd(term) / sqrt(mc), treating the
 *    stratified rows as independent (conservative: stratification lowers the
 *    true variance).
 *    --cfg w: each row also runs with the whole prompt masked ("un"), and
 *    the ce comes from logits un + (w + 1)(cond - un) (float64 on the host).
 *  shift_logits (Dream): target j is read at hidden j-1; position 0 has no
 *    hidden before it, so the ELBO never masks it and scores n-1 tokens, and
 *    a conditional score needs a prompt of >= 1 token.
 *  Causal: exact chain rule, hidden j-1 predicts token j, one forward.
 *
 * Does not: read streams or options (main.c), tasks (task.c), batch
 * different records into one forward.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_batch.h"
#include "dl_ckpt.h"
#include "dl_io.h"
#include "dl_model_open.h"
#include "dl_rng.h"
#include "score.h"

#include "estimate_internal.h"

void sc_opts_default(sc_opts *o) {
    memset(o, 0, sizeof *o);
    o->mc = SC_MC_DEFAULT;
    o->eps = SC_EPS_DEFAULT;
    o->device = "cpu";
    o->mask_id = -1;
}

dl_tok *sc_tok(sc_ctx *c) { return c->tok; }
const dl_config *sc_config(const sc_ctx *c) { return &c->m.cfg; }
int sc_is_causal(const sc_ctx *c) { return c->causal; }
const sc_opts *sc_options(const sc_ctx *c) { return &c->o; }
int sc_max_len(const sc_ctx *c) { return c->m.cfg.max_seq_len; }

int sc_open(sc_ctx **out, const char *ckpt, const sc_opts *o, char *err, size_t errlen) {
    *out = NULL;
    if (o->mc < 1) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--mc must be >= 1");
    if (o->batch < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--batch must be >= 0");
    if (!(o->eps >= 0 && o->eps < 1)) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--eps must be in [0, 1)");
    if (!isfinite(o->cfg) || o->cfg < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--cfg must be >= 0");
    sc_ctx *c = calloc(1, sizeof *c);
    if (!c) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    c->o = *o;
    if (c->o.eps == 0) c->o.eps = SC_EPS_DEFAULT;
    if (c->o.batch == 0 || c->o.batch > c->o.mc) c->o.batch = c->o.mc;
    dl_infer_opts io = { .dir = ckpt, .device = o->device, .threads = o->threads, .force_causal = o->causal,
                         .mask_id = o->mask_id, .what = "scoring", .adapter = o->adapter,
                         .bf16 = o->bf16 };
    dl_infer_info info;
    int rc = dl_model_open_infer(&c->m, &info, &io, err, errlen);
    if (rc) { sc_close(c); return rc; }
    const dl_config *cf = &c->m.cfg;
    if (cf->block_diffusion > 0 && !info.causal) {   /* its likelihood needs the x_t (+) x_0 block-causal forward */
        int bd = cf->block_diffusion;   /* cf dies with c */
        sc_close(c);
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: a block-diffusion checkpoint (block_diffusion %d): "
                         "dllm-score scores with full attention only, which is not this model's likelihood; its "
                         "ELBO on held-out rows masked with dllm-mask --block %d: dllm-train --init %s --valid FILE "
                         "--steps 0", ckpt, bd, bd, ckpt);
    }
    c->V = cf->vocab_size;
    c->causal = info.causal;
    c->shift = !c->causal && (o->shift_logits || cf->shift_logits);
    c->mask_id = info.mask_id;
    c->tok = info.tok;
    if (!c->tok && o->need_tok) {
        sc_close(c);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no tokenizer.json", ckpt);
    }
    *out = c;
    return 0;
}

void sc_close(sc_ctx *c) {
    if (!c) return;
    dl_batch_free(&c->b);
    free(c->h_row);
    free(c->h_logits); free(c->term); free(c->tr); free(c->xi); free(c->perm); free(c->ans);
    dl_model_close(&c->m);
    if (c->tok) dl_tok_free(c->tok);
    free(c);
}

/* Make room for a forward of B rows of T tokens with up to M selected
 * positions (and host scratch for T-long rows). */
int ensure(sc_ctx *c, int B, int T, int M, char *err, size_t errlen) {
    if (T > c->m.cfg.max_seq_len)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "sequence of %d tokens is longer than the model's "
                         "max_position_embeddings %d", T, c->m.cfg.max_seq_len);
    if (M < 1) M = 1;
    int nB = B > c->rB ? B : c->rB, nT = T > c->rT ? T : c->rT, nM = M > c->rM ? M : c->rM;
    if (nB != c->rB || nT != c->rT || nM != c->rM) {
        int rc = dl_model_reserve(&c->m, nB, nT, nM, DL_ACTS_INFER, err, errlen);
        if (rc) return rc;
        c->rB = nB; c->rT = nT; c->rM = nM;
    }
    int rc = dl_batch_reserve(&c->b, &c->m, B, (size_t)B * T, M, err, errlen);
    if (rc) return rc;
    if (M > c->cap_row) {
        free(c->h_row);
        c->h_row = malloc((size_t)M * sizeof *c->h_row);
        if (!c->h_row) { c->cap_row = 0; return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        c->cap_row = M;
    }
    if (T > c->cap_T) {
        free(c->perm);
        c->perm = malloc((size_t)T * sizeof *c->perm);
        if (!c->perm) { c->cap_T = 0; return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        c->cap_T = T;
    }
    return 0;
}

static int ensure_terms(sc_ctx *c, int n, char *err, size_t errlen) {
    if (n <= c->cap_term) return 0;
    free(c->term); free(c->tr); free(c->xi);
    c->term = malloc((size_t)n * sizeof *c->term);
    c->tr = malloc((size_t)n * sizeof *c->tr);
    c->xi = malloc((size_t)n * sizeof *c->xi);
    if (!c->term || !c->tr || !c->xi) { c->cap_term = 0; return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    c->cap_term = n;
    return 0;
}

/* Activation bytes of one row of T tokens (every position selected) in
 * dl_model_reserve's block, and the rows a forward may hold. */
double row_bytes(const sc_ctx *c, int T) {
    return (double)dl_model_acts_bytes(&c->m.cfg, 1, T, T, DL_ACTS_INFER);
}
static int rows_cap(const sc_ctx *c, int T) {
    double r = (double)(c->o.mem_budget ? c->o.mem_budget : SC_MEM_DEFAULT) / row_bytes(c, T);
    return r < 1 ? 1 : r > (1 << 24) ? 1 << 24 : (int)r;
}

static int ensure_ans(sc_ctx *c, size_t n, char *err, size_t errlen) {
    if (n <= c->cap_ans) return 0;
    free(c->ans);
    c->ans = malloc(n * sizeof *c->ans);
    if (!c->ans) { c->cap_ans = 0; return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    c->cap_ans = n;
    return 0;
}

int ensure_logits(sc_ctx *c, size_t n, char *err, size_t errlen) {
    if (n <= c->cap_logits) return 0;
    free(c->h_logits);
    c->h_logits = malloc(n * sizeof *c->h_logits);
    if (!c->h_logits) { c->cap_logits = 0; return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    c->cap_logits = n;
    return 0;
}

static int check_ids(const sc_ctx *c, const uint32_t *ids, int n, const char *what, char *err, size_t errlen) {
    for (int i = 0; i < n; i++)
        if (ids[i] >= (uint32_t)c->V)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s token %d is id %u >= the model's vocab %d", what, i,
                             ids[i], c->V);
    return 0;
}

/* Forward of B rows x T ids (h_ids) with M selected positions (h_sel) and
 * targets (h_tgt); ce to h_ce. */
int forward_ce(sc_ctx *c, int B, int T, int M, dl_attn_mask mask, char *err, size_t errlen) {
    return dl_batch_forward(&c->b, B, T, M, 0, 1, mask, 0, err, errlen);
}

/* Forward without targets; logits (M,V) to c->h_logits + off*V. */
int forward_logits(sc_ctx *c, int B, int T, int M, size_t off, dl_attn_mask mask, char *err, size_t errlen) {
    int rc = dl_batch_forward(&c->b, B, T, M, 0, 0, mask, 0, err, errlen);
    if (rc) return rc;
    dl_batch_download_logits(&c->b, M, c->h_logits + off * c->V);
    return 0;
}

static void mean_se(const double *x, int n, double *mean, double *se) {
    double s = 0;
    for (int i = 0; i < n; i++) s += x[i];
    double mu = s / n, ss = 0;
    for (int i = 0; i < n; i++) ss += (x[i] - mu) * (x[i] - mu);
    *mean = mu;
    *se = n > 1 ? sqrt(ss / (n - 1) / n) : NAN;
}

/* ---------------------------------------------------------------- causal */
static int causal_ce(sc_ctx *c, const uint32_t *ids, int n, int first, char *err, size_t errlen) {
    /* ce of targets ids[first..n) read at hidden j-1, into h_ce[0..n-first) */
    int M = n - first, rc;
    if ((rc = ensure(c, 1, n, M, err, errlen))) return rc;
    memcpy(c->b.ids, ids, (size_t)n * sizeof *ids);
    for (int j = first; j < n; j++) { c->b.sel[j - first] = j - 1; c->b.tgt[j - first] = ids[j]; }
    return forward_ce(c, 1, n, M, DL_ATTN_CAUSAL, err, errlen);
}

int sc_causal_logprobs(sc_ctx *c, const uint32_t *ids, int n, double *lp, char *err, size_t errlen) {
    int rc;
    if ((rc = check_ids(c, ids, n, "input", err, errlen))) return rc;
    if (n < 2) return 0;
    if ((rc = causal_ce(c, ids, n, 1, err, errlen))) return rc;
    for (int j = 0; j < n - 1; j++) lp[j] = -(double)c->b.ce[j];
    return 0;
}

/* ---------------------------------------------------------------- ELBO */
int sc_elbo(sc_ctx *c, const uint32_t *ids, int n, uint64_t index, double *nll, double *se, int *n_tokens,
            char *err, size_t errlen) {
    int rc;
    *nll = 0; *se = 0; *n_tokens = 0;
    if ((rc = check_ids(c, ids, n, "input", err, errlen))) return rc;
    if (c->causal) {
        if (n < 2) return 0;
        if ((rc = causal_ce(c, ids, n, 1, err, errlen))) return rc;
        double s = 0;
        for (int j = 0; j < n - 1; j++) s += c->b.ce[j];
        *nll = s;
        *n_tokens = n - 1;
        return 0;
    }
    int first = c->shift ? 1 : 0;     /* shift: position 0 is context only */
    if (n - first < 1) return 0;
    int mc = c->o.mc, bsz = c->o.batch, cap = rows_cap(c, n);
    if (bsz > cap) bsz = cap;
    if ((rc = ensure(c, bsz, n, bsz * (n - first), err, errlen)) || (rc = ensure_terms(c, mc, err, errlen)))
        return rc;
    double eps = c->o.eps;
    for (int s0 = 0; s0 < mc; s0 += bsz) {
        int B = mc - s0 < bsz ? mc - s0 : bsz, M = 0;
        double *tr = c->tr;
        for (int b = 0; b < B; b++) {
            dl_rng r;
            dl_rng_init(&r, c->o.seed, index, (uint32_t)(s0 + b), DL_RNG_SCORE);
            double t = eps + (1.0 - eps) * dl_rng_double(&r);
            tr[b] = t;
            uint32_t *row = c->b.ids + (size_t)b * n;
            for (int j = 0; j < n; j++) {
                row[j] = ids[j];
                if (j >= first && dl_rng_double(&r) < t) {
                    row[j] = c->mask_id;
                    c->b.sel[M] = b * n + j - first;
                    c->b.tgt[M] = ids[j];
                    c->h_row[M] = b;
                    M++;
                }
            }
        }
        if (M > 0 && (rc = forward_ce(c, B, n, M, DL_ATTN_BIDIR, err, errlen))) return rc;
        for (int b = 0; b < B; b++) c->term[s0 + b] = 0;
        for (int k = 0; k < M; k++) c->term[s0 + c->h_row[k]] += c->b.ce[k];
        for (int b = 0; b < B; b++) c->term[s0 + b] /= tr[b];
    }
    mean_se(c->term, mc, nll, se);
    *n_tokens = n - first;
    return 0;
}

/* ---------------------------------------------------------------- conditional */
/* x_i = ((round(k + i*T/b) - 1) mod T) + 1, round half to even, exact. */
int stratified_count(int k, int i, int T, int b) {
    long long num = (long long)k * b + (long long)i * T, q = num / b, r = num % b;
    if (2 * r > b || (2 * r == b && (q & 1))) q++;
    return (int)((q - 1) % T) + 1;
}

/* -log softmax(z)[target], z (V) in float64 */
static double ce_of(const double *z, int V, uint32_t target) {
    double mx = -INFINITY, s = 0;
    for (int v = 0; v < V; v++) if (z[v] > mx) mx = z[v];
    for (int v = 0; v < V; v++) s += exp(z[v] - mx);
    return mx + log(s) - z[target];
}

int sc_cond_loglik(sc_ctx *c, const uint32_t *prompt, int np, const uint32_t *resp, int nr, uint64_t index,
                   double *ll, double *se, char *err, size_t errlen) {
    int rc, n = np + nr;
    *ll = 0; *se = 0;
    if (np < 0 || nr < 1) return dl_seterr(err, errlen, -DL_EXIT_DATA, "empty response (nothing to score)");
    if ((rc = check_ids(c, prompt, np, "prompt", err, errlen)) || (rc = check_ids(c, resp, nr, "response", err, errlen)))
        return rc;
    if ((c->causal || c->shift) && np < 1)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s scoring needs a prompt of at least one token "
                         "(the first response token has no context)", c->causal ? "causal" : "shift_logits");
    if (c->causal) {
        if ((rc = ensure(c, 1, n, nr, err, errlen))) return rc;
        memcpy(c->b.ids, prompt, (size_t)np * sizeof *prompt);
        memcpy(c->b.ids + np, resp, (size_t)nr * sizeof *resp);
        for (int j = 0; j < nr; j++) { c->b.sel[j] = np + j - 1; c->b.tgt[j] = resp[j]; }
        if ((rc = forward_ce(c, 1, n, nr, DL_ATTN_CAUSAL, err, errlen))) return rc;
        double s = 0;
        for (int j = 0; j < nr; j++) s += c->b.ce[j];
        *ll = -s;
        return 0;
    }
    int mc = c->o.mc, bsz = c->o.batch, T = nr, cfg = c->o.cfg > 0, nf = cfg ? 2 : 1;
    int R = rows_cap(c, n) / nf;   /* rows of one group per forward */
    if (R < 1) R = 1;
    if (R > bsz) R = bsz;
    if ((rc = ensure(c, nf * R, n, nf * R * T, err, errlen)) || (rc = ensure_terms(c, mc, err, errlen)) ||
        (rc = ensure_ans(c, (size_t)bsz * T, err, errlen)))
        return rc;
    if (cfg && (rc = ensure_logits(c, (size_t)2 * R * T * c->V, err, errlen))) return rc;
    double w = c->o.cfg;
    for (int s0 = 0, g = 0; s0 < mc; s0 += bsz, g++) {
        int B = mc - s0 < bsz ? mc - s0 : bsz, *x = c->xi + s0;
        /* the group's draws: k, then one permutation per row */
        dl_rng r;
        dl_rng_init(&r, c->o.seed, index, (uint32_t)g, DL_RNG_SCORE);
        int k = 1 + (int)dl_rng_below(&r, (uint32_t)T);
        for (int b = 0; b < B; b++) {
            x[b] = stratified_count(k, b, T, B);
            int *perm = c->perm;
            for (int j = 0; j < T; j++) perm[j] = j;
            for (int j = T - 1; j > 0; j--) {
                int s = (int)dl_rng_below(&r, (uint32_t)(j + 1)), tmp = perm[j];
                perm[j] = perm[s]; perm[s] = tmp;
            }
            uint32_t *a = c->ans + (size_t)b * T;
            for (int j = 0; j < T; j++) a[j] = perm[j] < x[b] ? c->mask_id : resp[j];
            c->term[s0 + b] = 0;
        }
        /* forwards of up to R rows of the group */
        for (int c0 = 0; c0 < B; c0 += R) {
            int Bc = B - c0 < R ? B - c0 : R, M = 0;
            for (int b = 0; b < Bc; b++) {
                uint32_t *row = c->b.ids + (size_t)b * n;
                const uint32_t *a = c->ans + (size_t)(c0 + b) * T;
                memcpy(row, prompt, (size_t)np * sizeof *prompt);
                memcpy(row + np, a, (size_t)T * sizeof *a);
                for (int j = 0; j < T; j++)
                    if (a[j] == c->mask_id) {   /* LLaDA: mask_index = (noisy == mask_id) */
                        c->b.sel[M] = b * n + np + j - c->shift;
                        c->b.tgt[M] = resp[j];
                        c->h_row[M] = c0 + b;
                        M++;
                    }
            }
            if (!cfg) {
                if ((rc = forward_ce(c, Bc, n, M, DL_ATTN_BIDIR, err, errlen))) return rc;
                for (int m = 0; m < M; m++) c->term[s0 + c->h_row[m]] += c->b.ce[m];
                continue;
            }
            /* rows Bc..2Bc-1: the same noisy answers with the prompt masked */
            for (int b = 0; b < Bc; b++) {
                uint32_t *src = c->b.ids + (size_t)b * n, *dst = c->b.ids + (size_t)(Bc + b) * n;
                for (int j = 0; j < np; j++) dst[j] = c->mask_id;
                memcpy(dst + np, src + np, (size_t)T * sizeof *src);
            }
            for (int m = 0; m < M; m++) c->b.sel[M + m] = c->b.sel[m] + Bc * n;
            if ((rc = forward_logits(c, 2 * Bc, n, 2 * M, 0, DL_ATTN_BIDIR, err, errlen))) return rc;
            int V = c->V;
            double *gl = malloc((size_t)V * sizeof *gl);
            if (!gl) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            for (int m = 0; m < M; m++) {
                const float *cond = c->h_logits + (size_t)m * V, *un = c->h_logits + (size_t)(M + m) * V;
                for (int v = 0; v < V; v++) gl[v] = (double)un[v] + (w + 1.0) * ((double)cond[v] - (double)un[v]);
                c->term[s0 + c->h_row[m]] += ce_of(gl, V, c->b.tgt[m]);
            }
            free(gl);
        }
        for (int b = 0; b < B; b++) c->term[s0 + b] *= (double)T / x[b];
    }
    double mean;
    mean_se(c->term, mc, &mean, se);
    *ll = -mean;
    return 0;
}

/* ---------------------------------------------------------------- greedy */
int sc_greedy_match(sc_ctx *c, const uint32_t *prompt, int np, const uint32_t *resp, int nr, int *match,
                    char *err, size_t errlen) {
    int rc, n = np + nr;
    *match = 0;
    if (np < 0 || nr < 1) return dl_seterr(err, errlen, -DL_EXIT_DATA, "empty response (nothing to match)");
    if ((rc = check_ids(c, prompt, np, "prompt", err, errlen)) || (rc = check_ids(c, resp, nr, "response", err, errlen)))
        return rc;
    if ((c->causal || c->shift) && np < 1)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s greedy match needs a prompt of at least one token",
                         c->causal ? "causal" : "shift_logits");
    if ((rc = ensure(c, 1, n, nr, err, errlen)) || (rc = ensure_logits(c, (size_t)nr * c->V, err, errlen))) return rc;
    memcpy(c->b.ids, prompt, (size_t)np * sizeof *prompt);
    for (int j = 0; j < nr; j++) {
        c->b.ids[np + j] = c->causal ? resp[j] : c->mask_id;
        c->b.sel[j] = np + j - (c->causal || c->shift);
    }
    if ((rc = forward_logits(c, 1, n, nr, 0, c->causal ? DL_ATTN_CAUSAL : DL_ATTN_BIDIR, err, errlen))) return rc;
    int V = c->V;
    for (int j = 0; j < nr; j++) {
        const float *l = c->h_logits + (size_t)j * V;
        int best = -1;
        for (int v = 0; v < V; v++)   /* lowest id on ties; the mask token is never a prediction */
            if ((uint32_t)v != c->mask_id && (best < 0 || l[v] > l[best])) best = v;
        if ((uint32_t)best != resp[j]) return 0;
    }
    *match = 1;
    return 0;
}
