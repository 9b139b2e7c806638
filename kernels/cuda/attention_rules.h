/* kernels/cuda/attention_rules.h — the argument block of the attention
 * kernels and which keys a query sees (jmax_of, vis): device code with no
 * CUDA runtime in it, so tests/cuda/emu can compile it for the host too.
 * Needs kernels.h (dl_attn_visible, dl_attn_mask) and, from the includer,
 * __device__ / __forceinline__ (nvcc, or tests/cuda/emu/cu_emu.h).
 */
#ifndef DL_KERNELS_CUDA_ATTENTION_RULES_H
#define DL_KERNELS_CUDA_ATTENTION_RULES_H

enum { MODE_FULL = 0, MODE_KV = 1, MODE_CACHED = 2 };

template <typename T> struct attn_args {
    const T *q, *k, *v;
    T *out;
    float *lse, *att;
    int nq;                 /* queries per batch row: T, or n (cache modes) */
    int Tk;                 /* key rows per (cache) row: T or Tmax */
    int Hq, Hk, E, mode, mask, block;
    const int32_t *lens;    /* FULL: lens (or NULL); KV: n_past; CACHED: n_keys */
    const int32_t *rows;    /* CACHED: cache row of batch row b (or NULL) */
};

/* visible keys of query i of batch row b: [0, jmax), and of those the ones
 * vis() accepts (all but under the BD3 mask, whose visible keys are not a
 * prefix: jmax is then T and vis() is kernels.h's dl_attn_visible) */
template <typename T> __device__ __forceinline__ int jmax_of(const attn_args<T> &a, int b, int i) {
    if (a.mode == MODE_KV) { int n = a.lens[b] + i + 1; return n > a.Tk ? a.Tk : n < 0 ? 0 : n; }
    if (a.mode == MODE_CACHED) { int n = a.lens[b]; return n > a.Tk ? a.Tk : n < 0 ? 0 : n; }
    if (a.mask == DL_ATTN_BD3) return a.Tk;
    int len = a.lens ? a.lens[b] : a.Tk;
    len = len > a.Tk ? a.Tk : len < 0 ? 0 : len;
    int j = a.Tk;
    if (a.mask == DL_ATTN_CAUSAL) j = i + 1;
    else if (a.mask == DL_ATTN_BLOCK) j = (i / a.block + 1) * a.block;
    if (j > a.Tk) j = a.Tk;
    return j < len ? j : len;
}

/* head h's first element of batch row b in a query-side tensor (q, dout,
 * dq: (B, nq, Hq*E) row-major), and head g's of cache / batch row `row` in
 * a key-side one (k, v: (rows, Tk, Hk*E)); both twins address heads so */
template <typename T, typename P> __device__ __forceinline__ P *attn_q_head(const attn_args<T> &a, P *x, int b, int h) {
    return x + (size_t)b * a.nq * ((size_t)a.Hq * a.E) + (size_t)h * a.E;
}
template <typename T, typename P> __device__ __forceinline__ P *attn_k_head(const attn_args<T> &a, P *x, size_t row,
                                                                            int g) {
    return x + row * a.Tk * ((size_t)a.Hk * a.E) + (size_t)g * a.E;
}
/* the first tile (of tile queries) holding a query that can see key k0:
 * causal k0's, block the start of k0's block, else 0 (BD3 included) */
template <typename T> __device__ __forceinline__ int attn_first_query_tile(const attn_args<T> &a, int k0, int tile) {
    int i = a.mask == DL_ATTN_CAUSAL ? k0 : a.mask == DL_ATTN_BLOCK ? k0 / a.block * a.block : 0;
    return i / tile * tile;
}

template <typename T> __device__ __forceinline__ bool vis(const attn_args<T> &a, int b, int i, int j) {
    return a.mask != DL_ATTN_BD3 ||
           dl_attn_visible(i, j, a.lens ? a.lens[b] : a.Tk, a.Tk, DL_ATTN_BD3, a.block);
}

#endif
