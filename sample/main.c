/* sample/main.c — dllm-sample: prompts -> a `samples` stream.
 *
 *   dllm-sample -m CKPT -p 'Once upon a time' --gen-length 64 | dllm-tok -d -t CKPT
 *   dllm-tok -t CKPT prompts.jsonl | dllm-sample -m CKPT --batch 16 -o samples.msgpack.zst
 *
 * main = options -> device, checkpoint, tokenizer -> prompts (a `tokens`
 * stream, or -p TEXT...) in batches of --batch -> the diffusion sampler
 * (diffusion.c) or, for causal models, the AR sampler (ar.c) -> records
 * {ids, n_prompt, nfe, steps, carried keys} -> stats on stderr.
 *
 * A record's prompt is ids[0..n_prompt) when it carries n_prompt (the rest,
 * e.g. a reference response, is dropped), else all of ids.  Prompt i (global
 * index over the inputs, or the i-th -p) gets Philox noise keyed by (--seed,
 * i), so its sample does not depend on --batch, --shard or the device
 * scheduling; --noise FILE replaces that by the file's uniforms (test hook).
 *
 * Output header: kind samples, seed, the checkpoint's tokenizer
 * (tokenizer.json sha256 and vocab when the checkpoint has one; mask, eos,
 * pad, bos ids from config.json), the input header's history and extra keys.
 *
 * Does not: decode (dllm-tok -d), score (dllm-score).
 */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "ar.h"
#include "dl_chat.h"
#include "dl_ckpt.h"
#include "dl_log.h"
#include "dl_opts.h"
#include "dl_stream.h"
#include "dl_model_open.h"
#include "dl_tok.h"
#include "preset.h"
#include "sample.h"


static dl_common common;
static const char *o_adapter;
static const char *o_precision = "f32";
static int o_profile;   /* --profile: per-op device times at the end */
static const char *o_model, *o_device = "cpu", *o_remask, *o_alg, *o_suppress, *o_noise, *o_trace, *o_preset, *o_cache;
static const char *o_chat_tmpl;
static dl_strlist o_prompts;
static long long o_gen, o_steps, o_block, o_topk, o_seed, o_batch, o_threads;
static double o_temp, o_topp, o_cfg, o_alg_temp, o_eps, o_threshold;
static int o_keep_eos, o_causal, o_show, o_bos, o_shift, o_chat;

