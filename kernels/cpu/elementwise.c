/* kernels/cpu/elementwise.c — add, scale, row gather / scatter-add, 2-D copy,
 * dtype convert (f32 -> f32 only: the CPU backend stores f32).
 *
 * All split over elements or rows (cpu_par_range, pool.c).  scatter_add_rows
 * (also the embedding backward, embedding.c) is split over column slices,
 * rows added in index order m = 0..M-1 inside a slice, so repeated indices
 * accumulate in a fixed order whatever the thread count.
 * Does not: bounds-check indices (callers build them).
 */
#include <string.h>
#include "cpu.h"

#define GRAIN 32768   /* elements per chunk below which a loop stays serial */

/* the arguments of every op below (each uses some) */
typedef struct {
    float *y;
    const float *a, *b;
    const int32_t *idx;
    float s;
    int D, M, cols;
    size_t ld_dst, ld_src;
} ew_job;

static void add_range(void *arg, long lo, long hi, int tid) {
    const ew_job *j = arg;
    float *y = j->y;
    const float *a = j->a, *b = j->b;
    (void)tid;
#pragma omp simd
    for (long i = lo; i < hi; i++) y[i] = a[i] + b[i];
}
void cpu_add(dl_dev *d, dl_dtype dt, void *yv, const void *av, const void *bv, size_t n) {
    CPU_F32(dt);
    ew_job j = { .y = yv, .a = av, .b = bv };
    cpu_par_range(d, (long)n, n, GRAIN, add_range, &j);
}

static void add_inplace_range(void *arg, long lo, long hi, int tid) {
    const ew_job *j = arg;
    float *y = j->y;
    const float *x = j->a;
    (void)tid;
#pragma omp simd
    for (long i = lo; i < hi; i++) y[i] += x[i];
}
void cpu_add_inplace(dl_dev *d, dl_dtype dt, void *yv, const void *xv, size_t n) {
    CPU_F32(dt);
    ew_job j = { .y = yv, .a = xv };
    cpu_par_range(d, (long)n, n, GRAIN, add_inplace_range, &j);
}

static void scale_range(void *arg, long lo, long hi, int tid) {
    const ew_job *j = arg;
    float *x = j->y, s = j->s;
    (void)tid;
#pragma omp simd
    for (long i = lo; i < hi; i++) x[i] *= s;
}
void cpu_scale(dl_dev *d, float *x, float s, size_t n) {
    ew_job j = { .y = x, .s = s };
    cpu_par_range(d, (long)n, n, GRAIN, scale_range, &j);
}

static void gather_range(void *arg, long lo, long hi, int tid) {
    const ew_job *j = arg;
    (void)tid;
    for (long m = lo; m < hi; m++)
        memcpy(j->y + (size_t)m * j->D, j->a + (size_t)j->idx[m] * j->D, sizeof(float) * (size_t)j->D);
}
void cpu_gather_rows(dl_dev *d, dl_dtype dt, void *outv, const void *inv, const int32_t *idx, int M, int D) {
    CPU_F32(dt);
    ew_job j = { .y = outv, .a = inv, .idx = idx, .D = D };
    cpu_par_range(d, M, (size_t)M * D, GRAIN, gather_range, &j);
}

#define SLICE 64

static void scatter_add_range(void *arg, long lo, long hi, int tid) {
    const ew_job *jb = arg;
    const int D = jb->D;
    (void)tid;
    for (long s = lo; s < hi; s++) {
        int j0 = (int)s * SLICE, j1 = j0 + SLICE < D ? j0 + SLICE : D;
        for (int m = 0; m < jb->M; m++) {
            float *o = jb->y + (size_t)jb->idx[m] * D;
            const float *g = jb->a + (size_t)m * D;
#pragma omp simd
            for (int j = j0; j < j1; j++) o[j] += g[j];
        }
    }
}
void cpu_scatter_add_rows(dl_dev *d, dl_dtype dt, void *outv, const void *inv, const int32_t *idx, int M, int D) {
    CPU_F32(dt);
    ew_job j = { .y = outv, .a = inv, .idx = idx, .D = D, .M = M };
    cpu_par_range(d, (D + SLICE - 1) / SLICE, (size_t)M * D, GRAIN, scatter_add_range, &j);
}

static void copy_2d_range(void *arg, long lo, long hi, int tid) {
    const ew_job *j = arg;
    (void)tid;
    for (long r = lo; r < hi; r++)
        memcpy(j->y + (size_t)r * j->ld_dst, j->a + (size_t)r * j->ld_src, sizeof(float) * (size_t)j->cols);
}
void cpu_copy_2d(dl_dev *d, dl_dtype dt, void *dstv, size_t ld_dst, const void *srcv, size_t ld_src, int rows,
                 int cols) {
    CPU_F32(dt);
    ew_job j = { .y = dstv, .a = srcv, .cols = cols, .ld_dst = ld_dst, .ld_src = ld_src };
    cpu_par_range(d, rows, (size_t)rows * cols, GRAIN, copy_2d_range, &j);
}

void cpu_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n) {
    CPU_F32(dst_dt);
    CPU_F32(src_dt);
    (void)d;
    if (n && dst != src) memmove(dst, src, sizeof(float) * n);
}
