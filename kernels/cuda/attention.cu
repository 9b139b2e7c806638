/* kernels/cuda/attention.cu — tiled attention with online softmax (the
 * flash-attention recurrence, fp32 in shared memory, no tensor cores yet):
 * the full forward / backward (bidir, causal, block masks; GQA; lens) and
 * the two cache forwards (attention_kv_fwd, attention_cached_fwd), all from
 * one forward kernel that differs only in which keys a query sees.
 *   forward: one block per (query tile of QB, head, batch row); each warp
 *     owns QPW queries; key tiles of KT go through shared memory; lane j
 *     scores key j of the tile, the output (E <= 256) lives E/32 per lane.
 *     lse (B,Hq,T) always; att (B,Hq,T,T) only when given (a second pass).
 *   backward (from lse, never from att): D_i = dO_i.O_i; then dq per query
 *     tile (as the forward) and dk, dv per key tile (each warp owns KPW keys,
 *     lanes walk query tiles), each written once: no atomics, deterministic.
 * Shapes and masks are kernels.h's; jmax(i) is non-decreasing in i for every
 * mask, so a tile's last query bounds the keys the tile needs (BD3: all T
 * keys, each tested with dl_attn_visible, as its visible set is two ranges).
 * Scratch of the backward: D, (B,Hq,T) floats.
 * bf16 training calls (no probabilities, head dim % 16 == 0, <= 128) go to
 * the tensor-core twin, attention_mma.cu; these kernels are the readable
 * reference it is tested against, and serve every other call.
 * Does not: bf16 shared tiles, split-K over keys.
 */
#include <math.h>
#include "attention.h"

enum { QPW = 4, NWARP = 4, QB = QPW * NWARP, KT = 32, KPW = 4, KB = KPW * NWARP, QT = 32, EMAX = 256, EPL = EMAX / 32 };

/* rows r0.. r0+nr of a (rows, ld) tensor at base into shared S (stride ES), zero past `limit` */
template <typename T> __device__ __forceinline__ void load_tile(float *S, const T *base, size_t ld, int r0, int nr,
                                                                int limit, int E) {
    int ES = E + 1;
    for (int t = threadIdx.x; t < nr * E; t += blockDim.x) {
        int r = t / E, e = t % E;
        S[r * ES + e] = r0 + r < limit ? cu_ld(base, (size_t)(r0 + r) * ld + e) : 0.0f;
    }
}

