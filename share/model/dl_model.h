/* dl_model.h — the LLaMA-style transformer of DESIGN.md "Model", its config,
 * and its forward/backward over the kernels of kernels/kernels.h.
 *
 *   x = embed[ids]
 *   per layer: h = rmsnorm(x)·w_attn_norm → q,k,v (+bias if qkv_bias)
 *              [→ per-head rmsnorm of q and k over head_dim if qk_norm (Qwen3)] → RoPE(q,k)
 *              → attention (bidirectional | causal | block; GQA) → o_proj → x += ·
 *              h = rmsnorm(x)·w_mlp_norm → down(silu(gate(h)) * up(h)) → x += ·
 *   final rmsnorm → output head (tied to embed or lm_head) ONLY at the M
 *   selected positions (the ones that carry loss, or that a sampler needs).
 *
 * Memory: parameters, gradients, AdamW m and v are each ONE device allocation
 * carved into named tensors (HF names, dl_model_tensors); [wq; wk; wv],
 * [bq; bk; bv] and [w_gate; w_up] are adjacent (one fused GEMM each);
 * activations are one allocation sized by dl_model_reserve(B, T, M_max, mode)
 * (dl_model_acts_bytes says how large beforehand).  fp32 master weights
 * (params) are what the optimizer updates; a CUDA backend keeps its bf16
 * compute copy apart (issue 5/6).
 *
 * Ownership: dl_model_init allocates, dl_model_free releases (safe on a
 * zeroed struct).
 */
#ifndef DL_MODEL_H
#define DL_MODEL_H
#include <stddef.h>
#include <stdint.h>
#include "dl_base.h"
#include "kernels.h"

typedef struct {
    char arch[32];          /* "llama" | "qwen2" | "mistral" | "qwen3": the canonical HF model_type we save */
    char family[32];        /* model_type as read ("llada", "Dream", "a2d-qwen3", ... or == arch): the
                               tensor names of the checkpoint it came from (dl_family_tensor_name) */
    int dim;                /* hidden_size */
    int n_layers;           /* num_hidden_layers */
    int n_heads;            /* num_attention_heads */
    int n_kv_heads;         /* num_key_value_heads (default n_heads) */
    int head_dim;           /* head_dim (default dim / n_heads) */
    int hidden_dim;         /* intermediate_size */
    int vocab_size;
    int max_seq_len;        /* max_position_embeddings */
    float norm_eps;         /* rms_norm_eps */
    float rope_theta;
    dl_rope_layout rope_layout;  /* HF checkpoints: HALF (weights permuted at llama2.c import) */
    int tied;               /* tie_word_embeddings */
    int qkv_bias;           /* attention_bias (llama) / always for qwen2 */
    int qk_norm;            /* per-head RMSNorm of q and k before RoPE (qwen3: q_norm / k_norm, (head_dim)) */
    /* dllm fields (kept in config.json under the same names) */
    int64_t mask_token_id;  /* -1 = none */
    int64_t bos_token_id, eos_token_id, pad_token_id;   /* -1 = none */
    int shift_logits;       /* position i predicted from hidden i-1 (Dream) */
    char objective[16];     /* "diffusion" | "causal" */
    int block_diffusion;    /* > 0: trained with BD3LM block diffusion, blocks of this many positions
                               (dllm-train --block-diffusion B; the sampler then goes block by block,
                               block-causal); 0: not (config.json omits the field then) */
} dl_config;

/* Fill defaults (llama, untied, eps 1e-5, theta 10000, diffusion). */
void dl_config_default(dl_config *c);
/* Parse an HF config.json (llama / qwen2 / mistral names) + dllm fields.
 * Missing required fields or inconsistent ones (dim % heads, heads % kv) are
 * data errors naming the file and field. */
int dl_config_load(dl_config *c, const char *path, char *err, size_t errlen);
/* The same from config.json's bytes text[0..len) (no NUL needed); `name`
 * stands for the file in messages.  dl_config_load reads the file and calls it. */
