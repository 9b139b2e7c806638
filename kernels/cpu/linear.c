/* kernels/cpu/linear.c — nn.Linear: out = inp @ w^T + bias, and backward.
 *
 *   fwd:  out (N,O) = inp (N,C) @ w (O,C)^T [+ bias]   one cpu_gemm (bias
 *         rows copied into out first, then beta = 1)
 *   bwd:  dinp (N,C) = dout (N,O) @ w (O,C)             (overwrite; NULL skips)
 *         dw (O,C)  += dout^T @ inp                      (accumulate, beta = 1)
 *         dbias (O) += column sums of dout               (NULL skips)
 * GEMMs go through cpu_gemm (gemm.c: OpenBLAS sgemm or the plain-C kernel,
 * panels across the pool's threads).  dbias is split over column slices,
 * rows summed in order (independent of the thread count).
 * With dl_dev_cpu_gemv(d, n) set, N <= n rows go to cpu_gemv (gemv.c)
 * instead, f32 or bf16 weights; with dl_dev_cpu_pack on, f32 weights go to
 * cpu_linear_packed (linear_packed.c).
 * Does not: fuse activations, handle a transposed weight layout.
 */
#include <string.h>
#include "cpu.h"

typedef struct {
    float *out;
    const float *bias, *dout;
    int N, O;
} lin_job;

static void bias_rows(void *arg, long lo, long hi, int tid) {
    const lin_job *j = arg;
    (void)tid;
    for (long n = lo; n < hi; n++) memcpy(j->out + (size_t)n * j->O, j->bias, sizeof(float) * (size_t)j->O);
}

void cpu_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *outv, const void *inpv, const void *wv, const void *biasv,
                    int N, int C, int O) {
    CPU_F32(dt);
    if (N <= cpu_st(d)->gemv_rows) {   /* decoding: stream the weights once (gemv.c) */
        cpu_gemv(d, outv, inpv, wv, wdt == DL_BF16, biasv, N, C, O);
        return;
    }
    if (wdt == DL_F32 && cpu_st(d)->pack_on && cpu_linear_packed(d, outv, inpv, wv, biasv, N, C, O)) return;
    if (wdt == DL_BF16) {
        cpu_linear_fwd_bf16w(d, outv, inpv, wv, biasv, N, C, O);
        return;
    }
    CPU_F32(wdt);
    float *out = outv;
    const float *inp = inpv, *w = wv, *bias = biasv;
    float beta = 0.0f;
    if (bias) {
        lin_job j = { .out = out, .bias = bias, .N = N, .O = O };
        cpu_par_range(d, N, (size_t)N * O, 32768, bias_rows, &j);
        beta = 1.0f;
    }
    cpu_gemm(d, 0, 1, N, O, C, 1.0f, inp, C, w, C, beta, out, O);
}

#define SLICE 64

/* dbias (out) += column sums of dout, slices lo..hi of SLICE columns */
static void dbias_slices(void *arg, long lo, long hi, int tid) {
    const lin_job *jb = arg;
    const int O = jb->O;
    (void)tid;
    for (long s = lo; s < hi; s++) {
        int j0 = (int)s * SLICE, j1 = j0 + SLICE < O ? j0 + SLICE : O;
        float acc[SLICE] = {0};
        for (int n = 0; n < jb->N; n++) {
            const float *g = jb->dout + (size_t)n * O;
#pragma omp simd
            for (int j = j0; j < j1; j++) acc[j - j0] += g[j];
        }
        for (int j = j0; j < j1; j++) jb->out[j] += acc[j - j0];
    }
}

void cpu_linear_bwd(dl_dev *d, dl_dtype dt, void *dinpv, float *dw, float *dbias, const void *doutv,
                    const void *inpv, const void *wv, int N, int C, int O) {
    CPU_F32(dt);
    float *dinp = dinpv;
    const float *dout = doutv, *inp = inpv, *w = wv;
    if (dinp) cpu_gemm(d, 0, 0, N, C, O, 1.0f, dout, O, w, C, 0.0f, dinp, C);
    if (dw) cpu_gemm(d, 1, 0, O, C, N, 1.0f, dout, O, inp, C, 1.0f, dw, C);   /* NULL: a frozen weight (LoRA) */
    if (dbias) {
        lin_job j = { .out = dbias, .dout = dout, .N = N, .O = O };
        cpu_par_range(d, (O + SLICE - 1) / SLICE, (size_t)N * O, 32768, dbias_slices, &j);
    }
}
