/* test_kernels.c — every CPU kernel of kernels/kernels.h against a
 * finite-difference gradient and/or a direct float64 reference.
 *
 * Gradient checks: a scalar loss L = sum r . out (r random, fixed) in
 * float64; the numeric gradient is the central difference
 * (L(x+h) - L(x-h)) / (x+h - x-h) with h = 1e-2 on float32 inputs, compared
 * to the backward op with dl_tcheck (|a-b| <= atol + rtol |ref|).  The
 * truncation error is O(h^2 f''') ~ 1e-5 and the float32 rounding of L over
 * 2h ~ 1e-5 at these sizes, hence atol 2e-3, rtol 1e-2.
 * Also: attention against a float64 reference on a shape that crosses the
 * 64-row chunks, RoPE invariants (norm, inverse, llama2.c permutation),
 * cross-entropy against a direct log-softmax, AdamW against a hand
 * computation and PyTorch's numbers, OpenBLAS vs plain-C GEMM on odd shapes,
 * bit-identical results across thread counts where the kernels promise it.
 * The finite-difference checks run on the CPU backend and again on the
 * reference backend (kernels/ref).  Every op of every backend against ref,
 * in every dtype: tests/unit/test_backend_ops.c.
 * Small shapes: the whole file runs in well under a second.
 */
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include "dl_test.h"
#include "kernels.h"
#include "cpu/cpu.h"

/* ------------------------------------------------------------ helpers */
static uint64_t rng_s = 0x9E3779B97F4A7C15ull;
static double urand(void) {   /* splitmix64 -> [0, 1) */
    uint64_t z = (rng_s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}
static float *frand(size_t n, float lo, float hi) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    for (size_t i = 0; i < n; i++) p[i] = (float)(lo + (hi - lo) * urand());
    return p;
}
static float *fzero(size_t n) { return calloc(n ? n : 1, sizeof(float)); }
static float *fdup(const float *x, size_t n) { float *p = malloc(sizeof(float) * (n ? n : 1)); memcpy(p, x, sizeof(float) * n); return p; }
static double dotr(const float *r, const float *x, size_t n) {
    double s = 0; for (size_t i = 0; i < n; i++) s += (double)r[i] * x[i]; return s;
}

#define FD_H 1e-2f
#define ATOL 2e-3f
#define RTOL 1e-2f

typedef double (*loss_fn)(void *ctx);
/* numeric dL/dx for every element of x (x is an input the loss reads) */
static void fd_grad(loss_fn f, void *ctx, float *x, size_t n, float *g) {
    for (size_t i = 0; i < n; i++) {
        float s = x[i], xp = s + FD_H, xm = s - FD_H;
        x[i] = xp; double lp = f(ctx);
        x[i] = xm; double lm = f(ctx);
        x[i] = s;
        g[i] = (float)((lp - lm) / ((double)xp - xm));
    }
}
static void fd_check(const char *name, loss_fn f, void *ctx, float *x, size_t n, const float *analytic) {
    float *g = fzero(n);
    fd_grad(f, ctx, x, n, g);
    dl_tcheck(name, analytic, g, n, ATOL, RTOL, 1e-4);
    free(g);
}
static int same_bits(const float *a, const float *b, size_t n) { return memcmp(a, b, sizeof(float) * n) == 0; }

static dl_dev *D, *D1, *D3;   /* default threads, 1 thread, 3 threads */

/* ------------------------------------------------------------ device */
static void test_dev(void) {
    char err[128];
    DL_CHECK(dl_dev_kind_of(D) == DL_DEV_CPU && strncmp(dl_dev_describe(D), "cpu (", 5) == 0,
             "dev: describe \"%s\"", dl_dev_describe(D));
    dl_dev *x = NULL;
    DL_CHECK(dl_dev_open(&x, DL_DEV_CUDA, 0, err, sizeof err) == -4 && !x && err[0], "dev: CUDA refused (%s)", err);
    unsigned char *p = dl_dev_alloc(D, 1000);
    int zero = 1; for (int i = 0; i < 1000; i++) zero &= p[i] == 0;
    DL_CHECK(p && ((uintptr_t)p % 64) == 0 && zero, "dev: alloc 64-byte aligned and zeroed");
    unsigned char src[1000], back[1000];
    for (int i = 0; i < 1000; i++) src[i] = (unsigned char)(i * 7);
    dl_dev_h2d(D, p, src, 1000);
    unsigned char *q = dl_dev_alloc(D, 1000);
    dl_dev_d2d(D, q, p, 1000);
    dl_dev_d2h(D, back, q, 1000);
    DL_CHECK(!memcmp(src, back, 1000), "dev: h2d/d2d/d2h round trip");
    dl_dev_memset0(D, q, 1000);
    zero = 1; for (int i = 0; i < 1000; i++) zero &= q[i] == 0;
    DL_CHECK(zero, "dev: memset0");
    dl_dev_free(D, p); dl_dev_free(D, q);
    dl_dev_sync(D);
}

/* ------------------------------------------------------------ cpu_expf */
static void test_expf(void) {
    double worst = 0;
    for (float x = -87.0f; x < 88.0f; x += 0.00731f) {
        double r = exp((double)x), e = fabs(cpu_expf(x) - r) / r;
        if (e > worst) worst = e;
    }
    DL_CHECK(worst < 1.5e-7, "cpu_expf max relative error on [-87, 88] = %.3g", worst);
    DL_CHECK(cpu_expf(0.0f) == 1.0f && cpu_expf(-INFINITY) == 0.0f && cpu_expf(-1e30f) == 0.0f &&
             cpu_expf(-89.0f) == 0.0f && isinf(cpu_expf(INFINITY)) && isinf(cpu_expf(1e30f)) && isnan(cpu_expf(NAN)),
             "cpu_expf edges: 0, -inf, -1e30, -89, +inf, 1e30, NaN");
}

/* ------------------------------------------------------------ GEMM */
static void ref_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                     const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += (double)(ta ? A[(size_t)k * lda + i] : A[(size_t)i * lda + k]) *
                     (tb ? B[(size_t)j * ldb + k] : B[(size_t)k * ldb + j]);
            float c = beta == 0.0f ? 0.0f : beta * C[(size_t)i * ldc + j];
            C[(size_t)i * ldc + j] = (float)(alpha * s + c);
        }
}

