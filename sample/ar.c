/* ar.c — dllm-sample's autoregressive sampler (ar.h): left to right with a
 * KV cache, every row with its own prompt length and positions.
 *
 * Loop (one call = one batch of n rows):
 *   prefill: one dl_model_forward_kv of n rows x P = max prompt length new
 *            tokens (row b: its n_prompt ids, then padding), logits of each
 *            row's last prompt token;
 *   then per forward, for each running row in row order: pick a token from
 *            its logits, keep it (or stop), and feed it back as that row's
 *            one new token (rows that stopped ride along with 0 new tokens;
 *            those after the last running row are left out of the forward).
 *   A row's nfe counts the forwards that computed it (= tokens picked).
 *
 * Picking one token from logits l (V floats):
 *   1. l[id] = -inf for every id of --suppress and for the mask token (never
 *      a next token of a causal model).
 *   2. temperature T == 0: argmax l, lowest id on ties.
 *   3. T > 0, with z = l / T (float64):
 *      - --top-k k: keep the k largest z (ties: lower id first);
 *      - --top-p p: of what is left, sorted by z descending (ties: lower id
 *        first), keep the smallest prefix whose softmax mass (over what is
 *        left) reaches p; at least one id;
 *      - INVERSE CDF, ONE uniform u = smp_noise_u(row's noise) per token:
 *        w_i = exp(z_i - max z) over the kept ids taken in INCREASING ID
 *        ORDER, W = sum w_i; the token is the first kept id whose running
 *        sum of w exceeds u * W (float64; if rounding leaves none, the
 *        last kept id with w > 0).  This samples softmax(z) restricted to
 *        the kept set exactly, with one draw instead of V Gumbel draws.
 *      So with --noise FILE the file holds, per forward, one float64 per
 *      running row (row order); temperature 0 draws nothing.
 *   4. Confidence (trace) = p(token) under softmax(l) after step 1 (no
 *      temperature, no filter), as the diffusion sampler's low-confidence.
 *
 * Stopping (ar.h): gen_length tokens, EOS (kept), BOS (not kept); keep_eos
 * disables both stop tokens.  For the converted llama2.c stories260K, whose
 * documents are separated by BOS (llama2.c's run.c stops when the model
 * emits 1), this reproduces run.c's greedy story.
 *
 * Buffers (KV cache, logits, scratch) are allocated once per call and
 * sized for the batch.  Does not: speculative decoding, beam search,
 * repetition penalties, min-p, infilling (a mask token in a prompt is a data
 * error: use a diffusion model), a check of prompt + gen_length against
 * max_position_embeddings (RoPE extrapolates; the caller may warn).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ar.h"

typedef struct {
    int V;
    float *l;            /* (V) this row's logits, suppressed in place */
    int32_t *idx;        /* (V) ids sorted for top-k / top-p */
    uint8_t *kept;       /* (V) 1 = kept by the filters */
} ar_scratch;

/* qsort_r order: logits descending, then id ascending */
static int by_logit(const void *a, const void *b, void *arg) {
    const float *l = arg;
    int32_t i = *(const int32_t *)a, j = *(const int32_t *)b;
    if (l[i] > l[j]) return -1;
    if (l[i] < l[j]) return 1;
    return (i > j) - (i < j);
}

static uint32_t argmax(const float *l, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (l[i] > l[best]) best = i;
    return (uint32_t)best;
}

/* p(tok) under softmax(l), float64 */
static double prob_of(const float *l, int V, uint32_t tok) {
    float mx = l[argmax(l, V)];
    if (!(mx > -INFINITY)) return 0.0;
    double s = 0.0;
    for (int i = 0; i < V; i++) s += exp((double)l[i] - mx);
    return exp((double)l[tok] - mx) / s;
}