static const dl_opt OPTS[] = {
    { "model", 'm', DL_OPT_STR, &o_model, NULL, "CKPT", "checkpoint directory (config.json, model.safetensors, tokenizer.json) (required)", NULL },
    { "adapter", 0, DL_OPT_STR, &o_adapter, NULL, "DIR", "a PEFT LoRA adapter (dllm-train --lora) folded into CKPT's weights at load", NULL },
    { "prompt", 'p', DL_OPT_STRLIST, &o_prompts, NULL, "TEXT", "a prompt, tokenised with CKPT/tokenizer.json (instead of input streams)", NULL },
    { "bos", 0, DL_OPT_FLAG, &o_bos, NULL, NULL, "-p: start every prompt with the checkpoint's BOS token", NULL },
    { "chat", 0, DL_OPT_FLAG, &o_chat, NULL, NULL, "-p: wrap every prompt as one user turn + the assistant header, in CKPT's chat template "
      "(tokenizer_config.json's chat_template recognised as chatml, llada or llama3); presets never turn this on", NULL },
    { "chat-template", 0, DL_OPT_STR, &o_chat_tmpl, NULL, "NAME", "--chat with this template instead: chatml, llada, llama3, plain, auto "
      "(dllm-tok --help lists them); implies --chat", NULL },
    { "batch", 'b', DL_OPT_INT, &o_batch, "8", "N", "prompts sampled together (each row its own prompt length)", NULL },
    { "Sampling (ALGORITHMS.md 3)", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "preset", 0, DL_OPT_STR, &o_preset, NULL, "NAME", "a family's published defaults: llada, dream, fast-dllm (what each sets: below); any other flag overrides it", NULL },
    { "gen-length", 'n', DL_OPT_INT, &o_gen, "128", "G", "tokens generated after each prompt (0: pure infilling)", NULL },
    { "steps", 's', DL_OPT_INT, &o_steps, "0", "S", "diffusion steps over the whole canvas (0: G, or the mask count when infilling)", NULL },
    { "block-length", 0, DL_OPT_INT, &o_block, "0", "B", "semi-autoregressive block length; G % B == 0, S % (G/B) == 0 (0: G)", NULL },
    { "temperature", 't', DL_OPT_FLOAT, &o_temp, "0", "T", "0: argmax; > 0: Gumbel-max in float64", NULL },
    { "top-k", 0, DL_OPT_INT, &o_topk, "0", "K", "sample among the K most likely tokens (0: off)", NULL },
    { "top-p", 0, DL_OPT_FLOAT, &o_topp, "1", "P", "sample among the smallest set of tokens with mass >= P (1: off)", NULL },
    { "cfg", 0, DL_OPT_FLOAT, &o_cfg, "0", "W", "classifier-free guidance: un + (W+1)(cond - un), un = prompt masked (0: off)", NULL },
    { "remask", 0, DL_OPT_STR, &o_remask, "low-confidence", "R", "--alg llada: which positions to commit: low-confidence, random, margin, entropy", NULL },
    { "alg", 0, DL_OPT_STR, &o_alg, "llada", "A", "llada (LLaDA's schedule + --remask), or Dream's diffusion_generate algs: maskgit_plus, "
      "topk_margin, entropy (commit int(m(1 - s/t)) per step by p(x0), p1 - p2, -entropy of the tempered top-p/top-k "
      "distribution), origin (reveal each mask with probability 1 - s/t)", NULL },
    { "alg-temp", 0, DL_OPT_FLOAT, &o_alg_temp, "0", "X", "> 0: sample the committed positions from softmax(confidence / X) (Dream)", NULL },
    { "eps", 0, DL_OPT_FLOAT, &o_eps, "0.001", "E", "Dream's algs: time grid linspace(1, E, steps + 1)", NULL },
    { "threshold", 0, DL_OPT_FLOAT, &o_threshold, "0", "TAU", "Fast-dLLM: commit every position with confidence >= TAU (at least one); adaptive steps", NULL },
    { "cache", 0, DL_OPT_STR, &o_cache, "none", "C", "diffusion KV cache (Fast-dLLM): none; prefix: prompt + finished blocks cached, refreshed at each block start; dual: the masked suffix too; a block-diffusion checkpoint (dllm-train --block-diffusion): prefix or dual is its exact block cache (output == none)", NULL },
    { "suppress", 0, DL_OPT_STR, &o_suppress, NULL, "IDS", "comma-separated token ids never generated (the mask token never is)", NULL },
    { "seed", 0, DL_OPT_INT, &o_seed, "0", "S", "noise seed (per prompt: keyed by seed and prompt index)", NULL },
    { "keep-eos", 0, DL_OPT_FLAG, &o_keep_eos, NULL, NULL, "keep the whole canvas (default: cut after the first EOS after the prompt)", NULL },
    { "causal", 0, DL_OPT_FLAG, &o_causal, NULL, NULL, "sample left to right with a KV cache (default for checkpoints with objective causal)", NULL },
    { "shift-logits", 0, DL_OPT_FLAG, &o_shift, NULL, NULL, "position i is predicted from hidden i-1 (default: the checkpoint's shift_logits)", NULL },
    { "Runtime", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "device", 0, DL_OPT_STR, &o_device, "cpu", "cpu|cuda|ref", "compute device (ref: the slow readable reference backend, for checks)", NULL },
    { "profile", 0, DL_OPT_FLAG, &o_profile, NULL, NULL, "time every device op (each waits for the device, so sampling is slower) and print a table per op at the end", NULL },
    { "precision", 0, DL_OPT_STR, &o_precision, "f32", "f32|bf16", "compute precision: bf16 runs activations and matrix products in bf16 on a bf16 copy of the weights (cuda or ref)", NULL },
    { "threads", 'j', DL_OPT_THREADS, &o_threads, "0", "N", "CPU threads (0: OMP_NUM_THREADS, else the cores this process may use)", NULL },
    { "trace", 0, DL_OPT_STR, &o_trace, NULL, "FILE", "JSON Lines, one per step and row: {row, step, nfe, block, committed: [[pos, token, confidence]...]}", NULL },
    { "show", 0, DL_OPT_FLAG, &o_show, NULL, NULL, "redraw the first row's canvas on the terminal as it unmasks (never on stdout)", NULL },
    { "noise", 0, DL_OPT_STR, &o_noise, NULL, "FILE", "test hook: take the uniforms from FILE (raw little-endian float64, order in sample/sample.h)", NULL },
    DL_COMMON_OPTS(&common),
    DL_OPTS_END
};

static const char SYNOPSIS[] =
    "dllm-sample -m CKPT [options] [TOKENS...]   (no file or '-': stdin)\n"
    "       dllm-sample -m CKPT -p TEXT [-p TEXT...] [options]";
