/* kernels/cpu/embedding.c — token embedding lookup and its backward.
 *
 *   fwd: out[n] = wte[ids[n]]            OpenMP over rows
 *   bwd: dwte[ids[n]] += dout[n]          OpenMP over column slices of D;
 *        inside a slice rows are added in order n = 0..N-1, so repeated ids
 *        accumulate in the same order whatever the thread count
 *        (bit-reproducible, no atomics).
 * Does not: check ids < V (the caller validates token ids once per batch).
 */
#include <string.h>
#include "cpu.h"

void cpu_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *outv, const uint32_t *ids, const void *wtev, int N, int D) {
    CPU_F32(dt);
    if (wdt == DL_BF16) {
        cpu_embedding_fwd_bf16w(d, outv, ids, wtev, N, D);
        return;
    }
    CPU_F32(wdt);
    float *out = outv;
    const float *wte = wtev;
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)N * D, 16384)) schedule(static)
    for (int n = 0; n < N; n++)
        memcpy(out + (size_t)n * D, wte + (size_t)ids[n] * D, sizeof(float) * (size_t)D);
}

#define SLICE 64   /* columns per task: a cache line multiple */

void cpu_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *doutv, const uint32_t *ids, int N, int D) {
    CPU_F32(dt);
    const float *dout = doutv;
    int ns = (D + SLICE - 1) / SLICE;
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)N * D, 16384)) schedule(static)
    for (int s = 0; s < ns; s++) {
        int j0 = s * SLICE, j1 = j0 + SLICE < D ? j0 + SLICE : D;
        for (int n = 0; n < N; n++) {
            float *w = dwte + (size_t)ids[n] * D;
            const float *g = dout + (size_t)n * D;
#pragma omp simd
            for (int j = j0; j < j1; j++) w[j] += g[j];
        }
    }
}
