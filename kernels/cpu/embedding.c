/* kernels/cpu/embedding.c — token embedding lookup and its backward.
 *
 *   fwd: out[n] = wte[ids[n]]            cpu_gather_rows (elementwise.c)
 *   bwd: dwte[ids[n]] += dout[n]          cpu_scatter_add_rows: split over
 *        column slices of D; inside a slice rows are added in order
 *        n = 0..N-1, so repeated ids accumulate in the same order whatever
 *        the thread count (bit-reproducible, no atomics).
 * Both read ids as int32: token ids are below V < 2^31, so the values are
 * the same (and int32_t / uint32_t may alias).  bf16 tables:
 * cpu_embedding_fwd_bf16w (linear_bf16w.c).
 * Does not: check ids < V (the caller validates token ids once per batch).
 */
#include "cpu.h"

void cpu_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *outv, const uint32_t *ids, const void *wtev, int N, int D) {
    CPU_F32(dt);
    if (wdt == DL_BF16) {
        cpu_embedding_fwd_bf16w(d, outv, ids, wtev, N, D);
        return;
    }
    CPU_F32(wdt);
    cpu_gather_rows(d, dt, outv, wtev, (const int32_t *)ids, N, D);
}

void cpu_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *doutv, const uint32_t *ids, int N, int D) {
    cpu_scatter_add_rows(d, dt, dwte, doutv, (const int32_t *)ids, N, D);
}
