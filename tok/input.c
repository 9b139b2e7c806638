/* tok/input.c — documents out of one input file (or stdin).
 *
 * Formats (chosen per input, in this order):
 *   `text` msgpack stream  the data starts with a dllm header map; records
 *                          hold text | prompt (+ response) | messages
 *   JSONL                  --jsonl, or a name ending in .jsonl / .jsonl.zst;
 *                          one JSON object per line (jansson), blank lines
 *                          skipped; keys as for the stream records
 *   plain text             whole input = one document; --lines: one per line
 *                          (a trailing \r is removed, empty lines skipped);
 *                          --split STR: documents separated by STR
 * Plain-text newline rule: one newline ("\n" or "\r\n") at the very end of
 * the input is the file's line terminator, not text, and is removed; with
 * --split one newline directly before and one directly after each separator
 * are removed too (so "a\n<|endoftext|>\nb\n" is "a", "b"); documents empty
 * after that are skipped.  Everything else, whitespace included, is kept.
 * zstd-compressed inputs are read transparently (dl_in).
 *
 * Keys of a JSON object / stream record other than text, prompt, response,
 * messages (and the output's own ids, n_prompt, which are dropped) are
 * carried into the record unchanged.  Inputs are streamed: memory is one
 * document (one line, one record), except whole-file mode.
 */
#include <stdlib.h>
#include <string.h>
#include "dl_io.h"
#include "dl_mpscan.h"
#include "tok.h"

enum { IN_WHOLE, IN_LINES, IN_SPLIT, IN_JSONL, IN_STREAM };
#define CHUNK (1u << 20)

static const char *const KNOWN[] = { "text", "prompt", "response", "messages", "ids", "n_prompt", NULL };

struct tk_input {
    const tk_cfg *cfg;
    const dl_chat *chat;
    dl_in *in;
    int mode;
    /* text modes: bytes [pos, len) of buf are not consumed yet */
    char *buf;
    size_t pos, len, cap, scan;
    int eof, done;
    const char *sep;
    size_t seplen;
    uint64_t unit;       /* lines read (JSONL, --lines) or pieces (--split) */
    uint64_t docs;       /* documents returned from this input */
    /* stream mode */
    msgpack_unpacker up;
    int up_init;
    msgpack_unpacked res;
    dl_mpscan mpscan;    /* the buffered part of the next object (dl_mpscan.h) */
    dl_header hdr;
    int have_hdr;
    uint64_t rec;
};

void tk_doc_reset(tk_doc *d) {
    d->prompt.n = d->response.n = d->extra.n = 0;
    if (d->prompt.p) d->prompt.p[0] = 0;
    if (d->response.p) d->response.p[0] = 0;
    d->sft = 0;
    d->n_extra = 0;
    d->where[0] = 0;
    d->ids.n = 0;
    d->n_prompt = 0;
    d->rc = 0;
    d->err[0] = 0;
}

