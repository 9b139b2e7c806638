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
 * OpenMP over rows; the E/2 cos/sin of a row live on the stack (E <= 1024).
 * Does not: scaled / NTK / YaRN RoPE variants, partial rotary dims.
 */
#include <math.h>
#include "dl_base.h"
#include "cpu.h"

#define EMAX 1024

void dl_k_rope(dl_dev *d, float *x, const int32_t *pos, int N, int H, int E, float theta,
               dl_rope_layout layout, int inverse) {
    DL_ASSERT(E % 2 == 0 && E <= EMAX);
    int half = E / 2;
    float freq[EMAX / 2];
    for (int j = 0; j < half; j++) freq[j] = 1.0f / powf(theta, (float)(2 * j) / (float)E);
#pragma omp parallel for num_threads(cpu_nthreads(d, (size_t)N * H * E, 16384)) schedule(static)
    for (int n = 0; n < N; n++) {
        float c[EMAX / 2], s[EMAX / 2];
        for (int j = 0; j < half; j++) {
            float a = (float)pos[n] * freq[j];
            c[j] = (float)cos((double)a);
            s[j] = (float)sin((double)a);
            if (inverse) s[j] = -s[j];
        }
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