int dl_config_parse(dl_config *c, const char *text, size_t len, const char *name, char *err, size_t errlen);
/* Write config.json (HF-loadable: architectures, model_type, torch_dtype ...). */
int dl_config_save(const dl_config *c, const char *path, const char *torch_dtype, char *err, size_t errlen);
/* 0 when a and b describe the same parameter shapes; else -DL_EXIT_DATA + why */
int dl_config_same_shapes(const dl_config *a, const dl_config *b, char *err, size_t errlen);

/* A named tensor carved from the parameter block (same offsets in grads, m, v). */
typedef struct {
    char name[96];          /* HF name: "model.layers.3.self_attn.q_proj.weight" */
    size_t offset;          /* in floats from the block start */
    int ndim;
    int shape[2];
    int decay;              /* 1: weight decay applies (matrices), 0: norms, biases */
} dl_tensor;

typedef struct {
    float *attn_norm;   /* (D) */
    float *wq, *wk, *wv;/* (Hq*E, D), (Hk*E, D), (Hk*E, D); adjacent: wq is also [wq; wk; wv] (Hq*E+2Hk*E, D) */
    float *bq, *bk, *bv;/* (Hq*E), (Hk*E), (Hk*E) or NULL; adjacent like the weights */
    float *wo;          /* (D, Hq*E) */
    float *q_norm, *k_norm; /* (E), (E) or NULL (cfg.qk_norm) */
    float *mlp_norm;    /* (D) */
    float *w_gate, *w_up; /* (F, D); adjacent: w_gate is also [w_gate; w_up] (2F, D) */
    float *w_down;      /* (D, F) */
    /* What the forward's linears read, in dl_model.wdtype: the master views
     * above (DL_F32), or the bf16 compute copy of the same matrices in
     * dl_model.wlow (DL_BF16, inference only; then wq .. w_down are NULL). */
    const void *xq, *xo, *xgate, *xdown;
} dl_layer_params;

/* The linears an adapter can hook (dl_lora.h), and the hooks dl_model.c
 * calls when one is attached (m->lora, m->lora_ops): a table, so that this
 * file does not depend on dl_lora (dl_lora fills it). */
struct dl_lora;
enum { DL_LORA_Q, DL_LORA_K, DL_LORA_V, DL_LORA_O, DL_LORA_GATE, DL_LORA_UP, DL_LORA_DOWN, DL_LORA_NT };
typedef struct {
    int (*reserve)(struct dl_lora *lo, int N, int train, char *err, size_t errlen);
    void (*fwd)(struct dl_lora *lo, int layer, int t, void *y, const void *x, int N);
    void (*bwd)(struct dl_lora *lo, int layer, int t, void *dx, const void *dy, const void *x, int N);
    void (*zero_grads)(struct dl_lora *lo);
    void (*free)(struct dl_lora *lo);
} dl_lora_ops;

