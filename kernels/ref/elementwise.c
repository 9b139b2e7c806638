/* kernels/ref/elementwise.c — reference add, gather / scatter-add, 2-D copy,
 * dtype conversion, and the fp32 optimizer pieces (sumsq, AdamW, scale).
 * AdamW follows kernels.h's formula in float64 from the float inputs (so it
 * differs from the CPU's float32 chain by rounding only).
 * Does not: threads, vectorisation.
 */
#include "ref.h"

void ref_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n) {
    (void)d;
    for (size_t i = 0; i < n; i++) st(y, dt, i, ld(a, dt, i) + ld(b, dt, i));
}
void ref_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n) {
    (void)d;
    for (size_t i = 0; i < n; i++) st(y, dt, i, ld(y, dt, i) + ld(x, dt, i));
}
void ref_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D) {
    (void)d;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < D; j++) st(out, dt, (size_t)m * D + j, ld(in, dt, (size_t)idx[m] * D + j));
}
void ref_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D) {
    (void)d;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < D; j++) {
            size_t o = (size_t)idx[m] * D + j;
            st(out, dt, o, ld(out, dt, o) + ld(in, dt, (size_t)m * D + j));
        }
}
void ref_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src, int rows,
                 int cols) {
    (void)d;
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) st(dst, dt, (size_t)r * ld_dst + c, ld(src, dt, (size_t)r * ld_src + c));
}
void ref_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n) {
    (void)d;
    for (size_t i = 0; i < n; i++) st(dst, dst_dt, i, ld(src, src_dt, i));
}

double ref_sumsq(dl_dev *d, const float *x, size_t n) {
    (void)d;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}
void ref_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip) {
    norm_scale[0] = sqrt(ref_sumsq(d, x, n));
    norm_scale[1] = dl_k_clip_factor(norm_scale[0], clip);
}
void ref_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
               float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
               uint16_t *bf16_copy) {
    (void)d;
    if (dev_scale) grad_scale = (float)dev_scale[0];
    if (!isfinite(grad_scale)) return;
    double bc1 = 1.0 - pow(b1, step), bc2 = 1.0 - pow(b2, step);
    for (size_t i = 0; i < n; i++) {
        double g = (double)grad[i] * grad_scale, p = param[i] * (1.0 - (double)lr * wd);
        double mi = m[i] + (1.0 - b1) * (g - m[i]), vi = b2 * (double)v[i] + (1.0 - b2) * g * g;
        m[i] = (float)mi;
        v[i] = (float)vi;
        param[i] = (float)(p - (lr / bc1) * (mi / (sqrt(vi) / sqrt(bc2) + eps)));
        if (bf16_copy) bf16_copy[i] = dl_f32_to_bf16(param[i]);
    }
}
void ref_scale(dl_dev *d, float *x, float s, size_t n) {
    (void)d;
    for (size_t i = 0; i < n; i++) x[i] = (float)((double)x[i] * s);
}
