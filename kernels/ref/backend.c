/* kernels/ref/backend.c — the reference backend (DL_DEV_REF): host memory,
 * every op in F32 and BF16 storage, one thread.  Tests compare every other
 * backend against it (tests/unit/test_backend_ops.c).
 * Memory is plain host memory as on the CPU backend (64-byte aligned,
 * zero-filled), so tests can read results directly after d2h.
 * Does not: threads, BLAS, anything meant for production runs.
 */
#include <stdio.h>
#include <stdlib.h>
#include "ref.h"

int dl_backend_ref_open(dl_dev *d, int index, char *err, size_t errlen) {
    (void)index; (void)err; (void)errlen;
    d->threads = 1;
    snprintf(d->desc, sizeof d->desc, "ref (1 thread, float64 loops)");
    return 0;
}

static void ref_close(dl_dev *d) { (void)d; }
/* Any weight dtype with any activation dtype for the ops that take wdt (a
 * load widens either one to double); wdt == dt elsewhere. */
static int ref_supports(const dl_dev *d, dl_op op, dl_dtype dt, dl_dtype wdt) {
    (void)d;
    if (wdt != dt && op != DL_OP_EMBEDDING_FWD && op != DL_OP_LINEAR_FWD && op != DL_OP_LINEAR_FWD_SPLIT) return 0;
    if (op == DL_OP_SUMSQ || op == DL_OP_GRAD_CLIP || op == DL_OP_ADAMW || op == DL_OP_SCALE || op == DL_OP_SELECT_TOKENS) return dt == DL_F32;
    return dt == DL_F32 || dt == DL_BF16;
}
static void *ref_alloc(dl_dev *d, size_t bytes) {
    (void)d;
    size_t n = (bytes + 63) / 64 * 64;
    if (n < bytes) return NULL;
    if (n == 0) n = 64;
    void *p = aligned_alloc(64, n);
    if (p) memset(p, 0, n);
    return p;
}
static void ref_free(dl_dev *d, void *p) { (void)d; free(p); }
static void ref_memset0(dl_dev *d, void *p, size_t bytes) { (void)d; if (bytes) memset(p, 0, bytes); }
static void ref_copy(dl_dev *d, void *dst, const void *src, size_t bytes) { (void)d; if (bytes) memmove(dst, src, bytes); }
static void ref_sync(dl_dev *d) { (void)d; }

const dl_backend_ops dl_backend_ref_ops = {
    .name = "ref", .close = ref_close, .supports = ref_supports, .cpu_blas = NULL,
    .alloc = ref_alloc, .free = ref_free, .memset0 = ref_memset0, .h2d = ref_copy, .d2h = ref_copy,
    .d2d = ref_copy, .sync = ref_sync,
    .embedding_fwd = ref_embedding_fwd, .embedding_bwd = ref_embedding_bwd,
    .rmsnorm_fwd = ref_rmsnorm_fwd, .rmsnorm_bwd = ref_rmsnorm_bwd,
    .add_rmsnorm_fwd = ref_add_rmsnorm_fwd,
    .linear_fwd = ref_linear_fwd, .linear_bwd = ref_linear_bwd, .rope = ref_rope,
    .attention_fwd = ref_attention_fwd, .attention_bwd = ref_attention_bwd,
    .attention_bwd_scratch_bytes = ref_attention_bwd_scratch_bytes, .attention_kv_fwd = ref_attention_kv_fwd,
    .attention_cached_fwd = ref_attention_cached_fwd,
    .swiglu_fwd = ref_swiglu_fwd, .swiglu_bwd = ref_swiglu_bwd, .add = ref_add, .add_inplace = ref_add_inplace,
    .gather_rows = ref_gather_rows, .scatter_add_rows = ref_scatter_add_rows, .copy_2d = ref_copy_2d,
    .convert = ref_convert, .xent_fwd = ref_xent_fwd, .xent_bwd = ref_xent_bwd,
    .xent_chunk_fwd = ref_xent_chunk_fwd, .xent_chunk_bwd = ref_xent_chunk_bwd, .sumsq = ref_sumsq,
    .grad_clip = ref_grad_clip, .adamw = ref_adamw, .scale = ref_scale,
    .select_tokens = ref_select_tokens,
};
