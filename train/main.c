/* train/main.c — dllm-train: trains a masked-diffusion (or, --causal, an
 * autoregressive) LLaMA-style model on masked shards; converts AR models.
 *
 *   dllm-train --config share/configs/tiny.json train-*.msgpack.zst -o ckpt --steps 1000 --batch 8
 *   dllm-train --init share/data/stories260K/stories260K.bin -o ckpt --steps 0     # conversion only
 *   dllm-train --resume ckpt train-*.msgpack.zst -o ckpt --steps 2000
 *
 * main = options → device → data (header) → model (config / init / resume)
 * → checks → loop (batch, step, metrics, eval, save, signals) → final save.
 * The pieces: data.c (batches), sched.c (LR), step.c (a step, eval),
 * ckpt.c (model sources, saves, resume options, signals, metrics), dp.c
 * and gsync.c (data parallel).
 *
 * Exit: 0 ok, 1 data error (bad shard, NaN loss "step N: loss is nan" — the
 * last checkpoint is left as it was), 2 usage, 3 I/O (missing input),
 * 4 device (--device cuda without a CUDA build; a rank of a data-parallel
 * run that failed, died or timed out), 130 interrupted (after finishing the
 * step and saving a checkpoint into -o DIR).
 *
 * Data parallel (dp.c): started by mpirun or srun as P ranks, each rank
 * takes B/P rows of every global batch of B; gradients are summed with one
 * all-reduce per step, in buckets started during the backward (gsync.c,
 * --grad-bucket); rank 0 alone prints (unless -v), writes metrics and
 * checkpoints.  --zero 1 shards the AdamW state and update (ZeRO-1).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"
#include "dl_opts.h"
#include "train.h"


/* Options: the ones recorded for --resume start "unset" (LLONG_MIN, NaN,
 * NULL) so a resumed run can take the saved value; defaults come after. */
static const char *o_config, *o_init, *o_init_tok, *o_tokenizer, *o_resume, *o_out, *o_metrics, *o_valid;
static const char *o_device = "cpu", *o_schedule, *o_loss_norm, *o_weight, *o_dtype, *o_precision;
static dl_st_dtype save_dtype;   /* model.safetensors storage: --dtype, else the source's (main) */
static long long o_steps = LLONG_MIN, o_batch = LLONG_MIN, o_micro = LLONG_MIN, o_seq_len = LLONG_MIN;
static long long o_xent_chunk;            /* loss-head vocabulary chunk, 0 = whole */
static int o_profile;                     /* --profile: per-op device times at the end */
static long long o_warmup = LLONG_MIN, o_seed = LLONG_MIN, o_mask_seed = LLONG_MIN;
static long long o_eval_every, o_eval_rows, o_save_every, o_threads;
static double o_lr = NAN, o_min_lr = NAN, o_beta1 = NAN, o_beta2 = NAN, o_eps = NAN, o_wd = NAN, o_clip = NAN;
static double o_mask_eps = NAN, o_rlen = NAN;
static int o_path_loss, o_shift, o_causal, o_otf, o_no_pad_loss, o_bf16, o_keep, o_quiet, o_verbose, o_progress;
static int o_help, o_version;
static long long o_bd3;                  /* --block-diffusion B, 0 = off */
static long long o_lora;                 /* LoRA rank, 0 = full fine-tuning */
static double o_lora_alpha = NAN, o_lora_dropout = 0;
static const char *o_lora_targets, *o_merge;
static const char *o_comm = "auto";
static double o_comm_timeout = 600;
static long long o_zero;
static uint64_t o_grad_bucket = 25u << 20;

