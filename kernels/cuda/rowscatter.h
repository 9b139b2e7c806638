/* kernels/cuda/rowscatter.h — dst[idx[m]] += src[m] for rows m = 0..M-1
 * (the embedding's backward, scatter_add_rows), deterministic and
 * parallel: a repeated index must add its rows in order of m, so each
 * destination row belongs to one block (block b owns the rows with
 * idx % gridDim.x == b) and that block adds its rows in order of m.
 *   A block reads idx in tiles of RS_THREADS, keeps the m of its own rows
 *   in order (a block-wide prefix sum of the match flags, warp shuffles
 *   then the warp totals), and adds those rows, thread t on columns t,
 *   t + RS_THREADS, ...: the adds into one element come from one thread,
 *   in order of m.  dst and src must not overlap.
 * Before, one thread per column walked all M rows: D threads in all (768
 * for a 124M model), a serial loop of M read-modify-writes each.
 */
#ifndef DL_KERNELS_CUDA_ROWSCATTER_H
#define DL_KERNELS_CUDA_ROWSCATTER_H
#include "cuda.h"

enum { RS_THREADS = 256, RS_BLOCKS = 1024 };

template <typename TD, typename TS, typename TI>
__global__ void k_row_scatter_add(TD *dst, const TS *src, const TI *idx, int M, int D) {
    __shared__ int mine[RS_THREADS];   /* this tile's rows of this block, in order */
    __shared__ int warp_sum[RS_THREADS / 32];
    const int t = threadIdx.x, lane = t & 31, w = t >> 5;
    for (int m0 = 0; m0 < M; m0 += RS_THREADS) {
        int m = m0 + t, flag = m < M && (size_t)idx[m] % gridDim.x == blockIdx.x;
        int x = flag;   /* inclusive prefix sum over the warp */
        for (int o = 1; o < 32; o <<= 1) {
            int y = __shfl_sync(0xffffffffu, x, (lane - o) & 31);
            if (lane >= o) x += y;
        }
        if (lane == 31) warp_sum[w] = x;
        __syncthreads();
        int base = 0, total = 0;
        for (int k = 0; k < RS_THREADS / 32; k++) {
            if (k < w) base += warp_sum[k];
            total += warp_sum[k];
        }
        if (flag) mine[base + x - 1] = m;
        __syncthreads();
        /* a run of rows with the same destination adds in a register and is
         * stored once, rounded to TD after every add, so the bits are those of
         * adding in memory (the mask token: half of a diffusion batch's ids) */
        for (int j = t; j < D; j += RS_THREADS) {
            long long cur = -1;
            float acc = 0;
            for (int i = 0; i < total; i++) {
                int r = mine[i];
                long long id = (long long)idx[r];
                if (id != cur) {
                    if (cur >= 0) cu_st(dst, (size_t)cur * D + j, acc);
                    cur = id;
                    acc = cu_ld(dst, (size_t)cur * D + j);
                }
                acc = cu_round(dst, acc + cu_ld(src, (size_t)r * D + j));
            }
            if (cur >= 0) cu_st(dst, (size_t)cur * D + j, acc);
        }
        __syncthreads();   /* mine and warp_sum are reused by the next tile */
    }
}

/* dst[idx[m]] += src[m] (rows of D), in order of m for a repeated index */
template <typename TD, typename TS, typename TI>
void cu_row_scatter_add(dl_dev *d, TD *dst, const TS *src, const TI *idx, int M, int D) {
    if (M <= 0 || D <= 0) return;
    CU_LAUNCH(RS_BLOCKS, RS_THREADS, 0, cu_stream(d), k_row_scatter_add<TD, TS, TI>)(dst, src, idx, M, D);
    CUDA_LAUNCHED();
}

#endif
