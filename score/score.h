/* score/score.h — the scoring core of dllm-score, shared by its files:
 *   estimate.c  sc_open / sc_close / sc_elbo / sc_cond_loglik / sc_greedy_match
 *   main.c      options, streams of tokens / rows -> scores stream + summary
 *   task.c      --task FILE.jsonl multiple-choice / LAMBADA (task_run)
 *
 * Estimators (docs/ALGORITHMS.md §4):
 *  - sc_elbo, diffusion: Monte-Carlo ELBO over t ~ U[eps, 1), each position
 *    masked independently with probability t; one sample's term is
 *    sum_{masked} ce_i / t (0 when nothing got masked); nll = mean of the
 *    terms (so it is L x the mean per-token term), an upper bound on -log p
 *    in expectation; se = sd / sqrt(mc) of the terms.  Draws come from
 *    dl_rng (seed, index, copy = sample, DL_RNG_SCORE).
 *  - sc_cond_loglik, diffusion: LLaDA's stratified estimator of
 *    log p(resp | prompt) (get_log_likelihood): an estimate of a lower
 *    bound; se = sd / sqrt(mc) of the per-row terms.
 *  - causal (sc_opts.causal or a checkpoint whose objective is "causal"):
 *    exact chain rule; se = 0.
 * All numbers are in nats.  Conventions: functions return 0 or a negative
 * DL_EXIT_* with a one-line message in err (dl_base.h); nothing printed.
 * One sc_ctx is not thread-safe (it owns the model's activation buffers).
 */
#ifndef DLLM_SCORE_H
#define DLLM_SCORE_H
#include <stddef.h>
#include <stdint.h>
#include "dl_base.h"
#include "dl_model.h"
#include "dl_tok.h"
#include "dl_io.h"

#define SC_EPS_DEFAULT 1e-3     /* ELBO: t = eps + (1 - eps) u, u ~ U[0, 1) */
#define SC_MC_DEFAULT 128
#define SC_MEM_DEFAULT ((size_t)2 << 30)   /* 2 GiB */

typedef struct {
    int mc;              /* Monte-Carlo samples per record / per choice (>= 1) */
    int batch;           /* ELBO: rows per forward; conditional: the stratification group
                            (LLaDA's batch_size) and rows per forward; 0 = mc.  Forwards
                            are split further when their activations would exceed mem_budget */
    uint64_t seed;       /* keys every draw with the record index (DL_RNG_SCORE) */
    double cfg;          /* classifier-free guidance weight w for sc_cond_loglik; 0 = off */
    int causal;          /* 1: exact chain rule even when the checkpoint says diffusion */
    double eps;          /* ELBO t lower bound (SC_EPS_DEFAULT when 0) */
    const char *device;  /* "cpu" (default) or "cuda" */
    int threads;         /* CPU threads, 0 = OpenMP default (CUDA: GPU ordinal) */
    int shift_logits;    /* 1: force shift_logits (target i read at hidden i-1); 0 = the checkpoint's */
    int64_t mask_id;     /* -1 = the checkpoint's mask_token_id */
    int need_tok;        /* 1: load the checkpoint's tokenizer (tasks need it) */
    size_t mem_budget;   /* bytes of activations one forward may use; 0 = SC_MEM_DEFAULT */
    const char *adapter; /* PEFT LoRA adapter dir folded into the weights at load, or NULL */
    int bf16;            /* --precision bf16 (dl_infer_opts.bf16) */
} sc_opts;
void sc_opts_default(sc_opts *o);   /* mc 128, batch 0, seed 0, eps 1e-3, cpu, mask_id -1 */

typedef struct sc_ctx sc_ctx;   /* model, tokenizer, options, buffers allocated once */

/* Load the checkpoint DIR (config.json, model.safetensors, tokenizer.json).
 * Diffusion scoring without a mask token (none in the checkpoint and no
 * mask_id override) is -DL_EXIT_DATA; mc < 1 is -DL_EXIT_USAGE. */