static const dl_opt OPTS[] = {
    { "Model", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "config", 0, DL_OPT_STR, &o_config, NULL, "FILE", "HF-style config.json: train from scratch (vocab_size and token ids it lacks come from the data header)", NULL },
    { "init", 0, DL_OPT_STR, &o_init, NULL, "SRC", "start from a dllm checkpoint dir, an HF Llama/Qwen2/Mistral dir or a llama2.c .bin (converted: mask token added, bidirectional)", NULL },
    { "init-tokenizer", 0, DL_OPT_STR, &o_init_tok, NULL, "FILE", "llama2.c tokenizer .bin for --init X.bin (default: tok512.bin / tokenizer.bin beside it)", NULL },
    { "tokenizer", 0, DL_OPT_STR, &o_tokenizer, NULL, "FILE", "tokenizer.json stored with the checkpoints (--config runs; must be the data's)", NULL },
    { "resume", 0, DL_OPT_STR, &o_resume, NULL, "DIR", "continue a run from its checkpoint (weights, optimizer, data position); options not given are the run's", NULL },
    { "seed", 0, DL_OPT_INT, &o_seed, NULL, "S", "weight init seed (--config) and default --mask-seed [0]", NULL },
    { "causal", 0, DL_OPT_FLAG, &o_causal, NULL, NULL, "autoregressive baseline: causal attention, next-token loss on x0 (same model)", NULL },
    { "shift-logits", 0, DL_OPT_FLAG, &o_shift, NULL, NULL, "predict position i from hidden state i-1 (Dream; keeps an AR head's meaning)", NULL },
    { "block-diffusion", 0, DL_OPT_INT, &o_bd3, "0", "B", "BD3LM block diffusion with blocks of B tokens: rows run as x_t (+) x_0 with the three-part mask (noisy block sees itself and the clean blocks before it); mask the data with dllm-mask --block B (t per block); recorded in config.json (0: off)", NULL },
    { "device", 0, DL_OPT_STR, &o_device, "cpu", "cpu|cuda|ref", "compute device (ref: the slow readable reference backend, for checks)", NULL },
    { "precision", 0, DL_OPT_STR, &o_precision, NULL, "f32|bf16", "compute precision: bf16 runs activations and matrix products in bf16 on a bf16 copy of the fp32 master weights (gradients, AdamW and checkpoints stay fp32; cuda or ref) [f32]", NULL },
    { "profile", 0, DL_OPT_FLAG, &o_profile, NULL, NULL, "time every device op (each waits for the device, so the run is slower) and print a table per op at the end (rank 0)", NULL },
    { "xent-chunk", 0, DL_OPT_INT, &o_xent_chunk, "0", "N", "loss head over the vocabulary in chunks of N columns: keeps (M, N) logits instead of (M, vocab), for one more head GEMM in the backward (0: whole vocabulary)", NULL },
    { "threads", 0, DL_OPT_THREADS, &o_threads, "0", "N", "CPU threads (0: OMP_NUM_THREADS, else the cores this process may use)", NULL },

    { "LoRA", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "lora", 0, DL_OPT_INT, &o_lora, "0", "R", "train only LoRA adapters of rank R on the --init model (frozen); -o DIR gets a PEFT adapter (adapter_config.json, adapter_model.safetensors) [0: off]", NULL },
    { "lora-alpha", 0, DL_OPT_FLOAT, &o_lora_alpha, NULL, "A", "LoRA scaling alpha / R [8, PEFT's default]", NULL },
    { "lora-targets", 0, DL_OPT_STR, &o_lora_targets, NULL, "LIST", "linears to adapt, of q,k,v,o,gate,up,down [all seven]", NULL },
    { "lora-dropout", 0, DL_OPT_FLOAT, &o_lora_dropout, "0", "P", "LoRA dropout: only 0 is implemented (others are refused)", NULL },
    { "merge", 0, DL_OPT_STR, &o_merge, NULL, "ADAPTER", "fold a PEFT LoRA adapter directory into the --init weights (with --steps 0: write the merged checkpoint)", NULL },

    { "Scale out", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "comm", 0, DL_OPT_STR, &o_comm, "auto", "auto|single|mpi|nccl", "how ranks talk (env DLLM_COMM overrides); auto: single when started alone, nccl for --device cuda, else mpi; ranks come from mpirun or srun", NULL },
    { "comm-timeout", 0, DL_OPT_FLOAT, &o_comm_timeout, "600", "S", "a rank waiting longer than S seconds for the others (init or a collective) ends the job (exit 4)", NULL },
    { "zero", 0, DL_OPT_INT, &o_zero, "0", "0|1", "1: ZeRO-1, each rank holds the AdamW state of its share of the parameters and updates that share, then all-gather", NULL },
    { "grad-bucket", 0, DL_OPT_SIZE, &o_grad_bucket, "25M", "BYTES", "gradients are all-reduced in buckets of whole layers of at least BYTES, each started as soon as the backward has finished its layers (0: one all-reduce after the backward)", NULL },

    { "Data", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "seq-len", 'L', DL_OPT_INT, &o_seq_len, NULL, "L", "expected row length (default: the data header's)", NULL },
    { "mask-on-the-fly", 0, DL_OPT_FLAG, &o_otf, NULL, NULL, "read `rows` and mask them here (dllm-mask's rules; every epoch a new masking)", NULL },
    { "mask-seed", 0, DL_OPT_INT, &o_mask_seed, NULL, "S", "--mask-on-the-fly seed (default: --seed)", NULL },
    { "mask-eps", 0, DL_OPT_FLOAT, &o_mask_eps, NULL, "X", "--mask-on-the-fly: t = eps + (1-eps)u [0.001]", NULL },
    { "random-length", 0, DL_OPT_FLOAT, &o_rlen, NULL, "P", "--mask-on-the-fly: probability of a random-length cut [0.01]", NULL },
    { "no-pad-loss", 0, DL_OPT_FLAG, &o_no_pad_loss, NULL, NULL, "--mask-on-the-fly: never mask the n_pad padding", NULL },
    { "valid", 0, DL_OPT_STR, &o_valid, NULL, "FILE", "held-out masked stream: ELBO (nats/token) and perplexity bound", NULL },
    { "eval-every", 0, DL_OPT_INT, &o_eval_every, "0", "N", "evaluate on --valid every N steps (also before the first and after the last)", NULL },
    { "eval-rows", 0, DL_OPT_INT, &o_eval_rows, "0", "N", "evaluate on the first N rows of --valid only (0: all)", NULL },

    { "Optimisation", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "steps", 0, DL_OPT_INT, &o_steps, NULL, "N", "total optimizer steps (0: write the --init/--config model and stop)", NULL },
    { "batch", 'b', DL_OPT_INT, &o_batch, NULL, "B", "global batch: rows per optimizer step [8]", NULL },
    { "micro-batch", 0, DL_OPT_INT, &o_micro, NULL, "b", "rows per forward pass; B/b micro-batches accumulate [B]", NULL },
    { "lr", 0, DL_OPT_FLOAT, &o_lr, NULL, "X", "peak learning rate [3e-4]", NULL },
    { "min-lr", 0, DL_OPT_FLOAT, &o_min_lr, NULL, "X", "learning rate at the last step (cosine, linear) [0]", NULL },
    { "warmup", 0, DL_OPT_INT, &o_warmup, NULL, "N", "linear warmup steps [0]", NULL },
    { "schedule", 0, DL_OPT_STR, &o_schedule, NULL, "cosine|linear|constant", "decay after warmup [cosine]", NULL },
    { "beta1", 0, DL_OPT_FLOAT, &o_beta1, NULL, "X", "AdamW beta1 [0.9]", NULL },
    { "beta2", 0, DL_OPT_FLOAT, &o_beta2, NULL, "X", "AdamW beta2 [0.95]", NULL },
    { "eps", 0, DL_OPT_FLOAT, &o_eps, NULL, "X", "AdamW epsilon [1e-8]", NULL },
    { "weight-decay", 0, DL_OPT_FLOAT, &o_wd, NULL, "X", "AdamW decoupled weight decay on matrices (not norms, biases) [0.1]", NULL },
    { "clip", 0, DL_OPT_FLOAT, &o_clip, NULL, "X", "clip the global gradient norm to X (0: off) [1.0]", NULL },
    { "loss-norm", 0, DL_OPT_STR, &o_loss_norm, NULL, "all|response|maskable|masked", "loss normalisation, ALGORITHMS.md 2 [all]", NULL },
    { "weight", 0, DL_OPT_STR, &o_weight, NULL, "timestep|uniform", "timestep: ce/t (ELBO); uniform: drop the 1/t [timestep]", NULL },
    { "path-loss", 0, DL_OPT_FLAG, &o_path_loss, NULL, NULL, "add Open-dLLM's path loss term", NULL },

    { "Output", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "output", 'o', DL_OPT_STR, &o_out, NULL, "DIR", "checkpoint directory (replaced atomically at each save)", NULL },
    { "save-every", 0, DL_OPT_INT, &o_save_every, "0", "N", "also save every N steps (0: at the end only)", NULL },
    { "keep-saves", 0, DL_OPT_FLAG, &o_keep, NULL, NULL, "keep each --save-every checkpoint as DIR-stepN too", NULL },
    { "dtype", 0, DL_OPT_STR, &o_dtype, NULL, "f32|bf16|f16", "how checkpoints store the weights [the source's: --init / --resume keep theirs, --config f32]; below f32 the fp32 masters go into optimizer.safetensors, so --resume stays exact", NULL },
    { "bf16-save", 0, DL_OPT_FLAG, &o_bf16, NULL, NULL, "the same as --dtype bf16", NULL },
    { "metrics", 0, DL_OPT_STR, &o_metrics, NULL, "FILE", "JSON Lines: one line per step, one per evaluation (appended on --resume)", NULL },
    { "progress", 0, DL_OPT_FLAG, &o_progress, NULL, NULL, "progress line even when stderr is not a terminal", NULL },
    { "quiet", 'q', DL_OPT_FLAG, &o_quiet, NULL, NULL, "errors only", NULL },
    { "verbose", 'v', DL_OPT_COUNT, &o_verbose, NULL, NULL, "a line per step (-v)", NULL },
    { "help", 'h', DL_OPT_FLAG, &o_help, NULL, NULL, "show this help and exit", NULL },
    { "version", 0, DL_OPT_FLAG, &o_version, NULL, NULL, "print the version and exit", NULL },
    DL_OPTS_END
};

