/* kernels/cpu/dev.c — the CPU backend handle: threads, memory, copies.
 *
 * Memory: dl_dev_alloc returns 64-byte aligned, zero-filled host memory
 * (aligned_alloc); copies are memcpy; dl_dev_sync does nothing (CPU ops are
 * synchronous).
 *
 * Threads — one pool.  Every op parallelises with OpenMP over d->threads
 * threads (index of dl_dev_open, 0 = omp_get_max_threads(), i.e.
 * OMP_NUM_THREADS or the core count).  OpenBLAS is switched to ONE thread
 * here (openblas_set_num_threads(1), process-wide, overriding
 * OPENBLAS_NUM_THREADS): cpu_gemm (gemm.c) cuts every GEMM into panels and
 * runs one single-threaded sgemm per OpenMP thread, and attention runs its
 * per-(b, h) sgemms inside its own OpenMP loop.  Reasons: parallel regions
 * never nest, and the OpenBLAS pthread pool (which spin-waits after each
 * call) never fights the OpenMP pool for the same cores between a GEMM and
 * the elementwise op that follows it.  Measured on 2 Zen 3 cores
 * (bench/kernels_bench.c, KB_OPENBLAS_THREADS=1) on the model's GEMM shapes
 * (2048x768x256 ... 768x256x2048): 168-180 GFLOP/s as panels against 70-124
 * with OpenBLAS' own 2 threads, whose spinning workers then also slow down
 * whatever runs next.
 *
 * Does not: CUDA (dl_dev_open(DL_DEV_CUDA) fails with -DL_EXIT_DEVICE until
 * the CUDA backend of issue 5/6 exists), pinned memory, NUMA placement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "dl_base.h"
#include "cpu.h"
#ifdef DL_HAVE_OPENBLAS
#include <cblas.h>
#endif

int dl_dev_open(dl_dev **dp, dl_dev_kind kind, int index, char *err, size_t errlen) {
    *dp = NULL;
    if (kind != DL_DEV_CPU)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "this build has no CUDA backend (use --device cpu)");
    if (index < 0)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "bad CPU thread count %d", index);
    dl_dev *d = calloc(1, sizeof *d);
    if (!d) return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "out of memory");
    d->kind = DL_DEV_CPU;
    d->threads = index > 0 ? index : omp_get_max_threads();
    if (d->threads < 1) d->threads = 1;
#ifdef DL_HAVE_OPENBLAS
    openblas_set_num_threads(1);
    d->use_blas = 1;
    const char *cfg = openblas_get_config();     /* "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen ..." */
    char ver[32] = "OpenBLAS";
    if (cfg && !strncmp(cfg, "OpenBLAS ", 9)) snprintf(ver, sizeof ver, "OpenBLAS %.*s", (int)strcspn(cfg + 9, " "), cfg + 9);
    const char *core = openblas_get_corename();
    snprintf(d->desc, sizeof d->desc, "cpu (%d thread%s, %s %s)", d->threads, d->threads == 1 ? "" : "s",
             ver, core ? core : "");
#else
    d->use_blas = 0;
    snprintf(d->desc, sizeof d->desc, "cpu (%d thread%s, plain-C GEMM)", d->threads, d->threads == 1 ? "" : "s");
#endif
    *dp = d;
    return 0;
}

void dl_dev_close(dl_dev *d) { if (d) free(d->rope_tab); free(d); }
dl_dev_kind dl_dev_kind_of(const dl_dev *d) { return d->kind; }
const char *dl_dev_describe(const dl_dev *d) { return d->desc; }
int dl_dev_threads(const dl_dev *d) { return d->threads; }

int dl_dev_cpu_blas(dl_dev *d, int on) {
#ifdef DL_HAVE_OPENBLAS
    if (on >= 0) d->use_blas = on ? 1 : 0;
#else
    (void)on;
#endif
    return d->use_blas;
}

void *dl_dev_alloc(dl_dev *d, size_t bytes) {
    (void)d;
    size_t n = (bytes + 63) / 64 * 64;
    if (n < bytes) return NULL;                  /* overflow */
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}
void dl_dev_free(dl_dev *d, void *p) { (void)d; free(p); }
void dl_dev_memset0(dl_dev *d, void *p, size_t bytes) { (void)d; if (bytes) memset(p, 0, bytes); }
void dl_dev_h2d(dl_dev *d, void *dst, const void *src, size_t bytes) { (void)d; if (bytes) memcpy(dst, src, bytes); }
void dl_dev_d2h(dl_dev *d, void *dst, const void *src, size_t bytes) { (void)d; if (bytes) memcpy(dst, src, bytes); }
void dl_dev_d2d(dl_dev *d, void *dst, const void *src, size_t bytes) { (void)d; if (bytes && dst != src) memmove(dst, src, bytes); }
void dl_dev_sync(dl_dev *d) { (void)d; }
