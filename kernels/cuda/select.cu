/* kernels/cuda/select.cu — token selection (dl_k_select_tokens) on the GPU:
 * the rules of kernels/select_rules.h (shared with kernels/cpu/select.c;
 * kernels.h "token selection", Dream's included), one block per position.  The block applies cfg and
 * the suppressions in parallel; the draw and the confidence then run in
 * the block's thread 0 in exactly the CPU's order (float64 where it uses
 * float64; this file is built with -fmad=false so no product is fused), so
 * the result equals the CPU's up to the last-bit differences of the device
 * exp / log against glibc's.  Only tok and confidence are written back: the
 * logits never leave the device.
 * Scratch: when a top-k / top-p filter runs, M x (2 V ids + V flags) of the
 * backend's scratch (cu_scratch: allocated once, grown only when a call
 * needs more); -1 when it cannot be had.
 * Does not (first version, correct before fast): parallel argmax /
 * softmax reductions, a parallel sort; a position costs O(V) (O(V log V)
 * with top-p) serial work on one thread.
 */
#include <math.h>
#include "cuda.h"
#include "../select_rules.h"

/* one block per position q; a is passed by value (its pointers are device
 * pointers); scratch NULL when no filter runs */
__global__ void k_select(dl_select_args a, int32_t *scr_idx, uint8_t *scr_kept) {
    const int q = blockIdx.x, V = a.V;
    float *l = a.logits + (size_t)(a.row ? a.row[q] : q) * V;
    if (a.cfg) {
        const float *un = a.logits + (size_t)(a.M + q) * V;
        for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = un[v] + a.cfg_w1 * (l[v] - un[v]);
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int i = 0; i < a.n_suppress; i++)
        if (a.suppress[i] < (uint32_t)V) l[a.suppress[i]] = -INFINITY;
    if (a.mask_id < (uint32_t)V) l[a.mask_id] = -INFINITY;
    sel_scratch s = { scr_idx ? scr_idx + (size_t)q * 2 * V : NULL, scr_idx ? scr_idx + (size_t)q * 2 * V + V : NULL,
                      scr_kept ? scr_kept + (size_t)q * V : NULL };
    sel_position(&a, q, l, &s);
}

int cu_select_tokens(dl_dev *d, const dl_select_args *a) {
    if (a->M <= 0) return 0;
    cudaStream_t s = cu_stream(d);
    int filt = sel_needs_scratch(a);
    int32_t *idx = NULL;
    uint8_t *kept = NULL;
    if (filt) {
        size_t n = (size_t)a->M * a->V;
        idx = (int32_t *)cu_scratch(d, n * 2 * sizeof(int32_t) + n);
        if (!idx) return -1;
        kept = (uint8_t *)(idx + n * 2);
    }
    CU_LAUNCH(a->M, 128, 0, s, k_select)(*a, idx, kept);
    CUDA_LAUNCHED();
    return 0;
}
