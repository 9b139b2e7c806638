/* kernels/cpu/rope.c — rotary position embedding, in place, both layouts.
 *
 * Row n of x (N, H, E) is rotated by angles pos[n] * f_j, f_j = theta^(-2j/E),
 * j = 0..E/2-1, the same rotation for each of the H heads:
 *   DL_ROPE_HALF  (HF rotate_half)  pairs (x[j], x[j + E/2])
 *   DL_ROPE_PAIRS (Meta, llama2.c)  pairs (x[2j], x[2j+1])
 *   (a, b) -> (a cos - b sin, b cos + a sin);  inverse = 1 uses -sin, which
 *   is R^T, i.e. the backward of the forward rotation.
 * f_j and the angle are float32 as in HF and llama2.c (powf, pos * f_j);
 * cos/sin of that float angle are taken in float64 and rounded.
 * cos/sin come from a per-device table over positions (cpu.h: cpu_state.rope_tab,
 * built on first use for (theta, E), 4096 positions or more); rows with a
 * negative or huge position compute their own.  Split over rows; E <= 1024.
 * Does not: scaled / NTK / YaRN RoPE variants, partial rotary dims.
 */
#include <math.h>
#include <stdlib.h>
#include "cpu.h"

#define EMAX 1024

/* cos and sin of pos * f_j, j < E/2, into cs[2j], cs[2j+1] */
static void angles(float *cs, int32_t pos, const float *freq, int half) {
    for (int j = 0; j < half; j++) {
        float a = (float)pos * freq[j];
        cs[2 * j] = (float)cos((double)a);
        cs[2 * j + 1] = (float)sin((double)a);
    }
}

typedef struct {
    float *x;            /* rows to rotate, or the table to fill */
    const float *freq, *tab;
    const int32_t *pos;
    int H, E;
    dl_rope_layout layout;
    float sgn;           /* -1: the inverse rotation */
} rope_job;

static void table_rows(void *arg, long r0, long r1, int tid) {
    const rope_job *j = arg;
    (void)tid;
    for (long p = r0; p < r1; p++) angles(j->x + (size_t)p * j->E, (int32_t)p, j->freq, j->E / 2);
}

static void rope_rows(void *arg, long r0, long r1, int tid) {
    const rope_job *jb = arg;
    float *x = jb->x;
    const float *freq = jb->freq, *tab = jb->tab, sgn = jb->sgn;
    const int32_t *pos = jb->pos;
    const int H = jb->H, E = jb->E, half = E / 2;
    const dl_rope_layout layout = jb->layout;
    (void)tid;
    for (long n = r0; n < r1; n++) {
        float own[EMAX];
        const float *cs = tab ? tab + (size_t)pos[n] * E : own;
        if (!tab) angles(own, pos[n], freq, half);
        float c[EMAX / 2], s[EMAX / 2];
        for (int j = 0; j < half; j++) { c[j] = cs[2 * j]; s[j] = sgn * cs[2 * j + 1]; }
        for (int h = 0; h < H; h++) {
            float *v = x + ((size_t)n * H + h) * E;
            if (layout == DL_ROPE_HALF) {
                float *lo = v, *hi = v + half;
#pragma omp simd
                for (int j = 0; j < half; j++) {
                    float a = lo[j], b = hi[j];
                    lo[j] = a * c[j] - b * s[j];
                    hi[j] = b * c[j] + a * s[j];
                }
            } else {
                for (int j = 0; j < half; j++) {
                    float a = v[2 * j], b = v[2 * j + 1];
                    v[2 * j] = a * c[j] - b * s[j];
                    v[2 * j + 1] = b * c[j] + a * s[j];
                }
            }
        }
    }
}

/* the table of d->rope_tab for positions 0..maxpos, or NULL (then rows
 * compute their own angles: same values, slower) */
static const float *table(dl_dev *dv, int32_t maxpos, const float *freq, int E, float theta) {
    cpu_state *d = cpu_st(dv);
    if (d->rope_tab && d->rope_E == E && d->rope_theta == theta && maxpos < d->rope_npos) return d->rope_tab;
    int npos = maxpos + 1 < 4096 ? 4096 : maxpos + 1;
    if (d->rope_E == E && d->rope_theta == theta && npos < 2 * d->rope_npos) npos = 2 * d->rope_npos;
    free(d->rope_tab);
    d->rope_tab = malloc(sizeof(float) * (size_t)npos * E);
    d->rope_npos = d->rope_tab ? npos : 0;
    d->rope_E = E;
    d->rope_theta = theta;
    if (!d->rope_tab) return NULL;
    rope_job j = { .x = d->rope_tab, .freq = freq, .E = E };
    cpu_par_range(dv, npos, (size_t)npos * E, 8192, table_rows, &j);
    return d->rope_tab;
}

void cpu_rope(dl_dev *d, dl_dtype dt, void *xv, const int32_t *pos, int N, int H, int E, float theta,
              dl_rope_layout layout, int inverse) {
    CPU_F32(dt);
    DL_K_ASSERT(E % 2 == 0 && E <= EMAX);
    float *x = xv;
    int half = E / 2;
    float freq[EMAX / 2];
    for (int j = 0; j < half; j++) freq[j] = 1.0f / powf(theta, (float)(2 * j) / (float)E);
    int32_t minpos = 0, maxpos = 0;
    for (int n = 0; n < N; n++) {
        if (pos[n] < minpos) minpos = pos[n];
        if (pos[n] > maxpos) maxpos = pos[n];
    }
    const float *tab = minpos >= 0 && maxpos < (1 << 20) ? table(d, maxpos, freq, E, theta) : NULL;
    rope_job j = { .x = x, .freq = freq, .tab = tab, .pos = pos, .H = H, .E = E, .layout = layout,
                   .sgn = inverse ? -1.0f : 1.0f };
    cpu_par_range(d, N, (size_t)N * H * E, 16384, rope_rows, &j);
}
