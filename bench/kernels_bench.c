/* bench/kernels_bench.c — CPU kernel timings: GEMM GFLOP/s on the model's
 * shapes, and one LLaMA training step (forward, backward, AdamW) built from
 * kernels/kernels.h alone, with a per-op time breakdown.  Not part of
 * `make bench` (dllm-train's bench is the end-to-end figure); a lab for
 * kernels/cpu/.  Build and run by hand after `make`:
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -fopenmp -march=x86-64-v2 -DDL_HAVE_OPENBLAS \
 *      -Ishare/io -Ishare/tok -Ishare/model -Ikernels bench/kernels_bench.c build/libdllm.a -lopenblas -ldl -lm -o build/kernels_bench
 *   build/kernels_bench [D L Hq Hk F T B V steps]     (default 256 4 8 8 768 256 8 512 5)
 *   (the first "gemm" block measures only; steps = 0 skips the step)
 *
 * Lines: "gemm MxNxK (op)  ms  GFLOP/s" for the panel-split single-thread
 * OpenBLAS path the kernels use, the same GEMM with OpenBLAS' own threads
 * (the alternative dev.c rejects; only with KB_OPENBLAS_THREADS=1, and it
 * leaves OpenBLAS workers spinning that slow down what follows), and the
 * plain-C kernel; then the step.  KB_CPUTIME=1 times with process CPU time
 * (use with OMP_NUM_THREADS=1 on a busy machine).
 * Loss positions: half of the tokens (M = N/2), bidirectional attention.
 *
 * Measured (2 Zen 3 cores, EPYC, OpenBLAS 0.3.21, quiet machine), default
 * config: step 351 ms = 5840 tokens/s, 140 GFLOP/s; the same model in
 * PyTorch 2.15 CPU (2 threads, MKL, SDPA, AdamW) 418 ms: ratio 1.19.
 * GQA 8/2: 315 vs 375 ms; 4 heads of 64: 333 vs 399 ms; V = 50257: 901 vs
 * 1812 ms.  GEMMs are ~70 % of the step at ~170 GFLOP/s.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <math.h>
#include "kernels.h"
#include "cpu/cpu.h"
#ifdef DL_HAVE_OPENBLAS
#include <cblas.h>
#endif

/* KB_CPUTIME=1: process CPU time instead of wall time (1-thread runs on a busy machine) */
static double now(void) {
    static int cpu = -1;
    if (cpu < 0) cpu = getenv("KB_CPUTIME") != NULL;
    struct timespec t;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static uint64_t rs = 88172645463325252ull;
static float frnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (float)((rs >> 40) / 16777216.0 - 0.5); }
static float *mk(dl_dev *d, size_t n, float sc) { float *p = dl_dev_alloc(d, n * sizeof(float)); for (size_t i = 0; i < n; i++) p[i] = sc * frnd(); return p; }

static void bench_gemm(dl_dev *d, int M, int N, int K, int ta, int tb) {
    float *A = mk(d, (size_t)M * K, 1), *B = mk(d, (size_t)K * N, 1), *C = mk(d, (size_t)M * N, 1);
    int lda = ta ? M : K, ldb = tb ? K : N;
    double fl = 2.0 * M * N * K, best[3] = { 1e9, 1e9, 1e9 };
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now();
        cpu_gemm(d, ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, N);
        double t1 = now();
        if (t1 - t0 < best[0]) best[0] = t1 - t0;
#ifdef DL_HAVE_OPENBLAS
        if (getenv("KB_OPENBLAS_THREADS")) {
        openblas_set_num_threads(dl_dev_threads(d));
        t0 = now();
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, 1, A, lda, B, ldb, 0, C, N);
        t1 = now();
        openblas_set_num_threads(1);
        if (t1 - t0 < best[1]) best[1] = t1 - t0;
        }
