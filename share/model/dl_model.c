/* dl_model.c — the transformer of dl_model.h: parameter layout, init,
 * activations, forward and backward, all compute through kernels/kernels.h.
 *
 * Conventions
 *  - Never touches parameter, gradient or activation memory on the host:
 *    every read/write is a kernel or a dl_dev_* copy, so a CUDA backend runs
 *    this file unchanged.  Host-side index arrays (RoPE positions) are built
 *    on the host and copied into the activation block with dl_dev_h2d.
 *  - Parameter block: tensors in Hugging Face order in m->tensors, but laid
 *    out decayed-first (see n_decay_params), 64-float aligned, except that
 *    wk, wv follow wq (and bk, bv follow bq, w_up follows w_gate) with no
 *    gap: each group is one matrix for one fused GEMM in the forward.  grads, adam_m
 *    and adam_v use the same offsets.  Tied models have no lm_head tensor:
 *    lm_head aliases embed, so the head's weight gradient and the embedding
 *    gradient accumulate into the same rows.
 *  - Activations (struct dl_acts): one allocation from dl_model_reserve,
 *    laid out by acts_layout (also dl_model_acts_bytes).  TRAIN: everything
 *    backward needs: per layer the residual input of each norm, rstd, the
 *    normed inputs of the linears, q/k/v after RoPE, attention lse and
 *    probs, attention output, gate/up and silu(gate)*up; then the head
 *    inputs at the M selected rows; then backward scratch.  INFER: one
 *    set of layer buffers reused by every layer, no probs, no scratch.
 *  - Storage dtype m->dtype (kernels.h) is DL_F32: the ops run on the fp32
 *    master weights directly, or, for a model made with wdtype DL_BF16
 *    (inference from a bf16 checkpoint), on the bf16 matrices in m->wlow
 *    with f32 activations (the forward reads p->x* / m->x* views, which
 *    are the f32 views themselves in an f32 model).  After
 *    dl_model_set_compute(DL_BF16) (mixed-precision training) every op
 *    runs in bf16 on m->wcomp, a bf16 copy of the whole parameter block at
 *    the masters' offsets: cw() maps a master view to its copy, and the
 *    x-views point into it.  Activation buffers keep their float-sized
 *    carve (a bf16 buffer uses its first half), so the layout and
 *    dl_model_acts_bytes do not depend on the dtype.  The last forward's
 *    ids / sel / targets are copied in (d2d), so the caller may reuse its
 *    buffers before backward.
 *  - Qwen3's q_norm / k_norm (cfg.qk_norm): its own step between the q/k
 *    projection and RoPE (qk_norm_fwd / qk_norm_bwd), with its buffers
 *    (dl_qk_norm_acts, dq_in / dk_in) carved only for such models, so other
 *    models' layouts and results are unchanged.
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
    float *lse;                          /* (B,Hq,T) attention log-sum-exp */
    float *att;                          /* (B,Hq,T,T) probs; NULL (not kept) in INFER mode */
    float *ao;                           /* (N,Hq*E) attention output (o_proj input) */
    float *res_mid, *rstd2, *h2;         /* (N,D) (N) (N,D): MLP-norm input / rstd / output */
    float *gate, *up, *act;              /* (N,F) each; act = silu(gate)*up (down input) */
    dl_qk_norm_acts qk;                  /* qk_norm only (else NULLs): q, k before the per-head norm + rstd */
} layer_acts;