void tk_doc_free(tk_doc *d) {
    dl_strbuf_free(&d->prompt);
    dl_strbuf_free(&d->response);
    dl_strbuf_free(&d->extra);
    dl_u32buf_free(&d->ids);
    memset(d, 0, sizeof *d);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static const char *name(const tk_input *p) { return dl_in_name(p->in); }

/* ------------------------------------------------------------ byte buffer */
/* Read more input into buf.  1 = got bytes, 0 = EOF, <0 = error. */
static int fill(tk_input *p, char *err, size_t errlen) {
    if (p->eof) return 0;
    if (p->pos > 0) {
        memmove(p->buf, p->buf + p->pos, p->len - p->pos);
        p->len -= p->pos;
        p->scan = p->scan > p->pos ? p->scan - p->pos : 0;
        p->pos = 0;
    }
    if (p->cap - p->len < CHUNK) {
        size_t cap = p->cap * 2 > p->len + CHUNK ? p->cap * 2 : p->len + CHUNK;
        char *b = realloc(p->buf, cap + 1);
        if (!b) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: out of memory", name(p));
        p->buf = b;
        p->cap = cap;
    }
    ssize_t r = dl_in_read(p->in, p->buf + p->len, p->cap - p->len, err, errlen);
    if (r < 0) return (int)r;
    if (r == 0) { p->eof = 1; return 0; }
    p->len += (size_t)r;
    return 1;
}

/* Next piece of input up to the separator (removed), or up to EOF when
 * there is no separator.  *ended = 1 for the last piece (may be empty).
 * The piece lives until the next call. 1 = piece, 0 = nothing left. */
static int next_piece(tk_input *p, const char **s, size_t *n, int *ended, char *err, size_t errlen) {
    if (p->done) return 0;
    for (;;) {
        if (p->sep) {
            size_t from = p->scan > p->pos ? p->scan : p->pos;
            char *hit = from < p->len ? memmem(p->buf + from, p->len - from, p->sep, p->seplen) : NULL;
            if (hit) {
                *s = p->buf + p->pos;
                *n = (size_t)(hit - *s);
                *ended = 0;
                p->pos = p->scan = (size_t)(hit - p->buf) + p->seplen;
                return 1;
            }
            p->scan = p->len + 1 > p->seplen ? p->len + 1 - p->seplen : 0;
        }
        int rc = fill(p, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0) {
            p->done = 1;
            *s = p->buf ? p->buf + p->pos : "";
            *n = p->len - p->pos;
            *ended = 1;
            p->pos = p->len;
            return 1;
        }
    }
}

static void strip_trailing_newline(const char *s, size_t *n) {
    if (*n && s[*n - 1] == '\n') { (*n)--; if (*n && s[*n - 1] == '\r') (*n)--; }
}

/* ------------------------------------------------------------ documents */
static int set_text(dl_strbuf *b, const char *s, size_t n) {
    b->n = 0;
    if (dl_strbuf_append(b, s, n)) return -DL_EXIT_IO;
    if (!b->p && dl_strbuf_reserve(b, 1)) return -DL_EXIT_IO;
    return 0;
}

static int strbuf_write(void *data, const char *buf, size_t len) {
    return dl_strbuf_append((dl_strbuf *)data, buf, len) ? -1 : 0;
}

static int is_known(const char *k, size_t n) {
    for (const char *const *q = KNOWN; *q; q++)
        if (strlen(*q) == n && !memcmp(*q, k, n)) return 1;
    return 0;
}

/* Fill prompt/response from messages already collected in m[0..n). */
static int render(tk_input *p, tk_doc *d, const dl_chat_msg *m, size_t n, char *err, size_t errlen) {
    int rc = dl_chat_render(p->chat, m, n, &d->prompt, &d->response, err, errlen);
    if (rc) return rc;
    d->sft = 1;
    return 0;
}

static int json_doc(tk_input *p, json_t *o, tk_doc *d, char *err, size_t errlen) {
    json_t *msgs = json_object_get(o, "messages"), *pr = json_object_get(o, "prompt"),
           *rs = json_object_get(o, "response"), *tx = json_object_get(o, "text");
    int rc = 0;
    if (msgs) {
        if (!json_is_array(msgs)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"messages\" is not an array");
        size_t n = json_array_size(msgs);
        dl_chat_msg *m = calloc(n ? n : 1, sizeof *m);
        if (!m) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(msgs, i), *role = json_object_get(e, "role"),
                   *content = json_object_get(e, "content");
            if (!json_is_object(e) || !json_is_string(role) || !json_is_string(content)) {
                free(m);
                return dl_seterr(err, errlen, -DL_EXIT_DATA,
                                 "messages[%zu] is not {\"role\": string, \"content\": string}", i);
            }
            m[i] = (dl_chat_msg){ json_string_value(role), json_string_length(role),
                              json_string_value(content), json_string_length(content) };
        }
        rc = render(p, d, m, n, err, errlen);
        free(m);
        if (rc) return rc;
    } else if (pr || rs) {
        if (!pr) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"response\" without \"prompt\"");
        if (!json_is_string(pr)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"prompt\" is not a string");
        if (rs && !json_is_string(rs)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"response\" is not a string");
        if (set_text(&d->prompt, json_string_value(pr), json_string_length(pr)) ||
            set_text(&d->response, rs ? json_string_value(rs) : "", rs ? json_string_length(rs) : 0))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        d->sft = 1;
    } else if (tx) {
        if (!json_is_string(tx)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"text\" is not a string");
        if (set_text(&d->prompt, json_string_value(tx), json_string_length(tx)))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    } else {
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "no \"text\", \"prompt\" or \"messages\" key");
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, &d->extra, strbuf_write);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (is_known(k, strlen(k))) continue;
        if (dl_pack_str(&pk, k) || tk_json_pack(&pk, v)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        d->n_extra++;
    }
    return 0;
}

