/* tok/train.c — `dllm-tok train [options] [FILE...] -o tokenizer.json`.
 *
 * Reads text FILEs (zstd transparently, "-" or none = stdin) line by line
 * (each line keeps its '\n'), cuts the special-token strings out, splits
 * the rest with the GPT-2 pre-tokenizer regex (PCRE2, UTF + UCP, JIT),
 * counts the words, trains byte-level BPE (tok/train_bpe.c, HF BpeTrainer's
 * algorithm) and writes a tokenizer.json that Hugging Face `tokenizers`
 * loads: the same bytes `Tokenizer.save()` writes for a BpeTrainer-trained
 * ByteLevel BPE (pretty JSON, merges as [left, right] pairs).
 * Invalid UTF-8 bytes are replaced by U+FFFD (warning with a count).
 * Exit: 2 bad options / vocab size below 256 + specials, 3 unreadable input
 * or unwritable output, 1 empty corpus or bad data.
 *
 * Does not: normalize text, read JSONL or stream inputs (train on `text`
 * extracted first), add a prefix space, or learn across line ends.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_io.h"
#include "dl_log.h"
#include "dl_opts.h"
#include "tok_train.h"

#define CHUNK (1u << 20)

static const char GPT2_PATTERN[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

typedef struct {
    uint64_t vocab_size;
    long long min_frequency;
    dl_strlist special;
    int no_special;
    const char *output;
    int quiet, verbose, progress, help, version;
} cfg_t;

static cfg_t cfg;

static const dl_opt OPTS[] = {
    { "vocab-size", 'V', DL_OPT_SIZE, &cfg.vocab_size, "4096", "N",
      "target vocabulary size, special tokens and the 256 bytes included (K suffix ok)", NULL },
    { "min-frequency", 0, DL_OPT_INT, &cfg.min_frequency, "2", "N",
      "stop when the most frequent pair occurs fewer than N times", NULL },
    { "special", 's', DL_OPT_STRLIST, &cfg.special, NULL, "TOKEN",
      "special token, ids 0.. in the order given; cut out of the training text [<|endoftext|>]", NULL },
    { "no-special", 0, DL_OPT_FLAG, &cfg.no_special, NULL, NULL, "no special tokens at all", NULL },
    { "output", 'o', DL_OPT_STR, &cfg.output, NULL, "PATH", "tokenizer.json to write (default: stdout)", NULL },
    { "progress", 0, DL_OPT_FLAG, &cfg.progress, NULL, NULL, "show progress even when stderr is not a terminal", NULL },
    { "quiet", 'q', DL_OPT_FLAG, &cfg.quiet, NULL, NULL, "errors only", NULL },
    { "verbose", 'v', DL_OPT_COUNT, &cfg.verbose, NULL, NULL, "more messages (repeat for debug)", NULL },
    { "help", 'h', DL_OPT_FLAG, &cfg.help, NULL, NULL, "show this help and exit", NULL },
    { "version", 0, DL_OPT_FLAG, &cfg.version, NULL, NULL, "print the version and exit", NULL },
    DL_OPTS_END
};

static const char SYNOPSIS[] = "dllm-tok train [options] [FILE...] -o tokenizer.json";
static const char DESCRIPTION[] =
    "Train a GPT-2-style byte-level BPE tokenizer on text FILEs (zstd ok; none or - = stdin)\n"
    "and write a Hugging Face tokenizer.json.  Same algorithm as tokenizers' BpeTrainer\n"
    "(Tokenizer.train(files) with a ByteLevel pre-tokenizer and the 256-byte initial alphabet):\n"
    "lines are trained on separately, ties go to the pair with the smallest ids, and the output\n"
    "is byte-identical to HF's save() when special tokens are not in the text.";

/* ---------------------------------------------------------------- counting */
typedef struct {
    pcre2_code *re;
    pcre2_match_data *md;
    tok_wc *wc;
    const char *const *special;
    size_t *special_len, *special_next, n_special;   /* next: cached match position in the line */
    dl_strbuf fix;                                    /* a line with invalid UTF-8 repaired */
    uint64_t lines, words, bad_utf8;
} counter;