static const char SYNOPSIS[] =
    "dllm-train (--config FILE | --init SRC | --resume DIR) [FILES...] -o DIR --steps N [--batch B]\n"
    "       (no file or '-': stdin; quoted globs are expanded)";
static const char DESCRIPTION[] =
    "Trains on `masked` streams (dllm-mask) with the MDLM/LLaDA loss: masked positions only,\n"
    "weighted 1/t; --causal trains the autoregressive baseline on x0 instead.  The input is\n"
    "re-read for as many epochs as --steps needs (stdin: until it ends).  Checkpoints are\n"
    "Hugging Face directories (config.json, model.safetensors, tokenizer.json) plus\n"
    "optimizer.safetensors and trainer_state.json for --resume; saved every --save-every\n"
    "steps, at the end, and on SIGINT/SIGTERM (after the current step; exit 130).\n"
    "A NaN/inf loss stops the run (exit 1) without saving over the last checkpoint.\n"
    "--steps 0 writes the --init (converted) or --config model and stops; with --valid it\n"
    "also prints the held-out ELBO.";

/* Options recorded in trainer_state.json (train_arg: must_match = refused
 * when given with another value on --resume; the others just default). */
static const train_arg ARGS[] = {
    { "batch", 'i', &o_batch, 1 }, { "seq_len", 'i', &o_seq_len, 1 }, { "seed", 'i', &o_seed, 1 },
    { "loss_norm", 's', &o_loss_norm, 1 }, { "weight", 's', &o_weight, 1 }, { "path_loss", 'f', &o_path_loss, 1 },
    { "shift_logits", 'f', &o_shift, 1 }, { "causal", 'f', &o_causal, 1 },
    { "mask_on_the_fly", 'f', &o_otf, 1 }, { "mask_seed", 'i', &o_mask_seed, 1 }, { "mask_eps", 'd', &o_mask_eps, 1 },
    { "random_length", 'd', &o_rlen, 1 }, { "no_pad_loss", 'f', &o_no_pad_loss, 1 },
    { "micro_batch", 'i', &o_micro, 0 }, { "lr", 'd', &o_lr, 0 }, { "min_lr", 'd', &o_min_lr, 0 },
    { "warmup", 'i', &o_warmup, 0 }, { "schedule", 's', &o_schedule, 0 }, { "beta1", 'd', &o_beta1, 0 },
    { "beta2", 'd', &o_beta2, 0 }, { "eps", 'd', &o_eps, 0 }, { "weight_decay", 'd', &o_wd, 0 },
    { "clip", 'd', &o_clip, 0 }, { "precision", 's', &o_precision, 0 },
};
#define N_ARGS ((int)(sizeof ARGS / sizeof ARGS[0]))

static void defaults(void) {
#define DEF_I(v, x) if ((v) == LLONG_MIN) (v) = (x)
#define DEF_D(v, x) if (isnan(v)) (v) = (x)
    DEF_I(o_batch, 8); DEF_I(o_micro, o_batch); DEF_I(o_warmup, 0); DEF_I(o_seed, 0); DEF_I(o_mask_seed, o_seed);
    DEF_D(o_lr, 3e-4); DEF_D(o_min_lr, 0.0); DEF_D(o_beta1, 0.9); DEF_D(o_beta2, 0.95); DEF_D(o_eps, 1e-8);
    DEF_D(o_wd, 0.1); DEF_D(o_clip, 1.0); DEF_D(o_mask_eps, 1e-3); DEF_D(o_rlen, 0.01);
    if (!o_schedule) o_schedule = "cosine";
    if (!o_loss_norm) o_loss_norm = "all";
    if (!o_weight) o_weight = "timestep";
    if (!o_precision) o_precision = "f32";
#undef DEF_I
#undef DEF_D
}

