/* sample.h — dllm-sample internals: options, rows and the noise source
 * (shared by the diffusion (diffusion.c) and AR (ar.c) paths).
 *
 * A row is one prompt's canvas: ids[0..n_prompt) the prompt (it may hold
 * mask ids: infilling), then gen_length generated positions.  Rows of one
 * batch go through the model together (right padding + per-row lengths),
 * each with its own prompt length, its own schedule and its own noise.
 *
 * Noise (smp_noise): uniforms in (0,1), from Philox (dl_rng's generator,
 * purpose DL_RNG_SAMPLE, key seed, counter (prompt index, copy, block)) by
 * default (noise.c), or read sequentially from --noise FILE (raw
 * little-endian float64; the test hook; reading past the end is a data
 * error).  In Philox mode every
 * row has its own stream (so a row's output does not depend on --batch); in
 * file mode all rows share the one file.
 *
 * ORDER in which uniforms are consumed (the contract with
 * tests/ref/gen_sample_fixture.py).  Every step (one forward, or two with
 * --cfg), for each row still running, in row order, with L = that row's
 * canvas length (prompt + gen_length) and V = vocab size:
 *   diffusion, --alg llada (default) and Dream's maskgit_plus, topk_margin,
 *   entropy (which take no --remask random):
 *     1. if temperature > 0: L*V Gumbel uniforms, position-major
 *        (u[pos*V + v], LLaDA's torch.rand_like(logits) for one row);
 *     2. if --remask random: L uniforms (u[pos] is the confidence of pos);
 *     3. if --alg-temp > 0: L uniforms (Gumbel-top-k over positions:
 *        positions are chosen by conf/alg_temp - log(-log u[pos])).
 *   diffusion, --alg origin (Dream):
 *     1. L uniforms: pos is revealed when u[pos] < 1 - s/t;
 *     2. if temperature > 0: L*V Gumbel uniforms as above.
 *     A step that reveals nothing runs no forward: the row goes straight on
 *     to its next step (its 1.), in the same iteration.
 *   Schedule steps that commit nothing (llada: k = 0) and blocks without
 *   masks draw nothing.
 *   AR: see ar.c (one uniform per token and running row, inverse CDF).
 * The uniforms of positions that are not computed (not masked, outside the
 * block) still count: they are reserved (smp_noise_take) but never
 * generated or read.  Rows that have finished draw nothing.
 *
 * Candidate token at one position (computed on the device: kernels.h "token
 * selection", DL_SEL_GUMBEL, via share/model/dl_select.h): logits of --suppress ids and
 * of the mask token (committing a mask would make no progress) -> -inf;
 * temperature 0: argmax (lowest id on ties); else with
 * z = logits / T: --top-k keeps the k largest z (ties: lower id first),
 * --top-p keeps the smallest prefix of the remaining ids sorted by z
 * (descending) whose softmax mass reaches p (the id that crosses p is kept;
 * at least one), then argmax over kept ids of z - log(-log u) in float64
 * (= argmax of logits - T*log(-log u), LLaDA's exp(logits)/(-log u)^T).
 * Confidence needs the noise-free softmax of the suppressed logits
 * (unfiltered, untempered, as LLaDA): p(candidate), p1 - p2, or sum p log p.
 * Dream's maskgit_plus / topk_margin / entropy instead use its sample_tokens
 * (DL_SEL_DREAM): top-p on the tempered softmax first, then top-k (ties
 * kept), and the confidence from that filtered, tempered distribution.
 *
 * What this does not do: tokenizing, streams, timing (main.c), terminal
 * drawing (show.c).
 */
#ifndef DL_SAMPLE_H
#define DL_SAMPLE_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dl_base.h"
#include "dl_model.h"
#include "show.h"

/* ---- noise ----------------------------------------------------------------
 * A stream of uniforms u[0], u[1], ... with a cursor.  smp_noise_take reserves
 * the next `count` (returns the index of the first, moves the cursor);
 * smp_noise_fill reads any reserved range (thread-safe: Philox is a pure
 * function of the index; a file is read into memory at open). */
typedef struct smp_noise smp_noise;

/* Philox stream of prompt `index` under `seed`.  Returns 0 or -DL_EXIT_IO (memory). */
int smp_noise_philox(smp_noise **n, uint64_t seed, uint64_t index);
/* Re-key an existing Philox stream for another prompt (cursor back to 0). */
void smp_noise_rekey(smp_noise *n, uint64_t seed, uint64_t index);
/* Uniforms from a file of raw little-endian float64 values (each in (0,1)). */
int smp_noise_file(smp_noise **n, const char *path, char *err, size_t errlen);
/* Reserve the next `count` uniforms; returns the index of the first.  A
 * file too short marks the stream failed (smp_noise_check); reading a
 * failed range then gives 0.5. */
