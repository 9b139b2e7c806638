/* test_linear_packed.c — linear_fwd from packed weight copies
 * (dl_dev_cpu_pack, kernels/cpu/linear_packed.c) against the ref backend.
 *
 * 1. Op: with the switch on, dl_k_linear_fwd (f32 weights) equals the ref
 *    backend's linear_fwd (float64 sums) within atol 1e-5 + rtol 1e-5 for
 *    N = 1, 2, 7, 8, 9, 33, 300 (8-row tiles, their tails, and more than the
 *    256 rows of one pass), C = 1, 7, 64, 100, O = 1, 5, 31, 32, 33, 70
 *    (partial and several 32-column panels), with and without bias.
 *    Bit-identical with 1 and 2 threads, and each row computed alone is
 *    bit-identical to its row of the batch: an element's sum does not depend
 *    on N or the tile (what block diffusion's exact cache needs).  Where
 *    the CPU has AVX-512, its twin and the AVX2 one agree bit for bit.
 * 2. The switch: off by default; 1 turns it on; 0 turns it off and frees
 *    the copies, so a weight changed after that is packed afresh when it
 *    goes on again; bf16 weights keep their own path (bit-identical to the
 *    switch off); the ref backend has no switch (answers 0).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_test.h"
#include "dl_rng.h"
#include "kernels.h"
#include "kbase.h"
#include "cpu/cpu.h"

static void fill(float *x, size_t n, uint64_t seed) {
    dl_rng r;
    dl_rng_init(&r, seed, 0, 0, DL_RNG_INIT);
    for (size_t i = 0; i < n; i++) x[i] = (float)(2.0 * dl_rng_double_open(&r) - 1.0);
}

static void test_op(dl_dev *cpu, dl_dev *cpu1, dl_dev *ref) {
    const int Ns[] = { 1, 2, 7, 8, 9, 33, 300 }, Cs[] = { 1, 7, 64, 100 }, Os[] = { 1, 5, 31, 32, 33, 70 };
    int bad = 0, cases = 0, nondet = 0, alone_bad = 0, twin_bad = 0;
    const int avx512 = cpu_packed_avx512(-1);
    dl_dev_cpu_pack(cpu, 1); dl_dev_cpu_pack(cpu1, 1);
    for (size_t a = 0; a < sizeof Ns / sizeof *Ns; a++)
        for (size_t b = 0; b < sizeof Cs / sizeof *Cs; b++)
            for (size_t c = 0; c < sizeof Os / sizeof *Os; c++)
                for (int hb = 0; hb < 2; hb++) {
                    int N = Ns[a], C = Cs[b], O = Os[c];
                    float *x = malloc(sizeof(float) * N * C), *w = malloc(sizeof(float) * O * C),
                          *bias = malloc(sizeof(float) * O), *want = malloc(sizeof(float) * N * O),
                          *got = malloc(sizeof(float) * N * O), *got1 = malloc(sizeof(float) * N * O),
                          *row = malloc(sizeof(float) * O);
                    fill(x, (size_t)N * C, 1 + a); fill(w, (size_t)O * C, 2 + b + 10 * c); fill(bias, O, 3 + c);
                    const float *bp = hb ? bias : NULL;
                    dl_k_linear_fwd(ref, DL_F32, DL_F32, want, x, w, bp, N, C, O);
                    dl_k_linear_fwd(cpu, DL_F32, DL_F32, got, x, w, bp, N, C, O);
                    dl_k_linear_fwd(cpu1, DL_F32, DL_F32, got1, x, w, bp, N, C, O);
                    for (size_t i = 0; i < (size_t)N * O; i++)
                        if (!(fabsf(got[i] - want[i]) <= 1e-5f + 1e-5f * fabsf(want[i])))
                            if (bad++ < 3) printf("  # N=%d C=%d O=%d [%zu]: %.8g vs %.8g\n", N, C, O, i, got[i], want[i]);
                    nondet += memcmp(got, got1, sizeof(float) * N * O) != 0;
                    if (avx512) {   /* got1 again from the AVX2 twin */
                        cpu_packed_avx512(0);
                        dl_k_linear_fwd(cpu1, DL_F32, DL_F32, got1, x, w, bp, N, C, O);
                        cpu_packed_avx512(1);
                        twin_bad += memcmp(got, got1, sizeof(float) * N * O) != 0;
                    }
                    for (int n = 0; n < N; n += N > 40 ? 37 : 1) {
                        dl_k_linear_fwd(cpu, DL_F32, DL_F32, row, x + (size_t)n * C, w, bp, 1, C, O);
                        alone_bad += memcmp(row, got + (size_t)n * O, sizeof(float) * O) != 0;
                    }
                    cases++;
                    /* the next case may get the same addresses for another weight */
                    dl_dev_cpu_pack(cpu, 0); dl_dev_cpu_pack(cpu, 1);
                    dl_dev_cpu_pack(cpu1, 0); dl_dev_cpu_pack(cpu1, 1);
                    free(x); free(w); free(bias); free(want); free(got); free(got1); free(row);
                }
    DL_CHECK(bad == 0, "packed linear_fwd == ref within 1e-5 (%d cases, %d bad elements)", cases, bad);
    DL_CHECK(nondet == 0, "packed linear_fwd bit-identical with 1 and 2 threads (%d cases differ)", nondet);
    DL_CHECK(alone_bad == 0, "each row alone bit-identical to its row of the batch (%d rows differ)", alone_bad);
    if (avx512)
        DL_CHECK(twin_bad == 0, "the AVX-512 and AVX2 twins bit-identical (%d cases differ)", twin_bad);
    else
        printf("skip - AVX-512 twin vs AVX2: this CPU has no AVX-512 (the AVX2 twin ran above)\n");
    dl_dev_cpu_pack(cpu, 0); dl_dev_cpu_pack(cpu1, 0);
}