struct dl_acts {
    int B, T, M;                 /* capacity */
    dl_acts_mode mode;           /* INFER: one layer_acts shared by all layers, no backward scratch */
    float *block; size_t n;      /* the one allocation (floats) */
    layer_acts *L;               /* host array of views (n_layers) */
    float *res_out;              /* (N,D) final residual */
    uint32_t *ids;               /* (N) copy of the last forward's ids */
    int32_t *pos;                /* (N) RoPE positions */
    int32_t *sel;                /* (M) copy */
    uint32_t *targets;           /* (M) copy */
    int32_t *lens;               /* (B) copy of the last forward's lens (backward reads them) */
    float *xg, *rstd_h, *hs;     /* (M,D) (M) (M,D) head input gathered / rstd / normed */
    float *logits;               /* (M,V) logits, then probs, then dlogits; (M,xc) with a chunked head */
    int xc;                      /* the head's chunk of vocabulary columns; V: unchunked */
    double *xstat;               /* (M,3) chunked head only: running max / sum, target logit; then lse */
    float *logits32;             /* (M,V) f32 logits of a bf16-compute forward without targets (its own
                                    allocation, made by the first such forward): what dl_model_logits gives */
    float *tmp;                  /* (N, max(D, Hq*E)) forward linear output */
    /* backward scratch (TRAIN only) */
    float *dx, *dh, *dh2;        /* (N,D) */
    float *dq, *dk, *dv, *dao;   /* (N,Hq*E) (N,Hk*E) (N,Hk*E) (N,Hq*E) */
    float *datt;                 /* (B,Hq,T,T) attention backward scratch */
    float *dgate, *dup, *dact;   /* (N,F) */
    float *dq_in, *dk_in;        /* (N,Hq*E) (N,Hk*E) qk_norm only: gradients before the per-head norm */
    float *dhs, *dxg;            /* (M,D) */
    float *dhs_part;             /* (M,D) chunked head only: one chunk's part of dhs */
    float *dhs_acc, *dhs_part32; /* (M,D) f32 each, chunked head in bf16 only: the sum over chunks in f32 */
    /* the last forward */
    int fB, fT, fM, f_valid, f_has_targets, f_has_lens, f_block, pos_T, pos_N;
    int pos_half;                /* pos holds i mod T/2 (DL_ATTN_BD3: x_t and x_0 share positions) */
    dl_attn_mask f_mask;
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

/* 1 for the second and later members of a fused projection (HF names) */
static int joins_previous(const char *name) {
    static const char *const tails[] = { "self_attn.k_proj.weight", "self_attn.v_proj.weight",
                                         "self_attn.k_proj.bias", "self_attn.v_proj.bias", "mlp.up_proj.weight" };
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof tails / sizeof *tails; i++) {
        size_t t = strlen(tails[i]);
        if (n > t && !strcmp(name + n - t, tails[i])) return 1;
    }
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
        if (c->qk_norm) { T("self_attn.q_norm.weight", 1, c->head_dim, 0, 0) }
        if (c->qk_norm) { T("self_attn.k_norm.weight", 1, c->head_dim, 0, 0) }
        T("post_attention_layernorm.weight", 1, D, 0, 0)
        T("mlp.gate_proj.weight", 2, F, D, 1)
        T("mlp.up_proj.weight", 2, F, D, 1)
        T("mlp.down_proj.weight", 2, D, F, 1)
#undef T
    }
    if (add_tensor(m, &cap, "model.norm.weight", 1, D, 0, 0)) return -1;
    if (!c->tied && add_tensor(m, &cap, "lm_head.weight", 2, c->vocab_size, D, 1)) return -1;
    /* offsets: decayed tensors first, then the rest.  A tensor that joins
     * the previous one of a fused projection (k, v after q; up after gate;
     * their biases likewise) starts right at its end, no padding, so
     * [wq; wk; wv] and [w_gate; w_up] are each one (O, D) matrix for one GEMM. */
    size_t off = 0;
    for (int pass = 1; pass >= 0; pass--) {
        for (int i = 0; i < m->n_tensors; i++) {
            if (m->tensors[i].decay != pass) continue;
            if (!joins_previous(m->tensors[i].name)) off = align_up(off);
            m->tensors[i].offset = off;
            off += tensor_numel(&m->tensors[i]);
        }
        off = align_up(off);
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

void *dl_model_tensor_data(const dl_model *m, const dl_tensor *t, dl_dtype *dt) {
    if (m->wdtype == DL_BF16 && t->offset < m->n_decay_params) {   /* a matrix: the bf16 block */
        if (dt) *dt = DL_BF16;
        return (uint16_t *)m->wlow + t->offset;
    }
    if (dt) *dt = DL_F32;
    return m->params + (m->wdtype == DL_BF16 ? t->offset - m->n_decay_params : t->offset);
}

/* the f32 view of a tensor (NULL: absent, or a matrix of a bf16 model) */
static float *view(dl_model *m, const char *fmt, int l) {
    char nm[96];
    snprintf(nm, sizeof nm, fmt, l);
    const dl_tensor *t = dl_model_tensor(m, nm);
    dl_dtype dt;
    void *p = t ? dl_model_tensor_data(m, t, &dt) : NULL;
    return p && dt == DL_F32 ? p : NULL;
}
/* the weight dtype the forward's matrix ops read (kernels.h "Weight dtype") */
static dl_dtype xwdt(const dl_model *m) { return m->wcomp ? DL_BF16 : m->wdtype; }
/* rows [v0, ...) of a (V, D) head matrix w in the compute weights' dtype
 * (the forward's m->xlm_head, or cw(m, m->lm_head)) */
static const void *head_rows(const dl_model *m, const void *w, int v0) {
    return (const char *)w + (size_t)v0 * m->cfg.dim * dl_dtype_size(xwdt(m));
}
/* the tensor an op reads for master view p: p itself, or its bf16 compute copy */
static const void *cw(const dl_model *m, const float *p) {
    return p && m->wcomp ? (const void *)((const uint16_t *)m->wcomp + (p - m->params)) : (const void *)p;
}
/* the view the forward reads, in xwdt(m): where the tensor lives (m->wdtype),
 * or its compute copy */
static const void *xview(dl_model *m, const char *fmt, int l) {
    char nm[96];
    snprintf(nm, sizeof nm, fmt, l);
    const dl_tensor *t = dl_model_tensor(m, nm);
    void *p = t ? dl_model_tensor_data(m, t, NULL) : NULL;
    return m->wcomp ? cw(m, p) : p;
}
/* the matrices' forward views (p->x*, m->xembed, m->xlm_head); again when the compute copy comes */
static void point_xviews(dl_model *m) {
    for (int l = 0; l < m->cfg.n_layers; l++) {
        dl_layer_params *p = &m->layers[l];
        p->xq = xview(m, "model.layers.%d.self_attn.q_proj.weight", l);
        p->xo = xview(m, "model.layers.%d.self_attn.o_proj.weight", l);
        p->xgate = xview(m, "model.layers.%d.mlp.gate_proj.weight", l);
        p->xdown = xview(m, "model.layers.%d.mlp.down_proj.weight", l);
    }
    m->xembed = xview(m, "model.embed_tokens.weight", 0);
    m->xlm_head = m->cfg.tied ? m->xembed : xview(m, "lm_head.weight", 0);
}

static uint16_t to_bf16(float f) {   /* nearest even, NaN kept (kernels/kbase.h's rule) */
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

int dl_model_set_tensor(dl_model *m, const dl_tensor *t, const void *src, dl_dtype src_dt, char *err, size_t errlen) {
    dl_dtype dt;
    void *dst = dl_model_tensor_data(m, t, &dt);
    size_t n = tensor_numel(t);
    m->wcomp_stale = 1;
    if (dt == src_dt) {
        dl_dev_h2d(m->dev, dst, src, n * dl_dtype_size(dt));
        return 0;
    }
    void *tmp = malloc(n * dl_dtype_size(dt) + 1);
    if (!tmp) return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory converting %s", t->name);
    if (dt == DL_BF16)
        for (size_t i = 0; i < n; i++) ((uint16_t *)tmp)[i] = to_bf16(((const float *)src)[i]);
    else
        for (size_t i = 0; i < n; i++) {
            uint32_t u = (uint32_t)((const uint16_t *)src)[i] << 16;
            memcpy((float *)tmp + i, &u, 4);
        }
    dl_dev_h2d(m->dev, dst, tmp, n * dl_dtype_size(dt));
    free(tmp);
    return 0;
}

/* the first op the model runs in storage dtype dt that dev lacks (the
 * fp32-only ops, sumsq / adamw / scale / select, stay f32 whatever dt; and
 * convert takes two dtypes), or -1 */
static int missing_op(dl_dev *dev, dl_dtype dt) {
    for (int op = 0; op < DL_OP_COUNT; op++) {
        if (op == DL_OP_CONVERT) continue;
        if (dt != DL_F32 && (op == DL_OP_SUMSQ || op == DL_OP_GRAD_CLIP || op == DL_OP_ADAMW || op == DL_OP_SCALE ||
                             op == DL_OP_SELECT_TOKENS))
            continue;
        if (!dl_dev_supports(dev, (dl_op)op, dt)) return op;
    }
    return -1;
}

int dl_model_init(dl_model *m, const dl_config *c, dl_dev *dev, char *err, size_t errlen) {
    return dl_model_init_w(m, c, dev, DL_F32, err, errlen);
}

int dl_model_init_w(dl_model *m, const dl_config *c, dl_dev *dev, dl_dtype wdtype, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    int rc = check_config(c, err, errlen);
    if (rc) return rc;
    m->cfg = *c;
    m->dev = dev;
    m->dtype = DL_F32;   /* compute in the fp32 master weights (CPU: bit-identical to before dtypes) */
    m->wdtype = wdtype;
    int op = missing_op(dev, m->dtype);
    if (op >= 0)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "model: %s does not support %s in %s", dl_dev_describe(dev),
                         dl_op_name((dl_op)op), dl_dtype_name(m->dtype));
    static const dl_op wops[] = { DL_OP_EMBEDDING_FWD, DL_OP_LINEAR_FWD, DL_OP_LINEAR_FWD_SPLIT };
    for (size_t i = 0; i < sizeof wops / sizeof *wops; i++)
        if (!dl_dev_supports_w(dev, wops[i], m->dtype, wdtype))
            return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "model: %s does not support %s in %s with %s weights",
                             dl_dev_describe(dev), dl_op_name(wops[i]), dl_dtype_name(m->dtype),
                             dl_dtype_name(wdtype));
    if (build_tensors(m)) {
        dl_model_free(m);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory");
    }
    /* f32: every tensor in params; bf16: matrices in wlow, the rest in params */
    size_t n_f32 = wdtype == DL_BF16 ? m->n_params - m->n_decay_params : m->n_params;
    m->params = dl_dev_alloc(dev, n_f32 * sizeof(float));
    if (wdtype == DL_BF16) m->wlow = dl_dev_alloc(dev, m->n_decay_params * sizeof(uint16_t));
    m->layers = calloc((size_t)c->n_layers, sizeof *m->layers);
    if (!m->params || !m->layers || (wdtype == DL_BF16 && !m->wlow)) {
        size_t np = m->n_params;
        dl_model_free(m);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate %zu parameters (%.1f MB)", np,
                         np * (double)dl_dtype_size(wdtype) / 1e6);
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
        p->q_norm = view(m, "model.layers.%d.self_attn.q_norm.weight", l);
        p->k_norm = view(m, "model.layers.%d.self_attn.k_norm.weight", l);
        p->mlp_norm = view(m, "model.layers.%d.post_attention_layernorm.weight", l);
        p->w_gate = view(m, "model.layers.%d.mlp.gate_proj.weight", l);
        p->w_up = view(m, "model.layers.%d.mlp.up_proj.weight", l);
        p->w_down = view(m, "model.layers.%d.mlp.down_proj.weight", l);
    }
    m->final_norm = view(m, "model.norm.weight", 0);
    m->lm_head = c->tied ? m->embed : view(m, "lm_head.weight", 0);
    point_xviews(m);
    return 0;
}

