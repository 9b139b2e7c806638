/* dl_model_dcache.c — the diffusion sampler's key/value cache (dl_model.h,
 * "Diffusion cache"; Fast-dLLM's prefix and dual caches): a forward over a
 * WINDOW of positions of each row, bidirectional, whose queries attend to
 * the cached keys / values of the positions outside the window and to the
 * window's own fresh ones.
 *
 *   x = embed[window ids]
 *   per layer: h = rmsnorm(x) → q, k, v → RoPE at positions q0[b] + j
 *              → the window's k, v written into the cache at q0[b] ..
 *              → dl_k_attention_cached_fwd (every query of row b sees
 *                cache [0, n_keys[b]))
 *              → o_proj → x += · → MLP → x += ·
 *   final rmsnorm + head only at the M selected window slots.
 *
 * A refresh is the window [0, L): it recomputes and stores every position.
 * The prefix cache then runs windows [block start, L) (the prefix is read
 * from the cache), the dual cache windows [block start, block end) (prefix
 * and suffix read from the cache), each refreshed at block boundaries by
 * the sampler (sample/diffusion.c).
 *
 * Conventions
 *  - Same kernels and order as dl_model_forward (dl_model_qkv_fwd,
 *    dl_model_mlp_fwd), so a window whose cached keys / values come from
 *    the same canvas gives the full forward's logits up to the attention's
 *    summation order (tests/unit/test_dcache.c).
 *  - One device allocation: per layer K then V (R, T_max, Hk*E) for R cache
 *    rows, then the activations of B_max * T_max window tokens and M_max
 *    logits rows; small host arrays copied in per call.
 *  - Forward row b uses cache row rows[b] (the sampler's lockstep batch may
 *    leave finished rows out).  Padding slots (j >= n_valid[b]) are
 *    computed but never written to the cache.
 * dtype: the model's compute dtype (m->dtype): with bf16 compute the cache
 * holds bf16 keys / values and the activations are bf16; the logits come
 * out in f32 (a bf16 head GEMM, then one conversion), as samplers read.
 * Does not: causal or block masks, backward, sharing a prefix between rows.
 */
#include <stdlib.h>
#include <string.h>
#include "dl_model.h"

#define ALIGN_F 64
static size_t align_up(size_t n) { return (n + ALIGN_F - 1) / ALIGN_F * ALIGN_F; }

struct dl_dcache {
    dl_dev *dev;
    int R, T_max, B_max, M_max;
    int n_layers, D, QD, KD, F, V;
    float *block;
    float **kc, **vc;                /* host (n_layers) views (R, T_max, KD) */
    float *x, *h, *rstd, *q, *k, *v, *ao, *tmp, *gate, *up, *act;   /* (N, ...) */
    float *xg, *hs, *rstd_h, *logits;   /* (M, D) (M, D) (M) (M, V) */
    float *logits16;                    /* bf16 compute only: (M, V) bf16 logits before the f32 copy */
    int32_t *pos, *rows, *nkeys, *sel;  /* device (N) (B) (B) (M) */
    int32_t *h_pos;                     /* host (N) */
    dl_qk_norm_acts qk;                 /* qk_norm only: (N, QD) (N, KD) (N*Hq) (N*Hk), else NULLs */
};

