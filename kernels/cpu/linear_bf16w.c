/* kernels/cpu/linear_bf16w.c — the CPU ops that read bf16 WEIGHTS with f32
 * activations (kernels.h "Weight dtype"): inference from a bf16 checkpoint
 * without an fp32 copy of its matrices.
 *
 *   linear:    out (N,O) f32 = inp (N,C) f32 @ w (O,C) bf16 ^T [+ bias (O) f32]
 *              The weight rows are cut into blocks of OB rows (OB * C * 4
 *              bytes about 256 KiB, so a block stays in L2); each pool
 *              thread takes whole blocks, widens its block into its own f32
 *              scratch (exact: bf16 is the top half of an f32) and runs one
 *              single-threaded cpu_gemm_serial for out[:, o0:o0+OB].  Blocks
 *              are fixed by the shape, not the thread count, so the result
 *              does not depend on it; every output element is the same f32
 *              GEMM dot product as cpu_linear_fwd on the widened weights.
 *   embedding: out[n] = widen(wte[ids[n]])   (exact)
 *
 * Why not AVX512-BF16 (vdpbf16ps) or OpenBLAS cblas_sbgemm: both multiply
 * bf16 by bf16, so the f32 activations would have to be rounded to bf16
 * first; that changes the results against the f32 path by far more than
 * summation order (relative 2^-9 per activation), and the point of this
 * path is "the same model as the f32 one, in half the memory".  The widen
 * is a 16-bit shift, cheap next to the GEMM that reads the block C times
 * N/16 over; for N = 1..16 (decoding) the op is bound by reading the
 * weights, which bf16 halves either way.
 * Does not: bf16 activations, backward (training runs on f32 masters).
 */
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

/* rows of w per block: about 256 KiB of widened f32, at least 16 */
static int block_rows(int C) {
    int ob = (int)((256u * 1024u) / (4u * (unsigned)(C > 0 ? C : 1)));
    if (ob < 16) ob = 16;
    return ob / 16 * 16;
}

typedef struct {
    const dl_dev *d;
    float *out, *scratch;    /* scratch (nt, ob, C): one widened block per thread */
    const float *inp, *bias;
    const uint16_t *w;
    const uint32_t *ids;     /* embedding: w is the table (V, C), C = D */
    int N, C, O, ob;
} bf16w_job;

static void linear_block(void *arg, long b, int tid) {
    const bf16w_job *j = arg;
    const int N = j->N, C = j->C, O = j->O, ob = j->ob;
    int o0 = (int)b * ob, rows = O - o0 < ob ? O - o0 : ob;
    float *wf = j->scratch + (size_t)tid * ob * C;
    const uint16_t *src = j->w + (size_t)o0 * C;
    size_t n = (size_t)rows * C;
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[i] << 16;
        memcpy(&wf[i], &u, 4);
    }
    float beta = 0.0f;
    if (j->bias) {
        for (int r = 0; r < N; r++) memcpy(j->out + (size_t)r * O + o0, j->bias + o0, sizeof(float) * (size_t)rows);
        beta = 1.0f;
    }
    cpu_gemm_serial(j->d, 0, 1, N, rows, C, 1.0f, j->inp, C, wf, C, beta, j->out + o0, O);
}

void cpu_linear_fwd_bf16w(dl_dev *d, float *out, const float *inp, const uint16_t *w, const float *bias,
                          int N, int C, int O) {
    int ob = block_rows(C), nb = (O + ob - 1) / ob;
    int nt = cpu_nthreads(d, (size_t)nb, 1);
    float *scratch = malloc(sizeof(float) * (size_t)nt * ob * C);
    DL_K_ASSERT(scratch != NULL);
    bf16w_job j = { .d = d, .out = out, .scratch = scratch, .inp = inp, .bias = bias, .w = w, .N = N, .C = C,
                    .O = O, .ob = ob };
    cpu_pool_run(nt, nb, linear_block, &j);
    free(scratch);
}

static void embedding_rows(void *arg, long lo, long hi, int tid) {
    const bf16w_job *j = arg;
    (void)tid;
    for (long n = lo; n < hi; n++) {
        const uint16_t *src = j->w + (size_t)j->ids[n] * j->C;
        float *dst = j->out + (size_t)n * j->C;
        for (int k = 0; k < j->C; k++) dst[k] = dl_bf16_to_f32(src[k]);
    }
}

void cpu_embedding_fwd_bf16w(dl_dev *d, float *out, const uint32_t *ids, const uint16_t *wte, int N, int D) {
    bf16w_job j = { .out = out, .w = wte, .ids = ids, .N = N, .C = D };
    cpu_par_range(d, N, (size_t)N * D, 16384, embedding_rows, &j);
}
