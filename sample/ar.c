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
 * Decode steps (after the prefill) run the linears as GEMVs
 * (dl_dev_cpu_gemv: each weight read once per token, the memory-bandwidth
 * bound); the prefill keeps the GEMM.
 *
 * Steps 1-4 run on the device (share/model/dl_select.h, DL_SEL_INVCDF with
 * DL_CONF_PROB0): the running rows' logits stay there and only (token,
 * confidence) pairs come back; the uniforms are drawn there from (seed,
 * prompt index, uniform index) (with --noise FILE, the step's reserved
 * values are uploaded).  Buffers (KV cache, logits, ids) are allocated once
 * per call and sized for the batch.  Does not: speculative decoding, beam search,
 * repetition penalties, min-p, infilling (a mask token in a prompt is a data
 * error: use a diffusion model), a check of prompt + gen_length against
 * max_position_embeddings (RoPE extrapolates; the caller may warn).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "ar.h"
#include "dl_batch.h"
#include "dl_rng.h"
#include "dl_select.h"

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
    dl_kv *kv = NULL;
    dl_batch bt = { 0 };
    dl_selector sel = { 0 };
    dl_select_cfg scfg = {
        .draw = o->temperature > 0.0 ? DL_SEL_INVCDF : DL_SEL_ARGMAX, .conf = DL_CONF_PROB0,
        .temperature = o->temperature, .top_k = o->top_k, .top_p = o->top_p,
        .suppress = o->suppress, .n_suppress = o->n_suppress, .mask_id = o->mask_id, .purpose = DL_RNG_SAMPLE,
    };
    uint32_t *canvas = NULL;
    int gemv0 = -1;   /* the device's GEMV setting before this call, restored at the end */
    int32_t *pos0 = calloc((size_t)n, sizeof *pos0), *nv = calloc((size_t)n, sizeof *nv);
    int *gen = calloc((size_t)n, sizeof *gen), *done = calloc((size_t)n, sizeof *done);
    double *fnoise = malloc(sizeof *fnoise * (size_t)n);   /* --noise FILE: one step's uniforms */
    uint8_t *new_mask = NULL;
    if (o->show) {
        canvas = malloc(sizeof *canvas * (size_t)(rows[0].n_prompt + G));
        new_mask = malloc((size_t)(rows[0].n_prompt + G));
    }
    if (!pos0 || !nv || !gen || !done || !fnoise || (o->show && (!canvas || !new_mask))) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        goto out;
    }
    if ((rc = dl_model_kv_init(&kv, m, n, Tmax, P, err, errlen)) ||
        (rc = dl_batch_reserve(&bt, m, 1, (size_t)n * P, 1, err, errlen)) ||
        (rc = dl_select_init(&sel, m, &scfg, n, n, err, errlen)))
        goto out;
    uint32_t *h_ids = bt.ids;
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
    gemv0 = dl_model_decode_gemv(m, -1);
    for (int step = 0; running > 0; step++) {
        int nb = n;   /* rows past the last running one are left out of the forward */
        while (done[nb - 1]) nb--;
        /* decode steps (one new token per row) stream each weight once: GEMV */
        dl_model_decode_gemv(m, n_new == 1 ? nb : 0);
        if ((rc = dl_batch_forward_kv(&bt, kv, nb, n_new, pos0, nv, dl_select_logits(&sel), err, errlen))) goto out;
        /* the running rows' tokens: uniforms taken in row order (one each when T > 0) */
        int M = 0, file = 0;
        uint64_t seed = 0;
        for (int b = 0; b < nb; b++) {
            if (done[b]) continue;
            smp_row *r = &rows[b];
            sel.row[M] = b;
            sel.stream[M] = 0;
            sel.base[M] = 0;
            if (o->temperature > 0.0) {
                smp_noise_key(r->noise, &seed, &sel.stream[M]);
                sel.base[M] = smp_noise_take(r->noise, 1);
                if (smp_noise_is_file(r->noise)) {
                    file = 1;
                    smp_noise_fill(r->noise, sel.base[M], 1, &fnoise[M]);
                    sel.base[M] = (uint64_t)M;
                }
            }
            M++;
        }
        if (file && (rc = dl_select_set_noise(&sel, fnoise, (size_t)M, err, errlen))) goto out;
        if ((rc = dl_select_run_rows(&sel, M, seed, err, errlen))) goto out;
        for (int b = 0, q = 0; b < nb; b++) {
            smp_row *r = &rows[b];
            pos0[b] += nv[b];
            nv[b] = 0;
            if (done[b]) continue;
            r->nfe++;
            double conf = sel.conf[q];
            uint32_t tok = sel.tok[q++];
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
    if (gemv0 >= 0) dl_model_decode_gemv(m, gemv0);
    dl_model_kv_free(kv);
    dl_select_free(&sel);
    dl_batch_free(&bt);
    free(pos0); free(nv); free(gen); free(done); free(fnoise); free(canvas); free(new_mask);
    return rc;
}
