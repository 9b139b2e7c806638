/* score/main.c — dllm-score: likelihoods of token streams, and benchmark tasks.
 *
 *   dllm-score -m CKPT --mc 16 rows.valid.msgpack.zst -o scores.msgpack --summary s.json
 *   dllm-score -m CKPT --causal rows.valid.msgpack.zst          (exact, AR models)
 *   dllm-score -m CKPT --task piqa.jsonl --delimiter '\nAnswer: '
 *
 * Streams (`tokens` or `rows`), one output record per input record:
 *   no n_prompt (or 0): the whole sequence is scored (ids minus the n_pad
 *     trailing padding positions of SFT rows): diffusion = Monte-Carlo ELBO
 *     (sc_elbo: nll is an upper bound on -log p, in expectation), causal =
 *     exact chain rule over tokens 1..n-1 (the first token is context);
 *   n_prompt > 0: the response ids[n_prompt..n-n_pad) given the prompt:
 *     nll = -sc_cond_loglik (LLaDA's stratified estimator for diffusion, a
 *     bound estimate; exact for causal), n_tokens = response length.
 * Record i (global 0-based index over the inputs, plus the header's
 * index_base) draws its Monte-Carlo noise keyed by (--seed, i), so scores do
 * not depend on --batch (up to fp32 rounding), --shard or the device; with
 * --rng-key content (the lm-eval bridge) by (--seed, sc_content_key(prompt
 * ids, or all scored ids without a prompt)) instead, so a record scores the
 * same at any position.  --task keys by content unless --rng-key index.
 * Output: a `scores` stream: {nll (float64 nats), n_tokens, se (float64, the
 * standard error of nll; 0 when exact, NaN with --mc 1), n_prompt (when
 * conditional), every other key of the input record except ids / docs /
 * n_pad; with --greedy also `greedy` (bool, sc_greedy_match) on conditional
 * records}.  Summary (stderr, and --summary FILE as JSON): records, tokens,
 * nll, nats/token = sum nll / sum tokens, bits/token, perplexity (bound for
 * diffusion) = exp(nats/token), its standard error sqrt(sum se^2) / tokens
 * (records independent), sequences/s.
 * --task FILE.jsonl hands over to task.c (task_run).
 *
 * Does not: tokenize text (dllm-tok), batch several records into one forward.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dl_io.h"
#include "dl_log.h"
#include "dl_opts.h"
#include "dl_stream.h"
#include "score.h"


static dl_common common;
static const char *o_adapter;
static const char *o_precision = "f32";
static const char *o_model, *o_device = "cpu", *o_summary, *o_task, *o_delim, *o_format, *o_rng_key;
static long long o_mc, o_batch, o_seed, o_threads, o_mask_id = -1, o_limit;
static double o_cfg, o_eps;
static int o_causal, o_shift, o_bos, o_no_strip, o_greedy;
static int key_content;   /* --rng-key content (streams) */

