/* kernels/cpu/gemm.c — the one matrix-multiply every CPU op goes through.
 *
 *   cpu_gemm          parallel: C is cut into panels of rows (or of columns
 *                     when C is wide and short), one per OpenMP thread, each
 *                     done by cpu_gemm_serial.  Panels are disjoint, so the
 *                     result does not depend on the thread count when the
 *                     serial kernel is deterministic per element (the plain
 *                     kernel is; OpenBLAS is for a fixed shape and core type).
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

/* Panels: rows of C when M is the larger side, else columns; panel sizes are
 * multiples of 16 so the kernels stay on full vectors except at the edge.
 * Below ~2 MFLOP a GEMM runs on one thread (the fork costs more). */
void cpu_gemm(const dl_dev *d, int ta, int tb, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    double flops = 2.0 * M * N * (K > 0 ? K : 1);
    int nt = d->threads;
    if (nt > 1 && flops < 2e6) nt = 1;
    int by_rows = M >= N;
    int len = by_rows ? M : N;
    int per = (len + nt - 1) / nt;
    per = (per + 15) / 16 * 16;
    int parts = (len + per - 1) / per;
    if (parts <= 1) {
        cpu_gemm_serial(d, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel for num_threads(parts) schedule(static, 1)
    for (int p = 0; p < parts; p++) {
        int s = p * per, n = len - s < per ? len - s : per;
        if (by_rows)   /* rows s.. of op(A) and C */
            cpu_gemm_serial(d, ta, tb, n, N, K, alpha, ta ? A + s : A + (size_t)s * lda, lda,
                            B, ldb, beta, C + (size_t)s * ldc, ldc);
        else           /* columns s.. of op(B) and C */
            cpu_gemm_serial(d, ta, tb, M, n, K, alpha, A, lda,
                            tb ? B + (size_t)s * ldb : B + s, ldb, beta, C + s, ldc);
    }
}
