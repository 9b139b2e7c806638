/* kernels/cuda/cuda.h — internals of the CUDA backend (not an API): the
 * backend state, the error-check macros, storage-dtype load / store on the
 * device, launch helpers and the op declarations backend.cu puts in its table.
 * Conventions: every op is asynchronous on the backend's one stream (st->s)
 * unless kernels.h says it returns a scalar (sumsq); pointers are device
 * pointers; dt DL_F32 is float, DL_BF16 is __nv_bfloat16 (loads widen
 * exactly, stores round to nearest even, as kbase.h's dl_f32_to_bf16).
 * Does not: recover from a CUDA error inside an op.  An op has no error
 * return (kernels.h), so a failed launch / cuBLAS call is a bug or a dead
 * device: CUDA_CHECK / CUBLAS_CHECK print file:line to stderr and abort,
 * like DL_K_ASSERT (the only printing kernels/ does).
 */
#ifndef DL_KERNELS_CUDA_H
#define DL_KERNELS_CUDA_H
#ifdef DL_CU_EMU   /* tests/cuda/emu: this backend compiled for the CPU (cu_emu.h: runtime, bf16, cuBLAS) */
#include <cu_emu.h>
#else
#include <cuda_runtime.h>
#include <cuda_bf16.h>
#include <cublas_v2.h>
#include <cublasLt.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#ifndef _Noreturn
#define _Noreturn [[noreturn]]   /* kbase.h is C11; this file is C++ */
#endif
extern "C" {
#include "../backend.h"
}

#define CUDA_CHECK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) { \
    fprintf(stderr, "dllm: CUDA error at %s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
    fflush(stderr); abort(); } } while (0)
#define CUBLAS_CHECK(call) do { cublasStatus_t e_ = (call); if (e_ != CUBLAS_STATUS_SUCCESS) { \
    fprintf(stderr, "dllm: cuBLAS error at %s:%d: %s: status %d\n", __FILE__, __LINE__, #call, (int)e_); \
    fflush(stderr); abort(); } } while (0)
/* A kernel launch: CU_LAUNCH(grid, block, smem, stream, kernel)(args...) is
 * kernel<<<grid, block, smem, stream>>>(args...); and a kernel's dynamic
 * shared memory, 128-byte aligned.  Macros so that tests/cuda/emu/cu_emu.h
 * can run the same kernels on the CPU (its own versions of both). */
#ifndef DL_CU_EMU
#define CU_LAUNCH(grid, block, smem, stream, ...) __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#define CU_DYN_SMEM(type, name) extern __shared__ __align__(128) type name[]
#endif
/* after every kernel launch: catches bad launch configurations at once */
#define CUDA_LAUNCHED() CUDA_CHECK(cudaGetLastError())

/* cuBLAS is opened with dlopen when a CUDA device opens (cu_cublas_load,
 * backend.cu), not linked: mapping libcublas + libcublasLt (over 500 MB)
 * cost every process about 80 ms at start-up, CPU-only runs included, and
 * the programs' one re-exec (share/io/dl_omp_env.c) paid it twice
 * (docs/bench.md, 2026-12-05).  The five entry points the backend calls: */
struct cu_cublas_api {
    decltype(&cublasCreate_v2) create;
    decltype(&cublasDestroy_v2) destroy;
    decltype(&cublasSetStream_v2) set_stream;
    decltype(&cublasSetMathMode) set_math_mode;
    /* the C entry point (C++ sees an inline overload of the same name too) */
    cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void *,
                              const void *, cudaDataType, int, const void *, cudaDataType, int, const void *, void *,
                              cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);
};
extern cu_cublas_api cu_blas;   /* valid once cu_cublas_load returned 0 */
/* ... and cuBLASLt's (libcublasLt.so.<major>, loaded with it), which every
 * GEMM goes through (gemm.cu) unless DLLM_CUDA_GEMM=ex */
struct cu_cublaslt_api {
    decltype(&cublasLtCreate) create;
    decltype(&cublasLtDestroy) destroy;
    decltype(&cublasLtMatmulDescCreate) desc_create;
    decltype(&cublasLtMatmulDescDestroy) desc_destroy;
    decltype(&cublasLtMatmulDescSetAttribute) desc_set;
    decltype(&cublasLtMatrixLayoutCreate) layout_create;
    decltype(&cublasLtMatrixLayoutDestroy) layout_destroy;
    decltype(&cublasLtMatmulPreferenceCreate) pref_create;
    decltype(&cublasLtMatmulPreferenceDestroy) pref_destroy;
    decltype(&cublasLtMatmulPreferenceSetAttribute) pref_set;
    decltype(&cublasLtMatmulAlgoGetHeuristic) heuristic;
    decltype(&cublasLtMatmul) matmul;
};
extern cu_cublaslt_api cu_lt;
/* Loads libcublas.so.<major it was built with> (the programs' run path, then
 * DL_CUDA_LIBDIR); 0, or -1 with the reason in why. */
int cu_cublas_load(char *why, size_t n);

