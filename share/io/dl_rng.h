/* dl_rng.h — Philox4x32-10 counter-based RNG (Salmon et al., SC'11).
 *
 * Every random decision in dllm is keyed by (seed, global record index,
 * copy, purpose), so record 1234 gets the same randomness whether the data
 * went through one process or 64 array tasks, CPU or GPU:
 *   key     = { seed lo32, seed hi32 }
 *   counter = { index lo32, index hi32, (copy << 8) | purpose, block }
 * `block` counts 4-word outputs drawn from one stream.
 */
#ifndef DL_RNG_H
#define DL_RNG_H
#include <stdint.h>

enum dl_rng_purpose {      /* 8 bits; never renumber (changes every output) */
    DL_RNG_MASK_T = 1,      /* the per-row (or per-block) mask ratio t */
    DL_RNG_MASK_POS = 2,    /* which positions are masked */
    DL_RNG_MASK_LEN = 3,    /* random-length truncation */
    DL_RNG_ANTITHETIC = 4,  /* the shared offset v of an antithetic group */
    DL_RNG_SHUFFLE = 5,     /* dllm-pack shuffle window */
    DL_RNG_SPLIT = 6,       /* dllm-pack train/valid split */
    DL_RNG_SAMPLE = 7,      /* dllm-sample noise */
    DL_RNG_SCORE = 8,       /* dllm-score Monte-Carlo draws */
    DL_RNG_INIT = 9         /* weight init */
};

/* The bare function: out = Philox4x32-10(key, ctr). */
void dl_philox4x32_10(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]);

typedef struct {
    uint32_t key[2];
    uint32_t ctr[4];
    uint32_t buf[4];
    int used;               /* words of buf consumed (4 = empty) */
} dl_rng;

void dl_rng_init(dl_rng *r, uint64_t seed, uint64_t index, uint32_t copy, uint32_t purpose);
uint32_t dl_rng_u32(dl_rng *r);
uint64_t dl_rng_u64(dl_rng *r);
double dl_rng_double(dl_rng *r);           /* [0,1), 53 bits */
double dl_rng_double_open(dl_rng *r);      /* (0,1), never 0: for log(u) */
uint32_t dl_rng_below(dl_rng *r, uint32_t n);  /* uniform in [0,n), unbiased; n > 0 */

#endif