static const dl_opt OPTS[] = {
    { "model", 'm', DL_OPT_STR, &o_model, NULL, "CKPT", "checkpoint directory (config.json, model.safetensors, tokenizer.json) (required)", NULL },
    { "adapter", 0, DL_OPT_STR, &o_adapter, NULL, "DIR", "a PEFT LoRA adapter (dllm-train --lora) folded into CKPT's weights at load", NULL },
    { "Estimators (ALGORITHMS.md 4)", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "mc", 0, DL_OPT_INT, &o_mc, "128", "N", "Monte-Carlo samples per record (ELBO) or per answer (conditional); >= 1", NULL },
    { "batch", 'b', DL_OPT_INT, &o_batch, "0", "N", "rows per forward (0: all --mc rows of a record); conditional: also LLaDA's stratification group (batch_size)", NULL },
    { "seed", 's', DL_OPT_INT, &o_seed, "0", "S", "noise seed (draws keyed by seed and --rng-key)", NULL },
    { "rng-key", 0, DL_OPT_STR, &o_rng_key, NULL, "K", "what keys a record's draws: index (its position; streams' default) or content (a hash of its prompt ids, all ids without one: the same at any position; --task's default)", NULL },
    { "eps", 0, DL_OPT_FLOAT, &o_eps, "0.001", "E", "ELBO: t = E + (1-E) u, u ~ U[0,1)", NULL },
    { "cfg", 0, DL_OPT_FLOAT, &o_cfg, "0", "W", "conditional: classifier-free guidance un + (W+1)(cond - un), un = prompt masked (0: off)", NULL },
    { "causal", 0, DL_OPT_FLAG, &o_causal, NULL, NULL, "exact chain-rule log-likelihood (default for checkpoints with objective causal)", NULL },
    { "shift-logits", 0, DL_OPT_FLAG, &o_shift, NULL, NULL, "diffusion: token i is read at hidden i-1 (default: the checkpoint's shift_logits)", NULL },
    { "mask-id", 0, DL_OPT_INT, &o_mask_id, NULL, "ID", "mask token id (default: the checkpoint's mask_token_id)", NULL },
    { "summary", 0, DL_OPT_STR, &o_summary, NULL, "FILE", "write the summary (or the task results) as JSON to FILE", NULL },
    { "greedy", 0, DL_OPT_FLAG, &o_greedy, NULL, NULL, "records with n_prompt: also write `greedy` (the response is the model's greedy prediction; lm-eval's is_greedy)", NULL },
    { "Tasks", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "task", 0, DL_OPT_STR, &o_task, NULL, "FILE", "score a JSONL multiple-choice / LAMBADA task file instead of streams", NULL },
    { "delimiter", 0, DL_OPT_STR, &o_delim, NULL, "STR", "between query and choice (escapes \\n \\t; ARC/PIQA: '\\nAnswer: '; default ' ')", NULL },
    { "task-format", 0, DL_OPT_STR, &o_format, "auto", "F", "auto, mc (query/choices/gold), schema (context_options/continuation/gold), lambada", NULL },
    { "limit", 0, DL_OPT_INT, &o_limit, "0", "N", "score only the first N items (0: all)", NULL },
    { "bos", 0, DL_OPT_FLAG, &o_bos, NULL, NULL, "put the BOS token before every context", NULL },
    { "no-strip", 0, DL_OPT_FLAG, &o_no_strip, NULL, NULL, "keep whitespace around the task's text fields", NULL },
    { "Runtime", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "device", 0, DL_OPT_STR, &o_device, "cpu", "cpu|cuda|ref", "compute device (ref: the slow readable reference backend, for checks)", NULL },
    { "precision", 0, DL_OPT_STR, &o_precision, "f32", "f32|bf16", "compute precision: bf16 runs activations and matrix products in bf16 on a bf16 copy of the weights (cuda or ref)", NULL },
    { "threads", 'j', DL_OPT_THREADS, &o_threads, "0", "N", "CPU threads (0: OMP_NUM_THREADS, else the cores this process may use)", NULL },
    DL_COMMON_OPTS(&common),
    DL_OPTS_END
};

static const char SYNOPSIS[] =
    "dllm-score -m CKPT [options] [TOKENS|ROWS|SAMPLES...]   (no file or '-': stdin)\n"
    "       dllm-score -m CKPT --task FILE.jsonl [options]";