static void free_acts(dl_model *m) {
    if (!m->acts) return;
    if (m->acts->block) dl_dev_free(m->dev, m->acts->block);
    if (m->acts->logits32) dl_dev_free(m->dev, m->acts->logits32);
    free(m->acts->L);
    free(m->acts);
    m->acts = NULL;
}

void dl_model_free(dl_model *m) {
    if (!m) return;
    free_acts(m);
    if (m->lora) m->lora_ops->free(m->lora);   /* LoRA hook */
    if (m->params) dl_dev_free(m->dev, m->params);
    if (m->wlow) dl_dev_free(m->dev, m->wlow);
    if (m->wcomp) dl_dev_free(m->dev, m->wcomp);
    if (m->grads) dl_dev_free(m->dev, m->grads);
    if (m->adam_m) dl_dev_free(m->dev, m->adam_m);
    if (m->adam_v) dl_dev_free(m->dev, m->adam_v);
    if (m->gclip) dl_dev_free(m->dev, m->gclip);
    free(m->tensors);
    free(m->layers);
    memset(m, 0, sizeof *m);
}

int dl_model_set_compute(dl_model *m, dl_dtype dt, char *err, size_t errlen) {
    if (dt == m->dtype) return 0;
    if (dt != DL_BF16 || m->dtype != DL_F32)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: compute in %s: only f32 -> bf16 is supported",
                         dl_dtype_name(dt));
    if (m->wdtype != DL_F32)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: bf16 compute needs fp32 masters (this model holds %s "
                         "matrices for inference only)", dl_dtype_name(m->wdtype));
    if (m->lora) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: bf16 compute with a LoRA adapter is not supported");
    if (m->acts) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: set the compute dtype before reserving activations");
    int op = missing_op(m->dev, DL_BF16);
    if (op >= 0)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "model: %s does not support %s in bf16 (bf16 compute runs on "
                         "cuda, or on ref for a slow check)", dl_dev_describe(m->dev), dl_op_name((dl_op)op));
    m->wcomp = dl_dev_alloc(m->dev, m->n_params * sizeof(uint16_t));
    if (!m->wcomp)
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate the bf16 compute copy (%.1f MB)",
                         m->n_params * 2.0 / 1e6);
    m->dtype = DL_BF16;
    m->wcomp_stale = 1;
    point_xviews(m);
    return 0;
}

