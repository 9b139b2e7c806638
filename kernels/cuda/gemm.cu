/* kernels/cuda/gemm.cu — linear forward / backward through cuBLASLt:
 * f32 storage runs a pure fp32 GEMM, bf16 storage a bf16 tensor-core GEMM,
 * both with fp32 compute and scale (CUBLAS_COMPUTE_32F); weight gradients
 * are always fp32 (bf16 x bf16 -> f32, accumulated with beta = 1).
 * Row-major (N,C) @ (O,C)^T is the column-major product out^T = w^T-view x
 * inp^T-view, so every call swaps the operands (see each comment).
 * Bias: cuBLASLt's BIAS epilogue adds it to the fp32 result before the one
 * rounding to the output dtype (the reference's order).
 *
 * Plans: a GEMM's descriptors and the algorithm cuBLASLt's heuristic picks
 * depend on its shape, dtypes, epilogue and on how the pointers are
 * aligned (the heuristic may assume 256-byte alignment; a kernel chosen
 * so would misread a view into the middle of a tensor).  Each distinct
 * key is planned once and kept (CU_LT_PLANS, the least recently used
 * replaced beyond).  A training step's layers share a dozen shapes, planned
 * in its first step; only the head's GEMMs, whose row count is the number
 * of loss positions in the micro-batch, meet new shapes later (a few
 * heuristic calls per micro-batch, host time only), and recency keeps the
 * layers' plans from being pushed out by them.  A key the heuristic has no algorithm for is kept as
 * "none" and runs through cublasGemmEx, as every GEMM does with
 * DLLM_CUDA_GEMM=ex (bias then by filling the output first, beta = 1).
 * Does not: activation epilogues (SwiGLU is two GEMM outputs, not one
 * GEMM's epilogue), the bias-gradient epilogue (dbias accumulates across
 * micro-batches; the epilogue overwrites), one stacked GEMM for
 * linear_fwd_split, mixed f32 x bf16-weight GEMMs.
 */
#include <string.h>
#include "colsum.h"

enum { CU_LT_PLANS = 96 };
struct cu_lt_key {   /* everything the plan depends on; compared with memcmp, so no padding */
    int32_t ta, tb, m, n, k, lda, ldb, ldd, abt, dt, bias;
    uint32_t align[5];   /* A, B, C = D, bias, 0 */
};
struct cu_lt_plan {
    cu_lt_key key;
    int usable;   /* 0: the heuristic found no algorithm (GemmEx runs it) */
    unsigned long long used;   /* the cache's clock at its last use (least recently used goes first) */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
};
struct cu_lt_cache { cu_lt_plan p[CU_LT_PLANS]; int n; unsigned long long clock; };

