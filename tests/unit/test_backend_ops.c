/* test_backend_ops.c — every op of kernels/kernels.h, forward and backward,
 * on every compiled backend (cpu; cuda when it opens) against the reference
 * backend (kernels/ref), in every storage dtype the backend supports
 * (dl_dev_supports).  In the spirit of ggml's tests/test-backend-ops.cpp.
 *
 * A case generates its inputs on the host from a fixed seed (so both
 * devices get the same bits), uploads them in the storage dtype, runs the
 * op, downloads every output as float.  Outputs that accumulate (dw, the
 * residual dx, scatter targets) start from the same random values on both
 * sides; outputs that are overwritten start from different garbage.
 * Per output it prints NMSE = sum (a-b)^2 / sum b^2 (b = ref) and the max
 * absolute error next to the tolerances:
 *   f32:  NMSE <= 1e-9,  max|a-b| <= 1e-4 (1 + max|b|)
 *   bf16: NMSE <= 1e-4,  max|a-b| <= 3e-2 (1 + max|b|)
 * and fails (exit 1) when either is exceeded.  Also a self-check of the
 * ref backend's bf16 path: ref bf16 against ref f32 on inputs that are
 * exactly representable in bf16 (bf16 tolerances).  Weight dtypes: every
 * (dt, wdt) pair the backend supports (dl_dev_supports_w; the CPU's f32
 * activations x bf16 weights for embedding / linear forward) against ref
 * in the same pair, and ref's (f32, bf16 weights) against its all-f32 path
 * on bf16-exact inputs (f32 tolerances).
 * Shapes: odd sizes (1, 5, 37, 67), ragged lens with an empty row, GQA,
 * all three masks, T across the CPU's 64-row chunks, att NULL and given.
 * Does not: time anything (bench/kernels_bench.c), check thread-count
 * determinism (test_kernels.c).
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "dl_test.h"
#include "kernels.h"
#include "kbase.h"

/* ------------------------------------------------------------ host data */
static uint64_t rs;
static double urand(void) {   /* splitmix64 -> [0, 1) */
    uint64_t z = (rs += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}
static int g_bf16_inputs;   /* 1: random inputs are rounded to bf16-representable values */
static float *hrand(size_t n, float lo, float hi) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) {
        p[i] = (float)(lo + (hi - lo) * urand());
        if (g_bf16_inputs) p[i] = dl_bf16_to_f32(dl_f32_to_bf16(p[i]));
    }
    return p;
}

/* ------------------------------------------------------------ device buffers */
/* up to 16 device buffers per case, freed together */
/* dt: storage dtype of activations; wdt: of the weight matrices that
 * embedding_fwd / linear_fwd(_split) read (== dt for every other op) */
typedef struct { dl_dev *d; dl_dtype dt; void *buf[16]; int nbuf; dl_dtype wdt; } ctx;
static void *dalloc(ctx *c, size_t bytes) {
    void *p = dl_dev_alloc(c->d, bytes ? bytes : 1);
    DL_K_ASSERT(p && c->nbuf < 16);
    c->buf[c->nbuf++] = p;
    return p;
}
/* host floats -> the device buffer p in dtype dt */
static void h2d_dt(ctx *c, dl_dtype dt, void *p, const float *x, size_t n) {
    if (dt == DL_F32) dl_dev_h2d(c->d, p, x, n * 4);
    else {
        uint16_t *h = malloc(2 * (n ? n : 1));
        for (size_t i = 0; i < n; i++) h[i] = dl_f32_to_bf16(x[i]);
        dl_dev_h2d(c->d, p, h, n * 2);
        free(h);
    }
}
/* host floats -> a new device buffer in dtype dt */
static void *up_dt(ctx *c, dl_dtype dt, const float *x, size_t n) {
    void *p = dalloc(c, n * dl_dtype_size(dt));
    h2d_dt(c, dt, p, x, n);
    return p;
}
static void *up(ctx *c, const float *x, size_t n) { return up_dt(c, c->dt, x, n); }   /* storage dtype */
static float *upf(ctx *c, const float *x, size_t n) { return up_dt(c, DL_F32, x, n); } /* always fp32 */
static void *upraw(ctx *c, const void *x, size_t bytes) { void *p = dalloc(c, bytes); dl_dev_h2d(c->d, p, x, bytes); return p; }
static void release(ctx *c) { for (int i = 0; i < c->nbuf; i++) dl_dev_free(c->d, c->buf[i]); c->nbuf = 0; }

/* ------------------------------------------------------------ results */
#define MAXOUT 6
typedef struct { const char *name[MAXOUT]; float *v[MAXOUT]; size_t n[MAXOUT]; int k; } res;
static void down_dt(ctx *c, res *r, const char *name, dl_dtype dt, const void *p, size_t n) {
    DL_K_ASSERT(r->k < MAXOUT);
    float *h = malloc(sizeof(float) * (n ? n : 1));
    if (dt == DL_F32) dl_dev_d2h(c->d, h, p, n * 4);
    else {
        uint16_t *b = malloc(2 * (n ? n : 1));
        dl_dev_d2h(c->d, b, p, n * 2);
        for (size_t i = 0; i < n; i++) h[i] = dl_bf16_to_f32(b[i]);
        free(b);
    }
    r->name[r->k] = name; r->v[r->k] = h; r->n[r->k] = n; r->k++;
}
static void down(ctx *c, res *r, const char *name, const void *p, size_t n) { down_dt(c, r, name, c->dt, p, n); }
static void downf(ctx *c, res *r, const char *name, const float *p, size_t n) { down_dt(c, r, name, DL_F32, p, n); }
static void res_free(res *r) { for (int i = 0; i < r->k; i++) free(r->v[i]); r->k = 0; }

/* a case: runs one op (and what it needs) on c->d in c->dt, outputs into r.
 * `garbage` differs between the two devices: the value overwritten outputs start from. */
typedef struct case_s case_s;
struct case_s {
    dl_op op;
    char label[160];
    void (*run)(ctx *c, const case_s *k, res *r, float garbage);
    int i[12];          /* shape / option integers, meaning per op */
};

/* a buffer of n values = garbage (checks that an op overwrites) */
static void *junk(ctx *c, size_t n, float garbage) {
    float *h = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) h[i] = garbage;
    void *p = up(c, h, n);
    free(h);
    return p;
}

