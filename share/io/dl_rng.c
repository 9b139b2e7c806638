/* dl_rng.c — Philox4x32-10 (Salmon, Moraes, Dror, Shaw: "Parallel random
 * numbers: as easy as 1, 2, 3", SC'11), the same constants as Random123,
 * cuRAND and PyTorch, so a CUDA twin gives identical streams.
 * Keying convention: see dl_rng.h. */
#include "dl_rng.h"
#include "kphilox.h"

/* The round function is kernels/kphilox.h's, the one copy that host streams
 * and every backend's device code compile, so they cannot drift apart. */
void dl_philox4x32_10(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]) {
    kphilox4x32_10(key, ctr, out);
}

void dl_rng_init(dl_rng *r, uint64_t seed, uint64_t index, uint32_t copy, uint32_t purpose) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = (uint32_t)index;
    r->ctr[1] = (uint32_t)(index >> 32);
    r->ctr[2] = (copy << 8) | (purpose & 0xffu);
    r->ctr[3] = 0;
    r->used = 4;
}

uint32_t dl_rng_u32(dl_rng *r) {
    if (r->used == 4) {
        dl_philox4x32_10(r->key, r->ctr, r->buf);
        r->ctr[3]++;
        r->used = 0;
    }
    return r->buf[r->used++];
}

uint64_t dl_rng_u64(dl_rng *r) {
    uint64_t hi = dl_rng_u32(r);
    return (hi << 32) | dl_rng_u32(r);
}

double dl_rng_double(dl_rng *r) { return (dl_rng_u64(r) >> 11) * 0x1.0p-53; }

double dl_rng_double_open(dl_rng *r) { return ((dl_rng_u64(r) >> 12) + 0.5) * 0x1.0p-52; }

uint32_t dl_rng_below(dl_rng *r, uint32_t n) {
    /* Lemire's multiply-shift with rejection: unbiased */
    uint64_t m = (uint64_t)dl_rng_u32(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t thresh = (uint32_t)(-n) % n;
        while (low < thresh) {
            m = (uint64_t)dl_rng_u32(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}