static const char DESCRIPTION[] =
    "Generates a continuation of every prompt with a masked-diffusion model (LLaDA's\n"
    "generate(): canvas [prompt | G masks], blocks, a per-step commit schedule, CFG,\n"
    "Fast-dLLM --threshold, Dream's diffusion_generate --alg maskgit_plus|topk_margin|entropy|origin),\n"
    "or left to right for causal models.\n"
    "A prompt holding mask tokens (dllm-tok keeps the mask token's text) is infilled:\n"
    "exactly its masks (and the G appended ones) are filled; blocks tile the whole canvas.\n"
    "Input: a `tokens` stream; a record's prompt is ids[0..n_prompt) when it has n_prompt.\n"
    "Output: a `samples` stream, records {ids = prompt + generated, n_prompt, nfe, steps,\n"
    "carried keys}; the ids end at the first EOS after the prompt (kept) unless --keep-eos.\n"
    "Decode with dllm-tok -d -t CKPT.  Stats on stderr: NFE, tokens/s, ms per step.";

typedef struct {
    dl_u32buf ids;         /* prompt */
    char *extra; size_t extra_len; uint32_t n_extra;   /* carried keys, packed */
    uint64_t index;
} prompt;

static const char *const KNOWN[] = { "ids", "n_prompt", "nfe", "steps", NULL };

static int parse_ids(const char *s, uint32_t **out, int *n, int64_t V) {
    *n = 0;
    *out = NULL;
    if (!s || !*s) return 0;
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    *out = malloc(cap * sizeof **out);
    if (!*out) return -1;
    const char *p = s;
    while (*p) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 0 || v >= V || (*end && *end != ',')) return -1;
        (*out)[(*n)++] = (uint32_t)v;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* Copy a record into a prompt: ids (cut at n_prompt), carried keys packed. */
static int take_record(const msgpack_object *rec, int64_t V, prompt *pr, char *err, size_t errlen) {
    int rc = dl_rec_ids(rec, "ids", &pr->ids, 0, V, err, errlen);
    if (rc < 0) return rc;
    uint64_t np = 0;
    if ((rc = dl_rec_uint(rec, "n_prompt", &np, 1, err, errlen)) < 0) return rc;
    if (rc == 0) {
        if (np > pr->ids.n)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %llu > %zu ids", (unsigned long long)np, pr->ids.n);
        pr->ids.n = np;
    }
    pr->n_extra = dl_rec_n_extra(rec, KNOWN);
    free(pr->extra);
    pr->extra = NULL;
    pr->extra_len = 0;
    if (pr->n_extra) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        if (dl_pack_extra(&pk, rec, KNOWN)) {
            msgpack_sbuffer_destroy(&sb);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        }
        pr->extra = sb.data;   /* ownership moves to pr (malloc'ed by msgpack) */
        pr->extra_len = sb.size;
    }
    return 0;
}

static int write_sample(dl_writer *w, const prompt *pr, const smp_row *r) {
    msgpack_packer *pk = dl_writer_packer(w);
    int e = msgpack_pack_map(pk, 4 + pr->n_extra);
    e |= dl_pack_str(pk, "ids");
    e |= dl_pack_ids(pk, r->ids, (size_t)r->len);
    e |= dl_pack_str(pk, "n_prompt");
    e |= msgpack_pack_uint32(pk, (uint32_t)r->n_prompt);
    e |= dl_pack_str(pk, "nfe");
    e |= msgpack_pack_uint32(pk, (uint32_t)r->nfe);
    e |= dl_pack_str(pk, "steps");
    e |= msgpack_pack_uint32(pk, (uint32_t)r->steps);
    if (pr->n_extra) e |= dl_writer_raw(w, pr->extra, pr->extra_len);
    if (!e) dl_writer_count(w);
    return e;
}