/* ------------------------------------------------------------ op runners */
static uint32_t *rand_ids(size_t n, int V) {
    uint32_t *p = malloc(4 * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = (uint32_t)(urand() * V);
    return p;
}

static void run_embedding(ctx *c, const case_s *k, res *r, float garbage) {
    int N = k->i[0], D = k->i[1], V = k->i[2];
    float *w = hrand((size_t)V * D, -1, 1), *dout = hrand((size_t)N * D, -1, 1), *dw0 = hrand((size_t)V * D, -1, 1);
    uint32_t *ids = rand_ids(N, V);
    void *dW = up_dt(c, c->wdt, w, (size_t)V * D), *dO = junk(c, (size_t)N * D, garbage), *dG = up(c, dout, (size_t)N * D);
    uint32_t *dI = upraw(c, ids, 4 * (size_t)N);
    float *dDW = upf(c, dw0, (size_t)V * D);
    if (k->op == DL_OP_EMBEDDING_FWD) {
        dl_k_embedding_fwd(c->d, c->dt, c->wdt, dO, dI, dW, N, D);
        down(c, r, "out", dO, (size_t)N * D);
    } else {
        dl_k_embedding_bwd(c->d, c->dt, dDW, dG, dI, N, D);
        downf(c, r, "dwte", dDW, (size_t)V * D);
    }
    free(w); free(dout); free(dw0); free(ids);
}

static void run_rmsnorm(ctx *c, const case_s *k, res *r, float garbage) {
    int N = k->i[0], D = k->i[1];
    float *x = hrand((size_t)N * D, -2, 2), *w = hrand(D, 0.5f, 1.5f), *dy = hrand((size_t)N * D, -1, 1);
    float *dx0 = hrand((size_t)N * D, -1, 1), *dw0 = hrand(D, -1, 1);
    void *X = up(c, x, (size_t)N * D), *W = up(c, w, D), *Y = junk(c, (size_t)N * D, garbage);
    float *R = upf(c, x, N);   /* rstd: overwritten by the forward */
    if (k->op == DL_OP_ADD_RMSNORM_FWD) {   /* x + dy, summed into a fresh buffer, or into x itself (k->i[2]) */
        size_t nd = (size_t)N * D;
        void *B = up(c, dy, nd), *S = k->i[2] ? X : junk(c, nd, garbage);
        void *S2 = junk(c, nd, garbage), *Y2 = junk(c, nd, garbage);
        float *R2 = upf(c, x, N);
        dl_k_add(c->d, c->dt, S2, X, B, nd);   /* the two ops it fuses, on the same device: the same bits */
        dl_k_rmsnorm_fwd(c->d, c->dt, Y2, R2, S2, W, N, D, 1e-5f);
        dl_k_add_rmsnorm_fwd(c->d, c->dt, S, Y, R, X, B, W, N, D, 1e-5f);
        down(c, r, "sum", S, nd);
        down(c, r, "y", Y, nd);
        downf(c, r, "rstd", R, N);
        res u = { 0 };
        down(c, &u, "", S2, nd);
        down(c, &u, "", Y2, nd);
        downf(c, &u, "", R2, N);
        int same = 1;
        for (int o = 0; o < 3; o++) same &= !memcmp(u.v[o], r->v[r->k - 3 + o], u.n[o] * sizeof(float));
        DL_CHECK(same, "%s add_rmsnorm_fwd %s N=%d D=%d%s: the same bits as add then rmsnorm_fwd", dl_dev_describe(c->d),
                 dl_dtype_name(c->dt), N, D, k->i[2] ? " (sum aliasing a)" : "");
        res_free(&u);
        free(x); free(w); free(dy); free(dx0); free(dw0);
        return;
    }
    dl_k_rmsnorm_fwd(c->d, c->dt, Y, R, X, W, N, D, 1e-5f);
    if (k->op == DL_OP_RMSNORM_FWD) {
        down(c, r, "y", Y, (size_t)N * D);
        downf(c, r, "rstd", R, N);
    } else {
        void *DY = up(c, dy, (size_t)N * D), *DX = up(c, dx0, (size_t)N * D);
        float *DW = upf(c, dw0, D);
        dl_k_rmsnorm_bwd(c->d, c->dt, DX, DW, DY, X, W, R, N, D);
        down(c, r, "dx (accumulated)", DX, (size_t)N * D);
        downf(c, r, "dw", DW, D);
    }
    free(x); free(w); free(dy); free(dx0); free(dw0);
}

/* i: N C O bias dinp [nparts for split: O1 O2 O3 in i[5..7]] */
static void run_linear(ctx *c, const case_s *k, res *r, float garbage) {
    int N = k->i[0], C = k->i[1], O = k->i[2], bias = k->i[3], with_dinp = k->i[4];
    float *x = hrand((size_t)N * C, -1, 1), *w = hrand((size_t)O * C, -1, 1), *b = hrand(O, -1, 1);
    float *dout = hrand((size_t)N * O, -1, 1), *dw0 = hrand((size_t)O * C, -1, 1), *db0 = hrand(O, -1, 1);
    void *X = up(c, x, (size_t)N * C), *W = up_dt(c, c->wdt, w, (size_t)O * C), *Bb = bias ? up(c, b, O) : NULL;
    if (k->op == DL_OP_LINEAR_FWD) {
        void *Y = junk(c, (size_t)N * O, garbage);
        dl_k_linear_fwd(c->d, c->dt, c->wdt, Y, X, W, Bb, N, C, O);
        down(c, r, "out", Y, (size_t)N * O);
    } else if (k->op == DL_OP_LINEAR_FWD_SPLIT) {
        int np = k->i[5] ? (k->i[7] ? 3 : 2) : 1, parts[3] = { k->i[5], k->i[6], k->i[7] };
        if (np == 1) parts[0] = O;
        void *outs[3];
        static const char *nm[3] = { "out part 0", "out part 1", "out part 2" };
        for (int p = 0; p < np; p++) outs[p] = junk(c, (size_t)N * parts[p], garbage);
        dl_k_linear_fwd_split(c->d, c->dt, c->wdt, outs, parts, np, X, W, Bb, N, C);
        for (int p = 0; p < np; p++) down(c, r, nm[p], outs[p], (size_t)N * parts[p]);
    } else {
        void *G = up(c, dout, (size_t)N * O), *DI = with_dinp ? junk(c, (size_t)N * C, garbage) : NULL;
        float *DW = upf(c, dw0, (size_t)O * C), *DB = bias ? upf(c, db0, O) : NULL;
        dl_k_linear_bwd(c->d, c->dt, DI, DW, DB, G, X, W, N, C, O);
        if (DI) down(c, r, "dinp", DI, (size_t)N * C);
        downf(c, r, "dw", DW, (size_t)O * C);
        if (DB) downf(c, r, "dbias", DB, O);
    }
    free(x); free(w); free(b); free(dout); free(dw0); free(db0);
}

/* i: N H E layout inverse */
static void run_rope(ctx *c, const case_s *k, res *r, float garbage) {
    (void)garbage;
    int N = k->i[0], H = k->i[1], E = k->i[2];
    float *x = hrand((size_t)N * H * E, -1, 1);
    int32_t *pos = malloc(4 * (size_t)N);
    for (int n = 0; n < N; n++) pos[n] = n % 3 == 2 ? 5000 + n : n;   /* inside and beyond the CPU table */
    void *X = up(c, x, (size_t)N * H * E);
    int32_t *P = upraw(c, pos, 4 * (size_t)N);
    dl_k_rope(c->d, c->dt, X, P, N, H, E, 10000.0f, (dl_rope_layout)k->i[3], k->i[4]);
    down(c, r, "x", X, (size_t)N * H * E);
    free(x); free(pos);
}

/* i: B T Hq Hk E mask block use_lens keep_att */
static void run_attention(ctx *c, const case_s *k, res *r, float garbage) {
    int B = k->i[0], T = k->i[1], Hq = k->i[2], Hk = k->i[3], E = k->i[4], block = k->i[6];
    dl_attn_mask mask = (dl_attn_mask)k->i[5];
    size_t nq = (size_t)B * T * Hq * E, nk = (size_t)B * T * Hk * E, na = (size_t)B * Hq * T * T,
           nl = (size_t)B * Hq * T;
    float *q = hrand(nq, -2, 2), *kk = hrand(nk, -2, 2), *v = hrand(nk, -1, 1), *g = hrand(nq, -1, 1);
    int32_t lens[4] = { T, T / 2 + 1, 0, T - 1 };
    if (mask == DL_ATTN_BD3) {   /* lens cut each half (of L = T/2) */
        lens[0] = T / 2; lens[1] = T / 4 + 1; lens[2] = 0; lens[3] = T / 2 - 1;
    }
    void *Q = up(c, q, nq), *K = up(c, kk, nk), *V = up(c, v, nk), *O = junk(c, nq, garbage);
    float *L = dalloc(c, 4 * nl), *A = k->i[8] ? dalloc(c, 4 * na) : NULL;   /* the forward overwrites both */
    int32_t *Ln = k->i[7] ? upraw(c, lens, 4 * (size_t)B) : NULL;
    dl_k_attention_fwd(c->d, c->dt, O, L, A, Q, K, V, Ln, B, T, Hq, Hk, E, mask, block);
    if (k->op == DL_OP_ATTENTION_FWD) {
        down(c, r, "out", O, nq);
        downf(c, r, "lse", L, nl);
        if (A) downf(c, r, "att", A, na);
    } else {
        void *G = up(c, g, nq), *DQ = junk(c, nq, garbage), *DK = junk(c, nk, garbage), *DV = junk(c, nk, garbage);
        void *S = dalloc(c, dl_k_attention_bwd_scratch_bytes(c->d, B, T, Hq, Hk, E, A != NULL));
        dl_k_attention_bwd(c->d, c->dt, DQ, DK, DV, S, G, O, L, A, Q, K, V, Ln, B, T, Hq, Hk, E, mask, block);
        down(c, r, "dq", DQ, nq);
        down(c, r, "dk", DK, nk);
        down(c, r, "dv", DV, nk);
    }
    free(q); free(kk); free(v); free(g);
}

/* i: B n Tmax Hq Hk E */
static void run_attention_kv(ctx *c, const case_s *k, res *r, float garbage) {
    int B = k->i[0], n = k->i[1], Tm = k->i[2], Hq = k->i[3], Hk = k->i[4], E = k->i[5];
    size_t nq = (size_t)B * n * Hq * E, nk = (size_t)B * Tm * Hk * E;
    float *q = hrand(nq, -2, 2), *kk = hrand(nk, -2, 2), *v = hrand(nk, -1, 1);
    int32_t past[3] = { 0, Tm / 3, Tm - n };
    void *Q = up(c, q, nq), *K = up(c, kk, nk), *V = up(c, v, nk), *O = junk(c, nq, garbage);
    int32_t *P = upraw(c, past, 4 * (size_t)B);
    dl_k_attention_kv_fwd(c->d, c->dt, O, Q, K, V, P, B, n, Tm, Hq, Hk, E);
    down(c, r, "out", O, nq);
    free(q); free(kk); free(v);
}

/* i: B n Tmax Hq Hk E  (cache rows reversed: 3 rows, query row b reads cache row 2 - b) */
static void run_attention_cached(ctx *c, const case_s *k, res *r, float garbage) {
    int B = k->i[0], n = k->i[1], Tm = k->i[2], Hq = k->i[3], Hk = k->i[4], E = k->i[5];
    size_t nq = (size_t)B * n * Hq * E, nk = (size_t)3 * Tm * Hk * E;
    float *q = hrand(nq, -2, 2), *kk = hrand(nk, -2, 2), *v = hrand(nk, -1, 1);
    int32_t keys[3] = { Tm, 1, Tm / 2 }, rows[3] = { 2, 1, 0 };
    void *Q = up(c, q, nq), *K = up(c, kk, nk), *V = up(c, v, nk), *O = junk(c, nq, garbage);
    int32_t *NK = upraw(c, keys, 4 * (size_t)B), *RW = upraw(c, rows, 4 * (size_t)B);
    dl_k_attention_cached_fwd(c->d, c->dt, O, Q, K, V, RW, NK, B, n, Tm, Hq, Hk, E);
    down(c, r, "out", O, nq);
    free(q); free(kk); free(v);
}

/* i: N F */
static void run_swiglu(ctx *c, const case_s *k, res *r, float garbage) {
    size_t n = (size_t)k->i[0] * k->i[1];
    float *g = hrand(n, -6, 6), *u = hrand(n, -2, 2), *go = hrand(n, -1, 1);
    void *G = up(c, g, n), *U = up(c, u, n);
    if (k->op == DL_OP_SWIGLU_FWD) {
        void *O = junk(c, n, garbage);
        dl_k_swiglu_fwd(c->d, c->dt, O, G, U, k->i[0], k->i[1]);
        down(c, r, "out", O, n);
    } else {
        void *DO = up(c, go, n), *DG = junk(c, n, garbage), *DU = junk(c, n, garbage);
        dl_k_swiglu_bwd(c->d, c->dt, DG, DU, DO, G, U, k->i[0], k->i[1]);
        down(c, r, "dgate", DG, n);
        down(c, r, "dup", DU, n);
    }
    free(g); free(u); free(go);
}

/* i: M D N(rows of the big side) */
static void run_rows(ctx *c, const case_s *k, res *r, float garbage) {
    int M = k->i[0], D = k->i[1], N = k->i[2];
    float *big = hrand((size_t)N * D, -1, 1), *small = hrand((size_t)M * D, -1, 1);
    int32_t *idx = malloc(4 * (size_t)(M ? M : 1));
    for (int m = 0; m < M; m++) idx[m] = (int32_t)(urand() * N);
    if (M > 1) idx[M - 1] = idx[0];   /* a repeated index */
    int32_t *I = upraw(c, idx, 4 * (size_t)M);
    if (k->op == DL_OP_GATHER_ROWS) {
        void *In = up(c, big, (size_t)N * D), *O = junk(c, (size_t)M * D, garbage);
        dl_k_gather_rows(c->d, c->dt, O, In, I, M, D);
        down(c, r, "out", O, (size_t)M * D);
    } else {
        void *In = up(c, small, (size_t)M * D), *O = up(c, big, (size_t)N * D);
        dl_k_scatter_add_rows(c->d, c->dt, O, In, I, M, D);
        down(c, r, "out (accumulated)", O, (size_t)N * D);
    }
    free(big); free(small); free(idx);
}

/* i: n; add / add_inplace / scale / sumsq / convert; copy_2d: rows cols ld_src ld_dst */
static void run_elementwise(ctx *c, const case_s *k, res *r, float garbage) {
    size_t n = (size_t)k->i[0];
    float *a = hrand(n, -3, 3), *b = hrand(n, -3, 3);
    switch (k->op) {
    case DL_OP_ADD: {
        void *A = up(c, a, n), *Bv = up(c, b, n), *Y = junk(c, n, garbage);
        dl_k_add(c->d, c->dt, Y, A, Bv, n);
        down(c, r, "y", Y, n);
        dl_k_add(c->d, c->dt, A, A, Bv, n);   /* y aliases a */
        down(c, r, "y (aliasing a)", A, n);
        break;
    }
    case DL_OP_ADD_INPLACE: {
        void *A = up(c, a, n), *Bv = up(c, b, n);
        dl_k_add_inplace(c->d, c->dt, A, Bv, n);
        down(c, r, "y", A, n);
        break;
    }
    case DL_OP_SCALE: {
        float *A = upf(c, a, n);
        dl_k_scale(c->d, A, -0.37f, n);
        downf(c, r, "x", A, n);
        break;
    }
    case DL_OP_SUMSQ: {
        float *A = upf(c, a, n);
        float s = (float)dl_k_sumsq(c->d, A, n);
        r->name[r->k] = "sum"; r->v[r->k] = malloc(sizeof(float)); r->v[r->k][0] = s; r->n[r->k] = 1; r->k++;
        break;
    }
    case DL_OP_GRAD_CLIP: {   /* clip k->i[1] / 10: above and below the norm */
        float *A = upf(c, a, n);
        double *S = dalloc(c, 2 * sizeof(double)), h[2];
        dl_k_grad_clip(c->d, S, A, n, k->i[1] / 10.0);
        dl_dev_d2h(c->d, h, S, sizeof h);
        r->name[r->k] = "norm, factor"; r->v[r->k] = malloc(2 * sizeof(float));
        r->v[r->k][0] = (float)h[0]; r->v[r->k][1] = (float)h[1]; r->n[r->k] = 2; r->k++;
        break;
    }
    case DL_OP_CONVERT: {   /* f32 -> dt -> f32 */
        float *A = upf(c, a, n);
        void *X = junk(c, n, garbage);
        float *Y = upf(c, b, n);
        dl_k_convert(c->d, X, c->dt, A, DL_F32, n);
        dl_k_convert(c->d, Y, DL_F32, X, c->dt, n);
        down(c, r, "to dt", X, n);
        downf(c, r, "back to f32", Y, n);
        break;
    }
    case DL_OP_COPY_2D: {
        int rows = k->i[0], cols = k->i[1], ls = k->i[2], ldd = k->i[3];
        float *s = hrand((size_t)rows * ls, -1, 1), *d0 = hrand((size_t)rows * ldd, -1, 1);
        void *S = up(c, s, (size_t)rows * ls), *Dd = up(c, d0, (size_t)rows * ldd);
        dl_k_copy_2d(c->d, c->dt, Dd, (size_t)ldd, S, (size_t)ls, rows, cols);
        down(c, r, "dst (columns past cols untouched)", Dd, (size_t)rows * ldd);
        free(s); free(d0);
        break;
    }
    default: break;
    }
    free(a); free(b);
}

/* i: M V */
static void run_xent(ctx *c, const case_s *k, res *r, float garbage) {
    (void)garbage;
    int M = k->i[0], V = k->i[1];
    float *z = hrand((size_t)M * V, -8, 8), *dce = hrand(M, -1, 1);
    uint32_t *t = rand_ids(M, V);
    void *Z = up(c, z, (size_t)M * V);
    uint32_t *Tg = upraw(c, t, 4 * (size_t)M);
    float *CE = upf(c, dce, M);
    dl_k_softmax_xent_fwd(c->d, c->dt, CE, Z, Tg, M, V);
    if (k->op == DL_OP_XENT_FWD) {
        downf(c, r, "ce", CE, M);
        down(c, r, "probs", Z, (size_t)M * V);
    } else {
        float *G = upf(c, dce, M);
        dl_k_softmax_xent_bwd(c->d, c->dt, Z, G, Tg, M, V);
        down(c, r, "dlogits", Z, (size_t)M * V);
    }
    free(z); free(dce); free(t);
}

/* the max |a - b| / (1 + max |b|) of two host arrays */
static double rel_dist(const float *a, const float *b, size_t n) {
    double mad = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs((double)a[i] - b[i]) > mad) mad = fabs((double)a[i] - b[i]);
        if (fabs(b[i]) > mb) mb = fabs(b[i]);
    }
    return mad / (1 + mb);
}