static void test_gemm(void) {
    static const int shapes[][3] = { {1, 1, 1}, {3, 5, 7}, {17, 33, 9}, {65, 1, 130}, {1, 70, 300},
                                     {37, 129, 257}, {200, 19, 65}, {5, 300, 2} };
    int blas = dl_dev_cpu_blas(D, -1);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int tt = 0; tt < 4; tt++) {
            int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2], ta = tt & 1, tb = tt >> 1;
            int lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
            float *A = frand((size_t)(ta ? K : M) * lda, -1, 1), *B = frand((size_t)(tb ? N : K) * ldb, -1, 1);
            float *C0 = frand((size_t)M * ldc, -1, 1);
            float alpha = 0.75f, beta = (s % 3 == 0) ? 0.0f : (s % 3 == 1 ? 1.0f : -0.5f);
            if (beta == 0.0f)   /* NaN in C must not leak through beta = 0 */
                for (int i = 0; i < M; i++) for (int j = i % 3; j < N; j += 3) C0[(size_t)i * ldc + j] = NAN;
            float *Cr = fdup(C0, (size_t)M * ldc), *Cp = fdup(C0, (size_t)M * ldc);
            float *Cb = fdup(C0, (size_t)M * ldc), *Cpar = fdup(C0, (size_t)M * ldc);
            ref_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cr, ldc);
            cpu_gemm_plain(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cp, ldc);
            char nm[96];
            snprintf(nm, sizeof nm, "gemm plain %c%c %dx%dx%d beta %g", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, beta);
            float tol = 1e-5f * sqrtf((float)K);
            dl_tcheck(nm, Cp, Cr, (size_t)M * ldc, tol, tol, 1e-10);
            if (blas) {
                cpu_gemm_serial(D, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cb, ldc);
                snprintf(nm, sizeof nm, "gemm OpenBLAS vs plain %c%c %dx%dx%d", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
                dl_tcheck(nm, Cb, Cp, (size_t)M * ldc, tol, tol, 1e-10);
            }
            cpu_gemm(D, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, Cpar, ldc);
            snprintf(nm, sizeof nm, "gemm parallel panels %c%c %dx%dx%d", ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K);
            dl_tcheck(nm, Cpar, Cr, (size_t)M * ldc, tol, tol, 1e-10);
            free(A); free(B); free(C0); free(Cr); free(Cp); free(Cb); free(Cpar);
        }
}

/* ------------------------------------------------------------ embedding / gather */
typedef struct { const uint32_t *ids; const int32_t *idx; float *w, *out, *r; int N, D; } emb_ctx;
static double emb_loss(void *c_) {
    emb_ctx *c = c_;
    dl_k_embedding_fwd(D, DL_F32, DL_F32, c->out, c->ids, c->w, c->N, c->D);
    return dotr(c->r, c->out, (size_t)c->N * c->D);
}
static double gather_loss(void *c_) {
    emb_ctx *c = c_;
    dl_k_gather_rows(D, DL_F32, c->out, c->w, c->idx, c->N, c->D);
    return dotr(c->r, c->out, (size_t)c->N * c->D);
}

static void test_embedding(void) {
    enum { V = 7, N = 9, DD = 70 };     /* D = 70 crosses a 64-column slice */
    uint32_t ids[N] = { 3, 1, 3, 6, 0, 3, 1, 5, 3 };
    int32_t idx[N] = { 3, 1, 3, 6, 0, 3, 1, 5, 3 };
    float *w = frand((size_t)V * DD, -1, 1), *r = frand((size_t)N * DD, -1, 1), *out = fzero((size_t)N * DD);
    emb_ctx c = { ids, idx, w, out, r, N, DD };
    emb_loss(&c);
    int okf = 1;
    for (int n = 0; n < N; n++) okf &= !memcmp(out + n * DD, w + ids[n] * DD, sizeof(float) * DD);
    DL_CHECK(okf, "embedding fwd copies rows");
    float *dw = frand((size_t)V * DD, -1, 1), *dw0 = fdup(dw, (size_t)V * DD);
    dl_k_embedding_bwd(D, DL_F32, dw, r, ids, N, DD);
    for (int i = 0; i < V * DD; i++) dw[i] -= dw0[i];   /* accumulates */
    fd_check("embedding bwd vs finite differences (repeated ids)", emb_loss, &c, w, (size_t)V * DD, dw);
    /* gather / scatter_add are the same pair on int32 indices */
    float *dg = fzero((size_t)V * DD);
    dl_k_scatter_add_rows(D, DL_F32, dg, r, idx, N, DD);
    fd_check("gather_rows / scatter_add_rows vs finite differences", gather_loss, &c, w, (size_t)V * DD, dg);
    /* determinism across thread counts */
    float *a1 = fzero((size_t)V * DD), *a3 = fzero((size_t)V * DD);
    dl_k_embedding_bwd(D1, DL_F32, a1, r, ids, N, DD);
    dl_k_embedding_bwd(D3, DL_F32, a3, r, ids, N, DD);
    DL_CHECK(same_bits(a1, a3, (size_t)V * DD), "embedding bwd: 1 and 3 threads bit-identical");
    memset(a1, 0, sizeof(float) * V * DD); memset(a3, 0, sizeof(float) * V * DD);
    dl_k_scatter_add_rows(D1, DL_F32, a1, r, idx, N, DD);
    dl_k_scatter_add_rows(D3, DL_F32, a3, r, idx, N, DD);
    DL_CHECK(same_bits(a1, a3, (size_t)V * DD), "scatter_add_rows: 1 and 3 threads bit-identical");
    free(w); free(r); free(out); free(dw); free(dw0); free(dg); free(a1); free(a3);
}

/* ------------------------------------------------------------ RMSNorm */
typedef struct { float *x, *w, *y, *rstd, *r; int N, D; float eps; } rms_ctx;
static double rms_loss(void *c_) {
    rms_ctx *c = c_;
    dl_k_rmsnorm_fwd(D, DL_F32, c->y, c->rstd, c->x, c->w, c->N, c->D, c->eps);
    return dotr(c->r, c->y, (size_t)c->N * c->D);
}

