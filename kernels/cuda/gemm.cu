/* kernels/cuda/gemm.cu — linear forward / backward through cuBLAS GemmEx:
 * f32 storage runs a pure fp32 GEMM, bf16 storage a bf16 tensor-core GEMM,
 * both with fp32 compute (CUBLAS_COMPUTE_32F); weight gradients are always
 * fp32 (bf16 x bf16 -> f32 accumulate with beta = 1).
 * Row-major (N,C) @ (O,C)^T is the column-major product out^T = w^T-view x
 * inp^T-view, so every call swaps the operands (see each comment).
 * Bias: out is first filled with the bias rows, then the GEMM adds with
 * beta = 1, so a bf16 output is rounded once (as the reference).
 * Does not: cuBLASLt epilogues, one stacked GEMM for linear_fwd_split
 * (dispatch.c calls linear_fwd per part), mixed f32 x bf16-weight GEMMs.
 */
#include "cuda.h"

static cudaDataType_t cu_dtype(dl_dtype dt) { return dt == DL_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

template <typename T> __global__ void k_fill_bias(T *out, const T *bias, int N, int O) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N * O;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias[i % O];
}
/* dbias[o] += sum_n dout[n][o], one thread per column, rows in order */
template <typename T> __global__ void k_bias_grad(float *dbias, const T *dout, int N, int O) {
    int o = blockIdx.x * blockDim.x + threadIdx.x;
    if (o >= O) return;
    float s = 0;
    for (int n = 0; n < N; n++) s += cu_ld(dout, (size_t)n * O + o);
    dbias[o] += s;
}

void cu_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                   int N, int C, int O) {
    DL_K_ASSERT(wdt == dt);
    if (N <= 0 || O <= 0) return;
    cuda_state *st = cu_state(d);
    float alpha = 1.0f, beta = 0.0f;
    if (bias) {
        CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks((size_t)N * O, 256), 256, 0, st->s, k_fill_bias<T>)((T *)out, (const T *)bias,
                                                                                         N, O)));
        CUDA_LAUNCHED();
        beta = 1.0f;
    }
    if (C <= 0) { if (!bias) CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)N * O * dl_dtype_size(dt), st->s)); return; }
    /* col-major: out (O x N, ld O) = w^T (O x C from C x O, ld C) * inp (C x N, ld C) */
    CUBLAS_CHECK(cu_blas.gemm_ex(st->blas, CUBLAS_OP_T, CUBLAS_OP_N, O, N, C, &alpha, w, cu_dtype(dt), C, inp,
                              cu_dtype(dt), C, &beta, out, cu_dtype(dt), O, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

void cu_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                   const void *inp, const void *w, int N, int C, int O) {
    if (N <= 0) return;
    cuda_state *st = cu_state(d);
    float one = 1.0f, zero = 0.0f;
    cudaDataType_t t = cu_dtype(dt);
    if (dinp) {
        if (O <= 0) CUDA_CHECK(cudaMemsetAsync(dinp, 0, (size_t)N * C * dl_dtype_size(dt), st->s));
        /* col-major: dinp (C x N, ld C) = w (C x O, ld C) * dout (O x N, ld O) */
        else CUBLAS_CHECK(cu_blas.gemm_ex(st->blas, CUBLAS_OP_N, CUBLAS_OP_N, C, N, O, &one, w, t, C, dout, t, O, &zero,
                                       dinp, t, C, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    }
    if (dw && O > 0 && C > 0)
        /* col-major: dw (C x O, ld C) += inp (C x N, ld C) * dout^T (N x O from O x N, ld O) */
        CUBLAS_CHECK(cu_blas.gemm_ex(st->blas, CUBLAS_OP_N, CUBLAS_OP_T, C, O, N, &one, inp, t, C, dout, t, O, &one, dw,
                                  CUDA_R_32F, C, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (dbias && O > 0) {
        CU_DISPATCH(dt, (CU_LAUNCH((O + 127) / 128, 128, 0, st->s, k_bias_grad<T>)(dbias, (const T *)dout, N, O)));
        CUDA_LAUNCHED();
    }
}