template <typename T> __global__ void __launch_bounds__(NWARP * 32) k_attn_fwd(attn_args<T> a) {
    CU_DYN_SMEM(float, sm);
    const int E = a.E, ES = E + 1;
    float *Qs = sm, *Ks = Qs + QB * ES, *Vs = Ks + KT * ES;
    const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * QB, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int g = h / (a.Hq / a.Hk);
    const size_t ldq = (size_t)a.Hq * E, ldk = (size_t)a.Hk * E;
    const size_t krow = a.mode == MODE_CACHED && a.rows ? (size_t)a.rows[b] : (size_t)b;
    const T *qb = attn_q_head(a, a.q, b, h), *kb = attn_k_head(a, a.k, krow, g), *vb = attn_k_head(a, a.v, krow, g);
    const float sc = 1.0f / sqrtf((float)E);
    load_tile(Qs, qb, ldq, i0, QB, a.nq, E);
    int jm[QPW];
    float m[QPW], l[QPW], o[QPW][EPL];
#pragma unroll
    for (int qq = 0; qq < QPW; qq++) {
        int i = i0 + w * QPW + qq;
        jm[qq] = i < a.nq ? jmax_of(a, b, i) : 0;
        m[qq] = -INFINITY; l[qq] = 0.0f;
#pragma unroll
        for (int r = 0; r < EPL; r++) o[qq][r] = 0.0f;
    }
    const int last = (i0 + QB < a.nq ? i0 + QB : a.nq) - 1, jend = jmax_of(a, b, last);
    for (int j0 = 0; j0 < jend; j0 += KT) {
        __syncthreads();   /* the previous tile is no longer read */
        load_tile(Ks, kb, ldk, j0, KT, jend, E);
        load_tile(Vs, vb, ldk, j0, KT, jend, E);
        __syncthreads();
#pragma unroll
        for (int qq = 0; qq < QPW; qq++) {
            const float *qr = Qs + (w * QPW + qq) * ES;
            int j = j0 + lane;
            float s = -INFINITY;
            if (j < jm[qq] && vis(a, b, i0 + w * QPW + qq, j)) {
                float dot = 0.0f;
                for (int e = 0; e < E; e++) dot += qr[e] * Ks[lane * ES + e];
                s = dot * sc;
            }
            float mnew = fmaxf(m[qq], cu_warp_max(s));
            if (mnew == -INFINITY) continue;   /* warp-uniform: no visible key yet */
            float corr = expf(m[qq] - mnew), p = s == -INFINITY ? 0.0f : expf(s - mnew);
            l[qq] = l[qq] * corr + cu_warp_sum(p);
#pragma unroll
            for (int r = 0; r < EPL; r++) o[qq][r] *= corr;
            for (int jj = 0; jj < KT; jj++) {
                float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
                for (int r = 0; r < EPL; r++) {
                    int e = lane + 32 * r;
                    if (e < E) o[qq][r] += pj * Vs[jj * ES + e];
                }
            }
            m[qq] = mnew;
        }
    }
    float lse_q[QPW];
#pragma unroll
    for (int qq = 0; qq < QPW; qq++) {
        int i = i0 + w * QPW + qq;
        lse_q[qq] = l[qq] > 0.0f ? m[qq] + logf(l[qq]) : -INFINITY;
        if (i >= a.nq) continue;
        float inv = l[qq] > 0.0f ? 1.0f / l[qq] : 0.0f;
        T *orow = a.out + ((size_t)b * a.nq + i) * ldq + (size_t)h * E;
#pragma unroll
        for (int r = 0; r < EPL; r++) {
            int e = lane + 32 * r;
            if (e < E) cu_st(orow, e, o[qq][r] * inv);
        }
        if (a.lse && lane == 0) a.lse[((size_t)b * a.Hq + h) * a.nq + i] = lse_q[qq];
    }
    if (!a.att) return;
    /* probabilities: every key column of every query, exact 0 where invisible */
    for (int j0 = 0; j0 < a.Tk; j0 += KT) {
        __syncthreads();
        load_tile(Ks, kb, ldk, j0, KT, jend, E);
        __syncthreads();
#pragma unroll
        for (int qq = 0; qq < QPW; qq++) {
            int i = i0 + w * QPW + qq, j = j0 + lane;
            if (i >= a.nq || j >= a.Tk) continue;
            float p = 0.0f;
            if (j < jm[qq] && vis(a, b, i, j)) {
                const float *qr = Qs + (w * QPW + qq) * ES;
                float dot = 0.0f;
                for (int e = 0; e < E; e++) dot += qr[e] * Ks[lane * ES + e];
                p = expf(dot * sc - lse_q[qq]);
            }
            a.att[(((size_t)b * a.Hq + h) * a.nq + i) * a.Tk + j] = p;
        }
    }
}

static size_t fwd_smem(int E) { return sizeof(float) * (size_t)(QB + 2 * KT) * (E + 1); }