static int str_of(const msgpack_object *o, const char *key, const char **s, size_t *n, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_STR) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"%s\" is not a string", key);
    *s = o->via.str.ptr;
    *n = o->via.str.size;
    return 0;
}

static int stream_doc(tk_input *p, const msgpack_object *o, tk_doc *d, char *err, size_t errlen) {
    const msgpack_object *msgs = dl_rec_get(o, "messages"), *pr = dl_rec_get(o, "prompt"),
                         *rs = dl_rec_get(o, "response"), *tx = dl_rec_get(o, "text");
    const char *s = "", *r = "";
    size_t n = 0, rn = 0;
    int rc;
    if (msgs) {
        if (msgs->type != MSGPACK_OBJECT_ARRAY) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"messages\" is not an array");
        size_t nm = msgs->via.array.size;
        dl_chat_msg *m = calloc(nm ? nm : 1, sizeof *m);
        if (!m) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        for (size_t i = 0; i < nm; i++) {
            const msgpack_object *e = &msgs->via.array.ptr[i];
            const msgpack_object *role = e->type == MSGPACK_OBJECT_MAP ? dl_rec_get(e, "role") : NULL;
            const msgpack_object *content = e->type == MSGPACK_OBJECT_MAP ? dl_rec_get(e, "content") : NULL;
            if (!role || !content || role->type != MSGPACK_OBJECT_STR || content->type != MSGPACK_OBJECT_STR) {
                free(m);
                return dl_seterr(err, errlen, -DL_EXIT_DATA,
                                 "messages[%zu] is not {\"role\": string, \"content\": string}", i);
            }
            m[i] = (dl_chat_msg){ role->via.str.ptr, role->via.str.size, content->via.str.ptr, content->via.str.size };
        }
        rc = render(p, d, m, nm, err, errlen);
        free(m);
        if (rc) return rc;
    } else if (pr || rs) {
        if (!pr) return dl_seterr(err, errlen, -DL_EXIT_DATA, "\"response\" without \"prompt\"");
        if ((rc = str_of(pr, "prompt", &s, &n, err, errlen))) return rc;
        if (rs && (rc = str_of(rs, "response", &r, &rn, err, errlen))) return rc;
        if (set_text(&d->prompt, s, n) || set_text(&d->response, r, rn))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        d->sft = 1;
    } else if (tx) {
        if ((rc = str_of(tx, "text", &s, &n, err, errlen))) return rc;
        if (set_text(&d->prompt, s, n)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    } else {
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "no \"text\", \"prompt\" or \"messages\" key");
    }
    d->n_extra = dl_rec_n_extra(o, KNOWN);
    if (d->n_extra) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &d->extra, strbuf_write);
        if (dl_pack_extra(&pk, o, KNOWN)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    return 0;
}

/* ------------------------------------------------------------ stream mode */
static int stream_more(tk_input *p, char *err, size_t errlen) {
    if (!msgpack_unpacker_reserve_buffer(&p->up, CHUNK))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: out of memory", name(p));
    ssize_t r = dl_in_read(p->in, msgpack_unpacker_buffer(&p->up), msgpack_unpacker_buffer_capacity(&p->up), err, errlen);
    if (r < 0) return (int)r;
    if (r > 0) msgpack_unpacker_buffer_consumed(&p->up, (size_t)r);
    return r > 0;
}

/* msgpack_unpacker_next on wholly buffered objects only, so msgpack-c never
 * allocates for elements the input does not hold (dl_mpscan.h): CONTINUE
 * while incomplete; *rc < 0 (err set) for nesting beyond msgpack-c's limit. */
static msgpack_unpack_return next_whole(tk_input *p, int *rc, char *err, size_t errlen) {
    *rc = dl_mpscan_feed(&p->mpscan, (const unsigned char *)p->up.buffer + p->up.off, p->up.used - p->up.off,
                         DL_MPSCAN_UNKNOWN, err, errlen);
    if (*rc < 0) return MSGPACK_UNPACK_PARSE_ERROR;
    if (*rc == 0) return MSGPACK_UNPACK_CONTINUE;
    *rc = 0;
    msgpack_unpack_return ur = msgpack_unpacker_next(&p->up, &p->res);
    if (ur == MSGPACK_UNPACK_SUCCESS) dl_mpscan_reset(&p->mpscan);
    return ur;
}

