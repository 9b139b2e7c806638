/* kernels/kphilox.h — Philox4x32-10 for kernels: the generator of
 * share/io/dl_rng.c (same constants as Random123 / cuRAND / PyTorch),
 * header-only so every backend (CPU C, CUDA device code) compiles the same
 * lines.  It is the ONE copy of the round function: share/io/dl_rng.c calls
 * it too (the one header share/io takes from kernels/, allowed by
 * scripts/check-layers.sh because it is a pure function with no state);
 * tests/unit/test_select.c checks the sampler's uniforms against dl_rng.
 *
 * kphilox_uniform is the sampler's noise uniform (sample/noise.c): key =
 * seed, counter = { stream lo32, stream hi32, ((i/2 >> 32) << 8) | purpose,
 * (i/2) lo32 }, the 64-bit word w[2h] | w[2h+1] << 32 (h = i % 2) mapped
 * into (0,1) as ((x >> 12) + 0.5) / 2^52.  A pure function of (key,
 * stream, purpose, i).
 *
 * Does not: keep state (no buffered stream: dl_rng does that on the host).
 */
#ifndef DL_KPHILOX_H
#define DL_KPHILOX_H
#include <stdint.h>

#ifdef __CUDACC__
#define KPHILOX_FN static inline __host__ __device__
#else
#define KPHILOX_FN static inline
#endif

KPHILOX_FN void kphilox4x32_10(const uint32_t key[2], const uint32_t ctr[4], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

/* Uniform i of stream `stream` (see the header comment). */
KPHILOX_FN double kphilox_uniform(const uint32_t key[2], uint64_t stream, uint32_t purpose, uint64_t i) {
    uint64_t blk = i >> 1;
    uint32_t ctr[4] = { (uint32_t)stream, (uint32_t)(stream >> 32), (uint32_t)(((blk >> 32) << 8) | purpose),
                        (uint32_t)blk };
    uint32_t w[4];
    kphilox4x32_10(key, ctr, w);
    int h = (int)(i & 1);
    uint64_t x = (uint64_t)w[2 * h] | (uint64_t)w[2 * h + 1] << 32;
    return ((double)(x >> 12) + 0.5) * 0x1.0p-52;
}

#endif
