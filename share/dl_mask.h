/* dl_mask.h — the masking rules of ALGORITHMS.md §1, shared by dllm-mask and
 * dllm-train --mask-on-the-fly.
 *
 * Deterministic: the result for a row depends only on (cfg, index, copy,
 * the row's content/metadata): randomness comes from dl_rng keyed by
 * (cfg->seed, index, copy, purpose).
 *
 * Eligible positions: [n_prompt, end) where end = len (random-length cut,
 * else L) minus n_pad trailing pad positions when cfg->no_pad_loss.
 * t = eps + (1-eps)*u, then clamped to [t_min, t_max].  Antithetic: rows are
 * grouped by global index (group = index / group_size), one v per group,
 * u = frac(v/n + (index % n)/n).  With block > 0 each block of `block`
 * positions gets its own t (its own u; antithetic over blocks of a row is not
 * done, the row's group rule applies to the first block only).
 */
#ifndef DL_MASK_H
#define DL_MASK_H
#include <stdint.h>
#include <stddef.h>
#include "dl_base.h"

typedef enum { DL_T_UNIFORM = 0, DL_T_ANTITHETIC = 1 } dl_t_sampling;

typedef struct {
    uint64_t seed;
    double eps;               /* 1e-3 */
    double t_min, t_max;      /* --eps-range a,b; default [0, 1] (no clamp) */
    dl_t_sampling t_sampling;
    uint32_t group_size;      /* antithetic group n (default 64? documented in mask/) */
    int exact;                /* round(t * n_eligible) positions, random permutation */
    int no_pad_loss;          /* exclude n_pad trailing pad positions */
    uint32_t block;           /* 0 = one t per row; B = one t per block of B */
    double random_length_p;   /* probability of a random-length cut (0.01) */
    uint32_t mask_id;
} dl_mask_cfg;
void dl_mask_cfg_default(dl_mask_cfg *c);

typedef struct {
    uint32_t len;        /* effective length: L, or the random cut in [1, L] */
    int truncated;       /* 1 when a random-length cut happened */
    uint32_t n_masked;
    uint32_t n_eligible;
    uint32_t n_blocks;   /* 1 when cfg->block == 0 */
} dl_mask_info;

/* Mask one row.  x0: (L) clean ids; xt: (L) output (copy of x0 with mask_id
 * at masked positions; positions >= len keep x0); t: (n_blocks) output, one
 * per block (n_blocks = block ? ceil(L/block) : 1). */
int dl_mask_row(const dl_mask_cfg *c, uint64_t index, uint32_t copy,
                const uint32_t *x0, uint32_t L, uint32_t n_prompt, uint32_t n_pad,
                uint32_t *xt, float *t, dl_mask_info *info, char *err, size_t errlen);

#endif
