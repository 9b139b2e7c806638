/* kernels/cuda/layers.cu — embedding forward / backward, RMSNorm forward /
 * backward, RoPE (both layouts) and softmax cross-entropy.
 * Per-row ops (rmsnorm, xent) run one block per row with a fixed-order block
 * reduction; RMSNorm's dw sums over rows in fixed chunks (colsum.h), and
 * embedding_bwd gives each vocabulary row to one block that adds its rows
 * in order (rowscatter.h): deterministic, no atomics.
 * add_rmsnorm_fwd is the residual add and the next norm in one kernel.
 * xent_chunk_fwd / _bwd: the cross-entropy over the vocabulary in chunks.
 * Does not: fuse the residual add into RMSNorm's backward, vectorise loads.
 */
#include <math.h>
#include "colsum.h"
#include "rowscatter.h"

template <typename T> __global__ void k_embedding_fwd(T *out, const uint32_t *ids, const T *wte, int N, int D) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N * D;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = wte[(size_t)ids[i / D] * D + i % D];
}
void cu_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N,
                      int D) {
    DL_K_ASSERT(wdt == dt);
    if (N <= 0 || D <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks((size_t)N * D, 256), 256, 0, cu_stream(d), k_embedding_fwd<T>)(
                        (T *)out, ids, (const T *)wte, N, D)));
    CUDA_LAUNCHED();
}
/* dwte[ids[n]] += dout[n], a repeated id's rows in order of n (the reference's order): rowscatter.h */
void cu_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D) {
    CU_DISPATCH(dt, (cu_row_scatter_add(d, dwte, (const T *)dout, ids, N, D)));
}

/* row blockIdx.x of x normalised into y (one block per row); `add`: x is
 * first written as a + b, each thread reading back only what it wrote, so
 * the fused op needs no barrier and sums exactly the values the plain
 * forward would read */
template <typename T> __device__ void rmsnorm_row(T *y, float *rstd, T *x, const T *a, const T *b, const T *w, int D,
                                                  float eps) {
    size_t r = (size_t)blockIdx.x * D;
    double ss = 0;
    for (int j = threadIdx.x; j < D; j += blockDim.x) {
        if (a) cu_st(x, r + j, cu_ld(a, r + j) + cu_ld(b, r + j));
        float v = cu_ld(x, r + j);
        ss += (double)v * v;
    }
    ss = cu_block_sum_d(ss);
    float rs = (float)(1.0 / sqrt(ss / D + eps));
    if (threadIdx.x == 0) rstd[blockIdx.x] = rs;
    for (int j = threadIdx.x; j < D; j += blockDim.x) cu_st(y, r + j, cu_ld(w, j) * cu_ld(x, r + j) * rs);
}
template <typename T> __global__ void k_rmsnorm_fwd(T *y, float *rstd, const T *x, const T *w, int D, float eps) {
    rmsnorm_row<T>(y, rstd, (T *)x, NULL, NULL, w, D, eps);   /* x is only read */
}
template <typename T> __global__ void k_add_rmsnorm_fwd(T *y, float *rstd, T *sum, const T *a, const T *b, const T *w,
                                                        int D, float eps) {
    rmsnorm_row<T>(y, rstd, sum, a, b, w, D, eps);
}
void cu_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                    float eps) {
    if (N <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(N, 256, 0, cu_stream(d), k_rmsnorm_fwd<T>)((T *)y, rstd, (const T *)x, (const T *)w, D, eps)));
    CUDA_LAUNCHED();
}
void cu_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                        const void *w, int N, int D, float eps) {
    if (N <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(N, 256, 0, cu_stream(d), k_add_rmsnorm_fwd<T>)((T *)y, rstd, (T *)sum, (const T *)a,
                                                                            (const T *)b, (const T *)w, D, eps)));
    CUDA_LAUNCHED();
}
/* dx[n] += rstd (dy*w - xhat * mean(dy*w*xhat)) : one block per row */
template <typename T> __global__ void k_rmsnorm_bwd_dx(T *dx, const T *dy, const T *x, const T *w, const float *rstd,
                                                       int D) {
    size_t r = (size_t)blockIdx.x * D;
    float rs = rstd[blockIdx.x];
    double dot = 0;
    for (int j = threadIdx.x; j < D; j += blockDim.x)
        dot += (double)cu_ld(dy, r + j) * cu_ld(w, j) * cu_ld(x, r + j) * rs;
    float c = (float)(cu_block_sum_d(dot) / D);
    for (int j = threadIdx.x; j < D; j += blockDim.x) {
        float xh = cu_ld(x, r + j) * rs;
        cu_st(dx, r + j, cu_ld(dx, r + j) + rs * (cu_ld(dy, r + j) * cu_ld(w, j) - xh * c));
    }
}
/* dw[j] += sum_n dy x rstd : one thread per column, rows in order */
/* dw[j] += sum_n dy[n][j] * x[n][j] * rstd[n] (cu_colsum's term) */
template <typename T> struct rms_dw_term {
    const T *dy, *x;
    const float *rstd;
    int D;
    __device__ float operator()(int n, int j) const {
        return cu_ld(dy, (size_t)n * D + j) * cu_ld(x, (size_t)n * D + j) * rstd[n];
    }
};
void cu_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                    const float *rstd, int N, int D) {
    if (N <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(N, 256, 0, cu_stream(d), k_rmsnorm_bwd_dx<T>)((T *)dx, (const T *)dy, (const T *)x,
                                                                     (const T *)w, rstd, D)));
    CUDA_LAUNCHED();
    if (dw) CU_DISPATCH(dt, (cu_colsum(d, dw, rms_dw_term<T>{ (const T *)dy, (const T *)x, rstd, D }, N, D)));
}

