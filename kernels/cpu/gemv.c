/* kernels/cpu/gemv.c — linear_fwd for a few rows (decoding): stream each
 * weight row once per call, at the memory-bandwidth limit.
 *
 *   out (N,O) f32 = inp (N,C) f32 @ w (O,C)^T [+ bias (O)],  N <= GEMV_NMAX,
 *   w in f32 or bf16 (widened exactly, 16-bit shift, in registers).
 *
 * Why: with N = 1 a GEMM (OpenBLAS or the plain kernel) packs the weight
 * into panels, i.e. reads and writes it once more than the product needs;
 * decoding is bound by reading the weights, so that extra pass costs about
 * as much as the product.  Here each thread takes a contiguous slice of
 * output rows, and each weight row is read once and dotted with all N
 * inputs (the inputs, N*C floats, stay in L1/L2).
 *
 * Summation order: per output element, 8 float lanes (AVX2 vectors) of
 * fused multiply-adds over k = 0, 8, 16, ..., the lanes summed in a fixed
 * order, then the C % 8 tail, then the bias.  It depends only on C, never
 * on the thread count or N, so results are reproducible; they differ from
 * the GEMM path by summation order (about 1e-6 relative).
 * Used only when the caller asked for it (dl_dev_cpu_gemv: the
 * autoregressive sampler's decode steps), so every other output stays
 * bit-identical to the GEMM path.
 * Does not: backward, bf16 activations, N > GEMV_NMAX (callers fall back to
 * the GEMM).
 */
#include <string.h>
#include "cpu.h"

#if defined(__GNUC__)
typedef float gv8f __attribute__((vector_size(32)));
typedef uint16_t gv8h __attribute__((vector_size(16)));
typedef uint32_t gv8u __attribute__((vector_size(32)));

/* vectors by pointer: passing or returning them by value would change
 * the ABI between the AVX2 clone and the baseline one (-Wpsabi) */
static inline __attribute__((always_inline)) void fma8(gv8f *acc, const void *w, int bf16, size_t i, const gv8f *x) {
    gv8f r;
    if (bf16) {
        gv8h h;
        memcpy(&h, (const uint16_t *)w + i, sizeof h);
        gv8u u = __builtin_convertvector(h, gv8u) << 16;
        memcpy(&r, &u, sizeof r);
    } else {
        memcpy(&r, (const float *)w + i, sizeof r);
    }
    *acc += r * *x;
}
static inline __attribute__((always_inline)) float hsum8(const gv8f *v) {
    return (((*v)[0] + (*v)[4]) + ((*v)[1] + (*v)[5])) + (((*v)[2] + (*v)[6]) + ((*v)[3] + (*v)[7]));
}
#endif

static inline float wload(const void *w, int bf16, size_t i) {
    return bf16 ? dl_bf16_to_f32(((const uint16_t *)w)[i]) : ((const float *)w)[i];
}

/* rows [o0, o1) of out for all n < N.  One weight row at a time: the row is
 * read from memory for n = 0 and from L1 for the other inputs.  Why not
 * several rows at once (fewer loads of x): measured on the 2-core EPYC, 2 or
 * 4 interleaved row streams ran at 12-16 GB/s against 27 GB/s for one
 * (rows 3 or 8 KiB apart alias in the cache and confuse the prefetcher). */
DL_CLONES __attribute__((optimize("fp-contract=fast")))
static void gemv_rows(float *out, const float *inp, const void *w, int bf16, const float *bias, int N, int C, int O,
                      int o0, int o1) {
    const int C8 = C / 8 * 8;
    for (int o = o0; o < o1; o++) {
        const size_t r0 = (size_t)o * C;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
#if defined(__GNUC__)
            gv8f a = { 0 };
            for (int k = 0; k < C8; k += 8) {
                gv8f xv;
                memcpy(&xv, x + k, sizeof xv);
                fma8(&a, w, bf16, r0 + k, &xv);
            }
            float s = hsum8(&a);
#else
            float l[8] = { 0 };
            for (int k = 0; k < C8; k += 8)
                for (int i = 0; i < 8; i++) l[i] += wload(w, bf16, r0 + k + i) * x[k + i];
            float s = ((l[0] + l[4]) + (l[1] + l[5])) + ((l[2] + l[6]) + (l[3] + l[7]));
#endif
            for (int k = C8; k < C; k++) s += wload(w, bf16, r0 + k) * x[k];
            out[(size_t)n * O + o] = bias ? s + bias[o] : s;
        }
    }
}

void cpu_gemv(dl_dev *d, float *out, const float *inp, const void *w, int bf16, const float *bias, int N, int C,
              int O) {
    /* threads when the weight is worth splitting (>= 64 KiB per thread) */
    size_t bytes = (size_t)O * C * (bf16 ? 2 : 4);
    int nt = cpu_nthreads(d, bytes, 65536);
    if (nt > O) nt = O;
    if (nt <= 1) {
        gemv_rows(out, inp, w, bf16, bias, N, C, O, 0, O);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(nt)
    for (int t = 0; t < nt; t++) {
        int o0 = (int)((long)O * t / nt), o1 = (int)((long)O * (t + 1) / nt);
        if (o0 < o1) gemv_rows(out, inp, w, bf16, bias, N, C, O, o0, o1);
    }
}