/* i: M V vc.  The chunked loss: each (M, vc) block of the logits uploaded
 * alone, as the model's head makes it; the forward gives ce and lse, the
 * backward the whole (M, V) dlogits put together from the blocks.  Also
 * against the unchunked pair on the same device (a looser tolerance:
 * the online max rounds differently). */
static void run_xent_chunk(ctx *c, const case_s *k, res *r, float garbage) {
    (void)garbage;
    int M = k->i[0], V = k->i[1], vc = k->i[2];
    float *z = hrand((size_t)M * V, -8, 8), *dce = hrand(M, -1, 1), *blk = malloc(sizeof(float) * (size_t)M * vc);
    uint32_t *t = rand_ids(M, V);
    uint32_t *Tg = upraw(c, t, 4 * (size_t)M);
    float *CE = upf(c, dce, M), *G = upf(c, dce, M), *CE1 = upf(c, dce, M);   /* ce: overwritten */
    double *S = dalloc(c, 3 * sizeof(double) * (size_t)M);
    void *Z = up(c, z, (size_t)M * V), *B = dalloc(c, (size_t)M * vc * dl_dtype_size(c->dt));
    float *dl = malloc(sizeof(float) * (size_t)M * V);
    for (int pass = 0; pass < 2; pass++)   /* 0: forward; 1: backward (needs the forward's lse) */
        for (int v0 = 0; v0 < V; v0 += vc) {
            int n = V - v0 < vc ? V - v0 : vc;
            for (int m = 0; m < M; m++) memcpy(blk + (size_t)m * n, z + (size_t)m * V + v0, sizeof(float) * n);
            h2d_dt(c, c->dt, B, blk, (size_t)M * n);
            if (pass == 0) dl_k_xent_chunk_fwd(c->d, c->dt, S, CE, B, Tg, M, V, v0, n);
            else {
                dl_k_xent_chunk_bwd(c->d, c->dt, B, S, G, Tg, M, v0, n);
                res u = { 0 };
                down(c, &u, "", B, (size_t)M * n);
                for (int m = 0; m < M; m++) memcpy(dl + (size_t)m * V + v0, u.v[0] + (size_t)m * n, sizeof(float) * n);
                res_free(&u);
            }
        }
    downf(c, r, "ce", CE, M);
    double *lse = malloc(3 * sizeof(double) * (size_t)M);
    dl_dev_d2h(c->d, lse, S, 3 * sizeof(double) * (size_t)M);
    r->name[r->k] = "lse"; r->v[r->k] = malloc(sizeof(float) * M); r->n[r->k] = M;
    for (int m = 0; m < M; m++) r->v[r->k][m] = (float)lse[3 * (size_t)m];
    r->k++;
    r->name[r->k] = "dlogits (the blocks put together)"; r->v[r->k] = dl; r->n[r->k] = (size_t)M * V; r->k++;
    /* the unchunked pair on the same device */
    dl_k_softmax_xent_fwd(c->d, c->dt, CE1, Z, Tg, M, V);
    dl_k_softmax_xent_bwd(c->d, c->dt, Z, G, Tg, M, V);
    res u = { 0 };
    downf(c, &u, "", CE1, M);
    down(c, &u, "", Z, (size_t)M * V);
    double tol = c->dt == DL_BF16 ? 2e-2 : 1e-5, dce_ = rel_dist(r->v[0], u.v[0], M), ddl = rel_dist(dl, u.v[1], (size_t)M * V);
    DL_CHECK(dce_ <= tol && ddl <= tol, "%s xent_chunk %s M=%d V=%d vc=%d: against the unchunked pair, ce %.1e, "
             "dlogits %.1e (tol %.0e)", dl_dev_describe(c->d), dl_dtype_name(c->dt), M, V, vc, dce_, ddl, tol);
    res_free(&u);
    free(z); free(dce); free(blk); free(t); free(lse);
}

