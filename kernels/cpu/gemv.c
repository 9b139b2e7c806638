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

#define GEMV_CACHED_BYTES (256 * 1024)   /* a weight this small is read from cache, not memory */

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

/* One output element from its 8-lane accumulator: the lanes in hsum8's
 * order, the C % 8 tail, the bias.  Shared by both paths below, so a tile
 * computes each element exactly as the one-row path does. */
static inline __attribute__((always_inline)) float finish(float s, const void *w, int bf16, size_t r0, const float *x,
                                                          int C8, int C, const float *bias, int o) {
    for (int k = C8; k < C; k++) s += wload(w, bf16, r0 + k) * x[k];
    return bias ? s + bias[o] : s;
}

#if defined(__GNUC__)
/* Rows o..o+3 for inputs n, n+1 (a 4 x 2 tile, 8 accumulators; with
 * two = 0 input n alone, 4 accumulators): each 8-float slice of a weight
 * row is loaded once for both inputs.  Why 4 x 2: 4 x 3 needs all 16 AVX2
 * registers and GCC spilled an accumulator (a store and reload in every
 * step); 4 x 2 leaves room.  The four rows are one contiguous block; the
 * next block (w_next, `lines` cache lines) is prefetched a line per k step,
 * *pf counting across this block's tiles, so it is in cache before its
 * first tile.  Per element: the same fma chain over k and the same
 * finish() as the one-row path. */
static inline __attribute__((always_inline)) void tile4(float *out, const float *inp, const void *w, int bf16,
                                                        const float *bias, int C, int O, int o, int n, int two,
                                                        const char *w_next, int lines, int *pf) {
    const int C8 = C / 8 * 8;
    const size_t r0 = (size_t)o * C, r1 = r0 + (size_t)C, r2 = r1 + (size_t)C, r3 = r2 + (size_t)C;
    const float *x0 = inp + (size_t)n * C, *x1 = two ? x0 + C : x0;
    gv8f a00 = { 0 }, a01 = { 0 }, a10 = { 0 }, a11 = { 0 }, a20 = { 0 }, a21 = { 0 }, a30 = { 0 }, a31 = { 0 };
    if (two) {
        for (int k = 0; k < C8; k += 8) {
            if (*pf < lines) __builtin_prefetch(w_next + (size_t)64 * (*pf)++);
            gv8f y0, y1;
            memcpy(&y0, x0 + k, sizeof y0);
            memcpy(&y1, x1 + k, sizeof y1);
            fma8(&a00, w, bf16, r0 + k, &y0); fma8(&a01, w, bf16, r0 + k, &y1);
            fma8(&a10, w, bf16, r1 + k, &y0); fma8(&a11, w, bf16, r1 + k, &y1);
            fma8(&a20, w, bf16, r2 + k, &y0); fma8(&a21, w, bf16, r2 + k, &y1);
            fma8(&a30, w, bf16, r3 + k, &y0); fma8(&a31, w, bf16, r3 + k, &y1);
        }
    } else {
        for (int k = 0; k < C8; k += 8) {
            if (*pf < lines) __builtin_prefetch(w_next + (size_t)64 * (*pf)++);
            gv8f y0;
            memcpy(&y0, x0 + k, sizeof y0);
            fma8(&a00, w, bf16, r0 + k, &y0);
            fma8(&a10, w, bf16, r1 + k, &y0);
            fma8(&a20, w, bf16, r2 + k, &y0);
            fma8(&a30, w, bf16, r3 + k, &y0);
        }
    }
    float *q0 = out + (size_t)n * O + o, *q1 = q0 + O;
    q0[0] = finish(hsum8(&a00), w, bf16, r0, x0, C8, C, bias, o);
    q0[1] = finish(hsum8(&a10), w, bf16, r1, x0, C8, C, bias, o + 1);
    q0[2] = finish(hsum8(&a20), w, bf16, r2, x0, C8, C, bias, o + 2);
    q0[3] = finish(hsum8(&a30), w, bf16, r3, x0, C8, C, bias, o + 3);
    if (two) {
        q1[0] = finish(hsum8(&a01), w, bf16, r0, x1, C8, C, bias, o);
        q1[1] = finish(hsum8(&a11), w, bf16, r1, x1, C8, C, bias, o + 1);
        q1[2] = finish(hsum8(&a21), w, bf16, r2, x1, C8, C, bias, o + 2);
        q1[3] = finish(hsum8(&a31), w, bf16, r3, x1, C8, C, bias, o + 3);
    }
}
#endif