/* step 3 of the header: temperature > 0 */
static uint32_t sample(const smp_opts *o, const float *l, int V, smp_noise *nz, ar_scratch *s) {
    double T = o->temperature;
    uint32_t top = argmax(l, V);
    double zmax = (double)l[top] / T;
    int filter = (o->top_k > 0 && o->top_k < V) || o->top_p < 1.0;
    if (filter) {
        int n = 0;
        for (int i = 0; i < V; i++)
            if (l[i] > -INFINITY) s->idx[n++] = i;
        qsort_r(s->idx, (size_t)n, sizeof *s->idx, by_logit, (void *)l);
        if (o->top_k > 0 && o->top_k < n) n = o->top_k;
        if (o->top_p < 1.0 && n > 1) {
            double tot = 0.0, cum = 0.0;
            for (int i = 0; i < n; i++) tot += exp((double)l[s->idx[i]] / T - zmax);
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += exp((double)l[s->idx[i]] / T - zmax);
                if (cum >= o->top_p * tot) { keep = i + 1; break; }
            }
            n = keep;
        }
        memset(s->kept, 0, (unsigned)V);
        for (int i = 0; i < n; i++) s->kept[s->idx[i]] = 1;
    }
    double W = 0.0;
    for (int i = 0; i < V; i++)
        if (!filter || s->kept[i]) W += exp((double)l[i] / T - zmax);
    double u = smp_noise_u(nz);   /* drawn even if W is 0: one uniform per token, always */
    if (!(W > 0.0)) return top;   /* everything suppressed */
    double target = u * W, cum = 0.0;
    int last = (int)top;
    for (int i = 0; i < V; i++) {
        if (filter && !s->kept[i]) continue;
        double w = exp((double)l[i] / T - zmax);
        if (w > 0.0) last = i;
        cum += w;
        if (cum > target) return (uint32_t)i;
    }
    return (uint32_t)last;
}

static uint32_t pick(const smp_opts *o, const float *logits, int V, smp_noise *nz, ar_scratch *s, double *conf) {
    memcpy(s->l, logits, sizeof(float) * (size_t)V);
    for (int i = 0; i < o->n_suppress; i++)
        if (o->suppress[i] < (uint32_t)V) s->l[o->suppress[i]] = -INFINITY;
    if (o->mask_id < (uint32_t)V) s->l[o->mask_id] = -INFINITY;
    uint32_t tok = o->temperature > 0.0 ? sample(o, s->l, V, nz, s) : argmax(s->l, V);
    *conf = prob_of(s->l, V, tok);
    return tok;
}

/* --show: row 0's canvas with the positions not generated yet as masks */
static void draw(const smp_opts *o, const smp_row *r, int n_gen, int total, int new_pos, uint32_t *canvas,
                 uint8_t *new_mask, int step) {
    memcpy(canvas, r->ids, sizeof *canvas * (size_t)(r->n_prompt + n_gen));
    for (int i = r->n_prompt + n_gen; i < total; i++) canvas[i] = o->mask_id;
    memset(new_mask, 0, (size_t)total);
    if (new_pos >= 0) new_mask[new_pos] = 1;
    show_canvas(o->show, canvas, total, r->n_prompt, new_mask, step, r->nfe);
}