int dl_model_dcache_init(dl_dcache **out, const dl_model *m, int R, int T_max, int B_max, int M_max, char *err,
                         size_t errlen) {
    *out = NULL;
    const dl_config *c = &m->cfg;
    if (R <= 0 || T_max <= 0 || B_max <= 0 || M_max <= 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "diffusion cache: bad shape R=%d T_max=%d B=%d M=%d", R,
                         T_max, B_max, M_max);
    dl_dcache *kv = calloc(1, sizeof *kv);
    if (!kv) return dl_seterr(err, errlen, -DL_EXIT_IO, "diffusion cache: out of memory");
    kv->dev = m->dev;
    kv->R = R; kv->T_max = T_max; kv->B_max = B_max; kv->M_max = M_max;
    kv->n_layers = c->n_layers; kv->D = c->dim; kv->QD = c->n_heads * c->head_dim;
    kv->KD = c->n_kv_heads * c->head_dim; kv->F = c->hidden_dim; kv->V = c->vocab_size;
    size_t N = (size_t)B_max * T_max, M = (size_t)M_max, D = kv->D, QD = kv->QD, KD = kv->KD, F = kv->F,
           L = (size_t)c->n_layers;
    kv->kc = calloc(L, sizeof *kv->kc);
    kv->vc = calloc(L, sizeof *kv->vc);
    kv->h_pos = malloc(N * sizeof *kv->h_pos);
    if (!kv->kc || !kv->vc || !kv->h_pos) {
        dl_model_dcache_free(kv);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "diffusion cache: out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {   /* count, then carve */
        size_t off = 0;
#define CARVE(ptr, type, cnt) do { if (pass) ptr = (type *)(kv->block + off); off += align_up(cnt); } while (0)
        for (size_t l = 0; l < L; l++) {
            CARVE(kv->kc[l], float, (size_t)R * T_max * KD);
            CARVE(kv->vc[l], float, (size_t)R * T_max * KD);
        }
        CARVE(kv->x, float, N * D); CARVE(kv->h, float, N * D); CARVE(kv->rstd, float, N);
        CARVE(kv->q, float, N * QD); CARVE(kv->k, float, N * KD); CARVE(kv->v, float, N * KD);
        CARVE(kv->ao, float, N * QD); CARVE(kv->tmp, float, N * D);
        CARVE(kv->gate, float, N * F); CARVE(kv->up, float, N * F); CARVE(kv->act, float, N * F);
        CARVE(kv->xg, float, M * D); CARVE(kv->hs, float, M * D); CARVE(kv->rstd_h, float, M);
        CARVE(kv->logits, float, M * kv->V);
        if (m->dtype == DL_BF16) { CARVE(kv->logits16, float, (M * kv->V + 1) / 2); }
        CARVE(kv->pos, int32_t, N); CARVE(kv->rows, int32_t, (size_t)B_max); CARVE(kv->nkeys, int32_t, (size_t)B_max);
        CARVE(kv->sel, int32_t, M);
        if (c->qk_norm) {
            CARVE(kv->qk.q_in, float, N * QD); CARVE(kv->qk.k_in, float, N * KD);
            CARVE(kv->qk.rstd_q, float, N * c->n_heads); CARVE(kv->qk.rstd_k, float, N * c->n_kv_heads);
        }
#undef CARVE
        if (!pass) {
            kv->block = dl_dev_alloc(kv->dev, off * sizeof(float));
            if (!kv->block) {
                dl_model_dcache_free(kv);
                return dl_seterr(err, errlen, -DL_EXIT_IO, "diffusion cache: cannot allocate %.1f MB for %d rows x "
                                 "%d positions", off * 4.0 / 1e6, R, T_max);
            }
        }
    }
    *out = kv;
    return 0;
}

void dl_model_dcache_free(dl_dcache *kv) {
    if (!kv) return;
    if (kv->block) dl_dev_free(kv->dev, kv->block);
    free(kv->kc);
    free(kv->vc);
    free(kv->h_pos);
    free(kv);
}