/* ------------------------------------------------------------------ run */
static int R_dp_size = 1;   /* the ranks, for check_values (before run exists) */
typedef struct {
    dl_model m;            /* owns its device (dl_model_open.h) */
    train_dp dp;           /* ranks (one process: rank 0 of 1) */
    int Bl, bl;            /* this rank's rows per step (B/P) and per forward */
    train_data data, valid;
    int has_data, has_valid;
    train_batch bt;
    train_step ts;
    train_metrics mt;
    dl_train_state st;
    char tok[1024];
    double tokens, t0;
    int64_t step0;
} run;

static void save_or_die(run *R, int64_t step, int with_state, int keep) {
    char err[1024];
    dl_train_state *st = NULL;
    if (with_state) {
        st = &R->st;
        st->step = step;
        st->seed = (uint64_t)o_seed;
        st->data_epoch = R->has_data ? R->data.epoch : 0;
        st->data_record = R->has_data ? R->data.record : 0;
        st->tokens_seen = R->tokens;
        if (train_args_json(ARGS, N_ARGS, st->args_json, sizeof st->args_json))
            dl_die(DL_EXIT_IO, "training options too long for trainer_state.json");
    }
    dl_model view;   /* ZeRO-1: with the whole moments, gathered to rank 0 */
    int rc = st ? train_dp_state_view(&R->dp, &R->m, &view, err, sizeof err) : (view = R->m, 0);
    if (rc) dl_die(-rc, "saving at step %lld: %s", (long long)step, err);
    if (R->dp.rank == 0)   /* rank 0 writes checkpoints */
        rc = train_save(&view, o_out, R->tok, st, save_dtype, keep, err, sizeof err);
    if (st) train_dp_state_view_free(&R->dp, &R->m, &view);
    if (R->dp.rank != 0) return;
    if (rc) dl_die(-rc, "saving %s at step %lld: %s", o_out, (long long)step, err);
    dl_verbose("saved %s (step %lld)", o_out, (long long)step);
}

static void eval_print(run *R, int64_t step) {
    char err[1024];
    train_eval_out e;
    int rc = train_eval(&R->ts, &R->valid, &R->bt, o_eval_rows, &e, err, sizeof err);
    if (rc) dl_die(-rc, "--valid: %s", err);
    train_metrics_eval(&R->mt, step, &e, R->ts.causal, dl_now() - R->t0);
    if (R->ts.causal)
        dl_info("step %lld: valid NLL %.4f nats/token, perplexity %.3f (%llu rows, %llu tokens)", (long long)step,
                e.elbo, exp(e.elbo), (unsigned long long)e.rows, (unsigned long long)e.targets);
    else
        dl_info("step %lld: valid ELBO %.4f nats/token, perplexity <= %.3f (%llu rows, %llu masked tokens)",
                (long long)step, e.elbo, exp(e.elbo), (unsigned long long)e.rows, (unsigned long long)e.targets);
}

static void check_compute(void) {
    if (o_precision && strcmp(o_precision, "f32") && strcmp(o_precision, "bf16"))
        dl_die(DL_EXIT_USAGE, "--precision '%s': expected f32 or bf16", o_precision);
    if (o_xent_chunk < 0 || o_xent_chunk > INT_MAX)
        dl_die(DL_EXIT_USAGE, "--xent-chunk %lld: expected 0 (off) or a column count", o_xent_chunk);
}

static void check_usage(void) {
    if (!o_out) dl_die(DL_EXIT_USAGE, "-o DIR is required (see --help)");
    if (o_steps == LLONG_MIN) dl_die(DL_EXIT_USAGE, "--steps N is required (0: convert / write the model only)");
    if (o_steps < 0) dl_die(DL_EXIT_USAGE, "--steps must be >= 0");
    if (!!o_config + !!o_init + !!o_resume == 0) dl_die(DL_EXIT_USAGE, "give --config FILE, --init SRC or --resume DIR");
    if (o_init && (o_config || o_resume)) dl_die(DL_EXIT_USAGE, "--init cannot be combined with --config or --resume");
    if (o_init_tok && !o_init) dl_die(DL_EXIT_USAGE, "--init-tokenizer goes with --init");
    if (o_dtype && strcmp(o_dtype, "f32") && strcmp(o_dtype, "bf16") && strcmp(o_dtype, "f16"))
        dl_die(DL_EXIT_USAGE, "--dtype '%s': expected f32, bf16 or f16", o_dtype);
    if (o_dtype && o_bf16 && strcmp(o_dtype, "bf16")) dl_die(DL_EXIT_USAGE, "--bf16-save contradicts --dtype %s", o_dtype);
    if (o_save_every < 0 || o_eval_every < 0 || o_eval_rows < 0 || o_threads < 0)
        dl_die(DL_EXIT_USAGE, "--save-every, --eval-every, --eval-rows, --threads must be >= 0");
    if (strcmp(o_device, "cpu") && strcmp(o_device, "cuda") && strcmp(o_device, "ref"))
        dl_die(DL_EXIT_USAGE, "--device '%s': expected cpu, cuda or ref", o_device);
    check_compute();   /* given on the command line: before any data is read */
    if (o_lora < 0 || o_lora > 65536) dl_die(DL_EXIT_USAGE, "--lora R: R must be in [1, 65536] (0: off)");
    if (!o_lora && (o_lora_targets || !isnan(o_lora_alpha)))
        dl_die(DL_EXIT_USAGE, "--lora-alpha and --lora-targets go with --lora R");
    if (o_lora_dropout != 0)
        dl_die(DL_EXIT_USAGE, "--lora-dropout %g: LoRA dropout is not implemented (only 0)", o_lora_dropout);
    if (o_lora && o_resume)
        dl_die(DL_EXIT_USAGE, "--lora with --resume: the adapter directory's adapter_config.json sets r, alpha and "
               "targets (give --resume DIR alone)");
    if ((o_lora || o_merge) && !o_init) dl_die(DL_EXIT_USAGE, "%s needs --init BASE", o_merge ? "--merge" : "--lora");
    if (o_lora && o_merge)
        dl_die(DL_EXIT_USAGE, "--merge with --lora: merge first (--steps 0 -o MERGED), then train an adapter on it");
    if (!isnan(o_lora_alpha) && !(o_lora_alpha > 0)) dl_die(DL_EXIT_USAGE, "--lora-alpha must be > 0");
}

