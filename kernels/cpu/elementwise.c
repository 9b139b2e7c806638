/* kernels/cpu/elementwise.c — add, scale, row gather / scatter-add, 2-D copy,
 * dtype convert (f32 -> f32 only: the CPU backend stores f32).
 *
 * All OpenMP over elements or rows.  scatter_add_rows is deterministic the
 * same way as the embedding backward: OpenMP over column slices, rows added
 * in index order m = 0..M-1 inside a slice, so repeated indices accumulate
 * in a fixed order whatever the thread count.
 * Does not: bounds-check indices (callers build them).
 */
#include <string.h>
#include "cpu.h"

#define GRAIN 32768   /* elements per thread below which a loop stays serial */

void cpu_add(dl_dev *d, dl_dtype dt, void *yv, const void *av, const void *bv, size_t n) {
    CPU_F32(dt);
    float *y = yv;
    const float *a = av, *b = bv;
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, GRAIN)) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void cpu_add_inplace(dl_dev *d, dl_dtype dt, void *yv, const void *xv, size_t n) {
    CPU_F32(dt);
    float *y = yv;
    const float *x = xv;
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, GRAIN)) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void cpu_scale(dl_dev *d, float *x, float s, size_t n) {
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, GRAIN)) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void cpu_gather_rows(dl_dev *d, dl_dtype dt, void *outv, const void *inv, const int32_t *idx, int M, int D) {
    CPU_F32(dt);
    float *out = outv;
    const float *in = inv;
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)M * D, GRAIN)) schedule(static)
    for (int m = 0; m < M; m++)
        memcpy(out + (size_t)m * D, in + (size_t)idx[m] * D, sizeof(float) * (size_t)D);
}

#define SLICE 64

void cpu_scatter_add_rows(dl_dev *d, dl_dtype dt, void *outv, const void *inv, const int32_t *idx, int M, int D) {
    CPU_F32(dt);
    float *out = outv;
    const float *in = inv;
    int ns = (D + SLICE - 1) / SLICE;
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)M * D, GRAIN)) schedule(static)
    for (int s = 0; s < ns; s++) {
        int j0 = s * SLICE, j1 = j0 + SLICE < D ? j0 + SLICE : D;
        for (int m = 0; m < M; m++) {
            float *o = out + (size_t)idx[m] * D;
            const float *g = in + (size_t)m * D;
#pragma omp simd
            for (int j = j0; j < j1; j++) o[j] += g[j];
        }
    }
}

void cpu_copy_2d(dl_dev *d, dl_dtype dt, void *dstv, size_t ld_dst, const void *srcv, size_t ld_src, int rows,
                 int cols) {
    CPU_F32(dt);
    float *dst = dstv;
    const float *src = srcv;
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)rows * cols, GRAIN)) schedule(static)
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * ld_dst, src + (size_t)r * ld_src, sizeof(float) * (size_t)cols);
}

void cpu_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n) {
    CPU_F32(dst_dt);
    CPU_F32(src_dt);
    (void)d;
    if (n && dst != src) memmove(dst, src, sizeof(float) * n);
}
