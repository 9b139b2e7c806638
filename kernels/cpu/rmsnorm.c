/* kernels/cpu/rmsnorm.c — RMSNorm (LLaMA), forward and backward.
 *
 *   fwd: rstd[n] = 1 / sqrt(mean_j x[n,j]^2 + eps)   (float64 sum)
 *        y[n,j]  = w[j] * (x[n,j] * rstd[n])          (HF LlamaRMSNorm order)
 *   bwd (of the line above, with xh = x * rstd, g = dy * w):
 *        dx[n,j] += rstd[n] * (g[n,j] - xh[n,j] * mean_i(g[n,i] xh[n,i]))
 *        dw[j]   += sum_n dy[n,j] * xh[n,j]
 *   dx is OpenMP over rows; dw over column slices with rows summed in order,
 *   so both are independent of the thread count.
 * Does not: fuse the residual add (dx accumulates instead).
 */
#include <math.h>
#include "cpu.h"

void cpu_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *yv, float *rstd, const void *xv, const void *wv, int N, int D,
                     float eps) {
    CPU_F32(dt);
    float *y = yv;
    const float *x = xv, *w = wv;
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)N * D, 16384)) schedule(static)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *yr = y + (size_t)n * D;
        double ss = 0.0;
#pragma omp simd reduction(+:ss)
        for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
        float r = (float)(1.0 / sqrt(ss / D + (double)eps));
        rstd[n] = r;
#pragma omp simd
        for (int j = 0; j < D; j++) yr[j] = w[j] * (xr[j] * r);
    }
}

#define SLICE 64

void cpu_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dxv, float *dw, const void *dyv, const void *xv, const void *wv,
                     const float *rstd, int N, int D) {
    CPU_F32(dt);
    float *dx = dxv;
    const float *dy = dyv, *x = xv, *w = wv;
    int nt = cpu_nthreads(d, (size_t)N * D, 16384);
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (int n = 0; n < N; n++) {
            const float *xr = x + (size_t)n * D, *g = dy + (size_t)n * D;
            float *dxr = dx + (size_t)n * D;
            float r = rstd[n];
            double dot = 0.0;   /* sum_i g_i xh_i */
#pragma omp simd reduction(+:dot)
            for (int j = 0; j < D; j++) dot += (double)(g[j] * w[j]) * (xr[j] * r);
            float c = (float)(dot / D);
#pragma omp simd
            for (int j = 0; j < D; j++) dxr[j] += r * (g[j] * w[j] - (xr[j] * r) * c);
        }
        int ns = dw ? (D + SLICE - 1) / SLICE : 0;   /* dw NULL: a frozen norm (LoRA) */
#pragma omp for schedule(static)
        for (int s = 0; s < ns; s++) {
            int j0 = s * SLICE, j1 = j0 + SLICE < D ? j0 + SLICE : D;
            float acc[SLICE] = {0};
            for (int n = 0; n < N; n++) {
                const float *xr = x + (size_t)n * D, *g = dy + (size_t)n * D;
                float r = rstd[n];
#pragma omp simd
                for (int j = j0; j < j1; j++) acc[j - j0] += g[j] * (xr[j] * r);
            }
            for (int j = j0; j < j1; j++) dw[j] += acc[j - j0];
        }
    }
}
