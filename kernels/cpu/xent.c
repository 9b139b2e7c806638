/* kernels/cpu/xent.c — softmax cross-entropy on the M loss positions, in place.
 *
 *   fwd: row m of logits (M, V) -> probabilities, with max subtraction and
 *        a float64 sum:  p_j = exp(z_j - mx) / S,  S = sum_j exp(z_j - mx)
 *        ce[m] = log S - (z_t - mx)                      (t = targets[m])
 *   bwd: probs -> dlogits = dce[m] * (p - onehot(t))
 *   exp is cpu_expf (cpu.h, vectorised); AVX2 clones (DL_CLONES).
 * Split over rows (M, cpu_par_range); a row is handled by one thread, so results do not
 * depend on the thread count.
 * Does not: label smoothing, ignore-index (the caller passes only loss rows),
 * z-loss.
 */
#include <math.h>
#include "cpu.h"

/* z -> softmax(z) in place; returns -log p[t] */
DL_CLONES static float softmax_ce_row(float *z, uint32_t t, int V) {
    float mx = cpu_row_max(z, V);
    float zt = z[t] - mx;
    double sum = cpu_row_exp_sum64(z, V, mx);
    float inv = (float)(1.0 / sum);
#pragma omp simd
    for (int j = 0; j < V; j++) z[j] *= inv;
    return (float)(log(sum) - (double)zt);
}

typedef struct {
    float *ce;          /* fwd: out */
    const float *dce;   /* bwd */
    float *z;           /* (M, V) in place */
    const uint32_t *targets;
    int V;
} xent_job;

static void fwd_rows(void *arg, long lo, long hi, int tid) {
    const xent_job *j = arg;
    (void)tid;
    for (long m = lo; m < hi; m++) j->ce[m] = softmax_ce_row(j->z + (size_t)m * j->V, j->targets[m], j->V);
}
void cpu_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_v, const uint32_t *targets, int M, int V) {
    CPU_F32(dt);
    xent_job j = { .ce = ce, .z = probs_v, .targets = targets, .V = V };
    cpu_par_range(d, M, (size_t)M * V, 16384, fwd_rows, &j);
}

static void bwd_rows(void *arg, long lo, long hi, int tid) {
    const xent_job *jb = arg;
    const int V = jb->V;
    (void)tid;
    for (long m = lo; m < hi; m++) {
        float *p = jb->z + (size_t)m * V, g = jb->dce[m];
        p[jb->targets[m]] -= 1.0f;
#pragma omp simd
        for (int j = 0; j < V; j++) p[j] *= g;
    }
}
void cpu_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_v, const float *dce, const uint32_t *targets, int M, int V) {
    CPU_F32(dt);
    xent_job j = { .dce = dce, .z = dlogits_v, .targets = targets, .V = V };
    cpu_par_range(d, M, (size_t)M * V, 16384, bwd_rows, &j);
}
