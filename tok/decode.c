/* tok/decode.c — `dllm-tok -d`: tokens / rows / masked / samples records
 * back to text.
 *
 * Key decoded: --key, else "x0" for masked streams and "ids" for the others
 * (--key xt shows the noisy input, mask tokens as their text).  Output, one
 * line per record:
 *   default      the decoded text + "\n" (with --split STR: text + "\n" + STR
 *                + "\n", which `dllm-tok --split STR` reads back as the same
 *                documents)
 *   --jsonl      {"text": ...} or, when the record has n_prompt,
 *                {"prompt": ..., "response": ...}, then the record's other
 *                keys (bin values, which JSON cannot hold, are dropped with a
 *                warning); text is made valid UTF-8 (U+FFFD) for JSON
 *   --ids        the ids as decimal numbers separated by spaces; with n_prompt
 *                a "|" separates prompt and response ids ("15496 | 995")
 * An id >= the tokenizer's vocabulary is a data error naming the record.
 * A stream whose header names another tokenizer (sha256) is decoded with a
 * warning; --strict makes it an error.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"
#include "tok.h"

/* keys not copied into JSON output: the id blobs and what we write ourselves */
static const char *const SKIP[] = { "ids", "x0", "xt", "docs", "n_prompt", "text", "prompt", "response", NULL };

typedef struct {
    const tk_cfg *cfg;
    dl_tok *tok;
    dl_reader *r;
    dl_out *out;
    dl_strbuf line, text;
    dl_u32buf ids;
    int warned_drop;
    uint64_t records, tokens;
} dec;

static int skip_key(const msgpack_object *k) {
    if (k->type != MSGPACK_OBJECT_STR) return 0;
    for (const char *const *q = SKIP; *q; q++)
        if (strlen(*q) == k->via.str.size && !memcmp(*q, k->via.str.ptr, k->via.str.size)) return 1;
    return 0;
}

