/* kernels/dispatch.c — dl_dev_open picks a backend table by kind; every
 * public dl_k_* / dl_dev_* function of kernels.h is a one-line call through
 * d->ops (kernels/backend.h).  Also the dtype / op names and kbase.h's
 * error helpers, and dl_dev_profile's blocking per-op timing (OP below).
 * Does not: check shapes (the backends assert what they rely on), convert
 * dtypes behind the caller's back, or fall back from one backend to another.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "backend.h"

/* dl_dev_profile's table: per op, the wall seconds and calls */
struct dl_dev_prof { double sec[DL_OP_COUNT]; long calls[DL_OP_COUNT]; int on; };
static double prof_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
/* run CALL (an op of kind ID); while profiling, wait for the device and book the time */
#define OP(ID, CALL) do { \
    if (!d->prof || !d->prof->on) { CALL; break; } \
    double t0_ = prof_now(); \
    CALL; \
    d->ops->sync(d); \
    d->prof->sec[ID] += prof_now() - t0_; d->prof->calls[ID]++; } while (0)

int dl_k_seterr(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

_Noreturn void dl_k_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "dllm: internal error: assertion failed at %s:%d: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

size_t dl_dtype_size(dl_dtype dt) { return dt == DL_BF16 ? 2 : 4; }
const char *dl_dtype_name(dl_dtype dt) { return dt == DL_BF16 ? "bf16" : "f32"; }

const char *dl_op_name(dl_op op) {
    static const char *const names[DL_OP_COUNT] = {
        "embedding_fwd", "embedding_bwd", "rmsnorm_fwd", "rmsnorm_bwd", "linear_fwd", "linear_fwd_split", "linear_bwd", "rope",
        "attention_fwd", "attention_bwd", "attention_kv_fwd", "swiglu_fwd", "swiglu_bwd", "add", "add_inplace",
        "gather_rows", "scatter_add_rows", "copy_2d", "convert", "xent_fwd", "xent_bwd", "sumsq", "adamw", "scale",
        "select_tokens", "attention_cached_fwd", "add_rmsnorm_fwd", "grad_clip",
        "xent_chunk_fwd", "xent_chunk_bwd",
    };
    return (unsigned)op < DL_OP_COUNT ? names[op] : "?";
}

/* ------------------------------------------------------------ device */
int dl_dev_open(dl_dev **dp, dl_dev_kind kind, int index, char *err, size_t errlen) {
    *dp = NULL;
    const dl_backend_ops *ops = NULL;
    int (*open)(dl_dev *, int, char *, size_t) = NULL;
    if (kind == DL_DEV_CPU) { ops = &dl_backend_cpu_ops; open = dl_backend_cpu_open; }
    else if (kind == DL_DEV_REF) { ops = &dl_backend_ref_ops; open = dl_backend_ref_open; }
#ifdef DL_HAVE_CUDA
    else if (kind == DL_DEV_CUDA) { ops = &dl_backend_cuda_ops; open = dl_backend_cuda_open; }
#endif
    else return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "this build has no CUDA backend (use --device cpu)");
    dl_dev *d = calloc(1, sizeof *d);
    if (!d) return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "out of memory");
    d->ops = ops;
    d->kind = kind;
    d->threads = 1;
    int rc = open(d, index, err, errlen);
    if (rc) { free(d); return rc; }
    *dp = d;
    return 0;
}

