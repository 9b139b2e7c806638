/* train/train.h — dllm-train's internal pieces, used by the train/ sources only
 * (programs meet only through streams: nothing here is a library API).
 *
 *   main.c   options table, open, loop, close
 *   data.c   batches of rows from masked (or rows) shards, epochs, checks
 *   sched.c  learning-rate schedule
 *   step.c   one optimizer step (micro-batches, loss, clip, AdamW) and eval
 *   ckpt.c   checkpoints, resume checks, signals, metrics, progress line
 *   dp.c     data parallelism: rows of each rank, agreement, ZeRO-1 shares
 *   gsync.c  the gradient all-reduce in buckets overlapped with the backward
 *
 * Shapes: B rows per optimizer step (--batch), b rows per forward
 * (--micro-batch), T = seq_len.  Host arrays unless named d_*.
 */
#ifndef TRAIN_TRAIN_H
#define TRAIN_TRAIN_H
#include <stdint.h>
#include <stdio.h>
#include "dl_batch.h"
#include "dl_ckpt.h"
#include "dl_comm.h"
#include "dl_loss.h"
#include "dl_lora.h"
#include "dl_mask.h"
#include "dl_model.h"
#include "dl_model_open.h"
#include "dl_optim.h"
#include "dl_stream.h"

/* ------------------------------------------------------------ data.c */
/* A batch of rows as the trainer sees them. */
typedef struct {
    int cap, n;            /* rows allocated / filled */
    int T;
    uint32_t *x0, *xt;     /* (cap*T) clean ids, noisy ids (= x0 for causal / rows) */
    float *t;              /* (cap*T) mask ratio of each position (its block's with --block) */
    int32_t *len;          /* (cap) attention length (random-length cut), else T */
    int32_t *n_prompt;     /* (cap) */
} train_batch;
int train_batch_init(train_batch *b, int cap, int T);
void train_batch_free(train_batch *b);

typedef struct {
    int causal;            /* rows or masked accepted; x0 used */
    int otf;               /* --mask-on-the-fly: `rows` masked here with mcfg */
    dl_mask_cfg mcfg;      /* seed, eps, ... (mask_id filled by train_data_check) */
    int64_t vocab;         /* model vocab: ids must be below */
    const char *what;      /* "input" / "--valid" for messages */
} train_data_cfg;

typedef struct {
    train_data_cfg c;
    dl_reader *r;
    char **paths; int n_paths;   /* globs expanded (owned) */
    int is_stdin;
    dl_kind kind;
    uint32_t L, block;
    uint64_t index_base;
    uint64_t epoch;        /* completed passes over the input */
    uint64_t record;       /* records consumed in the current pass */
    uint64_t pass_records; /* records of one full pass (0 until one ended) */
    dl_u32buf a, b;        /* scratch ids */
    float *tb;             /* (n_blocks) scratch t per block */
} train_data;

/* Open inputs (n == 0 or "-": stdin; arguments with * ? [ are globbed when no
 * such file exists) and read the first header.  Missing file: -DL_EXIT_IO. */
int train_data_open(train_data *d, char *const *args, int n, const train_data_cfg *c, char *err, size_t errlen);
/* Header against the model: kind, seq_len (vs want_L when > 0 and the model's
 * max), tokenizer vocab / sha256 / mask id.  tok_sha: the model's tokenizer
 * sha256 or NULL. */
int train_data_check(train_data *d, const dl_config *mc, const char *tok_sha, long long want_L,
                     char *err, size_t errlen);
/* Fill row `i` of bt.  1 = filled, 0 = end of input (stdin; or cycle == 0),
 * <0 error (message names file and record).  cycle: rewind files at the end
 * (training) or stop (eval). */
int train_data_next(train_data *d, train_batch *bt, int i, int cycle, char *err, size_t errlen);
/* Consume the next record without decoding it (another rank's row), with
 * train_data_next(cycle = 1)'s end-of-input rules.  1, 0 (end), <0. */
int train_data_skip(train_data *d, char *err, size_t errlen);
/* Skip to (epoch, record) — resume.  stdin: nothing skipped (warned). */
int train_data_seek(train_data *d, uint64_t epoch, uint64_t record, char *err, size_t errlen);
int train_data_rewind(train_data *d, char *err, size_t errlen);
void train_data_close(train_data *d);

/* ------------------------------------------------------------ sched.c */
typedef enum { SCHED_COSINE = 0, SCHED_LINEAR, SCHED_CONSTANT } train_sched_kind;
int train_sched_parse(const char *s, train_sched_kind *k);
const char *train_sched_name(train_sched_kind k);
/* LR of optimizer step `step` (1-based) of `total`: linear warmup over
 * `warmup` steps to lr, then decay to min_lr at step `total`. */
double train_sched_lr(train_sched_kind k, int64_t step, int64_t total, int64_t warmup, double lr, double min_lr);

/* ------------------------------------------------------------ gsync.c */
/* The buckets of one step's gradient all-reduce (gsync.c).  n_b == 0: no
 * plan (one process, bucket 0, LoRA, a model smaller than one bucket):
 * the caller all-reduces the trained block at once after the backward. */