int dl_model_set_xent_chunk(dl_model *m, int vc, char *err, size_t errlen) {
    if (vc < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: a loss-head chunk of %d columns", vc);
    if (m->acts) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: set the loss-head chunk before reserving activations");
    m->xent_chunk = vc;
    return 0;
}

void dl_model_weights_changed(dl_model *m) { m->wcomp_stale = 1; }

/* rounds the masters into the compute copy when they changed (padding
 * between tensors is zero in both) */
static void refresh_compute(dl_model *m) {
    if (!m->wcomp || !m->wcomp_stale) return;
    dl_k_convert(m->dev, m->wcomp, DL_BF16, m->params, DL_F32, m->n_params);
    m->wcomp_stale = 0;
}

dl_dtype dl_model_compute_begin(dl_model *m) {
    refresh_compute(m);
    return xwdt(m);
}

void dl_model_head_rows(dl_model *m, float *xg, float *hs, float *rstd, const float *x, const int32_t *sel, int M) {
    const dl_config *c = &m->cfg;
    dl_k_gather_rows(m->dev, m->dtype, xg, x, sel, M, c->dim);
    dl_k_rmsnorm_fwd(m->dev, m->dtype, hs, rstd, xg, cw(m, m->final_norm), M, c->dim, c->norm_eps);
}

void dl_model_head_logits_f32(dl_model *m, float *logits, void *scratch, const float *hs, int M) {
    const dl_config *c = &m->cfg;
    if (m->dtype == DL_F32) {
        dl_k_linear_fwd(m->dev, DL_F32, xwdt(m), logits, hs, m->xlm_head, NULL, M, c->dim, c->vocab_size);
        return;
    }
    dl_k_linear_fwd(m->dev, m->dtype, xwdt(m), scratch, hs, m->xlm_head, NULL, M, c->dim, c->vocab_size);
    dl_k_convert(m->dev, logits, DL_F32, scratch, m->dtype, (size_t)M * c->vocab_size);
}

/* a bf16-weight model has no fp32 masters to train */
static int refuse_low(const dl_model *m, const char *what, char *err, size_t errlen) {
    return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: %s needs fp32 weights (this model holds %s matrices "
                     "for inference only)", what, dl_dtype_name(m->wdtype));
}

int dl_model_alloc_grads(dl_model *m, char *err, size_t errlen) {
    if (m->wdtype != DL_F32) return refuse_low(m, "training", err, errlen);
    if (m->grads) return 0;
    m->grads = dl_dev_alloc(m->dev, m->n_params * sizeof(float));
    if (!m->grads)
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate gradients (%.1f MB)",
                         m->n_params * 4.0 / 1e6);
    return 0;
}

int dl_model_alloc_optimizer(dl_model *m, char *err, size_t errlen) {
    if (m->wdtype != DL_F32) return refuse_low(m, "the optimizer", err, errlen);
    if (!m->adam_m) m->adam_m = dl_dev_alloc(m->dev, m->n_params * sizeof(float));
    if (!m->adam_v) m->adam_v = dl_dev_alloc(m->dev, m->n_params * sizeof(float));
    if (!m->adam_m || !m->adam_v)
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate optimizer state (%.1f MB)",
                         m->n_params * 8.0 / 1e6);
    return 0;
}

void dl_model_sync(dl_model *m) { dl_dev_sync(m->dev); }

void dl_model_zero_grads(dl_model *m) {
    if (m->grads) dl_dev_memset0(m->dev, m->grads, m->n_params * sizeof(float));
    if (m->lora) m->lora_ops->zero_grads(m->lora);   /* LoRA hook */
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
        int rc = dl_model_set_tensor(m, t, buf, DL_F32, NULL, 0);
        DL_ASSERT(rc == 0);
    }
    free(buf);
}

/* ---------------------------------------------------------------- reserve */
/* The activation layout, in floats from the block start: counts only when
 * a is NULL (dl_model_acts_bytes), else also sets a's views into a->block.
 * TRAIN keeps every layer's forward buffers (backward reads them) and the
 * backward scratch; INFER carves ONE set of layer buffers that every layer
 * reuses in turn, no probabilities, no backward scratch. */
/* att_keep: 1 carves the (B,Hq,T,T) probabilities per layer (the forward
 * stores them, the backward reads them); 0 for a backend that recomputes
 * them (flash-style).  scratch_f: floats of attention-backward scratch. */
/* xc: vocabulary columns of the head's logits (V: unchunked); acc32: the
 * chunked head's f32 accumulator for dhs (bf16 compute). */
static size_t acts_layout(const dl_config *c, int B, int T, int M_max, dl_acts_mode mode, int att_keep,
                          size_t scratch_f, int xc, int acc32, struct dl_acts *a) {
    size_t N = (size_t)B * T, D = c->dim, QD = (size_t)c->n_heads * c->head_dim,
           KD = (size_t)c->n_kv_heads * c->head_dim, F = c->hidden_dim, V = c->vocab_size,
           M = M_max > 0 ? (size_t)M_max : 1, ATT = (size_t)B * c->n_heads * T * T,
           LSE = (size_t)B * c->n_heads * T;
    int train = mode == DL_ACTS_TRAIN;
    size_t off = 0;
#define CARVE(ptr, type, cnt) do { if (a) ptr = (type *)(a->block + off); off += align_up(cnt); } while (0)
    for (int l = 0; l < (train ? c->n_layers : 1); l++) {
        layer_acts *x = a ? &a->L[l] : NULL, dummy;
        if (!x) x = &dummy;
        CARVE(x->res_in, float, N * D); CARVE(x->rstd1, float, N); CARVE(x->h1, float, N * D);
        CARVE(x->q, float, N * QD); CARVE(x->k, float, N * KD); CARVE(x->v, float, N * KD);
        CARVE(x->lse, float, LSE);
        if (train && att_keep) { CARVE(x->att, float, ATT); }
        CARVE(x->ao, float, N * QD);
        CARVE(x->res_mid, float, N * D); CARVE(x->rstd2, float, N); CARVE(x->h2, float, N * D);
        CARVE(x->gate, float, N * F); CARVE(x->up, float, N * F); CARVE(x->act, float, N * F);
        if (c->qk_norm) {
            CARVE(x->qk.q_in, float, N * QD); CARVE(x->qk.k_in, float, N * KD);
            CARVE(x->qk.rstd_q, float, N * c->n_heads); CARVE(x->qk.rstd_k, float, N * c->n_kv_heads);
        }
    }
    if (a && !train)
        for (int l = 1; l < c->n_layers; l++) a->L[l] = a->L[0];
    struct dl_acts dummy_a, *z = a ? a : &dummy_a;
    CARVE(z->res_out, float, N * D);
    CARVE(z->ids, uint32_t, N); CARVE(z->pos, int32_t, N); CARVE(z->lens, int32_t, (size_t)B);
    CARVE(z->sel, int32_t, M); CARVE(z->targets, uint32_t, M);
    CARVE(z->xg, float, M * D); CARVE(z->rstd_h, float, M); CARVE(z->hs, float, M * D);
    CARVE(z->logits, float, M * (xc < (int)V ? (size_t)xc : V));
    if (xc < (int)V) { CARVE(z->xstat, double, 6 * M); }   /* 3 doubles a row */
    CARVE(z->tmp, float, N * (D > QD ? D : QD));
    if (train) {
        CARVE(z->dx, float, N * D); CARVE(z->dh, float, N * D); CARVE(z->dh2, float, N * D);
        CARVE(z->dq, float, N * QD); CARVE(z->dk, float, N * KD); CARVE(z->dv, float, N * KD);
        CARVE(z->dao, float, N * QD); CARVE(z->datt, float, scratch_f);
        CARVE(z->dgate, float, N * F); CARVE(z->dup, float, N * F); CARVE(z->dact, float, N * F);
        CARVE(z->dhs, float, M * D); CARVE(z->dxg, float, M * D);
        if (xc < (int)V) { CARVE(z->dhs_part, float, M * D); }
        if (xc < (int)V && acc32) { CARVE(z->dhs_acc, float, M * D); CARVE(z->dhs_part32, float, M * D); }
        if (c->qk_norm) { CARVE(z->dq_in, float, N * QD); CARVE(z->dk_in, float, N * KD); }
    }
#undef CARVE
    return off;
}

