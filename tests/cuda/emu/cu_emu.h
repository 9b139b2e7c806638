/* tests/cuda/emu/cu_emu.h — just enough of CUDA to run a kernel file on the
 * CPU: a thread block is 128 (or blockDim.x) host threads, one per lane,
 * with real barriers for __syncthreads / __syncwarp and a shuffle through
 * shared slots; dynamic shared memory is one buffer, filled with 0xff
 * (bf16 and float NaN) before every block, so a read of something never
 * written shows.  WMMA is tests/cuda/emu/mma.h.
 * Used by: kernels/cuda/attention_mma.cu compiled with DL_CU_EMU (its
 * launch functions are left out; tests/cuda/emu/test_attn_mma_emu.cpp
 * launches the kernels through cu_emu_launch).
 * Does not: model timing, memory coalescing, or warp divergence (a lane
 * that skips a barrier deadlocks here, as it would hang or misbehave on a
 * GPU).
 */
#ifndef DL_CU_EMU_H
#define DL_CU_EMU_H
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
extern "C" {
#include "kernels.h"
}

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __align__(n) alignas(n)
#define __CUDA_ARCH__ 900   /* the sm_80+ paths (bf16 WMMA) */
#define __trap() abort()

struct __nv_bfloat16 { uint16_t x; };
typedef __nv_bfloat16 bf16;
inline float __bfloat162float(bf16 b) { uint32_t u = (uint32_t)b.x << 16; float f; memcpy(&f, &u, 4); return f; }
inline bf16 __float2bfloat16_rn(float f) {   /* nearest even, NaN kept (kbase.h's rule) */
    uint32_t u; memcpy(&u, &f, 4);
    bf16 b;
    if ((u & 0x7fffffffu) > 0x7f800000u) { b.x = (uint16_t)((u >> 16) | 0x40u); return b; }
    u += 0x7fffu + ((u >> 16) & 1u);
    b.x = (uint16_t)(u >> 16);
    return b;
}
struct uint4 { unsigned x, y, z, w; };
inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return { a, b, c, d }; }
struct cu_emu_dim { unsigned x, y, z; };
extern thread_local cu_emu_dim threadIdx, blockIdx;
extern cu_emu_dim blockDim, gridDim;

void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);
float __shfl_xor_sync(unsigned mask, float v, int lane_mask);

/* the block's dynamic shared memory and its size (WMMA's bounds checks) */
extern unsigned char *cu_emu_smem_base;
extern size_t cu_emu_smem_bytes;
#define CU_DYN_SMEM(name) unsigned char *name = cu_emu_smem_base

/* runs kernel() as grid.x * grid.y * grid.z blocks of `threads` host
 * threads each (blocks one after another), with smem_bytes of shared memory */
void cu_emu_launch(cu_emu_dim grid, unsigned threads, size_t smem_bytes, const std::function<void()> &kernel);

#endif