/* i: n step scale; scale 0: 0.5 from the host; 1: grad_clip's factor on
 * the device (clip 1), and the bf16 compute copy; 2: a NaN factor on the
 * device (a non-finite norm): nothing may change */
static void run_adamw(ctx *c, const case_s *k, res *r, float garbage) {
    size_t n = (size_t)k->i[0];
    float *p = hrand(n, -1, 1), *g = hrand(n, -1, 1), *m = hrand(n, -0.1f, 0.1f), *v = hrand(n, 0, 0.01f);
    float *P = upf(c, p, n), *G = upf(c, g, n), *Mm = upf(c, m, n), *Vv = upf(c, v, n);
    double *S = NULL, nan2[2] = { NAN, NAN };
    uint16_t *W = NULL;
    if (k->i[2] == 1) {
        S = dalloc(c, 2 * sizeof(double));
        dl_k_grad_clip(c->d, S, G, n, 1.0);
        W = junk(c, n, garbage);
    } else if (k->i[2] == 2) S = upraw(c, nan2, sizeof nan2);
    dl_k_adamw(c->d, P, G, Mm, Vv, n, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, k->i[1], 0.5f, S ? S + 1 : NULL, W);
    downf(c, r, "param", P, n);
    downf(c, r, "m", Mm, n);
    downf(c, r, "v", Vv, n);
    if (W) {   /* on the same device, exactly (against ref, param's f32 rounding can cross a bf16 boundary) */
        res u = { 0 };
        down_dt(c, &u, "", DL_BF16, W, n);
        float *pb = u.v[0], *pf = r->v[0];
        int same = 1;
        for (size_t i = 0; i < n; i++) same &= pb[i] == dl_bf16_to_f32(dl_f32_to_bf16(pf[i]));
        DL_CHECK(same, "%s adamw n=%zu: the bf16 copy is the rounded update", dl_dev_describe(c->d), n);
        res_free(&u);
    }
    if (k->i[2] == 2) {
        float *back = malloc(sizeof(float) * (n ? n : 1));
        dl_dev_d2h(c->d, back, P, n * sizeof(float));
        DL_CHECK(!memcmp(back, p, n * sizeof(float)), "%s adamw n=%zu: a NaN clip factor changes nothing",
                 dl_dev_describe(c->d), n);
        free(back);
    }
    free(p); free(g); free(m); free(v);
}

