/* kernels/cpu/cpu.h — internals shared by the CPU backend's files (not an API).
 *
 * Threading model (one pool): pool.c owns every thread.  OpenBLAS is put in
 * single-threaded mode when it is loaded (openblas.c) and each GEMM is split
 * into row or column panels by cpu_gemm, single-threaded sgemms that the
 * pool's threads claim; attention calls cpu_gemm_serial inside its own loop
 * over (b, h).  So loops never nest and the OpenBLAS thread pool never
 * competes with ours for the cores.  See backend.c.
 *
 * GEMM convention (row-major, as CBLAS):
 *   C (M,N) = alpha * op(A) (M,K) @ op(B) (K,N) + beta * C
 *   op(A) = A (M,K), lda >= K      or A^T with A stored (K,M), lda >= M when ta
 *   op(B) = B (K,N), ldb >= N      or B^T with B stored (N,K), ldb >= K when tb
 *   beta == 0 overwrites C without reading it (NaN in C does not leak).
 */
#ifndef DL_KERNELS_CPU_H
#define DL_KERNELS_CPU_H
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "../backend.h"

#ifdef DL_HAVE_OPENBLAS
#include <cblas.h>
/* OpenBLAS's entry points, dlopen'ed by cpu_openblas_load (openblas.c):
 * valid once it returned 0. */
typedef struct cpu_openblas_api {
    __typeof__(&cblas_sgemm) sgemm;
    __typeof__(&openblas_set_num_threads) set_num_threads;
    __typeof__(&openblas_get_config) get_config;
    __typeof__(&openblas_get_corename) get_corename;
} cpu_openblas_api;
extern cpu_openblas_api cpu_openblas;
/* Loads it once per process (thread-safe) and sets it to one thread;
 * 0, or -1 with the reason in *why (a static string). */
int cpu_openblas_load(const char **why);
#endif

/* Backend state behind dl_dev.be (threads live in dl_dev itself). */
typedef struct cpu_state {
    int use_blas;         /* 1: cblas_sgemm (built with OpenBLAS and it loaded); 0: plain C */
    int gemv_rows;        /* linear_fwd with N <= gemv_rows runs cpu_gemv (gemv.c); 0 = never (default) */
    /* linear_fwd of f32 weights from packed copies (linear_packed.c) when
     * pack_on; the copies, one per weight pointer, live until it goes off
     * or cpu_close */
    int pack_on;
    struct cpu_packed *packed;
    int n_packed, cap_packed;
    size_t packed_bytes;
    /* RoPE cos/sin table (rope.c), the one scratch an op allocates itself:
     * rope_tab[(p * E/2 + j) * 2 + {0: cos, 1: sin}] for positions
     * p < rope_npos, built for (rope_theta, rope_E); rebuilt when those change
     * or a larger position shows up; freed by cpu_close.  Ops on one
     * dl_dev are called from one host thread at a time. */
    float *rope_tab;
    int rope_npos, rope_E;
    float rope_theta;
} cpu_state;
static inline cpu_state *cpu_st(const dl_dev *d) { return (cpu_state *)d->be; }

/* The CPU backend stores activations in DL_F32 only; weights of
 * embedding_fwd / linear_fwd may also be DL_BF16 (linear_bf16w.c). */
#define CPU_F32(dt) DL_K_ASSERT((dt) == DL_F32)

/* The ops of the table (backend.c); contracts in kernels.h. */
void cpu_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D);
void cpu_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D);
void cpu_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                     float eps);
void cpu_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                     const float *rstd, int N, int D);
void cpu_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                         const void *w, int N, int D, float eps);
void cpu_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                    int N, int C, int O);
void cpu_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                    const void *inp, const void *w, int N, int C, int O);
void cpu_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
              dl_rope_layout layout, int inverse);
void cpu_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                       const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block);
void cpu_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                       const void *out, const float *lse, const float *att, const void *q, const void *k,
                       const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block);
size_t cpu_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att);
void cpu_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                              const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                              int Hq, int Hk, int E);
void cpu_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                          const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E);
void cpu_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F);
void cpu_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                    const void *up, int N, int F);
void cpu_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n);
void cpu_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n);
void cpu_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
void cpu_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
void cpu_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src, int rows,
                 int cols);
void cpu_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n);
void cpu_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M, int V);
void cpu_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets, int M,
                  int V);
void cpu_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                        int M, int V, int v0, int vc);
void cpu_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const double *stat, const float *dce,
                        const uint32_t *targets, int M, int v0, int vc);
double cpu_sumsq(dl_dev *d, const float *x, size_t n);
void cpu_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip);
void cpu_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
               float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
               uint16_t *bf16_copy);
