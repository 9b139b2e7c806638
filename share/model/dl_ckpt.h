/* dl_ckpt.h — checkpoints (a directory in Hugging Face layout) and the
 * conversion of autoregressive models into diffusion-ready checkpoints.
 *
 *   DIR/config.json            dl_config (HF names + dllm fields)
 *   DIR/model.safetensors      HF tensor names, F32, BF16 or F16
 *   DIR/tokenizer.json         the tokenizer (with its mask token)
 *   DIR/optimizer.safetensors  AdamW m and v ("m.<name>", "v.<name>"),
 *                              fp32 masters "master.<name>" when the
 *                              weights are stored BF16 / F16           [resume]
 *   DIR/trainer_state.json     dl_train_state                           [resume]
 *
 * Saves are atomic and durable (dl_ckpt.c has the steps): stale
 * DIR.tmp.<pid> directories of dead processes are removed; everything is
 * written into DIR.tmp.<pid>, each file fsynced, then that directory
 * fsynced; it and an existing DIR swap names in one step (renameat2
 * RENAME_EXCHANGE; where a filesystem refuses it: old renamed aside to
 * DIR.old.<pid>, new renamed into place); the parent directory is fsynced
 * and the old checkpoint removed.  A failure or a kill leaves either the
 * old or the new complete checkpoint under DIR, never a mix.
 * Loading checks config against tensors (every expected tensor present with
 * its shape, no unknown ones except rotary caches) and refuses mismatches.
 */
#ifndef DL_CKPT_H
#define DL_CKPT_H
#include <stdint.h>
#include "dl_model.h"
#include "dl_safetensors.h"

/* An existing DIR is replaced only when it is empty or holds nothing but
 * checkpoint files (the names above, tokenizer_config.json,
 * special_tokens_map.json, generation_config.json, tokenizer.model,
 * model.safetensors.index.json, model-*.safetensors, README.md): anything
 * else is refused, so `-o .` can never wipe a working directory. */

/* What resuming needs besides weights and optimizer moments. */
typedef struct {
    int64_t step;              /* optimizer steps done */
    uint64_t seed;
    uint64_t data_epoch;       /* passes over the input done */
    uint64_t data_record;      /* records consumed in the current pass */
    double tokens_seen;
    double lr_last;
    char args_json[4096];      /* the training options that must match on resume (JSON object text) */
} dl_train_state;

/* Load DIR (or a config+safetensors pair) into a freshly initialised model on dev. */
int dl_ckpt_load(dl_model *m, const char *dir, dl_dev *dev, char *err, size_t errlen);
/* The same for inference only: when every matrix of the checkpoint is BF16
 * (and dev computes with bf16 weights) the model keeps them bf16 (wdtype
 * DL_BF16: no backward, no save, no fp32 copy of the matrices); otherwise
 * exactly dl_ckpt_load. */
int dl_ckpt_load_infer(dl_model *m, const char *dir, dl_dev *dev, char *err, size_t errlen);
/* Load the optimizer moments and trainer state of DIR into m (alloc'ed) / st. */
int dl_ckpt_load_train_state(dl_model *m, dl_train_state *st, const char *dir, char *err, size_t errlen);
/* Save: tokenizer_json = path of the tokenizer.json to copy in (NULL: none);
 * st != NULL also writes optimizer.safetensors + trainer_state.json;
 * wdtype: how model.safetensors stores the weights, DL_ST_F32, DL_ST_BF16
 * or DL_ST_F16 (round to nearest even; config.json's torch_dtype says
 * which).  Optimizer state is always F32, and below F32 it also holds the
 * fp32 weights as "master.<name>" (dl_ckpt_load_train_state puts them back,
 * so --resume is bit-exact).  m must have fp32 weights (wdtype DL_F32). */
int dl_ckpt_save(const dl_model *m, const char *dir, const char *tokenizer_json, const dl_train_state *st,
                 dl_st_dtype wdtype, char *err, size_t errlen);

/* The atomic directory save of dl_ckpt_save with another writer: write
 * fills the fresh directory tmp (each file through dl_out / the safetensors
 * writer, so fsynced); the same replace rules and steps apply (LoRA adapter
 * directories use it, dl_lora.h). */
typedef int (*dl_ckpt_writer)(void *ctx, const char *tmp, char *err, size_t errlen);
int dl_ckpt_save_with(const char *dir, dl_ckpt_writer write, void *ctx, char *err, size_t errlen);