/* dynamic shared memory over 48 KiB needs the kernel's opt-in */
template <typename K> static void smem_optin(K kernel, size_t bytes) {
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

template <typename T> static void launch_fwd(dl_dev *d, const attn_args<T> &a, int B) {
    DL_K_ASSERT(a.E > 0 && a.E <= EMAX && a.Hk > 0 && a.Hq % a.Hk == 0);
    if (B <= 0 || a.nq <= 0 || a.Hq <= 0) return;
    size_t sm = fwd_smem(a.E);
    smem_optin(k_attn_fwd<T>, sm);
    dim3 grid((a.nq + QB - 1) / QB, a.Hq, B);
    CU_LAUNCH(grid, NWARP * 32, sm, cu_stream(d), k_attn_fwd<T>)(a);
    CUDA_LAUNCHED();
}

void cu_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                      const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                      dl_attn_mask mask, int block) {
    DL_K_ASSERT((mask != DL_ATTN_BD3 || (block > 0 && T % 2 == 0)) && (mask != DL_ATTN_BLOCK || block > 0));
    const int T_ = T;   /* CU_DISPATCH's element type T hides the length T */
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0);
    if (cu_attn_mma_usable(d, dt, E, att, q, k, v, NULL)) {   /* bf16 training: the tensor-core twin */
        attn_args<bf16> a = { (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, (bf16 *)out, lse, NULL, T_, T_, Hq, Hk,
                              E, MODE_FULL, (int)mask, block, lens, NULL };
        cu_attn_mma_fwd(d, a, B);
        return;
    }
    CU_DISPATCH(dt, {
        attn_args<T> a = { (const T *)q, (const T *)k, (const T *)v, (T *)out, lse, att, T_, T_, Hq, Hk, E,
                           MODE_FULL, (int)mask, block, lens, NULL };
        launch_fwd(d, a, B);
    });
}
void cu_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                         const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E) {
    CU_DISPATCH(dt, {
        attn_args<T> a = { (const T *)q, (const T *)kcache, (const T *)vcache, (T *)out, NULL, NULL, n, Tmax, Hq, Hk,
                           E, MODE_KV, 0, 0, n_past, NULL };
        launch_fwd(d, a, B);
    });
}
void cu_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                             const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                             int Hq, int Hk, int E) {
    CU_DISPATCH(dt, {
        attn_args<T> a = { (const T *)q, (const T *)kcache, (const T *)vcache, (T *)out, NULL, NULL, n, Tmax, Hq, Hk,
                           E, MODE_CACHED, 0, 0, n_keys, rows };
        launch_fwd(d, a, B);
    });
}

/* ------------------------------------------------------------ backward */
/* Dd[(b,h,i)] = dO_i . O_i : one warp per (b, i, h) */
template <typename T> __global__ void k_attn_dsum(float *Dd, const T *dout, const T *out, int B, int T_, int Hq, int E) {
    size_t wid = ((size_t)blockIdx.x * blockDim.x + threadIdx.x) / 32;
    int lane = threadIdx.x & 31;
    if (wid >= (size_t)B * T_ * Hq) return;
    int h = (int)(wid % Hq);
    size_t bi = wid / Hq;
    int i = (int)(bi % T_), b = (int)(bi / T_);
    size_t off = wid * E;   /* (b, i, h) row of (B,T,Hq,E) */
    float s = 0.0f;
    for (int e = lane; e < E; e += 32) s += cu_ld(dout, off + e) * cu_ld(out, off + e);
    s = cu_warp_sum(s);
    if (lane == 0) Dd[((size_t)b * Hq + h) * T_ + i] = s;
}

/* dq per query tile: dS_ij = P_ij (dO_i.v_j - D_i), dq_i = sc sum_j dS_ij k_j */
template <typename T> __global__ void __launch_bounds__(NWARP * 32) k_attn_dq(attn_args<T> a, T *dq, const T *dout,
                                                                             const float *lse, const float *Dd) {
    CU_DYN_SMEM(float, sm);
    const int E = a.E, ES = E + 1, Tn = a.nq;
    float *Qs = sm, *dOs = Qs + QB * ES, *Ks = dOs + QB * ES, *Vs = Ks + KT * ES;
    const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * QB, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int g = h / (a.Hq / a.Hk);
    const size_t ldq = (size_t)a.Hq * E, ldk = (size_t)a.Hk * E;
    const T *qb = attn_q_head(a, a.q, b, h), *db = attn_q_head(a, dout, b, h);
    const T *kb = attn_k_head(a, a.k, b, g), *vb = attn_k_head(a, a.v, b, g);
    const float sc = 1.0f / sqrtf((float)E);
    load_tile(Qs, qb, ldq, i0, QB, Tn, E);
    load_tile(dOs, db, ldq, i0, QB, Tn, E);
    int jm[QPW];
    float L[QPW], Di[QPW], acc[QPW][EPL];
#pragma unroll
    for (int qq = 0; qq < QPW; qq++) {
        int i = i0 + w * QPW + qq;
        jm[qq] = i < Tn ? jmax_of(a, b, i) : 0;
        size_t li = ((size_t)b * a.Hq + h) * Tn + (i < Tn ? i : 0);
        L[qq] = lse[li]; Di[qq] = Dd[li];
#pragma unroll
        for (int r = 0; r < EPL; r++) acc[qq][r] = 0.0f;
    }
    const int last = (i0 + QB < Tn ? i0 + QB : Tn) - 1, jend = jmax_of(a, b, last);
    for (int j0 = 0; j0 < jend; j0 += KT) {
        __syncthreads();
        load_tile(Ks, kb, ldk, j0, KT, jend, E);
        load_tile(Vs, vb, ldk, j0, KT, jend, E);
        __syncthreads();
#pragma unroll
        for (int qq = 0; qq < QPW; qq++) {
            const float *qr = Qs + (w * QPW + qq) * ES, *dor = dOs + (w * QPW + qq) * ES;
            float ds = 0.0f;
            if (j0 + lane < jm[qq] && vis(a, b, i0 + w * QPW + qq, j0 + lane)) {
                float s = 0.0f, dp = 0.0f;
                for (int e = 0; e < E; e++) { s += qr[e] * Ks[lane * ES + e]; dp += dor[e] * Vs[lane * ES + e]; }
                float p = expf(s * sc - L[qq]);
                ds = p * (dp - Di[qq]);
            }
            for (int jj = 0; jj < KT; jj++) {
                float dj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
                for (int r = 0; r < EPL; r++) {
                    int e = lane + 32 * r;
                    if (e < E) acc[qq][r] += dj * Ks[jj * ES + e];
                }
            }
        }
    }
#pragma unroll
    for (int qq = 0; qq < QPW; qq++) {
        int i = i0 + w * QPW + qq;
        if (i >= Tn) continue;
        T *row = dq + ((size_t)b * Tn + i) * ldq + (size_t)h * E;
#pragma unroll
        for (int r = 0; r < EPL; r++) {
            int e = lane + 32 * r;
            if (e < E) cu_st(row, e, acc[qq][r] * sc);
        }
    }
}

