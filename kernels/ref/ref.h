/* kernels/ref/ref.h — internals of the reference backend (not an API):
 * element load / store in the storage dtype, and the op declarations the
 * table in backend.c points to.
 * Every ref op: the plainest loops, float64 accumulation, one thread, no
 * BLAS; loads widen to double, stores round once (bf16: nearest even).
 * Does not: aim for speed (tests only).
 */
#ifndef DL_KERNELS_REF_H
#define DL_KERNELS_REF_H
#include <math.h>
#include "../backend.h"

static inline double ld(const void *p, dl_dtype dt, size_t i) {
    return dt == DL_BF16 ? (double)dl_bf16_to_f32(((const uint16_t *)p)[i]) : (double)((const float *)p)[i];
}
static inline void st(void *p, dl_dtype dt, size_t i, double v) {
    if (dt == DL_BF16) ((uint16_t *)p)[i] = dl_f32_to_bf16((float)v);
    else ((float *)p)[i] = (float)v;
}

/* visible keys of query i: [0, jmax) (kernels.h, attention) */
static inline int ref_jmax(int i, int len, int T, dl_attn_mask mask, int block) {
    if (mask == DL_ATTN_BD3) return dl_attn_jend(i, len, T, mask, block);
    int j = T;
    if (mask == DL_ATTN_CAUSAL) j = i + 1;
    else if (mask == DL_ATTN_BLOCK) j = (i / block + 1) * block;
    if (j > T) j = T;
    return j < len ? j : len;
}

void ref_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D);
void ref_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D);
void ref_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                     float eps);
void ref_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                     const float *rstd, int N, int D);
void ref_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                         const void *w, int N, int D, float eps);
void ref_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                    int N, int C, int O);
void ref_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                    const void *inp, const void *w, int N, int C, int O);
void ref_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
              dl_rope_layout layout, int inverse);
void ref_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                       const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block);
void ref_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                       const void *out, const float *lse, const float *att, const void *q, const void *k,
                       const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block);
size_t ref_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att);
void ref_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                              const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                              int Hq, int Hk, int E);
void ref_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                          const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E);
void ref_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F);
void ref_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                    const void *up, int N, int F);
void ref_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n);
void ref_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n);
void ref_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
void ref_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
void ref_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src, int rows,
                 int cols);
void ref_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n);
void ref_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M, int V);
void ref_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets, int M,
                  int V);
void ref_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                        int M, int V, int v0, int vc);
void ref_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const double *stat, const float *dce,
                        const uint32_t *targets, int M, int v0, int vc);
double ref_sumsq(dl_dev *d, const float *x, size_t n);
void ref_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip);
void ref_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
               float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
               uint16_t *bf16_copy);
void ref_scale(dl_dev *d, float *x, float s, size_t n);
/* the plain reference of token selection (select.c): one position after
 * another, full sorts, no scratch reuse */
int ref_select_tokens(dl_dev *d, const dl_select_args *a);

#endif
