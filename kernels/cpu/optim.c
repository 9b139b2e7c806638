/* kernels/cpu/optim.c — global-norm pieces and AdamW.
 *
 *   sumsq: sum of x^2 in float64 over fixed 64 Ki-element chunks
 *     (partials in a stack array, added in chunk order), so the result is
 *     the same bits whatever the thread count.
 *   adamw: torch.optim.AdamW (single-tensor path), same operation
 *     order, float32 per element, scalars formed in float64 first:
 *       g  = grad * grad_scale                        (or (float)dev_scale[0];
 *                                                      not finite: no change)
 *       p  = p * (1 - lr wd)                          param.mul_(1 - lr*wd)
 *       m  = m + (1 - b1) (g - m)                     exp_avg.lerp_(g, 1-b1)
 *       v  = v b2 + (1 - b2) g g                      mul_(b2).addcmul_(g, g, 1-b2)
 *       p  = p - (lr / bc1) (m / (sqrt(v) / sqrt(bc2) + eps))
 *     bc1 = 1 - b1^step, bc2 = 1 - b2^step.
 *   The hyper-parameters arrive as float, and 1 - b2 magnifies b2's float
 *   rounding (0.999f = 0.99900001287: 1 - b2 is off by 1.3e-5 relative, and
 *   so is every v).  So b1, b2 are first widened to the shortest decimal that
 *   rounds to them (0.999f -> 0.999), which is what PyTorch's Python floats
 *   hold; v then matches torch to float rounding.
 *   The bf16 compute copy, when asked for, is written in the same pass.
 *   grad_clip: cpu_sumsq and kernels.h's dl_k_clip_factor (the CPU's
 *     "device" memory is the host's).
 * Does not: AMSGrad, maximize, fused multi-tensor launches.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "cpu.h"

#define CHUNK 65536
#define MAXCHUNKS 4096

typedef struct {
    const float *x;
    size_t n, per;
    double *part;
} sumsq_job;

static void sumsq_chunk(void *arg, long c, int tid) {
    const sumsq_job *j = arg;
    (void)tid;
    size_t i0 = (size_t)c * j->per, i1 = i0 + j->per < j->n ? i0 + j->per : j->n;
    double s = 0.0;
#pragma omp simd reduction(+:s)
    for (size_t i = i0; i < i1; i++) s += (double)j->x[i] * j->x[i];
    j->part[c] = s;
}

double cpu_sumsq(dl_dev *d, const float *x, size_t n) {
    if (n == 0) return 0.0;
    size_t per = CHUNK, nch = (n + per - 1) / per;
    if (nch > MAXCHUNKS) { per = (n + MAXCHUNKS - 1) / MAXCHUNKS; nch = (n + per - 1) / per; }
    double part[MAXCHUNKS];
    sumsq_job j = { x, n, per, part };
    cpu_pool_run(cpu_nthreads(d, nch, 1), (long)nch, sumsq_chunk, &j);
    double s = 0.0;
    for (size_t c = 0; c < nch; c++) s += part[c];
    return s;
}

void cpu_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip) {
    norm_scale[0] = sqrt(cpu_sumsq(d, x, n));
    norm_scale[1] = dl_k_clip_factor(norm_scale[0], clip);
}

/* the shortest decimal (<= 9 digits) that rounds to x, as a double */
static double widen(float x) {
    char buf[32];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)x);
        double v = strtod(buf, NULL);
        if ((float)v == x) return v;
    }
    return x;
}

typedef struct {
    float *param, *m, *v;
    uint16_t *copy;   /* bf16 compute copy or NULL */
    const float *grad;
    float grad_scale, decay, w1, w2, b2, step_size, bc2_sqrt, eps;
} adamw_job;

static void adamw_range(void *arg, long lo, long hi, int tid) {
    const adamw_job *j = arg;
    float *param = j->param, *m = j->m, *v = j->v;
    const float *grad = j->grad;
    const float grad_scale = j->grad_scale, decay = j->decay, w1 = j->w1, w2 = j->w2, b2 = j->b2,
                step_size = j->step_size, bc2_sqrt = j->bc2_sqrt, eps = j->eps;
    (void)tid;
#pragma omp simd
    for (long i = lo; i < hi; i++) {
        float g = grad[i] * grad_scale;
        float p = param[i] * decay;
        float mi = m[i] + w1 * (g - m[i]);
        float vi = v[i] * b2 + w2 * g * g;
        m[i] = mi;
        v[i] = vi;
        param[i] = p - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
    }
    if (j->copy)
        for (long i = lo; i < hi; i++) j->copy[i] = dl_f32_to_bf16(param[i]);
}

void cpu_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr,
                float b1, float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
                uint16_t *bf16_copy) {
    if (dev_scale) grad_scale = (float)dev_scale[0];
    if (!isfinite(grad_scale)) return;
    const double B1 = widen(b1), B2 = widen(b2);
    const double bc1 = 1.0 - pow(B1, step), bc2 = 1.0 - pow(B2, step);
    adamw_job j = { .param = param, .m = m, .v = v, .copy = bf16_copy, .grad = grad, .grad_scale = grad_scale,
                    .decay = (float)(1.0 - (double)lr * wd), .w1 = (float)(1.0 - B1), .w2 = (float)(1.0 - B2),
                    .b2 = b2, .step_size = (float)((double)lr / bc1), .bc2_sqrt = (float)sqrt(bc2), .eps = eps };
    cpu_par_range(d, (long)n, n, 32768, adamw_range, &j);
}
