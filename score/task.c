/* score/task.c — dllm-score --task FILE.jsonl: multiple-choice and LAMBADA
 * evaluation on top of the estimators of estimate.c.
 *
 * Items (layouts and the context | continuation split: task_internal.h):
 *   mc, schema  every option j is scored by ll_j = sc_cond_loglik(context_j,
 *               continuation_j): log p(continuation | context), exact for
 *               causal scoring, LLaDA's Monte-Carlo estimate for diffusion.
 *               acc: argmax_j ll_j == gold; acc_norm: argmax_j ll_j / chars_j
 *               with chars_j the Unicode code points of choice j as given
 *               (lm-eval's acc_norm: len(choice) of a Python str, the
 *               delimiter not counted; equal to bytes for ASCII).  Ties go
 *               to the first option (numpy argmax).  For schema the
 *               continuation is shared, so acc_norm == acc.
 *   lambada     acc: sc_greedy_match (causal: argmax at every continuation
 *               position given the true prefix; diffusion: one forward with
 *               the whole continuation masked, see score.h), and ll.
 * Tokenisation: context and continuation are encoded separately with the
 * checkpoint's tokenizer (HF add_special_tokens=False), as llm-foundry does,
 * the space between them on the continuation's side (task_internal.h).
 * Tokenizers that mark a word start themselves (SentencePiece-style, whose
 * normalizer prepends "\u2581" to every encoded text: Llama-2, the converted
 * stories260K) would read that space as a second one, so when " a" does not
 * encode to a single token (llm-foundry's tokenizer_needs_prefix_space test)
 * one leading space of the continuation is dropped before encoding: its
 * "\u2581" comes from the tokenizer (as llm-foundry, which adds no prefix
 * space for such tokenizers).  --bos puts the BOS id before every context.  When context +
 * continuation exceed sc_max_len the context loses its leftmost tokens (BOS
 * kept), as both harnesses trim; such items are counted in the summary.
 * Randomness: every option is scored with RNG key sc_content_key(its
 * context ids as scored: BOS included, cut when cut), so an option's
 * estimate depends on its content alone, never on its position: the lm-eval
 * bridge (requests reordered by lm-eval) keys the same way and gets the same
 * numbers.  Options sharing their context (mc: every option of an item)
 * share their Monte-Carlo draws (common random numbers: the argmax compares
 * estimates with correlated noise); schema items' options have different
 * contexts and draw independently.  --rng-key index (o->key_by_index) keys
 * by the item's 0-based position instead, as before issue 10.
 * Statistics (lm-eval's): acc = mean of 0/1 outcomes, stderr =
 * sqrt(p(1-p)/(n-1)); lambada: mean ll per item with sd/sqrt(n), perplexity
 * exp(-mean ll) (lm-eval's per-item perplexity) and per token
 * exp(-sum ll / tokens).
 * Outputs: a `scores` stream, one record per item, to o->output, or to
 * stdout when o->output is NULL and stdout is not a terminal (nothing
 * otherwise); the summary on stderr (dl_info) and as JSON in o->summary
 * (temp + rename).
 * Does not do: few-shot prompts, generation tasks, several layouts in one
 * file.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include "score.h"
#include "task_internal.h"
#include "dl_io.h"
#include "dl_log.h"
#include "dl_stream.h"

typedef struct {
    uint64_t n, acc, acc_norm;        /* items, right by ll, right by ll/chars */
    double sum_ll, sum_ll2;           /* lambada: per-item ll */
    uint64_t tokens;                  /* lambada: continuation tokens */
    uint64_t n_cut;                   /* items whose context was cut */
    uint64_t calls;                   /* sc_cond_loglik calls */
} tally;

/* per-option results of one item, sized for the widest item */
typedef struct {
    double *ll, *se;
    int *np, *nr;
} opts_buf;

static double stderr_p(double p, uint64_t n) { return n > 1 ? sqrt(p * (1 - p) / (double)(n - 1)) : 0.0; }