/* Length of the valid UTF-8 sequence at p, 0 when invalid (overlong,
 * surrogate, > U+10FFFF, truncated). */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    if (c < 0xC2 || c > 0xF4) return 0;
    size_t k = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (n < k) return 0;
    for (size_t i = 1; i < k; i++) if ((p[i] & 0xC0) != 0x80) return 0;
    if ((c == 0xE0 && p[1] < 0xA0) || (c == 0xED && p[1] >= 0xA0) ||
        (c == 0xF0 && p[1] < 0x90) || (c == 0xF4 && p[1] >= 0x90)) return 0;
    return k;
}

static int add_word(counter *c, const char *p, size_t n, char *err, size_t errlen) {
    c->words++;
    return tok_wc_add(c->wc, p, n, 1, err, errlen);
}

/* GPT-2 regex splits; unmatched gaps (none with this pattern) are words too,
 * as in HF's Isolated split. */
static int pretokenize(counter *c, const char *p, size_t n, char *err, size_t errlen) {
    size_t off = 0;
    while (off < n) {
        int rc = pcre2_match(c->re, (PCRE2_SPTR)p, n, off, PCRE2_NO_UTF_CHECK, c->md, NULL);
        size_t s = n, e = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
            s = ov[0]; e = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "regex match failed: %s", (char *)msg);
        }
        if (s > off && add_word(c, p + off, s - off, err, errlen)) return -DL_EXIT_IO;
        if (s >= n) break;
        if (e == s) e = s + utf8_len((const unsigned char *)p + s, n - s);  /* never with this pattern */
        if (add_word(c, p + s, e - s, err, errlen)) return -DL_EXIT_IO;
        off = e;
    }
    return 0;
}

/* One line (with its '\n'): repair UTF-8, cut out special tokens (earliest
 * first, longest on a tie), pre-tokenize the pieces between. */
static int count_line(counter *c, const char *p, size_t n, char *err, size_t errlen) {
    c->lines++;
    const unsigned char *u = (const unsigned char *)p;
    size_t i = 0, k;
    while (i < n) {   /* fast path: find the first invalid byte */
        if (u[i] < 0x80) { i++; continue; }
        if (!(k = utf8_len(u + i, n - i))) break;
        i += k;
    }
    if (i < n) {
        c->fix.n = 0;
        int bad = dl_strbuf_append(&c->fix, p, i);
        while (i < n && !bad) {
            k = utf8_len(u + i, n - i);
            if (k == 0) { c->bad_utf8++; k = 1; bad = dl_strbuf_append(&c->fix, "\xEF\xBF\xBD", 3); }
            else bad = dl_strbuf_append(&c->fix, p + i, k);
            i += k;
        }
        if (bad) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        p = c->fix.p; n = c->fix.n;
    }
    const size_t UNKNOWN = SIZE_MAX - 1, NONE = SIZE_MAX;
    for (size_t j = 0; j < c->n_special; j++) c->special_next[j] = UNKNOWN;
    size_t cur = 0;
    while (cur < n) {
        size_t best = n, blen = 0;
        for (size_t j = 0; j < c->n_special; j++) {
            size_t at = c->special_next[j];
            if (at == NONE) continue;
            if (at == UNKNOWN || at < cur) {
                const char *f = memmem(p + cur, n - cur, c->special[j], c->special_len[j]);
                at = c->special_next[j] = f ? (size_t)(f - p) : NONE;
                if (!f) continue;
            }
            if (at < best || (at == best && c->special_len[j] > blen)) { best = at; blen = c->special_len[j]; }
        }
        int rc = pretokenize(c, p + cur, best - cur, err, errlen);
        if (rc) return rc;
        if (best >= n) break;
        cur = best + blen;
    }
    return 0;
}

