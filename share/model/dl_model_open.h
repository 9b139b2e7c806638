/* dl_model_open.h — a program's model together with the device it runs on:
 * the program names the device ("cpu" | "cuda", threads), share/model opens
 * it, builds the model on it and closes it again in dl_model_close, so no
 * program holds or calls the device itself.
 *
 * Builders (each opens the device first; on failure the device is closed
 * again and m is left zeroed):
 *   dl_model_open_ckpt     a dllm checkpoint directory (dl_ckpt_load)
 *   dl_model_open_convert  an HF directory / llama2.c file (dl_convert_load)
 *   dl_model_open_config   a config with fresh weights (dl_model_init +
 *                          dl_model_init_weights(seed))
 *   dl_model_open_infer    the sample / score opening: checkpoint (a bf16
 *                          one keeps bf16 matrices: dl_ckpt_load_infer), its
 *                          tokenizer.json when present, the causal / mask
 *                          decisions and their checks
 * A model from these builders is released ONLY with dl_model_close (which
 * frees it and closes its device); dl_model_free leaves the device open.
 *
 * threads: CPU threads (0 = OpenMP default); for "cuda" the GPU ordinal.
 * Errors: an unknown device name is -DL_EXIT_USAGE, a device that cannot
 * be opened -DL_EXIT_DEVICE, both with "device NAME: ..." in err.
 * Does not: parse options, print.
 */
#ifndef DL_MODEL_OPEN_H
#define DL_MODEL_OPEN_H
#include <stddef.h>
#include <stdint.h>
#include "dl_model.h"
#include "dl_tok.h"

int dl_model_open_ckpt(dl_model *m, const char *dir, const char *device, int threads, char *err, size_t errlen);
int dl_model_open_convert(dl_model *m, const char *src, const char *tokenizer_bin, const char *scratch_dir,
                          char *tokenizer_json_out, size_t tj_len, const char *device, int threads, char *err,
                          size_t errlen);
int dl_model_open_config(dl_model *m, const dl_config *c, uint64_t seed, const char *device, int threads, char *err,
                         size_t errlen);
/* Frees the model and closes its device (safe on a zeroed struct). */
void dl_model_close(dl_model *m);

/* The model's device in words ("cpu (2 threads, OpenBLAS 0.3.21)") and the
 * threads its CPU ops use (1 on a GPU). */
const char *dl_model_device_describe(const dl_model *m);
int dl_model_threads(const dl_model *m);

/* ---- the sample / score opening */
typedef struct {
    const char *dir;          /* checkpoint directory */
    const char *device; int threads;
    int force_causal;         /* the program's --causal */
    int64_t mask_id;          /* >= 0: overrides the checkpoint's mask_token_id; -1: the checkpoint's */
    const char *what;         /* "sampling" | "scoring": for messages */
    const char *adapter;      /* a PEFT LoRA adapter directory folded into the weights at load
                                 (dl_lora_fold: W += s B A, rounded once to the weights' dtype), or NULL */
    int bf16;                 /* 1: compute in bf16 (dl_model_set_compute) on fp32 masters loaded from any
                                 checkpoint dtype (the KV / window caches then hold bf16 too) */
    int profile;              /* 1: the blocking per-op profile from the start (dl_model_profile) */
} dl_infer_opts;
typedef struct {
    dl_tok *tok;              /* DIR/tokenizer.json, or NULL when the checkpoint has none (caller frees) */
    char tok_path[4096];      /* its path (set even when absent) */
    int causal;               /* force_causal, or the checkpoint's objective is "causal" */
    uint32_t mask_id;         /* the mask id (UINT32_MAX: none, only when causal) */
} dl_infer_info;
/* Open device + checkpoint + tokenizer.  The mask id: o->mask_id, else
 * config.json's mask_token_id, else, for dLLM's a2d-* checkpoints only
 * (which name it only there), the tokenizer's mask token (then
 * m->cfg.mask_token_id is set to it); other families need it in config.json.  A diffusion model (not causal) without
 * a mask id, or a mask id >= the vocab, is -DL_EXIT_DATA. */
int dl_model_open_infer(dl_model *m, dl_infer_info *info, const dl_infer_opts *o, char *err, size_t errlen);

#endif
