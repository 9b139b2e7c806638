/* train/step.c — one optimizer step of dllm-train, and held-out evaluation.
 *
 * A step takes B rows (--batch) and runs them b at a time (--micro-batch):
 *   loss positions per row (build):
 *     diffusion  i in [n_prompt, len) with xt[i] == mask_id; target x0[i];
 *                hidden row i (i-1 with --shift-logits: position 0 has no
 *                predecessor and is skipped); weight 1/t of its row or block
 *     causal     hidden row i predicts x0[i+1], i in [max(0, n_prompt-1), len-1)
 *                (SFT rows: only response tokens are targets)
 *   forward (dl_batch_forward: one upload, head on the loss positions only,
 *   ce back) -> dl_loss_eval (share/model/dl_loss.h: totals over the WHOLE
 *   step, so accumulation equals one big batch) -> dl_batch_backward (dce
 *   up, gradients accumulate).  Then the gradients are summed over the
 *   processes (dl_comm.h; in buckets started during the last
 *   micro-batch's backward, gsync.c, or in one all-reduce after it; one
 *   process: nothing; the loss normalisers were
 *   summed first, so the sum is the global batch's gradient), and dl_optim.h: global
 *   gradient norm, the clip factor min(1, clip / (norm + 1e-6)) (torch
 *   clip_grad_norm_), AdamW on matrices with weight decay and on norms and
 *   biases without; norm and factor stay on the device until the update
 *   is queued, then the norm comes back (the step's one synchronisation).
 *
 * Block diffusion (bd3 = B > 0, BD3LM): each row runs as [x_t ; x_0], 2T
 * ids, with the mask DL_ATTN_BD3 (kernels.h: noisy block i sees itself and
 * the clean blocks < i, clean block j the clean blocks <= j); the loss
 * positions are the diffusion ones above, in the x_t half (row stride 2T).
 * The activations are reserved for 2T rows (train_step_init's bd3).
 *
 * Eval: the `all`-form ELBO Σ ce/t ÷ (rows·L) in nats/token whatever the
 * training loss (exp of it bounds the perplexity); causal: the exact NLL
 * per target token.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"
#include "train.h"

int train_step_init(train_step *s, dl_model *m, int B, int b, int T, int bd3, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->B = B; s->b = b; s->T = T; s->bd3 = bd3;
    size_t n = (size_t)b * T, T2 = bd3 > 0 ? 2 * (size_t)T : (size_t)T;   /* forward row length */
    s->row = malloc(n * sizeof *s->row);
    s->tpos = malloc(n * sizeof *s->tpos);
    int rc = s->row && s->tpos ? dl_batch_reserve(&s->bt, m, b, b * T2, (int)n, err, errlen)
                               : dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory (micro-batch of %d rows x %d)",
                                           b, T);
    if (rc || (rc = dl_optim_reserve(m, err, errlen))) { train_step_free(s); return rc; }
    return dl_model_reserve(m, b, (int)T2, (int)n, DL_ACTS_TRAIN, err, errlen);
}

void train_step_free(train_step *s) {
    if (!s->m) return;
    train_gsync_free(&s->gs);
    free(s->row); free(s->tpos);
    dl_batch_free(&s->bt);
    memset(s, 0, sizeof *s);
}

/* Loss positions of rows [r0, r0+nb) of bt into s->bt.sel/tgt, s->row/tpos (row
 * relative to r0).  Returns M; adds the eligible count to *elig. */
static int build(train_step *s, const train_batch *bt, int r0, int nb, double *elig) {
    const int T = s->T, T2 = s->bd3 > 0 ? 2 * T : T;   /* T2: forward row stride */
    int32_t *sel = s->bt.sel;
    uint32_t *tgt = s->bt.tgt;
    int M = 0;
    for (int r = 0; r < nb; r++) {
        const uint32_t *x0 = bt->x0 + (size_t)(r0 + r) * T, *xt = bt->xt + (size_t)(r0 + r) * T;
        const float *tp = bt->t + (size_t)(r0 + r) * T;
        int len = bt->len[r0 + r], np = bt->n_prompt[r0 + r];
        if (s->causal) {
            int lo = np > 0 ? np - 1 : 0;
            for (int i = lo; i < len - 1; i++) {
                sel[M] = r * T + i;
                tgt[M] = x0[i + 1];
                s->row[M] = r;
                s->tpos[M] = 1.0f;
                M++;
            }
            if (len - 1 > lo) *elig += len - 1 - lo;
            continue;
        }
        int lo = np;
        if (s->shift && lo < 1) lo = 1;
        if (len > lo) *elig += len - lo;
        for (int i = lo; i < len; i++) {
            if (xt[i] != s->mask_id) continue;
            sel[M] = r * T2 + (s->shift ? i - 1 : i);
            tgt[M] = x0[i];
            s->row[M] = r;
            s->tpos[M] = tp[i];
            M++;
        }
    }
    return M;
}

