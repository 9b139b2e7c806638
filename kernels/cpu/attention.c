/* kernels/cpu/attention.c — scaled dot-product attention with GQA and the
 * three masks, forward and backward, on explicit (T, T) probabilities.
 *
 * Per (b, h), g = h / (Hq/Hk), s = 1/sqrt(E), len = lens[b] (or T):
 *   S = s Q K^T ;  P = softmax over the visible keys of each row ; O = P V
 *   visible keys of query i are always a prefix [0, jmax(i)):
 *     bidirectional  jmax = len
 *     causal         jmax = min(len, i + 1)
 *     block          jmax = min(len, (i/block + 1) * block)
 *   except DL_ATTN_BD3 (x_t (+) x_0, kernels.h): its visible keys have holes,
 *   so its rows take a masked softmax over [0, T) (softmax_row_bd3) and the
 *   recomputed P is zeroed on the holes; the rest (bounds by one past the
 *   last non-zero, zeros of P contributing nothing) runs unchanged.
 *   invisible entries of P are stored as exact zeros (a row with no visible
 *   key, len = 0, is all zeros and gives O = 0).
 * Backward (of the three lines above), with dS kept in `scratch`:
 *   dP = dO V^T ;  dS = P * (dP - rowsum(P * dP)) ;  dQ = s dS K
 *   dK = s sum_{h in g} dS_h^T Q_h ;  dV = sum_{h in g} P_h^T dO_h
 *
 * The forward also writes lse_i = log sum_j exp(S_ij) (fp32, -inf for a row
 * with no visible key) and stores P only when att != NULL (else each thread
 * keeps its 64-row chunk of P in a buffer of its own, malloc'ed per call).
 * The backward takes the forward's lse and either att (then P is read from
 * it, as before) or NULL: then P is recomputed per (b, h) into the second
 * half of scratch as P_ij = exp(s q_i.k_j - lse_i) on the visible keys of
 * the mask, exact zeros elsewhere, and the rest runs unchanged.
 * Forward: pool chunks (cpu_pool_run) over (b, h, chunk of QC = 64 query rows) tasks.
 * Backward: pool chunks over the B*Hk (b, kv head g) tasks (fewer tasks than
 * threads leave threads idle: B = 1 with 2 kv heads uses 2); each does the
 * heads of its group in order (dK, dV summed in head order: deterministic):
 * query chunks give dS (written to the (b, h) slice of `scratch`, which
 * stays in cache) and dQ, then key chunks give dK and dV.  Every task calls
 * single-threaded sgemm (cpu_gemm_serial), and multiplies only the key
 * columns (or query rows) that can be non-zero: causal / block / len cuts
 * ~halve the FLOPs.  Given att, the backward still bounds each row's GEMMs
 * by one past the last non-zero of P (exact: a zero of P contributes
 * nothing; and it keeps the results bit-identical to before the mask was
 * passed); the mask decides the recomputed P's support.  NaN or inf in q, k, v
 * propagate to out (they are not masked away).
 * Out of memory for the forward's private P buffers (att NULL) aborts
 * (DL_K_ASSERT): the op has no error return.
 * Does not: flash/tiled attention without a (T, T) scratch in the backward, dropout,
 * sliding windows, ALiBi, or a sink.
 */
#include <math.h>
#include <string.h>
#include <stdlib.h>
#include "cpu.h"

#define QC 64

/* one past the last visible key of a DL_ATTN_BD3 query (dl_attn_jend's value) */
static int bd3_jend(int i, int len, int T, int block) {
    int r[4];
    dl_attn_bd3_ranges(i, len, T, block, r);
    return r[3] > r[2] ? r[3] : r[1] > r[0] ? r[1] : 0;
}