typedef struct {
    dl_config cfg;
    dl_dev *dev;
    /* Storage dtype of the ops' activations (checked with dl_dev_supports):
     * DL_F32 from dl_model_init; DL_BF16 after dl_model_set_compute
     * (mixed precision: bf16 activations and activation gradients, the
     * ops read the bf16 compute copy wcomp; masters, weight gradients and
     * AdamW stay fp32). */
    dl_dtype dtype;
    /* Storage dtype of the weight MATRICES the forward reads (kernels.h
     * "Weight dtype"): DL_F32 = the masters in params (training, and every
     * f32 checkpoint); DL_BF16 = inference from bf16 weights: the matrices
     * live only in wlow (n_decay_params bf16 values, the same element
     * offsets as params), params holds just the norms and biases (the
     * range [n_decay_params, n_params), so params[0] is element
     * n_decay_params), and there are no fp32 matrices at all: no backward,
     * no optimizer, no save.  dl_model_init_w chooses. */
    dl_dtype wdtype;
    void *wlow;               /* (n_decay_params) bf16, device, or NULL */
    /* (n_params) bf16, device, same offsets as params, or NULL: the compute
     * copy of EVERY tensor (norms and biases too: an op has one dt) when
     * dtype is DL_BF16.  Rounded from params (nearest even) by the first
     * forward after wcomp_stale is set: dl_model_weights_changed, and
     * every write of params this file knows of (set_tensor, init). */
    void *wcomp;
    int wcomp_stale;
    size_t n_params;          /* floats */
    /* Block layout: every matrix (decay = 1) lies in [0, n_decay_params),
     * every norm / bias (decay = 0) in [n_decay_params, n_params), each
     * tensor starting on a 64-float boundary (padding stays zero), so the
     * optimizer is two dl_k_adamw calls over contiguous ranges. */
    size_t n_decay_params;
    dl_tensor *tensors; int n_tensors;
    float *params;            /* (n_params) master fp32, device */
    float *grads;             /* (n_params) or NULL until dl_model_alloc_grads */
    float *adam_m, *adam_v;   /* (n_params) or NULL until dl_model_alloc_optimizer */
    double *gclip;            /* (2) gradient norm, clip factor (dl_optim_clip), device */
    int xent_chunk;           /* vocabulary columns per loss-head chunk; 0: all (dl_model_set_xent_chunk) */
    /* views into params (and the same offsets into grads) */
    float *embed;             /* (V, D) */
    dl_layer_params *layers;  /* (n_layers) */
    float *final_norm;        /* (D) */
    float *lm_head;           /* (V, D); == embed when tied */
    const void *xembed, *xlm_head;   /* embed / lm_head as the forward reads them (wdtype) */
    struct dl_acts *acts;     /* activation block, see dl_model.c */
    /* LoRA adapter (dl_lora.h) or NULL.  When attached: forward / backward
     * add its low-rank path (hooks marked "LoRA hook" in dl_model.c), the
     * base weights are frozen (grads may be NULL: their gradients are
     * skipped), dl_optim trains the adapter, dl_model_free frees it. */
    struct dl_lora *lora;
    const dl_lora_ops *lora_ops;   /* its hooks (set with lora by dl_lora_attach) */
    /* Backward progress hook or NULL: dl_model_backward calls
     * bwd_hook(bwd_ctx, l) once the kernels of layer l's backward are
     * issued (l = n_layers-1 .. 0), so a data-parallel caller can start
     * the all-reduce of gradients that are final (the head's and those of
     * layers >= l) while the layers below run.  "Issued": on a GPU the
     * hook synchronises before it reads them.  Not called when the
     * backward has nothing to do (M = 0). */
    void (*bwd_hook)(void *ctx, int layer);
    void *bwd_ctx;
} dl_model;

int dl_model_init(dl_model *m, const dl_config *c, dl_dev *dev, char *err, size_t errlen);
/* dl_model_init with the weight dtype wdtype (DL_F32: the same as
 * dl_model_init; DL_BF16: the inference-only layout above, refused with
 * -DL_EXIT_DEVICE when the device lacks f32 x bf16 linear / embedding). */
int dl_model_init_w(dl_model *m, const dl_config *c, dl_dev *dev, dl_dtype wdtype, char *err, size_t errlen);
/* Mixed-precision compute (after init, before reserve): dt DL_BF16 makes
 * the ops run in bf16 on a bf16 copy of the fp32 masters (wcomp), with
 * fp32 weight gradients and optimizer; DL_F32 is the default (no-op).
 * -DL_EXIT_DEVICE when the device lacks an op in bf16 (the CPU backend
 * has none: use cuda, or ref for a slow check), -DL_EXIT_USAGE for a
 * bf16-weight (inference) model or one with a LoRA adapter. */
int dl_model_set_compute(dl_model *m, dl_dtype dt, char *err, size_t errlen);
/* A blocking per-op profile of the model's device (kernels.h
 * dl_dev_profile: each op waits for the device, so its time is its own and
 * the run is slower): on = 1 starts it, 0 stops; 0, or -1 when out of
 * memory.  dl_model_profile_table writes the ops that ran, the slowest
 * first (op, calls, total ms, ms per call, share), one line each, into buf
 * (dl_model_prof.c). */