/* dk, dv per key tile of kv head g: sums over the rep query heads and every
 * query that sees the key; lanes = queries of a query tile */
template <typename T> __global__ void __launch_bounds__(NWARP * 32) k_attn_dkdv(attn_args<T> a, T *dk, T *dv,
                                                                               const T *dout, const float *lse,
                                                                               const float *Dd) {
    CU_DYN_SMEM(float, sm);
    const int E = a.E, ES = E + 1, Tn = a.nq;
    float *Ks = sm, *Vs = Ks + KB * ES, *Qs = Vs + KB * ES, *dOs = Qs + QT * ES, *Ls = dOs + QT * ES, *Ds = Ls + QT;
    int *Js = (int *)(Ds + QT);
    const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * KB, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int rep = a.Hq / a.Hk;
    const size_t ldq = (size_t)a.Hq * E, ldk = (size_t)a.Hk * E;
    const T *kb = attn_k_head(a, a.k, b, g), *vb = attn_k_head(a, a.v, b, g);
    const float sc = 1.0f / sqrtf((float)E);
    load_tile(Ks, kb, ldk, k0, KB, a.Tk, E);
    load_tile(Vs, vb, ldk, k0, KB, a.Tk, E);
    float ak[KPW][EPL], av[KPW][EPL];
#pragma unroll
    for (int kk = 0; kk < KPW; kk++)
#pragma unroll
        for (int r = 0; r < EPL; r++) ak[kk][r] = av[kk][r] = 0.0f;
    const int ifirst = attn_first_query_tile(a, k0, QT);
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        const T *qb = attn_q_head(a, a.q, b, h), *db = attn_q_head(a, dout, b, h);
        for (int i0 = ifirst; i0 < Tn; i0 += QT) {
            __syncthreads();
            load_tile(Qs, qb, ldq, i0, QT, Tn, E);
            load_tile(dOs, db, ldq, i0, QT, Tn, E);
            if (threadIdx.x < QT) {
                int i = i0 + threadIdx.x;
                size_t li = ((size_t)b * a.Hq + h) * Tn + (i < Tn ? i : 0);
                Ls[threadIdx.x] = lse[li];
                Ds[threadIdx.x] = Dd[li];
                Js[threadIdx.x] = i < Tn ? jmax_of(a, b, i) : 0;
            }
            __syncthreads();
#pragma unroll
            for (int kk = 0; kk < KPW; kk++) {
                int kr = w * KPW + kk, j = k0 + kr;
                float p = 0.0f, ds = 0.0f;
                if (j < Js[lane] && vis(a, b, i0 + lane, j)) {
                    float s = 0.0f, dp = 0.0f;
                    for (int e = 0; e < E; e++) {
                        s += Qs[lane * ES + e] * Ks[kr * ES + e];
                        dp += dOs[lane * ES + e] * Vs[kr * ES + e];
                    }
                    p = expf(s * sc - Ls[lane]);
                    ds = p * (dp - Ds[lane]);
                }
                for (int ii = 0; ii < QT; ii++) {
                    float pi = __shfl_sync(0xffffffffu, p, ii), di = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
                    for (int r = 0; r < EPL; r++) {
                        int e = lane + 32 * r;
                        if (e < E) { av[kk][r] += pi * dOs[ii * ES + e]; ak[kk][r] += di * Qs[ii * ES + e]; }
                    }
                }
            }
        }
    }