#endif
        if (rep < 2) {
            int was = dl_dev_cpu_blas(d, -1);
            dl_dev_cpu_blas(d, 0);
            t0 = now();
            cpu_gemm(d, ta, tb, M, N, K, 1, A, lda, B, ldb, 0, C, N);
            t1 = now();
            dl_dev_cpu_blas(d, was);
            if (t1 - t0 < best[2]) best[2] = t1 - t0;
        }
    }
    printf("gemm %5dx%5dx%5d %c%c  panels %7.2f ms %6.1f GF/s | plain %7.2f ms %6.1f GF/s", M, N, K,
           ta ? 'T' : 'N', tb ? 'T' : 'N', best[0] * 1e3, fl / best[0] / 1e9, best[2] * 1e3, fl / best[2] / 1e9);
    if (best[1] < 1e9) printf(" | openblas-threads %7.2f ms %6.1f GF/s", best[1] * 1e3, fl / best[1] / 1e9);
    printf("\n");
    dl_dev_free(d, A); dl_dev_free(d, B); dl_dev_free(d, C);
}

enum { T_EMB, T_NORM, T_QKV, T_ROPE, T_ATT, T_O, T_MLP, T_SWI, T_RES, T_HEAD, T_XENT, T_OPT, T_N };
static const char *tname[T_N] = { "embedding", "rmsnorm", "qkv linear", "rope", "attention", "o linear",
                                  "mlp linears", "swiglu", "residual", "head linear", "xent", "adamw+norm" };
static double tacc[T_N];
#define TIMED(k, stmt) do { double t0_ = now(); stmt; tacc[k] += now() - t0_; } while (0)

