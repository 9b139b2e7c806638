/* kernels/cpu/rmsnorm.c — RMSNorm (LLaMA), forward and backward.
 *
 *   fwd: rstd[n] = 1 / sqrt(mean_j x[n,j]^2 + eps)   (float64 sum)
 *        y[n,j]  = w[j] * (x[n,j] * rstd[n])          (HF LlamaRMSNorm order)
 *   bwd (of the line above, with xh = x * rstd, g = dy * w):
 *        dx[n,j] += rstd[n] * (g[n,j] - xh[n,j] * mean_i(g[n,i] xh[n,i]))
 *        dw[j]   += sum_n dy[n,j] * xh[n,j]
 *   dx is split over rows; dw over column slices with rows summed in order,
 *   so both are independent of the thread count.
 *   add_rmsnorm_fwd: per row, sum = a + b, then the forward's own row code
 *   on the stored sum (one pass over the rows instead of two).
 * Does not: fuse the residual add into the backward (dx accumulates instead).
 */
#include <math.h>
#include "cpu.h"

typedef struct {
    float *y, *rstd_out, *dw;      /* fwd: y, rstd; bwd: dx (in y), dw */
    float *sum;                    /* add_rmsnorm_fwd: x = sum = a + dy */
    const float *x, *w, *dy, *rstd;
    int N, D;
    float eps;
} rms_job;

static inline void fwd_row(float *yr, float *rstd, const float *xr, const float *w, int D, float eps) {
    double ss = 0.0;
#pragma omp simd reduction(+:ss)
    for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
    float r = (float)(1.0 / sqrt(ss / D + (double)eps));
    *rstd = r;
#pragma omp simd
    for (int j = 0; j < D; j++) yr[j] = w[j] * (xr[j] * r);
}
static void fwd_rows(void *arg, long lo, long hi, int tid) {
    const rms_job *jb = arg;
    const int D = jb->D;
    (void)tid;
    for (long n = lo; n < hi; n++)
        fwd_row(jb->y + (size_t)n * D, &jb->rstd_out[n], jb->x + (size_t)n * D, jb->w, D, jb->eps);
}
static void add_fwd_rows(void *arg, long lo, long hi, int tid) {
    const rms_job *jb = arg;
    const int D = jb->D;
    (void)tid;
    for (long n = lo; n < hi; n++) {
        const float *ar = jb->x + (size_t)n * D, *br = jb->dy + (size_t)n * D;
        float *sr = jb->sum + (size_t)n * D;
#pragma omp simd
        for (int j = 0; j < D; j++) sr[j] = ar[j] + br[j];
        fwd_row(jb->y + (size_t)n * D, &jb->rstd_out[n], sr, jb->w, D, jb->eps);
    }
}
void cpu_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *yv, float *rstd, const void *xv, const void *wv, int N, int D,
                     float eps) {
    CPU_F32(dt);
    rms_job j = { .y = yv, .rstd_out = rstd, .x = xv, .w = wv, .D = D, .eps = eps };
    cpu_par_range(d, N, (size_t)N * D, 16384, fwd_rows, &j);
}

void cpu_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                         const void *w, int N, int D, float eps) {
    CPU_F32(dt);
    rms_job j = { .y = y, .rstd_out = rstd, .sum = sum, .x = a, .dy = b, .w = w, .D = D, .eps = eps };
    cpu_par_range(d, N, 2 * (size_t)N * D, 16384, add_fwd_rows, &j);
}

#define SLICE 64

static void bwd_rows(void *arg, long lo, long hi, int tid) {
    const rms_job *jb = arg;
    const int D = jb->D;
    const float *w = jb->w;
    (void)tid;
    for (long n = lo; n < hi; n++) {
        const float *xr = jb->x + (size_t)n * D, *g = jb->dy + (size_t)n * D;
        float *dxr = jb->y + (size_t)n * D;
        float r = jb->rstd[n];
        double dot = 0.0;   /* sum_i g_i xh_i */
#pragma omp simd reduction(+:dot)
        for (int j = 0; j < D; j++) dot += (double)(g[j] * w[j]) * (xr[j] * r);
        float c = (float)(dot / D);
#pragma omp simd
        for (int j = 0; j < D; j++) dxr[j] += r * (g[j] * w[j] - (xr[j] * r) * c);
    }
}
static void bwd_dw_slices(void *arg, long lo, long hi, int tid) {
    const rms_job *jb = arg;
    const int D = jb->D, N = jb->N;
    (void)tid;
    for (long s = lo; s < hi; s++) {
        int j0 = (int)s * SLICE, j1 = j0 + SLICE < D ? j0 + SLICE : D;
        float acc[SLICE] = {0};
        for (int n = 0; n < N; n++) {
            const float *xr = jb->x + (size_t)n * D, *g = jb->dy + (size_t)n * D;
            float r = jb->rstd[n];
#pragma omp simd
            for (int j = j0; j < j1; j++) acc[j - j0] += g[j] * (xr[j] * r);
        }
        for (int j = j0; j < j1; j++) jb->dw[j] += acc[j - j0];
    }
}
void cpu_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dxv, float *dw, const void *dyv, const void *xv, const void *wv,
                     const float *rstd, int N, int D) {
    CPU_F32(dt);
    rms_job j = { .y = dxv, .dw = dw, .x = xv, .w = wv, .dy = dyv, .rstd = rstd, .N = N, .D = D };
    cpu_par_range(d, N, (size_t)N * D, 16384, bwd_rows, &j);
    if (dw)   /* NULL: a frozen norm (LoRA) */
        cpu_par_range(d, (D + SLICE - 1) / SLICE, (size_t)N * D, 16384, bwd_dw_slices, &j);
}