/* token selection: i = M V draw conf cfg top_k top_p% temperature*10 n_suppress noise_buffer.
 * Tokens and confidences come back as floats (ids < 2^24 are exact), the
 * logits after CFG + suppression too; Philox uniforms are drawn on the device. */
static void run_select(ctx *c, const case_s *k, res *r, float garbage) {
    (void)garbage;
    int M = k->i[0], V = k->i[1], rows = k->i[4] ? 2 * M : M, ns = k->i[8];
    float *l = hrand((size_t)rows * V, -4, 4);
    uint32_t sup[4] = { 0, 3, (uint32_t)V - 1, (uint32_t)V + 5 };   /* the last is out of range: ignored */
    uint64_t stream[64], base[64];
    for (int q = 0; q < M; q++) { stream[q] = 1 + q % 3; base[q] = (uint64_t)q * V + 7; }
    size_t nu = (size_t)M * V + 7;
    double *u = malloc(sizeof(double) * nu);
    for (size_t i = 0; i < nu; i++) u[i] = 0.001 + 0.998 * urand();
    dl_select_args a = { .M = M, .V = V, .logits = up_dt(c, DL_F32, l, (size_t)rows * V), .cfg = k->i[4],
                         .cfg_w1 = 1.5f, .suppress = upraw(c, sup, sizeof sup), .n_suppress = ns, .mask_id = 1,
                         .draw = (dl_sel_draw)k->i[2], .temperature = k->i[7] / 10.0, .top_k = k->i[5],
                         .top_p = k->i[6] / 100.0, .conf = (dl_sel_conf)k->i[3], .key = { 12345, 6789 }, .purpose = 3,
                         .noise_stream = upraw(c, stream, sizeof(uint64_t) * M), .noise_base = upraw(c, base, sizeof(uint64_t) * M),
                         .noise = k->i[9] ? upraw(c, u, sizeof(double) * nu) : NULL,
                         .tok = dalloc(c, 4 * (size_t)M), .confidence = dalloc(c, 8 * (size_t)M) };
    DL_K_ASSERT(M <= 64 && dl_k_select_tokens(c->d, &a) == 0);
    uint32_t tok[64];
    double conf[64];
    float tf[64], cf[64];
    dl_dev_d2h(c->d, tok, a.tok, 4 * (size_t)M);
    dl_dev_d2h(c->d, conf, a.confidence, 8 * (size_t)M);
    for (int q = 0; q < M; q++) { tf[q] = (float)tok[q]; cf[q] = (float)conf[q]; }
    r->name[r->k] = "token"; r->v[r->k] = malloc(sizeof(float) * M); memcpy(r->v[r->k], tf, sizeof(float) * M); r->n[r->k++] = M;
    r->name[r->k] = "confidence"; r->v[r->k] = malloc(sizeof(float) * M); memcpy(r->v[r->k], cf, sizeof(float) * M); r->n[r->k++] = M;
    downf(c, r, "logits", a.logits, (size_t)rows * V);
    free(l); free(u);
}