int dl_model_profile(dl_model *m, int on);
void dl_model_profile_table(const dl_model *m, char *buf, size_t n);
/* The loss head over the vocabulary in chunks of vc columns (before
 * reserve; 0 or vc >= vocab_size: the whole vocabulary at once, the
 * default).  Only an (M, vc) block of logits is then reserved instead of
 * (M, V); a forward with targets computes each block and folds it into
 * the loss (kernels.h dl_k_xent_chunk_fwd), and the backward computes each
 * block again (one more head GEMM) for its gradient.  A forward without
 * targets (logits for a sampler) is refused while chunked.
 * -DL_EXIT_USAGE for vc < 0 or after reserve. */
int dl_model_set_xent_chunk(dl_model *m, int vc, char *err, size_t errlen);
/* The caller wrote the masters (params) behind the model's back (optimizer
 * step, all-gather, broadcast, checkpoint load): the compute copy is
 * refreshed before the next forward.  No-op without a compute copy. */
void dl_model_weights_changed(dl_model *m);
/* Where tensor t lives (device pointer) and its storage dtype there:
 * params (F32) or, for a matrix of a DL_BF16 model, wlow (BF16). */
void *dl_model_tensor_data(const dl_model *m, const dl_tensor *t, dl_dtype *dt);
/* Copy n host values of dtype src_dt (F32 or BF16) into tensor t,
 * converting to where it lives (bf16 rounds to nearest even). */
int dl_model_set_tensor(dl_model *m, const dl_tensor *t, const void *src, dl_dtype src_dt, char *err, size_t errlen);
void dl_model_free(dl_model *m);
int dl_model_alloc_grads(dl_model *m, char *err, size_t errlen);
int dl_model_alloc_optimizer(dl_model *m, char *err, size_t errlen);
const dl_tensor *dl_model_tensor(const dl_model *m, const char *name);
/* Deterministic init from dl_rng (seed, purpose DL_RNG_INIT): normal(0, 0.02)
 * for matrices, 1 for norms, 0 for biases (as HF LlamaPreTrainedModel).
 * Each tensor's stream is keyed by index = FNV-1a-64 of its HF name, so a
 * tensor's values do not depend on which other tensors exist (tied, bias). */
void dl_model_init_weights(dl_model *m, uint64_t seed);
/* Activations for up to B rows of T tokens and M_max selected positions.
 * TRAIN keeps what dl_model_backward needs (every layer's inputs, attention
 * probabilities, backward scratch); INFER only what one forward needs (one
 * layer's buffers reused by all layers): dl_model_backward after an INFER
 * reserve returns -DL_EXIT_USAGE.  A reserve that fits the current block
 * (same or smaller shape; TRAIN serves INFER too) keeps it.
 * dl_model_acts_bytes: the bytes dl_model_reserve allocates for that shape
 * (0 for a bad shape). */
typedef enum { DL_ACTS_TRAIN = 0, DL_ACTS_INFER = 1 } dl_acts_mode;
size_t dl_model_acts_bytes(const dl_config *c, int B, int T, int M_max, dl_acts_mode mode);
int dl_model_reserve(dl_model *m, int B, int T, int M_max, dl_acts_mode mode, char *err, size_t errlen);

/* One forward pass.  All arrays are DEVICE pointers:
 *   ids (B*T)      input ids (xt for diffusion, x0 for causal)
 *   lens (B)       attention length per row (random-length cut), NULL = T
 *   sel (M)        hidden-row indices b*T + i whose output the head computes
 *                  (with shift_logits the caller passes i-1 for target i)
 *   targets (M)    target ids, or NULL (then no ce; logits kept for the caller)
 * Outputs: ce (M) per selected position (device) when targets != NULL; the
 * probs / logits stay in the activation block (dl_model_logits).
 * mask: DL_ATTN_BIDIR / CAUSAL / BLOCK (block size `block`), or DL_ATTN_BD3
 * (block diffusion training, kernels.h): each row is [x_t ; x_0], T = 2L
 * even, both halves at RoPE positions 0..L-1, lens (<= L) cutting both. */
int dl_model_forward(dl_model *m, const uint32_t *ids, const int32_t *lens, int B, int T,
                     const int32_t *sel, const uint32_t *targets, int M, float *ce,
                     dl_attn_mask mask, int block, char *err, size_t errlen);
