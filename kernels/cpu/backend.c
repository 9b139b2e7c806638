/* kernels/cpu/backend.c — the CPU backend: open / close (threads, BLAS),
 * memory and copies, supports() and the ops table kernels/dispatch.c calls.
 *
 * Memory: dl_dev_alloc returns 64-byte aligned, zero-filled host memory
 * (aligned_alloc); copies are memcpy; dl_dev_sync does nothing (CPU ops are
 * synchronous).
 *
 * Threads — one pool (pool.c).  Every op splits its loop into chunks that
 * d->threads threads claim (index of dl_dev_open, 0 = omp_get_max_threads(),
 * i.e. OMP_NUM_THREADS or the core count).  OpenBLAS, loaded when the first
 * device opens (openblas.c), is switched to ONE thread there
 * (openblas_set_num_threads(1), process-wide, overriding
 * OPENBLAS_NUM_THREADS): cpu_gemm (gemm.c) cuts every GEMM into panels, one
 * single-threaded sgemm each, and attention runs its per-(b, h) sgemms
 * inside its own loop.  Reasons: loops never nest, and the OpenBLAS pthread
 * pool (which spin-waits after each call) never fights ours for the same
 * cores between a GEMM and the elementwise op that follows it.  Measured on 2 Zen 3 cores
 * (bench/kernels_bench.c, KB_OPENBLAS_THREADS=1) on the model's GEMM shapes
 * (2048x768x256 ... 768x256x2048): 168-180 GFLOP/s as panels against 70-124
 * with OpenBLAS' own 2 threads, whose spinning workers then also slow down
 * whatever runs next.
 *
 * dtypes: DL_F32 storage (supports() answers 0 for dt DL_BF16; every op
 * asserts dt == DL_F32), plus bf16 WEIGHTS (wdt) for embedding_fwd and
 * linear_fwd(_split) with f32 activations (linear_bf16w.c).
 * Does not: bf16 activations, pinned memory, NUMA placement.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <omp.h>
#include "cpu.h"

int dl_backend_cpu_open(dl_dev *d, int index, char *err, size_t errlen) {
    if (index < 0)
        return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "bad CPU thread count %d", index);
    cpu_state *st = calloc(1, sizeof *st);
    if (!st) return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "out of memory");
    d->be = st;
    d->threads = index > 0 ? index : omp_get_max_threads();
    if (d->threads < 1) d->threads = 1;
    const char *ts = d->threads == 1 ? "" : "s";
#ifdef DL_HAVE_OPENBLAS
    const char *why;
    if (!cpu_openblas_load(&why)) {
        st->use_blas = 1;
        const char *cfg = cpu_openblas.get_config();     /* "OpenBLAS 0.3.21 DYNAMIC_ARCH ... Zen ..." */
        char ver[32] = "OpenBLAS";
        if (cfg && !strncmp(cfg, "OpenBLAS ", 9)) snprintf(ver, sizeof ver, "OpenBLAS %.*s", (int)strcspn(cfg + 9, " "), cfg + 9);
        const char *core = cpu_openblas.get_corename();
        snprintf(d->desc, sizeof d->desc, "cpu (%d thread%s, %s %s)", d->threads, ts, ver, core ? core : "");
        return 0;
    }
    snprintf(d->desc, sizeof d->desc, "cpu (%d thread%s, plain-C GEMM: %.120s)", d->threads, ts, why);
#else
    snprintf(d->desc, sizeof d->desc, "cpu (%d thread%s, plain-C GEMM)", d->threads, ts);
#endif
    st->use_blas = 0;
    return 0;
}

static void cpu_close(dl_dev *d) {
    cpu_state *st = cpu_st(d);
    if (st) {
        free(st->rope_tab);
        cpu_packed_free(st);
    }
    free(st);
    d->be = NULL;
}

static int cpu_blas(dl_dev *d, int on) {
#ifdef DL_HAVE_OPENBLAS
    const char *why;
    if (on >= 0) cpu_st(d)->use_blas = on && !cpu_openblas_load(&why);   /* on only when it loaded */
#else
    (void)on;
#endif
    return cpu_st(d)->use_blas;
}

