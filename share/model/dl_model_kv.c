/* dl_model_kv.c — incremental causal inference with a KV cache (dl_model.h,
 * "KV cache"): the forward of dl_model.c for only the NEW tokens of each
 * row, attending to the cached keys / values of the earlier ones.
 *
 *   x = embed[new ids]
 *   per layer: h = rmsnorm(x) → q, k, v (→ q_norm / k_norm) → RoPE at positions pos0[b] + j
 *              → k, v of the valid new tokens copied into the cache
 *              → dl_k_attention_kv_fwd (query j sees cache [0, pos0[b]+j])
 *              → o_proj → x += · → MLP → x += ·
 *   final rmsnorm + head at each row's last valid new token only.
 *
 * Conventions
 *  - Same kernels and order as dl_model_forward, so the logits equal a full
 *    causal recompute up to the attention's summation order (fp32 rounding).
 *  - One device allocation: cache (per layer K then V, each (B, T_max, Hk*E))
 *    followed by the activations of B*n_max tokens; small host arrays for
 *    positions and row indices, copied in with dl_dev_h2d each call (pos0 and
 *    n_valid are host arrays: the sampler knows them there).
 *  - Padding slots (j >= n_valid[b]) run through the layers like the others
 *    (one GEMM per linear for the whole batch) but are never written to the
 *    cache, so a row with a shorter prompt is not disturbed; their own
 *    attention reads whatever the cache holds past the row's end (finite:
 *    zero-filled at allocation, later stale values) and is discarded.
 * dtype: the model's compute dtype (m->dtype): with bf16 compute the cache
 * holds bf16 keys / values and the activations are bf16; the logits come
 * out in f32 (a bf16 head GEMM, then one conversion), as samplers read.
 * Does not: training / backward, bidirectional or block masks, cache
 * eviction or sliding windows, sharing a prefix between rows.
 */
#include <stdlib.h>
#include <string.h>
#include "dl_model.h"

#define ALIGN_F 64

static size_t align_up(size_t n) { return (n + ALIGN_F - 1) / ALIGN_F * ALIGN_F; }

struct dl_kv {
    dl_dev *dev;
    int B, T_max, n_max;
    int n_layers, D, QD, KD, F, V;   /* the model shape it was made for */
    float *block; size_t n;          /* the one device allocation (floats) */
    float **kc, **vc;                /* host arrays (n_layers) of device views (B, T_max, KD) */
    float *x, *h, *rstd, *q, *k, *v, *ao, *tmp, *gate, *up, *act;   /* (N, ...) activations */
    float *xg, *hs, *rstd_h;         /* (B, D) (B, D) (B) head at the last valid token */
    float *logits16;                 /* bf16 compute only: (B, V) bf16 logits before the f32 copy out */
    dl_qk_norm_acts qk;              /* qk_norm only: (N, QD) (N, KD) (N*Hq) (N*Hk), else NULLs */
    int32_t *pos, *past, *sel;       /* device (N) (B) (B) */
    int32_t *h_pos, *h_sel;          /* host (N) (B) */
};

int dl_model_kv_init(dl_kv **out, const dl_model *m, int B, int T_max, int n_max, char *err, size_t errlen) {
    *out = NULL;
    const dl_config *c = &m->cfg;
    if (B <= 0 || T_max <= 0 || n_max <= 0 || n_max > T_max)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "kv cache: bad shape B=%d T_max=%d n_max=%d", B, T_max, n_max);
    dl_kv *kv = calloc(1, sizeof *kv);
    if (!kv) return dl_seterr(err, errlen, -DL_EXIT_IO, "kv cache: out of memory");
    kv->dev = m->dev;
    kv->B = B; kv->T_max = T_max; kv->n_max = n_max;
    kv->n_layers = c->n_layers; kv->D = c->dim; kv->QD = c->n_heads * c->head_dim;
    kv->KD = c->n_kv_heads * c->head_dim; kv->F = c->hidden_dim; kv->V = c->vocab_size;
    size_t N = (size_t)B * n_max, D = kv->D, QD = kv->QD, KD = kv->KD, F = kv->F, L = (size_t)c->n_layers;
    kv->kc = calloc(L, sizeof *kv->kc);
    kv->vc = calloc(L, sizeof *kv->vc);
    kv->h_pos = malloc(N * sizeof *kv->h_pos);
    kv->h_sel = malloc((size_t)B * sizeof *kv->h_sel);
    if (!kv->kc || !kv->vc || !kv->h_pos || !kv->h_sel) {
        dl_model_kv_free(kv);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "kv cache: out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {   /* count, then carve */
        size_t off = 0;
#define CARVE(ptr, type, cnt) do { if (pass) ptr = (type *)(kv->block + off); off += align_up(cnt); } while (0)
        for (size_t l = 0; l < L; l++) {
            CARVE(kv->kc[l], float, (size_t)B * T_max * KD);
            CARVE(kv->vc[l], float, (size_t)B * T_max * KD);
        }
        CARVE(kv->x, float, N * D); CARVE(kv->h, float, N * D); CARVE(kv->rstd, float, N);
        CARVE(kv->q, float, N * QD); CARVE(kv->k, float, N * KD); CARVE(kv->v, float, N * KD);
        CARVE(kv->ao, float, N * QD); CARVE(kv->tmp, float, N * D);
        CARVE(kv->gate, float, N * F); CARVE(kv->up, float, N * F); CARVE(kv->act, float, N * F);
        CARVE(kv->xg, float, (size_t)B * D); CARVE(kv->hs, float, (size_t)B * D); CARVE(kv->rstd_h, float, (size_t)B);
        if (m->dtype == DL_BF16) { CARVE(kv->logits16, float, ((size_t)B * kv->V + 1) / 2); }
        if (c->qk_norm) {
            CARVE(kv->qk.q_in, float, N * QD); CARVE(kv->qk.k_in, float, N * KD);
            CARVE(kv->qk.rstd_q, float, N * c->n_heads); CARVE(kv->qk.rstd_k, float, N * c->n_kv_heads);
        }
        CARVE(kv->pos, int32_t, N); CARVE(kv->past, int32_t, (size_t)B); CARVE(kv->sel, int32_t, (size_t)B);
#undef CARVE
        if (!pass) {
            kv->n = off;
            kv->block = dl_dev_alloc(kv->dev, off * sizeof(float));
            if (!kv->block) {
                dl_model_kv_free(kv);
                return dl_seterr(err, errlen, -DL_EXIT_IO, "kv cache: cannot allocate %.1f MB for %d rows x %d "
                                 "positions", off * 4.0 / 1e6, B, T_max);
            }
        }
    }
    *out = kv;
    return 0;
}