/* Logits (M,V) of the last forward (before softmax), f32, device pointer;
 * valid only when that forward had targets == NULL (a bf16-compute model:
 * its bf16 logits widened into a separate f32 buffer). */
const float *dl_model_logits(const dl_model *m);
/* Backward of the last forward (which needed targets): dce (M) = d loss /
 * d ce_m (device).  Gradients ACCUMULATE into m->grads (zero them with
 * dl_model_zero_grads once per optimizer step). */
int dl_model_backward(dl_model *m, const float *dce, char *err, size_t errlen);
void dl_model_zero_grads(dl_model *m);
/* Waits until the work issued on m's device is done (a GPU's kernels run
 * asynchronously; on the CPU this returns at once): before another process
 * reads m's buffers, e.g. an all-reduce of the gradients. */
void dl_model_sync(dl_model *m);

/* Layer blocks shared by dl_model_forward and dl_model_forward_kv (same
 * kernels, same order, so cached and full forwards agree):
 * qkv:  h = rmsnorm(x)·attn_norm (rstd saved); q|k|v = ONE fused linear(h)
 *       (+bias) over [wq; wk; wv] (dl_k_linear_fwd_split); with qk_norm q and
 *       k are first written to qk->q_in / k_in and normalised per head into
 *       q / k (dl_model.c qk_norm_fwd); RoPE on q and k at positions pos (N).
 * mlp:  h = rmsnorm(res)·mlp_norm; gate|up = ONE fused linear(h) over
 *       [w_gate; w_up]; out = res + down(silu(gate) * up); out may alias
 *       res; tmp (N, D) scratch. */
/* qk: only when cfg.qk_norm (else NULL): the projections before the
 * per-head norm and its rstd, (N,Hq*E) (N,Hk*E) (N*Hq) (N*Hk); backward reads them. */
typedef struct { float *q_in, *k_in, *rstd_q, *rstd_k; } dl_qk_norm_acts;
void dl_model_qkv_fwd(dl_model *m, const dl_layer_params *p, float *h, float *rstd, float *q, float *k, float *v,
                      const dl_qk_norm_acts *qk, const float *x, const int32_t *pos, int N);
void dl_model_mlp_fwd(dl_model *m, const dl_layer_params *p, float *out, const float *res, float *h, float *rstd,
                      float *gate, float *up, float *act, float *tmp, int N);
/* For the cache forwards (dl_model_kv.c, dl_model_dcache.c), which run the
 * same blocks in m->dtype: dl_model_compute_begin makes the bf16 compute
 * copy current (if any) and returns the dtype of the matrix views m->x*. */
dl_dtype dl_model_compute_begin(dl_model *m);
/* The head's input at the M selected rows sel of x (N, D): xg = x[sel],
 * hs = the final norm of xg (rstd (M)); in m->dtype, as every forward. */
void dl_model_head_rows(dl_model *m, float *xg, float *hs, float *rstd, const float *x, const int32_t *sel, int M);
/* logits (M, V, f32) = the head of hs (M, D): in bf16 compute the GEMM
 * writes bf16 into scratch (M*V bf16), then one conversion (what the
 * samplers read is f32 whatever the compute). */
void dl_model_head_logits_f32(dl_model *m, float *logits, void *scratch, const float *hs, int M);

/* ---------------------------------------------------------------- KV cache
 * Incremental causal (autoregressive) inference, dl_model_kv.c: a cache of
 * every layer's keys / values after RoPE, for B rows of up to T_max
 * positions, plus the activations of up to n_max new tokens per row per
 * call.  The caller owns it (dl_model_kv_init / dl_model_kv_free); the
 * model is not changed.  One forward at a time per cache. */