static int cpu_gemv_set(dl_dev *d, int rows) {
    if (rows >= 0) cpu_st(d)->gemv_rows = rows > CPU_GEMV_NMAX ? CPU_GEMV_NMAX : rows;
    return cpu_st(d)->gemv_rows;
}

static int cpu_pack_set(dl_dev *d, int on) {
    cpu_state *st = cpu_st(d);
    if (on == 0) cpu_packed_free(st);
    if (on >= 0) st->pack_on = on ? 1 : 0;
    return st->pack_on;
}

/* f32 everywhere; bf16 weights with f32 activations for the ops that take
 * a weight dtype (linear_bf16w.c) */
static int cpu_supports(const dl_dev *d, dl_op op, dl_dtype dt, dl_dtype wdt) {
    (void)d;
    if (dt != DL_F32) return 0;
    if (wdt == DL_F32) return 1;
    return wdt == DL_BF16 && (op == DL_OP_EMBEDDING_FWD || op == DL_OP_LINEAR_FWD || op == DL_OP_LINEAR_FWD_SPLIT);
}

static void *cpu_alloc(dl_dev *d, size_t bytes) {
    (void)d;
    size_t n = (bytes + 63) / 64 * 64;
    if (n < bytes) return NULL;                  /* overflow */
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}
static void cpu_free(dl_dev *d, void *p) { (void)d; free(p); }
static void cpu_memset0(dl_dev *d, void *p, size_t bytes) { (void)d; if (bytes) memset(p, 0, bytes); }
static void cpu_copy(dl_dev *d, void *dst, const void *src, size_t bytes) { (void)d; if (bytes) memcpy(dst, src, bytes); }
static void cpu_d2d(dl_dev *d, void *dst, const void *src, size_t bytes) { (void)d; if (bytes && dst != src) memmove(dst, src, bytes); }
static void cpu_sync(dl_dev *d) { (void)d; }

const dl_backend_ops dl_backend_cpu_ops = {
    .name = "cpu", .close = cpu_close, .supports = cpu_supports, .cpu_blas = cpu_blas, .cpu_gemv = cpu_gemv_set,
    .cpu_pack = cpu_pack_set,
    .alloc = cpu_alloc, .free = cpu_free, .memset0 = cpu_memset0, .h2d = cpu_copy, .d2h = cpu_copy,
    .d2d = cpu_d2d, .sync = cpu_sync,
    .embedding_fwd = cpu_embedding_fwd, .embedding_bwd = cpu_embedding_bwd,
    .rmsnorm_fwd = cpu_rmsnorm_fwd, .rmsnorm_bwd = cpu_rmsnorm_bwd,
    .add_rmsnorm_fwd = cpu_add_rmsnorm_fwd,
    .linear_fwd = cpu_linear_fwd, .linear_bwd = cpu_linear_bwd, .rope = cpu_rope,
    .attention_fwd = cpu_attention_fwd, .attention_bwd = cpu_attention_bwd,
    .attention_bwd_scratch_bytes = cpu_attention_bwd_scratch_bytes, .attention_kv_fwd = cpu_attention_kv_fwd,
    .attention_cached_fwd = cpu_attention_cached_fwd,
    .swiglu_fwd = cpu_swiglu_fwd, .swiglu_bwd = cpu_swiglu_bwd, .add = cpu_add, .add_inplace = cpu_add_inplace,
    .gather_rows = cpu_gather_rows, .scatter_add_rows = cpu_scatter_add_rows, .copy_2d = cpu_copy_2d,
    .convert = cpu_convert, .xent_fwd = cpu_xent_fwd, .xent_bwd = cpu_xent_bwd,
    .xent_chunk_fwd = cpu_xent_chunk_fwd, .xent_chunk_bwd = cpu_xent_chunk_bwd, .sumsq = cpu_sumsq,
    .grad_clip = cpu_grad_clip, .adamw = cpu_adamw, .scale = cpu_scale,
    .select_tokens = cpu_select_tokens,
};