/* "piqa" from ".../piqa.jsonl.zst" */
static void task_name(const char *path, char *out, size_t n) {
    const char *b = strrchr(path, '/');
    snprintf(out, n, "%s", b ? b + 1 : path);
    static const char *const ext[] = { ".zst", ".jsonl", ".json", NULL };
    for (int i = 0; ext[i]; i++) {
        size_t l = strlen(out), e = strlen(ext[i]);
        if (l > e && !strcmp(out + l - e, ext[i])) out[l - e] = 0;
    }
}

/* the delimiter as typed back (\n for a newline) for messages */
static void show_delim(const char *d, char *out, size_t n) {
    size_t k = 0;
    for (; *d && k + 3 < n; d++) {
        if (*d == '\n') { out[k++] = '\\'; out[k++] = 'n'; }
        else if (*d == '\t') { out[k++] = '\\'; out[k++] = 't'; }
        else if (*d == '\r') { out[k++] = '\\'; out[k++] = 'r'; }
        else out[k++] = *d;
    }
    out[k] = 0;
}

/* ------------------------------------------------------------------ output */
static int open_output(dl_writer **w, sc_ctx *c, const char *path, const task_opts *o, char *err, size_t errlen) {
    dl_out_opts def = DL_OUT_OPTS_DEFAULT;
    int rc = dl_writer_open(w, path, o->out ? o->out : &def, err, errlen);
    if (rc) return rc;
    dl_tok *tok = sc_tok(c);
    const dl_config *cf = sc_config(c);
    dl_header h;
    dl_header_init(&h, DL_KIND_SCORES);
    h.has_tok = 1;
    dl_tokinfo_clear(&h.tok);
    snprintf(h.tok.sha256, sizeof h.tok.sha256, "%s", dl_tok_sha256(tok));
    h.tok.vocab_size = dl_tok_vocab_size(tok);
    h.tok.mask_id = cf->mask_token_id;
    h.tok.eos_id = cf->eos_token_id;
    h.tok.pad_id = cf->pad_token_id;
    h.tok.bos_id = cf->bos_token_id;
    h.has_seed = 1;
    h.seed = sc_options(c)->seed;
    rc = dl_writer_header(*w, &h);
    dl_header_free(&h);
    if (rc) {
        dl_writer_error(*w, err, errlen);
        dl_writer_abort(*w);
        *w = NULL;
        return -DL_EXIT_IO;
    }
    return 0;
}

static void pack_key(msgpack_packer *pk, const char *k) { dl_pack_str(pk, k); }

/* One record: the keys of DESIGN.md's `scores` and of main.c's records (nll,
 * n_tokens, se: of the gold option for mc/schema) plus the task's:
 *   task, index (0-based item), line (1-based), n_prompt (context tokens);
 *   mc/schema: gold, choice (argmax ll), correct, choice_norm (argmax
 *     ll/chars), correct_norm, ll, ll_se, n_prompt, n_resp, n_chars (arrays
 *     over the options);
 *   lambada: correct (greedy match), ll. */
