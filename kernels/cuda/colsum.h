/* kernels/cuda/colsum.h — out[j] += sum over rows n of term(n, j), for the
 * reductions over rows (RMSNorm's dw, the bias gradient), deterministic
 * and parallel: the rows are cut into R chunks fixed by N alone (no
 * atomics, nothing depends on timing), so runs repeat bit for bit.
 *   pass 1: a block of 32 columns x 8 row lanes per (column tile, chunk);
 *           lane r sums rows r, r+8, ... of the chunk, then lane 0 adds
 *           the 8 lane sums in order into part[chunk][j];
 *   pass 2: one thread per column adds part[0..R)[j] in order to out[j].
 * Before, one thread per column walked all N rows: D threads in all (768
 * for a 124M model: six blocks on a GPU of 132 SMs), a serial loop of N
 * loads each, 25 of them in every training step.
 * The partials live in the backend's grow-only scratch (cu_scratch).
 */
#ifndef DL_KERNELS_CUDA_COLSUM_H
#define DL_KERNELS_CUDA_COLSUM_H
#include "cuda.h"

enum { CS_COLS = 32, CS_LANES = 8, CS_MAX_CHUNKS = 128, CS_MIN_ROWS = 64 };

/* the chunks N rows are cut into (>= 1, <= CS_MAX_CHUNKS, >= CS_MIN_ROWS rows each but the last) */
static inline int cu_colsum_chunks(int N) {
    int r = (N + CS_MIN_ROWS - 1) / CS_MIN_ROWS;
    return r < 1 ? 1 : r > CS_MAX_CHUNKS ? CS_MAX_CHUNKS : r;
}

/* a block of CS_COLS x CS_LANES threads, one dimension: thread t is column t % CS_COLS (a warp reads 32
 * adjacent columns of a row: coalesced), row lane t / CS_COLS */
template <class F> __global__ void k_colsum_part(float *part, F term, int N, int D, int per) {
    __shared__ float lane_sum[CS_LANES][CS_COLS];
    int c = threadIdx.x % CS_COLS, r = threadIdx.x / CS_COLS;
    int j = blockIdx.x * CS_COLS + c, n0 = blockIdx.y * per, n1 = n0 + per < N ? n0 + per : N;
    float s = 0;
    if (j < D)
        for (int n = n0 + r; n < n1; n += CS_LANES) s += term(n, j);
    lane_sum[r][c] = s;
    __syncthreads();
    if (r != 0 || j >= D) return;
    float t = 0;
    for (int k = 0; k < CS_LANES; k++) t += lane_sum[k][c];
    part[(size_t)blockIdx.y * D + j] = t;
}
/* static: each file that includes this has its own copy (no cross-file device linking) */
static __global__ void k_colsum_add(float *out, const float *part, int R, int D) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= D) return;
    float s = 0;
    for (int c = 0; c < R; c++) s += part[(size_t)c * D + j];
    out[j] += s;
}

/* out (D, fp32) += column sums of term over N rows; term: a functor
 * (n, j) -> float usable on the device */
template <class F> void cu_colsum(dl_dev *d, float *out, F term, int N, int D) {
    if (N <= 0 || D <= 0) return;
    int R = cu_colsum_chunks(N), per = (N + R - 1) / R;
    float *part = (float *)cu_scratch(d, (size_t)R * D * sizeof(float));
    if (!part) { fprintf(stderr, "dllm: CUDA: no memory for %d x %d column partials\n", R, D); abort(); }
    dim3 grid((D + CS_COLS - 1) / CS_COLS, R);
    CU_LAUNCH(grid, CS_COLS * CS_LANES, 0, cu_stream(d), k_colsum_part<F>)(part, term, N, D, per);
    CUDA_LAUNCHED();
    CU_LAUNCH((D + 255) / 256, 256, 0, cu_stream(d), k_colsum_add)(out, part, R, D);
    CUDA_LAUNCHED();
}

#endif
