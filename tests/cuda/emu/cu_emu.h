/* tests/cuda/emu/cu_emu.h — enough of CUDA to run the kernels of kernels/cuda on the
 * CPU (they include it through kernels/cuda/cuda.h when DL_CU_EMU is
 * defined): the runtime calls the backend makes (host memory, synchronous
 * copies, one pretend device), bf16, the cuBLAS entry points it loads
 * (a plain GemmEx), and the execution model:
 *   - a launch runs its blocks one after another; a block's threads are
 *     fibers on the calling thread (cu_emu.cpp), switched only at
 *     __syncthreads, __syncwarp and the shuffles, in lane order, so a run
 *     is deterministic;
 *   - a thread that returns leaves the block's and its warp's barriers (as
 *     exited threads on a GPU); a barrier nobody can complete is reported
 *     as a deadlock (abort) instead of a hang;
 *   - dynamic shared memory is one buffer filled with 0xff (NaN in bf16
 *     and float) before every block, so a read of what was never written
 *     shows; its size is checked against the 227 KiB a block may opt in to;
 *   - __shared__ variables are static (blocks never overlap).
 * What it cannot show: the real WMMA fragment distribution, timing,
 * coalescing, or a race that lane order happens to hide.
 */
#ifndef DL_CU_EMU_H
#define DL_CU_EMU_H
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <math.h>
extern "C" {
#include "kernels.h"
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __align__(n) alignas(n)
#define __shared__ static
#define __CUDA_ARCH__ 900   /* the sm_80+ paths (bf16 WMMA) */
#define __trap() abort()

/* ---------------------------------------------------------------- types */
struct __nv_bfloat16 { uint16_t x; };
inline float __bfloat162float(__nv_bfloat16 b) { uint32_t u = (uint32_t)b.x << 16; float f; memcpy(&f, &u, 4); return f; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) {   /* nearest even, NaN kept (kbase.h's rule) */
    uint32_t u;
    memcpy(&u, &f, 4);
    __nv_bfloat16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) { b.x = (uint16_t)((u >> 16) | 0x40u); return b; }
    u += 0x7fffu + ((u >> 16) & 1u);
    b.x = (uint16_t)(u >> 16);
    return b;
}
struct uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return { a, b, c, d }; }
struct uint3 { unsigned x, y, z; };
struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
extern uint3 threadIdx, blockIdx;   /* the running fiber's (one OS thread runs them all) */
extern dim3 blockDim, gridDim;

/* ---------------------------------------------------------------- execution */
void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);
/* v of lane src / of lane ^ lane_mask (every lane of the warp takes part) */
void cu_emu_shuffle(void *v, size_t bytes, int src, int xor_mode);
template <class T> T __shfl_sync(unsigned, T v, int src) { cu_emu_shuffle(&v, sizeof v, src, 0); return v; }
template <class T> T __shfl_xor_sync(unsigned, T v, int lane_mask) { cu_emu_shuffle(&v, sizeof v, lane_mask, 1); return v; }

extern unsigned char *cu_emu_smem_base;   /* this block's dynamic shared memory */
extern size_t cu_emu_smem_bytes;
#define CU_DYN_SMEM(type, name) type *name = (type *)cu_emu_smem_base
enum { CU_EMU_SMEM_MAX = 232448 };        /* an H100 / H200 block's opt-in maximum */

/* The warp-collective calls (WMMA): every lane of a warp must make the same
 * calls with the same pointer and leading dimension, in the same order.
 * Each lane's n-th call since the block began meets the warp's n-th entry;
 * the first lane there fills it (*first = 1: an mma stores its result in
 * frag, which the other lanes then take instead of computing it again),
 * the others are checked against it (a mismatch aborts with a message). */
struct cu_emu_coll {
    int kind;
    const void *p;
    unsigned ldm;
    float frag[16][16];
};
cu_emu_coll *cu_emu_collective(int kind, const void *p, unsigned ldm, int *first);

/* runs body() on every thread of every block (the lambda holds the
 * arguments); `kernel` is the kernel's address: more than 48 KiB of dynamic
 * shared memory needs its cudaFuncSetAttribute first, as on a GPU */
