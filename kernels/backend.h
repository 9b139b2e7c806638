/* kernels/backend.h — the interface a backend implements (not for callers:
 * they use kernels.h).  In the spirit of ggml's ggml-backend-impl.h: a
 * backend is a const table of function pointers, one per op forward /
 * backward plus memory, copy, sync and a supports(op, dtype, weight dtype) query;
 * kernels/dispatch.c turns every public dl_k_* / dl_dev_* call into
 * d->ops->xxx(d, ...).  Each op's contract (shapes, dtypes, accumulate vs
 * overwrite) is the one stated in kernels.h for the dl_k_ function of the
 * same name; the backend receives the arguments unchanged.
 *
 * A backend provides `const dl_backend_ops *dl_backend_xxx(void)` and an
 * open function that fills a dl_dev (ops, kind, threads, desc, be).
 * Does not: register backends dynamically (dispatch.c picks by kind), or
 * schedule work across backends.
 */
#ifndef DL_KERNELS_BACKEND_H
#define DL_KERNELS_BACKEND_H
#include "kernels.h"
#include "kbase.h"

typedef struct dl_backend_ops {
    const char *name;                                   /* "cpu", "ref" */
    void (*close)(dl_dev *d);                           /* frees d->be (not d) */
    /* wdt: the weight dtype (== dt for every op that takes no wdt) */
    int (*supports)(const dl_dev *d, dl_op op, dl_dtype dt, dl_dtype wdt);
    int (*cpu_blas)(dl_dev *d, int on);                 /* NULL: no BLAS switch */
    int (*cpu_gemv)(dl_dev *d, int rows);               /* NULL: no GEMV switch */
    int (*cpu_pack)(dl_dev *d, int on);                 /* NULL: no packed-weight switch */
    /* memory */
    void *(*alloc)(dl_dev *d, size_t bytes);
    void (*free)(dl_dev *d, void *p);
    void (*memset0)(dl_dev *d, void *p, size_t bytes);
    void (*h2d)(dl_dev *d, void *dst, const void *src, size_t bytes);
    void (*d2h)(dl_dev *d, void *dst, const void *src, size_t bytes);
    void (*d2d)(dl_dev *d, void *dst, const void *src, size_t bytes);
    void (*sync)(dl_dev *d);
    /* ops */
    void (*embedding_fwd)(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D);
    void (*embedding_bwd)(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D);
    void (*rmsnorm_fwd)(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                        float eps);
    void (*rmsnorm_bwd)(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                        const float *rstd, int N, int D);
    void (*add_rmsnorm_fwd)(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                            const void *w, int N, int D, float eps);
    void (*linear_fwd)(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                       int N, int C, int O);
    /* NULL: dispatch.c calls linear_fwd once per part (what the CPU and ref
     * backends want); a GPU backend fills it with one stacked GEMM */
    void (*linear_fwd_split)(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *const *outs, const int *O_parts, int nparts,
                             const void *inp, const void *w, const void *bias, int N, int C);
    void (*linear_bwd)(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                       const void *inp, const void *w, int N, int C, int O);
    void (*rope)(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
                 dl_rope_layout layout, int inverse);
    void (*attention_fwd)(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                          const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                          dl_attn_mask mask, int block);
    void (*attention_bwd)(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                          const void *out, const float *lse, const float *att, const void *q, const void *k,
                          const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                          dl_attn_mask mask, int block);
    size_t (*attention_bwd_scratch_bytes)(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att);
    void (*attention_kv_fwd)(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                             const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk,
                             int E);
    void (*attention_cached_fwd)(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                                 const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n,
                                 int Tmax, int Hq, int Hk, int E);
    void (*swiglu_fwd)(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F);
    void (*swiglu_bwd)(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                       const void *up, int N, int F);
    void (*add)(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n);
    void (*add_inplace)(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n);
    void (*gather_rows)(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
    void (*scatter_add_rows)(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
    void (*copy_2d)(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src, int rows,
                    int cols);
    void (*convert)(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n);
    void (*xent_fwd)(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M, int V);
    void (*xent_bwd)(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets, int M,
                     int V);
    void (*xent_chunk_fwd)(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits,
                           const uint32_t *targets, int M, int V, int v0, int vc);
    void (*xent_chunk_bwd)(dl_dev *d, dl_dtype dt, void *dlogits_inout, const double *stat, const float *dce,
                           const uint32_t *targets, int M, int v0, int vc);
    double (*sumsq)(dl_dev *d, const float *x, size_t n);
    void (*grad_clip)(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip);
    void (*adamw)(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
                  float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
                  uint16_t *bf16_copy);
    void (*scale)(dl_dev *d, float *x, float s, size_t n);
    int (*select_tokens)(dl_dev *d, const dl_select_args *a);   /* logits f32 */
} dl_backend_ops;

/* The device handle every backend shares; backend state hangs off `be`. */
struct dl_dev {
    const dl_backend_ops *ops;
    dl_dev_kind kind;
    int threads;          /* CPU: OpenMP threads every op uses (>= 1); others 1 */
    char desc[160];       /* dl_dev_describe */
    void *be;             /* backend-private state (cpu: struct cpu_state) */
    struct dl_dev_prof *prof;   /* dl_dev_profile's table, or NULL (off) */
};

/* Backend constructors (dispatch.c calls the one of the requested kind):
 * fill d (already zeroed, ops / kind set by the caller) or return a
 * negative DL_K_E* with err set. */
int dl_backend_cpu_open(dl_dev *d, int index, char *err, size_t errlen);
int dl_backend_ref_open(dl_dev *d, int index, char *err, size_t errlen);
extern const dl_backend_ops dl_backend_cpu_ops, dl_backend_ref_ops;
#ifdef DL_HAVE_CUDA
/* kernels/cuda/backend.cu (built when nvcc is found): -4 with "no CUDA
 * device visible" on a machine without a GPU */
int dl_backend_cuda_open(dl_dev *d, int index, char *err, size_t errlen);
extern const dl_backend_ops dl_backend_cuda_ops;
#endif

#endif
