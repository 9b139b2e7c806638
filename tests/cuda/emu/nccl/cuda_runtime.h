/* tests/cuda/emu/nccl/cuda_runtime.h — the CUDA runtime calls of
 * share/model/dl_comm_nccl.c, for its build against the emulated backend
 * (tests/cuda/emu/nccl_emu.c: "device" memory is host memory there, as in
 * cu_emu.h, and streams are synchronous).  C, not C++: dl_comm_nccl.c is C. */
#ifndef DL_CU_EMU_NCCL_CUDA_RUNTIME_H
#define DL_CU_EMU_NCCL_CUDA_RUNTIME_H
#include <stddef.h>
typedef enum { cudaSuccess = 0, cudaErrorInvalidValue = 1, cudaErrorMemoryAllocation = 2, cudaErrorNotReady = 600 } cudaError_t;
typedef void *cudaStream_t;
typedef enum { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice } cudaMemcpyKind;
enum { cudaStreamNonBlocking = 1 };
const char *cudaGetErrorString(cudaError_t e);
cudaError_t cudaGetDeviceCount(int *n);
cudaError_t cudaSetDevice(int i);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamQuery(cudaStream_t s);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind k);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind k, cudaStream_t s);
#endif