static void test_rmsnorm(void) {
    enum { N = 4, DD = 67 };
    rms_ctx c = { frand(N * DD, -2, 2), frand(DD, 0.5, 1.5), fzero(N * DD), fzero(N), frand(N * DD, -1, 1), N, DD, 1e-5f };
    rms_loss(&c);
    float *ref = fzero(N * DD);
    for (int n = 0; n < N; n++) {
        double ss = 0; for (int j = 0; j < DD; j++) ss += (double)c.x[n * DD + j] * c.x[n * DD + j];
        double rs = 1 / sqrt(ss / DD + 1e-5);
        for (int j = 0; j < DD; j++) ref[n * DD + j] = (float)(c.w[j] * c.x[n * DD + j] * rs);
    }
    dl_tcheck("rmsnorm fwd vs float64", c.y, ref, N * DD, 1e-6f, 1e-5f, 1e-10);
    float *dx = frand(N * DD, -1, 1), *dx0 = fdup(dx, N * DD), *dw = frand(DD, -1, 1), *dw0 = fdup(dw, DD);
    dl_k_rmsnorm_bwd(D, DL_F32, dx, dw, c.r, c.x, c.w, c.rstd, N, DD);
    for (int i = 0; i < N * DD; i++) dx[i] -= dx0[i];
    for (int i = 0; i < DD; i++) dw[i] -= dw0[i];
    fd_check("rmsnorm bwd dx (accumulated) vs finite differences", rms_loss, &c, c.x, N * DD, dx);
    fd_check("rmsnorm bwd dw (accumulated) vs finite differences", rms_loss, &c, c.w, DD, dw);
    float *a1 = fzero(N * DD), *a3 = fzero(N * DD), *w1 = fzero(DD), *w3 = fzero(DD);
    dl_k_rmsnorm_bwd(D1, DL_F32, a1, w1, c.r, c.x, c.w, c.rstd, N, DD);
    dl_k_rmsnorm_bwd(D3, DL_F32, a3, w3, c.r, c.x, c.w, c.rstd, N, DD);
    DL_CHECK(same_bits(a1, a3, N * DD) && same_bits(w1, w3, DD), "rmsnorm bwd: 1 and 3 threads bit-identical");
    free(c.x); free(c.w); free(c.y); free(c.rstd); free(c.r); free(ref);
    free(dx); free(dx0); free(dw); free(dw0); free(a1); free(a3); free(w1); free(w3);
}

/* ------------------------------------------------------------ linear */
typedef struct { float *inp, *w, *b, *out, *r; int N, C, O; } lin_ctx;
static double lin_loss(void *c_) {
    lin_ctx *c = c_;
    dl_k_linear_fwd(D, DL_F32, DL_F32, c->out, c->inp, c->w, c->b, c->N, c->C, c->O);
    return dotr(c->r, c->out, (size_t)c->N * c->O);
}

static void test_linear_once(int N, int C, int O, int with_bias, int with_dinp, int blas) {
    dl_dev_cpu_blas(D, blas);
    lin_ctx c = { frand((size_t)N * C, -1, 1), frand((size_t)O * C, -1, 1), with_bias ? frand(O, -1, 1) : NULL,
                  fzero((size_t)N * O), frand((size_t)N * O, -1, 1), N, C, O };
    char nm[128], tag[64];
    snprintf(tag, sizeof tag, "%dx%dx%d%s%s%s", N, C, O, with_bias ? " bias" : "", with_dinp ? "" : " dinp=NULL",
             blas ? " [OpenBLAS]" : " [plain C]");
    lin_loss(&c);
    float *ref = fzero((size_t)N * O);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = with_bias ? c.b[o] : 0;
            for (int k = 0; k < C; k++) s += (double)c.inp[n * C + k] * c.w[o * C + k];
            ref[n * O + o] = (float)s;
        }
    snprintf(nm, sizeof nm, "linear fwd vs float64 %s", tag);
    dl_tcheck(nm, c.out, ref, (size_t)N * O, 1e-5f, 1e-5f, 1e-10);
    float *dinp = with_dinp ? frand((size_t)N * C, 5, 6) : NULL;   /* garbage: overwritten */
    float *dw = frand((size_t)O * C, -1, 1), *dw0 = fdup(dw, (size_t)O * C);
    float *db = with_bias ? frand(O, -1, 1) : NULL, *db0 = with_bias ? fdup(db, O) : NULL;
    dl_k_linear_bwd(D, DL_F32, dinp, dw, db, c.r, c.inp, c.w, N, C, O);
    for (int i = 0; i < O * C; i++) dw[i] -= dw0[i];
    if (with_bias) for (int i = 0; i < O; i++) db[i] -= db0[i];
    if (with_dinp) {
        snprintf(nm, sizeof nm, "linear bwd dinp vs finite differences %s", tag);
        fd_check(nm, lin_loss, &c, c.inp, (size_t)N * C, dinp);
    }
    snprintf(nm, sizeof nm, "linear bwd dw (accumulated) vs finite differences %s", tag);
    fd_check(nm, lin_loss, &c, c.w, (size_t)O * C, dw);
    if (with_bias) {
        snprintf(nm, sizeof nm, "linear bwd dbias (accumulated) vs finite differences %s", tag);
        fd_check(nm, lin_loss, &c, c.b, O, db);
    }
    free(c.inp); free(c.w); free(c.b); free(c.out); free(c.r); free(ref);
    free(dinp); free(dw); free(dw0); free(db); free(db0);
    dl_dev_cpu_blas(D, 1);
}