/* Option checks that need no model; fills the model-independent part of o. */
static void check_options(smp_opts *o) {
    memset(o, 0, sizeof *o);
    if (!o_model) dl_die(DL_EXIT_USAGE, "-m CKPT is required (see --help)");
    if (common.shards) dl_die(DL_EXIT_USAGE, "--shards is not supported by dllm-sample (use -o FILE)");
    if (o_gen < 0 || o_gen > INT_MAX / 2) dl_die(DL_EXIT_USAGE, "--gen-length must be >= 0");
    if (o_steps < 0 || o_steps > INT_MAX / 2) dl_die(DL_EXIT_USAGE, "--steps must be >= 0");
    if (o_block < 0 || o_block > INT_MAX / 2) dl_die(DL_EXIT_USAGE, "--block-length must be >= 0");
    if (o_batch < 1 || o_batch > 1 << 20) dl_die(DL_EXIT_USAGE, "--batch must be >= 1");
    if (!(o_temp >= 0)) dl_die(DL_EXIT_USAGE, "--temperature must be >= 0");
    if (o_topk < 0 || o_topk > INT_MAX) dl_die(DL_EXIT_USAGE, "--top-k must be >= 0");
    if (!(o_topp > 0 && o_topp <= 1)) dl_die(DL_EXIT_USAGE, "--top-p must be in (0, 1]");
    if (!(o_alg_temp >= 0)) dl_die(DL_EXIT_USAGE, "--alg-temp must be >= 0");
    if (!(o_eps > 0 && o_eps < 1)) dl_die(DL_EXIT_USAGE, "--eps must be in (0, 1)");
    if (!(o_threshold >= 0 && o_threshold <= 1))
        dl_die(DL_EXIT_USAGE, "--threshold must be in [0, 1]");
    if (o_seed < 0) dl_die(DL_EXIT_USAGE, "--seed must be >= 0");
    if (!isfinite(o_cfg) || o_cfg < 0) dl_die(DL_EXIT_USAGE, "--cfg must be >= 0");
    /* LLaDA's asserts, for generation (a block longer than G is one block;
     * infilling canvases tile their own blocks, see diffusion.c) */
    int G = (int)o_gen;
    int B = o_block && o_block < G ? (int)o_block : G;
    if (G > 0 && G % B) dl_die(DL_EXIT_USAGE, "--gen-length %d is not a multiple of --block-length %d", G, B);
    if (G > 0 && o_steps && o_steps % (G / B))
        dl_die(DL_EXIT_USAGE, "--steps %lld is not a multiple of the %d blocks (gen-length / block-length)", o_steps, G / B);
    if (!strcmp(o_remask, "low-confidence") || !strcmp(o_remask, "low_confidence")) o->remask = SMP_REMASK_LOWCONF;
    else if (!strcmp(o_remask, "random")) o->remask = SMP_REMASK_RANDOM;
    else if (!strcmp(o_remask, "margin")) o->remask = SMP_REMASK_MARGIN;
    else if (!strcmp(o_remask, "entropy")) o->remask = SMP_REMASK_ENTROPY;
    else dl_die(DL_EXIT_USAGE, "--remask '%s': expected low-confidence, random, margin or entropy", o_remask);
    if (!strcmp(o_cache, "none")) o->cache = SMP_CACHE_NONE;
    else if (!strcmp(o_cache, "prefix")) o->cache = SMP_CACHE_PREFIX;
    else if (!strcmp(o_cache, "dual")) o->cache = SMP_CACHE_DUAL;
    else dl_die(DL_EXIT_USAGE, "--cache '%s': expected none, prefix or dual", o_cache);
    if (!strcmp(o_alg, "llada")) o->alg = SMP_ALG_LLADA;
    else if (!strcmp(o_alg, "origin")) o->alg = SMP_ALG_ORIGIN;
    else if (!strcmp(o_alg, "maskgit_plus")) o->alg = SMP_ALG_MASKGIT_PLUS;
    else if (!strcmp(o_alg, "topk_margin")) o->alg = SMP_ALG_TOPK_MARGIN;
    else if (!strcmp(o_alg, "entropy")) o->alg = SMP_ALG_ENTROPY;
    else dl_die(DL_EXIT_USAGE, "--alg '%s': expected llada, maskgit_plus, topk_margin, entropy or origin", o_alg);
    /* Dream's confidence algs name their own confidence and schedule */
    if (o->alg != SMP_ALG_LLADA && o->alg != SMP_ALG_ORIGIN && o->remask != SMP_REMASK_LOWCONF)
        dl_die(DL_EXIT_USAGE, "--remask %s is for --alg llada (--alg %s names its confidence)", o_remask, o_alg);
    if (o->alg != SMP_ALG_LLADA && o->alg != SMP_ALG_ORIGIN && o_threshold > 0)
        dl_die(DL_EXIT_USAGE, "--threshold is for --alg llada (Dream's --alg %s has its own schedule)", o_alg);
    if (o->alg == SMP_ALG_ORIGIN && (o_threshold > 0 || o_alg_temp > 0))
        dl_die(DL_EXIT_USAGE, "--alg origin takes neither --threshold nor --alg-temp");
    if (o_threshold > 0 && o_alg_temp > 0) dl_die(DL_EXIT_USAGE, "--threshold and --alg-temp exclude each other");
    if (o_chat_tmpl) o_chat = 1;
    if (o_chat && !o_prompts.n)
        dl_die(DL_EXIT_USAGE, "--chat wraps -p prompts (render token streams with dllm-tok --chat-template)");
    if (o_chat_tmpl && !dl_chat_find(o_chat_tmpl, NULL))
        dl_die(DL_EXIT_USAGE, "--chat-template '%s': unknown (chatml, llada, llama3, plain, auto)", o_chat_tmpl);
    if (strcmp(o_device, "cpu") && strcmp(o_device, "cuda") && strcmp(o_device, "ref"))
        dl_die(DL_EXIT_USAGE, "--device '%s': expected cpu, cuda or ref", o_device);
    if (strcmp(o_precision, "f32") && strcmp(o_precision, "bf16"))
        dl_die(DL_EXIT_USAGE, "--precision '%s': expected f32 or bf16", o_precision);
    o->gen_length = G;
    o->steps = (int)o_steps;
    o->block_length = (int)o_block;
    o->temperature = o_temp;
    o->top_k = (int)o_topk;
    o->top_p = o_topp;
    o->cfg = o_cfg;
    o->alg_temp = o_alg_temp;
    o->eps = o_eps;
    o->threshold = o_threshold;
    o->keep_eos = o_keep_eos;
    dl_verbose("sampling:%s%s --gen-length %d --steps %d --block-length %d --temperature %g --top-k %d --top-p %g "
               "--cfg %g --alg %s --remask %s --alg-temp %g --eps %g --threshold %g",
               o_preset ? " --preset " : "", o_preset ? o_preset : "", G, o->steps, o->block_length, o_temp,
               o->top_k, o_topp, o_cfg, o_alg, o_remask, o_alg_temp, o_eps, o_threshold);
}