void cpu_scale(dl_dev *d, float *x, float s, size_t n);
int cpu_select_tokens(dl_dev *d, const dl_select_args *a);
/* f32 activations x bf16 weights (linear_bf16w.c); contracts as the f32 ops */
void cpu_linear_fwd_bf16w(dl_dev *d, float *out, const float *inp, const uint16_t *w, const float *bias,
                          int N, int C, int O);
/* out (N,O) = inp (N,C) @ w (O,C)^T [+ bias]; w f32 (bf16 = 0) or bf16 (gemv.c) */
void cpu_gemv(dl_dev *d, float *out, const float *inp, const void *w, int bf16, const float *bias, int N, int C,
              int O);
/* linear_fwd from the packed copy of w (linear_packed.c); 0: w takes the
 * GEMM (over the memory limit, or out of memory) */
int cpu_linear_packed(dl_dev *d, float *out, const float *inp, const float *w, const float *bias, int N, int C, int O);
void cpu_packed_free(cpu_state *st);
/* Which twin cpu_linear_packed runs: 1 the AVX-512 one where the CPU has it
 * (the default), 0 the AVX2 / baseline one; -1 only asks.  Both compute each
 * element as the same FMA chain (tests/unit/test_linear_packed.c compares
 * them bit for bit). */
int cpu_packed_avx512(int on);
#define CPU_GEMV_NMAX 16   /* the most rows dl_dev_cpu_gemv accepts */
void cpu_embedding_fwd_bf16w(dl_dev *d, float *out, const uint32_t *ids, const uint16_t *wte, int N, int D);

/* Parallel GEMM: splits C into panels (by its shape alone) that d->threads
 * threads of the pool share (small problems run on the calling thread).
 * Inside a pool chunk use cpu_gemm_serial (a nested call runs serially). */
