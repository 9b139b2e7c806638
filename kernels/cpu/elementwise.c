/* kernels/cpu/elementwise.c — add, scale, row gather / scatter-add.
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

void dl_k_add(dl_dev *d, float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, GRAIN)) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void dl_k_add_inplace(dl_dev *d, float *y, const float *x, size_t n) {
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, GRAIN)) schedule(static)
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void dl_k_scale(dl_dev *d, float *x, float s, size_t n) {
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, GRAIN)) schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= s;
}

void dl_k_gather_rows(dl_dev *d, float *out, const float *in, const int32_t *idx, int M, int D) {
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)M * D, GRAIN)) schedule(static)
    for (int m = 0; m < M; m++)
        memcpy(out + (size_t)m * D, in + (size_t)idx[m] * D, sizeof(float) * (size_t)D);
}

#define SLICE 64

void dl_k_scatter_add_rows(dl_dev *d, float *out, const float *in, const int32_t *idx, int M, int D) {
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