static void test_linear(void) {
    int has_blas = dl_dev_cpu_blas(D, -1);
    for (int blas = 0; blas <= has_blas; blas++) {
        test_linear_once(5, 7, 3, 1, 1, blas);
        test_linear_once(6, 9, 4, 0, 1, blas);
        test_linear_once(3, 5, 70, 1, 0, blas);
    }
    /* a bigger odd shape through the parallel panels: OpenBLAS vs plain C */
    if (has_blas) {
        enum { N = 301, C = 77, O = 131 };
        float *x = frand(N * C, -1, 1), *w = frand(O * C, -1, 1), *b = frand(O, -1, 1), *g = frand(N * O, -1, 1);
        float *o1 = fzero(N * O), *o2 = fzero(N * O), *di1 = fzero(N * C), *di2 = fzero(N * C);
        float *dw1 = fzero(O * C), *dw2 = fzero(O * C), *db1 = fzero(O), *db2 = fzero(O);
        dl_k_linear_fwd(D, DL_F32, DL_F32, o1, x, w, b, N, C, O);
        dl_k_linear_bwd(D, DL_F32, di1, dw1, db1, g, x, w, N, C, O);
        dl_dev_cpu_blas(D, 0);
        dl_k_linear_fwd(D, DL_F32, DL_F32, o2, x, w, b, N, C, O);
        dl_k_linear_bwd(D, DL_F32, di2, dw2, db2, g, x, w, N, C, O);
        dl_dev_cpu_blas(D, 1);
        dl_tcheck("linear 301x77x131 fwd: OpenBLAS vs plain C", o1, o2, N * O, 1e-4f, 1e-5f, 1e-10);
        dl_tcheck("linear 301x77x131 dinp: OpenBLAS vs plain C", di1, di2, N * C, 1e-4f, 1e-5f, 1e-10);
        dl_tcheck("linear 301x77x131 dw: OpenBLAS vs plain C", dw1, dw2, O * C, 1e-4f, 1e-5f, 1e-10);
        DL_CHECK(same_bits(db1, db2, O), "linear dbias does not depend on the GEMM");
        free(x); free(w); free(b); free(g); free(o1); free(o2); free(di1); free(di2);
        free(dw1); free(dw2); free(db1); free(db2);
    }
}

/* ------------------------------------------------------------ RoPE */
typedef struct { float *x, *y, *r; const int32_t *pos; int N, H, E; dl_rope_layout lay; } rope_ctx;
static double rope_loss(void *c_) {
    rope_ctx *c = c_;
    size_t n = (size_t)c->N * c->H * c->E;
    memcpy(c->y, c->x, sizeof(float) * n);
    dl_k_rope(D, DL_F32, c->y, c->pos, c->N, c->H, c->E, 10000.0f, c->lay, 0);
    return dotr(c->r, c->y, n);
}

static void test_rope(void) {
    enum { N = 5, H = 3, E = 8 };
    const size_t n = (size_t)N * H * E;
    int32_t pos[N] = { 0, 1, 7, 100, 255 };
    for (int lay = 0; lay < 2; lay++) {
        const char *ln = lay == DL_ROPE_HALF ? "HALF" : "PAIRS";
        rope_ctx c = { frand(n, -1, 1), fzero(n), frand(n, -1, 1), pos, N, H, E, (dl_rope_layout)lay };
        char nm[96];
        rope_loss(&c);
        /* direct formula */
        float *ref = fzero(n);
        for (int i = 0; i < N; i++)
            for (int h = 0; h < H; h++)
                for (int j = 0; j < E / 2; j++) {
                    double f = pow(10000.0, -2.0 * j / E), a = pos[i] * f;
                    int i0 = lay == DL_ROPE_HALF ? j : 2 * j, i1 = lay == DL_ROPE_HALF ? j + E / 2 : 2 * j + 1;
                    const float *v = c.x + (i * H + h) * E;
                    ref[(i * H + h) * E + i0] = (float)(v[i0] * cos(a) - v[i1] * sin(a));
                    ref[(i * H + h) * E + i1] = (float)(v[i1] * cos(a) + v[i0] * sin(a));
                }
        snprintf(nm, sizeof nm, "rope %s fwd vs float64 formula", ln);
        dl_tcheck(nm, c.y, ref, n, 1e-4f, 1e-4f, 1e-9);
        /* a negative position bypasses the device's cos/sin table: same values */
        {
            int32_t pneg[N + 1] = { -2, 0, 1, 7, 100, 255 };
            float *xx = fzero(n + H * E);
            memcpy(xx + H * E, c.x, sizeof(float) * n);
            dl_k_rope(D, DL_F32, xx, pneg, N + 1, H, E, 10000.0f, (dl_rope_layout)lay, 0);
            snprintf(nm, sizeof nm, "rope %s without the table (negative position) = with it", ln);
            DL_CHECK(same_bits(xx + H * E, c.y, n), "%s", nm);
            free(xx);
        }
        /* norms preserved per head */
        int okn = 1;
        for (size_t v = 0; v < (size_t)N * H; v++) {
            double a = 0, b = 0;
            for (int j = 0; j < E; j++) { a += (double)c.x[v * E + j] * c.x[v * E + j]; b += (double)c.y[v * E + j] * c.y[v * E + j]; }
            okn &= fabs(sqrt(a) - sqrt(b)) <= 1e-5 * sqrt(a) + 1e-6;
        }
        snprintf(nm, sizeof nm, "rope %s preserves each head's norm", ln);
        DL_CHECK(okn, "%s", nm);
        /* inverse undoes forward */
        float *z = fdup(c.y, n);
        dl_k_rope(D, DL_F32, z, pos, N, H, E, 10000.0f, (dl_rope_layout)lay, 1);
        snprintf(nm, sizeof nm, "rope %s inverse(forward(x)) = x", ln);
        dl_tcheck(nm, z, c.x, n, 1e-6f, 1e-5f, 1e-12);
        /* backward = inverse rotation of the upstream gradient */
        float *g = fdup(c.r, n);
        dl_k_rope(D, DL_F32, g, pos, N, H, E, 10000.0f, (dl_rope_layout)lay, 1);
        snprintf(nm, sizeof nm, "rope %s backward (inverse) vs finite differences", ln);
        fd_check(nm, rope_loss, &c, c.x, n, g);
        free(c.x); free(c.y); free(c.r); free(ref); free(z); free(g);
    }
    /* llama2.c import: per head, weight rows reordered [0,2,4,..,1,3,5,..];
     * HALF on the permuted projection == the same permutation of PAIRS on
     * the original projection. */
    {
        enum { C = 6 };
        float *w = frand((size_t)H * E * C, -1, 1), *wp = fzero((size_t)H * E * C), *x = frand((size_t)N * C, -1, 1);
        for (int h = 0; h < H; h++)
            for (int i = 0; i < E; i++) {
                int src = i < E / 2 ? 2 * i : 2 * (i - E / 2) + 1;
                memcpy(wp + ((size_t)h * E + i) * C, w + ((size_t)h * E + src) * C, sizeof(float) * C);
            }
        float *q = fzero(n), *qp = fzero(n), *qperm = fzero(n);
        dl_k_linear_fwd(D, DL_F32, DL_F32, q, x, w, NULL, N, C, H * E);
        dl_k_linear_fwd(D, DL_F32, DL_F32, qp, x, wp, NULL, N, C, H * E);
        dl_k_rope(D, DL_F32, q, pos, N, H, E, 10000.0f, DL_ROPE_PAIRS, 0);
        dl_k_rope(D, DL_F32, qp, pos, N, H, E, 10000.0f, DL_ROPE_HALF, 0);
        for (size_t v = 0; v < (size_t)N * H; v++)
            for (int i = 0; i < E; i++) qperm[v * E + i] = q[v * E + (i < E / 2 ? 2 * i : 2 * (i - E / 2) + 1)];
        dl_tcheck("rope HALF(permuted W x) = permuted PAIRS(W x) (llama2.c import)", qp, qperm, n, 1e-6f, 1e-6f, 1e-12);
        free(w); free(wp); free(x); free(q); free(qp); free(qperm);
    }
}

