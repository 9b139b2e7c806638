/* kernels/cpu/gemm.c — the one matrix-multiply every CPU op goes through.
 *
 *   cpu_gemm          parallel: C is cut into panels of rows (or of columns
 *                     when C is wide and short) by its shape alone, which
 *                     the pool's threads claim (pool.c), each done by
 *                     cpu_gemm_serial.  One thread runs the same panels, so
 *                     the result does not depend on the thread count.
 *   cpu_gemm_serial   cblas_sgemm (OpenBLAS, dlopen'ed, single-threaded:
 *                     openblas.c) or the plain-C kernel below.
 *   cpu_gemm_plain    blocked GEMM in plain C: op(B) packed in KC x NC tiles
 *                     and op(A) in MC x KC tiles (4-row panels, zero-padded)
 *                     on the stack (128 KiB), a 4x16 register-blocked micro
 *                     kernel on GCC vector types (8 accumulators that stay
 *                     in registers); built twice (x86-64-v3 with AVX2/FMA
 *                     and the baseline) and picked at load time by GCC's
 *                     target_clones.  About half the OpenBLAS speed (50 vs
 *                     90 GFLOP/s on one Zen 3 core).
 * Convention: see cpu.h (row-major CBLAS semantics, beta == 0 overwrites).
 * Does not: handle column-major data, check for aliasing of C with A or B.
 */
#include <string.h>
#include "cpu.h"

/* ------------------------------------------------------------ plain C */
#define MR 4
#define NR 16
#define MC 64
#define KC 256
#define NC 64

/* element (i, k) of op(A) and (k, j) of op(B) */
#define OPA(i, k) (ta ? A[(size_t)(k) * lda + (i)] : A[(size_t)(i) * lda + (k)])
#define OPB(k, j) (tb ? B[(size_t)(j) * ldb + (k)] : B[(size_t)(k) * ldb + (j)])

/* acc (MR x NR) = Ap panel (kc x MR, interleaved) @ Bp (kc rows of stride NC).
 * With GCC/clang vector extensions the 8 accumulators are vector variables,
 * so they stay in registers (an array indexed by row does not). */
#if defined(__GNUC__)
typedef float v8f __attribute__((vector_size(32)));
static inline __attribute__((always_inline)) void micro(float acc[MR][NR], const float *ap, const float *bp, int kc) {
    v8f c00 = { 0 }, c01 = { 0 }, c10 = { 0 }, c11 = { 0 }, c20 = { 0 }, c21 = { 0 }, c30 = { 0 }, c31 = { 0 };
    for (int k = 0; k < kc; k++) {
        v8f b0, b1;
        memcpy(&b0, bp + (size_t)k * NC, sizeof b0);
        memcpy(&b1, bp + (size_t)k * NC + 8, sizeof b1);
        const float *a = ap + (size_t)k * MR;
        c00 += a[0] * b0; c01 += a[0] * b1;
        c10 += a[1] * b0; c11 += a[1] * b1;
        c20 += a[2] * b0; c21 += a[2] * b1;
        c30 += a[3] * b0; c31 += a[3] * b1;
    }
    memcpy(acc[0], &c00, 32); memcpy(acc[0] + 8, &c01, 32);
    memcpy(acc[1], &c10, 32); memcpy(acc[1] + 8, &c11, 32);
    memcpy(acc[2], &c20, 32); memcpy(acc[2] + 8, &c21, 32);
    memcpy(acc[3], &c30, 32); memcpy(acc[3] + 8, &c31, 32);
}
#else
static inline void micro(float acc[MR][NR], const float *ap, const float *bp, int kc) {
    for (int r = 0; r < MR; r++)
        for (int j = 0; j < NR; j++) acc[r][j] = 0.0f;
    for (int k = 0; k < kc; k++)
        for (int r = 0; r < MR; r++)
            for (int j = 0; j < NR; j++) acc[r][j] += ap[(size_t)k * MR + r] * bp[(size_t)k * NC + j];
}
#endif