static cudaDataType_t cu_dtype(dl_dtype dt) { return dt == DL_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

int cu_gemm_open(cuda_state *st) {
    st->lt_plans = (cu_lt_cache *)calloc(1, sizeof *st->lt_plans);
    return st->lt_plans ? 0 : -1;
}
static void plan_free(cu_lt_plan *p) {
    if (p->op) cu_lt.desc_destroy(p->op);
    if (p->a) cu_lt.layout_destroy(p->a);
    if (p->b) cu_lt.layout_destroy(p->b);
    if (p->d) cu_lt.layout_destroy(p->d);
    memset(p, 0, sizeof *p);
}
void cu_gemm_close(cuda_state *st) {
    if (!st->lt_plans) return;
    for (int i = 0; i < st->lt_plans->n; i++) plan_free(&st->lt_plans->p[i]);
    free(st->lt_plans);
    st->lt_plans = NULL;
}

/* the largest power of two (<= 256) that divides the address (capped
 * before narrowing: an address aligned to 4 GiB must not give 0) */
static uint32_t align_of(const void *p) {
    uintptr_t a = (uintptr_t)p, al = a & (~a + 1);
    return !a || al >= 256u ? 256u : (uint32_t)al;
}

/* descriptors + heuristic for key k (bias: the pointer the heuristic sees) */
static void plan_make(cuda_state *st, cu_lt_plan *p, const cu_lt_key *k, const void *bias) {
    memset(p, 0, sizeof *p);
    p->key = *k;
    int32_t ta = k->ta, tb = k->tb;
    uint32_t epi = bias ? CUBLASLT_EPILOGUE_BIAS : CUBLASLT_EPILOGUE_DEFAULT;
    cudaDataType_t abt = (cudaDataType_t)k->abt, dt = (cudaDataType_t)k->dt;
    uint64_t ws = CU_LT_WS;
    cublasLtMatmulPreference_t pref = NULL;
    int ok = cu_lt.desc_create(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
             cu_lt.desc_set(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta) == CUBLAS_STATUS_SUCCESS &&
             cu_lt.desc_set(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb) == CUBLAS_STATUS_SUCCESS &&
             cu_lt.desc_set(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi) == CUBLAS_STATUS_SUCCESS &&
             (!bias || cu_lt.desc_set(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias) == CUBLAS_STATUS_SUCCESS) &&
             cu_lt.layout_create(&p->a, abt, ta == CUBLAS_OP_N ? k->m : k->k, ta == CUBLAS_OP_N ? k->k : k->m, k->lda) ==
                 CUBLAS_STATUS_SUCCESS &&
             cu_lt.layout_create(&p->b, abt, tb == CUBLAS_OP_N ? k->k : k->n, tb == CUBLAS_OP_N ? k->n : k->k, k->ldb) ==
                 CUBLAS_STATUS_SUCCESS &&
             cu_lt.layout_create(&p->d, dt, k->m, k->n, k->ldd) == CUBLAS_STATUS_SUCCESS &&
             cu_lt.pref_create(&pref) == CUBLAS_STATUS_SUCCESS &&
             cu_lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) == CUBLAS_STATUS_SUCCESS;
    static const cublasLtMatmulPreferenceAttributes_t al_attr[3] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES };
    for (int i = 0; ok && i < 3; i++)
        ok = cu_lt.pref_set(pref, al_attr[i], &k->align[i], sizeof k->align[i]) == CUBLAS_STATUS_SUCCESS;
    ok = ok && cu_lt.pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &k->align[2], sizeof k->align[2]) ==
                   CUBLAS_STATUS_SUCCESS;
    cublasLtMatmulHeuristicResult_t r;
    int got = 0;
    if (ok && cu_lt.heuristic(st->lt, p->op, p->a, p->b, p->d, p->d, pref, 1, &r, &got) == CUBLAS_STATUS_SUCCESS &&
        got > 0 && r.state == CUBLAS_STATUS_SUCCESS && r.workspaceSize <= CU_LT_WS) {
        p->algo = r.algo;
        p->usable = 1;
    }
    if (pref) cu_lt.pref_destroy(pref);
    if (!p->usable) {   /* keep only the key: this shape runs through GemmEx */
        cu_lt_key kk = p->key;
        plan_free(p);
        p->key = kk;
    }
}

static const cu_lt_plan *plan_for(cuda_state *st, const cu_lt_key *k, const void *bias) {
    cu_lt_cache *c = st->lt_plans;
    c->clock++;
    for (int i = 0; i < c->n; i++)
        if (!memcmp(&c->p[i].key, k, sizeof *k)) { c->p[i].used = c->clock; return &c->p[i]; }
    cu_lt_plan *p;
    if (c->n < CU_LT_PLANS) p = &c->p[c->n++];
    else {   /* full: replace the least recently used (a matmul reads its descriptors when called, not when it runs) */
        p = &c->p[0];
        for (int i = 1; i < c->n; i++)
            if (c->p[i].used < p->used) p = &c->p[i];
        plan_free(p);
    }
    plan_make(st, p, k, bias);
    p->used = c->clock;
    return p;
}

template <typename T> __global__ void k_fill_bias(T *out, const T *bias, int N, int O) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (size_t)N * O;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = bias[i % O];
}

