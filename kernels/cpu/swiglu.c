/* kernels/cpu/swiglu.c — SwiGLU gate of the LLaMA MLP.
 *
 *   fwd: out = silu(gate) * up,  silu(g) = g * s,  s = 1 / (1 + exp(-g))
 *   bwd: dup   = dout * silu(g)
 *        dgate = dout * up * s * (1 + g * (1 - s))
 *   Split over elements (N*F, cpu_par_range); dgate and dup overwritten.  exp is
 *   cpu_expf (cpu.h), so the loops vectorise; AVX2 clones (DL_CLONES).
 * Does not: fuse with the gate/up GEMMs.
 */
#include <math.h>
#include "cpu.h"

typedef struct {
    float *out, *dgate, *dup;
    const float *gate, *up, *dout;
} swiglu_job;

DL_CLONES static void fwd_range(void *arg, long lo, long hi, int tid) {
    const swiglu_job *j = arg;
    float *out = j->out;
    const float *gate = j->gate, *up = j->up;
    (void)tid;
#pragma omp simd
    for (long i = lo; i < hi; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + cpu_expf(-g)) * up[i];
    }
}
void cpu_swiglu_fwd(dl_dev *d, dl_dtype dt, void *outv, const void *gatev, const void *upv, int N, int F) {
    CPU_F32(dt);
    swiglu_job j = { .out = outv, .gate = gatev, .up = upv };
    size_t n = (size_t)N * F;
    cpu_par_range(d, (long)n, n, 16384, fwd_range, &j);
}

DL_CLONES static void bwd_range(void *arg, long lo, long hi, int tid) {
    const swiglu_job *j = arg;
    float *dgate = j->dgate, *dup = j->dup;
    const float *dout = j->dout, *gate = j->gate, *up = j->up;
    (void)tid;
#pragma omp simd
    for (long i = lo; i < hi; i++) {
        float g = gate[i], s = 1.0f / (1.0f + cpu_expf(-g)), u = up[i], go = dout[i];
        dup[i] = go * (g * s);
        dgate[i] = go * u * s * (1.0f + g * (1.0f - s));
    }
}
void cpu_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgatev, void *dupv, const void *doutv, const void *gatev,
                    const void *upv, int N, int F) {
    CPU_F32(dt);
    swiglu_job j = { .dgate = dgatev, .dup = dupv, .dout = doutv, .gate = gatev, .up = upv };
    size_t n = (size_t)N * F;
    cpu_par_range(d, (long)n, n, 16384, bwd_range, &j);
}