void cpu_gemm(const dl_dev *d, int ta, int tb, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* Same contract on the calling thread only: cblas_sgemm (d->use_blas) or the
 * blocked plain-C kernel. */
void cpu_gemm_serial(const dl_dev *d, int ta, int tb, int M, int N, int K, float alpha,
                     const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The blocked plain-C kernel itself (always built; the fallback, and the
 * reference the OpenBLAS path is tested against). */
void cpu_gemm_plain(int ta, int tb, int M, int N, int K, float alpha,
                    const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* The thread pool (pool.c).  A loop is cut into chunks that threads claim;
 * the caller runs chunks itself from the start and waits only for chunks a
 * worker has claimed, so a descheduled worker never stalls it.  fn(ctx, c,
 * tid) runs once for each chunk c < nchunks, on the caller (tid 0) or a
 * worker (0 < tid < nthreads); chunks must not depend on who runs them.
 * Must not be relied on to run in parallel: a nested or concurrent call runs
 * its chunks in order on the calling thread. */
typedef void (*cpu_chunk_fn)(void *ctx, long chunk, int tid);
void cpu_pool_run(int nthreads, long nchunks, cpu_chunk_fn fn, void *ctx);
/* For tests: on = 1 makes the workers take no chunks of the jobs posted
 * from now on, as if the OS had descheduled them; 0 ends it. */
void cpu_pool_hold(int on);
/* The idle threads' spin before they sleep, microseconds (pool.c: from
 * DLLM_POOL_SPIN_US, OMP_WAIT_POLICY or the default; read once). */
long cpu_pool_spin_us(void);
/* The common case: fn(ctx, lo, hi, tid) over [0, n) cut into ranges, with
 * the thread count cpu_nthreads(d, work, grain) and up to
 * CPU_CHUNKS_PER_THREAD ranges per thread, each of at least `grain` work.
 * For loops whose iterations are independent (the cut changes no result). */
typedef void (*cpu_range_fn)(void *ctx, long lo, long hi, int tid);
#define CPU_CHUNKS_PER_THREAD 2
void cpu_par_range(const dl_dev *d, long n, size_t work, size_t grain, cpu_range_fn fn, void *ctx);

/* Schedule helper: the thread count for a loop of `work` units of
 * roughly `grain` cost each (1 when the loop is too small to split). */
static inline int cpu_nthreads(const dl_dev *d, size_t work, size_t grain) {
    size_t t = work / (grain ? grain : 1);
    if (t < 1) t = 1;
    return t < (size_t)d->threads ? (int)t : d->threads;
}

/* exp(x) in float32 that the compiler can vectorise inside `#pragma omp
 * simd` loops (libm's expf is a call): x = n ln2 + r with n = round(x/ln2)
 * (the 1.5*2^23 trick), exp(r) by Cephes' expf polynomial on |r| <= ln2/2,
 * times 2^n built in the exponent bits.  Max relative error 8.1e-8 (1.4 ulp)
 * on [-87, 88]; 0 below about -88.03, +inf above about 88.38 (libm: 88.72);
 * NaN in, NaN out.  The input clamp works on the bits with integer compares
 * (float compares would stop GCC's if-conversion under -ftrapping-math). */
__attribute__((always_inline)) static inline float cpu_expf(float x) {
    int32_t xi;
    memcpy(&xi, &x, 4);
    int32_t mag = xi & 0x7fffffff, lim = xi < 0 ? 0x42b10000 /* 88.5 */ : 0x42b20000 /* 89 */;
    mag = mag > lim && mag <= 0x7f800000 ? lim : mag;     /* +-inf clamps, NaN stays */
    xi = (int32_t)((uint32_t)xi & 0x80000000u) | mag;
    memcpy(&x, &xi, 4);
    float t = x * 1.44269504088896341f + 12582912.0f;      /* round(x / ln2) + 1.5*2^23 */
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;                         /* ln2 split in two parts */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t ni;
    memcpy(&ni, &t, 4);
    ni -= 0x4B400000;                                       /* n as an integer */
    ni = ni < -127 ? -127 : ni;                             /* 2^-127 -> bits 0 -> 0.0 */
    ni = ni > 128 ? 128 : ni;                               /* 2^128 -> +inf */
    int32_t e = (ni + 127) << 23;
    float s;
    memcpy(&s, &e, 4);
    return p * s;
}

/* Row helpers for the softmax-shaped loops (attention, cross-entropy).
 * Written as 16 independent lanes so GCC vectorises them at -O2 with
 * register accumulators (an `omp simd reduction` keeps its partials in a
 * stack array there and runs ~3x slower).  Lane order is fixed, so results
 * do not depend on anything but n. */
#define CPU_LANES 16
__attribute__((always_inline)) static inline float cpu_row_max(const float *p, int n) {
    float m[CPU_LANES];
    for (int i = 0; i < CPU_LANES; i++) m[i] = -INFINITY;
    int j = 0;
    for (; j + CPU_LANES <= n; j += CPU_LANES)
#pragma omp simd
        for (int i = 0; i < CPU_LANES; i++) m[i] = p[j + i] > m[i] ? p[j + i] : m[i];
    float mx = -INFINITY;
    for (int i = 0; i < CPU_LANES; i++) mx = m[i] > mx ? m[i] : mx;
    for (; j < n; j++) mx = p[j] > mx ? p[j] : mx;
    return mx;
}
/* p[j] = exp(p[j] - mx); returns the sum (float32 lanes) */
__attribute__((always_inline)) static inline float cpu_row_exp_sum(float *p, int n, float mx) {
    float a[CPU_LANES] = { 0 };
    int j = 0;
    for (; j + CPU_LANES <= n; j += CPU_LANES)
#pragma omp simd
        for (int i = 0; i < CPU_LANES; i++) { float e = cpu_expf(p[j + i] - mx); p[j + i] = e; a[i] += e; }
    float s = 0.0f;
    for (; j < n; j++) { float e = cpu_expf(p[j] - mx); p[j] = e; s += e; }
    for (int i = 0; i < CPU_LANES; i++) s += a[i];
    return s;
}
/* the same with float64 lanes (wide vocabularies) */
__attribute__((always_inline)) static inline double cpu_row_exp_sum64(float *p, int n, float mx) {
    double a[CPU_LANES] = { 0 };
    int j = 0;
    for (; j + CPU_LANES <= n; j += CPU_LANES)
#pragma omp simd
        for (int i = 0; i < CPU_LANES; i++) { float e = cpu_expf(p[j + i] - mx); p[j + i] = e; a[i] += e; }
    double s = 0.0;
    for (; j < n; j++) { float e = cpu_expf(p[j] - mx); p[j] = e; s += e; }
    for (int i = 0; i < CPU_LANES; i++) s += a[i];
    return s;
}
/* sum_j p[j] * q[j] */
__attribute__((always_inline)) static inline float cpu_row_dot(const float *p, const float *q, int n) {
    float a[CPU_LANES] = { 0 };
    int j = 0;
    for (; j + CPU_LANES <= n; j += CPU_LANES)
#pragma omp simd
        for (int i = 0; i < CPU_LANES; i++) a[i] += p[j + i] * q[j + i];
    float s = 0.0f;
    for (; j < n; j++) s += p[j] * q[j];
    for (int i = 0; i < CPU_LANES; i++) s += a[i];
    return s;
}

/* Hot elementwise functions are built twice, x86-64-v3 (AVX2 + FMA) and the
 * baseline, and picked at load time (GCC target_clones, an ifunc). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__linux__)
#define DL_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DL_CLONES
#endif

#endif