static const char DESCRIPTION[] =
    "Scores every record of a `tokens`, `rows` or `samples` stream with a diffusion model (Monte-Carlo,\n"
    "--mc samples, seeded per record) or exactly with a causal model (--causal):\n"
    "  no n_prompt: the whole sequence (minus n_pad padding): diffusion ELBO = mean over\n"
    "    samples t ~ U(eps,1), positions masked with probability t, of sum_masked ce / t;\n"
    "    causal: sum over tokens 1..n-1 of -log p(token | prefix);\n"
    "  n_prompt > 0: -log p(response | prompt), LLaDA's stratified estimator (--cfg);\n"
    "    dllm-sample's output scored by another model (--causal) is the generative perplexity.\n"
    "Block-diffusion checkpoints are refused (full attention is not their likelihood).\n"
    "Output: a `scores` stream {nll (nats, an upper bound for diffusion), n_tokens, se,\n"
    "n_prompt, carried keys}; summary on stderr and --summary FILE: nats/token, bits/token,\n"
    "perplexity (bound), standard error, records, tokens.\n"
    "--task FILE.jsonl: multiple choice (acc, acc_norm) or LAMBADA (greedy match, ll).";

static const char *const KNOWN[] = { "ids", "docs", "n_pad", "n_prompt", "nll", "n_tokens", "se", "greedy", NULL };

typedef struct {
    uint64_t records, tokens, cond;
    double nll, var;            /* sums of nll and se^2 */
    int se_unknown;
} totals;

static int write_summary(const char *path, json_t *j, char *err, size_t errlen) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!s) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    dl_out_opts oo = { 0, 0, 1, 0 };
    dl_out *o = NULL;
    int rc = dl_out_open(&o, path, &oo, err, errlen);
    if (!rc && (rc = dl_out_write(o, s, strlen(s), err, errlen)) == 0) rc = dl_out_write(o, "\n", 1, err, errlen);
    if (!rc) rc = dl_out_close(o, err, errlen);
    else if (o) dl_out_abort(o);
    free(s);
    return rc;
}

/* Score one record and write its scores record.  0, <0 (err set), or 1 on a
 * write error (the writer holds the message). */
static int score_one(sc_ctx *c, const msgpack_object *rec, uint64_t index, int64_t V, dl_u32buf *ids,
                     msgpack_packer *pk, totals *tot, char *err, size_t errlen) {
    int rc = dl_rec_ids(rec, "ids", ids, 0, V, err, errlen);
    if (rc < 0) return rc;
    uint64_t np = 0, npad = 0;
    if ((rc = dl_rec_uint(rec, "n_prompt", &np, 1, err, errlen)) < 0) return rc;
    if ((rc = dl_rec_uint(rec, "n_pad", &npad, 1, err, errlen)) < 0) return rc;
    size_t n = ids->n;
    if (npad > n) return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_pad %llu > %zu ids", (unsigned long long)npad, n);
    n -= npad;
    if (np > n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %llu > %zu ids (without padding)", (unsigned long long)np, n);
    if (n > (size_t)sc_max_len(c))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%zu ids: longer than the model's max_position_embeddings %d",
                         n, sc_max_len(c));
    if (key_content) index = sc_content_key(ids->p, np > 0 ? np : n);
    double nll, se;
    int nt, greedy = -1;   /* -1: not computed */
    if (np > 0) {
        if (np == n) return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %llu leaves no response to score", (unsigned long long)np);
        double ll;
        if ((rc = sc_cond_loglik(c, ids->p, (int)np, ids->p + np, (int)(n - np), index, &ll, &se, err, errlen)))
            return rc;
        nll = -ll;
        nt = (int)(n - np);
        tot->cond++;
        if (o_greedy &&
            (rc = sc_greedy_match(c, ids->p, (int)np, ids->p + np, (int)(n - np), &greedy, err, errlen)))
            return rc;
    } else if ((rc = sc_elbo(c, ids->p, (int)n, index, &nll, &se, &nt, err, errlen))) {
        return rc;
    }
    tot->records++;
    tot->tokens += (uint64_t)nt;
    tot->nll += nll;
    if (isnan(se)) tot->se_unknown = 1;
    else tot->var += se * se;

    int e = msgpack_pack_map(pk, 3 + (np > 0) + (greedy >= 0) + dl_rec_n_extra(rec, KNOWN));
    e |= dl_pack_str(pk, "nll");
    e |= msgpack_pack_double(pk, nll);
    e |= dl_pack_str(pk, "n_tokens");
    e |= msgpack_pack_uint32(pk, (uint32_t)nt);
    e |= dl_pack_str(pk, "se");
    e |= msgpack_pack_double(pk, se);
    if (np > 0) { e |= dl_pack_str(pk, "n_prompt"); e |= msgpack_pack_uint64(pk, np); }
    if (greedy >= 0) { e |= dl_pack_str(pk, "greedy"); e |= greedy ? msgpack_pack_true(pk) : msgpack_pack_false(pk); }
    e |= dl_pack_extra(pk, rec, KNOWN);
    return e ? 1 : 0;
}

