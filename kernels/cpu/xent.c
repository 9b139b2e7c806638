/* kernels/cpu/xent.c — softmax cross-entropy on the M loss positions, in place.
 *
 *   fwd: row m of logits (M, V) -> probabilities, with max subtraction and
 *        a float64 sum:  p_j = exp(z_j - mx) / S,  S = sum_j exp(z_j - mx)
 *        ce[m] = log S - (z_t - mx)                      (t = targets[m])
 *   bwd: probs -> dlogits = dce[m] * (p - onehot(t))
 *   exp is cpu_expf (cpu.h, vectorised); AVX2 clones (DL_CLONES).
 * Split over rows (M, cpu_par_range); a row is handled by one thread, so results do not
 * depend on the thread count.
 *   chunk_fwd / chunk_bwd (the vocabulary in chunks, kernels.h): the same
 *   row helpers on an (M, vc) block, folded into the row's running max and
 *   float64 sum; the backward's exp is cpu_expf of z - (float)lse.
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

typedef struct {
    double *stat;
    float *ce;
    const float *dce;
    float *z;           /* (M, vc); fwd: used as scratch by the exp sum (cpu_row_exp_sum64 writes it), so it is copied */
    const uint32_t *targets;
    int V, v0, vc;
} chunk_job;

DL_CLONES static void chunk_fwd_rows(void *arg, long lo, long hi, int tid) {
    const chunk_job *j = arg;
    (void)tid;
    float buf[4096];
    for (long m = lo; m < hi; m++) {
        const float *z = j->z + (size_t)m * j->vc;
        double *s = j->stat + 3 * (size_t)m;
        float mc = cpu_row_max(z, j->vc);
        double mx = j->v0 == 0 || mc > s[0] ? mc : s[0];
        double sum = j->v0 == 0 ? 0 : s[1] * exp(s[0] - mx);
        for (int c0 = 0; c0 < j->vc; c0 += 4096) {   /* the exp sum overwrites its input: on a copy */
            int n = j->vc - c0 < 4096 ? j->vc - c0 : 4096;
            for (int k = 0; k < n; k++) buf[k] = z[c0 + k];
            sum += cpu_row_exp_sum64(buf, n, (float)mx);
        }
        s[0] = mx; s[1] = sum;
        uint32_t t = j->targets[m];
        if (t >= (uint32_t)j->v0 && t < (uint32_t)(j->v0 + j->vc)) s[2] = z[t - j->v0];
        if (j->v0 + j->vc == j->V) {
            s[0] = mx + log(sum);
            j->ce[m] = (float)(s[0] - s[2]);
        }
    }
}
void cpu_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                        int M, int V, int v0, int vc) {
    CPU_F32(dt);
    chunk_job j = { .stat = stat, .ce = ce, .z = (float *)logits, .targets = targets, .V = V, .v0 = v0, .vc = vc };
    cpu_par_range(d, M, (size_t)M * vc, 16384, chunk_fwd_rows, &j);
}

DL_CLONES static void chunk_bwd_rows(void *arg, long lo, long hi, int tid) {
    const chunk_job *j = arg;
    (void)tid;
    for (long m = lo; m < hi; m++) {
        float *z = j->z + (size_t)m * j->vc, g = j->dce[m], lse = (float)j->stat[3 * (size_t)m];
#pragma omp simd
        for (int k = 0; k < j->vc; k++) z[k] = g * cpu_expf(z[k] - lse);
        uint32_t t = j->targets[m];
        if (t >= (uint32_t)j->v0 && t < (uint32_t)(j->v0 + j->vc)) z[t - j->v0] -= g;
    }
}
void cpu_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const double *stat, const float *dce,
                        const uint32_t *targets, int M, int v0, int vc) {
    CPU_F32(dt);
    chunk_job j = { .stat = (double *)stat, .dce = dce, .z = dlogits, .targets = targets, .v0 = v0, .vc = vc };
    cpu_par_range(d, M, (size_t)M * vc, 16384, chunk_bwd_rows, &j);
}
