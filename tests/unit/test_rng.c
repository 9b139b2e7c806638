/* test_rng.c — Philox4x32-10 against Random123's published known-answer
 * vectors (kat_vectors: counter, key -> output), and the dl_rng helpers. */
#include <string.h>
#include "dl_test.h"
#include "dl_rng.h"

int main(void) {
    static const struct { uint32_t ctr[4], key[2], out[4]; } kat[] = {
        {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
        {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
         {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
        {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
         {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
    };
    for (int i = 0; i < 3; i++) {
        uint32_t out[4];
        dl_philox4x32_10(kat[i].key, kat[i].ctr, out);
        DL_CHECK(!memcmp(out, kat[i].out, sizeof out), "philox4x32-10 known answer %d (%08x %08x %08x %08x)",
                 i, out[0], out[1], out[2], out[3]);
    }
    /* keying: same (seed, index, copy, purpose) -> same stream; any change -> different */
    dl_rng a, b, c;
    dl_rng_init(&a, 42, 1234, 0, DL_RNG_MASK_T);
    dl_rng_init(&b, 42, 1234, 0, DL_RNG_MASK_T);
    dl_rng_init(&c, 42, 1234, 1, DL_RNG_MASK_T);
    int same = 1, diff = 0;
    for (int i = 0; i < 100; i++) { uint32_t x = dl_rng_u32(&a), y = dl_rng_u32(&b), z = dl_rng_u32(&c); same &= x == y; diff += x != z; }
    DL_CHECK(same, "same key and counter give the same stream");
    DL_CHECK(diff > 95, "another copy gives another stream");
    /* uniform doubles: range and mean */
    dl_rng_init(&a, 7, 0, 0, DL_RNG_SAMPLE);
    double sum = 0, mn = 1, mx = 0;
    int n = 200000, inrange = 1;
    for (int i = 0; i < n; i++) {
        double u = dl_rng_double(&a), v = dl_rng_double_open(&a);
        inrange &= u >= 0 && u < 1 && v > 0 && v < 1;
        sum += u; if (u < mn) mn = u; if (u > mx) mx = u;
    }
    DL_CHECK(inrange, "dl_rng_double in [0,1), dl_rng_double_open in (0,1)");
    double se = sqrt(1.0 / 12 / n);
    DL_CHECK(fabs(sum / n - 0.5) < 4 * se, "mean of uniforms %.5f within 4 se of 0.5", sum / n);
    /* dl_rng_below: unbiased over a small n (chi-square-ish bound) */
    int counts[7] = {0};
    for (int i = 0; i < 70000; i++) counts[dl_rng_below(&a, 7)]++;
    double chi = 0;
    for (int k = 0; k < 7; k++) chi += (counts[k] - 10000.0) * (counts[k] - 10000.0) / 10000.0;
    DL_CHECK(chi < 22.5, "dl_rng_below(7) chi-square %.2f < 22.5 (p=0.001, 6 dof)", chi);
    return dl_test_end();
}