size_t dl_model_acts_bytes(const dl_config *c, int B, int T, int M_max, dl_acts_mode mode) {
    if (B <= 0 || T <= 0 || M_max < 0) return 0;
    size_t att = (size_t)B * c->n_heads * T * T;   /* the CPU backend's choice: probabilities kept */
    return acts_layout(c, B, T, M_max, mode, 1, att, c->vocab_size, 0, NULL) * sizeof(float);
}

int dl_model_reserve(dl_model *m, int B, int T, int M_max, dl_acts_mode mode, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    if (B <= 0 || T <= 0 || M_max < 0 || (mode != DL_ACTS_TRAIN && mode != DL_ACTS_INFER))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: bad activation shape B=%d T=%d M=%d", B, T, M_max);
    int rc;   /* LoRA hook: the adapter's activations for the same rows */
    if (m->lora && (rc = m->lora_ops->reserve(m->lora, B * T, mode == DL_ACTS_TRAIN, err, errlen))) return rc;
    /* a TRAIN block serves inference too; an INFER block never serves training */
    if (m->acts && m->acts->B >= B && m->acts->T >= T && m->acts->M >= M_max &&
        (m->acts->mode == DL_ACTS_TRAIN || mode == DL_ACTS_INFER))
        return 0;
    /* Keep the attention probabilities for the backward only where the
     * backend's backward needs less scratch with them than without (the
     * CPU: recomputing them takes a second (B,Hq,T,T) buffer); a
     * flash-style backend (CUDA: the same small scratch either way)
     * recomputes them from lse, so they are neither stored nor carved. */
    size_t sk = dl_k_attention_bwd_scratch_bytes(m->dev, B, T, c->n_heads, c->n_kv_heads, c->head_dim, 1),
           sr = dl_k_attention_bwd_scratch_bytes(m->dev, B, T, c->n_heads, c->n_kv_heads, c->head_dim, 0);
    int att_keep = sr > sk;
    size_t scratch_f = ((att_keep ? sk : sr) + sizeof(float) - 1) / sizeof(float);
    free_acts(m);
    struct dl_acts *a = calloc(1, sizeof *a);
    layer_acts *L = a ? calloc((size_t)c->n_layers, sizeof *L) : NULL;
    if (!L) {
        free(a);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory");
    }
    a->L = L;
    a->B = B; a->T = T; a->M = M_max; a->mode = mode;
    a->xc = m->xent_chunk > 0 && m->xent_chunk < c->vocab_size ? m->xent_chunk : c->vocab_size;
    a->n = acts_layout(c, B, T, M_max, mode, att_keep, scratch_f, a->xc, m->dtype == DL_BF16, NULL);
    a->block = dl_dev_alloc(m->dev, a->n * sizeof(float));
    if (!a->block) {
        size_t n = a->n;
        free(L); free(a);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate activations (%.1f MB) "
                         "for batch %d x %d", n * 4.0 / 1e6, B, T);
    }
    acts_layout(c, B, T, M_max, mode, att_keep, scratch_f, a->xc, m->dtype == DL_BF16, a);
    m->acts = a;
    return 0;
}

/* ---------------------------------------------------------------- forward */
/* the halves of dl_model_qkv_fwd / dl_model_mlp_fwd after their norm (below) */
static void qkv_proj(dl_model *m, const dl_layer_params *p, const float *h, float *q, float *k, float *v,
                     const dl_qk_norm_acts *qk, const int32_t *pos, int N);
static void mlp_body(dl_model *m, const dl_layer_params *p, float *tmp, const float *h, float *gate, float *up,
                     float *act, int N);

