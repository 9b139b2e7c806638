/* dl_optim.h — the optimizer step of dllm-train on the model's device:
 * global gradient norm, torch clip_grad_norm_'s clip factor, and AdamW in
 * two calls (matrices with weight decay over [0, n_decay_params), norms and
 * biases without over the rest; dl_model.h lays them out so).
 *
 *   norm  = sqrt(sum grads^2)                    (float64, dl_k_grad_clip)
 *   scale = clip > 0 && norm > clip ? clip / (norm + 1e-6) : 1
 *   AdamW(lr, b1, b2, eps, wd | 0, step, scale)   (kernels.h dl_k_adamw)
 * Norm and scale stay on the device (m->gclip): AdamW reads the scale
 * there, so the host never waits for the norm before the update; it reads
 * the norm afterwards (dl_optim_clip_read), with the step's one
 * synchronisation.  A norm that is not finite makes the scale NaN, and
 * AdamW then changes nothing (kernels.h dl_k_clip_factor).
 *
 * Does not: reduce gradients across processes (dl_comm.h, before the
 * norm), schedule the learning rate, check the loss.
 */
#ifndef DL_OPTIM_H
#define DL_OPTIM_H
#include <stdint.h>
#include "dl_model.h"

typedef struct {
    double beta1, beta2, eps, wd;   /* AdamW */
    double clip;                    /* max global gradient norm; <= 0 = no clipping */
} dl_optim_cfg;

/* The block the optimizer trains: m's parameters (n_decay of them get
 * weight decay, the rest not), or, with a LoRA adapter attached
 * (m->lora), the adapter's alone (all matrices: all decayed); the base is
 * frozen then.  The functions below work on this block. */
typedef struct { float *params, *grads, *adam_m, *adam_v; size_t n, n_decay; } dl_optim_block;
dl_optim_block dl_optim_trained(const dl_model *m);

/* Allocates m->gclip, the device home of the norm and the clip factor,
 * before the step loop (0, or -DL_EXIT_IO with err set). */
int dl_optim_reserve(dl_model *m, char *err, size_t errlen);
/* Queues the global norm of the trained gradients and its clip factor
 * into m->gclip (dl_optim_reserve if not yet): 0, or -DL_EXIT_IO with err
 * set when the device has no memory for it.  Does not synchronise. */
int dl_optim_clip(dl_model *m, const dl_optim_cfg *c, char *err, size_t errlen);
/* What the last dl_optim_clip computed: the norm, and the factor the
 * steps applied (NaN when the norm is not finite: the steps changed
 * nothing).  Synchronises. */
void dl_optim_clip_read(dl_model *m, double *grad_norm, double *clip_scale);
/* AdamW over every parameter at learning rate lr, optimizer step `step`
 * (1-based), gradients scaled by the factor of the last dl_optim_clip;
 * writes the bf16 compute copy (m->wcomp) of what it updates; waits for
 * the device. */
void dl_optim_step(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step);
/* The same over the elements [lo, hi) of the parameter block only (ZeRO-1:
 * each rank updates its share); elements outside are untouched. */
void dl_optim_step_range(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step, size_t lo, size_t hi);
/* The same range with the moments held apart (ZeRO-1 with sharded
 * state): sm, sv (hi-lo) are the AdamW moments of elements [lo, hi);
 * m->adam_m / adam_v are not used (may be NULL).  Bit-identical to
 * dl_optim_step_range over whole moments. */
void dl_optim_step_shard(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step, size_t lo, size_t hi, float *sm,
                         float *sv);

/* ZeRO-1's sharded moments, kept on m's device so callers above the model
 * layer never touch the device themselves.
 * dl_optim_moments_alloc: n floats (n >= 1), zero-filled; NULL when out of
 * memory.  dl_optim_moments_free: frees one (NULL is fine).
 * dl_optim_take_share: *sm, *sv get k floats each (k may be 0): zero-filled
 * (a fresh start), or, when m holds whole moments (a resumed state), the
 * elements [lo, lo+k) of them; the whole moments are then freed and
 * m->adam_m / adam_v set to NULL.  Returns 0, or -1 when out of memory
 * (then nothing changed and *sm, *sv are NULL). */
float *dl_optim_moments_alloc(const dl_model *m, size_t n);
void dl_optim_moments_free(const dl_model *m, float *p);
int dl_optim_take_share(dl_model *m, size_t lo, size_t k, float **sm, float **sv);

#endif
