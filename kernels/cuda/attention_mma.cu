/* kernels/cuda/attention_mma.cu — the tensor-core twin of attention.cu for
 * bf16 training: the same flash recurrence, with every product (Q K^T,
 * P V, dO V^T, dS K, P^T dO, dS^T Q) on WMMA 16x16x16 bf16 fragments with
 * fp32 accumulation, and the softmax arithmetic in fp32 scalar code.
 *   Layout: 4 warps per block; a block owns MT = 64 rows (queries in the
 *   forward and dq, keys in dk/dv), a warp 16 of them; the other side
 *   streams through shared memory in tiles of NT = 64.  Every tile lives in
 *   shared memory (bf16 operands, fp32 scores and accumulators), rows
 *   padded by 8 bf16 / 4 floats (bank spread; WMMA needs a 32-byte aligned
 *   fragment start and a leading dimension that is a multiple of 16 bytes,
 *   which rows of E + 8 bf16 and NT + 4 floats give, E % 16 == 0).
 *   Scalar work: two lanes per row, each on the columns of its parity.
 *   A warp's products read only the tiles the block loaded and write only
 *   its own 16 rows, so warps synchronise with __syncwarp between a
 *   product and the scalar code that reads it, and with __syncthreads only
 *   around tile loads.
 *   Rounding: P and dS go to bf16 for their products (as FlashAttention-2),
 *   row sums and lse stay fp32.  Deterministic: no atomics, fixed order.
 * Masks, GQA, lens and what each query sees: attention.h's jmax_of / vis.
 * Checked on the CPU: tests/cuda/emu compiles this file with DL_CU_EMU (a
 * host thread per lane, WMMA emulated with its layout and alignment rules)
 * and compares it with the reference backend (make test).
 * Does not: probabilities (attention.cu when they are asked for), f32
 * storage, head dims beyond 128 or not a multiple of 16, the cache
 * forwards, Hopper's wgmma / TMA (a later version).
 */
#include <math.h>
#include <type_traits>
#include <mma.h>
#include "attention.h"

using namespace nvcuda;

enum { MT = 64, NT = 64, MW = 4, PB = 8, PF = 4, EMMA = 128 };   /* PB / PF: row padding, bf16 / floats */
static_assert(MT == NT && MT == MW * 16, "a tile load fills MT rows; a warp owns 16 of them");

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> frag_a;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> frag_c;

/* C (16 x 16 nc, fp32, ldc) = [C +] A (16 x 16 kc, bf16 row-major, lda) * B,
 * B (16 kc x 16 nc) given row-major (B[k][n] at b[k * ldb + n]) when COL is
 * false, or as the transpose of a row-major (16 nc x 16 kc) matrix (B[k][n]
 * at b[n * ldb + k]: WMMA's col_major) when COL is true. */
template <bool COL>
__device__ __forceinline__ void warp_gemm(float *C, int ldc, const bf16 *A, int lda, const bf16 *Bm, int ldb, int kc,
                                          int nc, bool accumulate) {
#if __CUDA_ARCH__ >= 800
    typedef typename std::conditional<COL, wmma::col_major, wmma::row_major>::type BL;
    frag_a fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, BL> fb;
    frag_c fc;
    const bool col = COL;
    for (int n = 0; n < nc; n++) {
        if (accumulate) wmma::load_matrix_sync(fc, C + n * 16, ldc, wmma::mem_row_major);
        else wmma::fill_fragment(fc, 0.0f);
        for (int k = 0; k < kc; k++) {
            wmma::load_matrix_sync(fa, A + k * 16, lda);
            wmma::load_matrix_sync(fb, col ? Bm + (size_t)n * 16 * ldb + k * 16 : Bm + (size_t)k * 16 * ldb + n * 16, ldb);
            wmma::mma_sync(fc, fa, fb, fc);
        }
        wmma::store_matrix_sync(C + n * 16, fc, ldc, wmma::mem_row_major);
    }
#else
    __trap();   /* cu_attn_mma_usable never sends a pre-sm_80 device here */
#endif
}

/* rows r0 .. r0+MT of a (rows, ld) bf16 tensor into S (MT x E, stride ldS),
 * zero from row `limit` on; 16-byte loads (E % 8 == 0, rows 16-byte aligned) */
__device__ __forceinline__ void load_rows(bf16 *S, int ldS, const bf16 *base, size_t ld, int r0, int limit, int E) {
    const int per = E / 8;   /* uint4 per row */
    for (int t = threadIdx.x; t < MT * per; t += blockDim.x) {
        int r = t / per, c = (t % per) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r0 + r < limit) v = *(const uint4 *)(base + (size_t)(r0 + r) * ld + c);
        *(uint4 *)(S + r * ldS + c) = v;
    }
}