void cu_emu_launch(dim3 grid, dim3 block, size_t smem_bytes, const void *kernel, const std::function<void()> &body);
template <class F> struct cu_emu_launcher {
    dim3 grid, block;
    size_t smem;
    const void *kernel;
    F body;
    template <class... A> void operator()(A... a) { cu_emu_launch(grid, block, smem, kernel, [&] { body(a...); }); }
};
template <class F> cu_emu_launcher<F> cu_emu_bind(dim3 g, dim3 b, size_t s, const void *k, F f) { return { g, b, s, k, f }; }
/* CU_LAUNCH(grid, block, smem, stream, kernel)(args...), as cuda.h's */
#define CU_LAUNCH(grid, block, smem, stream, ...)                                                \
    ((void)(stream), cu_emu_bind(dim3(grid), dim3(block), (size_t)(smem), (const void *)&__VA_ARGS__, \
                                 [](auto... a_) { __VA_ARGS__(a_...); }))

/* ---------------------------------------------------------------- runtime */
typedef enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2,
               cudaErrorLaunchFailure = 719 } cudaError_t;
typedef cudaError_t cudaError;
typedef void *cudaStream_t;
typedef enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice,
               cudaMemcpyDefault } cudaMemcpyKind;
typedef enum { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 } cudaFuncAttribute;
enum { cudaStreamNonBlocking = 1 };
struct cudaDeviceProp {
    char name[256];
    int major, minor;
    size_t totalGlobalMem, sharedMemPerBlockOptin;
};
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetLastError();
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int i);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int i);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMallocHost(void **p, size_t n);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t s);
cudaError_t cudaFreeAsync(void *p, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t s = 0);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind k, cudaStream_t s = 0);
cudaError_t cu_emu_set_smem_attr(const void *kernel, int bytes);
template <class K> cudaError_t cudaFuncSetAttribute(K k, cudaFuncAttribute, int v) {
    return cu_emu_set_smem_attr((const void *)k, v);
}

/* ---------------------------------------------------------------- cuBLAS (what backend.cu loads) */
#define CUBLAS_VER_MAJOR 13
typedef struct cu_emu_blas *cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7, CUBLAS_STATUS_NOT_SUPPORTED = 15 } cublasStatus_t;
typedef enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 } cublasOperation_t;
typedef enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 } cudaDataType;
typedef cudaDataType cudaDataType_t;
typedef enum { CUBLAS_COMPUTE_32F = 68 } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT = -1 } cublasGemmAlgo_t;
typedef enum { CUBLAS_DEFAULT_MATH = 0 } cublasMath_t;
cublasStatus_t cublasCreate_v2(cublasHandle_t *h);
cublasStatus_t cublasDestroy_v2(cublasHandle_t h);
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s);
cublasStatus_t cublasSetMathMode(cublasHandle_t h, cublasMath_t m);
/* column-major C (m x n, ldc) = alpha op(A) op(B) + beta C, fp32 types or bf16 storage, double accumulation */
cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t ctype,
                            cublasGemmAlgo_t algo);

/* ---------------------------------------------------------------- cuBLASLt (the part gemm.cu uses)
 * The descriptors hold what the real ones do for these attributes; the
 * heuristic returns one algorithm that records the alignments it was
 * asked for, and the matmul refuses (CUBLAS_STATUS_INVALID_VALUE, which
 * CUBLAS_CHECK turns into an abort) pointers less aligned than that, as a
 * real kernel chosen for aligned data would read them wrongly.  C must be
 * D (gemm.cu never passes another C). */
#define CUBLASLT_EMU 1
typedef struct cu_emu_lt *cublasLtHandle_t;
typedef struct cu_emu_lt_desc *cublasLtMatmulDesc_t;
typedef struct cu_emu_lt_layout *cublasLtMatrixLayout_t;
typedef struct cu_emu_lt_pref *cublasLtMatmulPreference_t;
typedef struct { uint64_t data[8]; } cublasLtMatmulAlgo_t;
typedef struct {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
    float wavesCount;
    int reserved[4];
} cublasLtMatmulHeuristicResult_t;
typedef enum { CUBLASLT_MATMUL_DESC_TRANSA = 3, CUBLASLT_MATMUL_DESC_TRANSB = 4, CUBLASLT_MATMUL_DESC_EPILOGUE = 7,
               CUBLASLT_MATMUL_DESC_BIAS_POINTER = 8 } cublasLtMatmulDescAttributes_t;
typedef enum { CUBLASLT_EPILOGUE_DEFAULT = 1, CUBLASLT_EPILOGUE_BIAS = 4 } cublasLtEpilogue_t;
typedef enum { CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES = 1, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES = 5,
               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES = 6, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES = 7,
               CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES = 8 } cublasLtMatmulPreferenceAttributes_t;
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h);
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h);
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t scale);
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d);
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf,
                                              size_t n);
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows, uint64_t cols,
                                          int64_t ld);
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l);
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p);
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p);
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *buf, size_t n);
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *got);
cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, cudaStream_t s);

#endif