/* ------------------------------------------------------------ attention */
/* float64 reference: P, out; and given dout, dq dk dv */
static void ref_attention(float *out, float *P, float *dq, float *dk, float *dv, const float *dout,
                          const float *q, const float *k, const float *v, const int32_t *lens,
                          int B, int T, int Hq, int Hk, int E, dl_attn_mask mask, int block) {
    int rep = Hq / Hk;
    double sc = 1 / sqrt((double)E);
    double *p = malloc(sizeof(double) * T), *dp = malloc(sizeof(double) * T);
    if (dq) { memset(dq, 0, sizeof(float) * B * T * Hq * E); memset(dk, 0, sizeof(float) * B * T * Hk * E); memset(dv, 0, sizeof(float) * B * T * Hk * E); }
    double *dkd = calloc((size_t)B * T * Hk * E, sizeof(double)), *dvd = calloc((size_t)B * T * Hk * E, sizeof(double));
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++) {
            int g = h / rep, len = lens ? lens[b] : T;
            for (int i = 0; i < T; i++) {
                const float *qi = q + ((size_t)(b * T + i) * Hq + h) * E;
                double mx = -INFINITY, s = 0;
                for (int j = 0; j < T; j++) {
                    int vis = j < len && (mask == DL_ATTN_BIDIR || (mask == DL_ATTN_CAUSAL ? j <= i : j / block <= i / block));
                    if (!vis) { p[j] = -INFINITY; continue; }
                    const float *kj = k + ((size_t)(b * T + j) * Hk + g) * E;
                    double a = 0; for (int e = 0; e < E; e++) a += (double)qi[e] * kj[e];
                    p[j] = a * sc; if (p[j] > mx) mx = p[j];
                }
                for (int j = 0; j < T; j++) { p[j] = p[j] == -INFINITY ? 0 : exp(p[j] - mx); s += p[j]; }
                for (int j = 0; j < T; j++) p[j] = s > 0 ? p[j] / s : 0;
                float *oi = out + ((size_t)(b * T + i) * Hq + h) * E;
                for (int e = 0; e < E; e++) {
                    double a = 0;
                    for (int j = 0; j < T; j++) a += p[j] * v[((size_t)(b * T + j) * Hk + g) * E + e];
                    oi[e] = (float)a;
                }
                for (int j = 0; j < T; j++) P[(((size_t)b * Hq + h) * T + i) * T + j] = (float)p[j];
                if (!dq) continue;
                const float *doi = dout + ((size_t)(b * T + i) * Hq + h) * E;
                double rd = 0;
                for (int j = 0; j < T; j++) {
                    double a = 0;
                    for (int e = 0; e < E; e++) a += (double)doi[e] * v[((size_t)(b * T + j) * Hk + g) * E + e];
                    dp[j] = a; rd += p[j] * a;
                }
                for (int j = 0; j < T; j++) {
                    double ds = p[j] * (dp[j] - rd) * sc;
                    for (int e = 0; e < E; e++) {
                        size_t kv = ((size_t)(b * T + j) * Hk + g) * E + e;
                        dq[((size_t)(b * T + i) * Hq + h) * E + e] += (float)(ds * k[kv]);
                        dkd[kv] += ds * qi[e];
                        dvd[kv] += p[j] * doi[e];
                    }
                }
            }
        }
    if (dq) for (size_t i = 0; i < (size_t)B * T * Hk * E; i++) { dk[i] = (float)dkd[i]; dv[i] = (float)dvd[i]; }
    free(p); free(dp); free(dkd); free(dvd);
}

typedef struct { float *q, *k, *v, *out, *att, *r; const int32_t *lens; int B, T, Hq, Hk, E, block; dl_attn_mask mask; float *lse; } att_ctx;
static double att_loss(void *c_) {
    att_ctx *c = c_;
    dl_k_attention_fwd(D, DL_F32, c->out, c->lse, c->att, c->q, c->k, c->v, c->lens, c->B, c->T, c->Hq, c->Hk, c->E,
                       c->mask, c->block);
    return dotr(c->r, c->out, (size_t)c->B * c->T * c->Hq * c->E);
}

static const char *mask_name(dl_attn_mask m) { return m == DL_ATTN_BIDIR ? "bidir" : m == DL_ATTN_CAUSAL ? "causal" : "block"; }