/* ------------------------------------------------------------ the cases */
#define MAXCASES 512
static case_s cases[MAXCASES];
static int ncases;
static case_s *add(dl_op op, void (*run)(ctx *, const case_s *, res *, float), const int *iv, int ni,
                   const char *fmt, ...) {
    DL_K_ASSERT(ncases < MAXCASES && ni <= 12);
    case_s *k = &cases[ncases++];
    memset(k, 0, sizeof *k);
    k->op = op; k->run = run;
    for (int i = 0; i < ni; i++) k->i[i] = iv[i];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(k->label, sizeof k->label, fmt, ap);
    va_end(ap);
    return k;
}
#define ADD(op, run, fmt, ...) do { const int iv_[] = { __VA_ARGS__ }; \
    add(op, run, iv_, (int)(sizeof iv_ / sizeof *iv_), fmt, __VA_ARGS__); } while (0)

static const char *mname(int m) {
    return m == DL_ATTN_BIDIR ? "bidir" : m == DL_ATTN_CAUSAL ? "causal" : m == DL_ATTN_BLOCK ? "block" : "bd3";
}

static void build_cases(void) {
    static const int nd[][3] = { { 1, 1, 1 }, { 7, 5, 11 }, { 37, 67, 50 } };   /* N D V */
    for (int s = 0; s < 3; s++) {
        ADD(DL_OP_EMBEDDING_FWD, run_embedding, "N=%d D=%d V=%d", nd[s][0], nd[s][1], nd[s][2]);
        ADD(DL_OP_EMBEDDING_BWD, run_embedding, "N=%d D=%d V=%d (repeated ids)", nd[s][0], nd[s][1], nd[s][2]);
        ADD(DL_OP_RMSNORM_FWD, run_rmsnorm, "N=%d D=%d", nd[s][0], nd[s][1]);
        ADD(DL_OP_RMSNORM_BWD, run_rmsnorm, "N=%d D=%d", nd[s][0], nd[s][1]);
        for (int alias = 0; alias < 2; alias++)
            ADD(DL_OP_ADD_RMSNORM_FWD, run_rmsnorm, "N=%d D=%d sum aliasing a=%d", nd[s][0], nd[s][1], alias);
        ADD(DL_OP_SWIGLU_FWD, run_swiglu, "N=%d F=%d", nd[s][0], nd[s][1]);
        ADD(DL_OP_SWIGLU_BWD, run_swiglu, "N=%d F=%d", nd[s][0], nd[s][1]);
        ADD(DL_OP_GATHER_ROWS, run_rows, "M=%d D=%d of N=%d", nd[s][0], nd[s][1], nd[s][2]);
        ADD(DL_OP_SCATTER_ADD_ROWS, run_rows, "M=%d D=%d into N=%d (a repeated index)", nd[s][0], nd[s][1], nd[s][2]);
        ADD(DL_OP_XENT_FWD, run_xent, "M=%d V=%d", nd[s][0], nd[s][2]);
        ADD(DL_OP_XENT_BWD, run_xent, "M=%d V=%d", nd[s][0], nd[s][2]);
    }
    /* many rows and repeated indices: CUDA's row scatter (kernels/cuda/rowscatter.h) works in tiles of 256 */
    ADD(DL_OP_EMBEDDING_BWD, run_embedding, "N=%d D=%d V=%d (repeated ids, several tiles)", 1000, 67, 50);
    ADD(DL_OP_EMBEDDING_BWD, run_embedding, "N=%d D=%d V=%d (several ids per CUDA block, interleaved)", 1500, 9, 3000);
    ADD(DL_OP_SCATTER_ADD_ROWS, run_rows, "M=%d D=%d into N=%d (repeated indices, several tiles)", 700, 33, 80);
    /* many rows: CUDA sums dw / dbias over rows in chunks (kernels/cuda/colsum.h), the last one ragged */
    ADD(DL_OP_RMSNORM_BWD, run_rmsnorm, "N=%d D=%d (row chunks)", 1000, 67);
    ADD(DL_OP_LINEAR_BWD, run_linear, "N=%d C=%d O=%d bias=%d dinp=%d (row chunks)", 9000, 5, 40, 1, 0);
    /* M V vc: one chunk, chunks that divide V, a ragged last chunk, vc 1 */
    static const int xc[][3] = { { 3, 11, 11 }, { 7, 50, 10 }, { 37, 300, 64 }, { 5, 1000, 333 }, { 2, 9, 1 } };
    for (int s = 0; s < 5; s++) {
        ADD(DL_OP_XENT_CHUNK_FWD, run_xent_chunk, "M=%d V=%d vc=%d", xc[s][0], xc[s][1], xc[s][2]);
        ADD(DL_OP_XENT_CHUNK_BWD, run_xent_chunk, "M=%d V=%d vc=%d", xc[s][0], xc[s][1], xc[s][2]);
    }
    static const int lin[][3] = { { 1, 1, 1 }, { 7, 5, 3 }, { 37, 67, 19 }, { 70, 33, 130 } };   /* N C O */
    for (int s = 0; s < 4; s++)
        for (int bias = 0; bias < 2; bias++) {
            ADD(DL_OP_LINEAR_FWD, run_linear, "N=%d C=%d O=%d bias=%d", lin[s][0], lin[s][1], lin[s][2], bias);
            for (int dinp = 0; dinp < 2; dinp++)
                ADD(DL_OP_LINEAR_BWD, run_linear, "N=%d C=%d O=%d bias=%d dinp=%d", lin[s][0], lin[s][1], lin[s][2],
                    bias, dinp);
        }
    /* C large: the CPU's bf16-weight path cuts w into 16-row blocks (4 here, the last ragged) */
    ADD(DL_OP_LINEAR_FWD, run_linear, "N=%d C=%d O=%d bias=%d (several weight row blocks)", 3, 4100, 50, 1);
    ADD(DL_OP_LINEAR_FWD_SPLIT, run_linear, "N=%d C=%d O=%d bias=%d dinp=%d (unused) parts %d+%d+%d, several row blocks", 2, 4100, 40, 1, 1, 24, 8, 8);
    ADD(DL_OP_LINEAR_FWD_SPLIT, run_linear, "N=%d C=%d O=%d bias=%d dinp=%d (unused) q|k|v parts %d+%d+%d", 37, 67, 32, 1, 1, 16, 8, 8);
    ADD(DL_OP_LINEAR_FWD_SPLIT, run_linear, "N=%d C=%d O=%d bias=%d dinp=%d (unused) gate|up parts %d+%d", 5, 13, 22, 0, 1, 11, 11);
    ADD(DL_OP_LINEAR_FWD_SPLIT, run_linear, "N=%d C=%d O=%d bias=%d dinp=%d (unused) one part", 3, 7, 9, 1, 1, 0, 0, 0);
    for (int lay = 0; lay < 2; lay++)
        for (int inv = 0; inv < 2; inv++) {
            ADD(DL_OP_ROPE, run_rope, "N=%d H=%d E=%d layout=%d (1 pairs) inverse=%d", 9, 3, 8, lay, inv);
            ADD(DL_OP_ROPE, run_rope, "N=%d H=%d E=%d layout=%d (1 pairs) inverse=%d", 1, 1, 2, lay, inv);
        }
    /* attention: B T Hq Hk E, block; masks x lens x att */
    /* head dims 16, 64 and 128, which bf16 runs on CUDA's tensor-core twin
     * (kernels/cuda/attention_mma.cu) when att = 0: several 64-row tiles with
     * a ragged last one, and T = 1 (one partial tile) */
    static const int at[][6] = { { 1, 1, 1, 1, 2, 1 }, { 2, 5, 4, 2, 4, 2 }, { 3, 67, 4, 1, 8, 16 },
                                 { 2, 130, 2, 2, 16, 48 }, { 2, 150, 4, 2, 64, 40 }, { 1, 70, 2, 1, 128, 32 },
                                 { 1, 1, 1, 1, 16, 1 } };
    for (int s = 0; s < 7; s++)
        for (int mk = 0; mk < 3; mk++)
            for (int ln = 0; ln < 2; ln++)
                for (int ka = 0; ka < 2; ka++) {
                    const int *a = at[s];
                    ADD(DL_OP_ATTENTION_FWD, run_attention, "B=%d T=%d Hq=%d Hk=%d E=%d mask=%d block=%d lens=%d att=%d",
                        a[0], a[1], a[2], a[3], a[4], mk, a[5], ln, ka);
                    ADD(DL_OP_ATTENTION_BWD, run_attention, "B=%d T=%d Hq=%d Hk=%d E=%d mask=%d block=%d lens=%d att=%d",
                        a[0], a[1], a[2], a[3], a[4], mk, a[5], ln, ka);
                }
    /* BD3LM's x_t (+) x_0 mask: T = 2L even; blocks that divide L and one that does not */
    static const int bd[][6] = { { 2, 2, 2, 1, 2, 1 }, { 2, 12, 4, 2, 4, 2 }, { 3, 20, 2, 1, 8, 4 },
                                 { 2, 130, 2, 2, 16, 16 }, { 2, 140, 4, 2, 64, 24 } };
    for (int s = 0; s < 5; s++)
        for (int ln = 0; ln < 2; ln++)
            for (int ka = 0; ka < 2; ka++) {
                const int *a = bd[s];
                ADD(DL_OP_ATTENTION_FWD, run_attention, "B=%d T=%d Hq=%d Hk=%d E=%d mask=%d block=%d lens=%d att=%d",
                    a[0], a[1], a[2], a[3], a[4], DL_ATTN_BD3, a[5], ln, ka);
                ADD(DL_OP_ATTENTION_BWD, run_attention, "B=%d T=%d Hq=%d Hk=%d E=%d mask=%d block=%d lens=%d att=%d",
                    a[0], a[1], a[2], a[3], a[4], DL_ATTN_BD3, a[5], ln, ka);
            }
    ADD(DL_OP_ATTENTION_KV_FWD, run_attention_kv, "B=%d n=%d Tmax=%d Hq=%d Hk=%d E=%d", 3, 4, 40, 4, 2, 8);
    ADD(DL_OP_ATTENTION_KV_FWD, run_attention_kv, "B=%d n=%d Tmax=%d Hq=%d Hk=%d E=%d", 2, 1, 300, 2, 2, 16);
    ADD(DL_OP_ATTENTION_CACHED_FWD, run_attention_cached, "B=%d n=%d Tmax=%d Hq=%d Hk=%d E=%d", 3, 5, 40, 4, 2, 8);
    ADD(DL_OP_ATTENTION_CACHED_FWD, run_attention_cached, "B=%d n=%d Tmax=%d Hq=%d Hk=%d E=%d", 2, 1, 300, 2, 2, 16);
    static const int ne[] = { 1, 37, 70001 };
    for (int s = 0; s < 3; s++) {
        ADD(DL_OP_ADD, run_elementwise, "n=%d", ne[s]);
        ADD(DL_OP_ADD_INPLACE, run_elementwise, "n=%d", ne[s]);
        ADD(DL_OP_SCALE, run_elementwise, "n=%d", ne[s]);
        ADD(DL_OP_SUMSQ, run_elementwise, "n=%d", ne[s]);
        ADD(DL_OP_CONVERT, run_elementwise, "n=%d", ne[s]);
        for (int sc = 0; sc < 3; sc++) {
            const int iv[] = { ne[s], 1 + 2 * s, sc };
            add(DL_OP_ADAMW, run_adamw, iv, 3, "n=%d step=%d scale %s", ne[s], 1 + 2 * s,
                sc == 0 ? "0.5 (host)" : sc == 1 ? "grad_clip's (device) + bf16 copy" : "NaN (device)");
        }
        for (int clip = 1; clip <= 20000; clip *= 100)
            ADD(DL_OP_GRAD_CLIP, run_elementwise, "n=%d clip=%d/10", ne[s], clip);
    }
    ADD(DL_OP_COPY_2D, run_elementwise, "rows=%d cols=%d ld_src=%d ld_dst=%d", 7, 5, 13, 6);
    ADD(DL_OP_COPY_2D, run_elementwise, "rows=%d cols=%d ld_src=%d ld_dst=%d", 1, 1, 1, 1);
    /* token selection: M V draw conf cfg top_k top_p% T*10 n_suppress noise_buffer */
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 5, 50, 0, 1, 0, 0, 100, 0, 3, 0);
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 7, 97, 1, 3, 1, 10, 90, 7, 4, 0);
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 7, 97, 1, 4, 0, 0, 80, 10, 0, 1);
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 33, 300, 2, 2, 0, 40, 95, 8, 2, 0);
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 4, 1000, 2, 2, 0, 0, 100, 12, 1, 1);
    /* draw 3 = DL_SEL_DREAM (Dream's sample_tokens): filters at T = 0 shape the confidence */
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 9, 97, 3, 4, 0, 0, 95, 0, 2, 0);
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 9, 97, 3, 3, 1, 10, 90, 2, 3, 0);
    ADD(DL_OP_SELECT_TOKENS, run_select, "M=%d V=%d draw=%d conf=%d cfg=%d top_k=%d top_p=%d%% T*10=%d suppress=%d noise_buf=%d", 5, 300, 3, 1, 0, 7, 100, 10, 0, 1);
}

