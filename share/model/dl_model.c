/* dl_model.c — the transformer of dl_model.h: parameter layout, init,
 * activations, forward and backward, all compute through kernels/kernels.h.
 *
 * Conventions
 *  - Never touches parameter, gradient or activation memory on the host:
 *    every read/write is a kernel or a dl_dev_* copy, so a CUDA backend runs
 *    this file unchanged.  Host-side index arrays (RoPE positions) are built
 *    on the host and copied into the activation block with dl_dev_h2d.
 *  - Parameter block: tensors in Hugging Face order in m->tensors, but laid
 *    out decayed-first (see n_decay_params), 64-float aligned.  grads, adam_m
 *    and adam_v use the same offsets.  Tied models have no lm_head tensor:
 *    lm_head aliases embed, so the head's weight gradient and the embedding
 *    gradient accumulate into the same rows.
 *  - Activations (struct dl_acts): one allocation from dl_model_reserve with
 *    everything backward needs: per layer the residual input of each norm,
 *    rstd, the normed inputs of the linears, q/k/v after RoPE, attention
 *    probs, attention output, gate/up and silu(gate)*up; then the head
 *    inputs at the M selected rows; then backward scratch.  The last forward's
 *    ids / sel / targets are copied in (d2d), so the caller may reuse its
 *    buffers before backward.
 *  - Backward: d ce -> d logits (softmax_xent_bwd) -> head -> final norm at
 *    the selected rows -> scatter into the residual gradient -> layers in
 *    reverse -> embedding.  Weight gradients accumulate (kernels contract).
 * Does not: do the loss normalisation (dl_loss.h), the optimizer step, or
 * checkpoint IO (dl_ckpt.h).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_model.h"
#include "dl_rng.h"

#define ALIGN_F 64   /* floats: each carved tensor / buffer starts on 256 bytes */

static size_t align_up(size_t n) { return (n + ALIGN_F - 1) / ALIGN_F * ALIGN_F; }

/* ---------------------------------------------------------------- acts */
typedef struct {
    float *res_in, *rstd1, *h1;          /* (N,D) (N) (N,D): attention-norm input / rstd / output */
    float *q, *k, *v;                    /* (N,Hq*E) (N,Hk*E) (N,Hk*E) after RoPE */
    float *att;                          /* (B,Hq,T,T) probs */
    float *ao;                           /* (N,Hq*E) attention output (o_proj input) */
    float *res_mid, *rstd2, *h2;         /* (N,D) (N) (N,D): MLP-norm input / rstd / output */
    float *gate, *up, *act;              /* (N,F) each; act = silu(gate)*up (down input) */
} layer_acts;

struct dl_acts {
    int B, T, M;                 /* capacity */
    float *block; size_t n;      /* the one allocation (floats) */
    layer_acts *L;               /* host array of views (n_layers) */
    float *res_out;              /* (N,D) final residual */
    uint32_t *ids;               /* (N) copy of the last forward's ids */
    int32_t *pos;                /* (N) RoPE positions */
    int32_t *sel;                /* (M) copy */
    uint32_t *targets;           /* (M) copy */
    float *xg, *rstd_h, *hs;     /* (M,D) (M) (M,D) head input gathered / rstd / normed */
    float *logits;               /* (M,V) logits, then probs, then dlogits */
    float *tmp;                  /* (N, max(D, Hq*E)) forward linear output */
    /* backward scratch */
    float *dx, *dh, *dh2;        /* (N,D) */
    float *dq, *dk, *dv, *dao;   /* (N,Hq*E) (N,Hk*E) (N,Hk*E) (N,Hq*E) */
    float *datt;                 /* (B,Hq,T,T) */
    float *dgate, *dup, *dact;   /* (N,F) */
    float *dhs, *dxg;            /* (M,D) */
    /* the last forward */
    int fB, fT, fM, f_valid, f_has_targets, pos_T, pos_N;
};