/* shared-memory carve: bytes rounded up to 128 so every array starts 32-byte aligned */
__host__ __device__ __forceinline__ size_t rup(size_t b) { return (b + 127) / 128 * 128; }

/* ------------------------------------------------------------ forward */
__host__ __device__ __forceinline__ size_t fwd_bytes(int E) {
    size_t lb = E + PB, ls = NT + PF, lo = E + PF;
    return 3 * rup(MT * lb * sizeof(bf16)) + rup(MT * ls * sizeof(float)) + rup(MT * (NT + PB) * sizeof(bf16)) +
           rup(MT * lo * sizeof(float));
}

__global__ void __launch_bounds__(MW * 32) k_mma_fwd(attn_args<bf16> a) {
    CU_DYN_SMEM(unsigned char, smem);
    const int E = a.E, lb = E + PB, ls = NT + PF, lp = NT + PB, lo = E + PF;
    bf16 *Qs = (bf16 *)smem;
    bf16 *Ks = (bf16 *)(smem + rup(MT * lb * sizeof(bf16)));
    bf16 *Vs = (bf16 *)((unsigned char *)Ks + rup(MT * lb * sizeof(bf16)));
    float *Ss = (float *)((unsigned char *)Vs + rup(MT * lb * sizeof(bf16)));
    bf16 *Ps = (bf16 *)((unsigned char *)Ss + rup(MT * ls * sizeof(float)));
    float *Os = (float *)((unsigned char *)Ps + rup(MT * lp * sizeof(bf16)));
    const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * MT, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int g = h / (a.Hq / a.Hk);
    const size_t ldq = (size_t)a.Hq * E, ldk = (size_t)a.Hk * E;
    const bf16 *qb = attn_q_head(a, a.q, b, h), *kb = attn_k_head(a, a.k, b, g), *vb = attn_k_head(a, a.v, b, g);
    const float sc = 1.0f / sqrtf((float)E);
    /* this lane's row of the warp's 16: two lanes a row, `half` takes the
     * columns (and values of E) of its parity, so the pair's accesses fall
     * in different banks */
    const int r = w * 16 + (lane >> 1), half = lane & 1, i = i0 + r;
    const int jm = i < a.nq ? jmax_of(a, b, i) : 0;
    float m = -INFINITY, l = 0.0f;
    float *Ow = Os + (size_t)w * 16 * lo, *Sw = Ss + (size_t)w * 16 * ls;
    bf16 *Pw = Ps + (size_t)w * 16 * lp;
    for (int e = half; e < E; e += 2) Os[(size_t)r * lo + e] = 0.0f;
    load_rows(Qs, lb, qb, ldq, i0, a.nq, E);
    const int last = (i0 + MT < a.nq ? i0 + MT : a.nq) - 1, jend = jmax_of(a, b, last);
    for (int j0 = 0; j0 < jend; j0 += NT) {
        __syncthreads();   /* the previous K / V tiles are no longer read */
        load_rows(Ks, lb, kb, ldk, j0, jend, E);
        load_rows(Vs, lb, vb, ldk, j0, jend, E);
        __syncthreads();
        /* S (16 x NT) = Q_w K^T */
        warp_gemm<true>(Sw, ls, Qs + (size_t)w * 16 * lb, lb, Ks, lb, E / 16, NT / 16, false);
        __syncwarp();
        /* online softmax on this lane's 32 columns of row r */
        float *srow = Ss + (size_t)r * ls;
        float mx = -INFINITY;
        for (int c = half; c < NT; c += 2) {
            int j = j0 + c;
            float s = j < jm && vis(a, b, i, j) ? srow[c] * sc : -INFINITY;
            srow[c] = s;
            mx = fmaxf(mx, s);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        float mnew = fmaxf(m, mx), corr = mnew == -INFINITY ? 1.0f : expf(m - mnew), sum = 0.0f;
        bf16 *prow = Ps + (size_t)r * lp;
        for (int c = half; c < NT; c += 2) {
            float p = srow[c] == -INFINITY ? 0.0f : expf(srow[c] - mnew);
            sum += p;
            prow[c] = __float2bfloat16_rn(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l = l * corr + sum;
        m = mnew;
        for (int e = half; e < E; e += 2) Os[(size_t)r * lo + e] *= corr;
        __syncwarp();
        /* O_w (16 x E) += P_w V */
        warp_gemm<false>(Ow, lo, Pw, lp, Vs, lb, NT / 16, E / 16, true);
        __syncwarp();
    }
    if (i < a.nq) {
        float inv = l > 0.0f ? 1.0f / l : 0.0f;
        bf16 *orow = a.out + ((size_t)b * a.nq + i) * ldq + (size_t)h * E;
        for (int e = half; e < E; e += 2) orow[e] = __float2bfloat16_rn(Os[(size_t)r * lo + e] * inv);
        if (a.lse && !half) a.lse[((size_t)b * a.Hq + h) * a.nq + i] = l > 0.0f ? m + logf(l) : -INFINITY;
    }
}

/* ------------------------------------------------------------ backward: dq */
__host__ __device__ __forceinline__ size_t dq_bytes(int E) {
    size_t lb = E + PB, ls = NT + PF, lo = E + PF;
    return 4 * rup(MT * lb * sizeof(bf16)) + 2 * rup(MT * ls * sizeof(float)) + rup(MT * (NT + PB) * sizeof(bf16)) +
           rup(MT * lo * sizeof(float));
}

/* per query tile: S = Q K^T, dP = dO V^T, dS = P (dP - D), dQ += dS K; dq = sc dQ */
__global__ void __launch_bounds__(MW * 32) k_mma_dq(attn_args<bf16> a, bf16 *dq, const bf16 *dout, const float *lse,
                                                    const float *Dd) {
    CU_DYN_SMEM(unsigned char, smem);
    const int E = a.E, Tn = a.nq, lb = E + PB, ls = NT + PF, lp = NT + PB, lo = E + PF;
    const size_t tb = rup(MT * lb * sizeof(bf16)), tf = rup(MT * ls * sizeof(float));
    bf16 *Qs = (bf16 *)smem, *dOs = (bf16 *)(smem + tb), *Ks = (bf16 *)(smem + 2 * tb), *Vs = (bf16 *)(smem + 3 * tb);
    float *Ss = (float *)(smem + 4 * tb), *dPs = (float *)(smem + 4 * tb + tf);
    bf16 *dSs = (bf16 *)(smem + 4 * tb + 2 * tf);
    float *Gs = (float *)(smem + 4 * tb + 2 * tf + rup(MT * lp * sizeof(bf16)));
    const int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * MT, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int g = h / (a.Hq / a.Hk);
    const size_t ldq = (size_t)a.Hq * E, ldk = (size_t)a.Hk * E;
    const bf16 *qb = attn_q_head(a, a.q, b, h), *db = attn_q_head(a, dout, b, h);
    const bf16 *kb = attn_k_head(a, a.k, b, g), *vb = attn_k_head(a, a.v, b, g);
    const float sc = 1.0f / sqrtf((float)E);
    const int r = w * 16 + (lane >> 1), half = lane & 1, i = i0 + r;
    const int jm = i < Tn ? jmax_of(a, b, i) : 0;
    const size_t li = ((size_t)b * a.Hq + h) * Tn + (i < Tn ? i : 0);
    const float L = lse[li], Di = Dd[li];
    for (int e = half; e < E; e += 2) Gs[(size_t)r * lo + e] = 0.0f;
    load_rows(Qs, lb, qb, ldq, i0, Tn, E);
    load_rows(dOs, lb, db, ldq, i0, Tn, E);
    const int last = (i0 + MT < Tn ? i0 + MT : Tn) - 1, jend = jmax_of(a, b, last);
    for (int j0 = 0; j0 < jend; j0 += NT) {
        __syncthreads();
        load_rows(Ks, lb, kb, ldk, j0, jend, E);
        load_rows(Vs, lb, vb, ldk, j0, jend, E);
        __syncthreads();
        warp_gemm<true>(Ss + (size_t)w * 16 * ls, ls, Qs + (size_t)w * 16 * lb, lb, Ks, lb, E / 16, NT / 16,
                                   false);
        warp_gemm<true>(dPs + (size_t)w * 16 * ls, ls, dOs + (size_t)w * 16 * lb, lb, Vs, lb, E / 16,
                                   NT / 16, false);
        __syncwarp();
        const float *srow = Ss + (size_t)r * ls, *prow = dPs + (size_t)r * ls;
        bf16 *drow = dSs + (size_t)r * lp;
        for (int c = half; c < NT; c += 2) {
            int j = j0 + c;
            float ds = 0.0f;
            if (j < jm && vis(a, b, i, j)) ds = expf(srow[c] * sc - L) * (prow[c] - Di);
            drow[c] = __float2bfloat16_rn(ds);
        }
        __syncwarp();
        warp_gemm<false>(Gs + (size_t)w * 16 * lo, lo, dSs + (size_t)w * 16 * lp, lp, Ks, lb, NT / 16, E / 16,
                                   true);
        __syncwarp();
    }
    if (i < Tn) {
        bf16 *row = dq + ((size_t)b * Tn + i) * ldq + (size_t)h * E;
        for (int e = half; e < E; e += 2) row[e] = __float2bfloat16_rn(Gs[(size_t)r * lo + e] * sc);
    }
}

/* ------------------------------------------------------------ backward: dk, dv */
__host__ __device__ __forceinline__ size_t kv_bytes(int E) {
    size_t lb = E + PB, ls = NT + PF, lo = E + PF;
    return 4 * rup(MT * lb * sizeof(bf16)) + 2 * rup(MT * ls * sizeof(float)) + 2 * rup(MT * (NT + PB) * sizeof(bf16)) +
           2 * rup(MT * lo * sizeof(float)) + rup(3 * NT * sizeof(float));
}

/* per key tile of kv head g, over the rep query heads and the query tiles:
 * S^T = K Q^T, dP^T = V dO^T, P^T, dS^T = P^T (dP^T - D); dV += P^T dO,
 * dK += dS^T Q; dk = sc dK */
__global__ void __launch_bounds__(MW * 32) k_mma_dkdv(attn_args<bf16> a, bf16 *dk, bf16 *dv, const bf16 *dout,
                                                      const float *lse, const float *Dd) {
    CU_DYN_SMEM(unsigned char, smem);
    const int E = a.E, Tn = a.nq, lb = E + PB, ls = NT + PF, lp = NT + PB, lo = E + PF;
    const size_t tb = rup(MT * lb * sizeof(bf16)), tf = rup(MT * ls * sizeof(float)), tp = rup(MT * lp * sizeof(bf16)),
                 to = rup(MT * lo * sizeof(float));
    bf16 *Ks = (bf16 *)smem, *Vs = (bf16 *)(smem + tb), *Qs = (bf16 *)(smem + 2 * tb), *dOs = (bf16 *)(smem + 3 * tb);
    float *Ss = (float *)(smem + 4 * tb), *dPs = (float *)(smem + 4 * tb + tf);
    bf16 *Ps = (bf16 *)(smem + 4 * tb + 2 * tf), *dSs = (bf16 *)(smem + 4 * tb + 2 * tf + tp);
    float *dKs = (float *)(smem + 4 * tb + 2 * tf + 2 * tp), *dVs = (float *)(smem + 4 * tb + 2 * tf + 2 * tp + to);
    float *Ls = (float *)(smem + 4 * tb + 2 * tf + 2 * tp + 2 * to), *Ds = Ls + NT;
    int *Js = (int *)(Ds + NT);
    const int b = blockIdx.z, g = blockIdx.y, k0 = blockIdx.x * MT, lane = threadIdx.x & 31, w = threadIdx.x >> 5;
    const int rep = a.Hq / a.Hk;
    const size_t ldq = (size_t)a.Hq * E, ldk = (size_t)a.Hk * E;
    const bf16 *kb = attn_k_head(a, a.k, b, g), *vb = attn_k_head(a, a.v, b, g);
    const float sc = 1.0f / sqrtf((float)E);
    /* this lane: key row kr of the block (j = k0 + kr), 32 of the NT query columns */
    const int kr = w * 16 + (lane >> 1), half = lane & 1, j = k0 + kr;
    for (int e = half; e < E; e += 2) dKs[(size_t)kr * lo + e] = dVs[(size_t)kr * lo + e] = 0.0f;
    load_rows(Ks, lb, kb, ldk, k0, a.Tk, E);
    load_rows(Vs, lb, vb, ldk, k0, a.Tk, E);
    const int ifirst = attn_first_query_tile(a, k0, NT);
    for (int h = g * rep; h < (g + 1) * rep; h++) {
        const bf16 *qb = attn_q_head(a, a.q, b, h), *db = attn_q_head(a, dout, b, h);
        for (int q0 = ifirst; q0 < Tn; q0 += NT) {
            __syncthreads();   /* the previous Q / dO tiles and L / D / J are no longer read */
            load_rows(Qs, lb, qb, ldq, q0, Tn, E);
            load_rows(dOs, lb, db, ldq, q0, Tn, E);
            for (int t = threadIdx.x; t < NT; t += blockDim.x) {
                int iq = q0 + t;
                size_t li = ((size_t)b * a.Hq + h) * Tn + (iq < Tn ? iq : 0);
                Ls[t] = lse[li];
                Ds[t] = Dd[li];
                Js[t] = iq < Tn ? jmax_of(a, b, iq) : 0;
            }
            __syncthreads();
            warp_gemm<true>(Ss + (size_t)w * 16 * ls, ls, Ks + (size_t)w * 16 * lb, lb, Qs, lb, E / 16,
                                       NT / 16, false);
            warp_gemm<true>(dPs + (size_t)w * 16 * ls, ls, Vs + (size_t)w * 16 * lb, lb, dOs, lb, E / 16,
                                       NT / 16, false);
            __syncwarp();
            const float *srow = Ss + (size_t)kr * ls, *qrow = dPs + (size_t)kr * ls;
            bf16 *prow = Ps + (size_t)kr * lp, *drow = dSs + (size_t)kr * lp;
            for (int c = half; c < NT; c += 2) {
                int t = c, iq = q0 + t;
                float p = 0.0f, ds = 0.0f;
                if (j < Js[t] && vis(a, b, iq, j)) {
                    p = expf(srow[c] * sc - Ls[t]);
                    ds = p * (qrow[c] - Ds[t]);
                }
                prow[c] = __float2bfloat16_rn(p);
                drow[c] = __float2bfloat16_rn(ds);
            }
            __syncwarp();
            warp_gemm<false>(dVs + (size_t)w * 16 * lo, lo, Ps + (size_t)w * 16 * lp, lp, dOs, lb, NT / 16,
                                       E / 16, true);
            warp_gemm<false>(dKs + (size_t)w * 16 * lo, lo, dSs + (size_t)w * 16 * lp, lp, Qs, lb, NT / 16,
                                       E / 16, true);
            __syncwarp();
        }
    }
    if (j < a.Tk) {
        bf16 *krow = dk + ((size_t)b * a.Tk + j) * ldk + (size_t)g * E, *vrow = dv + ((size_t)b * a.Tk + j) * ldk + (size_t)g * E;
        for (int e = half; e < E; e += 2) {
            krow[e] = __float2bfloat16_rn(dKs[(size_t)kr * lo + e] * sc);
            vrow[e] = __float2bfloat16_rn(dVs[(size_t)kr * lo + e]);
        }
    }
}

/* ------------------------------------------------------------ launch */
int cu_attn_mma_usable(dl_dev *d, dl_dtype dt, int E, const float *att, const void *q, const void *k, const void *v,
                       const void *dout) {
    cuda_state *st = cu_state(d);
    uintptr_t al = (uintptr_t)q | (uintptr_t)k | (uintptr_t)v | (uintptr_t)dout;
    return dt == DL_BF16 && !att && al % 16 == 0 && E > 0 && E % 16 == 0 && E <= EMMA && st->cc >= 80 && !st->attn_fma &&
           kv_bytes(E) <= st->smem_optin && dq_bytes(E) <= st->smem_optin && fwd_bytes(E) <= st->smem_optin;
}

/* dynamic shared memory over 48 KiB needs the kernel's opt-in */
template <typename K> static void optin(K kernel, size_t bytes) {
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes));
}

void cu_attn_mma_fwd(dl_dev *d, const attn_args<bf16> &a, int B) {
    if (B <= 0 || a.nq <= 0 || a.Hq <= 0) return;
    size_t sm = fwd_bytes(a.E);
    optin(k_mma_fwd, sm);
    CU_LAUNCH(dim3((a.nq + MT - 1) / MT, a.Hq, B), MW * 32, sm, cu_stream(d), k_mma_fwd)(a);
    CUDA_LAUNCHED();
}

void cu_attn_mma_bwd(dl_dev *d, const attn_args<bf16> &a, int B, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                     const float *lse, const float *Dd) {
    if (B <= 0 || a.nq <= 0 || a.Hq <= 0) return;
    size_t s1 = dq_bytes(a.E), s2 = kv_bytes(a.E);
    optin(k_mma_dq, s1);
    CU_LAUNCH(dim3((a.nq + MT - 1) / MT, a.Hq, B), MW * 32, s1, cu_stream(d), k_mma_dq)(a, dq, dout, lse, Dd);
    CUDA_LAUNCHED();
    optin(k_mma_dkdv, s2);
    CU_LAUNCH(dim3((a.Tk + MT - 1) / MT, a.Hk, B), MW * 32, s2, cu_stream(d), k_mma_dkdv)(a, dk, dv, dout, lse, Dd);
    CUDA_LAUNCHED();
}
