/* kernels/cpu/attention.c — scaled dot-product attention with GQA and the
 * three masks, forward and backward, on explicit (T, T) probabilities.
 *
 * Per (b, h), g = h / (Hq/Hk), s = 1/sqrt(E), len = lens[b] (or T):
 *   S = s Q K^T ;  P = softmax over the visible keys of each row ; O = P V
 *   visible keys of query i are always a prefix [0, jmax(i)):
 *     bidirectional  jmax = len
 *     causal         jmax = min(len, i + 1)
 *     block          jmax = min(len, (i/block + 1) * block)
 *   invisible entries of P are stored as exact zeros (a row with no visible
 *   key, len = 0, is all zeros and gives O = 0).
 * Backward (of the three lines above), with dS kept in `scratch`:
 *   dP = dO V^T ;  dS = P * (dP - rowsum(P * dP)) ;  dQ = s dS K
 *   dK = s sum_{h in g} dS_h^T Q_h ;  dV = sum_{h in g} P_h^T dO_h
 *
 * Forward: OpenMP (dynamic) over (b, h, chunk of QC = 64 query rows) tasks.
 * Backward: OpenMP over the B*Hk (b, kv head g) tasks (fewer tasks than
 * threads leave threads idle: B = 1 with 2 kv heads uses 2); each does the
 * heads of its group in order (dK, dV summed in head order: deterministic):
 * query chunks give dS (written to the (b, h) slice of `scratch`, which
 * stays in cache) and dQ, then key chunks give dK and dV.  Every task calls
 * single-threaded sgemm (cpu_gemm_serial), and multiplies only the key
 * columns (or query rows) that can be non-zero: causal / block / len cuts
 * ~halve the FLOPs.  The backward has no mask argument: it recovers each
 * row's jmax as one past the last non-zero of P, which is exact for the
 * GEMM bounds (a zero of P contributes nothing).  NaN or inf in q, k, v
 * propagate to out (they are not masked away).
 * Does not: flash/tiled attention without the (T, T) matrix, dropout,
 * sliding windows, ALiBi, or a sink.
 */
#include <math.h>
#include <string.h>
#include "dl_base.h"
#include "cpu.h"

#define QC 64

static int jmax_of(int i, int len, int T, dl_attn_mask mask, int block) {
    int j = T;
    if (mask == DL_ATTN_CAUSAL) j = i + 1;
    else if (mask == DL_ATTN_BLOCK) j = (i / block + 1) * block;
    if (j > T) j = T;
    return j < len ? j : len;
}

/* one past the last non-zero of row p[0..T) */
static int jmax_scan(const float *p, int T) {
    int j = T;
    while (j > 0 && p[j - 1] == 0.0f) j--;
    return j;
}

/* p[0..jm) = softmax(p[0..jm)), p[jm..T) = 0 */
DL_CLONES static void softmax_row(float *p, int jm, int T) {
    if (jm > 0) {
        float mx = cpu_row_max(p, jm);
        float inv = 1.0f / cpu_row_exp_sum(p, jm, mx);
#pragma omp simd
        for (int j = 0; j < jm; j++) p[j] *= inv;
    }
    memset(p + jm, 0, sizeof(float) * (size_t)(T - jm));
}

/* in: s = dP row, p = P row.  out: s = P * (dP - sum(P dP)) on [0, m), 0 after */
DL_CLONES static void dsoftmax_row(float *s, const float *p, int m, int T) {
    float rd = cpu_row_dot(p, s, m);
#pragma omp simd
    for (int j = 0; j < m; j++) s[j] = p[j] * (s[j] - rd);
    memset(s + m, 0, sizeof(float) * (size_t)(T - m));
}