static void test_attention_fd(void) {
    enum { B = 2, T = 5, Hq = 4, Hk = 2, E = 4 };
    int32_t lens[B] = { T, 3 };
    const size_t nq = (size_t)B * T * Hq * E, nk = (size_t)B * T * Hk * E, na = (size_t)B * Hq * T * T;
    for (int mk = 0; mk < 3; mk++) {
        att_ctx c = { frand(nq, -1, 1), frand(nk, -1, 1), frand(nk, -1, 1), fzero(nq), fzero(na), frand(nq, -1, 1),
                      lens, B, T, Hq, Hk, E, 2, (dl_attn_mask)mk, fzero((size_t)B * Hq * T) };
        char nm[128];
        att_loss(&c);
        float *ro = fzero(nq), *rp = fzero(na);
        ref_attention(ro, rp, NULL, NULL, NULL, NULL, c.q, c.k, c.v, lens, B, T, Hq, Hk, E, c.mask, 2);
        snprintf(nm, sizeof nm, "attention %s fwd out vs float64 (GQA 4/2, lens {5,3})", mask_name(c.mask));
        dl_tcheck(nm, c.out, ro, nq, 1e-5f, 1e-5f, 1e-10);
        snprintf(nm, sizeof nm, "attention %s probs vs float64 (masked entries exactly 0)", mask_name(c.mask));
        int zeros = 1; for (size_t i = 0; i < na; i++) zeros &= rp[i] != 0 || c.att[i] == 0;
        DL_CHECK(zeros, "attention %s masked probabilities are exact zeros", mask_name(c.mask));
        dl_tcheck(nm, c.att, rp, na, 1e-6f, 1e-5f, 1e-10);
        float *dq = frand(nq, 5, 6), *dk = frand(nk, 5, 6), *dv = frand(nk, 5, 6);
        float *scr = malloc(dl_k_attention_bwd_scratch_bytes(D, B, T, Hq, Hk, E, 0) + 64);
        dl_k_attention_bwd(D, DL_F32, dq, dk, dv, scr, c.r, c.out, c.lse, c.att, c.q, c.k, c.v, lens, B, T, Hq, Hk, E,
                           c.mask, 2);
        /* att NULL: the backward recomputes the probabilities from lse */
        float *dq0 = fzero(nq), *dk0 = fzero(nk), *dv0 = fzero(nk);
        dl_k_attention_bwd(D, DL_F32, dq0, dk0, dv0, scr, c.r, c.out, c.lse, NULL, c.q, c.k, c.v, lens, B, T, Hq, Hk, E,
                           c.mask, 2);
        snprintf(nm, sizeof nm, "attention %s bwd with att NULL (recomputed) == with att: dq", mask_name(c.mask));
        dl_tcheck(nm, dq0, dq, nq, 1e-6f, 1e-5f, 1e-10);
        snprintf(nm, sizeof nm, "attention %s bwd with att NULL (recomputed) == with att: dk", mask_name(c.mask));
        dl_tcheck(nm, dk0, dk, nk, 1e-6f, 1e-5f, 1e-10);
        snprintf(nm, sizeof nm, "attention %s bwd with att NULL (recomputed) == with att: dv", mask_name(c.mask));
        dl_tcheck(nm, dv0, dv, nk, 1e-6f, 1e-5f, 1e-10);
        free(dq0); free(dk0); free(dv0);
        snprintf(nm, sizeof nm, "attention %s bwd dq vs finite differences", mask_name(c.mask));
        fd_check(nm, att_loss, &c, c.q, nq, dq);
        snprintf(nm, sizeof nm, "attention %s bwd dk vs finite differences", mask_name(c.mask));
        fd_check(nm, att_loss, &c, c.k, nk, dk);
        snprintf(nm, sizeof nm, "attention %s bwd dv vs finite differences", mask_name(c.mask));
        fd_check(nm, att_loss, &c, c.v, nk, dv);
        free(c.q); free(c.k); free(c.v); free(c.out); free(c.att); free(c.r); free(c.lse); free(ro); free(rp);
        free(dq); free(dk); free(dv); free(scr);
    }
}

/* T crossing the 64-row chunks, odd block, a short row and an empty row */
static void test_attention_big(void) {
    enum { B = 3, T = 150, Hq = 4, Hk = 2, E = 16 };
    int32_t lens[B] = { T, 97, 0 };
    const size_t nq = (size_t)B * T * Hq * E, nk = (size_t)B * T * Hk * E, na = (size_t)B * Hq * T * T;
    float *q = frand(nq, -2, 2), *k = frand(nk, -2, 2), *v = frand(nk, -1, 1), *g = frand(nq, -1, 1);
    float *out = fzero(nq), *att = fzero(na), *dq = fzero(nq), *dk = fzero(nk), *dv = fzero(nk), *scr = fzero(na);
    float *lse = fzero((size_t)B * Hq * T);
    float *ro = fzero(nq), *rp = fzero(na), *rdq = fzero(nq), *rdk = fzero(nk), *rdv = fzero(nk);
    int has_blas = dl_dev_cpu_blas(D, -1);
    for (int mk = 0; mk < 3; mk++) {
        ref_attention(ro, rp, rdq, rdk, rdv, g, q, k, v, lens, B, T, Hq, Hk, E, (dl_attn_mask)mk, 48);
        for (int blas = 0; blas <= has_blas; blas++) {
            dl_dev_cpu_blas(D, blas);
            dl_k_attention_fwd(D, DL_F32, out, lse, att, q, k, v, lens, B, T, Hq, Hk, E, (dl_attn_mask)mk, 48);
            dl_k_attention_bwd(D, DL_F32, dq, dk, dv, scr, g, out, lse, att, q, k, v, lens, B, T, Hq, Hk, E,
                               (dl_attn_mask)mk, 48);
            char nm[128];
            const char *tag = blas ? "OpenBLAS" : "plain C";
            snprintf(nm, sizeof nm, "attention %s T=150 lens {150,97,0} out vs float64 [%s]", mask_name((dl_attn_mask)mk), tag);
            dl_tcheck(nm, out, ro, nq, 1e-5f, 1e-4f, 1e-9);
            snprintf(nm, sizeof nm, "attention %s T=150 probs vs float64 [%s]", mask_name((dl_attn_mask)mk), tag);
            dl_tcheck(nm, att, rp, na, 1e-6f, 1e-4f, 1e-9);
            snprintf(nm, sizeof nm, "attention %s T=150 dq vs float64 [%s]", mask_name((dl_attn_mask)mk), tag);
            dl_tcheck(nm, dq, rdq, nq, 1e-5f, 1e-3f, 1e-9);
            snprintf(nm, sizeof nm, "attention %s T=150 dk vs float64 [%s]", mask_name((dl_attn_mask)mk), tag);
            dl_tcheck(nm, dk, rdk, nk, 1e-5f, 1e-3f, 1e-9);
            snprintf(nm, sizeof nm, "attention %s T=150 dv vs float64 [%s]", mask_name((dl_attn_mask)mk), tag);
            dl_tcheck(nm, dv, rdv, nk, 1e-5f, 1e-3f, 1e-9);
        }
        dl_dev_cpu_blas(D, 1);
    }
    /* thread-count independence (each output element is owned by one task) */
    float *dq1 = fzero(nq), *dk1 = fzero(nk), *dv1 = fzero(nk), *o1 = fzero(nq);
    dl_k_attention_fwd(D1, DL_F32, o1, lse, att, q, k, v, lens, B, T, Hq, Hk, E, DL_ATTN_CAUSAL, 0);
    dl_k_attention_bwd(D1, DL_F32, dq1, dk1, dv1, scr, g, o1, lse, att, q, k, v, lens, B, T, Hq, Hk, E, DL_ATTN_CAUSAL, 0);
    dl_k_attention_fwd(D3, DL_F32, out, lse, att, q, k, v, lens, B, T, Hq, Hk, E, DL_ATTN_CAUSAL, 0);
    dl_k_attention_bwd(D3, DL_F32, dq, dk, dv, scr, g, out, lse, att, q, k, v, lens, B, T, Hq, Hk, E, DL_ATTN_CAUSAL, 0);
    DL_CHECK(same_bits(o1, out, nq) && same_bits(dq1, dq, nq) && same_bits(dk1, dk, nk) && same_bits(dv1, dv, nk),
             "attention fwd+bwd: 1 and 3 threads bit-identical");
    free(q); free(k); free(v); free(g); free(out); free(att); free(dq); free(dk); free(dv); free(scr); free(lse);
    free(ro); free(rp); free(rdq); free(rdk); free(rdv); free(dq1); free(dk1); free(dv1); free(o1);
}

