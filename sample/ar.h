/* ar.h — dllm-sample's autoregressive path (--causal, or a checkpoint whose
 * objective is "causal"): left-to-right generation of up to o->gen_length
 * tokens per row with a KV cache (dl_model_forward_kv).
 *
 * Same row / option / noise conventions as the diffusion sampler
 * (sample.h): rows[i].ids[0..n_prompt) is the prompt (at least one token:
 * an AR model needs something to condition on — dllm-sample --bos puts the
 * tokenizer's BOS first), generated tokens are appended after it.  Rows of
 * one call have their own prompt lengths and positions (one batched prefill
 * with padding, then one token per running row per forward).
 *
 * Each token: logits with o->suppress ids and the mask token set to -inf;
 * temperature 0: argmax (lowest id on ties); else top-k / top-p filters on
 * logits / T, then INVERSE-CDF sampling over the kept ids with ONE uniform
 * per row per generated token from rows[i].noise (details and the exact
 * rule in ar.c).  Noise order: per forward, running rows in row order.
 *
 * Stops (unless o->keep_eos, which always generates gen_length tokens):
 * EOS (o->eos_id) ends the row and is kept; BOS (the model config's
 * bos_token_id, when it differs from EOS) ends the row and is NOT kept —
 * llama2.c's rule: a model trained on BOS-separated documents starts the
 * next one.  rows[i].len, .nfe (forwards that computed the row), .steps
 * (tokens sampled) are set; o->trace gets one line per kept token (block 0,
 * confidence = p(token) under the untempered, unfiltered softmax of the
 * suppressed logits); o->show draws row 0 (not-yet-generated positions as
 * mask placeholders).
 */
#ifndef DL_SAMPLE_AR_H
#define DL_SAMPLE_AR_H
#include "sample.h"

/* Returns 0 or -DL_EXIT_* with err set (empty prompt, prompt id >= vocab or
 * a mask token in a prompt: data errors). */
int ar_sample_batch(dl_model *m, const smp_opts *o, smp_row *rows, int n, char *err, size_t errlen);

#endif