void dl_k_attention_fwd(dl_dev *d, float *out, float *att, const float *q, const float *k, const float *v,
                        const int32_t *lens, int B, int T, int Hq, int Hk, int E, dl_attn_mask mask, int block) {
    DL_ASSERT(Hk > 0 && Hq % Hk == 0 && (mask != DL_ATTN_BLOCK || block > 0));
    const int rep = Hq / Hk, nc = (T + QC - 1) / QC;
    const size_t ldq = (size_t)Hq * E, ldk = (size_t)Hk * E;
    const float scale = 1.0f / sqrtf((float)E);
    const long ntask = (long)B * Hq * nc;
#pragma omp parallel for schedule(dynamic, 1) num_threads(cpu_nthreads(d, (size_t)ntask, 1))
    for (long t = 0; t < ntask; t++) {
        int c = (int)(t % nc), h = (int)(t / nc % Hq), b = (int)(t / nc / Hq), g = h / rep;
        int len = lens ? lens[b] : T;
        if (len > T) len = T;
        if (len < 0) len = 0;
        int i0 = c * QC, i1 = i0 + QC < T ? i0 + QC : T, n = i1 - i0;
        const float *Q = q + ((size_t)b * T * Hq + h) * E;
        const float *K = k + ((size_t)b * T * Hk + g) * E;
        const float *V = v + ((size_t)b * T * Hk + g) * E;
        float *O = out + ((size_t)b * T * Hq + h) * E;
        float *P = att + ((size_t)b * Hq + h) * T * T;
        int kmax = 0;
        for (int i = i0; i < i1; i++) {
            int jm = jmax_of(i, len, T, mask, block);
            if (jm > kmax) kmax = jm;
        }
        cpu_gemm_serial(d, 0, 1, n, kmax, E, scale, Q + i0 * ldq, (int)ldq, K, (int)ldk, 0.0f,
                        P + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++) softmax_row(P + (size_t)i * T, jmax_of(i, len, T, mask, block), T);
        cpu_gemm_serial(d, 0, 0, n, E, kmax, 1.0f, P + (size_t)i0 * T, T, V, (int)ldk, 0.0f,
                        O + i0 * ldq, (int)ldq);
    }
}

void dl_k_attention_bwd(dl_dev *d, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int B, int T, int Hq, int Hk, int E) {
    DL_ASSERT(Hk > 0 && Hq % Hk == 0);
    const int rep = Hq / Hk, nc = (T + QC - 1) / QC;
    const size_t ldq = (size_t)Hq * E, ldk = (size_t)Hk * E;
    const float scale = 1.0f / sqrtf((float)E);
    const long ntask = (long)B * Hk;
#pragma omp parallel for schedule(dynamic, 1) num_threads(cpu_nthreads(d, (size_t)ntask, 1))
    for (long t = 0; t < ntask; t++) {
        int g = (int)(t % Hk), b = (int)(t / Hk);
        const float *K = k + ((size_t)b * T * Hk + g) * E;
        const float *V = v + ((size_t)b * T * Hk + g) * E;
        float *dK = dk + ((size_t)b * T * Hk + g) * E;
        float *dV = dv + ((size_t)b * T * Hk + g) * E;
        for (int r = 0; r < rep; r++) {
            int h = g * rep + r;
            const float *dO = dout + ((size_t)b * T * Hq + h) * E;
            const float *Q = q + ((size_t)b * T * Hq + h) * E;
            const float *P = att + ((size_t)b * Hq + h) * T * T;
            float *S = scratch + ((size_t)b * Hq + h) * T * T;   /* dS of (b, h): cache-resident */
            float *dQ = dq + ((size_t)b * T * Hq + h) * E;
            /* query chunks: dP -> dS, dQ = s dS K */
            for (int c = 0; c < nc; c++) {
                int i0 = c * QC, i1 = i0 + QC < T ? i0 + QC : T, n = i1 - i0;
                int jm[QC], kmax = 0;
                for (int i = i0; i < i1; i++) {
                    jm[i - i0] = jmax_scan(P + (size_t)i * T, T);
                    if (jm[i - i0] > kmax) kmax = jm[i - i0];
                }
                cpu_gemm_serial(d, 0, 1, n, kmax, E, 1.0f, dO + i0 * ldq, (int)ldq, V, (int)ldk, 0.0f,
                                S + (size_t)i0 * T, T);
                for (int i = i0; i < i1; i++) dsoftmax_row(S + (size_t)i * T, P + (size_t)i * T, jm[i - i0], T);
                cpu_gemm_serial(d, 0, 0, n, E, kmax, scale, S + (size_t)i0 * T, T, K, (int)ldk, 0.0f,
                                dQ + i0 * ldq, (int)ldq);
            }
            /* key chunks: dV (+)= P^T dO, dK (+)= s dS^T Q over the queries that see them */
            float beta = r == 0 ? 0.0f : 1.0f;
            for (int c = 0; c < nc; c++) {
                int j0 = c * QC, j1 = j0 + QC < T ? j0 + QC : T, n = j1 - j0;
                int imin = 0;   /* rows before imin see none of keys j0..j1 */
                for (; imin < T; imin++) {
                    const float *p = P + (size_t)imin * T + j0;
                    int any = 0;
                    for (int j = 0; j < n; j++) any |= p[j] != 0.0f;
                    if (any) break;
                }
                cpu_gemm_serial(d, 1, 0, n, E, T - imin, 1.0f, P + (size_t)imin * T + j0, T,
                                dO + imin * ldq, (int)ldq, beta, dV + j0 * ldk, (int)ldk);
                cpu_gemm_serial(d, 1, 0, n, E, T - imin, scale, S + (size_t)imin * T + j0, T,
                                Q + imin * ldq, (int)ldq, beta, dK + j0 * ldk, (int)ldk);
            }
        }
    }
}