static void test_switch(dl_dev *cpu, dl_dev *ref) {
    enum { N = 3, C = 40, O = 50 };
    float x[N * C], w[O * C], a[N * O], b[N * O], g[N * O];
    uint16_t wh[O * C];
    fill(x, N * C, 7); fill(w, O * C, 8);
    for (int i = 0; i < O * C; i++) wh[i] = dl_f32_to_bf16(w[i]);
    DL_CHECK(dl_dev_cpu_pack(cpu, -1) == 0, "packed weights are off by default");
    DL_CHECK(dl_dev_cpu_pack(cpu, 1) == 1 && dl_dev_cpu_pack(cpu, -1) == 1, "1 turns them on, -1 asks");
    dl_k_linear_fwd(cpu, DL_F32, DL_F32, a, x, w, NULL, N, C, O);
    for (int i = 0; i < O * C; i++) w[i] *= 2.0f;
    DL_CHECK(dl_dev_cpu_pack(cpu, 0) == 0, "0 turns them off");
    dl_dev_cpu_pack(cpu, 1);
    dl_k_linear_fwd(cpu, DL_F32, DL_F32, b, x, w, NULL, N, C, O);
    int twice = 1;
    for (int i = 0; i < N * O; i++) twice &= b[i] == 2.0f * a[i];
    DL_CHECK(twice, "after off and on, a changed weight is packed afresh (outputs doubled exactly)");
    dl_k_linear_fwd(cpu, DL_F32, DL_BF16, a, x, wh, NULL, N, C, O);
    dl_dev_cpu_pack(cpu, 0);
    dl_k_linear_fwd(cpu, DL_F32, DL_BF16, g, x, wh, NULL, N, C, O);
    DL_CHECK(memcmp(a, g, sizeof a) == 0, "bf16 weights take their own path with the switch on");
    DL_CHECK(dl_dev_cpu_pack(ref, 1) == 0, "the ref backend has no packed-weight switch (answers 0)");
}

int main(void) {
    char err[256];
    dl_dev *cpu = NULL, *cpu1 = NULL, *ref = NULL;
    if (dl_dev_open(&cpu, DL_DEV_CPU, 2, err, sizeof err) || dl_dev_open(&cpu1, DL_DEV_CPU, 1, err, sizeof err) ||
        dl_dev_open(&ref, DL_DEV_REF, 0, err, sizeof err)) {
        printf("not ok - device open: %s\n", err);
        return 1;
    }
    test_op(cpu, cpu1, ref);
    test_switch(cpu, ref);
    dl_dev_close(cpu); dl_dev_close(cpu1); dl_dev_close(ref);
    return dl_test_end();
}