static int jmax_of(int i, int len, int T, dl_attn_mask mask, int block) {
    if (mask == DL_ATTN_BD3) return bd3_jend(i, len, T, block);
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

/* p[0..jm) = softmax(p[0..jm)), p[jm..T) = 0; returns log sum exp (-inf when jm = 0) */
DL_CLONES static float softmax_row(float *p, int jm, int T) {
    float lse = -INFINITY;
    if (jm > 0) {
        float mx = cpu_row_max(p, jm);
        float sum = cpu_row_exp_sum(p, jm, mx);
        float inv = 1.0f / sum;
#pragma omp simd
        for (int j = 0; j < jm; j++) p[j] *= inv;
        lse = mx + logf(sum);
    }
    memset(p + jm, 0, sizeof(float) * (size_t)(T - jm));
    return lse;
}

/* p[0..jm) = exp(p[0..jm) - lse), p[jm..T) = 0: a forward row from its scores */
DL_CLONES static void prob_row(float *p, int jm, int T, float lse) {
#pragma omp simd
    for (int j = 0; j < jm; j++) p[j] = cpu_expf(p[j] - lse);
    memset(p + jm, 0, sizeof(float) * (size_t)(T - jm));
}

/* DL_ATTN_BD3: zero p[0..T) outside its two visible ranges r (dl_attn_bd3_ranges) */
static void bd3_zero_holes(float *p, const int r[4], int T) {
    int j = 0;
    for (int k = 0; k < 4; k += 2) {
        for (; j < r[k]; j++) p[j] = 0.0f;
        if (r[k + 1] > j) j = r[k + 1];
    }
    for (; j < T; j++) p[j] = 0.0f;
}

/* DL_ATTN_BD3 (visible keys not a prefix): softmax over the visible entries
 * of p[0..T) (scores), exact zeros elsewhere; returns lse (-inf: none).
 * The visible keys are two ranges (dl_attn_bd3_ranges), walked in
 * ascending j: the same max, sum order and values as testing every key
 * with dl_attn_visible, without its divisions (that made BD3 training ~11x
 * slower per step than masked diffusion). */
static float softmax_row_bd3(float *p, int i, int len, int T, int block) {
    int r[4];
    dl_attn_bd3_ranges(i, len, T, block, r);
    float mx = -INFINITY, sum = 0.0f;
    for (int k = 0; k < 4; k += 2)
        for (int j = r[k]; j < r[k + 1]; j++)
            if (p[j] > mx) mx = p[j];
    for (int k = 0; k < 4; k += 2)
        for (int j = r[k]; j < r[k + 1]; j++) { p[j] = cpu_expf(p[j] - mx); sum += p[j]; }
    bd3_zero_holes(p, r, T);
    if (sum == 0.0f) return -INFINITY;
    float inv = 1.0f / sum;
    for (int j = 0; j < T; j++) p[j] *= inv;
    return mx + logf(sum);
}

static int len_of(const int32_t *lens, int b, int T) {
    int len = lens ? lens[b] : T;
    return len > T ? T : len < 0 ? 0 : len;
}

/* in: s = dP row, p = P row.  out: s = P * (dP - sum(P dP)) on [0, m), 0 after */
DL_CLONES static void dsoftmax_row(float *s, const float *p, int m, int T) {
    float rd = cpu_row_dot(p, s, m);
#pragma omp simd
    for (int j = 0; j < m; j++) s[j] = p[j] * (s[j] - rd);
    memset(s + m, 0, sizeof(float) * (size_t)(T - m));
}

/* the arguments of both directions (each uses some) */
typedef struct {
    const dl_dev *d;
    float *out, *lse, *own;      /* fwd; own (nt, QC, T): each thread's chunk of P when att is NULL */
    const float *att;
    float *dq, *dk, *dv, *Sall, *Pown;   /* bwd */
    const float *dout, *q, *k, *v;
    const int32_t *lens;
    int T, Hq, Hk, E, rep, nc, block;
    size_t ldq, ldk;
    float scale;
    dl_attn_mask mask;
} att_job;

/* task t = (b, h, chunk c of QC query rows) */
static void fwd_task(void *arg, long t, int tid) {
    const att_job *j = arg;
    const int T = j->T, Hq = j->Hq, Hk = j->Hk, E = j->E, nc = j->nc, block = j->block;
    const size_t ldq = j->ldq, ldk = j->ldk;
    const dl_attn_mask mask = j->mask;
    int c = (int)(t % nc), h = (int)(t / nc % Hq), b = (int)(t / nc / Hq), g = h / j->rep;
    int len = len_of(j->lens, b, T);
    int i0 = c * QC, i1 = i0 + QC < T ? i0 + QC : T, n = i1 - i0;
    const float *Q = j->q + ((size_t)b * T * Hq + h) * E;
    const float *K = j->k + ((size_t)b * T * Hk + g) * E;
    const float *V = j->v + ((size_t)b * T * Hk + g) * E;
    float *O = j->out + ((size_t)b * T * Hq + h) * E;
    float *L = j->lse + ((size_t)b * Hq + h) * T;
    /* P + i * T is row i of this (b, h): in att, or in the thread's chunk */
    float *P = j->att ? (float *)j->att + ((size_t)b * Hq + h) * T * T
                      : j->own + (size_t)tid * QC * T - (size_t)i0 * T;
    int kmax = 0;
    for (int i = i0; i < i1; i++) {
        int jm = jmax_of(i, len, T, mask, block);
        if (jm > kmax) kmax = jm;
    }
    cpu_gemm_serial(j->d, 0, 1, n, kmax, E, j->scale, Q + i0 * ldq, (int)ldq, K, (int)ldk, 0.0f,
                    P + (size_t)i0 * T, T);
    for (int i = i0; i < i1; i++) {
        if (mask == DL_ATTN_BD3) { memset(P + (size_t)i * T + kmax, 0, sizeof(float) * (size_t)(T - kmax));
                                   L[i] = softmax_row_bd3(P + (size_t)i * T, i, len, T, block); }
        else L[i] = softmax_row(P + (size_t)i * T, jmax_of(i, len, T, mask, block), T);
    }
    cpu_gemm_serial(j->d, 0, 0, n, E, kmax, 1.0f, P + (size_t)i0 * T, T, V, (int)ldk, 0.0f,
                    O + i0 * ldq, (int)ldq);
}

void cpu_attention_fwd(dl_dev *d, dl_dtype dt, void *outv, float *lse, float *att, const void *qv, const void *kv,
                       const void *vv, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block) {
    CPU_F32(dt);
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0 && (mask != DL_ATTN_BLOCK || block > 0) &&
                (mask != DL_ATTN_BD3 || (block > 0 && T > 0 && T % 2 == 0)));
    const int nc = (T + QC - 1) / QC;
    const long ntask = (long)B * Hq * nc;
    const int nt = cpu_nthreads(d, (size_t)ntask, 1);
    float *own = att ? NULL : malloc(sizeof(float) * (size_t)nt * QC * T);
    DL_K_ASSERT(att || own || ntask == 0);
    att_job j = { .d = d, .out = outv, .lse = lse, .own = own, .att = att, .q = qv, .k = kv, .v = vv,
                  .lens = lens, .T = T, .Hq = Hq, .Hk = Hk, .E = E, .rep = Hq / Hk, .nc = nc, .block = block,
                  .ldq = (size_t)Hq * E, .ldk = (size_t)Hk * E, .scale = 1.0f / sqrtf((float)E), .mask = mask };
    cpu_pool_run(nt, ntask, fwd_task, &j);
    free(own);
}