/* thread per (n, j): angle = pos * f_j in float32 (HF / llama2.c), cos / sin
 * in float64 as the reference; all H heads of the row */
template <typename T> __global__ void k_rope(T *x, const int32_t *pos, int N, int H, int E, float theta, int pairs,
                                             int inverse) {
    int half = E / 2;
    for (size_t t = (size_t)blockIdx.x * blockDim.x + threadIdx.x; t < (size_t)N * half;
         t += (size_t)gridDim.x * blockDim.x) {
        int n = (int)(t / half), j = (int)(t % half);
        float f = 1.0f / powf(theta, (float)(2 * j) / (float)E);
        double a = (double)((float)pos[n] * f), c = cos(a), s = inverse ? -sin(a) : sin(a);
        for (int h = 0; h < H; h++) {
            size_t base = ((size_t)n * H + h) * E;
            size_t i0 = base + (pairs ? 2 * (size_t)j : (size_t)j), i1 = pairs ? i0 + 1 : i0 + half;
            double u = cu_ld(x, i0), w = cu_ld(x, i1);
            cu_st(x, i0, (float)(u * c - w * s));
            cu_st(x, i1, (float)(w * c + u * s));
        }
    }
}
void cu_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
             dl_rope_layout layout, int inverse) {
    DL_K_ASSERT(E % 2 == 0);
    size_t n = (size_t)N * (E / 2);
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 128), 128, 0, cu_stream(d), k_rope<T>)((T *)x, pos, N, H, E, theta,
                                                                          layout == DL_ROPE_PAIRS, inverse)));
    CUDA_LAUNCHED();
}