/* ---------------------------------------------------------------- tensors */
static int add_tensor(dl_model *m, int *cap, const char *name, int ndim, int s0, int s1, int decay) {
    if (m->n_tensors == *cap) {
        int c = *cap ? *cap * 2 : 64;
        dl_tensor *t = realloc(m->tensors, (size_t)c * sizeof *t);
        if (!t) return -1;
        m->tensors = t; *cap = c;
    }
    dl_tensor *t = &m->tensors[m->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = s0;
    t->shape[1] = ndim == 2 ? s1 : 0;
    t->decay = decay;
    return 0;
}

static size_t tensor_numel(const dl_tensor *t) {
    return t->ndim == 2 ? (size_t)t->shape[0] * t->shape[1] : (size_t)t->shape[0];
}

static int check_config(const dl_config *c, char *err, size_t errlen) {
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->head_dim <= 0 ||
        c->hidden_dim <= 0 || c->vocab_size <= 0)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "config: every dimension must be positive");
    if (c->n_heads % c->n_kv_heads)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "config: num_attention_heads %d not divisible by "
                         "num_key_value_heads %d", c->n_heads, c->n_kv_heads);
    if (c->head_dim % 2)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "config: head_dim %d must be even", c->head_dim);
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "config: rms_norm_eps and rope_theta must be positive");
    return 0;
}

static int build_tensors(dl_model *m) {
    const dl_config *c = &m->cfg;
    int cap = 0, D = c->dim, QD = c->n_heads * c->head_dim, KD = c->n_kv_heads * c->head_dim, F = c->hidden_dim;
    char nm[96];
    if (add_tensor(m, &cap, "model.embed_tokens.weight", 2, c->vocab_size, D, 1)) return -1;
    for (int l = 0; l < c->n_layers; l++) {
#define T(suffix, nd, a, b, dec) \
        snprintf(nm, sizeof nm, "model.layers.%d.%s", l, suffix); \
        if (add_tensor(m, &cap, nm, nd, a, b, dec)) return -1;
        T("input_layernorm.weight", 1, D, 0, 0)
        T("self_attn.q_proj.weight", 2, QD, D, 1)
        if (c->qkv_bias) { T("self_attn.q_proj.bias", 1, QD, 0, 0) }
        T("self_attn.k_proj.weight", 2, KD, D, 1)
        if (c->qkv_bias) { T("self_attn.k_proj.bias", 1, KD, 0, 0) }
        T("self_attn.v_proj.weight", 2, KD, D, 1)
        if (c->qkv_bias) { T("self_attn.v_proj.bias", 1, KD, 0, 0) }
        T("self_attn.o_proj.weight", 2, D, QD, 1)
        T("post_attention_layernorm.weight", 1, D, 0, 0)
        T("mlp.gate_proj.weight", 2, F, D, 1)
        T("mlp.up_proj.weight", 2, F, D, 1)
        T("mlp.down_proj.weight", 2, D, F, 1)
#undef T
    }
    if (add_tensor(m, &cap, "model.norm.weight", 1, D, 0, 0)) return -1;
    if (!c->tied && add_tensor(m, &cap, "lm_head.weight", 2, c->vocab_size, D, 1)) return -1;
    /* offsets: decayed tensors first, then the rest */
    size_t off = 0;
    for (int pass = 1; pass >= 0; pass--) {
        for (int i = 0; i < m->n_tensors; i++) {
            if (m->tensors[i].decay != pass) continue;
            m->tensors[i].offset = off;
            off += align_up(tensor_numel(&m->tensors[i]));
        }
        if (pass == 1) m->n_decay_params = off;
    }
    m->n_params = off;
    return 0;
}

const dl_tensor *dl_model_tensor(const dl_model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return &m->tensors[i];
    return NULL;
}