void dl_dev_close(dl_dev *d) {
    if (!d) return;
    free(d->prof);
    d->ops->close(d);
    free(d);
}
dl_dev_kind dl_dev_kind_of(const dl_dev *d) { return d->kind; }
const char *dl_dev_describe(const dl_dev *d) { return d->desc; }
int dl_dev_threads(const dl_dev *d) { return d->threads; }
int dl_dev_supports(const dl_dev *d, dl_op op, dl_dtype dt) { return dl_dev_supports_w(d, op, dt, dt); }
int dl_dev_supports_w(const dl_dev *d, dl_op op, dl_dtype dt, dl_dtype wdt) {
    return (unsigned)op < DL_OP_COUNT && (unsigned)dt < DL_NDTYPES && (unsigned)wdt < DL_NDTYPES &&
           d->ops->supports(d, op, dt, wdt);
}
int dl_dev_cpu_blas(dl_dev *d, int on) { return d->ops->cpu_blas ? d->ops->cpu_blas(d, on) : 0; }
int dl_dev_cpu_gemv(dl_dev *d, int rows) { return d->ops->cpu_gemv ? d->ops->cpu_gemv(d, rows) : 0; }
int dl_dev_cpu_pack(dl_dev *d, int on) { return d->ops->cpu_pack ? d->ops->cpu_pack(d, on) : 0; }
void *dl_dev_alloc(dl_dev *d, size_t bytes) { return d->ops->alloc(d, bytes); }
void dl_dev_free(dl_dev *d, void *p) { d->ops->free(d, p); }
void dl_dev_memset0(dl_dev *d, void *p, size_t bytes) { d->ops->memset0(d, p, bytes); }
void dl_dev_h2d(dl_dev *d, void *dst, const void *src, size_t bytes) { d->ops->h2d(d, dst, src, bytes); }
void dl_dev_d2h(dl_dev *d, void *dst, const void *src, size_t bytes) { d->ops->d2h(d, dst, src, bytes); }
void dl_dev_d2d(dl_dev *d, void *dst, const void *src, size_t bytes) { d->ops->d2d(d, dst, src, bytes); }
void dl_dev_sync(dl_dev *d) { d->ops->sync(d); }
int dl_dev_profile(dl_dev *d, int on) {
    if (on && !d->prof && !(d->prof = calloc(1, sizeof *d->prof))) return -1;
    if (!d->prof) return 0;
    if (on) memset(d->prof, 0, sizeof *d->prof);
    d->prof->on = on != 0;
    return 0;
}
void dl_dev_profile_get(const dl_dev *d, dl_op op, double *seconds, long *calls) {
    int ok = d->prof && (unsigned)op < DL_OP_COUNT;
    *seconds = ok ? d->prof->sec[op] : 0;
    *calls = ok ? d->prof->calls[op] : 0;
}

