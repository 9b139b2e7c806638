/* dl_lora.h — LoRA adapters (Hu et al. 2021) on the linears of dl_model,
 * with PEFT's LoraLayer semantics and file format (peft 0.21, task_type
 * CAUSAL_LM, no dropout, no bias, no DoRA / rsLoRA):
 *
 *   y = W x + s * B (A x),   s = alpha / r
 *   A (r, in)  init kaiming_uniform(a = sqrt(5)) as PEFT / nn.Linear:
 *              U(-1/sqrt(in), 1/sqrt(in)), drawn from dl_rng (seed, purpose
 *              DL_RNG_INIT, index = FNV-1a-64 of the PEFT tensor name)
 *   B (out, r) zeros (so a fresh adapter leaves the model unchanged)
 *
 * Targets: q k v o gate up down = HF q_proj k_proj v_proj o_proj gate_proj
 * up_proj down_proj of every layer.  Default alpha: 8 (PEFT's LoraConfig
 * default, whatever r).
 *
 * Memory: adapter parameters, gradients, AdamW m and v are each ONE device
 * allocation of n_params floats (each A and B 64-float aligned; every
 * element is a matrix, so all of it gets weight decay as in HF Trainer).
 * Activations: one allocation per dl_lora_reserve: per (layer, target) the
 * scaled s*(A x) (N, r) the backward needs (INFER: one set shared by all
 * layers), plus scratch.  The base model gets NO gradient buffers: its
 * backward runs with dw = NULL (kernels skip frozen weights).
 *
 * Attaching (dl_lora_attach) hands the adapter to the model (m->lora):
 * dl_model_forward / dl_model_backward then add the low-rank path at the
 * marked hooks in dl_model.c, dl_optim.h trains the adapter block instead
 * of the model's, dl_model_free frees it.  dl_model_forward_kv refuses a
 * model with an adapter attached: inference folds adapters into the
 * weights instead (dl_lora_fold: W += s * B A, float64 sums, rounded once
 * into the weight's dtype; exact up to that rounding).
 *
 * Files (an adapter directory, as peft's save_pretrained writes it):
 *   adapter_config.json        peft_type LORA, r, lora_alpha, target_modules,
 *                              base_model_name_or_path, task_type CAUSAL_LM, ...
 *   adapter_model.safetensors  F32 "base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight" ...
 *   optimizer.safetensors      "m.<name>", "v.<name>" of the adapter    [resume]
 *   trainer_state.json         dl_train_state                           [resume]
 *
 * Does not: dropout (refused by the CLI), biases, embedding / lm_head
 * targets, several adapters at once, bf16 adapters.
 */
#ifndef DL_LORA_H
#define DL_LORA_H
#include <stddef.h>
#include <stdint.h>
#include "dl_ckpt.h"
#include "dl_model.h"

/* targets: DL_LORA_Q .. DL_LORA_DOWN (dl_model.h) */

typedef struct {
    int r;                  /* rank > 0 */
    double alpha;           /* lora_alpha; scale = alpha / r */
    unsigned targets;       /* bit t = 1 << DL_LORA_Q ... */
} dl_lora_cfg;

typedef struct dl_lora dl_lora;

/* "q,k,v,o,gate,up,down" (or HF names q_proj ...) -> bit mask; an unknown
 * name is -DL_EXIT_USAGE naming the known ones. */
int dl_lora_parse_targets(const char *s, unsigned *mask, char *err, size_t errlen);
/* Short name ("q") and HF module name ("q_proj") of target t. */
const char *dl_lora_target_name(int t);
const char *dl_lora_module_name(int t);

/* New adapter for m's shapes on m's device: A from seed, B zero. */
int dl_lora_new(dl_lora **lo, const dl_model *m, const dl_lora_cfg *c, uint64_t seed, char *err, size_t errlen);
/* Read adapter_config.json + adapter_model.safetensors of dir; shapes are
 * checked against m (a mismatch is -DL_EXIT_DATA naming the tensor).
 * base_out (may be NULL): base_model_name_or_path. */
int dl_lora_load(dl_lora **lo, const dl_model *m, const char *dir, char *base_out, size_t base_len, char *err,
                 size_t errlen);
/* Only dir/adapter_config.json: c and base_model_name_or_path (base may be NULL). */
int dl_lora_read_config(const char *dir, dl_lora_cfg *c, char *base, size_t base_len, char *err, size_t errlen);
void dl_lora_free(dl_lora *lo);   /* NULL is fine */
const dl_lora_cfg *dl_lora_config(const dl_lora *lo);
size_t dl_lora_n_params(const dl_lora *lo);

/* Hand lo to m (m->lora; m frees it) with gradient and optimizer buffers
 * for the adapter; m must have fp32 weights. */
int dl_lora_attach(dl_model *m, dl_lora *lo, char *err, size_t errlen);
/* W += s * B A for every adapted linear of m (m without an attached adapter). */
int dl_lora_fold(dl_model *m, const dl_lora *lo, char *err, size_t errlen);
/* dl_lora_load + dl_lora_fold + free: what sample / score --adapter do. */
int dl_lora_fold_dir(dl_model *m, const char *dir, char *err, size_t errlen);

/* Save dir atomically (dl_ckpt_save_with): adapter files, and with st the
 * optimizer moments + trainer state.  base: base_model_name_or_path. */
int dl_lora_save(const dl_lora *lo, const dl_config *mc, const char *dir, const char *base, const dl_train_state *st,
                 char *err, size_t errlen);
/* Optimizer moments of dir/optimizer.safetensors into the attached adapter. */
int dl_lora_load_moments(dl_lora *lo, const char *dir, char *err, size_t errlen);

/* ---- the optimizer's view (dl_optim.c) */
typedef struct { float *params, *grads, *adam_m, *adam_v; size_t n; } dl_lora_block;
dl_lora_block dl_lora_block_of(dl_lora *lo);

/* ---- hooks called by dl_model.c through m->lora_ops (all device pointers; F32) ----
 * reserve: activations for N = B*T rows (train: per layer, else shared).
 * fwd: y (N, out) += s * B (A x), x (N, in) the linear's input.
 * bwd: dA, dB += ...; dx (N, in) += s * (dy B) A, dy (N, out) the linear's
 *      output gradient.  A target the adapter lacks: nothing. */
int dl_lora_reserve(dl_lora *lo, int N, int train, char *err, size_t errlen);
void dl_lora_fwd(dl_lora *lo, int layer, int t, void *y, const void *x, int N);
void dl_lora_bwd(dl_lora *lo, int layer, int t, void *dx, const void *dy, const void *x, int N);
void dl_lora_zero_grads(dl_lora *lo);

#endif
