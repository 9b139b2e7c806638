/* kernels/cpu/cpu.h — internals shared by the CPU kernels (not an API).
 *
 * Threading model (one pool): OpenMP owns every thread.  OpenBLAS is put in
 * single-threaded mode by dl_dev_open (openblas_set_num_threads(1)) and each
 * GEMM is split into row or column panels by cpu_gemm, one single-threaded
 * sgemm per OpenMP thread; attention calls cpu_gemm_serial inside its own
 * OpenMP loop over (b, h).  So parallel regions never nest and the OpenBLAS
 * thread pool never competes with the OpenMP one for the cores.  See dev.c.
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
#include "kernels.h"

struct dl_dev {
    dl_dev_kind kind;
    int threads;          /* OpenMP threads every op uses (>= 1) */
    int use_blas;         /* 1: cblas_sgemm (only when built with OpenBLAS); 0: plain C */
    char desc[160];       /* dl_dev_describe */
    /* RoPE cos/sin table (rope.c), the one scratch an op allocates itself:
     * rope_tab[(p * E/2 + j) * 2 + {0: cos, 1: sin}] for positions
     * p < rope_npos, built for (rope_theta, rope_E); rebuilt when those change
     * or a larger position shows up; freed by dl_dev_close.  Ops on one
     * dl_dev are called from one host thread at a time. */
    float *rope_tab;
    int rope_npos, rope_E;
    float rope_theta;
};

/* Parallel GEMM: splits C into panels across d->threads OpenMP threads (small
 * problems run on the calling thread).  Must not be called from inside an
 * OpenMP parallel region; use cpu_gemm_serial there. */
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

/* OpenMP schedule helper: the thread count for a loop of `work` units of
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