uint64_t smp_noise_take(smp_noise *n, uint64_t count);
/* out[j] = u[i0 + j], j < count. */
void smp_noise_fill(const smp_noise *n, uint64_t i0, size_t count, double *out);
/* Next uniform in (0,1) (take(1) + fill). */
double smp_noise_u(smp_noise *n);
/* Skip `count` uniforms without drawing them (= take(count)). */
void smp_noise_skip(smp_noise *n, uint64_t count);
/* 0, or -DL_EXIT_DATA with the reason once the stream failed. */
int smp_noise_check(const smp_noise *n, char *err, size_t errlen);
int smp_noise_is_file(const smp_noise *n);
/* Philox mode: the key (seed) and counter stream (prompt index) that a
 * device kernel needs to draw u[i] itself (kernels/kphilox.h); file mode: 0, 0. */
void smp_noise_key(const smp_noise *n, uint64_t *seed, uint64_t *stream);
void smp_noise_free(smp_noise *n);   /* NULL is fine */

/* ---- options -------------------------------------------------------------- */
typedef enum { SMP_REMASK_LOWCONF, SMP_REMASK_RANDOM, SMP_REMASK_MARGIN, SMP_REMASK_ENTROPY } smp_remask;
/* llada: LLaDA's schedule + --remask; origin, maskgit_plus, topk_margin,
 * entropy: Dream's algs of the same names (diffusion.c) */
typedef enum { SMP_ALG_LLADA, SMP_ALG_ORIGIN, SMP_ALG_MASKGIT_PLUS, SMP_ALG_TOPK_MARGIN, SMP_ALG_ENTROPY } smp_alg;
typedef enum { SMP_CACHE_NONE, SMP_CACHE_PREFIX, SMP_CACHE_DUAL } smp_cache;

typedef struct {
    int gen_length;          /* G: masks appended to every prompt (0 = pure infilling) */
    int steps;               /* S: forwards over the whole canvas (per row, without --threshold) */
    int block_length;        /* B: semi-AR block (G % B == 0); 0 = G */
    double temperature;      /* 0 = argmax */
    int top_k;               /* 0 = off */
    double top_p;            /* 1 = off */
    double cfg;              /* classifier-free guidance w; 0 = off */
    smp_remask remask;
    smp_alg alg;
    double alg_temp;         /* > 0: positions sampled (Gumbel-top-k) instead of top-k confidence */
    double eps;              /* Dream's algs: time grid end (Dream: 1e-3) */
    double threshold;        /* Fast-dLLM tau; <= 0 = off */
    smp_cache cache;         /* --cache: none | prefix | dual (diffusion.c) */
    const uint32_t *suppress; int n_suppress;
    int keep_eos;            /* 1: keep the whole canvas; 0: trim at the first EOS after the prompt */
    uint32_t mask_id;
    int64_t eos_id;          /* -1 = none */
    int shift_logits;        /* from the checkpoint: logit of position i comes from hidden i-1 */
    int bd3;                 /* from the checkpoint (block_diffusion): BD3LM block size, 0 = none;
                                then block_length == bd3, blocks aligned to multiples of bd3,
                                block-causal attention, and any --cache is the exact block cache */
    FILE *trace;             /* --trace JSON Lines, or NULL */
    show *show;              /* --show: row 0 of each batch is drawn, or NULL */
} smp_opts;

typedef struct {
    uint32_t *ids;           /* canvas, capacity >= n_prompt + gen_length (caller owned) */
    int n_prompt;            /* prompt ids at ids[0..n_prompt) */
    int len;                 /* out: ids kept (prompt + generated, cut after the first EOS unless keep_eos) */
    int nfe;                 /* out: forward passes that included this row (CFG counts 2) */
    int steps;               /* out: sampling steps taken */
    uint64_t index;          /* global prompt index (trace "row", noise key) */
    smp_noise *noise;        /* this row's noise (file mode: shared by all rows) */
} smp_row;

/* ---- the diffusion sampler (diffusion.c) ---------------------------------- */
/* Sample n rows in place: rows[i].ids filled, len / nfe / steps set.  Trace
 * lines to o->trace.  The model must be reserved for (n, max canvas, ...) by
 * the call itself (it calls dl_model_reserve).  Returns 0 or -DL_EXIT_*. */
int smp_diffusion_batch(dl_model *m, const smp_opts *o, smp_row *rows, int n, char *err, size_t errlen);

/* Trace line helper: {"row":..,"step":..,"nfe":..,"block":..,"committed":[[pos,tok,conf],..]}. */
void smp_trace_line(FILE *f, uint64_t row, int step, int nfe, int block, const int32_t *pos,
                    const uint32_t *tok, const double *conf, int n);

/* Cut r after the first EOS at or after n_prompt (len = its index + 1, the
 * EOS kept, as ar.c); nothing unless o->keep_eos is 0 and eos_id >= 0. */
void smp_trim_eos(const smp_opts *o, smp_row *r);

/* Dream's commit count at step i of S over m masks (diffusion.c): int(m (1 -
 * s/t)) on its float32 grid linspace(1, eps, S + 1); m at the last step. */
int smp_dream_transfer(int m, int i, int S, double eps);

#endif
