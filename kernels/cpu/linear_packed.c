/* kernels/cpu/linear_packed.c — linear_fwd for inference from f32 weights
 * repacked once into column panels, so no GEMM packs them again per call.
 *
 *   out (N,O) = inp (N,C) @ w (O,C)^T [+ bias (O)]
 *   packed copy p: [ceil(O/32) panels][C][32]  (panel j holds output columns
 *   32j .. 32j+31 for every k; columns past O are zero)
 *
 * Why: a cached diffusion step (dllm-sample --cache dual/prefix) runs every
 * linear on the 32 rows of one block.  OpenBLAS then spends about a third of
 * its time packing the weight (sgemm_incopy) that it multiplies by only 32
 * rows; measured on one Zen 4 core, 226 MB of 768 x 768 weights at 32 rows:
 * OpenBLAS 68 GFLOP/s, this kernel on the packed copy 100-107.  The copy is
 * made on first use (one per weight pointer) and kept until the switch goes
 * off or the device closes.
 *
 * Summation order: each output element is one fused multiply-add chain over
 * k = 0 .. C-1 in order, then + bias.  It depends on nothing else (not N,
 * the tile, the thread count or the ISA clone's vector width), so a block
 * of rows gives exactly the values the same rows give in a full forward —
 * the exactness block diffusion's cache relies on.  It differs from the
 * GEMM's order (about 1e-6 relative), hence the switch.
 *
 * Memory: one more copy of each f32 weight used while on (the 85M model:
 * 341 MB).  Packing stops at a quarter of physical memory; a weight past
 * that is marked and always takes the GEMM, so each weight keeps one path.
 * Does not: bf16 weights (linear_bf16w.c), backward, weights that change
 * while the switch is on (the copy would go stale: inference only).
 */
#include <stdlib.h>
#include <unistd.h>
#include "cpu.h"

#define PK_W 32      /* output columns per panel */
#define PK_NCHUNK 256 /* rows per pass over the weight: the rows' inputs stay in L2 */

typedef struct cpu_packed {
    const float *w;   /* the weight this copies (the key) */
    int C, O;
    float *p;         /* [ceil(O/PK_W)][C][PK_W]; NULL: not packed (over the limit), use the GEMM */
} cpu_packed;

void cpu_packed_free(cpu_state *st) {
    for (int i = 0; i < st->n_packed; i++) free(st->packed[i].p);
    free(st->packed);
    st->packed = NULL;
    st->n_packed = st->cap_packed = 0;
    st->packed_bytes = 0;
}

static size_t pack_limit(void) {
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0 || psz <= 0) return (size_t)1 << 30;
    return (size_t)pages * (size_t)psz / 4;
}

typedef struct {
    float *p, *out;          /* the packed copy; out (N,O) */
    const float *w, *inp, *bias;
    int C, O, r0, r1, avx512;
} pk_job;

/* panels j0..j1 of the copy from w (O,C) */
static void pack_panels(void *arg, long j0, long j1, int tid) {
    const pk_job *jb = arg;
    const int C = jb->C, O = jb->O;
    (void)tid;
    for (long j = j0; j < j1; j++) {
        float *pj = jb->p + (size_t)j * C * PK_W;
        for (int c = 0; c < C; c++)
            for (int l = 0; l < PK_W; l++) {
                long o = j * PK_W + l;
                pj[(size_t)c * PK_W + l] = o < O ? jb->w[(size_t)o * C + c] : 0.0f;
            }
    }
}

/* The copy of w (O,C), made on first use; NULL when w takes the GEMM. */
static const float *packed_of(dl_dev *d, const float *w, int C, int O) {
    cpu_state *st = cpu_st(d);
    for (int i = 0; i < st->n_packed; i++)
        if (st->packed[i].w == w && st->packed[i].C == C && st->packed[i].O == O) return st->packed[i].p;
    if (st->n_packed == st->cap_packed) {
        int cap = st->cap_packed ? 2 * st->cap_packed : 64;
        cpu_packed *t = realloc(st->packed, sizeof *t * (size_t)cap);
        if (!t) return NULL;   /* no table entry: this call takes the GEMM, the next one asks again */
        st->packed = t;
        st->cap_packed = cap;
    }
    int np = (O + PK_W - 1) / PK_W;
    size_t bytes = sizeof(float) * (size_t)np * PK_W * (size_t)C;
    float *p = NULL;
    if (st->packed_bytes + bytes <= pack_limit()) p = aligned_alloc(64, bytes);
    if (p) {
        st->packed_bytes += bytes;
        pk_job j = { .p = p, .w = w, .C = C, .O = O };
        cpu_par_range(d, np, bytes, 1 << 20, pack_panels, &j);
    }
    st->packed[st->n_packed++] = (cpu_packed){ .w = w, .C = C, .O = O, .p = p };
    return p;
}

/* One tile: rows n0 .. n0+MR-1 (the callers keep them below their r1 <= N)
 * times columns c0 .. c0+NV*VW-1 of panel pp (output columns o + c0 ..).
 * Each element: a[m][v] lane chain over k in order, then + bias. */