/* Forward of rows [r0, r0+nb) with the positions of build(): ce on host (s->bt.ce). */
static int forward(train_step *s, const train_batch *bt, int r0, int nb, int M, char *err, size_t errlen) {
    const int T = s->T;
    memcpy(s->bt.lens, bt->len + r0, (size_t)nb * sizeof *s->bt.lens);
    if (s->bd3 > 0) {   /* row r: [x_t ; x_0] */
        for (int r = 0; r < nb; r++) {
            memcpy(s->bt.ids + (size_t)r * 2 * T, bt->xt + (size_t)(r0 + r) * T, (size_t)T * sizeof *bt->xt);
            memcpy(s->bt.ids + (size_t)r * 2 * T + T, bt->x0 + (size_t)(r0 + r) * T, (size_t)T * sizeof *bt->x0);
        }
        return dl_batch_forward(&s->bt, nb, 2 * T, M, 1, 1, DL_ATTN_BD3, s->bd3, err, errlen);
    }
    const uint32_t *ids = (s->causal ? bt->x0 : bt->xt) + (size_t)r0 * T;
    memcpy(s->bt.ids, ids, (size_t)nb * T * sizeof *ids);
    return dl_batch_forward(&s->bt, nb, T, M, 1, 1, s->causal ? DL_ATTN_CAUSAL : DL_ATTN_BIDIR, 0, err, errlen);
}