static float *view(dl_model *m, const char *fmt, int l) {
    char nm[96];
    snprintf(nm, sizeof nm, fmt, l);
    const dl_tensor *t = dl_model_tensor(m, nm);
    return t ? m->params + t->offset : NULL;
}

int dl_model_init(dl_model *m, const dl_config *c, dl_dev *dev, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    int rc = check_config(c, err, errlen);
    if (rc) return rc;
    m->cfg = *c;
    m->dev = dev;
    if (build_tensors(m)) {
        dl_model_free(m);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory");
    }
    m->params = dl_dev_alloc(dev, m->n_params * sizeof(float));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->params || !m->layers) {
        size_t np = m->n_params;
        dl_model_free(m);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate %zu parameters (%.1f MB)", np,
                         np * 4.0 / 1e6);
    }
    m->embed = view(m, "model.embed_tokens.weight", 0);
    for (int l = 0; l < c->n_layers; l++) {
        dl_layer_params *p = &m->layers[l];
        p->attn_norm = view(m, "model.layers.%d.input_layernorm.weight", l);
        p->wq = view(m, "model.layers.%d.self_attn.q_proj.weight", l);
        p->wk = view(m, "model.layers.%d.self_attn.k_proj.weight", l);
        p->wv = view(m, "model.layers.%d.self_attn.v_proj.weight", l);
        p->bq = view(m, "model.layers.%d.self_attn.q_proj.bias", l);
        p->bk = view(m, "model.layers.%d.self_attn.k_proj.bias", l);
        p->bv = view(m, "model.layers.%d.self_attn.v_proj.bias", l);
        p->wo = view(m, "model.layers.%d.self_attn.o_proj.weight", l);
        p->mlp_norm = view(m, "model.layers.%d.post_attention_layernorm.weight", l);
        p->w_gate = view(m, "model.layers.%d.mlp.gate_proj.weight", l);
        p->w_up = view(m, "model.layers.%d.mlp.up_proj.weight", l);
        p->w_down = view(m, "model.layers.%d.mlp.down_proj.weight", l);
    }
    m->final_norm = view(m, "model.norm.weight", 0);
    m->lm_head = c->tied ? m->embed : view(m, "lm_head.weight", 0);
    return 0;
}

static void free_acts(dl_model *m) {
    if (!m->acts) return;
    if (m->acts->block) dl_dev_free(m->dev, m->acts->block);
    free(m->acts->L);
    free(m->acts);
    m->acts = NULL;
}

void dl_model_free(dl_model *m) {
    if (!m) return;
    free_acts(m);
    if (m->params) dl_dev_free(m->dev, m->params);
    if (m->grads) dl_dev_free(m->dev, m->grads);
    if (m->adam_m) dl_dev_free(m->dev, m->adam_m);
    if (m->adam_v) dl_dev_free(m->dev, m->adam_v);
    free(m->tensors);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

int dl_model_alloc_grads(dl_model *m, char *err, size_t errlen) {
    if (m->grads) return 0;
    m->grads = dl_dev_alloc(m->dev, m->n_params * sizeof(float));
    if (!m->grads)
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate gradients (%.1f MB)",
                         m->n_params * 4.0 / 1e6);
    return 0;
}

int dl_model_alloc_optimizer(dl_model *m, char *err, size_t errlen) {
    if (!m->adam_m) m->adam_m = dl_dev_alloc(m->dev, m->n_params * sizeof(float));
    if (!m->adam_v) m->adam_v = dl_dev_alloc(m->dev, m->n_params * sizeof(float));
    if (!m->adam_m || !m->adam_v)
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate optimizer state (%.1f MB)",
                         m->n_params * 8.0 / 1e6);
    return 0;
}

void dl_model_zero_grads(dl_model *m) {
    if (m->grads) dl_dev_memset0(m->dev, m->grads, m->n_params * sizeof(float));
}

