/* kernels/cpu/xent.c — softmax cross-entropy on the M loss positions, in place.
 *
 *   fwd: row m of logits (M, V) -> probabilities, with max subtraction and
 *        a float64 sum:  p_j = exp(z_j - mx) / S,  S = sum_j exp(z_j - mx)
 *        ce[m] = log S - (z_t - mx)                      (t = targets[m])
 *   bwd: probs -> dlogits = dce[m] * (p - onehot(t))
 *   exp is cpu_expf (cpu.h, vectorised); AVX2 clones (DL_CLONES).
 * OpenMP over rows (M); a row is handled by one thread, so results do not
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

void cpu_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_v, const uint32_t *targets, int M, int V) {
    CPU_F32(dt);
    float *probs_inout = probs_v;
#pragma omp parallel for schedule(static) num_threads(cpu_nthreads(d, (size_t)M * V, 16384))
    for (int m = 0; m < M; m++) {
        float *z = probs_inout + (size_t)m * V;
        ce[m] = softmax_ce_row(z, targets[m], V);
    }
}

void cpu_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_v, const float *dce, const uint32_t *targets, int M, int V) {
    CPU_F32(dt);
    float *dlogits_inout = dlogits_v;
#pragma omp parallel for schedule(static) num_threads(cpu_nthreads(d, (size_t)M * V, 16384))
    for (int m = 0; m < M; m++) {
        float *p = dlogits_inout + (size_t)m * V, g = dce[m];
        p[targets[m]] -= 1.0f;
#pragma omp simd
        for (int j = 0; j < V; j++) p[j] *= g;
    }
}