struct cuda_state {
    int device;
    int cc;               /* compute capability, 10 * major + minor (tensor-core bf16 needs >= 80) */
    int attn_fma;         /* DLLM_CUDA_ATTN=fma: the FMA attention kernels only (the tensor-core twin off) */
    size_t smem_optin;    /* the most dynamic shared memory a block may opt in to */
    cudaStream_t s;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    int gemm_ex;          /* cublasGemmEx only: DLLM_CUDA_GEMM=ex, or cuBLASLt did not start */
    void *lt_ws;          /* cuBLASLt workspace (CU_LT_WS bytes) */
    struct cu_lt_cache *lt_plans;   /* gemm.cu: the descriptors and algorithm of each GEMM shape seen */
    double *red;          /* (CU_RED_BLOCKS + 1) doubles: sumsq partials, then the total */
    double *red_host;     /* pinned: the total comes back here */
    void *scratch;        /* cu_scratch's buffer (scratch_bytes), grown, never shrunk */
    size_t scratch_bytes;
};
enum { CU_RED_BLOCKS = 256 };
enum { CU_LT_WS = 32 << 20 };   /* NVIDIA's advice for Hopper */
/* gemm.cu: the plan cache's life (0, or -1 when out of host memory) */
int cu_gemm_open(cuda_state *st);
void cu_gemm_close(cuda_state *st);
static inline cuda_state *cu_state(dl_dev *d) { return (cuda_state *)d->be; }
static inline cudaStream_t cu_stream(dl_dev *d) { return cu_state(d)->s; }
/* At least `bytes` of device scratch for one op, ordered on the stream like
 * everything else; it grows (a sync, a free, a malloc) only when a call
 * needs more than any before, so a run's loop stops allocating after its
 * first step.  NULL when the device has no such memory. */
void *cu_scratch(dl_dev *d, size_t bytes);

typedef __nv_bfloat16 bf16;
__device__ __forceinline__ float cu_ld(const float *p, size_t i) { return p[i]; }
__device__ __forceinline__ float cu_ld(const bf16 *p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void cu_st(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void cu_st(bf16 *p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }
/* v as a store to p's type would leave it (a value kept in a register must round as memory would) */
__device__ __forceinline__ float cu_round(const float *, float v) { return v; }
__device__ __forceinline__ float cu_round(const bf16 *, float v) { return __bfloat162float(__float2bfloat16_rn(v)); }

/* run the body (the variadic part: it may hold commas) with T the element type of dt (float or bf16) */
#define CU_DISPATCH(dt, ...) do { \
    if ((dt) == DL_BF16) { typedef bf16 T; __VA_ARGS__; } \
    else { DL_K_ASSERT((dt) == DL_F32); typedef float T; __VA_ARGS__; } } while (0)

static inline unsigned cu_blocks(size_t n, unsigned threads) {
    size_t b = (n + threads - 1) / threads;
    return (unsigned)(b > 65535u * 16 ? 65535u * 16 : b < 1 ? 1 : b);   /* kernels grid-stride beyond */
}

/* warp reductions (all 32 lanes active) */
__device__ __forceinline__ float cu_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ double cu_warp_sum_d(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ __forceinline__ float cu_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}
/* block-wide sum of a double (blockDim.x a multiple of 32, <= 1024); every
 * thread gets the total; fixed order, so deterministic */
__device__ __forceinline__ double cu_block_sum_d(double v) {
    __shared__ double part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_sum_d(v);
    __syncthreads();
    if (lane == 0) part[w] = v;
    __syncthreads();
    double t = 0;
    for (int i = 0; i < nw; i++) t += part[i];
    return t;
}
__device__ __forceinline__ float cu_block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, w = threadIdx.x >> 5, nw = blockDim.x >> 5;
    v = cu_warp_max(v);
    __syncthreads();
    if (lane == 0) part[w] = v;
    __syncthreads();
    float t = -INFINITY;
    for (int i = 0; i < nw; i++) t = fmaxf(t, part[i]);
    return t;
}

/* the ops (kernels.h has each contract) */
void cu_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D);
void cu_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D);
void cu_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                    float eps);
void cu_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                    const float *rstd, int N, int D);
void cu_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                        const void *w, int N, int D, float eps);
void cu_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                   int N, int C, int O);
void cu_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                   const void *inp, const void *w, int N, int C, int O);
void cu_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
             dl_rope_layout layout, int inverse);
void cu_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                      const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                      dl_attn_mask mask, int block);
void cu_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                      const void *out, const float *lse, const float *att, const void *q, const void *k,
                      const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                      dl_attn_mask mask, int block);
size_t cu_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att);
void cu_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                         const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E);
void cu_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                             const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                             int Hq, int Hk, int E);
void cu_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F);
void cu_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                   const void *up, int N, int F);
void cu_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n);
void cu_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n);
void cu_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
void cu_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
void cu_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src, int rows,
                int cols);
void cu_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n);
void cu_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M, int V);
void cu_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets, int M,
                 int V);
void cu_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                       int M, int V, int v0, int vc);
void cu_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const double *stat, const float *dce,
                       const uint32_t *targets, int M, int v0, int vc);
double cu_sumsq(dl_dev *d, const float *x, size_t n);
void cu_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip);
void cu_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
              float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
              uint16_t *bf16_copy);
void cu_scale(dl_dev *d, float *x, float s, size_t n);
int cu_select_tokens(dl_dev *d, const dl_select_args *a);

#endif
