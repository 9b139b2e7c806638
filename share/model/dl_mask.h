/* dl_mask.h — the masking rules of ALGORITHMS.md §1, shared by dllm-mask and
 * dllm-train --mask-on-the-fly.
 *
 * Deterministic: the result for a row depends only on (cfg, index, copy,
 * the row's content/metadata): randomness comes from dl_rng keyed by
 * (cfg->seed, index, copy, purpose):
 *   DL_RNG_MASK_LEN    one double u; u < random_length_p -> len = 1 + below(L)
 *   DL_RNG_MASK_T      one double per block (block 0 first), u for t
 *   DL_RNG_ANTITHETIC  keyed by the GROUP index (index / group_size): the
 *                      group's offset v; replaces block 0's u
 *   DL_RNG_MASK_POS    Bernoulli: Philox block q gives the 4 words of
 *                      positions 4q..4q+3 (absolute positions, so a word
 *                      never depends on n_prompt); position i is masked when
 *                      word < t_f * 2^32 (t_f = the float32 t written out).
 *                      --exact: the stream's draws in order (selection
 *                      sampling, Knuth's algorithm S, block by block).
 *
 * t = eps + (1-eps)*u, then clamped to [t_min, t_max].  Antithetic: rows are
 * grouped by global index (group = index / group_size), one v per group,
 * u = v/n + (index % n)/n.  With block > 0 each block of `block` positions
 * gets its own t (its own u); the antithetic rule applies to block 0 only.
 *
 * Eligible positions: [n_prompt, end) with end = len (random-length cut, else
 * L), and end = min(end, L - n_pad) when cfg->no_pad_loss.  Positions that
 * are not eligible keep x0 in xt.  --exact masks round(t_b * n_eligible_b)
 * positions of each block b (one block = the whole row when block == 0).
 *
 * Not done here: reading/writing records (mask/), the 1/t loss weights
 * (dllm-train).  Thread-safe: no global state.
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
    uint32_t group_size;      /* antithetic group n (default 64, see dllm-mask --help) */
    int exact;                /* round(t * n_eligible) positions, random selection */
    int no_pad_loss;          /* exclude n_pad trailing pad positions */
    uint32_t block;           /* 0 = one t per row; B = one t per block of B */
    double random_length_p;   /* probability of a random-length cut (0.01) */
    uint32_t mask_id;
} dl_mask_cfg;
void dl_mask_cfg_default(dl_mask_cfg *c);
/* 0, or -DL_EXIT_USAGE with err set when a field is out of range
 * (eps not in [0,1), t_min > t_max, outside [0,1], group_size 0, p not in [0,1]). */
int dl_mask_cfg_check(const dl_mask_cfg *c, char *err, size_t errlen);

typedef struct {
    uint32_t len;        /* effective length: L, or the random cut in [1, L] */
    int truncated;       /* 1 when a random-length cut happened */
    uint32_t n_masked;
    uint32_t n_eligible;
    uint32_t n_blocks;   /* 1 when cfg->block == 0 */
} dl_mask_info;

/* Number of t values dl_mask_row writes for a row of length L. */
static inline uint32_t dl_mask_n_blocks(const dl_mask_cfg *c, uint32_t L) {
    return c->block ? (L + c->block - 1) / c->block : 1;
}

/* Mask one row.  x0: (L) clean ids; xt: (L) output (copy of x0 with mask_id
 * at masked positions; positions >= len keep x0); t: (n_blocks) output, one
 * per block (n_blocks = block ? ceil(L/block) : 1).  Errors (-DL_EXIT_DATA):
 * L == 0, n_prompt > L, n_pad > L. */
int dl_mask_row(const dl_mask_cfg *c, uint64_t index, uint32_t copy,
                const uint32_t *x0, uint32_t L, uint32_t n_prompt, uint32_t n_pad,
                uint32_t *xt, float *t, dl_mask_info *info, char *err, size_t errlen);

#endif
