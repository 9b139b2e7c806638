/* kernels/cpu/attention_kv.c — causal attention of n new queries per row
 * against a KV cache (incremental autoregressive decoding, dl_model_kv.c).
 *
 * Shapes: q, out (B, n, Hq, E); kcache, vcache (B, Tmax, Hk, E), already
 * holding the keys / values of the n new tokens at positions
 * n_past[b] .. n_past[b] + n - 1 (the caller writes them first).
 * Query j of row b (position n_past[b] + j) sees keys [0, n_past[b] + j],
 * clamped to Tmax; GQA: query head h reads kv head h / (Hq / Hk);
 * scale = 1/sqrt(E).  Same result as the full attention forward DL_ATTN_CAUSAL over
 * the whole prefix, up to fp32 rounding (no (T, T) matrix is kept: nothing
 * here has a backward).
 *
 * One query at a time, online softmax (running max m, running sum l,
 * unnormalised accumulator acc of E floats, rescaled by exp(m_old - m_new)
 * when a chunk of KC keys raises the max), so the op needs no scratch:
 * scores of one chunk live on the stack.  exp is cpu_expf (cpu.h), as in
 * the full attention.  Pool chunks over the B*Hq*n (row, head, query) tasks
 * when there is enough work.  A query with no visible key (n_past[b] + j
 * < 0, which callers never pass) gets out = 0.
 * Does not: paged / ring caches, sliding windows, bf16 caches.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "cpu.h"

#define KC 128          /* keys per online-softmax chunk */
#define EMAX 1024       /* head dim bound of the on-stack accumulator */

DL_CLONES static void one_query(float *o, const float *q, const float *K, const float *V, size_t ldk, int nk,
                                int E, float scale) {
    float acc[EMAX], s[KC];
    float m = -INFINITY, l = 0.0f;
    memset(acc, 0, sizeof(float) * (size_t)E);
    for (int t0 = 0; t0 < nk; t0 += KC) {
        int c = nk - t0 < KC ? nk - t0 : KC;
        for (int t = 0; t < c; t++) {
            const float *k = K + (size_t)(t0 + t) * ldk;
            float a = 0.0f;
#pragma omp simd reduction(+ : a)
            for (int e = 0; e < E; e++) a += q[e] * k[e];
            s[t] = scale * a;
        }
        float cm = cpu_row_max(s, c);
        if (cm > m) {   /* rescale what was accumulated under the old max */
            float r = cpu_expf(m - cm);   /* m = -inf on the first chunk: r = 0, acc and l are 0 anyway */
            l *= r;
#pragma omp simd
            for (int e = 0; e < E; e++) acc[e] *= r;
            m = cm;
        }
        l += cpu_row_exp_sum(s, c, m);
        for (int t = 0; t < c; t++) {
            const float *v = V + (size_t)(t0 + t) * ldk;
            float p = s[t];
#pragma omp simd
            for (int e = 0; e < E; e++) acc[e] += p * v[e];
        }
    }
    float inv = nk > 0 ? 1.0f / l : 0.0f;
#pragma omp simd
    for (int e = 0; e < E; e++) o[e] = acc[e] * inv;
}

typedef struct {
    const dl_dev *d;
    float *out, *scr;          /* scr (nt, n, Tmax): attend_window's score block per thread */
    const float *q, *kcache, *vcache;
    const int32_t *rows, *base;   /* base: attend_cache's n_past, or attend_window's n_keys */
    int causal, n, Tmax, Hq, Hk, E, rep;
    size_t ldq, ldk;
    float scale;
} kv_job;

/* task t = (b, h, query j) */
static void cache_task(void *arg, long t, int tid) {
    const kv_job *jb = arg;
    const int n = jb->n, Hq = jb->Hq, Tmax = jb->Tmax, E = jb->E;
    const size_t ldq = jb->ldq, ldk = jb->ldk;
    (void)tid;
    int j = (int)(t % n), h = (int)(t / n % Hq), b = (int)(t / n / Hq), g = h / jb->rep;
    int nk = jb->base[b] + (jb->causal ? j + 1 : 0);
    nk = nk > Tmax ? Tmax : nk < 0 ? 0 : nk;
    size_t r = jb->rows ? (size_t)jb->rows[b] : (size_t)b;
    const float *Q = jb->q + ((size_t)b * n + j) * ldq + (size_t)h * E;
    const float *K = jb->kcache + r * Tmax * ldk + (size_t)g * E;
    const float *V = jb->vcache + r * Tmax * ldk + (size_t)g * E;
    one_query(jb->out + ((size_t)b * n + j) * ldq + (size_t)h * E, Q, K, V, ldk, nk, E, jb->scale);
}

/* Both cache ops: query j of row b reads cache row rows[b] (b when NULL),
 * keys [0, base[b] + (causal ? j + 1 : 0)) clamped to [0, Tmax]. */