/* attention labels carry the mask as a number: print its name instead */
static void label_of(const case_s *k, char *out, size_t n) {
    if (k->op == DL_OP_ATTENTION_FWD || k->op == DL_OP_ATTENTION_BWD) {
        const int *a = k->i;
        snprintf(out, n, "B=%d T=%d Hq=%d Hk=%d E=%d %s%s%.0d lens=%s att=%s", a[0], a[1], a[2], a[3], a[4],
                 mname(a[5]), a[5] >= DL_ATTN_BLOCK ? " block=" : "", a[5] >= DL_ATTN_BLOCK ? a[6] : 0,
                 a[7] ? "ragged" : "NULL", a[8] ? "given" : "NULL");
    } else snprintf(out, n, "%s", k->label);
}

/* ------------------------------------------------------------ compare */
static int compare(const char *backend, dl_dtype dt, dl_dtype wdt, const case_s *k, const res *a, const res *b) {
    int ok = a->k == b->k;
    char lab[200];
    label_of(k, lab, sizeof lab);
    const double nmse_tol = dt == DL_BF16 ? 1e-4 : 1e-9, abs_rel = dt == DL_BF16 ? 3e-2 : 1e-4;
    double nmse_tol_x = 1;   /* 0: the bits must be the reference's */
    for (int o = 0; o < a->k && o < b->k; o++) {
        double num = 0, den = 0, mad = 0, mref = 0;
        int finite = 1;
        for (size_t i = 0; i < b->n[o]; i++) {
            double x = a->v[o][i], y = b->v[o][i];
            if (isinf(y) && x == y) continue;   /* lse of a query with no visible key */
            if (!isfinite(x) || !isfinite(y)) { finite = 0; continue; }
            num += (x - y) * (x - y); den += y * y;
            if (fabs(x - y) > mad) mad = fabs(x - y);
            if (fabs(y) > mref) mref = fabs(y);
        }
        double nmse = den > 0 ? num / den : num, mtol = abs_rel * (1 + mref);
        /* a repeated index adds its rows in order: in f32 every backend gives the reference's bits */
        if (dt == DL_F32 && (k->op == DL_OP_EMBEDDING_BWD || k->op == DL_OP_SCATTER_ADD_ROWS)) nmse_tol_x = 0;
        int okv = finite && a->n[o] == b->n[o] && nmse <= nmse_tol * nmse_tol_x && mad <= mtol * nmse_tol_x;
        DL_CHECK(okv, "%s %s %s%s%s [%s] %s: nmse %.2e (tol %.0e) max|d| %.2e (tol %.2e)", backend,
                 dl_op_name(k->op), dl_dtype_name(dt), wdt != dt ? " x weights " : "", wdt != dt ? dl_dtype_name(wdt) : "", lab, a->name[o], nmse, nmse_tol, mad, mtol);
        ok &= okv;
    }
    return ok;
}