int sc_open(sc_ctx **c, const char *ckpt, const sc_opts *o, char *err, size_t errlen);
void sc_close(sc_ctx *c);      /* NULL is fine */

/* log p(resp | prompt) estimate in nats (<= 0 for causal exact; an
 * ELBO-based lower bound estimate for diffusion), its standard error (0 for
 * causal); index keys the RNG.  np >= 0, nr >= 1, np + nr <= max_seq_len. */
int sc_cond_loglik(sc_ctx *c, const uint32_t *prompt, int np, const uint32_t *resp, int nr,
                   uint64_t index, double *ll, double *se, char *err, size_t errlen);
/* greedy: *match = 1 when the model's greedy prediction of resp given prompt
 * equals resp.  Causal: argmax at every position given the true prefix.
 * Diffusion: one forward with ALL resp positions masked; match when the
 * argmax at each equals its target (LLaDA-style single-step check). */
int sc_greedy_match(sc_ctx *c, const uint32_t *prompt, int np, const uint32_t *resp, int nr,
                    int *match, char *err, size_t errlen);
/* Unconditional ELBO of a sequence (diffusion, Monte-Carlo) or exact NLL
 * (causal: sum over tokens 1..n-1 of -log p(x_i | x_<i); the first token is
 * the context and is not scored, so *n_tokens = n - 1).  Diffusion scores
 * all n tokens (*n_tokens = n; n - 1 with shift_logits, whose position 0
 * has no hidden state before it and is context). */
int sc_elbo(sc_ctx *c, const uint32_t *ids, int n, uint64_t index, double *nll, double *se,
            int *n_tokens, char *err, size_t errlen);

/* A record's Monte-Carlo key from its content (content_key.c): a 64-bit hash
 * of ids[0..n), passed as `index` above so that draws do not depend on the
 * record's position.  Callers hash the prompt (conditional) or all scored
 * ids (ELBO). */
uint64_t sc_content_key(const uint32_t *ids, size_t n);

/* Accessors (for task.c / main.c). */
dl_tok *sc_tok(sc_ctx *c);                  /* NULL unless opened with need_tok */
const dl_config *sc_config(const sc_ctx *c);
int sc_is_causal(const sc_ctx *c);          /* 1 when scoring uses the chain rule */
const sc_opts *sc_options(const sc_ctx *c);
int sc_max_len(const sc_ctx *c);            /* longest prompt + resp one call accepts */

/* Per-token log-probabilities of the causal chain rule: lp[i-1] =
 * log p(ids[i] | ids[<i]) for i = 1..n-1 (tests, diagnostics). */
int sc_causal_logprobs(sc_ctx *c, const uint32_t *ids, int n, double *lp, char *err, size_t errlen);

/* ------------------------------------------------------------ --task (task.c) */
typedef struct {
    const char *delimiter;   /* between query/context and continuation; NULL = the layout's default */
    long long limit;         /* score only the first N items; 0 = all */
    const char *summary;     /* --summary FILE: JSON results (NULL = none) */
    const char *output;      /* -o: per-item scores stream (NULL = none) */
    const dl_out_opts *out;  /* output options for `output` */
    int progress;            /* show a progress line */
    /* (added for task.c; zero = the default.  `delimiter` is passed as typed:
     * task.c expands the escapes \n \t \r \\ in it) */
    const char *format;      /* --task-format auto|mc|schema|lambada; NULL or "auto" = detect per line */
    int bos;                 /* --bos: prepend the tokenizer's BOS id to every context */
    int no_strip;            /* --no-strip: keep the fields' surrounding whitespace
                                (default: strip, as llm-foundry's strip_dataset) */
    int key_by_index;        /* --rng-key index: draws keyed by the item's position in the
                                file (the keying before issue 10); 0 = keyed by the
                                context's ids (sc_content_key), as the lm-eval bridge */
} task_opts;
/* Score the JSONL task file at path with c; print the per-task result on
 * stderr (dl_info).  Malformed lines are -DL_EXIT_DATA naming path:line. */
int task_run(sc_ctx *c, const char *path, const task_opts *o, char *err, size_t errlen);

#endif