static void attend_cache(dl_dev *d, float *out, const float *q, const float *kcache, const float *vcache,
                         const int32_t *rows, const int32_t *base, int causal, int B, int n, int Tmax,
                         int Hq, int Hk, int E) {
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0 && E <= EMAX && n >= 0);
    size_t work = 0;   /* multiply-adds, to decide whether threads pay off */
    for (int b = 0; b < B; b++) work += (size_t)(base[b] > 0 ? base[b] : 0) + (size_t)(causal ? n : 0);
    work *= (size_t)Hq * n * E * 2;
    kv_job jb = { .d = d, .out = out, .q = q, .kcache = kcache, .vcache = vcache, .rows = rows, .base = base,
                  .causal = causal, .n = n, .Tmax = Tmax, .Hq = Hq, .Hk = Hk, .E = E, .rep = Hq / Hk,
                  .ldq = (size_t)Hq * E, .ldk = (size_t)Hk * E, .scale = 1.0f / sqrtf((float)E) };
    cpu_pool_run(cpu_nthreads(d, work, 65536), (long)B * Hq * n, cache_task, &jb);
}

/* task t = (b, h): all n queries of row b against its n_keys[b] keys */
static void window_task(void *arg, long t, int tid) {
    const kv_job *jb = arg;
    const int n = jb->n, Hq = jb->Hq, Tmax = jb->Tmax, E = jb->E;
    const size_t ldq = jb->ldq, ldk = jb->ldk;
    int h = (int)(t % Hq), b = (int)(t / Hq), g = h / jb->rep;
    int nk = jb->base[b] > Tmax ? Tmax : jb->base[b] < 0 ? 0 : jb->base[b];
    float *O = jb->out + (size_t)b * n * ldq + (size_t)h * E;   /* query j at O + j ldq */
    if (nk == 0) {
        for (int j = 0; j < n; j++) memset(O + (size_t)j * ldq, 0, sizeof(float) * (size_t)E);
        return;
    }
    size_t r = jb->rows ? (size_t)jb->rows[b] : (size_t)b;
    const float *Q = jb->q + (size_t)b * n * ldq + (size_t)h * E;
    const float *K = jb->kcache + r * Tmax * ldk + (size_t)g * E, *V = jb->vcache + r * Tmax * ldk + (size_t)g * E;
    float *S = jb->scr + (size_t)tid * n * Tmax;
    cpu_gemm_serial(jb->d, 0, 1, n, nk, E, jb->scale, Q, (int)ldq, K, (int)ldk, 0.0f, S, nk);
    for (int j = 0; j < n; j++) {
        float *row = S + (size_t)j * nk;
        float inv = 1.0f / cpu_row_exp_sum(row, nk, cpu_row_max(row, nk));
#pragma omp simd
        for (int k = 0; k < nk; k++) row[k] *= inv;
    }
    cpu_gemm_serial(jb->d, 0, 0, n, E, nk, 1.0f, S, nk, V, (int)ldk, 0.0f, O, (int)ldq);
}

void cpu_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *outv, const void *qv, const void *kcv,
                          const void *vcv, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E) {
    CPU_F32(dt);
    attend_cache(d, outv, qv, kcv, vcv, NULL, n_past, 1, B, n, Tmax, Hq, Hk, E);
}

/* The window variant (kernels.h dl_k_attention_cached_fwd): every query of
 * row b sees keys [0, n_keys[b]) of cache row rows[b].  All queries of a row
 * see the same keys, so per (row, head) this is attention.c's forward
 * shape: scores S (n, nk) = scale Q K^T by one single-threaded sgemm, a
 * row softmax, out = (S / l) V by another; one query at a time with E = 8
 * (stories260K) had made --cache prefix slower than no cache.  Scratch:
 * one (n, Tmax) score block per thread; without it, the one-query loop. */
static int attend_window(dl_dev *d, float *out, const float *q, const float *kcache, const float *vcache,
                         const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax, int Hq, int Hk, int E) {
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0 && n >= 0);
    size_t work = 0;
    for (int b = 0; b < B; b++) work += (size_t)(n_keys[b] > 0 ? n_keys[b] : 0);
    work *= (size_t)Hq * n * E * 2;
    const int nt = cpu_nthreads(d, work, 65536);
    float *scr = malloc((size_t)nt * n * (Tmax > 0 ? Tmax : 1) * sizeof *scr);   /* (nt, n, Tmax) */
    if (!scr) return -1;
    kv_job jb = { .d = d, .out = out, .scr = scr, .q = q, .kcache = kcache, .vcache = vcache, .rows = rows,
                  .base = n_keys, .n = n, .Tmax = Tmax, .Hq = Hq, .Hk = Hk, .E = E, .rep = Hq / Hk,
                  .ldq = (size_t)Hq * E, .ldk = (size_t)Hk * E, .scale = 1.0f / sqrtf((float)E) };
    cpu_pool_run(nt, (long)B * Hq, window_task, &jb);
    free(scr);
    return 0;
}

void cpu_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *outv, const void *qv, const void *kcv,
                              const void *vcv, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                              int Hq, int Hk, int E) {
    CPU_F32(dt);
    if (attend_window(d, outv, qv, kcv, vcv, rows, n_keys, B, n, Tmax, Hq, Hk, E))   /* no scratch */
        attend_cache(d, outv, qv, kcv, vcv, rows, n_keys, 0, B, n, Tmax, Hq, Hk, E);
}
