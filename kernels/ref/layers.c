/* kernels/ref/layers.c — reference embedding, RMSNorm, linear, RoPE, SwiGLU
 * and softmax cross-entropy: the formulas of kernels.h written as plain
 * loops over float64 (ref.h: ld / st convert the storage dtype).
 * Does not: threads, blocking, BLAS.
 */
#include "ref.h"

void ref_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D) {
    (void)d;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D; j++) st(out, dt, (size_t)n * D + j, ld(wte, wdt, (size_t)ids[n] * D + j));
}

void ref_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D) {
    (void)d;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < D; j++) dwte[(size_t)ids[n] * D + j] += (float)ld(dout, dt, (size_t)n * D + j);
}

void ref_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                     float eps) {
    (void)d;
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int j = 0; j < D; j++) { double a = ld(x, dt, (size_t)n * D + j); ss += a * a; }
        double r = 1.0 / sqrt(ss / D + eps);
        rstd[n] = (float)r;
        for (int j = 0; j < D; j++) st(y, dt, (size_t)n * D + j, ld(w, dt, j) * ld(x, dt, (size_t)n * D + j) * r);
    }
}

/* the reference of the fused op is the two ops it fuses */
void ref_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                         const void *w, int N, int D, float eps) {
    ref_add(d, dt, sum, a, b, (size_t)N * D);
    ref_rmsnorm_fwd(d, dt, y, rstd, sum, w, N, D, eps);
}

void ref_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                     const float *rstd, int N, int D) {
    (void)d;
    for (int n = 0; n < N; n++) {
        double r = rstd[n], dot = 0;
        for (int j = 0; j < D; j++) {
            size_t i = (size_t)n * D + j;
            dot += ld(dy, dt, i) * ld(w, dt, j) * ld(x, dt, i) * r;
        }
        double c = dot / D;
        for (int j = 0; j < D; j++) {
            size_t i = (size_t)n * D + j;
            double xh = ld(x, dt, i) * r;
            st(dx, dt, i, ld(dx, dt, i) + r * (ld(dy, dt, i) * ld(w, dt, j) - xh * c));
        }
    }
    for (int j = 0; dw && j < D; j++) {   /* dw NULL: a frozen norm */
        double s = 0;
        for (int n = 0; n < N; n++) s += ld(dy, dt, (size_t)n * D + j) * ld(x, dt, (size_t)n * D + j) * rstd[n];
        dw[j] += (float)s;
    }
}

void ref_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                    int N, int C, int O) {
    (void)d;
    for (int n = 0; n < N; n++)
        for (int o = 0; o < O; o++) {
            double s = bias ? ld(bias, dt, o) : 0.0;
            for (int c = 0; c < C; c++) s += ld(inp, dt, (size_t)n * C + c) * ld(w, wdt, (size_t)o * C + c);
            st(out, dt, (size_t)n * O + o, s);
        }
}

void ref_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout,
                    const void *inp, const void *w, int N, int C, int O) {
    (void)d;
    if (dinp)
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                double s = 0;
                for (int o = 0; o < O; o++) s += ld(dout, dt, (size_t)n * O + o) * ld(w, dt, (size_t)o * C + c);
                st(dinp, dt, (size_t)n * C + c, s);
            }
    for (int o = 0; dw && o < O; o++)   /* dw NULL: a frozen weight */
        for (int c = 0; c < C; c++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += ld(dout, dt, (size_t)n * O + o) * ld(inp, dt, (size_t)n * C + c);
            dw[(size_t)o * C + c] += (float)s;
        }
    if (dbias)
        for (int o = 0; o < O; o++) {
            double s = 0;
            for (int n = 0; n < N; n++) s += ld(dout, dt, (size_t)n * O + o);
            dbias[o] += (float)s;
        }
}

