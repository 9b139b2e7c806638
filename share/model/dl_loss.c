/* dl_loss.c — the loss normalisations of dl_loss.h (ALGORITHMS.md §2) on
 * host arrays of per-position cross-entropies, and d loss / d ce.
 *
 * Per position m of row r (w = row weight, s = 1/t_m, or 1 with
 * --weight uniform):
 *   all       loss += w s ce ÷ (total_rows · L)
 *   response  loss += w s ce ÷ (L - n_prompt_r) ÷ total_rows   (divisor >= 1)
 *   maskable  loss += w s ce ÷ total_eligible
 *   masked    loss += w ce ÷ total_masked                       (no 1/t)
 *   causal    loss += w ce ÷ total_masked   (the caller puts the number of
 *             target positions there; t, --weight and --path-loss unused)
 *   path loss (not causal): loss += w s p ce ÷ total_masked, p = exp(-ce)
 *             under stopgrad, so its d/dce is w s p ÷ total_masked.
 * Every term is linear in ce (p is a constant), so dce is the coefficient,
 * and summing micro-batches that share the batch totals gives the loss and
 * gradient of the whole batch.  Accumulates in double.
 * elbo: Σ ce/t ÷ (total_rows·L) (no row weight, always 1/t); for causal the
 * per-token NLL Σ ce ÷ total_masked.
 */
#include <math.h>
#include <string.h>
#include "dl_loss.h"

static const char *NAMES[] = { "all", "response", "maskable", "masked", "causal" };

const char *dl_loss_norm_name(dl_loss_norm n) {
    return (unsigned)n < sizeof NAMES / sizeof NAMES[0] ? NAMES[n] : "?";
}

int dl_loss_norm_parse(const char *s, dl_loss_norm *n) {
    for (unsigned i = 0; i < sizeof NAMES / sizeof NAMES[0]; i++)
        if (!strcmp(s, NAMES[i])) { *n = (dl_loss_norm)i; return 0; }
    return -1;
}

static double safe_div(double x) { return x > 0 ? 1.0 / x : 0.0; }

double dl_loss_eval(const dl_loss_cfg *c, const dl_loss_batch *b, const float *ce, float *dce, double *elbo) {
    double loss = 0, el = 0;
    double inv_all = safe_div(b->total_rows * b->L), inv_rows = safe_div(b->total_rows),
           inv_elig = safe_div(b->total_eligible), inv_masked = safe_div(b->total_masked);
    int causal = c->norm == DL_NORM_CAUSAL;
    for (int i = 0; i < b->M; i++) {
        int r = b->row[i];
        double w = b->row_weight ? b->row_weight[r] : 1.0;
        double x = ce[i];
        double inv_t = causal ? 1.0 : 1.0 / b->t[i];
        double s = c->uniform_weight ? 1.0 : inv_t;
        double k;   /* d loss / d ce */
        switch (c->norm) {
        case DL_NORM_ALL: k = w * s * inv_all; break;
        case DL_NORM_RESPONSE: {
            int np = b->n_prompt ? b->n_prompt[r] : 0;
            int den = b->L - np;
            k = w * s / (den > 1 ? den : 1) * inv_rows;
            break;
        }
        case DL_NORM_MASKABLE: k = w * s * inv_elig; break;
        case DL_NORM_MASKED: k = w * inv_masked; break;
        case DL_NORM_CAUSAL: default: k = w * inv_masked; break;
        }
        if (c->path_loss && !causal) k += w * s * exp(-x) * inv_masked;
        loss += k * x;
        if (dce) dce[i] = (float)k;
        el += causal ? x * inv_masked : x * inv_t * inv_all;
    }
    if (elbo) *elbo = el;
    return loss;
}