int train_step_run(train_step *s, const train_batch *bt, int64_t step, double lr, train_step_out *o,
                   char *err, size_t errlen) {
    dl_model *m = s->m;
    memset(o, 0, sizeof *o);
    /* totals over the whole optimizer batch, for the loss normalisers */
    double elig = 0, masked = 0;
    for (int r0 = 0; r0 < bt->n; r0 += s->b) {
        int nb = bt->n - r0 < s->b ? bt->n - r0 : s->b;
        masked += build(s, bt, r0, nb, &elig);
    }
    /* data parallel: the normalisers are the GLOBAL batch's, so the sum of
     * the ranks' gradients is the single-process gradient (no 1/P) */
    int ranks = s->comm ? dl_comm_size(s->comm) : 1;
    if (ranks > 1) {
        double tot[2] = { elig, masked };
        int rc = dl_comm_allreduce_sum_f64(s->comm, tot, 2, err, errlen);
        if (rc) return rc;
        elig = tot[0];
        masked = tot[1];
    }
    dl_model_zero_grads(m);
    for (int r0 = 0; r0 < bt->n; r0 += s->b) {
        int nb = bt->n - r0 < s->b ? bt->n - r0 : s->b;
        double e_unused = 0;
        int M = build(s, bt, r0, nb, &e_unused);
        if (M == 0) continue;   /* nothing masked in these rows: no loss, no gradient */
        int rc = forward(s, bt, r0, nb, M, err, errlen);
        if (rc) return rc;
        dl_loss_batch lb = {
            .M = M, .row = s->row, .t = s->tpos, .n_rows = nb, .n_prompt = bt->n_prompt + r0,
            .row_weight = NULL, .L = s->T, .total_rows = (double)bt->n * ranks, .total_eligible = elig,
            .total_masked = masked,
        };
        double elbo = 0;
        o->loss += dl_loss_eval(&s->lc, &lb, s->bt.ce, s->bt.dce, &elbo);
        o->elbo += elbo;
        o->n_loss += (uint64_t)M;
        train_gsync_arm(&s->gs, r0 + nb >= bt->n);   /* the last micro-batch: buckets start as layers finish */
        if ((rc = dl_batch_backward(&s->bt, M, err, errlen))) return rc;
    }
    if (ranks > 1 && s->gs.n_b) {   /* the rest of the buckets, before the loss's all-reduce (same order on all ranks) */
        int rc = train_gsync_start_rest(&s->gs, err, errlen);
        if (rc) return rc;
    }
    if (ranks > 1) {   /* the step's loss is the sum of the ranks' parts (a NaN anywhere stops every rank) */
        double st[3] = { o->loss, o->elbo, (double)o->n_loss };
        int rc = dl_comm_allreduce_sum_f64(s->comm, st, 3, err, errlen);
        if (rc) return rc;
        o->loss = st[0]; o->elbo = st[1]; o->n_loss = (uint64_t)st[2];
    }
    if (s->causal) o->elbo = masked > 0 ? o->loss : 0;   /* the loss is the exact NLL per target */
    if (!isfinite(o->loss))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "loss is %s", isnan(o->loss) ? "nan" : "inf");
    if (ranks > 1 && s->gs.n_b) {   /* the buckets started during the backward */
        int rc = train_gsync_wait(&s->gs, err, errlen);
        if (rc) return rc;
    } else if (ranks > 1) {   /* one all-reduce of the trained block's gradients (the adapter's alone under LoRA) */
        dl_optim_block ob = dl_optim_trained(m);
        int rc = dl_comm_allreduce_sum(s->comm, ob.grads, ob.n, err, errlen);
        if (rc) return rc;
    }
    /* the norm and clip factor stay on the device: AdamW reads the factor
     * there (a non-finite norm makes it skip), and the norm comes back after */
    int rc = dl_optim_clip(m, &s->opt, err, errlen);
    if (rc) return rc;
    int r = s->zero_off ? dl_comm_rank(s->comm) : 0;
    if (!s->zero_off) dl_optim_step(m, &s->opt, lr, step);   /* writes the bf16 compute copy too */
    else if (s->zero_m)   /* ZeRO-1: AdamW on this rank's share, then every share to every rank */
        dl_optim_step_shard(m, &s->opt, lr, step, s->zero_off[r], s->zero_off[r + 1], s->zero_m, s->zero_v);
    else
        dl_optim_step_range(m, &s->opt, lr, step, s->zero_off[r], s->zero_off[r + 1]);
    dl_optim_clip_read(m, &o->grad_norm, &o->clip_scale);
    if (!isfinite(o->grad_norm))   /* the step changed nothing */
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "loss is finite (%g) but the gradient norm is %s", o->loss,
                         isnan(o->grad_norm) ? "nan" : "inf");
    if (!s->zero_off) return 0;
    dl_model_weights_changed(m);   /* the other shares arrive in fp32: the bf16 compute copy follows */
    return dl_comm_allgather_ranges(s->comm, m->params, s->zero_off, err, errlen);
}

int train_eval(train_step *s, train_data *v, train_batch *bt, long long max_rows, train_eval_out *o,
               char *err, size_t errlen) {
    memset(o, 0, sizeof *o);
    int rc = train_data_rewind(v, err, errlen);
    if (rc) return rc;
    double sum = 0;
    for (int done = 0; !done;) {
        int nb = 0;
        while (nb < s->b && (max_rows <= 0 || (long long)(o->rows + nb) < max_rows)) {
            rc = train_data_next(v, bt, nb, 0, err, errlen);
            if (rc < 0) return rc;
            if (rc == 0) { done = 1; break; }
            nb++;
        }
        if (max_rows > 0 && (long long)(o->rows + nb) >= max_rows) done = 1;
        if (nb == 0) break;
        double e_unused = 0;
        int M = build(s, bt, 0, nb, &e_unused);
        o->rows += nb;
        if (M == 0) continue;
        if ((rc = forward(s, bt, 0, nb, M, err, errlen))) return rc;
        for (int k = 0; k < M; k++) sum += s->causal ? (double)s->bt.ce[k] : (double)s->bt.ce[k] / s->tpos[k];
        o->targets += (uint64_t)M;
    }
    if (s->causal) o->elbo = o->targets ? sum / (double)o->targets : 0;
    else o->elbo = o->rows ? sum / ((double)o->rows * s->T) : 0;
    return 0;
}
