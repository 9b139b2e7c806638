/* kernels/cpu/embedding.c — token embedding lookup and its backward.
 *
 *   fwd: out[n] = wte[ids[n]]            split over rows (cpu_par_range)
 *   bwd: dwte[ids[n]] += dout[n]          split over column slices of D;
 *        inside a slice rows are added in order n = 0..N-1, so repeated ids
 *        accumulate in the same order whatever the thread count
 *        (bit-reproducible, no atomics).
 * Does not: check ids < V (the caller validates token ids once per batch).
 */
#include <string.h>
#include "cpu.h"

typedef struct {
    float *w;          /* fwd: the table (read); bwd: dwte */
    float *g;          /* fwd: out; bwd: dout (read) */
    const uint32_t *ids;
    int N, D;
} emb_job;

static void fwd_rows(void *arg, long lo, long hi, int tid) {
    const emb_job *j = arg;
    (void)tid;
    for (long n = lo; n < hi; n++)
        memcpy(j->g + (size_t)n * j->D, j->w + (size_t)j->ids[n] * j->D, sizeof(float) * (size_t)j->D);
}

void cpu_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *outv, const uint32_t *ids, const void *wtev, int N, int D) {
    CPU_F32(dt);
    if (wdt == DL_BF16) {
        cpu_embedding_fwd_bf16w(d, outv, ids, wtev, N, D);
        return;
    }
    CPU_F32(wdt);
    float *out = outv;
    const float *wte = wtev;
    emb_job j = { .w = (float *)wte, .g = out, .ids = ids, .D = D };
    cpu_par_range(d, N, (size_t)N * D, 16384, fwd_rows, &j);
}

#define SLICE 64   /* columns per task: a cache line multiple */

static void bwd_slices(void *arg, long lo, long hi, int tid) {
    const emb_job *jb = arg;
    const int D = jb->D;
    (void)tid;
    for (long s = lo; s < hi; s++) {
        int j0 = (int)s * SLICE, j1 = j0 + SLICE < D ? j0 + SLICE : D;
        for (int n = 0; n < jb->N; n++) {
            float *w = jb->w + (size_t)jb->ids[n] * D;
            const float *g = jb->g + (size_t)n * D;
#pragma omp simd
            for (int j = j0; j < j1; j++) w[j] += g[j];
        }
    }
}
void cpu_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *doutv, const uint32_t *ids, int N, int D) {
    CPU_F32(dt);
    emb_job j = { .w = dwte, .g = (float *)doutv, .ids = ids, .N = N, .D = D };
    cpu_par_range(d, (D + SLICE - 1) / SLICE, (size_t)N * D, 16384, bwd_slices, &j);
}