int dl_model_forward(dl_model *m, const uint32_t *ids, const int32_t *lens, int B, int T,
                     const int32_t *sel, const uint32_t *targets, int M, float *ce,
                     dl_attn_mask mask, int block, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    struct dl_acts *a = m->acts;
    dl_dev *d = m->dev;
    if (!a || B > a->B || T > a->T || M > a->M || B <= 0 || T <= 0 || M < 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: forward B=%d T=%d M=%d exceeds the reserved "
                         "B=%d T=%d M=%d", B, T, M, a ? a->B : 0, a ? a->T : 0, a ? a->M : 0);
    if ((mask == DL_ATTN_BLOCK || mask == DL_ATTN_BD3) && block <= 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: block attention needs a block size > 0");
    if (mask == DL_ATTN_BD3 && T % 2)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: the x_t (+) x_0 layout needs an even T, not %d", T);
    /* BD3: row b is [x_t ; x_0], each half of L = T/2 at RoPE positions 0..L-1 */
    const int half = mask == DL_ATTN_BD3;
    int N = B * T, D = c->dim, Hq = c->n_heads, Hk = c->n_kv_heads, E = c->head_dim, V = c->vocab_size,
        QD = Hq * E;
    a->f_valid = 0;
    if (a->pos_T != T || a->pos_N != N || a->pos_half != half) {   /* RoPE positions: b*T + i -> i (mod T/2) */
        int32_t *pos = malloc((size_t)N * sizeof *pos);
        if (!pos) return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of memory");
        for (int n = 0; n < N; n++) pos[n] = half ? n % T % (T / 2) : n % T;
        dl_dev_h2d(d, a->pos, pos, (size_t)N * sizeof *pos);
        free(pos);
        a->pos_T = T; a->pos_N = N; a->pos_half = half;
    }
    dl_dev_d2d(d, a->ids, ids, (size_t)N * sizeof *ids);
    if (lens) dl_dev_d2d(d, a->lens, lens, (size_t)B * sizeof *lens);
    const int32_t *lens_c = lens ? a->lens : NULL;
    const dl_dtype dt = m->dtype;
    const dl_dtype wdt = xwdt(m);
    refresh_compute(m);
    dl_k_embedding_fwd(d, dt, wdt, a->L[0].res_in, a->ids, m->xembed, N, D);
    dl_k_rmsnorm_fwd(d, dt, a->L[0].h1, a->L[0].rstd1, a->L[0].res_in, cw(m, m->layers[0].attn_norm), N, D,
                     c->norm_eps);
    /* each residual add runs fused with the norm that reads its sum */
    for (int l = 0; l < c->n_layers; l++) {
        const dl_layer_params *p = &m->layers[l];
        layer_acts *x = &a->L[l];
        qkv_proj(m, p, x->h1, x->q, x->k, x->v, c->qk_norm ? &x->qk : NULL, a->pos, N);
        dl_k_attention_fwd(d, dt, x->ao, x->lse, x->att, x->q, x->k, x->v, lens_c, B, T, Hq, Hk, E, mask, block);
        dl_k_linear_fwd(d, dt, wdt, a->tmp, x->ao, p->xo, NULL, N, QD, D);
        if (m->lora) m->lora_ops->fwd(m->lora, l, DL_LORA_O, a->tmp, x->ao, N);   /* LoRA hook */
        dl_k_add_rmsnorm_fwd(d, dt, x->res_mid, x->h2, x->rstd2, x->res_in, a->tmp, cw(m, p->mlp_norm), N, D,
                             c->norm_eps);
        mlp_body(m, p, a->tmp, x->h2, x->gate, x->up, x->act, N);
        if (l + 1 < c->n_layers) {
            layer_acts *nx = &a->L[l + 1];
            dl_k_add_rmsnorm_fwd(d, dt, nx->res_in, nx->h1, nx->rstd1, x->res_mid, a->tmp,
                                 cw(m, m->layers[l + 1].attn_norm), N, D, c->norm_eps);
        } else dl_k_add(d, dt, a->res_out, x->res_mid, a->tmp, (size_t)N * D);
    }
    if (M > 0) {   /* head at the selected rows only */
        dl_dev_d2d(d, a->sel, sel, (size_t)M * sizeof *sel);
        dl_model_head_rows(m, a->xg, a->hs, a->rstd_h, a->res_out, a->sel, M);
        if (targets) dl_dev_d2d(d, a->targets, targets, (size_t)M * sizeof *targets);
        if (a->xc < V) {   /* the loss block by block: no (M, V) logits */
            if (!targets)
                return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: a chunked loss head keeps no logits "
                                 "(forward with targets, or set no chunk)");
            for (int v0 = 0; v0 < V; v0 += a->xc) {
                int n = V - v0 < a->xc ? V - v0 : a->xc;
                dl_k_linear_fwd(d, dt, wdt, a->logits, a->hs, head_rows(m, m->xlm_head, v0), NULL, M, D, n);
                dl_k_xent_chunk_fwd(d, dt, a->xstat, ce, a->logits, a->targets, M, V, v0, n);
            }
        } else if (targets) {
            dl_k_linear_fwd(d, dt, wdt, a->logits, a->hs, m->xlm_head, NULL, M, D, V);
            dl_k_softmax_xent_fwd(d, dt, ce, a->logits, a->targets, M, V);
        } else {   /* bf16: the f32 logits samplers read get their own buffer, made on first need (training never does) */
            if (dt != DL_F32 && !a->logits32 && !(a->logits32 = dl_dev_alloc(d, (size_t)a->M * V * sizeof(float))))
                return dl_seterr(err, errlen, -DL_EXIT_IO, "model: cannot allocate f32 logits (%.1f MB)",
                                 (double)a->M * V * 4 / 1e6);
            dl_model_head_logits_f32(m, dt == DL_F32 ? a->logits : a->logits32, a->logits, a->hs, M);
        }
    }
    a->f_has_lens = lens != NULL; a->f_mask = mask; a->f_block = block;
    a->fB = B; a->fT = T; a->fM = M;
    a->f_has_targets = targets != NULL;
    a->f_valid = 1;
    return 0;
}

const float *dl_model_logits(const dl_model *m) {
    if (!m->acts) return NULL;
    return m->dtype == DL_BF16 ? m->acts->logits32 : m->acts->logits;   /* f32 either way */
}

/* ---------------------------------------------------------------- backward */
/* weight gradient of p; NULL (skipped by the kernels) when the base is
 * frozen under a LoRA adapter and has no gradient buffer */
#define G(p) (m->grads ? m->grads + ((p) - m->params) : NULL)
#define GB(p) ((p) ? G(p) : NULL)
#define LORA_BWD(t, dx, dy, x) if (m->lora) m->lora_ops->bwd(m->lora, l, t, dx, dy, x, N)   /* LoRA hook */

/* Backward of qk_norm_fwd: dq_in, dk_in (overwritten) from dq, dk
 * (after the RoPE backward); the norm weights' gradients accumulate. */
static void qk_norm_bwd(dl_model *m, const dl_layer_params *p, const dl_qk_norm_acts *qk, float *dq_in, float *dk_in,
                        const float *dq, const float *dk, int N) {
    const dl_config *c = &m->cfg;
    int E = c->head_dim, NQ = N * c->n_heads, NK = N * c->n_kv_heads;
    dl_dev_memset0(m->dev, dq_in, (size_t)NQ * E * sizeof(float));   /* rmsnorm_bwd accumulates into dx */
    dl_dev_memset0(m->dev, dk_in, (size_t)NK * E * sizeof(float));
    dl_k_rmsnorm_bwd(m->dev, m->dtype, dq_in, G(p->q_norm), dq, qk->q_in, cw(m, p->q_norm), qk->rstd_q, NQ, E);
    dl_k_rmsnorm_bwd(m->dev, m->dtype, dk_in, G(p->k_norm), dk, qk->k_in, cw(m, p->k_norm), qk->rstd_k, NK, E);
}