typedef struct {
    dl_comm *comm;
    dl_model *m;
    size_t (*b)[2];        /* (n_b) [lo, hi) of the parameter block, in start order */
    int *ready;            /* (n_b) the layer whose backward completes bucket i; -1: after the backward */
    int n_b, next;         /* planned; started so far this step */
    int rc; char err[256]; /* first failure inside the backward hook */
    uint64_t n_started, n_early;   /* buckets started in all steps; of them inside the backward */
} train_gsync;
/* bucket: floats per bucket (0: none). */
int train_gsync_plan(train_gsync *g, dl_comm *comm, dl_model *m, size_t bucket, char *err, size_t errlen);
void train_gsync_free(train_gsync *g);
/* on = 1: the model's next backward starts buckets as its layers finish
 * (set before the step's LAST micro-batch only: earlier ones are partial). */
void train_gsync_arm(train_gsync *g, int on);
/* After the micro-batches, before any other collective: disarm, start
 * the buckets not started yet.  Then train_gsync_wait before reading the
 * gradients. */
int train_gsync_start_rest(train_gsync *g, char *err, size_t errlen);
int train_gsync_wait(train_gsync *g, char *err, size_t errlen);

/* ------------------------------------------------------------ step.c */
typedef struct {
    dl_model *m;
    int B, b, T;
    int causal, shift;
    int bd3;               /* > 0: BD3LM block diffusion, block size: rows run as [x_t ; x_0] (2T) */
    dl_loss_cfg lc;
    uint32_t mask_id;
    dl_optim_cfg opt;      /* AdamW and clipping */
    dl_comm *comm;         /* gradients summed over processes before the step; NULL = one process */
    train_gsync gs;        /* their buckets (train_step_init plans none; train_gsync_plan) */
    const size_t *zero_off; /* (ranks+1) ZeRO-1 shares of the parameter block, or NULL: AdamW on all */
    float *zero_m, *zero_v; /* this rank's moments when they are held apart (train_dp), else NULL */
    /* host scratch, (b*T): loss row and t of each position */
    int32_t *row; float *tpos;
    dl_batch bt;           /* ids, lens, sel, targets, ce, dce: host and device */
} train_step;

typedef struct {
    double loss, elbo, grad_norm, clip_scale;
    uint64_t n_loss;       /* loss positions of the step */
} train_step_out;

/* bd3: block size of block diffusion (> 0), else 0 */
int train_step_init(train_step *s, dl_model *m, int B, int b, int T, int bd3, char *err, size_t errlen);
void train_step_free(train_step *s);
/* Forward/backward over bt (B rows) in micro-batches, clip, AdamW at `lr`
 * (step = optimizer step, 1-based).  NaN/inf loss or gradient: returns
 * -DL_EXIT_DATA with "loss is nan" before touching the weights. */
int train_step_run(train_step *s, const train_batch *bt, int64_t step, double lr, train_step_out *o,
                   char *err, size_t errlen);
/* Held-out evaluation over all of `v` (max_rows > 0: at most that many rows).
 * Diffusion: ELBO Σ ce/t ÷ (rows·L) nats/token; causal: exact NLL per target. */
typedef struct { double elbo; uint64_t rows, targets; } train_eval_out;
int train_eval(train_step *s, train_data *v, train_batch *bt, long long max_rows, train_eval_out *o,
               char *err, size_t errlen);

/* ------------------------------------------------------------ dp.c */
typedef struct {
    dl_comm *comm;
    int rank, size;
    int zero;              /* --zero 1 */
    size_t *off;           /* (size+1) ZeRO-1 shares of the parameter block, or NULL */
    /* ZeRO-1 over P > 1 ranks: this rank's AdamW moments, (off[rank+1] -
     * off[rank]) each, on m's device; NULL otherwise (then m->adam_m / adam_v) */
    float *adam_m, *adam_v;
    const dl_model *m;     /* the model whose device holds them (set with them) */
    size_t opt_bytes;      /* bytes of AdamW state this rank holds */
} train_dp;
/* kind: --comm (auto|single|mpi|nccl); timeout_s: --comm-timeout. */
int train_dp_open(train_dp *dp, const char *kind, int on_cuda, double timeout_s, int zero, char *err, size_t errlen);
void train_dp_close(train_dp *dp);
/* ZeRO-1: split n_params into dp->off (nothing without --zero). */
int train_dp_shares(train_dp *dp, size_t n_params, char *err, size_t errlen);
/* Whether the optimizer state is split over the ranks (--zero 1, P > 1). */
int train_dp_sharded(const train_dp *dp);
/* After the shares and the model's optimizer state (a resume: the whole
 * state loaded; a fresh start: m->adam_m NULL under sharding): keep this
 * rank's share in dp->adam_m / adam_v and free the whole moments.  Sets
 * dp->opt_bytes in every case. */