/* The input ended inside an object: the declaration that did not fit, or a
 * plain truncation. */
static int truncated(tk_input *p, char *err, size_t errlen) {
    char msg[256];
    if (dl_mpscan_eof_msg(&p->mpscan, p->up.used - p->up.off, msg, sizeof msg))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: record %llu: %s", name(p), (unsigned long long)p->rec, msg);
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: record %llu: truncated at end of input", name(p),
                     (unsigned long long)p->rec);
}

static int stream_next(tk_input *p, tk_doc *d, char *err, size_t errlen) {
    for (;;) {
        int src;
        msgpack_unpack_return ur = next_whole(p, &src, err, errlen);
        if (src < 0) {
            dl_err_prefix(err, errlen, "%s: record %llu", name(p), (unsigned long long)p->rec);
            return src;
        }
        if (ur == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *o = &p->res.data;
            if (o->type == MSGPACK_OBJECT_MAP && dl_rec_get(o, "dllm")) {
                dl_header h;
                dl_header_init(&h, DL_KIND_NONE);
                int rc = dl_header_from_obj(&h, o, err, errlen);
                if (!rc && h.kind != DL_KIND_TEXT)
                    rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "a \"%s\" stream, not text (decode token streams with -d)",
                                   dl_kind_name(h.kind));
                if (!rc && p->have_hdr) rc = dl_header_compatible(&p->hdr, &h, err, errlen);
                if (rc) {
                    dl_header_free(&h);
                    dl_err_prefix(err, errlen, "%s: header before record %llu", name(p), (unsigned long long)p->rec);
                    return rc;
                }
                if (!p->have_hdr) { p->hdr = h; p->have_hdr = 1; } else dl_header_free(&h);
                continue;
            }
            snprintf(d->where, sizeof d->where, "%s: record %llu", name(p), (unsigned long long)p->rec);
            p->rec++;
            if (o->type != MSGPACK_OBJECT_MAP)
                return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: record is not a map", d->where);
            int rc = stream_doc(p, o, d, err, errlen);
            if (rc) dl_err_prefix(err, errlen, "%s", d->where);
            return rc ? rc : 1;
        }
        if (ur != MSGPACK_UNPACK_CONTINUE)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: record %llu: malformed msgpack", name(p),
                             (unsigned long long)p->rec);
        int rc = stream_more(p, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0) {
            if (p->up.used > p->up.off) return truncated(p, err, errlen);
            return 0;
        }
    }
}

/* ------------------------------------------------------------ open / next */
static int looks_like_stream(const char *b, size_t n) {
    unsigned char c = n ? (unsigned char)b[0] : 0;
    if (!((c >= 0x80 && c <= 0x8f) || c == 0xde || c == 0xdf)) return 0;
    return memmem(b, n < 48 ? n : 48, "\xa4" "dllm", 5) != NULL;
}

int tk_input_open(tk_input **out, const char *path, const tk_cfg *cfg, const dl_chat *chat,
                   char *err, size_t errlen) {
    *out = NULL;
    tk_input *p = calloc(1, sizeof *p);
    if (!p) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    p->cfg = cfg;
    p->chat = chat;
    int rc = dl_in_open(&p->in, path, err, errlen);
    if (rc) { free(p); return rc; }
    while (p->len < 64 && (rc = fill(p, err, errlen)) > 0) {}
    if (rc < 0) { tk_input_close(p); return rc; }
    if (looks_like_stream(p->buf, p->len)) {
        p->mode = IN_STREAM;
        if (!msgpack_unpacker_init(&p->up, CHUNK) || !msgpack_unpacker_reserve_buffer(&p->up, p->len)) {
            tk_input_close(p);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        }
        p->up_init = 1;
        msgpack_unpacked_init(&p->res);
        memcpy(msgpack_unpacker_buffer(&p->up), p->buf, p->len);
        msgpack_unpacker_buffer_consumed(&p->up, p->len);
        free(p->buf);
        p->buf = NULL;
        p->len = p->cap = 0;
        /* read the header now so the output header can carry its history */
        msgpack_unpack_return ur;
        int src = 0;
        while ((ur = next_whole(p, &src, err, errlen)) == MSGPACK_UNPACK_CONTINUE &&
               (rc = stream_more(p, err, errlen)) > 0) {}
        if (src < 0) { dl_err_prefix(err, errlen, "%s: header", name(p)); tk_input_close(p); return src; }
        if (rc < 0) { tk_input_close(p); return rc; }
        if (ur == MSGPACK_UNPACK_SUCCESS) {
            const msgpack_object *o = &p->res.data;
            dl_header_init(&p->hdr, DL_KIND_NONE);
            rc = o->type == MSGPACK_OBJECT_MAP ? dl_header_from_obj(&p->hdr, o, err, errlen)
                                               : dl_seterr(err, errlen, -DL_EXIT_DATA, "not a dllm header");
            if (!rc && p->hdr.kind != DL_KIND_TEXT)
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "a \"%s\" stream, not text (decode token streams with -d)",
                               dl_kind_name(p->hdr.kind));
            if (rc) {
                dl_err_prefix(err, errlen, "%s", name(p));
                tk_input_close(p);
                return rc;
            }
            p->have_hdr = 1;
        } else {
            tk_input_close(p);
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: malformed or truncated dllm header", name(p));
        }
    } else if (cfg->jsonl || ends_with(dl_in_name(p->in), ".jsonl") || ends_with(dl_in_name(p->in), ".jsonl.zst")) {
        p->mode = IN_JSONL;
        p->sep = "\n";
    } else if (cfg->lines) {
        p->mode = IN_LINES;
        p->sep = "\n";
    } else if (cfg->split) {
        p->mode = IN_SPLIT;
        p->sep = cfg->split;
    } else {
        p->mode = IN_WHOLE;
    }
    if (p->sep) p->seplen = strlen(p->sep);
    *out = p;
    return 0;
}