/* ---------------------------------------------------------------- init */
/* FNV-1a: each tensor's stream is keyed by its name, so adding or removing
 * a tensor (bias, tied head) leaves every other tensor's values unchanged. */
static uint64_t name_key(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

void dl_model_init_weights(dl_model *m, uint64_t seed) {
    size_t maxn = 0;
    for (int i = 0; i < m->n_tensors; i++)
        if (tensor_numel(&m->tensors[i]) > maxn) maxn = tensor_numel(&m->tensors[i]);
    float *buf = malloc(maxn * sizeof *buf);
    DL_ASSERT(buf != NULL);
    for (int i = 0; i < m->n_tensors; i++) {
        const dl_tensor *t = &m->tensors[i];
        size_t n = tensor_numel(t);
        int is_norm = strstr(t->name, "norm") != NULL;
        if (t->decay) {   /* matrices: N(0, 0.02) by Box-Muller, both outputs used */
            dl_rng r;
            dl_rng_init(&r, seed, name_key(t->name), 0, DL_RNG_INIT);
            for (size_t j = 0; j < n; j += 2) {
                double u1 = dl_rng_double_open(&r), u2 = dl_rng_double_open(&r);
                double rad = sqrt(-2.0 * log(u1)), th = 2.0 * M_PI * u2;
                buf[j] = (float)(0.02 * rad * cos(th));
                if (j + 1 < n) buf[j + 1] = (float)(0.02 * rad * sin(th));
            }
        } else {
            for (size_t j = 0; j < n; j++) buf[j] = is_norm ? 1.0f : 0.0f;
        }
        dl_dev_h2d(m->dev, m->params + t->offset, buf, n * sizeof *buf);
    }
    free(buf);
}

/* ---------------------------------------------------------------- reserve */
int dl_model_reserve(dl_model *m, int B, int T, int M_max, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    if (B <= 0 || T <= 0 || M_max < 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: bad activation shape B=%d T=%d M=%d", B, T, M_max);
    if (m->acts && m->acts->B >= B && m->acts->T >= T && m->acts->M >= M_max) return 0;
    free_acts(m);
    struct dl_acts *a = calloc(1, sizeof *a);
    layer_acts *L = a ? calloc((size_t)c->n_layers, sizeof *L) : NULL;
    if (!L) {
        free(a);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory");
    }
    a->L = L;
    a->B = B; a->T = T; a->M = M_max;
    size_t N = (size_t)B * T, D = c->dim, QD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, V = c->vocab_size,
           M = M_max > 0 ? (size_t)M_max : 1, ATT = (size_t)B * c->n_heads * T * T;
    /* two passes: count, then carve */
    for (int pass = 0; pass < 2; pass++) {
        size_t off = 0;
#define CARVE(ptr, type, cnt) do { if (pass) ptr = (type *)(a->block + off); off += align_up(cnt); } while (0)
        for (int l = 0; l < c->n_layers; l++) {
            layer_acts *x = &L[l];
            CARVE(x->res_in, float, N * D); CARVE(x->rstd1, float, N); CARVE(x->h1, float, N * D);
            CARVE(x->q, float, N * QD); CARVE(x->k, float, N * KD); CARVE(x->v, float, N * KD);
            CARVE(x->att, float, ATT); CARVE(x->ao, float, N * QD);
            CARVE(x->res_mid, float, N * D); CARVE(x->rstd2, float, N); CARVE(x->h2, float, N * D);
            CARVE(x->gate, float, N * F); CARVE(x->up, float, N * F); CARVE(x->act, float, N * F);
        }
        CARVE(a->res_out, float, N * D);
        CARVE(a->ids, uint32_t, N); CARVE(a->pos, int32_t, N);
        CARVE(a->sel, int32_t, M); CARVE(a->targets, uint32_t, M);
        CARVE(a->xg, float, M * D); CARVE(a->rstd_h, float, M); CARVE(a->hs, float, M * D);
        CARVE(a->logits, float, M * V);
        CARVE(a->tmp, float, N * (D > QD ? D : QD));
        CARVE(a->dx, float, N * D); CARVE(a->dh, float, N * D); CARVE(a->dh2, float, N * D);
        CARVE(a->dq, float, N * QD); CARVE(a->dk, float, N * KD); CARVE(a->dv, float, N * KD);
        CARVE(a->dao, float, N * QD); CARVE(a->datt, float, ATT);
        CARVE(a->dgate, float, N * F); CARVE(a->dup, float, N * F); CARVE(a->dact, float, N * F);
        CARVE(a->dhs, float, M * D); CARVE(a->dxg, float, M * D);
#undef CARVE
        if (!pass) {
            a->n = off;
            a->block = dl_dev_alloc(m->dev, off * sizeof(float));
            if (!a->block) {
                free(L); free(a);
                return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate activations (%.1f MB) "
                                 "for batch %d x %d", off * 4.0 / 1e6, B, T);
            }
        }
    }
    m->acts = a;
    return 0;
}

size_t dl_model_acts_bytes(const dl_config *c, int B, int T, int M_max, dl_acts_mode mode) {
    (void)mode;
    size_t N = (size_t)B * T, D = c->dim, QD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, V = c->vocab_size,
           M = M_max > 0 ? (size_t)M_max : 1, ATT = (size_t)B * c->n_heads * T * T;
    size_t per_layer = 4 * align_up(N * D) + 2 * align_up(N) + 2 * align_up(N * QD) + 2 * align_up(N * KD) +
                       align_up(ATT) + 3 * align_up(N * F);
    size_t n = (size_t)c->n_layers * per_layer + align_up(N * D) + 2 * align_up(N) + 2 * align_up(M) +
               2 * align_up(M * D) + align_up(M) + align_up(M * V) + align_up(N * (D > QD ? D : QD)) +
               3 * align_up(N * D) + 2 * align_up(N * QD) + 2 * align_up(N * KD) + align_up(ATT) +
               3 * align_up(N * F) + 2 * align_up(M * D);
    return n * sizeof(float);
}

/* ---------------------------------------------------------------- forward */
int dl_model_forward(dl_model *m, const uint32_t *ids, const int32_t *lens, int B, int T,
                     const int32_t *sel, const uint32_t *targets, int M, float *ce,
                     dl_attn_mask mask, int block, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    struct dl_acts *a = m->acts;
    dl_dev *d = m->dev;
    if (!a || B > a->B || T > a->T || M > a->M || B <= 0 || T <= 0 || M < 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: forward B=%d T=%d M=%d exceeds the reserved "
                         "B=%d T=%d M=%d", B, T, M, a ? a->B : 0, a ? a->T : 0, a ? a->M : 0);
    if (mask == DL_ATTN_BLOCK && block <= 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: block attention needs a block size > 0");
    int N = B * T, D = c->dim, Hq = c->n_heads, Hk = c->n_kv_heads, E = c->head_dim, V = c->vocab_size,
        QD = Hq * E;
    a->f_valid = 0;
    if (a->pos_T != T || a->pos_N != N) {   /* RoPE positions: b*T + i -> i */
        int32_t *pos = malloc((size_t)N * sizeof *pos);
        if (!pos) return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory");
        for (int n = 0; n < N; n++) pos[n] = n % T;
        dl_dev_h2d(d, a->pos, pos, (size_t)N * sizeof *pos);
        free(pos);
        a->pos_T = T; a->pos_N = N;
    }
    dl_dev_d2d(d, a->ids, ids, (size_t)N * sizeof *ids);
    dl_k_embedding_fwd(d, a->L[0].res_in, a->ids, m->embed, N, D);
    for (int l = 0; l < c->n_layers; l++) {
        const dl_layer_params *p = &m->layers[l];
        layer_acts *x = &a->L[l];
        float *out = l + 1 < c->n_layers ? a->L[l + 1].res_in : a->res_out;
        dl_model_qkv_fwd(m, p, x->h1, x->rstd1, x->q, x->k, x->v, x->res_in, a->pos, N);
        dl_k_attention_fwd(d, x->ao, x->att, x->q, x->k, x->v, lens, B, T, Hq, Hk, E, mask, block);
        dl_k_linear_fwd(d, a->tmp, x->ao, p->wo, NULL, N, QD, D);
        dl_k_add(d, x->res_mid, x->res_in, a->tmp, (size_t)N * D);
        dl_model_mlp_fwd(m, p, out, x->res_mid, x->h2, x->rstd2, x->gate, x->up, x->act, a->tmp, N);
    }
    if (M > 0) {   /* head at the selected rows only */
        dl_dev_d2d(d, a->sel, sel, (size_t)M * sizeof *sel);
        dl_k_gather_rows(d, a->xg, a->res_out, a->sel, M, D);
        dl_k_rmsnorm_fwd(d, a->hs, a->rstd_h, a->xg, m->final_norm, M, D, c->norm_eps);
        dl_k_linear_fwd(d, a->logits, a->hs, m->lm_head, NULL, M, D, V);
        if (targets) {
            dl_dev_d2d(d, a->targets, targets, (size_t)M * sizeof *targets);
            dl_k_softmax_xent_fwd(d, ce, a->logits, a->targets, M, V);
        }
    }
    a->fB = B; a->fT = T; a->fM = M;
    a->f_has_targets = targets != NULL;
    a->f_valid = 1;
    return 0;
}

const float *dl_model_logits(const dl_model *m) {
    return m->acts ? m->acts->logits : NULL;
}

/* ---------------------------------------------------------------- backward */
#define G(p) (m->grads + ((p) - m->params))
#define GB(p) ((p) ? G(p) : NULL)

int dl_model_backward(dl_model *m, const float *dce, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    struct dl_acts *a = m->acts;
    dl_dev *d = m->dev;
    if (!m->grads) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: backward without gradients");
    if (!a || !a->f_valid || !a->f_has_targets)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: backward needs a forward with targets");
    a->f_valid = 0;   /* logits were overwritten in place: one backward per forward */
    int B = a->fB, T = a->fT, M = a->fM, N = B * T, D = c->dim, Hq = c->n_heads, Hk = c->n_kv_heads,
        E = c->head_dim, F = c->hidden_dim, V = c->vocab_size, QD = Hq * E, KD = Hk * E;
    if (M == 0) return 0;
    /* head: probs -> dlogits -> d hs -> d xg (final norm) -> scatter into dx */
    dl_k_softmax_xent_bwd(d, a->logits, dce, a->targets, M, V);
    dl_k_linear_bwd(d, a->dhs, G(m->lm_head), NULL, a->logits, a->hs, m->lm_head, M, D, V);
    dl_dev_memset0(d, a->dxg, (size_t)M * D * sizeof(float));
    dl_k_rmsnorm_bwd(d, a->dxg, G(m->final_norm), a->dhs, a->xg, m->final_norm, a->rstd_h, M, D);
    dl_dev_memset0(d, a->dx, (size_t)N * D * sizeof(float));
    dl_k_scatter_add_rows(d, a->dx, a->dxg, a->sel, M, D);
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const dl_layer_params *p = &m->layers[l];
        layer_acts *x = &a->L[l];
        /* MLP: dx is d(res_out of this layer) */
        dl_k_linear_bwd(d, a->dact, G(p->w_down), NULL, a->dx, x->act, p->w_down, N, F, D);
        dl_k_swiglu_bwd(d, a->dgate, a->dup, a->dact, x->gate, x->up, N, F);
        dl_k_linear_bwd(d, a->dh, G(p->w_gate), NULL, a->dgate, x->h2, p->w_gate, N, D, F);
        dl_k_linear_bwd(d, a->dh2, G(p->w_up), NULL, a->dup, x->h2, p->w_up, N, D, F);
        dl_k_add_inplace(d, a->dh, a->dh2, (size_t)N * D);
        dl_k_rmsnorm_bwd(d, a->dx, G(p->mlp_norm), a->dh, x->res_mid, p->mlp_norm, x->rstd2, N, D);
        /* attention: dx is d(res_mid) */
        dl_k_linear_bwd(d, a->dao, G(p->wo), NULL, a->dx, x->ao, p->wo, N, QD, D);
        dl_k_attention_bwd(d, a->dq, a->dk, a->dv, a->datt, a->dao, x->att, x->q, x->k, x->v, B, T, Hq, Hk, E);
        dl_k_rope(d, a->dq, a->pos, N, Hq, E, c->rope_theta, c->rope_layout, 1);
        dl_k_rope(d, a->dk, a->pos, N, Hk, E, c->rope_theta, c->rope_layout, 1);
        dl_k_linear_bwd(d, a->dh, G(p->wq), GB(p->bq), a->dq, x->h1, p->wq, N, D, QD);
        dl_k_linear_bwd(d, a->dh2, G(p->wk), GB(p->bk), a->dk, x->h1, p->wk, N, D, KD);
        dl_k_add_inplace(d, a->dh, a->dh2, (size_t)N * D);
        dl_k_linear_bwd(d, a->dh2, G(p->wv), GB(p->bv), a->dv, x->h1, p->wv, N, D, KD);
        dl_k_add_inplace(d, a->dh, a->dh2, (size_t)N * D);
        dl_k_rmsnorm_bwd(d, a->dx, G(p->attn_norm), a->dh, x->res_in, p->attn_norm, x->rstd1, N, D);
    }
    dl_k_embedding_bwd(d, G(m->embed), a->dx, a->ids, N, D);
    return 0;
}

/* ------------------------------------------------ blocks shared with the KV path */
void dl_model_qkv_fwd(dl_model *m, const dl_layer_params *p, float *h, float *rstd, float *q, float *k, float *v,
                      const float *x, const int32_t *pos, int N) {
    const dl_config *c = &m->cfg;
    int D = c->dim, E = c->head_dim, QD = c->n_heads * E, KD = c->n_kv_heads * E;
    dl_k_rmsnorm_fwd(m->dev, h, rstd, x, p->attn_norm, N, D, c->norm_eps);
    dl_k_linear_fwd(m->dev, q, h, p->wq, p->bq, N, D, QD);
    dl_k_linear_fwd(m->dev, k, h, p->wk, p->bk, N, D, KD);
    dl_k_linear_fwd(m->dev, v, h, p->wv, p->bv, N, D, KD);
    dl_k_rope(m->dev, q, pos, N, c->n_heads, E, c->rope_theta, c->rope_layout, 0);
    dl_k_rope(m->dev, k, pos, N, c->n_kv_heads, E, c->rope_theta, c->rope_layout, 0);
}

void dl_model_mlp_fwd(dl_model *m, const dl_layer_params *p, float *out, const float *res, float *h, float *rstd,
                      float *gate, float *up, float *act, float *tmp, int N) {
    const dl_config *c = &m->cfg;
    int D = c->dim, F = c->hidden_dim;
    dl_k_rmsnorm_fwd(m->dev, h, rstd, res, p->mlp_norm, N, D, c->norm_eps);
    dl_k_linear_fwd(m->dev, gate, h, p->w_gate, NULL, N, D, F);
    dl_k_linear_fwd(m->dev, up, h, p->w_up, NULL, N, D, F);
    dl_k_swiglu_fwd(m->dev, act, gate, up, N, F);
    dl_k_linear_fwd(m->dev, tmp, act, p->w_down, NULL, N, F, D);
    dl_k_add(m->dev, out, res, tmp, (size_t)N * D);
}