/* Data parallel: B rows split evenly over the ranks; --micro-batch is the
 * rows of one forward on one rank, capped at B/P. */
static void check_ranks(void) {
    int P = R_dp_size;
    if (o_batch % P)
        dl_die(DL_EXIT_USAGE, "--batch %lld is not a multiple of the %d ranks: every rank takes B/ranks rows of "
               "each step (use a batch divisible by %d)", o_batch, P, P);
    long long Bl = o_batch / P, bl = o_micro < Bl ? o_micro : Bl;
    if (Bl % bl)
        dl_die(DL_EXIT_USAGE, "--micro-batch %lld must divide the %lld rows per rank (--batch %lld over %d ranks)",
               o_micro, Bl, o_batch, P);
}

static void check_values(dl_loss_cfg *lc, train_sched_kind *sk) {
    if (o_batch < 1 || o_batch > (1 << 20)) dl_die(DL_EXIT_USAGE, "--batch must be in [1, 2^20]");
    if (o_micro < 1 || o_micro > o_batch || o_batch % o_micro)
        dl_die(DL_EXIT_USAGE, "--micro-batch %lld must divide --batch %lld", o_micro, o_batch);
    check_ranks();
    if (o_warmup < 0) dl_die(DL_EXIT_USAGE, "--warmup must be >= 0");
    if (o_seed < 0 || o_mask_seed < 0) dl_die(DL_EXIT_USAGE, "--seed and --mask-seed must be >= 0");
    if (!(o_lr >= 0) || !(o_min_lr >= 0) || !(o_beta1 >= 0 && o_beta1 < 1) || !(o_beta2 >= 0 && o_beta2 < 1) ||
        !(o_eps > 0) || !(o_wd >= 0) || !(o_clip >= 0))
        dl_die(DL_EXIT_USAGE, "bad optimizer option: lr, min-lr, weight-decay, clip >= 0; betas in [0,1); eps > 0");
    check_compute();   /* or from the resumed run */
    if (train_sched_parse(o_schedule, sk)) dl_die(DL_EXIT_USAGE, "--schedule '%s': cosine, linear or constant", o_schedule);
    memset(lc, 0, sizeof *lc);
    if (dl_loss_norm_parse(o_loss_norm, &lc->norm) || lc->norm == DL_NORM_CAUSAL)
        dl_die(DL_EXIT_USAGE, "--loss-norm '%s': all, response, maskable or masked", o_loss_norm);
    if (!strcmp(o_weight, "uniform")) lc->uniform_weight = 1;
    else if (strcmp(o_weight, "timestep")) dl_die(DL_EXIT_USAGE, "--weight '%s': timestep or uniform", o_weight);
    lc->path_loss = o_path_loss;
    if (o_causal) {
        if (o_otf || o_path_loss || lc->uniform_weight || lc->norm != DL_NORM_ALL)
            dl_warn("--causal: the loss is the mean next-token NLL; masking and loss options are ignored");
        lc->norm = DL_NORM_CAUSAL;
        lc->uniform_weight = 1;
        lc->path_loss = 0;
    }
}

/* The data (and --valid) against the model: tokenizer hash, vocabulary,
 * row length, masking config.  Returns the row length L (0: no data). */