typedef struct dl_kv dl_kv;
int dl_model_kv_init(dl_kv **kv, const dl_model *m, int B, int T_max, int n_max, char *err, size_t errlen);
void dl_model_kv_free(dl_kv *kv);   /* NULL is fine */
/* Append n_new tokens to each of the first B rows and return the logits of
 * each row's last new token.
 *   ids (B*n_new, DEVICE)   row b's new tokens: ids[b*n_new + j], j < n_valid[b]
 *   pos0 (B, HOST)          tokens already cached in row b (its next position)
 *   n_valid (B, HOST)       new tokens of row b, 0..n_new (the rest of its
 *                           n_new slots is padding: computed, never cached;
 *                           padding ids must still be < vocab_size);
 *                           NULL = n_new for every row
 *   logits (B*V, DEVICE)    out: row b's logits at position pos0[b]+n_valid[b]-1
 *                           (rows with n_valid 0: meaningless values)
 * Row b afterwards holds pos0[b] + n_valid[b] tokens.  Requires B <= the
 * cache's B, n_new <= n_max, 0 <= pos0[b], pos0[b] + n_valid[b] <= T_max.
 * Row b's token at position p gets RoPE position p; a row's cache is simply
 * overwritten from pos0[b] on (start a new prompt with pos0 = 0).  Logits
 * equal dl_model_forward DL_ATTN_CAUSAL over the whole prefix up to fp32
 * rounding (tests/unit/test_kv.c). */
/* Decode steps of at most `rows` new tokens per forward stream each weight
 * once (the CPU backend's GEMV path; 0: always the GEMM path, -1: only
 * ask).  Returns the setting in effect after the call; other backends ignore it and
 * return 0.  The AR sampler turns it on around its decode steps. */
int dl_model_decode_gemv(dl_model *m, int rows);
/* Inference on the CPU backend: 1 makes every f32 linear read a packed copy
 * of its weight, made once (dl_dev_cpu_pack: no per-call packing, rows of a
 * block agree exactly with the full forward's; one more copy of the
 * weights in memory); 0 turns it off and frees the copies; -1 only asks.
 * Returns the setting in effect (0 on other backends).  The diffusion
 * sampler turns it on; the weights must not change while it is on. */
int dl_model_pack_weights(dl_model *m, int on);
int dl_model_forward_kv(dl_model *m, dl_kv *kv, const uint32_t *ids, int B, int n_new, const int32_t *pos0,
                        const int32_t *n_valid, float *logits, char *err, size_t errlen);

/* ---------------------------------------------------------------- Diffusion cache
 * Fast-dLLM's prefix / dual caches for the diffusion sampler,
 * dl_model_dcache.c: every layer's keys / values (after RoPE) of R rows of
 * up to T_max positions, plus the activations of a window of up to B_max
 * rows x T_max positions and M_max selected positions.  Caller-owned
 * (init / free); the model is not changed; one forward at a time. */
typedef struct dl_dcache dl_dcache;
int dl_model_dcache_init(dl_dcache **c, const dl_model *m, int R, int T_max, int B_max, int M_max, char *err,
                         size_t errlen);
void dl_model_dcache_free(dl_dcache *c);   /* NULL is fine */
/* Bidirectional forward of a window of B rows x n slots (all HOST arrays):
 *   ids (B*n)       window tokens: row b's slot j is position q0[b] + j
 *   rows (B)        cache row of forward row b (< R)
 *   q0, n_valid (B) window start and valid slots (the rest is padding:
 *                   computed, never cached; ids still < vocab_size)
 *   n_keys (B)      every query of row b attends to cache positions
 *                   [0, n_keys[b]) (the row's canvas length)
 *   sel (M)         window slots b*n + j whose logits are wanted
 * The window's keys / values are written into the cache first (so a window
 * [0, L) is a refresh), then its queries attend to the cache.  *logits:
 * (M, V) device pointer, valid until the next call.  When the cache
 * positions outside the window hold keys / values computed from the same
 * canvas, the logits equal dl_model_forward DL_ATTN_BIDIR's up to fp32
 * rounding (tests/unit/test_dcache.c). */
int dl_model_forward_window(dl_model *m, dl_dcache *c, const uint32_t *ids, int B, int n, const int32_t *rows,
                            const int32_t *q0, const int32_t *n_valid, const int32_t *n_keys, const int32_t *sel,
                            int M, const float **logits, char *err, size_t errlen);
#endif
