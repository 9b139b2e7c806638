/* dl_loss.h — the training losses of ALGORITHMS.md §2, on per-position
 * cross-entropies, with their gradient d loss / d ce (host arrays: M is the
 * number of loss positions, small next to the model).
 *
 *   --loss-norm all       Σ_rows Σ_masked w ce_i / t_i ÷ (rows · L)        [default, pretraining; = the ELBO]
 *   --loss-norm response  Σ_rows [ Σ_masked w ce_i / t_i ÷ (L - n_prompt_r) ] ÷ rows   [LLaDA SFT]
 *   --loss-norm maskable  Σ w ce_i / t_i ÷ (eligible positions in the batch)   [dLLM]
 *   --loss-norm masked    Σ w ce_i ÷ (masked positions in the batch)        [Open-dLLM; no 1/t]
 *   --weight uniform      drops the 1/t
 *   --path-loss           adds Σ stopgrad(exp(-ce_i)) · ce_i / t_i ÷ n_masked
 *   causal (AR baseline)  Σ w ce_i ÷ (target positions in the batch)
 * w is the row weight (1 unless the caller gives per-row weights).
 * "rows", "eligible", "masked", "targets" are totals over the whole
 * optimizer batch (all micro-batches, all ranks), so gradient accumulation
 * gives the same update as one big batch.  L is seq_len (the random-length
 * cut does not change the normaliser, as LLaDA).
 */
#ifndef DL_LOSS_H
#define DL_LOSS_H
#include <stdint.h>

typedef enum { DL_NORM_ALL = 0, DL_NORM_RESPONSE, DL_NORM_MASKABLE, DL_NORM_MASKED, DL_NORM_CAUSAL } dl_loss_norm;
const char *dl_loss_norm_name(dl_loss_norm n);
int dl_loss_norm_parse(const char *s, dl_loss_norm *n);   /* 0 ok, -1 unknown */

typedef struct {
    dl_loss_norm norm;
    int uniform_weight;   /* --weight uniform */
    int path_loss;        /* --path-loss */
} dl_loss_cfg;

typedef struct {
    int M;                  /* loss positions in this micro-batch */
    const int32_t *row;     /* (M) row of each position, 0..n_rows-1 */
    const float *t;         /* (M) mask ratio of its row (or block); ignored for causal */
    int n_rows;
    const int32_t *n_prompt;   /* (n_rows) or NULL = 0 */
    const float *row_weight;   /* (n_rows) or NULL = 1 */
    int L;                  /* seq_len */
    double total_rows, total_eligible, total_masked;   /* over the optimizer batch;
                              causal: total_masked = target positions */
} dl_loss_batch;

/* Returns this micro-batch's contribution to the loss and writes
 * dce[m] = d loss / d ce_m.  elbo (optional out): its contribution to the
 * `all`-form ELBO in nats/token (Σ ce/t ÷ (total_rows·L)) whatever the norm. */
double dl_loss_eval(const dl_loss_cfg *c, const dl_loss_batch *b, const float *ce, float *dce, double *elbo);

#endif
