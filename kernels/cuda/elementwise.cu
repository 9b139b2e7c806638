/* kernels/cuda/elementwise.cu — add, add_inplace, gather / scatter-add rows,
 * 2-D copy, dtype conversion, SwiGLU, and the fp32 optimizer pieces (scale,
 * sumsq, AdamW).  Elementwise kernels are grid-stride loops over n.
 * Determinism: scatter_add_rows gives each output row to one block that
 * adds its source rows in order of m (rowscatter.h; no atomics), as the
 * reference does; sumsq
 * reduces fixed per-block partials in a fixed order, then one sync.
 * AdamW is the CPU backend's float32 chain (kernels/cpu/optim.c), the
 * constants computed on the host the same way.
 * Does not: vectorised loads (a later version), fusion.
 */
#include <math.h>
#include "rowscatter.h"

#define GRID_STRIDE(i, n) for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
                               i += (size_t)gridDim.x * blockDim.x)

template <typename T> __global__ void k_add(T *y, const T *a, const T *b, size_t n) {
    GRID_STRIDE(i, n) cu_st(y, i, cu_ld(a, i) + cu_ld(b, i));
}
void cu_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n) {
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_add<T>)((T *)y, (const T *)a, (const T *)b, n)));
    CUDA_LAUNCHED();
}
void cu_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n) {
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_add<T>)((T *)y, (const T *)y, (const T *)x, n)));
    CUDA_LAUNCHED();
}

template <typename T> __global__ void k_gather(T *out, const T *in, const int32_t *idx, int M, int D) {
    GRID_STRIDE(i, (size_t)M * D) {
        size_t m = i / D, j = i % D;
        out[i] = in[(size_t)idx[m] * D + j];
    }
}
void cu_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D) {
    if (M <= 0 || D <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks((size_t)M * D, 256), 256, 0, cu_stream(d), k_gather<T>)((T *)out, (const T *)in,
                                                                                            idx, M, D)));
    CUDA_LAUNCHED();
}

/* a repeated idx adds its rows in order of m (rowscatter.h) */
void cu_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D) {
    CU_DISPATCH(dt, (cu_row_scatter_add(d, (T *)out, (const T *)in, idx, M, D)));
}

void cu_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src, int rows,
                int cols) {
    if (rows <= 0 || cols <= 0) return;
    size_t es = dl_dtype_size(dt);
    CUDA_CHECK(cudaMemcpy2DAsync(dst, ld_dst * es, src, ld_src * es, (size_t)cols * es, (size_t)rows,
                                 cudaMemcpyDeviceToDevice, cu_stream(d)));
}

template <typename TD, typename TS> __global__ void k_convert(TD *dst, const TS *src, size_t n) {
    GRID_STRIDE(i, n) cu_st(dst, i, cu_ld(src, i));
}
void cu_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n) {
    if (!n) return;
    if (dst_dt == src_dt) {
        CUDA_CHECK(cudaMemcpyAsync(dst, src, n * dl_dtype_size(dst_dt), cudaMemcpyDeviceToDevice, cu_stream(d)));
        return;
    }
    unsigned g = cu_blocks(n, 256);
    if (dst_dt == DL_BF16) CU_LAUNCH(g, 256, 0, cu_stream(d), k_convert<bf16, float>)((bf16 *)dst, (const float *)src, n);
    else CU_LAUNCH(g, 256, 0, cu_stream(d), k_convert<float, bf16>)((float *)dst, (const bf16 *)src, n);
    CUDA_LAUNCHED();
}

template <typename T> __global__ void k_swiglu_fwd(T *out, const T *gate, const T *up, size_t n) {
    GRID_STRIDE(i, n) {
        float g = cu_ld(gate, i);
        cu_st(out, i, g / (1.0f + expf(-g)) * cu_ld(up, i));
    }
}
template <typename T> __global__ void k_swiglu_bwd(T *dgate, T *dup, const T *dout, const T *gate, const T *up,
                                                   size_t n) {
    GRID_STRIDE(i, n) {
        float g = cu_ld(gate, i), s = 1.0f / (1.0f + expf(-g)), u = cu_ld(up, i), go = cu_ld(dout, i);
        cu_st(dup, i, go * g * s);
        cu_st(dgate, i, go * u * s * (1.0f + g * (1.0f - s)));
    }
}
void cu_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F) {
    size_t n = (size_t)N * F;
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_swiglu_fwd<T>)((T *)out, (const T *)gate,
                                                                                   (const T *)up, n)));
    CUDA_LAUNCHED();
}
void cu_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                   const void *up, int N, int F) {
    size_t n = (size_t)N * F;
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_swiglu_bwd<T>)(
                        (T *)dgate, (T *)dup, (const T *)dout, (const T *)gate, (const T *)up, n)));
    CUDA_LAUNCHED();
}