/* ------------------------------------------------------------ SwiGLU */
typedef struct { float *g, *u, *out, *r; int N, F; } sw_ctx;
static double sw_loss(void *c_) {
    sw_ctx *c = c_;
    dl_k_swiglu_fwd(D, DL_F32, c->out, c->g, c->u, c->N, c->F);
    return dotr(c->r, c->out, (size_t)c->N * c->F);
}

static void test_swiglu(void) {
    enum { N = 3, F = 11 };
    sw_ctx c = { frand(N * F, -4, 4), frand(N * F, -2, 2), fzero(N * F), frand(N * F, -1, 1), N, F };
    sw_loss(&c);
    float *ref = fzero(N * F);
    for (int i = 0; i < N * F; i++) ref[i] = (float)(c.g[i] / (1 + exp(-(double)c.g[i])) * c.u[i]);
    dl_tcheck("swiglu fwd vs float64", c.out, ref, N * F, 1e-6f, 1e-5f, 1e-10);
    float *dg = fzero(N * F), *du = fzero(N * F);
    dl_k_swiglu_bwd(D, DL_F32, dg, du, c.r, c.g, c.u, N, F);
    fd_check("swiglu bwd dgate vs finite differences", sw_loss, &c, c.g, N * F, dg);
    fd_check("swiglu bwd dup vs finite differences", sw_loss, &c, c.u, N * F, du);
    free(c.g); free(c.u); free(c.out); free(c.r); free(ref); free(dg); free(du);
}

/* ------------------------------------------------------------ elementwise */
static void test_elementwise(void) {
    enum { N = 100003 };   /* big enough to go parallel */
    float *a = frand(N, -1, 1), *b = frand(N, -1, 1), *y = fzero(N);
    dl_k_add(D, DL_F32, y, a, b, N);
    int ok = 1; for (int i = 0; i < N; i++) ok &= y[i] == a[i] + b[i];
    DL_CHECK(ok, "add");
    dl_k_add(D, DL_F32, a, a, b, N);   /* y aliases a */
    ok = 1; for (int i = 0; i < N; i++) ok &= a[i] == y[i];
    DL_CHECK(ok, "add with y aliasing a");
    dl_k_add_inplace(D, DL_F32, y, b, N);
    ok = 1; for (int i = 0; i < N; i++) ok &= y[i] == a[i] + b[i];
    DL_CHECK(ok, "add_inplace");
    memcpy(y, b, sizeof(float) * N);
    dl_k_scale(D, y, -0.375f, N);
    ok = 1; for (int i = 0; i < N; i++) ok &= y[i] == b[i] * -0.375f;
    DL_CHECK(ok, "scale");
    free(a); free(b); free(y);
}

/* ------------------------------------------------------------ cross-entropy */
typedef struct { float *z, *work, *ce, *w; const uint32_t *t; int M, V; } xe_ctx;
static double xe_loss(void *c_) {
    xe_ctx *c = c_;
    memcpy(c->work, c->z, sizeof(float) * (size_t)c->M * c->V);
    dl_k_softmax_xent_fwd(D, DL_F32, c->ce, c->work, c->t, c->M, c->V);
    return dotr(c->w, c->ce, (size_t)c->M);
}

static void test_xent(void) {
    enum { M = 4, V = 13 };
    uint32_t t[M] = { 0, 12, 5, 5 };
    xe_ctx c = { frand(M * V, -3, 3), fzero(M * V), fzero(M), frand(M, 0.2f, 2), t, M, V };
    for (int j = 0; j < V; j++) c.z[3 * V + j] += 90.0f;   /* large logits: needs the max subtraction */
    xe_loss(&c);
    float *rce = fzero(M), *rp = fzero(M * V);
    for (int m = 0; m < M; m++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, c.z[m * V + j]);
        for (int j = 0; j < V; j++) s += exp((double)c.z[m * V + j] - mx);
        double lse = mx + log(s);
        rce[m] = (float)(lse - c.z[m * V + t[m]]);            /* -log_softmax[target] */
        for (int j = 0; j < V; j++) rp[m * V + j] = (float)exp(c.z[m * V + j] - lse);
    }
    dl_tcheck("softmax_xent fwd ce vs direct log-softmax", c.ce, rce, M, 1e-5f, 1e-5f, 1e-10);
    dl_tcheck("softmax_xent fwd probs vs float64 softmax", c.work, rp, M * V, 1e-7f, 1e-5f, 1e-10);
    float *dl = fdup(c.work, M * V);
    dl_k_softmax_xent_bwd(D, DL_F32, dl, c.w, t, M, V);
    fd_check("softmax_xent bwd (weighted rows) vs finite differences", xe_loss, &c, c.z, M * V, dl);
    /* a wide vocabulary row against float64 */
    {
        enum { M2 = 3, V2 = 50257 };
        uint32_t t2[M2] = { 0, 50256, 1234 };
        float *z = frand((size_t)M2 * V2, -8, 8), *z0 = fdup(z, (size_t)M2 * V2), ce[M2], r2[M2];
        dl_k_softmax_xent_fwd(D, DL_F32, ce, z, t2, M2, V2);
        for (int m = 0; m < M2; m++) {
            double mx = -INFINITY, s = 0;
            for (int j = 0; j < V2; j++) mx = fmax(mx, z0[(size_t)m * V2 + j]);
            for (int j = 0; j < V2; j++) s += exp((double)z0[(size_t)m * V2 + j] - mx);
            r2[m] = (float)(mx + log(s) - z0[(size_t)m * V2 + t2[m]]);
        }
        dl_tcheck("softmax_xent fwd V=50257 vs float64", ce, r2, M2, 1e-5f, 1e-6f, 1e-12);
        free(z); free(z0);
    }
    free(c.z); free(c.work); free(c.ce); free(c.w); free(rce); free(rp); free(dl);
}