/* Every line of one input; the last line may lack its '\n'. */
static int count_file(counter *c, const char *path, dl_progress *pg, uint64_t *raw_done,
                      char *err, size_t errlen) {
    dl_in *in = NULL;
    int rc = dl_in_open(&in, path, err, errlen);
    if (rc) return rc;
    char *buf = malloc(CHUNK);
    dl_strbuf carry = {0};
    if (!buf) { dl_in_close(in); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    for (;;) {
        ssize_t got = dl_in_read(in, buf, CHUNK, err, errlen);
        if (got < 0) { rc = (int)got; break; }
        if (got == 0) {
            if (carry.n) rc = count_line(c, carry.p, carry.n, err, errlen);
            break;
        }
        const char *p = buf, *end = buf + got, *nl;
        while (!rc && (nl = memchr(p, '\n', (size_t)(end - p)))) {
            if (carry.n) {
                if (dl_strbuf_append(&carry, p, (size_t)(nl + 1 - p))) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); break; }
                rc = count_line(c, carry.p, carry.n, err, errlen);
                carry.n = 0;
            } else {
                rc = count_line(c, p, (size_t)(nl + 1 - p), err, errlen);
            }
            p = nl + 1;
        }
        if (rc) break;
        if (p < end && dl_strbuf_append(&carry, p, (size_t)(end - p))) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); break; }
        dl_progress_update(pg, c->lines, c->words, *raw_done + dl_in_raw_consumed(in));
    }
    if (rc) dl_err_prefix(err, errlen, "%s: line %llu", dl_in_name(in), (unsigned long long)c->lines + 1);
    *raw_done += dl_in_raw_consumed(in);
    dl_in_close(in);
    dl_strbuf_free(&carry);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- progress */
typedef struct { int enabled, drawn; double t_last; } merge_progress;

static void on_merge(void *ctx, uint64_t done, uint64_t target) {
    merge_progress *mp = ctx;
    if (!mp->enabled) return;
    double now = dl_now();
    if (now - mp->t_last < 0.2 && done < target) return;
    mp->t_last = now;
    fprintf(stderr, "\r%s: merges %llu/%llu\033[K", dl_prog_name(), (unsigned long long)done,
            (unsigned long long)target);
    mp->drawn = 1;
}

/* ---------------------------------------------------------------- output */
static json_t *byte_level(int add_prefix_space) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", add_prefix_space,
                     "trim_offsets", 1, "use_regex", 1);
}

/* The tokenizer.json HF writes for this model (key order and values of
 * Tokenizer.save() from tokenizers 0.2x); NULL when out of memory. */
static json_t *tokenizer_json(const tok_bpe_model *m) {
    json_t *added = json_array(), *vocab = json_object(), *merges = json_array();
    int bad = !added || !vocab || !merges;
    for (uint32_t i = 0; i < m->n_special && !bad; i++)
        bad = json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id", (int)i,
            "content", m->token[i], "single_word", 0, "lstrip", 0, "rstrip", 0, "normalized", 0, "special", 1));
    for (uint32_t i = 0; i < m->n_vocab && !bad; i++)
        bad = json_object_set_new(vocab, m->token[i], json_integer(i));
    for (uint32_t i = 0; i < m->n_merges && !bad; i++)
        bad = json_array_append_new(merges, json_pack("[s, s]", m->token[m->merges[2 * i]],
                                                      m->token[m->merges[2 * i + 1]]));
    if (bad) { json_decref(added); json_decref(vocab); json_decref(merges); return NULL; }
    json_t *model = json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
        "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
        "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab, "merges", merges);
    json_t *pre = json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", 0,
                            "trim_offsets", 1, "use_regex", 1);
    return json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:o, s:o}", "version", "1.0",
        "truncation", "padding", "added_tokens", added, "normalizer", "pre_tokenizer", pre,
        "post_processor", byte_level(1), "decoder", byte_level(1), "model", model);
}