/* Conversion from an autoregressive model: SRC is an HF checkpoint directory
 * (config.json + model.safetensors or model.safetensors.index.json shards;
 * every family of dl_config.c: llama / qwen2 / mistral / qwen3 / llada /
 * Dream / a2d-*; F32 / F16 / BF16) or a llama2.c .bin (then
 * tokenizer_bin names its tokenizer .bin, or "tok<vocab>.bin" (tok512.bin)
 * or "tokenizer.bin" beside it is used).  The result is a model in memory plus the path of a
 * tokenizer.json written into scratch_dir (llama2.c tokenizers are converted
 * to an equivalent tokenizer.json).  A mask token is appended when the
 * vocabulary has none (see dl_convert.c for how its rows are initialised);
 * objective becomes "diffusion". */
int dl_convert_load(dl_model *m, const char *src, const char *tokenizer_bin, const char *scratch_dir,
                    char *tokenizer_json_out, size_t tj_len, dl_dev *dev, char *err, size_t errlen);

/* ---- weights of one model in one or more safetensors files ----
 * path: a directory holding model.safetensors, or model.safetensors.index.json
 * (HF sharded layout: {"weight_map": {name: shard file}}, every shard opened
 * once, every mapped tensor checked to be in its shard, a name in two shards
 * refused), or a single .safetensors file. */
typedef struct {
    dl_st_file *f; int n;
    char *where;              /* the path shown in messages */
} dl_ckpt_weights;
int dl_ckpt_weights_open(dl_ckpt_weights *w, const char *path, char *err, size_t errlen);
/* The tensor called name (exactly), and the file that holds it; NULL if absent. */
const dl_st_tensor *dl_ckpt_weights_find(const dl_ckpt_weights *w, const char *name, const dl_st_file **file);
void dl_ckpt_weights_close(dl_ckpt_weights *w);   /* safe on a zeroed struct */
/* The dtype the weights of src (a checkpoint / HF directory, a .safetensors
 * file, or a llama2.c .bin) are stored in: BF16 or F16 when every matrix
 * is, else F32 (dl_ckpt_dtype.c).  Headers only. */
int dl_ckpt_source_dtype(const char *src, dl_st_dtype *dt, char *err, size_t errlen);

/* ---- llama2.c legacy exports (dl_llama2c.c) ----
 * Header: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
 * vocab_size (< 0: an untied classifier follows), seq_len), then float32
 * weights; the file size must match exactly.  cfg comes out as an HF llama
 * config (rope_layout HALF: wq/wk rows are permuted per head, see
 * dl_llama2c.c; theta 10000, eps 1e-5, bos 1, eos 2, causal objective). */
typedef struct {
    dl_config cfg;
    char *path;
    uint8_t *map; size_t size;
} dl_llama2c;
int dl_llama2c_open(dl_llama2c *l, const char *path, char *err, size_t errlen);
/* The tensor of HF name `name` (n floats, as the cfg shapes it) into dst. */
int dl_llama2c_tensor(const dl_llama2c *l, const char *name, float *dst, size_t n, char *err, size_t errlen);
void dl_llama2c_close(dl_llama2c *l);       /* safe on a zeroed struct */
/* A llama2.c tokenizer .bin of n_vocab entries written as an equivalent HF
 * tokenizer.json (SentencePiece-style BPE, byte fallback) at out_path. */
int dl_llama2c_tokenizer_json(const char *tok_bin, int n_vocab, const char *out_path, char *err, size_t errlen);

/* ---- model families (dl_family.c) ----
 * The name that the model's tensor `name` (HF LLaMA / Qwen names, as
 * dl_model.c has them) has in a checkpoint of c->family: LLaDA's
 * model.transformer.* names, every other family's are the HF ones.
 * -DL_EXIT_DATA when the family has no such tensor. */
int dl_family_tensor_name(const dl_config *c, const char *name, char *out, size_t n, char *err, size_t errlen);
/* 1 when src_name is the family name of one of m's tensors. */
int dl_family_has_tensor(const dl_model *m, const char *src_name);

/* Trainer state JSON alone (dl_ckpt_save / dl_ckpt_load_train_state use them). */
int dl_train_state_save(const dl_train_state *st, const char *path, char *err, size_t errlen);
int dl_train_state_load(dl_train_state *st, const char *path, char *err, size_t errlen);
/* The same from the file's bytes text[0..len); `name` stands for it in messages. */
int dl_train_state_parse(dl_train_state *st, const char *text, size_t len, const char *name, char *err, size_t errlen);

#endif