static void write_record(dl_writer *w, const char *name, tk_layout lay, size_t index, const tk_item *it,
                         const opts_buf *b, int choice, int choice_norm) {
    msgpack_packer *pk = dl_writer_packer(w);
    int g = lay == TK_LAMBADA ? 0 : it->gold;
    msgpack_pack_map(pk, lay == TK_LAMBADA ? 9 : 16);
    pack_key(pk, "task"); dl_pack_str(pk, name);
    pack_key(pk, "index"); msgpack_pack_uint64(pk, index);
    pack_key(pk, "line"); msgpack_pack_uint64(pk, (uint64_t)it->line);
    pack_key(pk, "nll"); msgpack_pack_double(pk, -b->ll[g]);
    pack_key(pk, "n_tokens"); msgpack_pack_uint64(pk, (uint64_t)b->nr[g]);
    pack_key(pk, "se"); msgpack_pack_double(pk, b->se[g]);
    if (lay == TK_LAMBADA) {
        pack_key(pk, "correct"); choice ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pack_key(pk, "ll"); msgpack_pack_double(pk, b->ll[0]);
        pack_key(pk, "n_prompt"); msgpack_pack_uint64(pk, (uint64_t)b->np[0]);
    } else {
        pack_key(pk, "gold"); msgpack_pack_uint64(pk, (uint64_t)it->gold);
        pack_key(pk, "choice"); msgpack_pack_uint64(pk, (uint64_t)choice);
        pack_key(pk, "correct"); choice == it->gold ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pack_key(pk, "choice_norm"); msgpack_pack_uint64(pk, (uint64_t)choice_norm);
        pack_key(pk, "correct_norm"); choice_norm == it->gold ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        pack_key(pk, "ll"); msgpack_pack_array(pk, (size_t)it->n);
        for (int j = 0; j < it->n; j++) msgpack_pack_double(pk, b->ll[j]);
        pack_key(pk, "ll_se"); msgpack_pack_array(pk, (size_t)it->n);
        for (int j = 0; j < it->n; j++) msgpack_pack_double(pk, b->se[j]);
        pack_key(pk, "n_prompt"); msgpack_pack_array(pk, (size_t)it->n);
        for (int j = 0; j < it->n; j++) msgpack_pack_uint64(pk, (uint64_t)b->np[j]);
        pack_key(pk, "n_resp"); msgpack_pack_array(pk, (size_t)it->n);
        for (int j = 0; j < it->n; j++) msgpack_pack_uint64(pk, (uint64_t)b->nr[j]);
        pack_key(pk, "n_chars"); msgpack_pack_array(pk, (size_t)it->n);
        for (int j = 0; j < it->n; j++) msgpack_pack_uint64(pk, (uint64_t)it->chars[j]);
    }
    dl_writer_count(w);
}

/* ------------------------------------------------------------------ summary */
static json_t *summary_json(const char *name, const char *path, tk_layout lay, const char *delim,
                            sc_ctx *c, const task_opts *o, int drop_space, const tally *t, double secs) {
    const sc_opts *so = sc_options(c);
    json_t *j = json_object();
    if (!j) return NULL;
    double n = (double)t->n;
    json_object_set_new(j, "task", json_string(name));
    json_object_set_new(j, "file", json_string(path));
    json_object_set_new(j, "layout", json_string(tk_layout_name(lay)));
    json_object_set_new(j, "delimiter", json_string(delim));
    json_object_set_new(j, "n", json_integer((json_int_t)t->n));
    double acc = (double)t->acc / n;
    json_object_set_new(j, "acc", json_real(acc));
    json_object_set_new(j, "acc_stderr", json_real(stderr_p(acc, t->n)));
    if (lay != TK_LAMBADA) {
        double an = (double)t->acc_norm / n;
        json_object_set_new(j, "acc_norm", json_real(an));
        json_object_set_new(j, "acc_norm_stderr", json_real(stderr_p(an, t->n)));
        json_object_set_new(j, "acc_norm_length", json_string("unicode code points of the choice"));
    } else {
        double m = t->sum_ll / n;
        double var = t->n > 1 ? (t->sum_ll2 - n * m * m) / (n - 1) : 0.0;
        json_object_set_new(j, "ll_mean", json_real(m));
        json_object_set_new(j, "ll_stderr", json_real(var > 0 ? sqrt(var / n) : 0.0));
        json_object_set_new(j, "perplexity", json_real(exp(-m)));
        json_object_set_new(j, "tokens", json_integer((json_int_t)t->tokens));
        json_object_set_new(j, "perplexity_token", json_real(t->tokens ? exp(-t->sum_ll / (double)t->tokens) : 0.0));
    }
    json_object_set_new(j, "causal", json_boolean(sc_is_causal(c)));
    json_object_set_new(j, "mc", json_integer(so->mc));
    json_object_set_new(j, "seed", json_integer((json_int_t)so->seed));
    json_object_set_new(j, "rng_key", json_string(o->key_by_index ? "index" : "content"));
    json_object_set_new(j, "cfg", json_real(so->cfg));
    json_object_set_new(j, "bos", json_boolean(o->bos));
    json_object_set_new(j, "strip", json_boolean(!o->no_strip));
    json_object_set_new(j, "continuation_space", json_string(drop_space ? "from the tokenizer's word-start marker" : "encoded with the continuation"));
    json_object_set_new(j, "truncated", json_integer((json_int_t)t->n_cut));
    json_object_set_new(j, "elapsed_s", json_real(secs));
    json_object_set_new(j, "items_per_s", json_real(secs > 0 ? n / secs : 0.0));
    return j;
}

