/* dl_mask.c — masking one row (ALGORITHMS.md §1); the rules and the exact
 * use of the random streams are written down in dl_mask.h.
 *
 * Hot path (Bernoulli): one Philox4x32-10 call per 4 positions, each 32-bit
 * word compared with a threshold t*2^32 and the select done without a branch.
 * --exact uses Knuth's selection sampling (no scratch memory).
 * Does not allocate, print or keep state between calls.
 */
#include <math.h>
#include <string.h>
#include "dl_mask.h"
#include "dl_rng.h"

void dl_mask_cfg_default(dl_mask_cfg *c) {
    memset(c, 0, sizeof *c);
    c->seed = 0;
    c->eps = 1e-3;
    c->t_min = 0.0;
    c->t_max = 1.0;
    c->t_sampling = DL_T_UNIFORM;
    c->group_size = 64;
    c->exact = 0;
    c->no_pad_loss = 0;
    c->block = 0;
    c->random_length_p = 0.01;
    c->mask_id = 0;
}

int dl_mask_cfg_check(const dl_mask_cfg *c, char *err, size_t errlen) {
    if (!(c->eps >= 0.0 && c->eps < 1.0))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--eps %g: must be in [0, 1)", c->eps);
    if (!(c->t_min >= 0.0 && c->t_max <= 1.0 && c->t_min <= c->t_max))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE,
                         "--eps-range %g,%g: need 0 <= a <= b <= 1", c->t_min, c->t_max);
    if (c->group_size == 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--antithetic-group must be >= 1");
    if (!(c->random_length_p >= 0.0 && c->random_length_p <= 1.0))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--random-length %g: must be in [0, 1]",
                         c->random_length_p);
    return 0;
}

/* ------------------------------------------------------------------ t */
static float draw_t(const dl_mask_cfg *c, double u) {
    double t = c->eps + (1.0 - c->eps) * u;
    if (t < c->t_min) t = c->t_min;
    if (t > c->t_max) t = c->t_max;
    if (t > 1.0) t = 1.0;
    return (float)t;
}

static void draw_ts(const dl_mask_cfg *c, uint64_t index, uint32_t copy, uint32_t nb, float *t) {
    dl_rng r;
    dl_rng_init(&r, c->seed, index, copy, DL_RNG_MASK_T);
    for (uint32_t b = 0; b < nb; b++) t[b] = draw_t(c, dl_rng_double(&r));
    if (c->t_sampling == DL_T_ANTITHETIC) {
        uint32_t n = c->group_size;
        dl_rng g;
        dl_rng_init(&g, c->seed, index / n, copy, DL_RNG_ANTITHETIC);
        double v = dl_rng_double(&g);
        double u = v / n + (double)(index % n) / n;
        if (u >= 1.0) u -= 1.0;   /* rounding only; v/n + i/n < 1 mathematically */
        t[0] = draw_t(c, u);
    }
}

/* Threshold such that P(word < thr) = t for a uniform 32-bit word. */
static inline uint64_t threshold(float t) {
    return (uint64_t)((double)t * 4294967296.0);
}

/* ------------------------------------------------------------- Bernoulli
 * Masks positions [a, b) (a < b) of xt with probability t; counts them. */
static uint32_t bernoulli_range(const uint32_t key[2], uint32_t ctr[4], uint32_t a, uint32_t b,
                                uint64_t thr, uint32_t mask_id, const uint32_t *x0, uint32_t *xt) {
    uint32_t n = 0, w[4];
    for (uint32_t q = a >> 2; q <= (b - 1) >> 2; q++) {
        uint32_t p0 = q << 2;
        ctr[3] = q;
        dl_philox4x32_10(key, ctr, w);
        if (p0 >= a && p0 + 4 <= b) {
            for (int j = 0; j < 4; j++) {
                uint32_t m = (uint64_t)w[j] < thr;
                xt[p0 + j] = m ? mask_id : x0[p0 + j];
                n += m;
            }
        } else {
            for (uint32_t j = 0; j < 4; j++) {
                uint32_t p = p0 + j;
                if (p < a || p >= b) continue;
                uint32_t m = (uint64_t)w[j] < thr;
                xt[p] = m ? mask_id : x0[p];
                n += m;
            }
        }
    }
    return n;
}

/* ----------------------------------------------------------------- exact
 * Masks exactly k of the positions [a, b), each k-subset equally likely. */
static uint32_t exact_range(dl_rng *r, uint32_t a, uint32_t b, uint32_t k, uint32_t mask_id,
                            uint32_t *xt) {
    uint32_t left = b - a, need = k;
    for (uint32_t p = a; p < b && need > 0; p++, left--) {
        if (dl_rng_below(r, left) < need) { xt[p] = mask_id; need--; }
    }
    return k;
}

int dl_mask_row(const dl_mask_cfg *c, uint64_t index, uint32_t copy,
                const uint32_t *x0, uint32_t L, uint32_t n_prompt, uint32_t n_pad,
                uint32_t *xt, float *t, dl_mask_info *info, char *err, size_t errlen) {
    if (L == 0) return dl_seterr(err, errlen, -DL_EXIT_DATA, "empty row");
    if (n_prompt > L)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %u > row length %u", n_prompt, L);
    if (n_pad > L)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_pad %u > row length %u", n_pad, L);

    /* random-length cut */
    uint32_t len = L;
    int truncated = 0;
    if (c->random_length_p > 0.0) {
        dl_rng r;
        dl_rng_init(&r, c->seed, index, copy, DL_RNG_MASK_LEN);
        if (dl_rng_double(&r) < c->random_length_p) { len = 1 + dl_rng_below(&r, L); truncated = 1; }
    }

    /* one t per block */
    uint32_t B = c->block ? c->block : L;
    uint32_t nb = dl_mask_n_blocks(c, L);
    draw_ts(c, index, copy, nb, t);

    /* eligible range */
    uint32_t lo = n_prompt, hi = len;
    if (c->no_pad_loss && L - n_pad < hi) hi = L - n_pad;
    if (hi < lo) hi = lo;

    memcpy(xt, x0, (size_t)L * sizeof *xt);
    uint32_t n_masked = 0;
    if (hi > lo) {
        if (c->exact) {
            dl_rng r;
            dl_rng_init(&r, c->seed, index, copy, DL_RNG_MASK_POS);
            for (uint32_t b = lo / B; b < nb; b++) {
                uint32_t a = b * B > lo ? b * B : lo;
                uint32_t e = (uint64_t)(b + 1) * B < hi ? (b + 1) * B : hi;
                if (a >= e) break;
                uint32_t k = (uint32_t)lround((double)t[b] * (e - a));
                if (k > e - a) k = e - a;
                n_masked += exact_range(&r, a, e, k, c->mask_id, xt);
            }
        } else {
            uint32_t key[2] = { (uint32_t)c->seed, (uint32_t)(c->seed >> 32) };
            uint32_t ctr[4] = { (uint32_t)index, (uint32_t)(index >> 32),
                                (copy << 8) | DL_RNG_MASK_POS, 0 };
            for (uint32_t b = lo / B; b < nb; b++) {
                uint32_t a = b * B > lo ? b * B : lo;
                uint32_t e = (uint64_t)(b + 1) * B < hi ? (b + 1) * B : hi;
                if (a >= e) break;
                n_masked += bernoulli_range(key, ctr, a, e, threshold(t[b]), c->mask_id, x0, xt);
            }
        }
    }
    if (info) {
        info->len = len;
        info->truncated = truncated;
        info->n_masked = n_masked;
        info->n_eligible = hi - lo;
        info->n_blocks = nb;
    }
    return 0;
}