/* column-major D (m x n, ldd, type dt) = op(A) op(B) + beta D [+ bias (m, type dt)]; A and B of type abt */
static void gemm(dl_dev *d, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *A,
                 int lda, const void *B, int ldb, dl_dtype abt, float beta, void *D, dl_dtype dt, int ldd,
                 const void *bias) {
    cuda_state *st = cu_state(d);
    float alpha = 1.0f;
    if (!st->gemm_ex) {
        cu_lt_key key = { (int32_t)ta, (int32_t)tb, m, n, k, lda, ldb, ldd, (int32_t)cu_dtype(abt), (int32_t)cu_dtype(dt),
                          bias != NULL, { align_of(A), align_of(B), align_of(D), bias ? align_of(bias) : 0u, 0u } };
        const cu_lt_plan *p = plan_for(st, &key, bias);
        if (p->usable) {
            if (bias) CUBLAS_CHECK(cu_lt.desc_set(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
            CUBLAS_CHECK(cu_lt.matmul(st->lt, p->op, &alpha, A, p->a, B, p->b, &beta, D, p->d, D, p->d, &p->algo,
                                      st->lt_ws, CU_LT_WS, st->s));
            return;
        }
    }
    if (bias) {   /* m x n column-major with ldd == m: row-major (n, m), bias along the rows */
        DL_K_ASSERT(ldd == m && beta == 0.0f);
        CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks((size_t)m * n, 256), 256, 0, st->s, k_fill_bias<T>)((T *)D, (const T *)bias,
                                                                                             n, m)));
        CUDA_LAUNCHED();
        beta = 1.0f;
    }
    CUBLAS_CHECK(cu_blas.gemm_ex(st->blas, ta, tb, m, n, k, &alpha, A, cu_dtype(abt), lda, B, cu_dtype(abt), ldb, &beta,
                                 D, cu_dtype(dt), ldd, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/* dbias[o] += sum_n dout[n][o] (cu_colsum's term) */
template <typename T> struct bias_term {
    const T *dout;
    int O;
    __device__ float operator()(int n, int o) const { return cu_ld(dout, (size_t)n * O + o); }
};

void cu_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                   int N, int C, int O) {
    DL_K_ASSERT(wdt == dt);
    if (N <= 0 || O <= 0) return;
    cuda_state *st = cu_state(d);
    if (C <= 0) {   /* an empty sum: the bias alone, or zeros */
        if (bias)
            CU_DISPATCH(dt, (CU_LAUNCH(cu_blocks((size_t)N * O, 256), 256, 0, st->s, k_fill_bias<T>)(
                                (T *)out, (const T *)bias, N, O)));
        else CUDA_CHECK(cudaMemsetAsync(out, 0, (size_t)N * O * dl_dtype_size(dt), st->s));
        CUDA_LAUNCHED();
        return;
    }
    /* col-major: out (O x N, ld O) = w^T (O x C from C x O, ld C) * inp (C x N, ld C) */
    gemm(d, CUBLAS_OP_T, CUBLAS_OP_N, O, N, C, w, C, inp, C, dt, 0.0f, out, dt, O, bias);
}

void cu_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                   const void *inp, const void *w, int N, int C, int O) {
    if (N <= 0) return;
    cuda_state *st = cu_state(d);
    if (dinp) {
        if (O <= 0) CUDA_CHECK(cudaMemsetAsync(dinp, 0, (size_t)N * C * dl_dtype_size(dt), st->s));
        /* col-major: dinp (C x N, ld C) = w (C x O, ld C) * dout (O x N, ld O) */
        else gemm(d, CUBLAS_OP_N, CUBLAS_OP_N, C, N, O, w, C, dout, O, dt, 0.0f, dinp, dt, C, NULL);
    }
    if (dw && O > 0 && C > 0)
        /* col-major: dw (C x O, ld C) += inp (C x N, ld C) * dout^T (N x O from O x N, ld O) */
        gemm(d, CUBLAS_OP_N, CUBLAS_OP_T, C, O, N, inp, C, dout, O, dt, 1.0f, dw, DL_F32, C, NULL);
    if (dbias && O > 0) CU_DISPATCH(dt, (cu_colsum(d, dbias, bias_term<T>{ (const T *)dout, O }, N, O)));
}