int dl_model_forward_window(dl_model *m, dl_dcache *kv, const uint32_t *ids, int B, int n, const int32_t *rows,
                            const int32_t *q0, const int32_t *n_valid, const int32_t *n_keys, const int32_t *sel,
                            int M, const float **logits, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    dl_dev *d = m->dev;
    int D = c->dim, Hq = c->n_heads, Hk = c->n_kv_heads, E = c->head_dim, F = c->hidden_dim, V = c->vocab_size,
        QD = Hq * E, KD = Hk * E, Tm = kv->T_max;
    if (m->lora)   /* its o_proj hook lives in dl_model_forward; --adapter folds, so samplers never get here */
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "diffusion cache: a model with an attached LoRA adapter (fold it)");
    if (kv->n_layers != c->n_layers || kv->D != D || kv->QD != QD || kv->KD != KD || kv->F != F || kv->V != V)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "diffusion cache: made for another model shape");
    if (B <= 0 || B > kv->B_max || n <= 0 || n > Tm || M < 0 || M > kv->M_max)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "diffusion cache: window of %d rows x %d, %d selected exceeds "
                         "the reserved %d x %d, %d", B, n, M, kv->B_max, Tm, kv->M_max);
    for (int b = 0; b < B; b++)
        if (rows[b] < 0 || rows[b] >= kv->R || n_valid[b] < 0 || n_valid[b] > n || q0[b] < 0 ||
            q0[b] + n_valid[b] > Tm || n_keys[b] < 0 || n_keys[b] > Tm)
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "diffusion cache: row %d: window %d+%d, %d keys, cache row "
                             "%d do not fit", b, q0[b], n_valid[b], n_keys[b], rows[b]);
    int N = B * n;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++) kv->h_pos[b * n + j] = q0[b] + j;
    dl_dev_h2d(d, kv->pos, kv->h_pos, (size_t)N * sizeof *kv->pos);
    dl_dev_h2d(d, kv->rows, rows, (size_t)B * sizeof *kv->rows);
    dl_dev_h2d(d, kv->nkeys, n_keys, (size_t)B * sizeof *kv->nkeys);
    if (M) dl_dev_h2d(d, kv->sel, sel, (size_t)M * sizeof *kv->sel);
    dl_dev_h2d(d, kv->tmp, ids, (size_t)N * sizeof *ids);   /* ids staged in tmp, embedded into x */

    /* activations and cache in m->dtype (es bytes an element); bf16 logits come out as f32 */
    const dl_dtype dt = m->dtype, wdt = dl_model_compute_begin(m);
    const size_t es = dl_dtype_size(dt);
    if (dt != DL_F32 && !kv->logits16)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "window cache: made for an f32 model, used with %s compute",
                         dl_dtype_name(dt));
    dl_k_embedding_fwd(d, dt, wdt, kv->x, (const uint32_t *)kv->tmp, m->xembed, N, D);
    for (int l = 0; l < c->n_layers; l++) {
        const dl_layer_params *p = &m->layers[l];
        dl_model_qkv_fwd(m, p, kv->h, kv->rstd, kv->q, kv->k, kv->v, c->qk_norm ? &kv->qk : NULL, kv->x, kv->pos, N);
        for (int b = 0; b < B; b++) {
            if (!n_valid[b]) continue;
            size_t dst = ((size_t)rows[b] * Tm + q0[b]) * KD * es, src = (size_t)b * n * KD * es,
                   bytes = (size_t)n_valid[b] * KD * es;
            dl_dev_d2d(d, (char *)kv->kc[l] + dst, (const char *)kv->k + src, bytes);
            dl_dev_d2d(d, (char *)kv->vc[l] + dst, (const char *)kv->v + src, bytes);
        }
        dl_k_attention_cached_fwd(d, dt, kv->ao, kv->q, kv->kc[l], kv->vc[l], kv->rows, kv->nkeys, B, n, Tm, Hq, Hk,
                                  E);
        dl_k_linear_fwd(d, dt, wdt, kv->tmp, kv->ao, p->xo, NULL, N, QD, D);
        dl_k_add(d, dt, kv->x, kv->x, kv->tmp, (size_t)N * D);
        dl_model_mlp_fwd(m, p, kv->x, kv->x, kv->h, kv->rstd, kv->gate, kv->up, kv->act, kv->tmp, N);
    }
    if (M) {
        dl_model_head_rows(m, kv->xg, kv->hs, kv->rstd_h, kv->x, kv->sel, M);
        dl_model_head_logits_f32(m, kv->logits, kv->logits16, kv->hs, M);
    }
    *logits = kv->logits;
    return 0;
}