/* angle = pos * f_j in float32 as HF / llama2.c do; cos / sin in float64 */
void ref_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
              dl_rope_layout layout, int inverse) {
    (void)d;
    DL_K_ASSERT(E % 2 == 0);
    int half = E / 2;
    for (int n = 0; n < N; n++)
        for (int j = 0; j < half; j++) {
            float f = 1.0f / powf(theta, (float)(2 * j) / (float)E);
            double a = (double)((float)pos[n] * f), c = cos(a), s = inverse ? -sin(a) : sin(a);
            for (int h = 0; h < H; h++) {
                size_t base = ((size_t)n * H + h) * E;
                size_t i0 = base + (layout == DL_ROPE_HALF ? (size_t)j : 2 * (size_t)j);
                size_t i1 = layout == DL_ROPE_HALF ? i0 + half : i0 + 1;
                double u = ld(x, dt, i0), w = ld(x, dt, i1);
                st(x, dt, i0, u * c - w * s);
                st(x, dt, i1, w * c + u * s);
            }
        }
}

void ref_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F) {
    (void)d;
    for (size_t i = 0; i < (size_t)N * F; i++) {
        double g = ld(gate, dt, i);
        st(out, dt, i, g / (1.0 + exp(-g)) * ld(up, dt, i));
    }
}

void ref_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                    const void *up, int N, int F) {
    (void)d;
    for (size_t i = 0; i < (size_t)N * F; i++) {
        double g = ld(gate, dt, i), s = 1.0 / (1.0 + exp(-g)), u = ld(up, dt, i), go = ld(dout, dt, i);
        st(dup, dt, i, go * g * s);
        st(dgate, dt, i, go * u * s * (1.0 + g * (1.0 - s)));
    }
}

void ref_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs, const uint32_t *targets, int M, int V) {
    (void)d;
    for (int m = 0; m < M; m++) {
        size_t r = (size_t)m * V;
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++) mx = fmax(mx, ld(probs, dt, r + j));
        for (int j = 0; j < V; j++) s += exp(ld(probs, dt, r + j) - mx);
        ce[m] = (float)(log(s) - (ld(probs, dt, r + targets[m]) - mx));
        for (int j = 0; j < V; j++) st(probs, dt, r + j, exp(ld(probs, dt, r + j) - mx) / s);
    }
}

/* the chunked pair, in float64 throughout */
void ref_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                        int M, int V, int v0, int vc) {
    (void)d;
    for (int m = 0; m < M; m++) {
        double *s = stat + 3 * (size_t)m, mx = v0 == 0 ? -INFINITY : s[0];
        size_t r = (size_t)m * vc;
        for (int j = 0; j < vc; j++) mx = fmax(mx, ld(logits, dt, r + j));
        double sum = v0 == 0 ? 0 : s[1] * exp(s[0] - mx);
        for (int j = 0; j < vc; j++) sum += exp(ld(logits, dt, r + j) - mx);
        s[0] = mx; s[1] = sum;
        if (targets[m] >= (uint32_t)v0 && targets[m] < (uint32_t)(v0 + vc)) s[2] = ld(logits, dt, r + targets[m] - v0);
        if (v0 + vc == V) {
            s[0] = mx + log(sum);
            ce[m] = (float)(s[0] - s[2]);
        }
    }
}
void ref_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const double *stat, const float *dce,
                        const uint32_t *targets, int M, int v0, int vc) {
    (void)d;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < vc; j++) {
            size_t i = (size_t)m * vc + j;
            double p = exp(ld(dlogits, dt, i) - stat[3 * (size_t)m]);
            st(dlogits, dt, i, (double)dce[m] * (p - ((uint32_t)(v0 + j) == targets[m] ? 1.0 : 0.0)));
        }
}

void ref_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits, const float *dce, const uint32_t *targets, int M, int V) {
    (void)d;
    for (int m = 0; m < M; m++)
        for (int j = 0; j < V; j++) {
            size_t i = (size_t)m * V + j;
            st(dlogits, dt, i, (double)dce[m] * (ld(dlogits, dt, i) - ((uint32_t)j == targets[m] ? 1.0 : 0.0)));
        }
}