int train_dp_shard_state(train_dp *dp, dl_model *m, char *err, size_t errlen);
/* Whether row j of a global batch of B rows is this rank's (B % size == 0). */
int train_dp_mine(const train_dp *dp, int B, int j);
/* Every rank's status rc: returns this rank's rc, or, when another rank
 * failed, that rank's code with "rank N of P failed" in err. */
int train_dp_agree(train_dp *dp, int rc, char *err, size_t errlen);
/* *any = flag on some rank (SIGTERM on one rank stops all at the same step). */
int train_dp_any(train_dp *dp, int flag, int *any, char *err, size_t errlen);
/* Rank 0's parameters to every rank. */
int train_dp_sync_params(train_dp *dp, dl_model *m, char *err, size_t errlen);
/* What to save: *view = *m, and under sharding the whole AdamW moments
 * gathered to rank 0 (view->adam_m / adam_v: buffers of rank 0, NULL on
 * the others).  Every rank calls it; free with train_dp_state_view_free. */
int train_dp_state_view(train_dp *dp, const dl_model *m, dl_model *view, char *err, size_t errlen);
void train_dp_state_view_free(train_dp *dp, const dl_model *m, dl_model *view);

/* ------------------------------------------------------------ ckpt.c */
/* Signals: after dl_prog_init.  The first SIGINT/SIGTERM sets a flag (the
 * step finishes, a checkpoint is saved, exit 130); a second one runs
 * dl_log's handler (temporary files removed, exit 130 at once). */
void train_signals_install(void);
int train_signal_pending(void);

/* Metrics JSON Lines (NULL path: none). */
typedef struct { FILE *f; const char *path; } train_metrics;
int train_metrics_open(train_metrics *mt, const char *path, int append, char *err, size_t errlen);
void train_metrics_step(train_metrics *mt, int64_t step, const train_step_out *o, double lr, double tokens,
                        double tokens_per_s, double elapsed);
void train_metrics_eval(train_metrics *mt, int64_t step, const train_eval_out *e, int causal, double elapsed);
int train_metrics_close(train_metrics *mt, char *err, size_t errlen);

/* Progress line on stderr (terminal or --progress; never with -q). */
typedef struct { int enabled, drawn; double t_last; } train_progress;
void train_progress_init(train_progress *p, int force);
void train_progress_draw(train_progress *p, int64_t step, int64_t total, double loss, double lr,
                         double tok_s, double elapsed, double eta);
void train_progress_end(train_progress *p);

/* The options recorded in trainer_state.json args_json.  type: 'i' long long
 * (unset = LLONG_MIN), 'd' double (unset = NaN), 's' const char * (unset =
 * NULL), 'f' flag int (unset = 0).  On --resume an unset option takes the
 * saved value; a must_match option given with another value is refused. */
typedef struct { const char *key; char type; void *p; int must_match; } train_arg;
/* JSON object text of every option (unset ones skipped). */
int train_args_json(const train_arg *a, int n, char *out, size_t len);
int train_args_resume(const train_arg *a, int n, const char *saved_json, const char *dir, char *err, size_t errlen);

/* Scratch directory ($TMPDIR/dllm-train.XXXXXX, removed at exit): converted
 * tokenizer.json, the filled-in --config, copies that must survive -o DIR
 * replacing the directory they came from. */
const char *train_scratch(char *err, size_t errlen);

/* Where the model comes from: --resume DIR (weights, optimizer, trainer
 * state; --config, when given too, must have the same shapes), --init SRC
 * (a dllm checkpoint dir, or an HF dir / llama2.c .bin converted by
 * dl_convert_load), or --config FILE (+ data header fill-ins, --seed init). */
typedef struct {
    const char *config, *init, *init_tok, *tokenizer, *resume;
    long long seed;
    const dl_header *hdr;   /* training data header or NULL */
    /* LoRA: lora.r > 0 = train a new adapter on the --init model (a dllm
     * checkpoint dir; the adapter's base_model_name_or_path); --resume of
     * an adapter directory (adapter_config.json) reloads its base, the
     * adapter and its optimizer state whatever lora says.  merge: a PEFT
     * adapter dir folded into the --init weights (a normal checkpoint). */
    dl_lora_cfg lora;
    const char *merge;
} train_model_src;
/* device, threads: where the model runs (it owns the device: close it with
 * dl_model_close).  tok_path: the tokenizer.json to store with checkpoints ("" = none).
 * Resume: m gets grads + optimizer and *st is filled. */
int train_model_open(dl_model *m, const char *device, int threads, const train_model_src *src, char *tok_path, size_t tl,
                     dl_train_state *st, char *err, size_t errlen);
/* dl_ckpt_save into dir, weights stored as wdtype; keep: also into DIR-stepN (st->step).
 * A model with a LoRA adapter attached saves the adapter directory instead
 * (dl_lora_save; the base is not written again). */
int train_save(const dl_model *m, const char *dir, const char *tok_path, const dl_train_state *st, dl_st_dtype wdtype,
               int keep, char *err, size_t errlen);

#endif