/* d in (dt, wdt) against ref in (ref_dt, ref_wdt); tolerances of dt */
static void run_case(dl_dev *d, dl_dtype dt, dl_dtype wdt, dl_dev *ref, dl_dtype ref_dt, dl_dtype ref_wdt,
                     const case_s *k, const char *tag) {
    res ra = { 0 }, rb = { 0 };
    ctx ca = { d, dt, { 0 }, 0, wdt }, cb = { ref, ref_dt, { 0 }, 0, ref_wdt };
    rs = 0x1234567ull + (uint64_t)(k - cases) * 7919u;
    k->run(&ca, k, &ra, 7.0f);
    rs = 0x1234567ull + (uint64_t)(k - cases) * 7919u;
    k->run(&cb, k, &rb, -3.0f);
    compare(tag, dt, wdt, k, &ra, &rb);
    release(&ca); release(&cb);
    res_free(&ra); res_free(&rb);
}

int main(void) {
    char err[200];
    dl_dev *ref = NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);   /* a kernel that aborts (CUDA_CHECK) must not take the lines before it */
    if (dl_dev_open(&ref, DL_DEV_REF, 0, err, sizeof err)) { printf("not ok - open ref: %s\n", err); return 1; }
    build_cases();
    /* DLLM_OPS_ONLY=OP (a dl_op_name) runs that op's cases alone, and
     * DLLM_OPS_BACKEND=cuda|cpu one backend without ref's self-checks:
     * tests/cuda/check.sh runs the CUDA cases op by op, so that a kernel
     * that aborts loses only its own op.  DLLM_OPS_LIST=1 prints the op
     * names and exits. */
    const char *only = getenv("DLLM_OPS_ONLY"), *only_be = getenv("DLLM_OPS_BACKEND");
    if (only && !*only) only = NULL;   /* set but empty: every op */
    if (getenv("DLLM_OPS_LIST")) {
        for (int op = 0; op < DL_OP_COUNT; op++)
            for (int i = 0; i < ncases; i++)
                if (cases[i].op == (dl_op)op) { printf("%s\n", dl_op_name((dl_op)op)); break; }
        return 0;
    }
    if (only) {
        int n = 0;
        for (int i = 0; i < ncases; i++)
            if (!strcmp(dl_op_name(cases[i].op), only)) cases[n++] = cases[i];
        ncases = n;
    }
#ifdef DL_OPS_EMU   /* tests/cuda/emu's build: the CUDA backend emulated on the CPU, alone */
    if (!only_be) only_be = "cuda";
    static const char *kname[] = { "cpu", "cuda-emu" };
#else
    static const char *kname[] = { "cpu", "cuda" };
#endif
    static const dl_dev_kind kinds[] = { DL_DEV_CPU, DL_DEV_CUDA };
    for (size_t b = 0; b < sizeof kinds / sizeof *kinds; b++) {
        if (only_be && strncmp(only_be, kname[b], strlen(only_be))) continue;
        dl_dev *d = NULL;
        if (dl_dev_open(&d, kinds[b], 0, err, sizeof err)) {
            printf("skip - %s backend: %s\n", kname[b], err);
            continue;
        }
        printf("# %s against %s\n", dl_dev_describe(d), dl_dev_describe(ref));
        for (int dt = 0; dt < DL_NDTYPES; dt++)
            for (int wdt = 0; wdt < DL_NDTYPES; wdt++) {
                int ran = 0;
                g_bf16_inputs = 0;
                for (int i = 0; i < ncases; i++)
                    if (dl_dev_supports_w(d, cases[i].op, (dl_dtype)dt, (dl_dtype)wdt)) {
                        run_case(d, (dl_dtype)dt, (dl_dtype)wdt, ref, (dl_dtype)dt, (dl_dtype)wdt, &cases[i], kname[b]);
                        ran++;
                    }
                printf("# %s %s, weights %s: %d cases\n", kname[b], dl_dtype_name((dl_dtype)dt),
                       dl_dtype_name((dl_dtype)wdt), ran);
            }
        dl_dev_close(d);
    }
    if (only_be) {
        dl_dev_close(ref);
        return dl_test_end();
    }
    /* the ref backend's bf16 path against its f32 path on bf16-exact inputs */
    g_bf16_inputs = 1;
    for (int i = 0; i < ncases; i++)
        if (dl_dev_supports(ref, cases[i].op, DL_BF16))
            run_case(ref, DL_BF16, DL_BF16, ref, DL_F32, DL_F32, &cases[i], "ref-bf16-vs-f32");
    /* bf16 weights with f32 activations against f32 weights holding the same
     * (bf16-exact) values: f32 tolerances, the widening is exact */
    for (int i = 0; i < ncases; i++)
        if (dl_dev_supports_w(ref, cases[i].op, DL_F32, DL_BF16) && cases[i].op != DL_OP_LINEAR_BWD)
            run_case(ref, DL_F32, DL_BF16, ref, DL_F32, DL_F32, &cases[i], "ref-bf16w-vs-f32");
    dl_dev_close(ref);
    return dl_test_end();
}