__global__ void k_scale(float *x, float s, size_t n) {
    GRID_STRIDE(i, n) x[i] *= s;
}
void cu_scale(dl_dev *d, float *x, float s, size_t n) {
    if (!n) return;
    CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_scale)(x, s, n);
    CUDA_LAUNCHED();
}

/* pass 1: CU_RED_BLOCKS partial sums (grid-stride, fixed assignment) */
__global__ void k_sumsq_part(double *part, const float *x, size_t n) {
    double s = 0;
    GRID_STRIDE(i, n) s += (double)x[i] * x[i];
    s = cu_block_sum_d(s);
    if (threadIdx.x == 0) part[blockIdx.x] = s;
}
/* pass 2: one block adds the partials in a fixed order; the total goes to
 * part[nparts], or (grad_clip) the norm and its clip factor to norm_scale */
__global__ void k_sumsq_final(double *part, int nparts, double *norm_scale, double clip) {
    double s = 0;
    for (int i = threadIdx.x; i < nparts; i += blockDim.x) s += part[i];
    s = cu_block_sum_d(s);
    if (threadIdx.x != 0) return;
    if (!norm_scale) { part[nparts] = s; return; }
    norm_scale[0] = sqrt(s);
    norm_scale[1] = dl_k_clip_factor(norm_scale[0], clip);
}
/* both passes on the stream: the total into st->red[CU_RED_BLOCKS], or
 * (norm_scale) the norm and its clip factor there */
static void sumsq_passes(cuda_state *st, const float *x, size_t n, double *norm_scale, double clip) {
    if (n) {
        CU_LAUNCH(CU_RED_BLOCKS, 256, 0, st->s, k_sumsq_part)(st->red, x, n);
        CUDA_LAUNCHED();
    } else CUDA_CHECK(cudaMemsetAsync(st->red, 0, CU_RED_BLOCKS * sizeof(double), st->s));
    CU_LAUNCH(1, 256, 0, st->s, k_sumsq_final)(st->red, CU_RED_BLOCKS, norm_scale, clip);
    CUDA_LAUNCHED();
}
double cu_sumsq(dl_dev *d, const float *x, size_t n) {
    if (!n) return 0.0;
    cuda_state *st = cu_state(d);
    sumsq_passes(st, x, n, (double *)NULL, 0.0);
    CUDA_CHECK(cudaMemcpyAsync(st->red_host, st->red + CU_RED_BLOCKS, sizeof(double), cudaMemcpyDeviceToHost, st->s));
    CUDA_CHECK(cudaStreamSynchronize(st->s));
    return *st->red_host;
}
/* the same two passes, ending on the device: nothing comes back to the host */
void cu_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip) {
    sumsq_passes(cu_state(d), x, n, norm_scale, clip);
}

/* the shortest decimal (<= 9 digits) that rounds to x, as a double (as
 * kernels/cpu/optim.c, so the constants are the CPU's) */
static double widen(float x) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        double v = strtod(buf, NULL);
        if ((float)v == x) return v;
    }
    return x;
}
__global__ void k_adamw(float *param, const float *grad, float *m, float *v, size_t n, float grad_scale,
                        const double *dev_scale, bf16 *copy, float decay, float w1, float w2, float b2,
                        float step_size, float bc2_sqrt, float eps) {
    if (dev_scale) grad_scale = (float)*dev_scale;
    if (!(grad_scale - grad_scale == 0.0f)) return;   /* not finite: kernels.h leaves every weight as it was */
    GRID_STRIDE(i, n) {
        float g = grad[i] * grad_scale;
        float p = param[i] * decay;
        float mi = m[i] + w1 * (g - m[i]);
        float vi = v[i] * b2 + w2 * g * g;
        m[i] = mi;
        v[i] = vi;
        float pn = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
        param[i] = pn;
        if (copy) copy[i] = __float2bfloat16_rn(pn);
    }
}
void cu_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
              float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
              uint16_t *bf16_copy) {
    if (!n) return;
    const double B1 = widen(b1), B2 = widen(b2);
    const double bc1 = 1.0 - pow(B1, step), bc2 = 1.0 - pow(B2, step);
    CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_adamw)(param, grad, m, v, n, grad_scale, dev_scale,
                                                          (bf16 *)bf16_copy,
                                                          (float)(1.0 - (double)lr * wd), (float)(1.0 - B1),
                                                          (float)(1.0 - B2), b2, (float)((double)lr / bc1),
                                                          (float)sqrt(bc2), eps);
    CUDA_LAUNCHED();
}