int dl_model_backward(dl_model *m, const float *dce, char *err, size_t errlen) {
    const dl_config *c = &m->cfg;
    struct dl_acts *a = m->acts;
    dl_dev *d = m->dev;
    if (m->wdtype != DL_F32) return refuse_low(m, "backward", err, errlen);
    if (!m->grads && !m->lora) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: backward without gradients");
    if (a && a->mode != DL_ACTS_TRAIN)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: backward after an inference-only reserve "
                         "(dl_model_reserve DL_ACTS_INFER keeps nothing for backward)");
    if (!a || !a->f_valid || !a->f_has_targets)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "model: backward needs a forward with targets");
    a->f_valid = 0;   /* logits were overwritten in place: one backward per forward */
    int B = a->fB, T = a->fT, M = a->fM, N = B * T, D = c->dim, Hq = c->n_heads, Hk = c->n_kv_heads,
        E = c->head_dim, F = c->hidden_dim, V = c->vocab_size, QD = Hq * E, KD = Hk * E;
    if (M == 0) return 0;
    const dl_dtype dt = m->dtype;
    const int32_t *lens = a->f_has_lens ? a->lens : NULL;
    /* head: probs -> dlogits -> d hs -> d xg (final norm) -> scatter into dx */
    if (a->xc < V) {   /* block by block, each block's logits made again; in bf16 the blocks' parts add in f32 */
        const size_t MD = (size_t)M * D;
        for (int v0 = 0; v0 < V; v0 += a->xc) {
            int n = V - v0 < a->xc ? V - v0 : a->xc;
            const void *w = head_rows(m, cw(m, m->lm_head), v0);
            float *gw = m->grads ? G(m->lm_head) + (size_t)v0 * D : NULL;
            dl_k_linear_fwd(d, dt, xwdt(m), a->logits, a->hs, w, NULL, M, D, n);
            dl_k_xent_chunk_bwd(d, dt, a->logits, a->xstat, dce, a->targets, M, v0, n);
            dl_k_linear_bwd(d, dt, v0 ? a->dhs_part : a->dhs, gw, NULL, a->logits, a->hs, w, M, D, n);
            if (dt == DL_F32) { if (v0) dl_k_add_inplace(d, dt, a->dhs, a->dhs_part, MD); }
            else if (!v0) dl_k_convert(d, a->dhs_acc, DL_F32, a->dhs, dt, MD);
            else {
                dl_k_convert(d, a->dhs_part32, DL_F32, a->dhs_part, dt, MD);
                dl_k_add_inplace(d, DL_F32, a->dhs_acc, a->dhs_part32, MD);
            }
        }
        if (dt != DL_F32) dl_k_convert(d, a->dhs, dt, a->dhs_acc, DL_F32, MD);
    } else {
        dl_k_softmax_xent_bwd(d, dt, a->logits, dce, a->targets, M, V);
        dl_k_linear_bwd(d, dt, a->dhs, G(m->lm_head), NULL, a->logits, a->hs, cw(m, m->lm_head), M, D, V);
    }
    dl_dev_memset0(d, a->dxg, (size_t)M * D * sizeof(float));
    dl_k_rmsnorm_bwd(d, dt, a->dxg, G(m->final_norm), a->dhs, a->xg, cw(m, m->final_norm), a->rstd_h, M, D);
    dl_dev_memset0(d, a->dx, (size_t)N * D * sizeof(float));
    dl_k_scatter_add_rows(d, dt, a->dx, a->dxg, a->sel, M, D);
    /* The fused weights [w_gate; w_up] and [wq; wk; wv] get their gradients
     * from one linear_bwd per part, in the order of before the fusion: the
     * input gradient of a fused GEMM would sum over a longer K and round
     * differently (outputs must stay bit-identical). */
    for (int l = c->n_layers - 1; l >= 0; l--) {
        const dl_layer_params *p = &m->layers[l];
        layer_acts *x = &a->L[l];
        /* MLP: dx is d(res_out of this layer) */
        dl_k_linear_bwd(d, dt, a->dact, G(p->w_down), NULL, a->dx, x->act, cw(m, p->w_down), N, F, D);
        LORA_BWD(DL_LORA_DOWN, a->dact, a->dx, x->act);
        dl_k_swiglu_bwd(d, dt, a->dgate, a->dup, a->dact, x->gate, x->up, N, F);
        dl_k_linear_bwd(d, dt, a->dh, G(p->w_gate), NULL, a->dgate, x->h2, cw(m, p->w_gate), N, D, F);
        LORA_BWD(DL_LORA_GATE, a->dh, a->dgate, x->h2);
        dl_k_linear_bwd(d, dt, a->dh2, G(p->w_up), NULL, a->dup, x->h2, cw(m, p->w_up), N, D, F);
        LORA_BWD(DL_LORA_UP, a->dh2, a->dup, x->h2);
        dl_k_add_inplace(d, dt, a->dh, a->dh2, (size_t)N * D);
        dl_k_rmsnorm_bwd(d, dt, a->dx, G(p->mlp_norm), a->dh, x->res_mid, cw(m, p->mlp_norm), x->rstd2, N, D);
        /* attention: dx is d(res_mid) */
        dl_k_linear_bwd(d, dt, a->dao, G(p->wo), NULL, a->dx, x->ao, cw(m, p->wo), N, QD, D);
        LORA_BWD(DL_LORA_O, a->dao, a->dx, x->ao);
        dl_k_attention_bwd(d, dt, a->dq, a->dk, a->dv, a->datt, a->dao, x->ao, x->lse, x->att, x->q, x->k, x->v,
                           lens, B, T, Hq, Hk, E, a->f_mask, a->f_block);
        dl_k_rope(d, dt, a->dq, a->pos, N, Hq, E, c->rope_theta, c->rope_layout, 1);
        dl_k_rope(d, dt, a->dk, a->pos, N, Hk, E, c->rope_theta, c->rope_layout, 1);
        const float *dq = a->dq, *dk = a->dk;
        if (c->qk_norm) {
            qk_norm_bwd(m, p, &x->qk, a->dq_in, a->dk_in, a->dq, a->dk, N);
            dq = a->dq_in; dk = a->dk_in;
        }
        /* LoRA's q/k hooks see the projections' own gradients (before q_norm/k_norm, as PEFT's q_proj/k_proj) */
        dl_k_linear_bwd(d, dt, a->dh, G(p->wq), GB(p->bq), dq, x->h1, cw(m, p->wq), N, D, QD);
        LORA_BWD(DL_LORA_Q, a->dh, dq, x->h1);
        dl_k_linear_bwd(d, dt, a->dh2, G(p->wk), GB(p->bk), dk, x->h1, cw(m, p->wk), N, D, KD);
        LORA_BWD(DL_LORA_K, a->dh2, dk, x->h1);
        dl_k_add_inplace(d, dt, a->dh, a->dh2, (size_t)N * D);
        dl_k_linear_bwd(d, dt, a->dh2, G(p->wv), GB(p->bv), a->dv, x->h1, cw(m, p->wv), N, D, KD);
        LORA_BWD(DL_LORA_V, a->dh2, a->dv, x->h1);
        dl_k_add_inplace(d, dt, a->dh, a->dh2, (size_t)N * D);
        dl_k_rmsnorm_bwd(d, dt, a->dx, G(p->attn_norm), a->dh, x->res_in, cw(m, p->attn_norm), x->rstd1, N, D);
        if (m->bwd_hook) m->bwd_hook(m->bwd_ctx, l);   /* layer l's weight gradients are issued */
    }
    if (m->grads) dl_k_embedding_bwd(d, dt, G(m->embed), a->dx, a->ids, N, D);   /* frozen under LoRA: skipped */
    return 0;
}

