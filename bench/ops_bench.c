/* bench/ops_bench.c — GEMM and attention throughput of one backend at the
 * shapes of a model, through kernels/kernels.h alone (so it times exactly
 * what dllm-train runs).  bench/gpu.sh prints it next to bench/ops_ref.py
 * (torch.matmul and scaled_dot_product_attention on the same shapes).
 *
 *   build/bench/ops_bench [--device cuda|cpu|ref] [--dtype bf16|f32]
 *       [--dim 768 --hidden 2048 --heads 12 --kv-heads 12 --head-dim 64
 *        --vocab 32768 --batch 8 --seq 1024] [--reps 10]
 *
 * One JSON line per measurement (stdout):
 *   {"op":"linear_fwd","name":"qkv","M":8192,"N":2304,"K":768,"dtype":"bf16","ms":..,"tflops":..}
 * GEMMs: the model's linears, forward (2·rows·in·out FLOPs) and backward
 * (input and weight gradient: 4·rows·in·out); the head runs on half of the
 * rows (the loss positions at mean mask ratio 1/2).  Attention,
 * bidirectional, forward 4·B·Hq·T²·E FLOPs and backward 2.5 times that
 * (FlashAttention's convention: 5 products against 2); each measured
 * without the probabilities ("att": 0, as the model calls it on a backend
 * that recomputes them: CUDA, whose bf16 calls then take the tensor-core
 * kernels) and with them kept ("att": 1: the CPU's way; on CUDA the FMA
 * kernels).
 * Timing: best of --reps after one warm-up, each rep ended by dl_dev_sync.
 * Exit: 0; 2 bad option; 4 the device does not open or lacks the dtype.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

/* a device buffer of n values of dt, uniform in [-sc, sc) */
static void *rnd(dl_dev *d, dl_dtype dt, size_t n, float sc, uint64_t *s) {
    float *h = malloc(n * sizeof *h);
    void *f = dl_dev_alloc(d, n * sizeof(float)), *x = dt == DL_F32 ? f : dl_dev_alloc(d, n * dl_dtype_size(dt));
    if (!h || !f || !x) { fprintf(stderr, "ops_bench: out of memory (%zu values)\n", n); exit(4); }
    for (size_t i = 0; i < n; i++) {
        *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17;
        h[i] = sc * (float)((*s >> 40) / 8388608.0 - 1.0);
    }
    dl_dev_h2d(d, f, h, n * sizeof(float));
    if (x != f) { dl_k_convert(d, x, dt, f, DL_F32, n); dl_dev_sync(d); dl_dev_free(d, f); }
    free(h);
    return x;
}

typedef struct { dl_dev *d; dl_dtype dt; int reps; const char *dtn; } ctx;

#define TIME(c, best, body) do { \
    for (int r_ = 0; r_ <= (c)->reps; r_++) { \
        dl_dev_sync((c)->d); double t0_ = now(); body; dl_dev_sync((c)->d); double t_ = now() - t0_; \
        if (r_ > 0 && t_ < best) best = t_; } } while (0)

static void linear(ctx *c, const char *name, int rows, int in, int out, uint64_t *s) {
    void *x = rnd(c->d, c->dt, (size_t)rows * in, 1, s), *w = rnd(c->d, c->dt, (size_t)out * in, 0.05f, s);
    void *y = dl_dev_alloc(c->d, (size_t)rows * out * dl_dtype_size(c->dt));
    void *dx = dl_dev_alloc(c->d, (size_t)rows * in * dl_dtype_size(c->dt));
    float *dw = dl_dev_alloc(c->d, (size_t)out * in * sizeof(float));
    if (!y || !dx || !dw) { fprintf(stderr, "ops_bench: out of memory (%s)\n", name); exit(4); }
    double fwd = 1e30, bwd = 1e30, fl = 2.0 * rows * in * out;
    TIME(c, fwd, dl_k_linear_fwd(c->d, c->dt, c->dt, y, x, w, NULL, rows, in, out));
    TIME(c, bwd, dl_k_linear_bwd(c->d, c->dt, dx, dw, NULL, y, x, w, rows, in, out));
    printf("{\"op\":\"linear_fwd\",\"name\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"dtype\":\"%s\",\"ms\":%.4f,\"tflops\":%.2f}\n",
           name, rows, out, in, c->dtn, fwd * 1e3, fl / fwd / 1e12);
    printf("{\"op\":\"linear_bwd\",\"name\":\"%s\",\"M\":%d,\"N\":%d,\"K\":%d,\"dtype\":\"%s\",\"ms\":%.4f,\"tflops\":%.2f}\n",
           name, rows, out, in, c->dtn, bwd * 1e3, 2 * fl / bwd / 1e12);
    fflush(stdout);
    dl_dev_free(c->d, x); dl_dev_free(c->d, w); dl_dev_free(c->d, y); dl_dev_free(c->d, dx); dl_dev_free(c->d, dw);
}