/* The options that need the checkpoint's config. */
static void model_options(smp_opts *o, const dl_config *c, int causal) {
    o->mask_id = c->mask_token_id >= 0 ? (uint32_t)c->mask_token_id : UINT32_MAX;
    o->eos_id = c->eos_token_id;
    o->shift_logits = o_shift || c->shift_logits;
    o->bd3 = causal ? 0 : c->block_diffusion;
    if (o->bd3 > 0) {   /* a block-diffusion checkpoint: its blocks, block-causal attention */
        if (o->block_length && o->block_length != o->bd3)
            dl_die(DL_EXIT_USAGE, "--block-length %d: this checkpoint was trained with block diffusion, blocks of %d",
                   o->block_length, o->bd3);
        if (o->shift_logits) dl_die(DL_EXIT_USAGE, "block diffusion checkpoints do not shift logits");
        o->block_length = o->bd3;
    }
    uint32_t *sup = NULL;
    int nsup = 0;
    if (parse_ids(o_suppress, &sup, &nsup, c->vocab_size))
        dl_die(DL_EXIT_USAGE, "--suppress '%s': expected comma-separated ids < %d", o_suppress, c->vocab_size);
    o->suppress = sup;
    o->n_suppress = nsup;
    if (causal && (o_cfg > 0 || o_threshold > 0 || o->alg != SMP_ALG_LLADA || o->remask != SMP_REMASK_LOWCONF))
        dl_warn("causal sampling ignores --cfg, --threshold, --alg and --remask");
}

/* Open the input stream (unless -p) and fill the output header oh: kind
 * samples, the input's history and keys, the checkpoint's tokenizer. */
static dl_reader *open_input(char **paths, int npaths, const dl_config *c, const dl_tok *tok, const char *tpath,
                             uint64_t *lo, uint64_t *hi, dl_header *oh) {
    char err[1024];
    dl_reader *rd = NULL;
    int rc, is_stdin = !npaths || (npaths == 1 && !strcmp(paths[0], "-"));
    *lo = 0;
    *hi = UINT64_MAX;
    if (!o_prompts.n) {
        if ((rc = dl_reader_open(&rd, paths, npaths, err, sizeof err)) ||
            (rc = dl_reader_peek_header(rd, err, sizeof err)) ||
            (rc = dl_reader_expect(rd, 1u << DL_KIND_TOKENS, err, sizeof err)) ||
            (rc = dl_reader_slice(rd, is_stdin, common.shard_i, common.shard_n, common.shard_given, lo, hi, err, sizeof err)))
            dl_die(-rc, "%s", err);
        const dl_header *ih = dl_reader_header(rd);
        if (ih->has_tok && ih->tok.vocab_size > c->vocab_size)
            dl_die(DL_EXIT_DATA, "input vocab %lld > the model's %d", (long long)ih->tok.vocab_size, c->vocab_size);
        if (tok && ih->has_tok && ih->tok.sha256[0] && strcmp(ih->tok.sha256, dl_tok_sha256(tok)))
            dl_warn("the input was tokenised with another tokenizer than %s", tpath);
        if (dl_header_copy(oh, ih)) dl_die(DL_EXIT_IO, "out of memory");
        oh->kind = DL_KIND_SAMPLES;
    } else {
        dl_header_init(oh, DL_KIND_SAMPLES);
    }
    oh->has_tok = 1;
    dl_tokinfo_clear(&oh->tok);
    if (tok) {
        snprintf(oh->tok.sha256, sizeof oh->tok.sha256, "%s", dl_tok_sha256(tok));
        oh->tok.vocab_size = dl_tok_vocab_size(tok);
    } else {
        oh->tok.vocab_size = c->vocab_size;
    }
    oh->tok.mask_id = c->mask_token_id;
    oh->tok.eos_id = c->eos_token_id;
    oh->tok.pad_id = c->pad_token_id;
    oh->tok.bos_id = c->bos_token_id;
    oh->seq_len = -1;
    oh->has_seed = 1;
    oh->seed = (uint64_t)o_seed;
    return rd;
}

