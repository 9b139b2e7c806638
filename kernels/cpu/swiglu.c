/* kernels/cpu/swiglu.c — SwiGLU gate of the LLaMA MLP.
 *
 *   fwd: out = silu(gate) * up,  silu(g) = g * s,  s = 1 / (1 + exp(-g))
 *   bwd: dup   = dout * silu(g)
 *        dgate = dout * up * s * (1 + g * (1 - s))
 *   OpenMP over elements (N*F); dgate and dup overwritten.  exp is
 *   cpu_expf (cpu.h), so the loops vectorise; AVX2 clones (DL_CLONES).
 * Does not: fuse with the gate/up GEMMs.
 */
#include <math.h>
#include "cpu.h"

DL_CLONES void cpu_swiglu_fwd(dl_dev *d, dl_dtype dt, void *outv, const void *gatev, const void *upv, int N, int F) {
    CPU_F32(dt);
    float *out = outv;
    const float *gate = gatev, *up = upv;
    size_t n = (size_t)N * F;
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, 16384)) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + cpu_expf(-g)) * up[i];
    }
}

DL_CLONES void cpu_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgatev, void *dupv, const void *doutv, const void *gatev,
                              const void *upv, int N, int F) {
    CPU_F32(dt);
    float *dgate = dgatev, *dup = dupv;
    const float *dout = doutv, *gate = gatev, *up = upv;
    size_t n = (size_t)N * F;
#pragma omp parallel for simd num_threads(cpu_nthreads(d, n, 16384)) schedule(static)
    for (size_t i = 0; i < n; i++) {
        float g = gate[i], s = 1.0f / (1.0f + cpu_expf(-g)), u = up[i], go = dout[i];
        dup[i] = go * (g * s);
        dgate[i] = go * u * s * (1.0f + g * (1.0f - s));
    }
}