static int run_streams(sc_ctx *c, char **paths, int npaths, char *err, size_t errlen) {
    int rc, is_stdin = !npaths || (npaths == 1 && !strcmp(paths[0], "-"));
    dl_reader *rd = NULL;
    uint64_t lo = 0, hi = UINT64_MAX, index_base = 0;
    if ((rc = dl_reader_open(&rd, paths, npaths, err, errlen)) ||
        (rc = dl_reader_peek_header(rd, err, errlen)) ||
        (rc = dl_reader_expect(rd, 1u << DL_KIND_TOKENS | 1u << DL_KIND_ROWS | 1u << DL_KIND_SAMPLES, err, errlen)) ||
        (rc = dl_reader_slice(rd, is_stdin, common.shard_i, common.shard_n, common.shard_given, &lo, &hi, err, errlen))) {
        if (rd) dl_reader_close(rd);
        return rc;
    }
    const dl_header *ih = dl_reader_header(rd);
    const dl_config *cf = sc_config(c);
    dl_tok *tok = sc_tok(c);
    dl_header_get_extra_uint(ih, "index_base", &index_base);
    if (ih->has_tok && ih->tok.vocab_size > cf->vocab_size) {
        /* format before closing: ih belongs to rd */
        dl_seterr(err, errlen, -DL_EXIT_DATA, "input vocab %lld > the model's %d", (long long)ih->tok.vocab_size,
                  cf->vocab_size);
        dl_reader_close(rd);
        return -DL_EXIT_DATA;
    }
    if (tok && ih->has_tok && ih->tok.sha256[0] && strcmp(ih->tok.sha256, dl_tok_sha256(tok)))
        dl_warn("the input was tokenised with another tokenizer than %s/tokenizer.json", o_model);
    dl_header oh;
    if (dl_header_copy(&oh, ih)) { dl_reader_close(rd); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    oh.kind = DL_KIND_SCORES;
    oh.has_seed = 1;
    oh.seed = (uint64_t)o_seed;
    if (!sc_is_causal(c) && dl_header_set_extra_uint(&oh, "mc", (uint64_t)o_mc, err, errlen)) {
        dl_header_free(&oh);
        dl_reader_close(rd);
        return -DL_EXIT_DATA;
    }
    dl_out_opts oo;
    dl_common_out_opts(&common, &oo);
    dl_writer *w = NULL;
    if ((rc = dl_writer_open(&w, common.output, &oo, err, errlen))) { dl_header_free(&oh); dl_reader_close(rd); return rc; }
    if (dl_writer_header(w, &oh)) {
        rc = dl_writer_error(w, err, errlen);
        dl_writer_abort(w);
        dl_header_free(&oh);
        dl_reader_close(rd);
        return rc ? rc : -DL_EXIT_IO;
    }
    dl_header_free(&oh);

    dl_progress pg;
    dl_progress_init(&pg, common.progress, dl_reader_total_bytes(rd));
    totals tot = { 0 };
    dl_u32buf ids = { 0 };
    double t0 = dl_now();
    int64_t V = cf->vocab_size;
    for (;;) {
        const msgpack_object *rec;
        rc = dl_reader_next(rd, &rec, err, errlen);
        if (rc <= 0) break;
        uint64_t idx = dl_reader_index(rd);
        if (idx < lo) continue;
        if (idx >= hi) { rc = 0; break; }
        rc = score_one(c, rec, index_base + idx, V, &ids, dl_writer_packer(w), &tot, err, errlen);
        if (rc == 1) { rc = dl_writer_error(w, err, errlen); if (!rc) rc = -DL_EXIT_IO; break; }
        if (rc < 0) { dl_err_prefix(err, errlen, "%s", dl_reader_where(rd)); break; }
        dl_writer_count(w);
        dl_progress_update(&pg, tot.records, tot.tokens, dl_reader_raw_bytes(rd));
    }
    double secs = dl_now() - t0;
    dl_progress_end(&pg);
    dl_u32buf_free(&ids);
    dl_reader_close(rd);
    if (!rc) rc = dl_writer_close(w, err, errlen);
    else dl_writer_abort(w);
    if (rc) return rc;

    int causal = sc_is_causal(c);
    double npt = tot.tokens ? tot.nll / (double)tot.tokens : NAN;
    double se = tot.tokens && !tot.se_unknown ? sqrt(tot.var) / (double)tot.tokens : NAN;
    double ppl = exp(npt), rps = secs > 0 ? tot.records / secs : 0;
    if (!tot.records) dl_warn("no records in the input");
    char sebuf[64] = "unknown (--mc 1)";
    if (!isnan(se)) snprintf(sebuf, sizeof sebuf, "%.4f", se);
    dl_info("%llu records (%llu conditional), %llu tokens: %.4f nats/token (se %s), %.4f bits/token, perplexity %s %.4f "
            "[%s]; %.1f sequences/s",
            (unsigned long long)tot.records, (unsigned long long)tot.cond, (unsigned long long)tot.tokens, npt, sebuf,
            npt / M_LN2, causal ? "=" : "<=", ppl, causal ? "exact, causal" : "Monte-Carlo bound", rps);
    if (o_summary) {
        json_t *j = json_object();
        json_object_set_new(j, "model", json_string(o_model));
        json_object_set_new(j, "estimator", json_string(causal ? "exact" : "elbo"));
        json_object_set_new(j, "causal", json_boolean(causal));
        json_object_set_new(j, "mc", json_integer(causal ? 0 : o_mc));
        json_object_set_new(j, "seed", json_integer(o_seed));
        json_object_set_new(j, "records", json_integer((json_int_t)tot.records));
        json_object_set_new(j, "conditional_records", json_integer((json_int_t)tot.cond));
        json_object_set_new(j, "tokens", json_integer((json_int_t)tot.tokens));
        json_object_set_new(j, "nll", json_real(tot.nll));
        json_object_set_new(j, "nats_per_token", isnan(npt) ? json_null() : json_real(npt));
        json_object_set_new(j, "bits_per_token", isnan(npt) ? json_null() : json_real(npt / M_LN2));
        json_object_set_new(j, "perplexity", isnan(npt) || isinf(ppl) ? json_null() : json_real(ppl));
        json_object_set_new(j, "se_nats_per_token", isnan(se) ? json_null() : json_real(se));
        json_object_set_new(j, "se_bits_per_token", isnan(se) ? json_null() : json_real(se / M_LN2));
        json_object_set_new(j, "seconds", json_real(secs));
        json_object_set_new(j, "sequences_per_s", json_real(rps));
        rc = write_summary(o_summary, j, err, errlen);
        json_decref(j);
    }
    return rc;
}

int main(int argc, char **argv) {
    char err[1024];
    char **paths = NULL;
    int npaths = 0;
    dl_prog_init("dllm-score", argc, argv);
    int rc = dl_opts_parse(OPTS, argc, argv, &paths, &npaths, err, sizeof err);
    if (rc < 0) dl_die(DL_EXIT_USAGE, "%s", err);
    if (common.help || common.version) free(paths);   /* the only allocation so far */
    if (common.help) return dl_opts_help(OPTS, SYNOPSIS, DESCRIPTION);
    if (common.version) { printf("dllm-score %s\n", DL_VERSION); return 0; }
    if (dl_common_finish(&common, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);
    if (!o_model) dl_die(DL_EXIT_USAGE, "-m CKPT is required (see --help)");
    if (common.shards) dl_die(DL_EXIT_USAGE, "--shards is not supported by dllm-score (use -o FILE)");
    if (o_mc < 1 || o_mc > (1 << 24)) dl_die(DL_EXIT_USAGE, "--mc must be in [1, 2^24]");
    if (o_batch < 0 || o_batch > (1 << 24)) dl_die(DL_EXIT_USAGE, "--batch must be >= 0");
    if (o_seed < 0) dl_die(DL_EXIT_USAGE, "--seed must be >= 0");
    if (!(o_eps > 0 && o_eps < 1)) dl_die(DL_EXIT_USAGE, "--eps must be in (0, 1)");
    if (!isfinite(o_cfg) || o_cfg < 0) dl_die(DL_EXIT_USAGE, "--cfg must be >= 0");
    if (o_limit < 0) dl_die(DL_EXIT_USAGE, "--limit must be >= 0");
    if (o_threads < 0) dl_die(DL_EXIT_USAGE, "--threads must be >= 0");
    if (strcmp(o_device, "cpu") && strcmp(o_device, "cuda") && strcmp(o_device, "ref"))
        dl_die(DL_EXIT_USAGE, "--device '%s': expected cpu, cuda or ref", o_device);
    if (strcmp(o_precision, "f32") && strcmp(o_precision, "bf16"))
        dl_die(DL_EXIT_USAGE, "--precision '%s': expected f32 or bf16", o_precision);
    if (o_task && npaths) dl_die(DL_EXIT_USAGE, "give either --task FILE or input streams, not both");
    if (o_rng_key && strcmp(o_rng_key, "index") && strcmp(o_rng_key, "content"))
        dl_die(DL_EXIT_USAGE, "--rng-key '%s': expected index or content", o_rng_key);
    key_content = o_rng_key && !strcmp(o_rng_key, "content");
    if (!o_task && (o_delim || o_limit || o_bos || o_no_strip || strcmp(o_format, "auto")))
        dl_die(DL_EXIT_USAGE, "--delimiter, --task-format, --limit, --bos and --no-strip need --task");

    sc_opts so;
    sc_opts_default(&so);
    so.mc = (int)o_mc;
    so.batch = (int)o_batch;
    so.seed = (uint64_t)o_seed;
    so.eps = o_eps;
    so.cfg = o_cfg;
    so.causal = o_causal;
    so.shift_logits = o_shift;
    so.mask_id = o_mask_id;
    so.device = o_device;
    so.threads = (int)o_threads;
    so.need_tok = o_task != NULL;
    so.adapter = o_adapter;
    so.bf16 = !strcmp(o_precision, "bf16");
    sc_ctx *c = NULL;
    if ((rc = sc_open(&c, o_model, &so, err, sizeof err))) dl_die(-rc, "%s", err);
    if (sc_is_causal(c) && o_cfg > 0) dl_warn("--cfg is ignored by causal scoring");

    if (o_task) {
        dl_out_opts oo;
        dl_common_out_opts(&common, &oo);
        task_opts to;
        memset(&to, 0, sizeof to);
        to.delimiter = o_delim;
        to.limit = o_limit;
        to.summary = o_summary;
        to.output = common.output;
        to.out = &oo;
        to.progress = common.progress;
        to.format = o_format;
        to.bos = o_bos;
        to.no_strip = o_no_strip;
        to.key_by_index = o_rng_key && !strcmp(o_rng_key, "index");
        rc = task_run(c, o_task, &to, err, sizeof err);
    } else {
        rc = run_streams(c, paths, npaths, err, sizeof err);
    }
    sc_close(c);
    free(paths);
    if (rc) dl_die(-rc, "%s", err);
    return 0;
}