/* ------------------------------------------------------------ ops */
void dl_k_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D) {
    OP(DL_OP_EMBEDDING_FWD, d->ops->embedding_fwd(d, dt, wdt, out, ids, wte, N, D));
}
void dl_k_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D) {
    OP(DL_OP_EMBEDDING_BWD, d->ops->embedding_bwd(d, dt, dwte, dout, ids, N, D));
}
void dl_k_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                      float eps) {
    OP(DL_OP_RMSNORM_FWD, d->ops->rmsnorm_fwd(d, dt, y, rstd, x, w, N, D, eps));
}
void dl_k_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                      const float *rstd, int N, int D) {
    OP(DL_OP_RMSNORM_BWD, d->ops->rmsnorm_bwd(d, dt, dx, dw, dy, x, w, rstd, N, D));
}
void dl_k_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                          const void *w, int N, int D, float eps) {
    OP(DL_OP_ADD_RMSNORM_FWD, d->ops->add_rmsnorm_fwd(d, dt, sum, y, rstd, a, b, w, N, D, eps));
}
void dl_k_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                     int N, int C, int O) {
    OP(DL_OP_LINEAR_FWD, d->ops->linear_fwd(d, dt, wdt, out, inp, w, bias, N, C, O));
}
void dl_k_linear_fwd_split(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *const *outs, const int *O_parts, int nparts,
                           const void *inp, const void *w, const void *bias, int N, int C) {
    DL_K_ASSERT(nparts >= 1 && nparts <= 4);
    if (d->ops->linear_fwd_split) {
        OP(DL_OP_LINEAR_FWD_SPLIT, d->ops->linear_fwd_split(d, dt, wdt, outs, O_parts, nparts, inp, w, bias, N, C));
        return;
    }
    /* one linear_fwd per part, weight rows offset in the weight dtype, bias
     * rows in the activation dtype (bias is stored like activations) */
    size_t ws = dl_dtype_size(wdt), bs = dl_dtype_size(dt), row = 0;
    for (int p = 0; p < nparts; p++) {
        OP(DL_OP_LINEAR_FWD_SPLIT, d->ops->linear_fwd(d, dt, wdt, outs[p], inp, (const char *)w + row * C * ws,
                                                      bias ? (const char *)bias + row * bs : NULL, N, C, O_parts[p]));
        row += (size_t)O_parts[p];
    }
}
void dl_k_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                     const void *w, int N, int C, int O) {
    OP(DL_OP_LINEAR_BWD, d->ops->linear_bwd(d, dt, dinp, dw, dbias, dout, inp, w, N, C, O));
}
void dl_k_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
               dl_rope_layout layout, int inverse) {
    OP(DL_OP_ROPE, d->ops->rope(d, dt, x, pos, N, H, E, theta, layout, inverse));
}
void dl_k_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                        const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                        dl_attn_mask mask, int block) {
    OP(DL_OP_ATTENTION_FWD,
       d->ops->attention_fwd(d, dt, out, lse, att, q, k, v, lens, B, T, Hq, Hk, E, mask, block));
}
void dl_k_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                        const void *out, const float *lse, const float *att, const void *q, const void *k,
                        const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                        dl_attn_mask mask, int block) {
    OP(DL_OP_ATTENTION_BWD, d->ops->attention_bwd(d, dt, dq, dk, dv, scratch, dout, out, lse, att, q, k, v, lens, B, T,
                                                  Hq, Hk, E, mask, block));
}
size_t dl_k_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att) {
    return d->ops->attention_bwd_scratch_bytes(d, B, T, Hq, Hk, E, have_att);
}
void dl_k_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                           const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E) {
    OP(DL_OP_ATTENTION_KV_FWD,
       d->ops->attention_kv_fwd(d, dt, out, q, kcache, vcache, n_past, B, n, Tmax, Hq, Hk, E));
}
void dl_k_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                               const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                               int Hq, int Hk, int E) {
    OP(DL_OP_ATTENTION_CACHED_FWD,
       d->ops->attention_cached_fwd(d, dt, out, q, kcache, vcache, rows, n_keys, B, n, Tmax, Hq, Hk, E));
}
void dl_k_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F) {
    OP(DL_OP_SWIGLU_FWD, d->ops->swiglu_fwd(d, dt, out, gate, up, N, F));
}
void dl_k_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                     const void *up, int N, int F) {
    OP(DL_OP_SWIGLU_BWD, d->ops->swiglu_bwd(d, dt, dgate, dup, dout, gate, up, N, F));
}
void dl_k_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n) {
    OP(DL_OP_ADD, d->ops->add(d, dt, y, a, b, n));
}
void dl_k_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n) {
    OP(DL_OP_ADD_INPLACE, d->ops->add_inplace(d, dt, y, x, n));
}
void dl_k_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D) {
    OP(DL_OP_GATHER_ROWS, d->ops->gather_rows(d, dt, out, in, idx, M, D));
}
void dl_k_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D) {
    OP(DL_OP_SCATTER_ADD_ROWS, d->ops->scatter_add_rows(d, dt, out, in, idx, M, D));
}
void dl_k_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src,
                  int rows, int cols) {
    OP(DL_OP_COPY_2D, d->ops->copy_2d(d, dt, dst, ld_dst, src, ld_src, rows, cols));
}
void dl_k_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n) {
    OP(DL_OP_CONVERT, d->ops->convert(d, dst, dst_dt, src, src_dt, n));
}
void dl_k_softmax_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M,
                           int V) {
    OP(DL_OP_XENT_FWD, d->ops->xent_fwd(d, dt, ce, probs_inout, targets, M, V));
}
void dl_k_softmax_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets,
                           int M, int V) {
    OP(DL_OP_XENT_BWD, d->ops->xent_bwd(d, dt, dlogits_inout, dce, targets, M, V));
}
void dl_k_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                         int M, int V, int v0, int vc) {
    OP(DL_OP_XENT_CHUNK_FWD, d->ops->xent_chunk_fwd(d, dt, stat, ce, logits, targets, M, V, v0, vc));
}
void dl_k_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const double *stat, const float *dce,
                         const uint32_t *targets, int M, int v0, int vc) {
    OP(DL_OP_XENT_CHUNK_BWD, d->ops->xent_chunk_bwd(d, dt, dlogits_inout, stat, dce, targets, M, v0, vc));
}
double dl_k_sumsq(dl_dev *d, const float *x, size_t n) {
    double r = 0;
    OP(DL_OP_SUMSQ, r = d->ops->sumsq(d, x, n));
    return r;
}
void dl_k_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip) {
    OP(DL_OP_GRAD_CLIP, d->ops->grad_clip(d, norm_scale, x, n, clip));
}
void dl_k_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr,
                float b1, float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
                uint16_t *bf16_copy) {
    OP(DL_OP_ADAMW,
       d->ops->adamw(d, param, grad, m, v, n, lr, b1, b2, eps, wd, step, grad_scale, dev_scale, bf16_copy));
}
void dl_k_scale(dl_dev *d, float *x, float s, size_t n) { OP(DL_OP_SCALE, d->ops->scale(d, x, s, n)); }
int dl_k_select_tokens(dl_dev *d, const dl_select_args *a) {
    int r = 0;
    OP(DL_OP_SELECT_TOKENS, r = d->ops->select_tokens(d, a));
    return r;
}