DL_CLONES __attribute__((optimize("fp-contract=fast")))
void cpu_gemm_plain(int ta, int tb, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    /* C = beta C first, then C += alpha op(A) op(B) panel by panel */
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f) for (int j = 0; j < N; j++) c[j] *= beta;
    }
    if (K <= 0 || alpha == 0.0f) return;
    float Ap[MC * KC] __attribute__((aligned(64)));   /* [MC/MR][kc][MR] */
    float Bp[KC * NC] __attribute__((aligned(64)));   /* [kc][NC] */
    for (int jc = 0; jc < N; jc += NC) {
        int nc = N - jc < NC ? N - jc : NC;
        for (int pc = 0; pc < K; pc += KC) {
            int kc = K - pc < KC ? K - pc : KC;
            for (int k = 0; k < kc; k++) {
                float *bp = Bp + (size_t)k * NC;
                int j = 0;
                if (!tb) { memcpy(bp, B + (size_t)(pc + k) * ldb + jc, sizeof(float) * nc); j = nc; }
                else for (; j < nc; j++) bp[j] = OPB(pc + k, jc + j);
                for (; j < NC; j++) bp[j] = 0.0f;
            }
            for (int ic = 0; ic < M; ic += MC) {
                int mc = M - ic < MC ? M - ic : MC;
                for (int ir = 0; ir < mc; ir += MR)
                    for (int k = 0; k < kc; k++)
                        for (int r = 0; r < MR; r++)
                            Ap[(size_t)ir * kc + (size_t)k * MR + r] =
                                ir + r < mc ? OPA(ic + ir + r, pc + k) : 0.0f;
                for (int ir = 0; ir < mc; ir += MR) {
                    const float *ap = Ap + (size_t)ir * kc;
                    for (int jr = 0; jr < nc; jr += NR) {
                        float acc[MR][NR];
                        micro(acc, ap, Bp + jr, kc);
                        int mr = mc - ir < MR ? mc - ir : MR, nr = nc - jr < NR ? nc - jr : NR;
                        for (int r = 0; r < mr; r++) {
                            float *c = C + (size_t)(ic + ir + r) * ldc + jc + jr;
                            for (int j = 0; j < nr; j++) c[j] += alpha * acc[r][j];
                        }
                    }
                }
            }
        }
    }
}

/* ------------------------------------------------------------ dispatch */
void cpu_gemm_serial(const dl_dev *d, int ta, int tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
#ifdef DL_HAVE_OPENBLAS
    if (cpu_st(d)->use_blas) {
        if (K <= 0) {   /* CBLAS leaves C = beta C; keep "beta 0 overwrites" */
            cpu_gemm_plain(ta, tb, M, N, 0, alpha, A, lda, B, ldb, beta, C, ldc);
            return;
        }
        cpu_openblas.sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                           M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#endif
    cpu_gemm_plain(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* Panels: rows of C when M is the larger side, else columns, that the
 * pool's threads claim.  The cut depends on the shape ONLY, never on the
 * thread count, and one thread runs the same panels in order: so results
 * are bit-identical whatever the thread count, even where the serial sgemm
 * computes a panel's elements differently from the whole product
 * (OpenBLAS 0.3.21 on Zen does for some tail panels: M = 73, N = 64,
 * K = 513 cut 48 + 25 or 64 + 9 gives other bits than uncut; the cut by
 * thread count before this one had that).
 * How many: a power of two (so 2, 4, 8 ... threads share them evenly), at
 * most GEMM_PANELS_MAX, each of at least GEMM_PANEL_FLOPS of work (waking
 * a thread costs more) and GEMM_PANEL_MIN rows or columns wide, because
 * each sgemm call packs the other operand again: one-thread OpenBLAS on
 * 2048 x 768 x 256 ran at 101 GFLOP/s uncut, 99 in 256-row panels, 95 in
 * 128 and 90 in 64.  Narrower than that only to get two panels at all
 * (halves of at least GEMM_HALF_MIN).  Panels are multiples of 16 (full
 * vectors except at the edge). */
#define GEMM_PANEL_MIN 256
#define GEMM_HALF_MIN 64
#define GEMM_PANEL_FLOPS 1e6
#define GEMM_PANELS_MAX 64

typedef struct {
    const dl_dev *d;
    int ta, tb, M, N, K, lda, ldb, ldc, by_rows, len, per;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_panel(void *arg, long p, int tid) {
    const gemm_job *g = arg;
    (void)tid;
    int s = (int)p * g->per, n = g->len - s < g->per ? g->len - s : g->per;
    if (g->by_rows)   /* rows s.. of op(A) and C */
        cpu_gemm_serial(g->d, g->ta, g->tb, n, g->N, g->K, g->alpha, g->ta ? g->A + s : g->A + (size_t)s * g->lda,
                        g->lda, g->B, g->ldb, g->beta, g->C + (size_t)s * g->ldc, g->ldc);
    else              /* columns s.. of op(B) and C */
        cpu_gemm_serial(g->d, g->ta, g->tb, g->M, n, g->K, g->alpha, g->A, g->lda,
                        g->tb ? g->B + (size_t)s * g->ldb : g->B + s, g->ldb, g->beta, g->C + s, g->ldc);
}

void cpu_gemm(const dl_dev *d, int ta, int tb, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    double flops = 2.0 * M * N * (K > 0 ? K : 1);
    int by_rows = M >= N;
    int len = by_rows ? M : N;
    int want = 1;
    while (2 * want <= GEMM_PANELS_MAX && 2 * want * GEMM_PANEL_MIN <= len && 2 * want * GEMM_PANEL_FLOPS <= flops)
        want *= 2;
    if (want == 1 && len >= 2 * GEMM_HALF_MIN && flops >= 2 * GEMM_PANEL_FLOPS) want = 2;
    int per = (len + want - 1) / want;
    per = (per + 15) / 16 * 16;
    int parts = (len + per - 1) / per;
    if (parts <= 1) {
        cpu_gemm_serial(d, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    gemm_job g = { d, ta, tb, M, N, K, lda, ldb, ldc, by_rows, len, per, alpha, beta, A, B, C };
    cpu_pool_run(d->threads, parts, gemm_panel, &g);
}