static void attention(ctx *c, int B, int T, int Hq, int Hk, int E, int keep_att, uint64_t *s) {
    size_t nq = (size_t)B * T * Hq * E, nk = (size_t)B * T * Hk * E, es = dl_dtype_size(c->dt);
    void *q = rnd(c->d, c->dt, nq, 1, s), *k = rnd(c->d, c->dt, nk, 1, s), *v = rnd(c->d, c->dt, nk, 1, s);
    void *dout = rnd(c->d, c->dt, nq, 1, s);
    void *o = dl_dev_alloc(c->d, nq * es), *dq = dl_dev_alloc(c->d, nq * es);
    void *dk = dl_dev_alloc(c->d, nk * es), *dv = dl_dev_alloc(c->d, nk * es);
    float *lse = dl_dev_alloc(c->d, (size_t)B * Hq * T * sizeof(float));
    float *att = keep_att ? dl_dev_alloc(c->d, (size_t)B * Hq * T * T * sizeof(float)) : NULL;
    size_t sb = dl_k_attention_bwd_scratch_bytes(c->d, B, T, Hq, Hk, E, keep_att);
    void *scr = dl_dev_alloc(c->d, sb ? sb : 1);
    if (!o || !dq || !dk || !dv || !lse || (keep_att && !att) || !scr) {
        fprintf(stderr, "ops_bench: out of memory (attention, att %d)\n", keep_att);
        exit(4);
    }
    double fwd = 1e30, bwd = 1e30, fl = 4.0 * B * Hq * (double)T * T * E;
    TIME(c, fwd, dl_k_attention_fwd(c->d, c->dt, o, lse, att, q, k, v, NULL, B, T, Hq, Hk, E, DL_ATTN_BIDIR, 0));
    TIME(c, bwd, dl_k_attention_bwd(c->d, c->dt, dq, dk, dv, scr, dout, o, lse, att, q, k, v, NULL, B, T, Hq, Hk, E,
                                    DL_ATTN_BIDIR, 0));
    const char *f = "{\"op\":\"%s\",\"B\":%d,\"T\":%d,\"Hq\":%d,\"Hk\":%d,\"E\":%d,\"att\":%d,\"dtype\":\"%s\",\"ms\":%.4f,\"tflops\":%.2f}\n";
    printf(f, "attention_fwd", B, T, Hq, Hk, E, keep_att, c->dtn, fwd * 1e3, fl / fwd / 1e12);
    printf(f, "attention_bwd", B, T, Hq, Hk, E, keep_att, c->dtn, bwd * 1e3, 2.5 * fl / bwd / 1e12);
    fflush(stdout);
    void *all[] = { q, k, v, dout, o, dq, dk, dv, lse, att, scr };
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) if (all[i]) dl_dev_free(c->d, all[i]);
}

int main(int argc, char **argv) {
    const char *dev = "cuda", *dtn = "bf16";
    int D = 768, F = 2048, Hq = 12, Hk = 12, E = 64, V = 32768, B = 8, T = 1024, reps = 10;
    struct { const char *name; int *v; } iopt[] = { { "--dim", &D }, { "--hidden", &F }, { "--heads", &Hq },
        { "--kv-heads", &Hk }, { "--head-dim", &E }, { "--vocab", &V }, { "--batch", &B }, { "--seq", &T },
        { "--reps", &reps } };
    for (int i = 1; i < argc; i++) {
        int done = 0;
        if (i + 1 < argc && !strcmp(argv[i], "--device")) { dev = argv[++i]; continue; }
        if (i + 1 < argc && !strcmp(argv[i], "--dtype")) { dtn = argv[++i]; continue; }
        for (size_t k = 0; k < sizeof iopt / sizeof *iopt && !done; k++)
            if (i + 1 < argc && !strcmp(argv[i], iopt[k].name)) { *iopt[k].v = atoi(argv[++i]); done = 1; }
        if (!done) { fprintf(stderr, "ops_bench: unknown or incomplete option '%s' (see the file's comment)\n", argv[i]); return 2; }
    }
    dl_dev_kind kind = !strcmp(dev, "cuda") ? DL_DEV_CUDA : !strcmp(dev, "ref") ? DL_DEV_REF : DL_DEV_CPU;
    dl_dtype dt = !strcmp(dtn, "f32") ? DL_F32 : DL_BF16;
    if ((strcmp(dev, "cuda") && strcmp(dev, "cpu") && strcmp(dev, "ref")) || (strcmp(dtn, "f32") && strcmp(dtn, "bf16")) ||
        D < 1 || F < 1 || Hq < 1 || Hk < 1 || Hq % Hk || E < 1 || V < 1 || B < 1 || T < 1 || reps < 1) {
        fprintf(stderr, "ops_bench: bad --device / --dtype / shape\n");
        return 2;
    }
    char err[256];
    ctx c = { NULL, dt, reps, dtn };
    if (dl_dev_open(&c.d, kind, 0, err, sizeof err)) { fprintf(stderr, "ops_bench: device %s: %s\n", dev, err); return 4; }
    if (!dl_dev_supports(c.d, DL_OP_LINEAR_FWD, dt) || !dl_dev_supports(c.d, DL_OP_ATTENTION_FWD, dt)) {
        fprintf(stderr, "ops_bench: %s has no %s GEMM / attention\n", dl_dev_describe(c.d), dtn);
        return 4;
    }
    fprintf(stderr, "ops_bench: %s, %s, dim %d, hidden %d, heads %d/%d x %d, vocab %d, batch %d x %d\n",
            dl_dev_describe(c.d), dtn, D, F, Hq, Hk, E, V, B, T);
    uint64_t s = 88172645463325252ull;
    int N = B * T;
    linear(&c, "qkv", N, D, (Hq + 2 * Hk) * E, &s);
    linear(&c, "o", N, Hq * E, D, &s);
    linear(&c, "gate_up", N, D, 2 * F, &s);
    linear(&c, "down", N, F, D, &s);
    linear(&c, "head", N / 2, D, V, &s);
    attention(&c, B, T, Hq, Hk, E, 1, &s);
    attention(&c, B, T, Hq, Hk, E, 0, &s);
    dl_dev_close(c.d);
    return 0;
}
