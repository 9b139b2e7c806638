/* train/step.c — one optimizer step of dllm-train, and held-out evaluation.
 *
 * A step takes B rows (--batch) and runs them b at a time (--micro-batch):
 *   loss positions per row (build):
 *     diffusion  i in [n_prompt, len) with xt[i] == mask_id; target x0[i];
 *                hidden row i (i-1 with --shift-logits: position 0 has no
 *                predecessor and is skipped); weight 1/t of its row or block
 *     causal     hidden row i predicts x0[i+1], i in [max(0, n_prompt-1), len-1)
 *                (SFT rows: only response tokens are targets)
 *   forward (dl_model_forward, head on the loss positions only) -> ce (d2h)
 *   -> dl_loss_eval (share/model/dl_loss.h: totals over the WHOLE step, so
 *   accumulation equals one big batch) -> dce (h2d) -> dl_model_backward
 *   (gradients accumulate).  Then the global gradient norm (dl_k_sumsq),
 *   the clip factor min(1, clip / (norm + 1e-6)) (torch clip_grad_norm_),
 *   and AdamW in two calls: matrices with weight decay, norms and biases
 *   without (the model lays them out as two contiguous ranges).
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

int train_step_init(train_step *s, dl_model *m, int B, int b, int T, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->B = B; s->b = b; s->T = T;
    size_t n = (size_t)b * T;
    s->sel = malloc(n * sizeof *s->sel);
    s->row = malloc(n * sizeof *s->row);
    s->tgt = malloc(n * sizeof *s->tgt);
    s->tpos = malloc(n * sizeof *s->tpos);
    s->ce = malloc(n * sizeof *s->ce);
    s->dce = malloc(n * sizeof *s->dce);
    dl_dev *d = m->dev;
    s->d_ids = dl_dev_alloc(d, n * sizeof *s->d_ids);
    s->d_tgt = dl_dev_alloc(d, n * sizeof *s->d_tgt);
    s->d_sel = dl_dev_alloc(d, n * sizeof *s->d_sel);
    s->d_lens = dl_dev_alloc(d, (size_t)b * sizeof *s->d_lens);
    s->d_ce = dl_dev_alloc(d, n * sizeof *s->d_ce);
    s->d_dce = dl_dev_alloc(d, n * sizeof *s->d_dce);
    if (!s->sel || !s->row || !s->tgt || !s->tpos || !s->ce || !s->dce || !s->d_ids || !s->d_tgt || !s->d_sel ||
        !s->d_lens || !s->d_ce || !s->d_dce) {
        train_step_free(s);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory (micro-batch of %d rows x %d)", b, T);
    }
    return dl_model_reserve(m, b, T, (int)n, DL_ACTS_TRAIN, err, errlen);
}

void train_step_free(train_step *s) {
    if (!s->m) return;
    dl_dev *d = s->m->dev;
    free(s->sel); free(s->row); free(s->tgt); free(s->tpos); free(s->ce); free(s->dce);
    dl_dev_free(d, s->d_ids); dl_dev_free(d, s->d_tgt); dl_dev_free(d, s->d_sel);
    dl_dev_free(d, s->d_lens); dl_dev_free(d, s->d_ce); dl_dev_free(d, s->d_dce);
    memset(s, 0, sizeof *s);
}

/* Loss positions of rows [r0, r0+nb) of bt into s->sel/tgt/row/tpos (row
 * relative to r0).  Returns M; adds the eligible count to *elig. */