static int check_data(run *R) {
    char err[1024], sha[65] = "", *tsha = NULL;
    int rc;
    dl_config *mc = &R->m.cfg;
    if (R->tok[0]) {
        char *text = NULL;
        size_t len = 0;
        if ((rc = dl_read_file(R->tok, &text, &len, err, sizeof err))) dl_die(-rc, "%s", err);
        dl_sha256_hex(text, len, sha);
        free(text);
        tsha = sha;
    }
    dl_mask_cfg mcfg;
    dl_mask_cfg_default(&mcfg);
    mcfg.seed = (uint64_t)o_mask_seed;
    mcfg.eps = o_mask_eps;
    mcfg.random_length_p = o_rlen;
    mcfg.no_pad_loss = o_no_pad_loss;
    if (dl_mask_cfg_check(&mcfg, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);
    train_data_cfg dc = { .causal = o_causal, .otf = o_otf, .mcfg = mcfg, .vocab = mc->vocab_size, .what = "input" };
    int L = 0;
    if (R->has_data) {
        R->data.c = dc;
        if ((rc = train_data_check(&R->data, mc, tsha, o_seq_len, err, sizeof err))) dl_die(-rc, "%s", err);
        L = (int)R->data.L;
        if (o_seq_len == LLONG_MIN) o_seq_len = L;
    }
    if (o_valid) {
        char *vp[1] = { (char *)o_valid };
        dc.what = "--valid stream";
        if ((rc = train_data_open(&R->valid, vp, 1, &dc, err, sizeof err))) dl_die(-rc, "--valid: %s", err);
        R->valid.c.otf = o_otf && R->valid.kind == DL_KIND_ROWS;   /* a masked --valid is used as it is */
        if ((rc = train_data_check(&R->valid, mc, tsha, L ? L : o_seq_len, err, sizeof err)))
            dl_die(-rc, "--valid: %s", err);
        L = (int)R->valid.L;
        R->has_valid = 1;
    }
    return L;
}

/* Compute precision and the loss head's chunking, before any buffer is
 * reserved (--steps 0 without --valid only writes the model: nothing
 * computes). */
static void setup_compute(run *R) {
    char err[1024];
    int rc;
    if (strcmp(o_precision, "f32") && (o_steps > 0 || o_valid) &&
        (rc = dl_model_set_compute(&R->m, DL_BF16, err, sizeof err)))
        dl_die(-rc, "--precision %s: %s", o_precision, err);
    if ((rc = dl_model_set_xent_chunk(&R->m, (int)o_xent_chunk, err, sizeof err))) dl_die(-rc, "--xent-chunk: %s", err);
    if (o_profile && dl_model_profile(&R->m, 1)) dl_die(DL_EXIT_IO, "--profile: out of memory");
}

/* --profile: the per-op table, on rank 0 */
static void print_profile(run *R) {
    if (!o_profile || R->dp.rank) return;
    char tab[8192];
    dl_model_profile_table(&R->m, tab, sizeof tab);
    dl_info("device time per op (--profile):");
    dl_info_lines(tab);
}

/* Gradients, optimizer state, the batch and the step's buffers. */
static void setup_step(run *R, int L, const dl_loss_cfg *lc) {
    char err[1024];
    int rc;
    dl_config *mc = &R->m.cfg;
    if ((rc = train_dp_shares(&R->dp, R->m.n_params, err, sizeof err))) dl_die(-rc, "%s", err);
    if (o_steps > 0 && !o_resume && !R->m.lora &&
        ((rc = dl_model_alloc_grads(&R->m, err, sizeof err)) ||
         (!train_dp_sharded(&R->dp) && (rc = dl_model_alloc_optimizer(&R->m, err, sizeof err)))))
        dl_die(-rc, "%s", err);
    if (o_steps > 0 && (rc = train_dp_shard_state(&R->dp, &R->m, err, sizeof err))) dl_die(-rc, "%s", err);
    if (o_steps > 0)
        dl_verbose("optimizer state: %zu bytes on this rank (AdamW m and v%s)", R->dp.opt_bytes,
                   train_dp_sharded(&R->dp) ? ", ZeRO-1 share" : "");
    if (L <= 0) return;
    R->Bl = (int)(o_batch / R->dp.size);
    R->bl = o_micro < R->Bl ? (int)o_micro : R->Bl;
    if (train_batch_init(&R->bt, R->Bl, L)) dl_die(DL_EXIT_IO, "out of memory (batch of %d x %d)", R->Bl, L);
    if ((rc = train_step_init(&R->ts, &R->m, R->Bl, R->bl, L, o_causal ? 0 : mc->block_diffusion, err, sizeof err)))
        dl_die(-rc, "%s", err);
    R->ts.causal = o_causal;
    R->ts.shift = mc->shift_logits && !o_causal;
    R->ts.lc = *lc;
    R->ts.mask_id = mc->mask_token_id >= 0 ? (uint32_t)mc->mask_token_id
                                           : (R->has_data ? R->data.c.mcfg.mask_id : R->valid.c.mcfg.mask_id);
    R->ts.opt = (dl_optim_cfg){ .beta1 = o_beta1, .beta2 = o_beta2, .eps = o_eps, .wd = o_wd, .clip = o_clip };
    R->ts.comm = R->dp.comm;
    if (o_steps > 0 && (rc = train_gsync_plan(&R->ts.gs, R->dp.comm, &R->m, o_grad_bucket / sizeof(float), err, sizeof err)))
        dl_die(-rc, "%s", err);
    if (R->ts.gs.n_b)
        dl_verbose("gradient all-reduce: %d buckets, the first %d started during the backward (--grad-bucket %llu)",
                   R->ts.gs.n_b, R->ts.gs.n_b - (R->ts.gs.ready[R->ts.gs.n_b - 1] < 0) -
                   (R->ts.gs.n_b > 1 && R->ts.gs.ready[R->ts.gs.n_b - 2] < 0), (unsigned long long)o_grad_bucket);
    R->ts.zero_off = R->dp.off;
    R->ts.zero_m = R->dp.adam_m;
    R->ts.zero_v = R->dp.adam_v;
}

/* Fill the batch with this rank's rows of the next B records (all of
 * them with one process); 1 = full, 0 = the input ended first. */
static int read_batch(run *R) {
    char err[1024];
    R->bt.n = 0;
    for (int j = 0; j < (int)o_batch; j++) {
        int mine = train_dp_mine(&R->dp, (int)o_batch, j);
        int rc = mine ? train_data_next(&R->data, &R->bt, R->bt.n, 1, err, sizeof err)
                      : train_data_skip(&R->data, err, sizeof err);
        if (rc < 0) dl_die(-rc, "%s", err);
        if (rc == 0) return 0;
        R->bt.n += mine;
    }
    return 1;
}

/* A failure on any rank ends every rank with the same code; this rank's
 * own message when it is the one that failed. */
static void agree_or_die(run *R, int rc, const char *err, const char *what) {
    char e2[1024];
    int out = train_dp_agree(&R->dp, rc, e2, sizeof e2);
    if (!out) return;
    if (rc) dl_die(-rc, "%s%s", what, err);
    dl_die(-out, "%s%s", what, e2);
}

/* The ranks (single process, mpirun or srun): this rank's name, quiet
 * non-zero ranks, inputs every rank can read. */
static void open_ranks(run *Rp, char **paths, int npaths) {
    char err[1024];
    int rc;
    if (o_zero != 0 && o_zero != 1) dl_die(DL_EXIT_USAGE, "--zero %lld: 0 or 1", o_zero);
    if (!(o_comm_timeout > 0)) dl_die(DL_EXIT_USAGE, "--comm-timeout must be > 0 seconds");
    if ((rc = train_dp_open(&Rp->dp, o_comm, !strcmp(o_device, "cuda"), o_comm_timeout, (int)o_zero, err, sizeof err)))
        dl_die(-rc, "%s", err);
    R_dp_size = Rp->dp.size;
    if (Rp->dp.size > 1) {
        char name[64];
        snprintf(name, sizeof name, "dllm-train[rank %d]", Rp->dp.rank);
        if (Rp->dp.rank) dl_prog_rename(name);
        if (Rp->dp.rank && !o_verbose) dl_verbosity = 0;   /* errors only: rank 0 reports */
        if (npaths == 0 || (npaths == 1 && !strcmp(paths[0], "-")))
            dl_die(DL_EXIT_USAGE, "%d ranks cannot share stdin: give the input files (every rank reads them)",
                   Rp->dp.size);
    }
}

/* The model (--config, --init, --resume; LoRA adapters, --merge), the
 * same on every rank, and the dtype its checkpoints are saved in. */
static void open_model(run *Rp) {
    char err[1024];
    int rc;
    train_model_src src = { o_config, o_init, o_init_tok, o_tokenizer, o_resume, o_seed == LLONG_MIN ? 0 : o_seed,
                            Rp->has_data ? dl_reader_header(Rp->data.r) : NULL, { 0, 0, 0 }, o_merge };
    if (o_lora) {
        src.lora.r = (int)o_lora;
        src.lora.alpha = isnan(o_lora_alpha) ? 8.0 : o_lora_alpha;
        src.lora.targets = (1u << DL_LORA_NT) - 1;
        if (o_lora_targets && (rc = dl_lora_parse_targets(o_lora_targets, &src.lora.targets, err, sizeof err)))
            dl_die(-rc, "--lora-targets: %s", err);
    }
    rc = train_model_open(&Rp->m, o_device, (int)o_threads, &src, Rp->tok, sizeof Rp->tok, &Rp->st, err, sizeof err);
    agree_or_die(Rp, rc, err, "");
    if (Rp->m.lora && o_zero)   /* ZeRO-1 shares cut the base block, not the adapter's */
        dl_die(DL_EXIT_USAGE, "--zero 1 with LoRA: not supported (the adapters' optimizer state is small; drop --zero)");
    if ((rc = train_dp_sync_params(&Rp->dp, &Rp->m, err, sizeof err))) dl_die(-rc, "%s", err);
    /* storage dtype of what we save: asked for, else the source's (f16
     * stays f16: rounding it to bf16 would lose 3 mantissa bits) */
    if (o_dtype || o_bf16)
        save_dtype = o_bf16 || !strcmp(o_dtype, "bf16") ? DL_ST_BF16 : !strcmp(o_dtype, "f16") ? DL_ST_F16 : DL_ST_F32;
    else if (Rp->m.lora) save_dtype = DL_ST_F32;   /* adapters are F32; the base is not written */
    else if ((o_init || o_resume) && (rc = dl_ckpt_source_dtype(o_init ? o_init : o_resume, &save_dtype, err, sizeof err)))
        dl_die(-rc, "%s", err);
}

/* The objective flags (they live in config.json too): causal, shift,
 * block diffusion, and the mask token they need. */
static void apply_objective(run *Rp, dl_loss_cfg *lc, train_sched_kind *sk) {
    dl_config *mc = &Rp->m.cfg;
    if (!strcmp(mc->objective, "causal") && !o_causal && !o_resume) {   /* a causal --init or --config */
        o_causal = 1;
        check_values(lc, sk);
    }
    if (o_causal) snprintf(mc->objective, sizeof mc->objective, "causal");
    if (o_shift) mc->shift_logits = 1;
    if (o_shift && o_causal) dl_die(DL_EXIT_USAGE, "--shift-logits is for diffusion training (--causal shifts already)");
    if (o_bd3 < 0 || o_bd3 > 1 << 20) dl_die(DL_EXIT_USAGE, "--block-diffusion %lld: expected a block size > 0", o_bd3);
    if (o_bd3 > 0) mc->block_diffusion = (int)o_bd3;   /* a checkpoint trained so keeps it (config.json) */
    if (mc->block_diffusion > 0 && (o_causal || mc->shift_logits))
        dl_die(DL_EXIT_USAGE, "--block-diffusion is for diffusion training without --causal / --shift-logits");
    if (!o_causal && mc->mask_token_id < 0 && (Rp->has_data || o_valid))
        dl_die(DL_EXIT_DATA, "the model has no mask_token_id (config.json) and the data header names none");
}

int main(int argc, char **argv) {
    char err[1024];
    char **paths = NULL;
    int npaths = 0, rc;
    dl_prog_init("dllm-train", argc, argv);
    if ((rc = dl_opts_parse(OPTS, argc, argv, &paths, &npaths, err, sizeof err)) < 0) dl_die(DL_EXIT_USAGE, "%s", err);
    if (o_help || o_version) free(paths);   /* the only allocation so far */
    if (o_help) return dl_opts_help(OPTS, SYNOPSIS, DESCRIPTION);
    if (o_version) { printf("dllm-train %s\n", DL_VERSION); return 0; }
    dl_verbosity = o_quiet ? 0 : 1 + o_verbose;
    check_usage();
    train_signals_install();

    static run R;
    open_ranks(&R, paths, npaths);

    /* data first: its header completes a --config (vocab, token ids) */
    train_data_cfg dc = { .what = "input" };
    R.has_data = o_steps > 0 || npaths > 0;   /* --steps 0 with files: their header completes --config */
    rc = R.has_data ? train_data_open(&R.data, paths, npaths, &dc, err, sizeof err) : 0;
    agree_or_die(&R, rc, err, "");   /* e.g. a shard missing on one node */

    open_model(&R);
    if (o_resume) {
        if ((rc = train_args_resume(ARGS, N_ARGS, R.st.args_json, o_resume, err, sizeof err))) dl_die(-rc, "%s", err);
        R.step0 = R.st.step;
        R.tokens = R.st.tokens_seen;
    }
    defaults();
    dl_loss_cfg lc;
    train_sched_kind sk;
    check_values(&lc, &sk);

    apply_objective(&R, &lc, &sk);
    dl_config *mc = &R.m.cfg;

    /* data against the model; optimizer, buffers, metrics */
    int L = check_data(&R);
    if (mc->block_diffusion > 0 && !o_causal && R.has_data && R.data.kind == DL_KIND_MASKED &&
        R.data.block != (uint32_t)mc->block_diffusion)   /* BD3LM draws one t per block of B */
        dl_warn("block diffusion with blocks of %d, but the data was masked with %s%u (dllm-mask --block %d)",
                mc->block_diffusion, R.data.block ? "--block " : "one t per row, block ", R.data.block,
                mc->block_diffusion);
    setup_compute(&R);
    setup_step(&R, L, &lc);
    if ((rc = train_metrics_open(&R.mt, R.dp.rank ? NULL : o_metrics, o_resume != NULL, err, sizeof err)))
        dl_die(-rc, "%s", err);
    if (R.has_data && o_resume && (rc = train_data_seek(&R.data, R.st.data_epoch, R.st.data_record, err, sizeof err)))
        dl_die(-rc, "%s", err);

    dl_info("model: %s, dim %d, %d layers, %d/%d heads, vocab %d, %.2fM parameters, %s; %s%s", mc->arch, mc->dim,
            mc->n_layers, mc->n_heads, mc->n_kv_heads, mc->vocab_size, R.m.n_params / 1e6,
            o_causal ? "causal" : mc->block_diffusion > 0 ? "block diffusion" : "diffusion",
            dl_model_device_describe(&R.m), R.m.dtype == DL_BF16 ? ", bf16 compute" : "");
    if (R.m.lora)
        dl_info("LoRA: r %d, alpha %g, %.3fM adapter parameters trained, base frozen", dl_lora_config(R.m.lora)->r,
                dl_lora_config(R.m.lora)->alpha, dl_lora_n_params(R.m.lora) / 1e6);
    if (R.dp.size > 1)
        dl_info("data parallel: %d ranks over %s, %d rows each per step%s", R.dp.size, dl_comm_name(R.dp.comm), R.Bl,
                R.dp.zero ? ", ZeRO-1 optimizer shares" : "");
    if (R.has_data && o_steps > R.step0)
        dl_info("training steps %lld..%lld, batch %lld (micro %lld) x %d tokens, lr %g %s, loss %s%s%s",
                (long long)R.step0 + 1, o_steps, o_batch, (long long)R.bl, L, o_lr, o_schedule,
                o_causal ? "causal" : o_loss_norm, lc.uniform_weight && !o_causal ? " uniform" : "",
                lc.path_loss ? " +path" : "");

    /* ---------------------------------------------------------- loop */
    R.t0 = dl_now();
    if (R.has_valid) eval_print(&R, R.step0);
    train_progress pr;
    train_progress_init(&pr, o_progress && R.dp.rank == 0);
    if (R.dp.rank) pr.enabled = 0;
    int64_t step = R.step0, last_eval = R.step0;
    double tokens_run = 0;
    while (R.has_data && step < o_steps) {
        if (!read_batch(&R)) {
            train_progress_end(&pr);
            dl_info("the input ended after step %lld (%d rows left over, not a full batch)", (long long)step, R.bt.n);
            break;
        }
        step++;
        double lr = train_sched_lr(sk, step, o_steps, o_warmup, o_lr, o_min_lr);
        train_step_out so;
        rc = train_step_run(&R.ts, &R.bt, step, lr, &so, err, sizeof err);
        if (rc) {
            train_progress_end(&pr);
            dl_die(-rc, "step %lld: %s%s", (long long)step, err,
                   rc == -DL_EXIT_DATA ? "; stopping, the last checkpoint is left as it was" : "");
        }
        R.st.lr_last = lr;
        R.tokens += (double)o_batch * L;
        tokens_run += (double)o_batch * L;
        double el = dl_now() - R.t0, tps = el > 0 ? tokens_run / el : 0;
        train_metrics_step(&R.mt, step, &so, lr, R.tokens, tps, el);
        dl_verbose("step %lld: loss %.6f, elbo %.6f, lr %.3e, grad norm %.4f, %.0f tokens/s", (long long)step,
                   so.loss, so.elbo, lr, so.grad_norm, tps);
        train_progress_draw(&pr, step, o_steps, so.loss, lr, tps, el, el / (double)(step - R.step0) * (o_steps - step));
        if (R.has_valid && o_eval_every && step % o_eval_every == 0 && step < o_steps) {
            train_progress_end(&pr);
            eval_print(&R, step);
            last_eval = step;
        }
        int stop = train_signal_pending();
        if ((rc = train_dp_any(&R.dp, stop, &stop, err, sizeof err))) dl_die(-rc, "step %lld: %s", (long long)step, err);
        if ((o_save_every && step % o_save_every == 0 && step < o_steps) || stop)
            save_or_die(&R, step, 1, o_keep && !stop);
        if (stop) {
            train_progress_end(&pr);
            dl_error("interrupted: stopped after step %lld, checkpoint saved in %s (continue with --resume %s)",
                     (long long)step, o_out, o_out);
            free(paths);   /* the rest hangs off the static R */
            return DL_EXIT_INTERRUPTED;
        }
    }
    train_progress_end(&pr);

    /* ---------------------------------------------------------- close */
    if (R.has_valid && step != last_eval) eval_print(&R, step);
    save_or_die(&R, step, o_steps > 0 || o_resume, 0);
    if ((rc = train_metrics_close(&R.mt, err, sizeof err))) dl_die(-rc, "%s", err);
    if (train_signal_pending()) {   /* e.g. stdin ended because the pipeline was interrupted */
        dl_error("interrupted: stopped after step %lld, checkpoint saved in %s", (long long)step, o_out);
        free(paths);
        return DL_EXIT_INTERRUPTED;
    }
    double el = dl_now() - R.t0;
    if (R.has_data && step > R.step0)
        dl_info("%lld steps in %.1fs (%.0f tokens/s); saved %s", (long long)(step - R.step0), el,
                el > 0 ? tokens_run / el : 0.0, o_out);
    else
        dl_info("saved %s", o_out);
    if (R.ts.gs.n_started)
        dl_verbose("gradient buckets: %llu started, %llu of them during the backward",
                   (unsigned long long)R.ts.gs.n_started, (unsigned long long)R.ts.gs.n_early);
    if (L > 0) { train_step_free(&R.ts); train_batch_free(&R.bt); }
    if (R.has_data) train_data_close(&R.data);
    if (R.has_valid) train_data_close(&R.valid);
    print_profile(&R);
    train_dp_close(&R.dp);   /* first: it frees ZeRO-1's moments on the model's device */
    dl_model_close(&R.m);
    free(paths);
    return 0;
}