#define PK_TILE(VT, VW, NV, MR)                                                                               \
    do {                                                                                                      \
        const float *xr[MR];                                                                                  \
        for (int m = 0; m < MR; m++) xr[m] = inp + (size_t)(n0 + m) * C;                                      \
        VT a[MR][NV];                                                                                         \
        memset(a, 0, sizeof a);                                                                               \
        for (int k = 0; k < C; k++) {                                                                         \
            VT b[NV];                                                                                         \
            _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++)                                              \
                memcpy(&b[v], pp + (size_t)k * PK_W + c0 + v * VW, sizeof b[v]);                              \
            _Pragma("GCC unroll 16") for (int m = 0; m < MR; m++) {                                           \
                float s = xr[m][k];                                                                           \
                _Pragma("GCC unroll 8") for (int v = 0; v < NV; v++) a[m][v] += s * b[v];                     \
            }                                                                                                 \
        }                                                                                                     \
        for (int m = 0; m < MR; m++) {                                                                        \
            float r[NV * VW];                                                                                 \
            memcpy(r, a[m], sizeof r);                                                                        \
            float *q = out + (size_t)(n0 + m) * O + o + c0;                                                   \
            for (int l = 0; l < NV * VW && o + c0 + l < O; l++) q[l] = bias ? r[l] + bias[o + c0 + l] : r[l]; \
        }                                                                                                     \
    } while (0)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11 && defined(__linux__)
#define PK_HAVE_AVX512 1
typedef float pk16 __attribute__((vector_size(64)));
/* AVX-512: 8 rows x the whole panel (2 vectors of 16): 16 accumulators,
 * 2 loads of the packed weight and 8 broadcasts per 16 FMAs. */
__attribute__((target("arch=x86-64-v4"), optimize("fp-contract=fast")))
static void panel_rows_avx512(float *out, const float *inp, const float *pp, const float *bias, int C, int O,
                              int o, int r0, int r1) {
    const int c0 = 0;
    int n0 = r0;
    for (; n0 + 8 <= r1; n0 += 8) PK_TILE(pk16, 16, 2, 8);
    for (; n0 < r1; n0++) PK_TILE(pk16, 16, 2, 1);
}
#endif

#if defined(__GNUC__)
typedef float pk8 __attribute__((vector_size(32)));
/* AVX2 (and the baseline): half a panel at a time, 6 rows x 2 vectors of 8:
 * 12 accumulators of the 16 registers. */
DL_CLONES __attribute__((optimize("fp-contract=fast")))
static void panel_rows_avx2(float *out, const float *inp, const float *pp, const float *bias, int C, int O,
                            int o, int r0, int r1) {
    for (int c0 = 0; c0 < PK_W; c0 += 16) {
        int n0 = r0;
        for (; n0 + 6 <= r1; n0 += 6) PK_TILE(pk8, 8, 2, 6);
        for (; n0 < r1; n0++) PK_TILE(pk8, 8, 2, 1);
    }
}
#else
static void panel_rows_avx2(float *out, const float *inp, const float *pp, const float *bias, int C, int O,
                            int o, int r0, int r1) {
    for (int n = r0; n < r1; n++)
        for (int l = 0; l < PK_W && o + l < O; l++) {
            float s = 0.0f;
            for (int k = 0; k < C; k++) s += inp[(size_t)n * C + k] * pp[(size_t)k * PK_W + l];
            out[(size_t)n * O + o + l] = bias ? s + bias[o + l] : s;
        }
}
#endif

static int pk_avx512 = -1;   /* -1: not yet asked; set from one host thread (ops on a dl_dev are) */

int cpu_packed_avx512(int on) {
#ifdef PK_HAVE_AVX512
    int have = __builtin_cpu_supports("avx512f") ? 1 : 0;
    if (pk_avx512 < 0 || on >= 0) pk_avx512 = on == 0 ? 0 : have;
#else
    (void)on;
    pk_avx512 = 0;
#endif
    return pk_avx512;
}

/* panels j0..j1 of out for rows r0..r1 */
static void panels_rows(void *arg, long j0, long j1, int tid) {
    const pk_job *jb = arg;
    (void)tid;
    for (long j = j0; j < j1; j++) {
        const float *pp = jb->p + (size_t)j * jb->C * PK_W;
#ifdef PK_HAVE_AVX512
        if (jb->avx512) {
            panel_rows_avx512(jb->out, jb->inp, pp, jb->bias, jb->C, jb->O, (int)j * PK_W, jb->r0, jb->r1);
            continue;
        }
#endif
        panel_rows_avx2(jb->out, jb->inp, pp, jb->bias, jb->C, jb->O, (int)j * PK_W, jb->r0, jb->r1);
    }
}

int cpu_linear_packed(dl_dev *d, float *out, const float *inp, const float *w, const float *bias, int N, int C, int O) {
    const float *p = packed_of(d, w, C, O);
    if (!p) return 0;
    int np = (O + PK_W - 1) / PK_W;
    const int avx512 = pk_avx512 < 0 ? cpu_packed_avx512(-1) : pk_avx512;
    pk_job j = { .p = (float *)p, .out = out, .inp = inp, .bias = bias, .C = C, .O = O, .avx512 = avx512 };
    for (int r0 = 0; r0 < N; r0 += PK_NCHUNK) {
        j.r0 = r0;
        j.r1 = N - r0 < PK_NCHUNK ? N : r0 + PK_NCHUNK;
        /* threads take disjoint panels (columns): no element depends on the thread count */
        cpu_par_range(d, np, (size_t)N * C * O, 1 << 20, panels_rows, &j);
    }
    return 1;
}