/* one block per row: max, float64 sum of exp, ce, probs in place */
template <typename T> __global__ void k_xent_fwd(float *ce, T *probs, const uint32_t *targets, int V) {
    size_t r = (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < V; j += blockDim.x) mx = fmaxf(mx, cu_ld(probs, r + j));
    mx = cu_block_max(mx);
    double s = 0;
    for (int j = threadIdx.x; j < V; j += blockDim.x) s += exp((double)cu_ld(probs, r + j) - mx);
    s = cu_block_sum_d(s);
    float xt = cu_ld(probs, r + targets[blockIdx.x]);
    __syncthreads();   /* every thread read the target logit before any probability is written */
    if (threadIdx.x == 0) ce[blockIdx.x] = (float)(log(s) - ((double)xt - mx));
    for (int j = threadIdx.x; j < V; j += blockDim.x) cu_st(probs, r + j, (float)(exp((double)cu_ld(probs, r + j) - mx) / s));
}
void cu_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M, int V) {
    if (M <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(M, 256, 0, cu_stream(d), k_xent_fwd<T>)(ce, (T *)probs_inout, targets, V)));
    CUDA_LAUNCHED();
}
template <typename T> __global__ void k_xent_bwd(T *dl, const float *dce, const uint32_t *targets, int M, int V) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)M * V;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t m = i / V;
        uint32_t j = (uint32_t)(i % V);
        cu_st(dl, i, dce[m] * (cu_ld(dl, i) - (j == targets[m] ? 1.0f : 0.0f)));
    }
}
void cu_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets, int M, int V) {
    size_t n = (size_t)M * V;
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_xent_bwd<T>)((T *)dlogits_inout, dce, targets, M, V)));
    CUDA_LAUNCHED();
}

/* the vocabulary in chunks (kernels.h): one block per row folds its (vc)
 * logits into the row's running max and float64 sum, as k_xent_fwd does
 * for a whole row; thread 0 owns the row's stat */
template <typename T> __global__ void k_xent_chunk_fwd(double *stat, float *ce, const T *z, const uint32_t *targets,
                                                       int V, int v0, int vc) {
    size_t r = (size_t)blockIdx.x * vc;
    double *st = stat + 3 * (size_t)blockIdx.x;
    float mc = -INFINITY;
    for (int j = threadIdx.x; j < vc; j += blockDim.x) mc = fmaxf(mc, cu_ld(z, r + j));
    mc = cu_block_max(mc);
    double mx = v0 == 0 || mc > st[0] ? (double)mc : st[0];
    double s = 0;
    for (int j = threadIdx.x; j < vc; j += blockDim.x) s += exp((double)cu_ld(z, r + j) - mx);
    s = cu_block_sum_d(s);
    if (threadIdx.x != 0) return;
    s += v0 == 0 ? 0.0 : st[1] * exp(st[0] - mx);
    st[0] = mx; st[1] = s;
    uint32_t t = targets[blockIdx.x];
    if (t >= (uint32_t)v0 && t < (uint32_t)(v0 + vc)) st[2] = cu_ld(z, r + t - v0);
    if (v0 + vc == V) {
        st[0] = mx + log(s);
        ce[blockIdx.x] = (float)(st[0] - st[2]);
    }
}
void cu_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                       int M, int V, int v0, int vc) {
    if (M <= 0 || vc <= 0) return;
    CU_DISPATCH(dt, (CU_LAUNCH(M, 256, 0, cu_stream(d), k_xent_chunk_fwd<T>)(stat, ce, (const T *)logits, targets, V,
                                                                           v0, vc)));
    CUDA_LAUNCHED();
}
template <typename T> __global__ void k_xent_chunk_bwd(T *dl, const double *stat, const float *dce,
                                                       const uint32_t *targets, int M, int v0, int vc) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)M * vc;
         i += (size_t)gridDim.x * blockDim.x) {
        size_t m = i / vc;
        uint32_t j = (uint32_t)(v0 + i % vc);
        float p = (float)exp((double)cu_ld(dl, i) - stat[3 * m]);
        cu_st(dl, i, dce[m] * (p - (j == targets[m] ? 1.0f : 0.0f)));
    }
}
void cu_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const double *stat, const float *dce,
                       const uint32_t *targets, int M, int v0, int vc) {
    size_t n = (size_t)M * vc;
    if (!n) return;
    CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks(n, 256), 256, 0, cu_stream(d), k_xent_chunk_bwd<T>)((T *)dlogits, stat, dce,
                                                                                           targets, M, v0, vc)));
    CUDA_LAUNCHED();
}