int ar_sample_batch(dl_model *m, const smp_opts *o, smp_row *rows, int n, char *err, size_t errlen) {
    const int V = m->cfg.vocab_size, G = o->gen_length;
    const int64_t bos = m->cfg.bos_token_id != o->eos_id ? m->cfg.bos_token_id : -1;
    if (n <= 0) return 0;
    if (G < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--gen-length must be >= 0");
    int P = 1, Tmax = 1;
    for (int b = 0; b < n; b++) {
        const smp_row *r = &rows[b];
        if (r->n_prompt <= 0)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "prompt %llu is empty: an autoregressive model needs at "
                             "least one token to start from (--bos puts BOS first)", (unsigned long long)r->index);
        for (int i = 0; i < r->n_prompt; i++) {
            if (r->ids[i] >= (uint32_t)V)
                return dl_seterr(err, errlen, -DL_EXIT_DATA, "prompt %llu: token id %u at %d is >= the vocabulary "
                                 "size %d", (unsigned long long)r->index, r->ids[i], i, V);
            if (r->ids[i] == o->mask_id)
                return dl_seterr(err, errlen, -DL_EXIT_DATA, "prompt %llu: mask token at %d: autoregressive "
                                 "sampling cannot infill (sample with a diffusion model)",
                                 (unsigned long long)r->index, i);
        }
        if (r->n_prompt > P) P = r->n_prompt;
        if (r->n_prompt + G > Tmax) Tmax = r->n_prompt + G;
    }
    int rc = 0;
    dl_dev *dev = m->dev;
    dl_kv *kv = NULL;
    ar_scratch s = { .V = V };
    uint32_t *h_ids = malloc(sizeof *h_ids * (size_t)n * P), *d_ids = NULL, *canvas = NULL;
    int32_t *pos0 = calloc((size_t)n, sizeof *pos0), *nv = calloc((size_t)n, sizeof *nv);
    int *gen = calloc((size_t)n, sizeof *gen), *done = calloc((size_t)n, sizeof *done);
    float *d_logits = NULL, *logits = malloc(sizeof *logits * (size_t)n * V);
    uint8_t *new_mask = NULL;
    s.l = malloc(sizeof *s.l * (size_t)V);
    s.idx = malloc(sizeof *s.idx * (size_t)V);
    s.kept = malloc((size_t)V);
    if (o->show) {
        canvas = malloc(sizeof *canvas * (size_t)(rows[0].n_prompt + G));
        new_mask = malloc((size_t)(rows[0].n_prompt + G));
    }
    if (!h_ids || !pos0 || !nv || !gen || !done || !logits || !s.l || !s.idx || !s.kept ||
        (o->show && (!canvas || !new_mask))) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        goto out;
    }
    if ((rc = dl_model_kv_init(&kv, m, n, Tmax, P, err, errlen))) goto out;
    d_ids = dl_dev_alloc(dev, sizeof *d_ids * (size_t)n * P);
    d_logits = dl_dev_alloc(dev, sizeof *d_logits * (size_t)n * V);
    if (!d_ids || !d_logits) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "cannot allocate device buffers for %d rows", n);
        goto out;
    }
    /* prefill: row b's prompt in slots [b*P, b*P + n_prompt), padding id 0 */
    memset(h_ids, 0, sizeof *h_ids * (size_t)n * P);
    int running = 0;
    for (int b = 0; b < n; b++) {
        memcpy(h_ids + (size_t)b * P, rows[b].ids, sizeof *h_ids * (size_t)rows[b].n_prompt);
        nv[b] = rows[b].n_prompt;
        rows[b].nfe = rows[b].steps = 0;
        rows[b].len = rows[b].n_prompt;
        done[b] = G == 0;
        running += !done[b];
    }
    if (o->show && !done[0]) draw(o, &rows[0], 0, rows[0].n_prompt + G, -1, canvas, new_mask, 0);
    int n_new = P;
    for (int step = 0; running > 0; step++) {
        int nb = n;   /* rows past the last running one are left out of the forward */
        while (done[nb - 1]) nb--;
        dl_dev_h2d(dev, d_ids, h_ids, sizeof *h_ids * (size_t)nb * n_new);
        if ((rc = dl_model_forward_kv(m, kv, d_ids, nb, n_new, pos0, nv, d_logits, err, errlen))) goto out;
        dl_dev_d2h(dev, logits, d_logits, sizeof *logits * (size_t)nb * V);
        for (int b = 0; b < nb; b++) {
            smp_row *r = &rows[b];
            pos0[b] += nv[b];
            nv[b] = 0;
            if (done[b]) continue;
            r->nfe++;
            double conf;
            uint32_t tok = pick(o, logits + (size_t)b * V, V, r->noise, &s, &conf);
            r->steps++;
            if (!o->keep_eos && bos >= 0 && tok == (uint64_t)bos) {   /* next document: stop, not kept */
                done[b] = 1;
            } else {
                int pos = r->n_prompt + gen[b];
                r->ids[pos] = tok;
                gen[b]++;
                r->len = pos + 1;
                if (o->trace) {
                    int32_t p32 = pos;
                    smp_trace_line(o->trace, r->index, r->steps - 1, r->nfe, 0, &p32, &tok, &conf, 1);
                }
                if (o->show && b == 0) draw(o, r, gen[b], r->n_prompt + G, pos, canvas, new_mask, step + 1);
                done[b] = gen[b] == G || (!o->keep_eos && o->eos_id >= 0 && tok == (uint64_t)o->eos_id);
            }
            if (done[b]) running--;
            else { h_ids[b] = tok; nv[b] = 1; }   /* n_new = 1 from now on: row b's slot is h_ids[b] */
        }
        n_new = 1;
        for (int b = 0; b < n; b++)
            if (rows[b].noise && (rc = smp_noise_check(rows[b].noise, err, errlen))) goto out;
    }
out:
    dl_model_kv_free(kv);
    if (d_ids) dl_dev_free(dev, d_ids);
    if (d_logits) dl_dev_free(dev, d_logits);
    free(h_ids); free(pos0); free(nv); free(gen); free(done); free(logits);
    free(s.l); free(s.idx); free(s.kept); free(canvas); free(new_mask);
    return rc;
}