static int write_json(const tok_bpe_model *m, const char *path, char *err, size_t errlen) {
    json_t *root = tokenizer_json(m);
    char *text = root ? json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(root);
    if (!text) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory building the JSON");
    dl_out_opts oo = DL_OUT_OPTS_DEFAULT;
    oo.binary = 0;
    dl_out *out = NULL;
    int rc = dl_out_open(&out, path, &oo, err, errlen);
    if (!rc) rc = dl_out_write(out, text, strlen(text), err, errlen);
    if (!rc) { rc = dl_out_close(out, err, errlen); out = NULL; }
    if (rc) dl_out_abort(out);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- main */
int tok_train_main(int argc, char **argv) {
    /* accept argv = {"train", opts...} (tok/main.c) or {"dllm-tok", "train", opts...} */
    if (argc > 1 && strcmp(argv[0], "train") && !strcmp(argv[1], "train")) { argc--; argv++; }
    char err[512];
    char **pos = NULL;
    int npos = 0;
    int rc = dl_opts_parse(OPTS, argc, argv, &pos, &npos, err, sizeof err);
    if (rc) dl_die(-rc, "train: %s", err);
    if (cfg.help) { free(pos); return dl_opts_help(OPTS, SYNOPSIS, DESCRIPTION); }
    if (cfg.version) { printf("dllm-tok %s\n", DL_VERSION); free(pos); return 0; }
    dl_verbosity = cfg.quiet ? 0 : 1 + cfg.verbose;

    /* special tokens: validated, duplicates dropped (HF keeps the first) */
    static const char *const DEFAULT_SPECIAL[] = { "<|endoftext|>" };
    const char *const *sp = cfg.special.n ? cfg.special.v : DEFAULT_SPECIAL;
    size_t nsp = cfg.no_special ? 0 : cfg.special.n ? cfg.special.n : 1;
    if (cfg.no_special && cfg.special.n) dl_die(DL_EXIT_USAGE, "train: --special and --no-special exclude each other");
    const char **special = calloc(nsp + 1, sizeof *special);
    size_t *slen = calloc(nsp + 1, sizeof *slen), *snext = calloc(nsp + 1, sizeof *snext), ns = 0;
    if (!special || !slen || !snext) dl_die(DL_EXIT_IO, "out of memory");
    for (size_t i = 0; i < nsp; i++) {
        size_t n = strlen(sp[i]), k;
        if (!n) dl_die(DL_EXIT_USAGE, "train: --special: empty token");
        for (size_t j = 0; j < n; j += k)
            if (!(k = utf8_len((const unsigned char *)sp[i] + j, n - j)))
                dl_die(DL_EXIT_USAGE, "train: --special: '%s' is not valid UTF-8", sp[i]);
        int dup = 0;
        for (size_t j = 0; j < ns; j++) dup |= !strcmp(special[j], sp[i]);
        if (!dup) { special[ns] = sp[i]; slen[ns++] = n; }
    }
    if (cfg.vocab_size < 256 + ns || cfg.vocab_size > UINT32_MAX)
        dl_die(DL_EXIT_USAGE, "train: --vocab-size %llu out of range [%zu, %u] (256 bytes + %zu special)",
               (unsigned long long)cfg.vocab_size, 256 + ns, UINT32_MAX, ns);
    if (cfg.min_frequency < 0)
        dl_die(DL_EXIT_USAGE, "train: --min-frequency %lld is negative", cfg.min_frequency);

    /* count words */
    int ecode = 0;
    PCRE2_SIZE eoff;
    counter c = { .special = special, .special_len = slen, .special_next = snext, .n_special = ns };
    c.re = pcre2_compile((PCRE2_SPTR)GPT2_PATTERN, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &ecode, &eoff, NULL);
    if (!c.re) dl_die(DL_EXIT_IO, "train: cannot compile the GPT-2 regex (PCRE2 error %d)", ecode);
    pcre2_jit_compile(c.re, PCRE2_JIT_COMPLETE);   /* falls back to the interpreter when JIT is unavailable */
    c.md = pcre2_match_data_create_from_pattern(c.re, NULL);
    if (!c.md || tok_wc_init(&c.wc, err, sizeof err)) dl_die(DL_EXIT_IO, "out of memory");
    static const char *const STDIN_ONLY[] = { "-" };
    const char *const *files = npos ? (const char *const *)pos : STDIN_ONLY;
    int nfiles = npos ? npos : 1;
    uint64_t total = 0, raw_done = 0;
    int sized = 1;
    for (int i = 0; i < nfiles; i++) {  /* fail before hours of reading; sizes for the ETA */
        if (!strcmp(files[i], "-")) { sized = 0; continue; }
        dl_in *probe = NULL;
        rc = dl_in_open(&probe, files[i], err, sizeof err);
        if (rc) dl_die(-rc, "%s", err);
        int64_t sz = dl_in_size(probe);
        dl_in_close(probe);
        if (sz < 0) sized = 0; else total += (uint64_t)sz;
    }
    if (!sized) total = 0;
    double t0 = dl_now();
    dl_progress pg;
    dl_progress_init(&pg, cfg.progress, total);
    merge_progress mp = { pg.enabled, 0, 0 };   /* dl_progress_end clears pg.enabled */
    for (int i = 0; i < nfiles; i++) {
        rc = count_file(&c, files[i], &pg, &raw_done, err, sizeof err);
        if (rc) { dl_progress_end(&pg); dl_die(-rc, "%s", err); }
    }
    dl_progress_end(&pg);
    if (c.bad_utf8) dl_warn("%llu invalid UTF-8 bytes replaced by U+FFFD", (unsigned long long)c.bad_utf8);
    if (tok_wc_distinct(c.wc) == 0)
        dl_die(DL_EXIT_DATA, "train: empty corpus: no text in %s%s", nfiles == 1 ? "" : "the inputs, last ",
               strcmp(files[nfiles - 1], "-") ? files[nfiles - 1] : "<stdin>");
    dl_verbose("%llu lines, %llu words (%zu distinct) in %.2fs", (unsigned long long)c.lines,
               (unsigned long long)c.words, tok_wc_distinct(c.wc), dl_now() - t0);

    /* train */
    double t1 = dl_now();
    tok_bpe_opts bo = { cfg.vocab_size, (uint64_t)cfg.min_frequency, special, ns, on_merge, &mp };
    tok_bpe_model m;
    rc = tok_bpe_train(c.wc, &bo, &m, err, sizeof err);
    if (mp.drawn) fputc('\n', stderr);
    if (rc) dl_die(-rc, "train: %s", err);
    double t_merge = dl_now() - t1;
    if (m.n_vocab < cfg.vocab_size)
        dl_warn("vocab %u < --vocab-size %llu: no pair left that occurs %lld times or more",
                m.n_vocab, (unsigned long long)cfg.vocab_size, cfg.min_frequency > 1 ? cfg.min_frequency : 1);
    if (m.steps > m.n_merges)
        dl_verbose("%llu merge steps repeated an earlier pair", (unsigned long long)(m.steps - m.n_merges));

    const char *out = cfg.output && strcmp(cfg.output, "-") ? cfg.output : NULL;
    rc = write_json(&m, out, err, sizeof err);
    if (rc) dl_die(-rc, "%s: %s", out ? out : "<stdout>", err);
    dl_info("vocab %u (%u special + 256 bytes + %u merges, last count %llu) from %llu words "
            "(%zu distinct) in %.2fs (merges %.2fs) -> %s", m.n_vocab, m.n_special, m.n_merges,
            (unsigned long long)m.last_count, (unsigned long long)c.words, tok_wc_distinct(c.wc),
            dl_now() - t0, t_merge, out ? out : "<stdout>");

    tok_bpe_model_free(&m);
    tok_wc_free(c.wc);
    pcre2_match_data_free(c.md);
    pcre2_code_free(c.re);
    dl_strbuf_free(&c.fix);
    dl_strlist_free(&cfg.special);
    free(special); free(slen); free(snext); free(pos);
    return 0;
}