/* Decode ids[a, b) into d->text (replaced). */
static int decode_range(dec *d, size_t a, size_t b, char *err, size_t errlen) {
    d->text.n = 0;
    if (!d->text.p && dl_strbuf_reserve(&d->text, 64)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    d->text.p[0] = 0;
    return dl_tok_decode(d->tok, d->ids.p + a, b - a, d->cfg->skip_special, &d->text, err, errlen);
}

static int json_set_text(json_t *o, const char *key, const dl_strbuf *t) {
    dl_strbuf b = {0};
    int rc = tk_utf8_repair(t->p ? t->p : "", t->n, &b);
    if (!rc) rc = json_object_set_new(o, key, json_stringn(b.p ? b.p : "", b.n)) ? -DL_EXIT_IO : 0;
    dl_strbuf_free(&b);
    return rc;
}

static int record_jsonl(dec *d, const msgpack_object *rec, int has_np, uint64_t np, char *err, size_t errlen) {
    json_t *o = json_object();
    int rc = o ? 0 : -DL_EXIT_IO;
    if (!rc && has_np) {
        rc = decode_range(d, 0, np, err, errlen);
        if (!rc) rc = json_set_text(o, "prompt", &d->text);
        if (!rc) rc = decode_range(d, np, d->ids.n, err, errlen);
        if (!rc) rc = json_set_text(o, "response", &d->text);
    } else if (!rc) {
        rc = decode_range(d, 0, d->ids.n, err, errlen);
        if (!rc) rc = json_set_text(o, "text", &d->text);
    }
    for (uint32_t i = 0; !rc && i < rec->via.map.size; i++) {
        const msgpack_object_kv *kv = &rec->via.map.ptr[i];
        if (skip_key(&kv->key)) continue;
        int dropped = kv->key.type != MSGPACK_OBJECT_STR;
        json_t *v = dropped ? NULL : tk_msgpack_to_json(&kv->val, &dropped);
        if (v) {
            char *k = strndup(kv->key.via.str.ptr, kv->key.via.str.size);
            if (!k || json_object_set_new(o, k, v)) rc = -DL_EXIT_IO;
            free(k);
        }
        if (dropped && !d->warned_drop) {
            d->warned_drop = 1;
            dl_warn("%s: binary values cannot be written as JSON; dropped (warned once)", dl_reader_where(d->r));
        }
    }
    char *s = rc ? NULL : json_dumps(o, JSON_COMPACT);
    if (!rc && !s) rc = -DL_EXIT_IO;
    if (!rc && (dl_strbuf_puts(&d->line, s) || dl_strbuf_puts(&d->line, "\n"))) rc = -DL_EXIT_IO;
    free(s);
    json_decref(o);
    if (rc == -DL_EXIT_IO && !err[0]) dl_seterr(err, errlen, rc, "out of memory");
    return rc;
}

static int record(dec *d, const msgpack_object *rec, const char *key, char *err, size_t errlen) {
    int rc = dl_rec_ids(rec, key, &d->ids, 0, dl_tok_vocab_size(d->tok), err, errlen);
    if (rc < 0) return rc;
    uint64_t np = 0;
    rc = dl_rec_uint(rec, "n_prompt", &np, 1, err, errlen);
    if (rc < 0) return rc;
    int has_np = rc == 0;
    if (has_np && np > d->ids.n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %" PRIu64 " > %zu ids", np, d->ids.n);
    d->records++;
    d->tokens += d->ids.n;
    err[0] = 0;
    if (d->cfg->ids_out) {
        for (size_t i = 0; i <= d->ids.n; i++) {
            if (has_np && i == np && dl_strbuf_puts(&d->line, i ? " |" : "|")) return -DL_EXIT_IO;
            if (i < d->ids.n && dl_strbuf_printf(&d->line, i || (has_np && np == 0) ? " %" PRIu32 : "%" PRIu32,
                                                 d->ids.p[i])) return -DL_EXIT_IO;
        }
        return dl_strbuf_puts(&d->line, "\n") ? -DL_EXIT_IO : 0;
    }
    if (d->cfg->jsonl) return record_jsonl(d, rec, has_np, np, err, errlen);
    if ((rc = decode_range(d, 0, d->ids.n, err, errlen))) return rc;
    if (dl_strbuf_append(&d->line, d->text.p, d->text.n) || dl_strbuf_puts(&d->line, "\n")) return -DL_EXIT_IO;
    if (d->cfg->split && (dl_strbuf_puts(&d->line, d->cfg->split) || dl_strbuf_puts(&d->line, "\n"))) return -DL_EXIT_IO;
    return 0;
}

static int check_tokenizer(dec *d, char *err, size_t errlen) {
    const dl_header *h = dl_reader_header(d->r);
    const char *sha = dl_tok_sha256(d->tok);
    if (!h->has_tok || !h->tok.sha256[0] || !strcmp(h->tok.sha256, sha)) return 0;
    if (d->cfg->strict)
        return dl_seterr(err, errlen, -DL_EXIT_DATA,
                         "%s: stream was made with tokenizer sha256 %.12s..., -t %s is %.12s...",
                         dl_reader_file(d->r), h->tok.sha256, d->cfg->tk_path, sha);
    dl_warn("%s: stream was made with tokenizer sha256 %.12s..., -t %s is %.12s... (decoding anyway; --strict refuses)",
            dl_reader_file(d->r), h->tok.sha256, d->cfg->tk_path, sha);
    return 0;
}

static int run(dec *d, char **paths, int npaths, char *err, size_t errlen) {
    const tk_cfg *cfg = d->cfg;
    int rc = dl_reader_peek_header(d->r, err, errlen);
    if (!rc) rc = dl_reader_expect(d->r, (1u << DL_KIND_TOKENS) | (1u << DL_KIND_ROWS) | (1u << DL_KIND_MASKED) |
                                   (1u << DL_KIND_SAMPLES), err, errlen);
    if (!rc) rc = check_tokenizer(d, err, errlen);
    if (rc) return rc;
    const char *key = cfg->key ? cfg->key : dl_reader_header(d->r)->kind == DL_KIND_MASKED ? "x0" : "ids";
    dl_out_opts oo;
    dl_common_out_opts(&cfg->common, &oo);
    oo.binary = 0;
    if ((rc = dl_out_open(&d->out, cfg->common.output, &oo, err, errlen))) return rc;
    dl_progress prog;
    dl_progress_init(&prog, cfg->common.progress, dl_reader_total_bytes(d->r));
    const msgpack_object *rec;
    while ((rc = dl_reader_next(d->r, &rec, err, errlen)) == 1) {
        if ((rc = record(d, rec, key, err, errlen))) {
            if (!err[0]) dl_seterr(err, errlen, rc, "out of memory");
            dl_err_prefix(err, errlen, "%s", dl_reader_where(d->r));
            break;
        }
        if (d->line.n >= (1u << 20)) {
            if ((rc = dl_out_write(d->out, d->line.p, d->line.n, err, errlen))) break;
            d->line.n = 0;
        }
        dl_progress_update(&prog, d->records, d->tokens, dl_reader_raw_bytes(d->r));
    }
    dl_progress_end(&prog);
    if (!rc && d->line.n) rc = dl_out_write(d->out, d->line.p, d->line.n, err, errlen);
    (void)paths; (void)npaths;
    return rc;
}

int tk_decode_run(const tk_cfg *cfg, dl_tok *tok, char **paths, int npaths) {
    char err[1024] = "";
    dec d = { .cfg = cfg, .tok = tok };
    double t0 = dl_now();
    int rc = dl_reader_open(&d.r, paths, npaths, err, sizeof err);
    if (!rc) rc = run(&d, paths, npaths, err, sizeof err);
    if (rc) {
        dl_out_abort(d.out);
    } else {
        rc = dl_out_close(d.out, err, sizeof err);
    }
    if (d.r) dl_reader_close(d.r);
    dl_strbuf_free(&d.line);
    dl_strbuf_free(&d.text);
    dl_u32buf_free(&d.ids);
    if (rc) {
        dl_error("%s", err);
        return -rc;
    }
    double dt = dl_now() - t0;
    dl_info("decoded %llu records, %llu tokens in %.2fs", (unsigned long long)d.records,
            (unsigned long long)d.tokens, dt);
    return 0;
}