/* ------------------------------------------------------------ optimizer */
static void test_optim(void) {
    enum { N = 300001 };
    float *x = frand(N, -3, 3);
    double ref = 0; for (int i = 0; i < N; i++) ref += (double)x[i] * x[i];
    double s = dl_k_sumsq(D, x, N), s1 = dl_k_sumsq(D1, x, N), s3 = dl_k_sumsq(D3, x, N);
    DL_CHECK(fabs(s - ref) <= 1e-12 * ref, "sumsq vs float64 loop (%.17g vs %.17g)", s, ref);
    DL_CHECK(memcmp(&s1, &s3, sizeof s1) == 0, "sumsq: 1 and 3 threads bit-identical");
    DL_CHECK(dl_k_sumsq(D, x, 0) == 0.0, "sumsq of nothing is 0");
    free(x);

    /* two AdamW steps: lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.01 */
    float p[4] = { 1.0f, -0.5f, 0.25f, 2.0f }, m[4] = { 0 }, v[4] = { 0 };
    const float g[2][4] = { { 0.5f, -0.25f, 1e-3f, 3.0f }, { -0.25f, 0.75f, -2e-3f, 3.0f } };
    double hp[4] = { 1.0, -0.5, 0.25, 2.0 }, hm[4] = { 0 }, hv[4] = { 0 };
    /* by hand, the textbook decoupled form in float64 */
    for (int st = 1; st <= 2; st++)
        for (int i = 0; i < 4; i++) {
            hm[i] = 0.9 * hm[i] + 0.1 * g[st - 1][i];
            hv[i] = 0.999 * hv[i] + 0.001 * (double)g[st - 1][i] * g[st - 1][i];
            double mh = hm[i] / (1 - pow(0.9, st)), vh = hv[i] / (1 - pow(0.999, st));
            hp[i] -= 0.1 * (mh / (sqrt(vh) + 1e-8) + 0.01 * hp[i]);
        }
    for (int st = 1; st <= 2; st++) dl_k_adamw(D, p, g[st - 1], m, v, 4, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, st, 1.0f, NULL, NULL);
    float hpf[4]; for (int i = 0; i < 4; i++) hpf[i] = (float)hp[i];
    dl_tcheck("adamw two steps vs hand computation", p, hpf, 4, 1e-6f, 1e-6f, 1e-12);
    /* torch.optim.AdamW (torch 2.x, CPU, float32) on the same example */
    const float torch_p[4] = { 0x1.be30f8p-1f, -0x1.cb48b2p-2f, 0x1.7d5c66p-3f, 0x1.cbcd58p+0f };
    const float torch_m[4] = { 0.019999999552965164f, 0.05249999836087227f, -0.0001100000154110603f, 0.5699999928474426f };
    const float torch_v[4] = { 0.0003122500202152878f, 0.0006249375292100012f, 4.9990007688904825e-09f, 0.017990998923778534f };
    dl_tcheck("adamw two steps vs torch.optim.AdamW params", p, torch_p, 4, 0, 4e-7f, 1e-12);
    dl_tcheck("adamw two steps vs torch.optim.AdamW exp_avg", m, torch_m, 4, 0, 4e-7f, 1e-12);
    dl_tcheck("adamw two steps vs torch.optim.AdamW exp_avg_sq", v, torch_v, 4, 0, 4e-7f, 1e-12);
    /* grad_scale: scaling the gradient = passing a scaled gradient */
    float p1[4] = { 1, 2, 3, 4 }, m1[4] = { 0 }, v1[4] = { 0 }, p2[4] = { 1, 2, 3, 4 }, m2[4] = { 0 }, v2[4] = { 0 };
    float gs[4]; for (int i = 0; i < 4; i++) gs[i] = g[0][i] * 0.25f;
    dl_k_adamw(D, p1, g[0], m1, v1, 4, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 0.25f, NULL, NULL);
    dl_k_adamw(D, p2, gs, m2, v2, 4, 1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1, 1.0f, NULL, NULL);
    DL_CHECK(same_bits(p1, p2, 4) && same_bits(m1, m2, 4) && same_bits(v1, v2, 4), "adamw grad_scale = pre-scaled gradient");
}

int main(void) {
    char err[128];
    if (dl_dev_open(&D, DL_DEV_CPU, 0, err, sizeof err) || dl_dev_open(&D1, DL_DEV_CPU, 1, err, sizeof err) ||
        dl_dev_open(&D3, DL_DEV_CPU, 3, err, sizeof err)) {
        printf("not ok - dl_dev_open: %s\n", err);
        return 1;
    }
    printf("# %s\n", dl_dev_describe(D));
    test_dev();
    test_expf();
    test_gemm();
    test_embedding();
    test_rmsnorm();
    test_linear();
    test_rope();
    test_attention_fd();
    test_attention_big();
    test_swiglu();
    test_elementwise();
    test_xent();
    test_optim();
    /* the finite-difference gradient checks again on the reference backend
     * (D1 / D3 stay CPU: their thread-count comparisons do not involve D) */
    dl_dev *cpu = D;
    if (dl_dev_open(&D, DL_DEV_REF, 0, err, sizeof err)) {
        printf("not ok - dl_dev_open ref: %s\n", err);
        return 1;
    }
    printf("# %s: finite-difference checks\n", dl_dev_describe(D));
    test_embedding();
    test_rmsnorm();
    test_linear();
    test_rope();
    test_attention_fd();
    test_swiglu();
    test_xent();
    dl_dev_close(D);
    D = cpu;
    dl_dev_close(D); dl_dev_close(D1); dl_dev_close(D3);
    return dl_test_end();
}