/* One batch's prompts and canvases, and where they come from. */
typedef struct {
    const dl_config *c;
    const smp_opts *o;
    dl_tok *tok;
    const dl_chat *chat;          /* --chat: -p prompts become one user turn, or NULL */
    dl_reader *rd;                /* NULL with -p */
    uint64_t lo, hi, next_p;      /* --shard slice of record indices; next -p */
    int causal, nb, warned_len;
    prompt *pr;                   /* (nb) */
    smp_row *rows;                /* (nb) */
    smp_noise **nz, *file_noise;  /* (nb) Philox streams, or the --noise file */
    dl_u32buf *canv;              /* (nb) canvases */
} batch;

/* Read the next prompt into p: -p text or a record.  1 = got one, 0 = end
 * of input, < 0 = error (err set). */
static int next_prompt(batch *bt, prompt *p, char *err, size_t errlen) {
    int rc;
    if (o_prompts.n) {
        if (bt->next_p == o_prompts.n) return 0;
        const char *text = o_prompts.v[bt->next_p];
        p->ids.n = 0;
        if (o_bos) {
            if (bt->c->bos_token_id < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--bos: %s has no bos_token_id", o_model);
            dl_u32buf_push(&p->ids, (uint32_t)bt->c->bos_token_id);
        }
        if (bt->chat) {   /* one user turn + the assistant header (dl_chat.h) */
            dl_chat_msg msg = { "user", 4, text, strlen(text) };
            dl_strbuf pb = { 0 }, rb = { 0 };
            rc = dl_chat_render(bt->chat, &msg, 1, &pb, &rb, err, errlen);
            if (!rc) rc = dl_tok_encode(bt->tok, pb.p, pb.n, &p->ids, err, errlen);
            dl_strbuf_free(&pb);
            dl_strbuf_free(&rb);
            if (rc) return rc;
        } else if ((rc = dl_tok_encode(bt->tok, text, strlen(text), &p->ids, err, errlen))) return rc;
        p->n_extra = 0;
        p->index = bt->next_p++;
        return 1;
    }
    for (;;) {
        const msgpack_object *rec;
        rc = dl_reader_next(bt->rd, &rec, err, errlen);
        if (rc <= 0) return rc;
        uint64_t idx = dl_reader_index(bt->rd);
        if (idx < bt->lo) continue;
        if (idx >= bt->hi) return 0;
        if ((rc = take_record(rec, bt->c->vocab_size, p, err, errlen)) < 0) {
            dl_err_prefix(err, errlen, "%s", dl_reader_where(bt->rd));
            return rc;
        }
        p->index = idx;
        return 1;
    }
}

/* Fill up to nb rows; returns the count (0: input ended) or < 0 on error. */
static int fill_batch(batch *bt, char *err, size_t errlen) {
    int n = 0, G = bt->o->gen_length;
    for (; n < bt->nb; n++) {
        prompt *p = &bt->pr[n];
        int rc = next_prompt(bt, p, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0) break;
        if (bt->causal)
            for (size_t i = 0; i < p->ids.n; i++)
                if (p->ids.p[i] == bt->o->mask_id)
                    return dl_seterr(err, errlen, -DL_EXIT_DATA, "prompt %llu holds the mask token: infilling needs a diffusion model",
                                     (unsigned long long)p->index);
        smp_row *r = &bt->rows[n];
        if (dl_u32buf_reserve(&bt->canv[n], p->ids.n + (size_t)G + 1)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        if (p->ids.n) memcpy(bt->canv[n].p, p->ids.p, p->ids.n * sizeof *p->ids.p);
        if (!bt->warned_len && (int64_t)p->ids.n + G > bt->c->max_seq_len) {
            dl_warn("prompt %llu: %zu + %d tokens exceed the model's max_position_embeddings %d "
                    "(sampled anyway; RoPE extrapolates)", (unsigned long long)p->index, p->ids.n, G, bt->c->max_seq_len);
            bt->warned_len = 1;
        }
        r->ids = bt->canv[n].p;
        r->n_prompt = (int)p->ids.n;
        r->index = p->index;
        if (bt->file_noise) r->noise = bt->file_noise;
        else { smp_noise_rekey(bt->nz[n], (uint64_t)o_seed, p->index); r->noise = bt->nz[n]; }
    }
    return n;
}

static void batch_alloc(batch *bt) {
    int nb = bt->nb;
    char err[1024];
    if (o_noise) {
        int rc = smp_noise_file(&bt->file_noise, o_noise, err, sizeof err);
        if (rc) dl_die(-rc, "%s", err);
    }
    bt->pr = calloc((size_t)nb, sizeof *bt->pr);
    bt->rows = calloc((size_t)nb, sizeof *bt->rows);
    bt->nz = calloc((size_t)nb, sizeof *bt->nz);
    bt->canv = calloc((size_t)nb, sizeof *bt->canv);
    if (!bt->pr || !bt->rows || !bt->nz || !bt->canv) dl_die(DL_EXIT_IO, "out of memory");
    for (int b = 0; b < nb; b++)
        if (!bt->file_noise && smp_noise_philox(&bt->nz[b], (uint64_t)o_seed, 0)) dl_die(DL_EXIT_IO, "out of memory");
}

static void batch_free(batch *bt) {
    for (int b = 0; b < bt->nb; b++) {
        dl_u32buf_free(&bt->pr[b].ids);
        free(bt->pr[b].extra);
        dl_u32buf_free(&bt->canv[b]);
        smp_noise_free(bt->nz[b]);
    }
    smp_noise_free(bt->file_noise);
    free(bt->pr); free(bt->rows); free(bt->nz); free(bt->canv);
}

/* --preset NAME: parse again with the preset's options first (preset.h), so
 * that every flag of the command line, wherever it stands, overrides them.
 * What the first parse accumulated (repeatable -p, -v counts, positionals)
 * is dropped first; flags are set again by the second parse. */
static void apply_preset(int argc, char **argv, char ***paths, int *npaths) {
    char err[1024];
    const smp_preset *p = smp_preset_find(o_preset);
    if (!p) dl_die(DL_EXIT_USAGE, "--preset '%s': unknown (known: %s)", o_preset, smp_preset_names());
    int n;
    char **v = smp_preset_argv(p, argc, argv, &n);
    if (!v) dl_die(DL_EXIT_IO, "out of memory");
    dl_strlist_free(&o_prompts);
    memset(&common, 0, sizeof common);
    free(*paths);
    *paths = NULL;
    int rc = dl_opts_parse(OPTS, n, v, paths, npaths, err, sizeof err);
    if (rc < 0) dl_die(DL_EXIT_USAGE, "--preset %s: %s", p->name, err);
    free(v);   /* the options point into argv and the preset table, not into v */
}

/* --profile: the per-op table */
static void print_profile(const dl_model *m) {
    char tab[8192];
    dl_model_profile_table(m, tab, sizeof tab);
    dl_info("device time per op (--profile):");
    dl_info_lines(tab);
}

int main(int argc, char **argv) {
    char err[1024];
    char **paths = NULL;
    int npaths = 0;
    dl_prog_init("dllm-sample", argc, argv);
    int rc = dl_opts_parse(OPTS, argc, argv, &paths, &npaths, err, sizeof err);
    if (rc < 0) dl_die(DL_EXIT_USAGE, "%s", err);
    if (o_preset) apply_preset(argc, argv, &paths, &npaths);
    if (common.help || common.version) free(paths);   /* the only allocation so far */
    if (common.help) {
        char *presets = smp_preset_help();
        if (!presets) dl_die(DL_EXIT_IO, "out of memory");
        rc = dl_opts_help_epilog(OPTS, SYNOPSIS, DESCRIPTION, presets);
        free(presets);
        return rc;
    }
    if (common.version) { printf("dllm-sample %s\n", DL_VERSION); return 0; }
    if (dl_common_finish(&common, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);
    if (o_prompts.n && npaths) dl_die(DL_EXIT_USAGE, "give either -p TEXT or input streams, not both");
    smp_opts o;
    check_options(&o);

    /* ---- device, checkpoint, tokenizer; input and output */
    dl_model m;
    dl_infer_info mi;
    dl_infer_opts mo = { .dir = o_model, .device = o_device, .threads = (int)o_threads, .force_causal = o_causal,
                         .mask_id = -1, .what = "sampling", .adapter = o_adapter,
                         .bf16 = !strcmp(o_precision, "bf16"), .profile = o_profile };
    if ((rc = dl_model_open_infer(&m, &mi, &mo, err, sizeof err))) dl_die(-rc, "%s", err);
    if ((o_prompts.n || o_show) && !mi.tok) dl_die(DL_EXIT_USAGE, "%s has no tokenizer.json (needed by %s)", o_model, o_prompts.n ? "-p" : "--show");
    model_options(&o, &m.cfg, mi.causal);
    batch bt = { .c = &m.cfg, .o = &o, .tok = mi.tok, .causal = mi.causal, .nb = (int)o_batch };
    if (o_chat) {
        if (o_chat_tmpl) bt.chat = dl_chat_find(o_chat_tmpl, mi.tok);
        else if ((rc = dl_chat_checkpoint(mi.tok_path, mi.tok, &bt.chat, err, sizeof err)))
            dl_die(-rc, "--chat: %s; name one with --chat-template NAME", err);
        dl_verbose("--chat: template %s", dl_chat_name(bt.chat));
    }
    dl_header oh;
    bt.rd = open_input(paths, npaths, &m.cfg, mi.tok, mi.tok_path, &bt.lo, &bt.hi, &oh);
    dl_out_opts oo;
    dl_common_out_opts(&common, &oo);
    dl_writer *w = NULL;
    if ((rc = dl_writer_open(&w, common.output, &oo, err, sizeof err))) dl_die(-rc, "%s", err);
    if (dl_writer_header(w, &oh)) { dl_writer_error(w, err, sizeof err); dl_writer_abort(w); dl_die(DL_EXIT_IO, "%s", err); }
    dl_header_free(&oh);
    FILE *trace = NULL;
    if (o_trace && !(trace = fopen(o_trace, "w"))) { dl_writer_abort(w); dl_die(DL_EXIT_IO, "%s: cannot open for writing", o_trace); }
    o.trace = trace;
    show *sh = NULL;
    if (o_show && show_open(&sh, mi.tok, o.mask_id, stderr)) { dl_writer_abort(w); dl_die(DL_EXIT_IO, "out of memory"); }
    o.show = sh;
    batch_alloc(&bt);

    /* ---- loop over batches */
    uint64_t n_prompts = 0, n_gen = 0, n_nfe = 0, n_iters = 0;
    double t_sample = 0;
    dl_progress prog;
    dl_progress_init(&prog, common.progress, bt.rd ? dl_reader_total_bytes(bt.rd) : 0);
    int code = 0, n;
    while (!code && (n = fill_batch(&bt, err, sizeof err)) > 0) {
        double t0 = dl_now();
        rc = mi.causal ? ar_sample_batch(&m, &o, bt.rows, n, err, sizeof err)
                       : smp_diffusion_batch(&m, &o, bt.rows, n, err, sizeof err);
        t_sample += dl_now() - t0;
        if (rc) { code = -rc; break; }
        int it = 0;   /* rows step in lockstep: the batch ran as many iterations as its longest row */
        for (int b = 0; b < n && !code; b++) {
            if (write_sample(w, &bt.pr[b], &bt.rows[b]) && !(code = -dl_writer_error(w, err, sizeof err))) code = DL_EXIT_IO;
            n_prompts++;
            n_gen += (uint64_t)(bt.rows[b].len - bt.rows[b].n_prompt);
            n_nfe += (uint64_t)bt.rows[b].nfe;
            if (bt.rows[b].steps > it) it = bt.rows[b].steps;
        }
        n_iters += (uint64_t)it;
        dl_progress_update(&prog, n_prompts, n_gen, bt.rd ? dl_reader_raw_bytes(bt.rd) : 0);
    }
    if (!code && n < 0) code = -n;
    dl_progress_end(&prog);
    if (sh) show_close(sh);
    if (trace && fclose(trace) && !code) { code = DL_EXIT_IO; snprintf(err, sizeof err, "%s: write error", o_trace); }
    if (!code && (rc = dl_writer_close(w, err, sizeof err))) code = -rc;
    else if (code) dl_writer_abort(w);
    if (code) dl_die(code, "%s", err);
    if (!n_prompts) dl_warn("no prompts in the input");
    dl_info("%llu prompts, %llu tokens generated, NFE %llu (%.1f per prompt), %.1f tokens/s, %.2f ms/step",
            (unsigned long long)n_prompts, (unsigned long long)n_gen, (unsigned long long)n_nfe,
            n_prompts ? (double)n_nfe / n_prompts : 0.0, t_sample > 0 ? n_gen / t_sample : 0.0,
            n_iters ? 1000.0 * t_sample / (double)n_iters : 0.0);
    if (o_profile) print_profile(&m);

    batch_free(&bt);
    free((void *)o.suppress); free(paths);
    dl_strlist_free(&o_prompts);
    if (bt.rd) dl_reader_close(bt.rd);
    if (mi.tok) dl_tok_free(mi.tok);
    dl_model_close(&m);
    return 0;
}