size_t cpu_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att) {
    (void)d; (void)Hk; (void)E;
    return sizeof(float) * (size_t)B * Hq * T * T * (have_att ? 1 : 2);
}

/* P of one (b, h) from scores and lse: P (T, T) = exp(s Q K^T - lse) on the mask */
static void recompute_probs(const dl_dev *d, float *P, const float *Q, const float *K, const float *L, size_t ldq,
                            size_t ldk, int len, int T, int E, float scale, dl_attn_mask mask, int block) {
    for (int i0 = 0; i0 < T; i0 += QC) {
        int i1 = i0 + QC < T ? i0 + QC : T, kmax = 0;
        for (int i = i0; i < i1; i++) {
            int jm = jmax_of(i, len, T, mask, block);
            if (jm > kmax) kmax = jm;
        }
        cpu_gemm_serial(d, 0, 1, i1 - i0, kmax, E, scale, Q + i0 * ldq, (int)ldq, K, (int)ldk, 0.0f,
                        P + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++) {
            prob_row(P + (size_t)i * T, jmax_of(i, len, T, mask, block), T, L[i]);
            if (mask == DL_ATTN_BD3) {   /* its visible keys are not a prefix: zero the holes */
                int r[4];
                dl_attn_bd3_ranges(i, len, T, block, r);
                bd3_zero_holes(P + (size_t)i * T, r, T);
            }
        }
    }
}