#pragma unroll
    for (int kk = 0; kk < KPW; kk++) {
        int j = k0 + w * KPW + kk;
        if (j >= a.Tk) continue;
        T *kr = dk + ((size_t)b * a.Tk + j) * ldk + (size_t)g * E, *vr = dv + ((size_t)b * a.Tk + j) * ldk + (size_t)g * E;
#pragma unroll
        for (int r = 0; r < EPL; r++) {
            int e = lane + 32 * r;
            if (e < E) { cu_st(kr, e, ak[kk][r] * sc); cu_st(vr, e, av[kk][r]); }
        }
    }
}

size_t cu_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att) {
    (void)d; (void)Hk; (void)E; (void)have_att;
    return sizeof(float) * (size_t)B * Hq * T;
}

void cu_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                      const void *out, const float *lse, const float *att, const void *q, const void *k,
                      const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                      dl_attn_mask mask, int block) {
    (void)att;   /* recomputed from q, k and lse */
    DL_K_ASSERT(E > 0 && E <= EMAX && Hk > 0 && Hq % Hk == 0 && (mask != DL_ATTN_BLOCK || block > 0) &&
                (mask != DL_ATTN_BD3 || (block > 0 && T % 2 == 0)));
    if (B <= 0 || T <= 0 || Hq <= 0) return;
    float *Dd = (float *)scratch;
    size_t sm_dq = sizeof(float) * (size_t)(2 * QB + 2 * KT) * (E + 1);
    size_t sm_kv = sizeof(float) * (size_t)(2 * KB + 2 * QT) * (E + 1) + sizeof(float) * 3 * QT;
    const int T_ = T;   /* CU_DISPATCH's element type T hides the length T */
    CU_DISPATCH(dt, {
        attn_args<T> a = { (const T *)q, (const T *)k, (const T *)v, NULL, NULL, NULL, T_, T_, Hq, Hk, E, MODE_FULL,
                           (int)mask, block, lens, NULL };
        size_t warps = (size_t)B * T_ * Hq;
        CU_LAUNCH((unsigned)((warps + 7) / 8), 256, 0, cu_stream(d), k_attn_dsum<T>)(Dd, (const T *)dout, (const T *)out, B,
                                                                              T_, Hq, E);
        CUDA_LAUNCHED();
        if (cu_attn_mma_usable(d, dt, E, NULL, q, k, v, dout)) {   /* bf16 training: the tensor-core twin */
            attn_args<bf16> ab = { (const bf16 *)q, (const bf16 *)k, (const bf16 *)v, NULL, NULL, NULL, T_, T_, Hq, Hk,
                                   E, MODE_FULL, (int)mask, block, lens, NULL };
            cu_attn_mma_bwd(d, ab, B, (bf16 *)dq, (bf16 *)dk, (bf16 *)dv, (const bf16 *)dout, lse, Dd);
            return;
        }
        smem_optin(k_attn_dq<T>, sm_dq);
        CU_LAUNCH(dim3((T_ + QB - 1) / QB, Hq, B), NWARP * 32, sm_dq, cu_stream(d), k_attn_dq<T>)(a, (T *)dq,
                                                                                          (const T *)dout, lse, Dd);
        CUDA_LAUNCHED();
        smem_optin(k_attn_dkdv<T>, sm_kv);
        CU_LAUNCH(dim3((T_ + KB - 1) / KB, Hk, B), NWARP * 32, sm_kv, cu_stream(d), k_attn_dkdv<T>)(
            a, (T *)dk, (T *)dv, (const T *)dout, lse, Dd);
        CUDA_LAUNCHED();
    });
}