/* ------------------------------------------------ blocks shared with the KV path */
/* q|k|v (and gate|up) are ONE fused linear over the adjacent weights
 * (dl_k_linear_fwd_split: a single GEMM where the backend gains from it). */
/* Qwen3's q_norm / k_norm: each head's q (and k) row of head_dim values is
 * RMS-normalised with its own weight (E) and the model's eps, before RoPE:
 * as one rmsnorm over (N*H, E) rows, since q is (N, H*E) row-major. */
static void qk_norm_fwd(dl_model *m, const dl_layer_params *p, const dl_qk_norm_acts *qk, float *q, float *k, int N) {
    const dl_config *c = &m->cfg;
    dl_k_rmsnorm_fwd(m->dev, m->dtype, q, qk->rstd_q, qk->q_in, cw(m, p->q_norm), N * c->n_heads, c->head_dim, c->norm_eps);
    dl_k_rmsnorm_fwd(m->dev, m->dtype, k, qk->rstd_k, qk->k_in, cw(m, p->k_norm), N * c->n_kv_heads, c->head_dim,
                     c->norm_eps);
}

/* q, k, v from the normed input h (the rest of dl_model_qkv_fwd) */
static void qkv_proj(dl_model *m, const dl_layer_params *p, const float *h, float *q, float *k, float *v,
                     const dl_qk_norm_acts *qk, const int32_t *pos, int N) {
    const dl_config *c = &m->cfg;
    const dl_dtype dt = m->dtype;
    int D = c->dim, E = c->head_dim, QD = c->n_heads * E, KD = c->n_kv_heads * E;
    DL_ASSERT(!c->qk_norm || (qk && p->q_norm && p->k_norm));
    void *const outs[3] = { c->qk_norm ? qk->q_in : q, c->qk_norm ? qk->k_in : k, v };
    const int parts[3] = { QD, KD, KD };
    dl_k_linear_fwd_split(m->dev, dt, xwdt(m), outs, parts, 3, h, p->xq, cw(m, p->bq), N, D);
    if (m->lora) {   /* LoRA hook: on the projections themselves (before q_norm/k_norm and RoPE, as PEFT) */
        int l = (int)(p - m->layers);
        m->lora_ops->fwd(m->lora, l, DL_LORA_Q, outs[0], h, N);
        m->lora_ops->fwd(m->lora, l, DL_LORA_K, outs[1], h, N);
        m->lora_ops->fwd(m->lora, l, DL_LORA_V, v, h, N);
    }
    if (c->qk_norm) qk_norm_fwd(m, p, qk, q, k, N);
    dl_k_rope(m->dev, dt, q, pos, N, c->n_heads, E, c->rope_theta, c->rope_layout, 0);
    dl_k_rope(m->dev, dt, k, pos, N, c->n_kv_heads, E, c->rope_theta, c->rope_layout, 0);
}

void dl_model_qkv_fwd(dl_model *m, const dl_layer_params *p, float *h, float *rstd, float *q, float *k, float *v,
                      const dl_qk_norm_acts *qk, const float *x, const int32_t *pos, int N) {
    const dl_config *c = &m->cfg;
    dl_k_rmsnorm_fwd(m->dev, m->dtype, h, rstd, x, cw(m, p->attn_norm), N, c->dim, c->norm_eps);
    qkv_proj(m, p, h, q, k, v, qk, pos, N);
}

/* tmp = the MLP's output for the normed input h (before the residual add) */
static void mlp_body(dl_model *m, const dl_layer_params *p, float *tmp, const float *h, float *gate, float *up,
                     float *act, int N) {
    const dl_config *c = &m->cfg;
    const dl_dtype dt = m->dtype;
    int D = c->dim, F = c->hidden_dim;
    void *const outs[2] = { gate, up };
    const int parts[2] = { F, F };
    dl_k_linear_fwd_split(m->dev, dt, xwdt(m), outs, parts, 2, h, p->xgate, NULL, N, D);
    int l = (int)(p - m->layers);
    if (m->lora) {   /* LoRA hook */
        m->lora_ops->fwd(m->lora, l, DL_LORA_GATE, gate, h, N);
        m->lora_ops->fwd(m->lora, l, DL_LORA_UP, up, h, N);
    }
    dl_k_swiglu_fwd(m->dev, dt, act, gate, up, N, F);
    dl_k_linear_fwd(m->dev, dt, xwdt(m), tmp, act, p->xdown, NULL, N, F, D);
    if (m->lora) m->lora_ops->fwd(m->lora, l, DL_LORA_DOWN, tmp, act, N);   /* LoRA hook */
}

void dl_model_mlp_fwd(dl_model *m, const dl_layer_params *p, float *out, const float *res, float *h, float *rstd,
                      float *gate, float *up, float *act, float *tmp, int N) {
    const dl_config *c = &m->cfg;
    dl_k_rmsnorm_fwd(m->dev, m->dtype, h, rstd, res, cw(m, p->mlp_norm), N, c->dim, c->norm_eps);
    mlp_body(m, p, tmp, h, gate, up, act, N);
    dl_k_add(m->dev, m->dtype, out, res, tmp, (size_t)N * c->dim);
}