void dl_model_kv_free(dl_kv *kv) {
    if (!kv) return;
    if (kv->block) dl_dev_free(kv->dev, kv->block);
    free(kv->kc);
    free(kv->vc);
    free(kv->h_pos);
    free(kv->h_sel);
    free(kv);
}

int dl_model_forward_kv(dl_model *m, dl_kv *kv, const uint32_t *ids, int B, int n_new, const int32_t *pos0,
                        const int32_t *n_valid, float *logits, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    dl_dev *d = m->dev;
    int D = c->dim, Hq = c->n_heads, Hk = c->n_kv_heads, E = c->head_dim, F = c->hidden_dim, V = c->vocab_size,
        QD = Hq * E, KD = Hk * E, Tm = kv->T_max;
    if (m->lora)   /* LoRA hook: inference folds adapters into the weights (dl_lora_fold) */
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "kv cache: a model with a LoRA adapter attached (fold it first)");
    if (kv->n_layers != c->n_layers || kv->D != D || kv->QD != QD || kv->KD != KD || kv->F != F || kv->V != V)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "kv cache: made for another model shape");
    if (B <= 0 || B > kv->B || n_new <= 0 || n_new > kv->n_max)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "kv cache: forward of %d rows x %d new tokens exceeds the "
                         "reserved %d x %d", B, n_new, kv->B, kv->n_max);
    for (int b = 0; b < B; b++) {
        int nv = n_valid ? n_valid[b] : n_new;
        if (nv < 0 || nv > n_new || pos0[b] < 0 || pos0[b] + nv > Tm)
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "kv cache: row %d: %d new tokens at position %d do not "
                             "fit %d positions", b, nv, pos0[b], Tm);
    }
    int N = B * n_new;
    for (int b = 0; b < B; b++) {
        int nv = n_valid ? n_valid[b] : n_new;
        for (int j = 0; j < n_new; j++) kv->h_pos[b * n_new + j] = pos0[b] + j;
        kv->h_sel[b] = b * n_new + (nv > 0 ? nv - 1 : 0);
    }
    dl_dev_h2d(d, kv->pos, kv->h_pos, (size_t)N * sizeof *kv->pos);
    dl_dev_h2d(d, kv->past, pos0, (size_t)B * sizeof *kv->past);
    dl_dev_h2d(d, kv->sel, kv->h_sel, (size_t)B * sizeof *kv->sel);

    /* activations and cache in m->dtype (es bytes an element); bf16 logits come out as f32 */
    const dl_dtype dt = m->dtype, wdt = dl_model_compute_begin(m);
    const size_t es = dl_dtype_size(dt);
    if (dt != DL_F32 && !kv->logits16)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "kv cache: made for an f32 model, used with %s compute",
                         dl_dtype_name(dt));
    dl_k_embedding_fwd(d, dt, wdt, kv->x, ids, m->xembed, N, D);
    for (int l = 0; l < c->n_layers; l++) {
        const dl_layer_params *p = &m->layers[l];
        dl_model_qkv_fwd(m, p, kv->h, kv->rstd, kv->q, kv->k, kv->v, c->qk_norm ? &kv->qk : NULL, kv->x, kv->pos, N);
        for (int b = 0; b < B; b++) {   /* a row's valid new tokens are contiguous in the cache too */
            int nv = n_valid ? n_valid[b] : n_new;
            if (!nv) continue;
            size_t dst = ((size_t)b * Tm + pos0[b]) * KD * es, src = (size_t)b * n_new * KD * es,
                   bytes = (size_t)nv * KD * es;
            dl_dev_d2d(d, (char *)kv->kc[l] + dst, (const char *)kv->k + src, bytes);
            dl_dev_d2d(d, (char *)kv->vc[l] + dst, (const char *)kv->v + src, bytes);
        }
        dl_k_attention_kv_fwd(d, dt, kv->ao, kv->q, kv->kc[l], kv->vc[l], kv->past, B, n_new, Tm, Hq, Hk, E);
        dl_k_linear_fwd(d, dt, wdt, kv->tmp, kv->ao, p->xo, NULL, N, QD, D);
        dl_k_add(d, dt, kv->x, kv->x, kv->tmp, (size_t)N * D);
        dl_model_mlp_fwd(m, p, kv->x, kv->x, kv->h, kv->rstd, kv->gate, kv->up, kv->act, kv->tmp, N);
    }
    dl_model_head_rows(m, kv->xg, kv->hs, kv->rstd_h, kv->x, kv->sel, B);
    dl_model_head_logits_f32(m, logits, kv->logits16, kv->hs, B);
    return 0;
}

int dl_model_decode_gemv(dl_model *m, int rows) { return dl_dev_cpu_gemv(m->dev, rows); }
int dl_model_pack_weights(dl_model *m, int on) { return dl_dev_cpu_pack(m->dev, on); }