static int build(train_step *s, const train_batch *bt, int r0, int nb, double *elig) {
    const int T = s->T;
    int M = 0;
    for (int r = 0; r < nb; r++) {
        const uint32_t *x0 = bt->x0 + (size_t)(r0 + r) * T, *xt = bt->xt + (size_t)(r0 + r) * T;
        const float *tp = bt->t + (size_t)(r0 + r) * T;
        int len = bt->len[r0 + r], np = bt->n_prompt[r0 + r];
        if (s->causal) {
            int lo = np > 0 ? np - 1 : 0;
            for (int i = lo; i < len - 1; i++) {
                s->sel[M] = r * T + i;
                s->tgt[M] = x0[i + 1];
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
            s->sel[M] = r * T + (s->shift ? i - 1 : i);
            s->tgt[M] = x0[i];
            s->row[M] = r;
            s->tpos[M] = tp[i];
            M++;
        }
    }
    return M;
}

/* Forward of rows [r0, r0+nb) with the positions of build(): ce on host. */
static int forward(train_step *s, const train_batch *bt, int r0, int nb, int M, char *err, size_t errlen) {
    dl_model *m = s->m;
    dl_dev *d = m->dev;
    const int T = s->T;
    const uint32_t *ids = (s->causal ? bt->x0 : bt->xt) + (size_t)r0 * T;
    dl_dev_h2d(d, s->d_ids, ids, (size_t)nb * T * sizeof *ids);
    dl_dev_h2d(d, s->d_lens, bt->len + r0, (size_t)nb * sizeof *s->d_lens);
    dl_dev_h2d(d, s->d_sel, s->sel, (size_t)M * sizeof *s->sel);
    dl_dev_h2d(d, s->d_tgt, s->tgt, (size_t)M * sizeof *s->tgt);
    int rc = dl_model_forward(m, s->d_ids, s->d_lens, nb, T, s->d_sel, s->d_tgt, M, s->d_ce,
                              s->causal ? DL_ATTN_CAUSAL : DL_ATTN_BIDIR, 0, err, errlen);
    if (rc) return rc;
    dl_dev_d2h(d, s->ce, s->d_ce, (size_t)M * sizeof *s->ce);
    return 0;
}

int train_step_run(train_step *s, const train_batch *bt, int64_t step, double lr, train_step_out *o,
                   char *err, size_t errlen) {
    dl_model *m = s->m;
    dl_dev *d = m->dev;
    memset(o, 0, sizeof *o);
    /* totals over the whole optimizer batch, for the loss normalisers */
    double elig = 0, masked = 0;
    for (int r0 = 0; r0 < bt->n; r0 += s->b) {
        int nb = bt->n - r0 < s->b ? bt->n - r0 : s->b;
        masked += build(s, bt, r0, nb, &elig);
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
            .row_weight = NULL, .L = s->T, .total_rows = bt->n, .total_eligible = elig, .total_masked = masked,
        };
        double elbo = 0;
        o->loss += dl_loss_eval(&s->lc, &lb, s->ce, s->dce, &elbo);
        o->elbo += elbo;
        o->n_loss += (uint64_t)M;
        dl_dev_h2d(d, s->d_dce, s->dce, (size_t)M * sizeof *s->dce);
        if ((rc = dl_model_backward(m, s->d_dce, err, errlen))) return rc;
    }
    if (s->causal) o->elbo = masked > 0 ? o->loss : 0;   /* the loss is the exact NLL per target */
    if (!isfinite(o->loss))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "loss is %s", isnan(o->loss) ? "nan" : "inf");
    o->grad_norm = sqrt(dl_k_sumsq(d, m->grads, m->n_params));
    if (!isfinite(o->grad_norm))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "loss is finite (%g) but the gradient norm is %s", o->loss,
                         isnan(o->grad_norm) ? "nan" : "inf");
    o->clip_scale = 1.0;
    if (s->clip > 0 && o->grad_norm > s->clip) o->clip_scale = s->clip / (o->grad_norm + 1e-6);
    size_t nd = m->n_decay_params;
    float gs = (float)o->clip_scale;
    if (nd)
        dl_k_adamw(d, m->params, m->grads, m->adam_m, m->adam_v, nd, (float)lr, (float)s->beta1, (float)s->beta2,
                   (float)s->eps, (float)s->wd, (int)step, gs);
    if (m->n_params > nd)
        dl_k_adamw(d, m->params + nd, m->grads + nd, m->adam_m + nd, m->adam_v + nd, m->n_params - nd, (float)lr,
                   (float)s->beta1, (float)s->beta2, (float)s->eps, 0.0f, (int)step, gs);
    dl_dev_sync(d);
    return 0;
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
        for (int k = 0; k < M; k++) sum += s->causal ? (double)s->ce[k] : (double)s->ce[k] / s->tpos[k];
        o->targets += (uint64_t)M;
    }
    if (s->causal) o->elbo = o->targets ? sum / (double)o->targets : 0;
    else o->elbo = o->rows ? sum / ((double)o->rows * s->T) : 0;
    return 0;
}