int tk_input_next(tk_input *p, tk_doc *d, char *err, size_t errlen) {
    tk_doc_reset(d);
    if (p->mode == IN_STREAM) {
        int rc = stream_next(p, d, err, errlen);
        if (rc == 1) p->docs++;
        return rc;
    }
    const char *s;
    size_t n;
    int ended, rc;
    for (;;) {
        if ((rc = next_piece(p, &s, &n, &ended, err, errlen)) <= 0) return rc;
        uint64_t k = p->unit++;
        if (p->mode == IN_WHOLE || p->mode == IN_SPLIT) {
            if (p->mode == IN_SPLIT && k > 0 && n && s[0] == '\n') { s++; n--; }
            else if (p->mode == IN_SPLIT && k > 0 && n > 1 && s[0] == '\r' && s[1] == '\n') { s += 2; n -= 2; }
            strip_trailing_newline(s, &n);
            snprintf(d->where, sizeof d->where, "%s: document %llu", name(p), (unsigned long long)p->docs + 1);
        } else {
            if (n && s[n - 1] == '\r') n--;
            snprintf(d->where, sizeof d->where, "%s: line %llu", name(p), (unsigned long long)k + 1);
        }
        if (p->mode == IN_JSONL) {
            if (k == 0 && n >= 3 && !memcmp(s, "\xef\xbb\xbf", 3)) { s += 3; n -= 3; }  /* UTF-8 BOM */
            size_t i = 0;
            while (i < n && (s[i] == ' ' || s[i] == '\t')) i++;
            if (i == n) { if (ended) return 0; continue; }
            json_error_t je;
            json_t *o = json_loadb(s, n, JSON_ALLOW_NUL, &je);
            if (!o) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: invalid JSON: %s (column %d)", d->where,
                                     je.text, je.column);
            rc = json_is_object(o) ? json_doc(p, o, d, err, errlen)
                                   : dl_seterr(err, errlen, -DL_EXIT_DATA, "not a JSON object");
            json_decref(o);
            if (rc) { dl_err_prefix(err, errlen, "%s", d->where); return rc; }
            p->docs++;
            return 1;
        }
        if (n == 0) { if (ended) return 0; continue; }
        if (set_text(&d->prompt, s, n)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        p->docs++;
        return 1;
    }
}

const dl_header *tk_input_header(const tk_input *p) { return p->have_hdr ? &p->hdr : NULL; }

uint64_t tk_input_raw_bytes(const tk_input *p) { return p->in ? dl_in_raw_consumed(p->in) : 0; }

void tk_input_close(tk_input *p) {
    if (!p) return;
    if (p->up_init) { msgpack_unpacked_destroy(&p->res); msgpack_unpacker_destroy(&p->up); }
    if (p->have_hdr) dl_header_free(&p->hdr);
    dl_in_close(p->in);
    free(p->buf);
    free(p);
}