int main(int argc, char **argv) {
    int a[9] = { 256, 4, 8, 8, 768, 256, 8, 512, 5 };
    for (int i = 1; i < argc && i < 10; i++) a[i - 1] = atoi(argv[i]);
    int D = a[0], L = a[1], Hq = a[2], Hk = a[3], F = a[4], T = a[5], B = a[6], V = a[7], steps = a[8];
    int E = D / Hq, N = B * T, M = N / 2, KV = Hk * E;
    char err[128];
    dl_dev *d;
    if (dl_dev_open(&d, DL_DEV_CPU, 0, err, sizeof err)) { fprintf(stderr, "%s\n", err); return 4; }
    printf("%s; model D=%d L=%d Hq=%d Hk=%d E=%d F=%d T=%d B=%d V=%d M=%d\n", dl_dev_describe(d), D, L, Hq, Hk, E, F, T, B, V, M);

    bench_gemm(d, N, 3 * D, D, 0, 1);     /* qkv fwd (fused size) */
    bench_gemm(d, N, F, D, 0, 1);         /* gate fwd */
    bench_gemm(d, N, D, F, 0, 1);         /* down fwd */
    bench_gemm(d, N, D, F, 0, 0);         /* down bwd dinp */
    bench_gemm(d, F, D, N, 1, 0);         /* gate bwd dw */
    bench_gemm(d, M, V, D, 0, 1);         /* head fwd */
    bench_gemm(d, T, T, E, 0, 1);         /* attention scores, one (b,h) */

    if (steps < 1) { dl_dev_close(d); return 0; }
    /* parameters (and grads / m / v of the same size) */
    size_t per_layer = 2 * (size_t)D + (size_t)D * D * 2 + (size_t)KV * D * 2 + 3 * (size_t)F * D;
    size_t np = (size_t)V * D * 2 + D + L * per_layer;
    float *P = mk(d, np, 0.04f), *G = dl_dev_alloc(d, np * 4), *Mm = dl_dev_alloc(d, np * 4), *Vv = dl_dev_alloc(d, np * 4);
    double gclip[2];   /* the CPU device's memory is the host's */
    for (size_t i = 0; i < np; i++) P[i] = 0.04f * frnd();
    float *emb = P, *head = P + (size_t)V * D, *fnorm = head + (size_t)V * D, *lay = fnorm + D;
    float *gemb = G, *ghead = G + (size_t)V * D, *gfnorm = ghead + (size_t)V * D, *glay = gfnorm + D;
    for (int i = 0; i < D; i++) fnorm[i] = 1;
    for (int l = 0; l < L; l++) for (int j = 0; j < 2 * D; j++) lay[l * per_layer + j] = 1;   /* norm weights */
    /* activations per layer */
    size_t ND = (size_t)N * D, NF = (size_t)N * F, NK = (size_t)N * KV, NA = (size_t)B * Hq * T * T;
    float *x = mk(d, (size_t)(L + 1) * ND, 0), *h1 = mk(d, L * ND, 0), *r1 = mk(d, (size_t)L * N, 0);
    float *q = mk(d, L * ND, 0), *k = mk(d, L * NK, 0), *v = mk(d, L * NK, 0), *att = mk(d, L * NA, 0), *ao = mk(d, L * ND, 0);
    float *lse = mk(d, (size_t)L * B * Hq * T, 0);   /* (L, B, Hq, T) attention log-sum-exp */
    float *x2 = mk(d, L * ND, 0), *h2 = mk(d, L * ND, 0), *r2 = mk(d, (size_t)L * N, 0);
    float *gt = mk(d, L * NF, 0), *up = mk(d, L * NF, 0), *sw = mk(d, L * NF, 0), *tmp = mk(d, ND, 0);
    float *hf = mk(d, ND, 0), *rf = mk(d, N, 0), *hs = mk(d, (size_t)M * D, 0), *logits = mk(d, (size_t)M * V, 0);
    float *ce = mk(d, M, 0), *dce = mk(d, M, 0);
    float *dx = mk(d, ND, 0), *dh = mk(d, ND, 0), *dq = mk(d, ND, 0), *dk = mk(d, NK, 0), *dv = mk(d, NK, 0);
    float *dao = mk(d, ND, 0), *dgt = mk(d, NF, 0), *dup = mk(d, NF, 0), *dsw = mk(d, NF, 0), *scr = mk(d, NA, 0);
    float *dhs = mk(d, (size_t)M * D, 0);
    uint32_t *ids = malloc(sizeof(uint32_t) * N), *tg = malloc(sizeof(uint32_t) * M);
    int32_t *pos = malloc(sizeof(int32_t) * N), *sel = malloc(sizeof(int32_t) * M);
    for (int i = 0; i < N; i++) { ids[i] = (uint32_t)(rs % V); frnd(); pos[i] = i % T; }
    for (int i = 0; i < M; i++) { sel[i] = 2 * i; tg[i] = (uint32_t)(rs % V); frnd(); dce[i] = 1.0f / M; }

    double t_all = 0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) { memset(tacc, 0, sizeof tacc); t_all = now(); }   /* step 0 warms up */
        memset(G, 0, np * 4);
        TIMED(T_EMB, dl_k_embedding_fwd(d, DL_F32, DL_F32, x, ids, emb, N, D));
        for (int l = 0; l < L; l++) {
            float *w = lay + l * per_layer, *an = w, *mn = w + D, *wq = w + 2 * D, *wk = wq + (size_t)D * D,
                  *wv = wk + (size_t)KV * D, *wo = wv + (size_t)KV * D, *wg = wo + (size_t)D * D,
                  *wu = wg + (size_t)F * D, *wd = wu + (size_t)F * D;
            float *xl = x + l * ND, *xn = x + (l + 1) * ND;
            TIMED(T_NORM, dl_k_rmsnorm_fwd(d, DL_F32, h1 + l * ND, r1 + l * N, xl, an, N, D, 1e-5f));
            TIMED(T_QKV, dl_k_linear_fwd(d, DL_F32, DL_F32, q + l * ND, h1 + l * ND, wq, NULL, N, D, D);
                         dl_k_linear_fwd(d, DL_F32, DL_F32, k + l * NK, h1 + l * ND, wk, NULL, N, D, KV);
                         dl_k_linear_fwd(d, DL_F32, DL_F32, v + l * NK, h1 + l * ND, wv, NULL, N, D, KV));
            TIMED(T_ROPE, dl_k_rope(d, DL_F32, q + l * ND, pos, N, Hq, E, 10000, DL_ROPE_HALF, 0);
                          dl_k_rope(d, DL_F32, k + l * NK, pos, N, Hk, E, 10000, DL_ROPE_HALF, 0));
            TIMED(T_ATT, dl_k_attention_fwd(d, DL_F32, ao + l * ND, lse + (size_t)l * B * Hq * T, att + l * NA, q + l * ND,
                                            k + l * NK, v + l * NK, NULL, B, T, Hq, Hk, E, DL_ATTN_BIDIR, 0));
            TIMED(T_O, dl_k_linear_fwd(d, DL_F32, DL_F32, tmp, ao + l * ND, wo, NULL, N, D, D));
            TIMED(T_RES, dl_k_add(d, DL_F32, x2 + l * ND, xl, tmp, ND));
            TIMED(T_NORM, dl_k_rmsnorm_fwd(d, DL_F32, h2 + l * ND, r2 + l * N, x2 + l * ND, mn, N, D, 1e-5f));
            TIMED(T_MLP, dl_k_linear_fwd(d, DL_F32, DL_F32, gt + l * NF, h2 + l * ND, wg, NULL, N, D, F);
                         dl_k_linear_fwd(d, DL_F32, DL_F32, up + l * NF, h2 + l * ND, wu, NULL, N, D, F));
            TIMED(T_SWI, dl_k_swiglu_fwd(d, DL_F32, sw + l * NF, gt + l * NF, up + l * NF, N, F));
            TIMED(T_MLP, dl_k_linear_fwd(d, DL_F32, DL_F32, tmp, sw + l * NF, wd, NULL, N, F, D));
            TIMED(T_RES, dl_k_add(d, DL_F32, xn, x2 + l * ND, tmp, ND));
        }
        TIMED(T_NORM, dl_k_rmsnorm_fwd(d, DL_F32, hf, rf, x + L * ND, fnorm, N, D, 1e-5f));
        TIMED(T_HEAD, dl_k_gather_rows(d, DL_F32, hs, hf, sel, M, D); dl_k_linear_fwd(d, DL_F32, DL_F32, logits, hs, head, NULL, M, D, V));
        TIMED(T_XENT, dl_k_softmax_xent_fwd(d, DL_F32, ce, logits, tg, M, V); dl_k_softmax_xent_bwd(d, DL_F32, logits, dce, tg, M, V));
        /* backward */
        TIMED(T_HEAD, dl_k_linear_bwd(d, DL_F32, dhs, ghead, NULL, logits, hs, head, M, D, V);
                      memset(dh, 0, ND * 4); dl_k_scatter_add_rows(d, DL_F32, dh, dhs, sel, M, D));
        memset(dx, 0, ND * 4);
        TIMED(T_NORM, dl_k_rmsnorm_bwd(d, DL_F32, dx, gfnorm, dh, x + L * ND, fnorm, rf, N, D));
        for (int l = L - 1; l >= 0; l--) {
            float *w = lay + l * per_layer, *an = w, *mn = w + D, *wq = w + 2 * D, *wk = wq + (size_t)D * D,
                  *wv = wk + (size_t)KV * D, *wo = wv + (size_t)KV * D, *wg = wo + (size_t)D * D,
                  *wu = wg + (size_t)F * D, *wd = wu + (size_t)F * D;
            float *g = glay + l * per_layer, *gan = g, *gmn = g + D, *gq = g + 2 * D, *gk = gq + (size_t)D * D,
                  *gv = gk + (size_t)KV * D, *go = gv + (size_t)KV * D, *gg = go + (size_t)D * D,
                  *gu = gg + (size_t)F * D, *gd = gu + (size_t)F * D;
            /* dx holds d loss / d x_{l+1}; MLP branch */
            TIMED(T_MLP, dl_k_linear_bwd(d, DL_F32, dsw, gd, NULL, dx, sw + l * NF, wd, N, F, D));
            TIMED(T_SWI, dl_k_swiglu_bwd(d, DL_F32, dgt, dup, dsw, gt + l * NF, up + l * NF, N, F));
            TIMED(T_MLP, dl_k_linear_bwd(d, DL_F32, dh, gg, NULL, dgt, h2 + l * ND, wg, N, D, F);
                         dl_k_linear_bwd(d, DL_F32, tmp, gu, NULL, dup, h2 + l * ND, wu, N, D, F));
            TIMED(T_RES, dl_k_add_inplace(d, DL_F32, dh, tmp, ND));
            TIMED(T_NORM, dl_k_rmsnorm_bwd(d, DL_F32, dx, gmn, dh, x2 + l * ND, mn, r2 + l * N, N, D));
            /* attention branch */
            TIMED(T_O, dl_k_linear_bwd(d, DL_F32, dao, go, NULL, dx, ao + l * ND, wo, N, D, D));
            TIMED(T_ATT, dl_k_attention_bwd(d, DL_F32, dq, dk, dv, scr, dao, ao + l * ND, lse + (size_t)l * B * Hq * T,
                                            att + l * NA, q + l * ND, k + l * NK, v + l * NK, NULL, B, T, Hq, Hk, E,
                                            DL_ATTN_BIDIR, 0));
            TIMED(T_ROPE, dl_k_rope(d, DL_F32, dq, pos, N, Hq, E, 10000, DL_ROPE_HALF, 1);
                          dl_k_rope(d, DL_F32, dk, pos, N, Hk, E, 10000, DL_ROPE_HALF, 1));
            TIMED(T_QKV, dl_k_linear_bwd(d, DL_F32, dh, gq, NULL, dq, h1 + l * ND, wq, N, D, D);
                         dl_k_linear_bwd(d, DL_F32, tmp, gk, NULL, dk, h1 + l * ND, wk, N, D, KV);
                         dl_k_add_inplace(d, DL_F32, dh, tmp, ND);
                         dl_k_linear_bwd(d, DL_F32, tmp, gv, NULL, dv, h1 + l * ND, wv, N, D, KV);
                         dl_k_add_inplace(d, DL_F32, dh, tmp, ND));
            TIMED(T_NORM, dl_k_rmsnorm_bwd(d, DL_F32, dx, gan, dh, x + l * ND, an, r1 + l * N, N, D));
        }
        TIMED(T_EMB, dl_k_embedding_bwd(d, DL_F32, gemb, dx, ids, N, D));
        TIMED(T_OPT, dl_k_grad_clip(d, gclip, G, np, 1.0);
                     dl_k_adamw(d, P, G, Mm, Vv, np, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, s + 1, 1.0f, gclip, NULL));
    }
    double el = now() - t_all;
    double fl_lin = 2.0 * N * L * per_layer, fl_head = 2.0 * M * D * V, fl_att = 4.0 * B * T * T * D * L;
    double flops = 3 * (fl_lin + fl_head + fl_att);
    printf("step: %.1f ms, %.0f tokens/s, %.1f GFLOP/s (6*N*params + attention, %.2f GFLOP/step)\n",
           el / steps * 1e3, (double)N * steps / el, flops * steps / el / 1e9, flops / 1e9);
    for (int i = 0; i < T_N; i++) printf("  %-12s %7.2f ms  %4.1f %%\n", tname[i], tacc[i] / steps * 1e3, 100 * tacc[i] / el);
    dl_dev_close(d);
    return 0;
}