/* task t = (b, kv head g): the heads of the group in order */
static void bwd_task(void *arg, long t, int tid) {
    const att_job *j = arg;
    const int T = j->T, Hq = j->Hq, Hk = j->Hk, E = j->E, nc = j->nc, rep = j->rep;
    const size_t ldq = j->ldq, ldk = j->ldk;
    const float scale = j->scale;
    const dl_dev *d = j->d;
    (void)tid;
    int g = (int)(t % Hk), b = (int)(t / Hk);
    const float *K = j->k + ((size_t)b * T * Hk + g) * E;
    const float *V = j->v + ((size_t)b * T * Hk + g) * E;
    float *dK = j->dk + ((size_t)b * T * Hk + g) * E;
    float *dV = j->dv + ((size_t)b * T * Hk + g) * E;
    for (int r = 0; r < rep; r++) {
        int h = g * rep + r;
        const float *dO = j->dout + ((size_t)b * T * Hq + h) * E;
        const float *Q = j->q + ((size_t)b * T * Hq + h) * E;
        const float *P;
        if (j->att) P = j->att + ((size_t)b * Hq + h) * T * T;
        else {
            float *Pw = j->Pown + ((size_t)b * Hq + h) * T * T;
            recompute_probs(d, Pw, Q, K, j->lse + ((size_t)b * Hq + h) * T, ldq, ldk, len_of(j->lens, b, T), T, E,
                            scale, j->mask, j->block);
            P = Pw;
        }
        float *S = j->Sall + ((size_t)b * Hq + h) * T * T;   /* dS of (b, h): cache-resident */
        float *dQ = j->dq + ((size_t)b * T * Hq + h) * E;
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
                for (int x = 0; x < n; x++) any |= p[x] != 0.0f;
                if (any) break;
            }
            cpu_gemm_serial(d, 1, 0, n, E, T - imin, 1.0f, P + (size_t)imin * T + j0, T,
                            dO + imin * ldq, (int)ldq, beta, dV + j0 * ldk, (int)ldk);
            cpu_gemm_serial(d, 1, 0, n, E, T - imin, scale, S + (size_t)imin * T + j0, T,
                            Q + imin * ldq, (int)ldq, beta, dK + j0 * ldk, (int)ldk);
        }
    }
}

void cpu_attention_bwd(dl_dev *d, dl_dtype dt, void *dqv, void *dkv, void *dvv, void *scratch, const void *doutv,
                       const void *outv, const float *lse, const float *att, const void *qv, const void *kv,
                       const void *vv, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block) {
    CPU_F32(dt);
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0 && (mask != DL_ATTN_BLOCK || block > 0) &&
                (mask != DL_ATTN_BD3 || (block > 0 && T > 0 && T % 2 == 0)));
    (void)outv;   /* rowsum(P dP) is taken from P itself, not from dO . O */
    float *Sall = scratch;
    att_job j = { .d = d, .lse = (float *)lse, .att = att, .dq = dqv, .dk = dkv, .dv = dvv, .Sall = Sall,
                  .Pown = att ? NULL : Sall + (size_t)B * Hq * T * T, .dout = doutv, .q = qv, .k = kv, .v = vv,
                  .lens = lens, .T = T, .Hq = Hq, .Hk = Hk, .E = E, .rep = Hq / Hk, .nc = (T + QC - 1) / QC,
                  .block = block, .ldq = (size_t)Hq * E, .ldk = (size_t)Hk * E, .scale = 1.0f / sqrtf((float)E),
                  .mask = mask };
    const long ntask = (long)B * Hk;
    cpu_pool_run(cpu_nthreads(d, (size_t)ntask, 1), ntask, bwd_task, &j);
}