/* Output element (n, o) by the one-row path: one 8-lane accumulator. */
static inline __attribute__((always_inline)) float one(const float *inp, const void *w, int bf16, const float *bias,
                                                       int C, int o, int n) {
    const int C8 = C / 8 * 8;
    const size_t r0 = (size_t)o * C;
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
    return finish(s, w, bf16, r0, x, C8, C, bias, o);
}

/* rows [o0, o1) of out for all n < N.
 * Fewer than 3 inputs (decoding): one weight row at a time, the row read
 * from memory for n = 0 and from L1 for n = 1.  Why not several rows at
 * once: measured on the 2-core EPYC, 2 or 4 interleaved row streams ran at
 * 12-16 GB/s against 27 GB/s for one (rows 3 or 8 KiB apart alias in the
 * cache and confuse the prefetcher).
 * 3 or more inputs (batched decoding): one accumulator chain per element
 * at a time would be bound by the FMA latency, not by memory; 4 x 2 tiles
 * run 8 chains at once and load each weight slice once per two inputs,
 * and the prefetch of the next block keeps the stream going (batch 8 on
 * the 85M model, loaded machine: 74 tokens/s against 33 for the one-row
 * path; batch 2 ran faster on the one-row path, 36 against 29).
 * A weight of at most GEMV_CACHED_BYTES (stories260K's are 16-44 KiB)
 * takes the tiles at any N: it comes from cache, so there is no stream to
 * protect, and one chain per row made such a model's decoding 30% slower
 * (12.0k -> 8.4k tokens/s).  Every element is computed the same way in both
 * paths. */
DL_CLONES __attribute__((optimize("fp-contract=fast")))
static void gemv_rows(float *out, const float *inp, const void *w, int bf16, const float *bias, int N, int C, int O,
                      int o0, int o1) {
    int o = o0;
#if defined(__GNUC__)
    const size_t esz = bf16 ? 2 : 4;
    if (N >= 3 || (size_t)O * C * esz <= GEMV_CACHED_BYTES) {
        for (; o + 4 <= o1; o += 4) {
            const char *w_next = (const char *)w + (size_t)(o + 4) * C * esz;
            int lines = o + 8 <= o1 ? (int)((size_t)4 * C * esz / 64) : 0, pf = 0;
            int n = 0;
            for (; n + 2 <= N; n += 2) tile4(out, inp, w, bf16, bias, C, O, o, n, 1, w_next, lines, &pf);
            if (n < N) tile4(out, inp, w, bf16, bias, C, O, o, n, 0, w_next, lines, &pf);
        }
    }
#endif
    for (; o < o1; o++)
        for (int n = 0; n < N; n++) out[(size_t)n * O + o] = one(inp, w, bf16, bias, C, o, n);
}

typedef struct {
    float *out;
    const float *inp;
    const void *w;
    const float *bias;
    int bf16, N, C, O, parts;
} gemv_job;

/* one of `parts` equal slices of the rows of out (one per thread: the
 * weight is streamed once, and slices are each >= 256 KiB) */
static void gemv_part(void *arg, long t, int tid) {
    const gemv_job *j = arg;
    (void)tid;
    int o0 = (int)((long)j->O * t / j->parts), o1 = (int)((long)j->O * (t + 1) / j->parts);
    if (o0 < o1) gemv_rows(j->out, j->inp, j->w, j->bf16, j->bias, j->N, j->C, j->O, o0, o1);
}

void cpu_gemv(dl_dev *d, float *out, const float *inp, const void *w, int bf16, const float *bias, int N, int C,
              int O) {
    /* threads when the weight is worth splitting (>= 256 KiB per thread):
     * between two tokens the workers sleep (pool.c) and waking one costs
     * a futex call and tens of microseconds; at 64 KiB stories260K's
     * 128 KiB output layer woke one every token for a few microseconds of
     * work.  Rows of out are split, so results do not depend on it. */
    size_t bytes = (size_t)O * C * (bf16 ? 2 : 4);
    int nt = cpu_nthreads(d, bytes, 262144);
    if (nt > O) nt = O;
    if (nt <= 1) {
        gemv_rows(out, inp, w, bf16, bias, N, C, O, 0, O);
        return;
    }
    gemv_job j = { out, inp, w, bias, bf16, N, C, O, nt };
    cpu_pool_run(nt, nt, gemv_part, &j);
}