static int write_summary(const char *file, json_t *j, char *err, size_t errlen) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    if (!s) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    dl_out_opts oo = { 0, 0, 0, 0 };
    dl_out *out = NULL;
    int rc = dl_out_open(&out, file, &oo, err, errlen);
    if (!rc && !(rc = dl_out_write(out, s, strlen(s), err, errlen)) && !(rc = dl_out_write(out, "\n", 1, err, errlen)))
        rc = dl_out_close(out, err, errlen);
    else if (out)
        dl_out_abort(out);
    free(s);
    return rc;
}

/* ------------------------------------------------------------------ scoring */
typedef struct {
    sc_ctx *c;
    dl_tok *tok;
    int64_t bos;          /* -1 = none */
    int maxlen;
    int drop_space;       /* 1: drop one leading space of continuations (see the top) */
    int key_by_index;     /* 1: RNG key = item index; 0: sc_content_key(prompt) */
    dl_u32buf ctx, resp, cut;
    const char *last_ctx; /* text whose ids are in ctx */
} enc;

/* ids of context and continuation j of it; the prompt may be the cut copy */
static int encode_pair(enc *e, const char *path, const tk_item *it, int j, const uint32_t **prompt,
                       int *np, int *cut, char *err, size_t errlen) {
    int rc;
    if (!e->last_ctx || strcmp(e->last_ctx, it->ctx[j])) {
        e->ctx.n = 0;
        if (e->bos >= 0 && dl_u32buf_push(&e->ctx, (uint32_t)e->bos)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        if ((rc = dl_tok_encode(e->tok, it->ctx[j], strlen(it->ctx[j]), &e->ctx, err, errlen))) goto fail;
        e->last_ctx = it->ctx[j];
    }
    e->resp.n = 0;
    const char *cont = it->cont[j];
    if (e->drop_space && cont[0] == ' ') cont++;
    if ((rc = dl_tok_encode(e->tok, cont, strlen(cont), &e->resp, err, errlen))) goto fail;
    if (!e->resp.n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s:%d: option %d: the continuation encodes to no tokens", path, it->line, j);
    if ((long long)e->resp.n > e->maxlen)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s:%d: option %d: continuation of %zu tokens, the model takes %d positions",
                         path, it->line, j, e->resp.n, e->maxlen);
    *prompt = e->ctx.p;
    *np = (int)e->ctx.n;
    *cut = 0;
    if (e->ctx.n + e->resp.n > (size_t)e->maxlen) {    /* keep the rightmost context tokens (and BOS) */
        size_t keep = (size_t)e->maxlen - e->resp.n, head = (e->bos >= 0 && keep > 0) ? 1 : 0;
        e->cut.n = 0;
        if (dl_u32buf_append(&e->cut, e->ctx.p, head) ||
            dl_u32buf_append(&e->cut, e->ctx.p + e->ctx.n - (keep - head), keep - head))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        *prompt = e->cut.p;
        *np = (int)e->cut.n;
        *cut = 1;
    }
    return 0;
fail:
    dl_err_prefix(err, errlen, "%s:%d: option %d", path, it->line, j);
    return rc;
}

/* Score item it (index i) into b; *choice / *choice_norm (lambada: *choice = match). */
static int score_item(enc *e, const char *path, tk_layout lay, size_t i, const tk_item *it, opts_buf *b,
                      tally *t, int *choice, int *choice_norm, char *err, size_t errlen) {
    int any_cut = 0, rc;
    e->last_ctx = NULL;
    for (int j = 0; j < it->n; j++) {
        const uint32_t *prompt = NULL;
        int np = 0, cut = 0;
        if ((rc = encode_pair(e, path, it, j, &prompt, &np, &cut, err, errlen))) return rc;
        any_cut |= cut;
        b->np[j] = np;
        b->nr[j] = (int)e->resp.n;
        uint64_t key = e->key_by_index ? (uint64_t)i : sc_content_key(prompt, (size_t)np);
        if ((rc = sc_cond_loglik(e->c, prompt, np, e->resp.p, (int)e->resp.n, key, &b->ll[j], &b->se[j], err, errlen))) {
            dl_err_prefix(err, errlen, "%s:%d: option %d", path, it->line, j);
            return rc;
        }
        t->calls++;
        if (lay == TK_LAMBADA) {
            if ((rc = sc_greedy_match(e->c, prompt, np, e->resp.p, (int)e->resp.n, choice, err, errlen))) {
                dl_err_prefix(err, errlen, "%s:%d", path, it->line);
                return rc;
            }
        }
    }
    t->n++;
    t->n_cut += (uint64_t)any_cut;
    if (lay == TK_LAMBADA) {
        t->acc += (uint64_t)(*choice != 0);
        t->sum_ll += b->ll[0];
        t->sum_ll2 += b->ll[0] * b->ll[0];
        t->tokens += (uint64_t)b->nr[0];
        *choice_norm = 0;
        return 0;
    }
    int best = 0, best_n = 0;
    for (int j = 1; j < it->n; j++) {
        if (b->ll[j] > b->ll[best]) best = j;
        if (b->ll[j] / it->chars[j] > b->ll[best_n] / it->chars[best_n]) best_n = j;
    }
    *choice = best;
    *choice_norm = best_n;
    t->acc += (uint64_t)(best == it->gold);
    t->acc_norm += (uint64_t)(best_n == it->gold);
    return 0;
}

/* ------------------------------------------------------------------ task_run */
int task_run(sc_ctx *c, const char *path, const task_opts *o, char *err, size_t errlen) {
    int rc = 0;
    tk_layout force;
    if (tk_layout_parse(o->format, &force))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--task-format %s: expected auto, mc, schema or lambada", o->format);
    dl_tok *tok = sc_tok(c);
    if (!tok) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "task scoring needs the checkpoint's tokenizer (sc_opts.need_tok)");
    enc e = { .c = c, .tok = tok, .bos = -1, .maxlen = sc_max_len(c), .key_by_index = o->key_by_index };
    if (o->bos) {
        e.bos = dl_tok_special_id(tok, DL_TOK_BOS);
        if (e.bos < 0) e.bos = sc_config(c)->bos_token_id;
        if (e.bos < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--bos: the checkpoint has no BOS token");
    }
    e.resp.n = 0;
    if ((rc = dl_tok_encode(tok, " a", 2, &e.resp, err, errlen))) return rc;
    e.drop_space = e.resp.n != 1;
    char *delim = tk_unescape(o->delimiter ? o->delimiter : " ");
    char *text = NULL;
    size_t len = 0;
    tk_set set = { 0 };
    dl_writer *w = NULL;
    opts_buf b = { 0 };
    json_t *sj = NULL;
    tally t = { 0 };
    char name[256], dshow[256];
    if (!delim) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto done; }
    task_name(path, name, sizeof name);
    show_delim(delim, dshow, sizeof dshow);
    if ((rc = dl_read_file(path, &text, &len, err, errlen))) goto done;
    if ((rc = tk_parse(&set, path, text, len, force, delim, !o->no_strip, o->limit, err, errlen))) goto done;
    free(text);
    text = NULL;
    if (!set.n) { rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no items", path); goto done; }
    int wmax = 1;
    for (size_t i = 0; i < set.n; i++) if (set.items[i].n > wmax) wmax = set.items[i].n;
    b.ll = calloc((size_t)wmax, sizeof *b.ll);
    b.se = calloc((size_t)wmax, sizeof *b.se);
    b.np = calloc((size_t)wmax, sizeof *b.np);
    b.nr = calloc((size_t)wmax, sizeof *b.nr);
    if (!b.ll || !b.se || !b.np || !b.nr) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto done; }
    const char *outp = o->output ? o->output : !isatty(STDOUT_FILENO) ? "-" : NULL;
    if (outp && (rc = open_output(&w, c, outp, o, err, errlen))) goto done;
    dl_verbose("%s: %zu %s items, delimiter \"%s\"%s%s", path, set.n, tk_layout_name(set.layout), dshow,
               o->bos ? ", BOS" : "", e.drop_space ? ", continuations' leading space left to the tokenizer's word-start marker" : "");

    dl_progress pg;
    dl_progress_init(&pg, o->progress, 0);
    double t0 = dl_now();
    uint64_t toks = 0;
    for (size_t i = 0; i < set.n; i++) {
        int choice = 0, choice_norm = 0;
        const tk_item *it = &set.items[i];
        if ((rc = score_item(&e, path, set.layout, i, it, &b, &t, &choice, &choice_norm, err, errlen))) goto done;
        for (int j = 0; j < it->n; j++) toks += (uint64_t)(b.np[j] + b.nr[j]);
        if (w) {
            write_record(w, name, set.layout, i, it, &b, choice, choice_norm);
            if ((rc = dl_writer_error(w, err, errlen))) goto done;
        }
        dl_progress_update(&pg, i + 1, toks, 0);
    }
    dl_progress_end(&pg);
    double secs = dl_now() - t0;
    if (w) {
        rc = dl_writer_close(w, err, errlen);
        w = NULL;
        if (rc) goto done;
    }

    /* ---- report */
    double n = (double)t.n, acc = (double)t.acc / n;
    if (set.layout == TK_LAMBADA) {
        double m = t.sum_ll / n, var = t.n > 1 ? (t.sum_ll2 - n * m * m) / (n - 1) : 0.0;
        dl_info("%s: %llu item%s (lambada, delimiter \"%s\"%s%s): acc %.4f ± %.4f, ll %.4f ± %.4f nats/item, "
                "perplexity %.3f (per token %.3f over %llu tokens)",
                name, (unsigned long long)t.n, t.n == 1 ? "" : "s", dshow, o->bos ? ", BOS" : "", sc_is_causal(c) ? ", causal" : "",
                acc, stderr_p(acc, t.n), m, var > 0 ? sqrt(var / n) : 0.0, exp(-m),
                t.tokens ? exp(-t.sum_ll / (double)t.tokens) : 0.0, (unsigned long long)t.tokens);
    } else {
        double an = (double)t.acc_norm / n;
        dl_info("%s: %llu item%s (%s, delimiter \"%s\"%s%s): acc %.4f ± %.4f, acc_norm %.4f ± %.4f",
                name, (unsigned long long)t.n, t.n == 1 ? "" : "s", tk_layout_name(set.layout), dshow, o->bos ? ", BOS" : "",
                sc_is_causal(c) ? ", causal" : "", acc, stderr_p(acc, t.n), an, stderr_p(an, t.n));
    }
    if (t.n_cut) dl_warn("%s: %llu items had their context cut to fit %d positions", name, (unsigned long long)t.n_cut, e.maxlen);
    dl_verbose("%s: %.2f s, %.1f items/s, %llu likelihood calls", name, secs, secs > 0 ? n / secs : 0.0,
               (unsigned long long)t.calls);
    if (o->summary) {
        if (!(sj = summary_json(name, path, set.layout, delim, c, o, e.drop_space, &t, secs))) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto done; }
        rc = write_summary(o->summary, sj, err, errlen);
    }
done:
    if (w) dl_writer_abort(w);
    json_decref(sj);
    free(b.ll); free(b.se); free(b.np); free(b.nr);
    dl_u32buf_free(&e.ctx); dl_u32buf_free(&e.resp); dl_u32buf_free(&e.cut);
    tk_set_free(&set);
    free(text);
    free(delim);
    return rc;
}
