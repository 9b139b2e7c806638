/* dl_stream.c — dllm msgpack streams: headers, reader, writer, shard sets
 * (implements dl_stream.h; the format is DESIGN.md "Streams").
 *
 * Reader: one msgpack_unpacker fed by dl_in_read() with >= 1 MiB per read
 * (small inputs: from 16 KiB, doubling; see UNPACK_SMALL), straight into the unpacker's buffer (no intermediate copy).  Records are
 * handed out as msgpack_objects whose str/bin point into that buffer (valid
 * until the next call).  Headers are consumed: the first is kept, later
 * ones must be compatible.  Each input file must start with a header; an
 * empty file, a partial record at end of file, or malformed msgpack is a
 * data error "FILE: record N: ..." (N = 0-based data record index in FILE).
 *
 * Writer: a msgpack_packer whose callback appends to a dl_out; the first
 * write error is latched (later packs fail fast) and reported by
 * dl_writer_error / dl_writer_close.  dl_outset = one output or N shards,
 * round-robin; closing finishes all shards before renaming any.
 *
 * Not here: what the record keys mean to each program (their folders).
 */
#include "dl_stream.h"
#include "dl_log.h"
#include "dl_mpscan.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define UNPACK_INIT (4u << 20)   /* unpacker buffer */
#define READ_MIN (1u << 20)      /* reserve at least this much per read */
/* Inputs known to total less than UNPACK_INIT (regular files, stat()ed at
 * open) start with a UNPACK_SMALL buffer and read UNPACK_SMALL, doubling per
 * read up to READ_MIN: a short file then costs kilobytes, not 5 MiB per
 * open (and per rewind).  Everything else (big files, pipes, stdin) keeps
 * UNPACK_INIT and READ_MIN from the first read.  The buffer grows as any
 * object needs either way, so what is read is the same. */
#define UNPACK_SMALL (16u << 10)

static const char *type_name(msgpack_object_type t) {
    switch (t) {
    case MSGPACK_OBJECT_NIL: return "nil";
    case MSGPACK_OBJECT_BOOLEAN: return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return "uint";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "int";
    case MSGPACK_OBJECT_FLOAT32: return "float32";
    case MSGPACK_OBJECT_FLOAT64: return "float64";
    case MSGPACK_OBJECT_STR: return "str";
    case MSGPACK_OBJECT_ARRAY: return "array";
    case MSGPACK_OBJECT_MAP: return "map";
    case MSGPACK_OBJECT_BIN: return "bin";
    case MSGPACK_OBJECT_EXT: return "ext";
    }
    return "?";
}

static int key_is(const msgpack_object *k, const char *s) {
    size_t n = strlen(s);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

static char *xstrndup(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = '\0'; }
    return p;
}

/* ================================================================= kinds */
static const char *const KIND_NAMES[] = {"none", "text", "tokens", "rows", "masked", "samples", "scores"};

const char *dl_kind_name(dl_kind k) {
    return (unsigned)k < sizeof KIND_NAMES / sizeof *KIND_NAMES ? KIND_NAMES[k] : "?";
}

dl_kind dl_kind_parse(const char *s, size_t n) {
    for (int k = DL_KIND_TEXT; k <= DL_KIND_SCORES; k++)
        if (strlen(KIND_NAMES[k]) == n && memcmp(KIND_NAMES[k], s, n) == 0) return (dl_kind)k;
    return DL_KIND_NONE;
}

/* ================================================================ headers */
void dl_tokinfo_clear(dl_tokinfo *t) {
    t->sha256[0] = '\0';
    t->vocab_size = t->mask_id = t->eos_id = t->pad_id = t->bos_id = -1;
}

void dl_header_init(dl_header *h, dl_kind kind) {
    memset(h, 0, sizeof *h);
    h->version = 1;
    h->kind = kind;
    dl_tokinfo_clear(&h->tok);
    h->seq_len = -1;
}

void dl_header_free(dl_header *h) {
    for (size_t i = 0; i < h->n_history; i++) free(h->history[i]);
    free(h->history);
    free(h->extra);
    h->history = NULL; h->n_history = 0;
    h->extra = NULL; h->extra_len = 0;
}

int dl_header_copy(dl_header *dst, const dl_header *src) {
    *dst = *src;
    dst->history = NULL; dst->n_history = 0; dst->extra = NULL; dst->extra_len = 0;
    if (src->n_history) {
        dst->history = calloc(src->n_history, sizeof *dst->history);
        if (!dst->history) return -DL_EXIT_IO;
        for (size_t i = 0; i < src->n_history; i++) {
            dst->history[i] = xstrndup(src->history[i], strlen(src->history[i]));
            if (!dst->history[i]) { dst->n_history = i; dl_header_free(dst); return -DL_EXIT_IO; }
        }
        dst->n_history = src->n_history;
    }
    if (src->extra_len) {
        dst->extra = malloc(src->extra_len);
        if (!dst->extra) { dl_header_free(dst); return -DL_EXIT_IO; }
        memcpy(dst->extra, src->extra, src->extra_len);
        dst->extra_len = src->extra_len;
    }
    return 0;
}

static int get_uint(const msgpack_object *v, const char *what, uint64_t *out, char *err, size_t errlen) {
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "header: \"%s\" is not an unsigned integer (%s)",
                         what, type_name(v->type));
    *out = v->via.u64;
    return 0;
}

static int get_i64(const msgpack_object *v, const char *what, int64_t *out, char *err, size_t errlen) {
    uint64_t u = 0;
    int rc = get_uint(v, what, &u, err, errlen);
    if (rc) return rc;
    if (u > INT64_MAX) return dl_seterr(err, errlen, -DL_EXIT_DATA, "header: \"%s\" is too large", what);
    *out = (int64_t)u;
    return 0;
}

static int parse_tok(dl_tokinfo *t, const msgpack_object *o, char *err, size_t errlen) {
    if (o->type != MSGPACK_OBJECT_MAP)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "header: \"tokenizer\" is not a map (%s)", type_name(o->type));
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        int rc = 0;
        if (key_is(k, "sha256")) {
            if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= sizeof t->sha256)
                return dl_seterr(err, errlen, -DL_EXIT_DATA, "header: tokenizer \"sha256\" is not a hex string");
            memcpy(t->sha256, v->via.str.ptr, v->via.str.size);
            t->sha256[v->via.str.size] = '\0';
        } else if (key_is(k, "vocab_size")) rc = get_i64(v, "tokenizer.vocab_size", &t->vocab_size, err, errlen);
        else if (key_is(k, "mask_id")) rc = get_i64(v, "tokenizer.mask_id", &t->mask_id, err, errlen);
        else if (key_is(k, "eos_id")) rc = get_i64(v, "tokenizer.eos_id", &t->eos_id, err, errlen);
        else if (key_is(k, "pad_id")) rc = get_i64(v, "tokenizer.pad_id", &t->pad_id, err, errlen);
        else if (key_is(k, "bos_id")) rc = get_i64(v, "tokenizer.bos_id", &t->bos_id, err, errlen);
        if (rc) return rc;   /* other tokenizer keys are ignored */
    }
    return 0;
}

int dl_header_from_obj(dl_header *h, const msgpack_object *o, char *err, size_t errlen) {
    dl_header_init(h, DL_KIND_NONE);
    h->version = 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "header is not a map (%s)", type_name(o->type));
    int rc = 0;
    uint32_t n_extra = 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
        if (key_is(k, "dllm")) {
            uint64_t ver = 0;
            if (!(rc = get_uint(v, "dllm", &ver, err, errlen))) {
                if (ver != 1)
                    rc = dl_seterr(err, errlen, -DL_EXIT_DATA,
                                   "unsupported dllm format version %llu (this build reads version 1)",
                                   (unsigned long long)ver);
                h->version = (uint32_t)ver;
            }
        } else if (key_is(k, "kind")) {
            if (v->type != MSGPACK_OBJECT_STR)
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "header: \"kind\" is not a string");
            else if ((h->kind = dl_kind_parse(v->via.str.ptr, v->via.str.size)) == DL_KIND_NONE)
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "header: unknown kind \"%.*s\"",
                               (int)(v->via.str.size > 40 ? 40 : v->via.str.size), v->via.str.ptr);
        } else if (key_is(k, "tokenizer")) {
            h->has_tok = 1;
            rc = parse_tok(&h->tok, v, err, errlen);
        } else if (key_is(k, "seq_len")) {
            rc = get_i64(v, "seq_len", &h->seq_len, err, errlen);
        } else if (key_is(k, "seed")) {
            h->has_seed = 1;
            rc = get_uint(v, "seed", &h->seed, err, errlen);
        } else if (key_is(k, "history")) {
            if (v->type != MSGPACK_OBJECT_ARRAY) {
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "header: \"history\" is not an array");
                break;
            }
            uint32_t n = v->via.array.size;
            /* a repeated key: the last one wins, as for every key; drop the first */
            for (size_t j = 0; j < h->n_history; j++) free(h->history[j]);
            free(h->history);
            h->n_history = 0;
            h->history = calloc(n ? n : 1, sizeof *h->history);
            if (!h->history) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); break; }
            for (uint32_t j = 0; j < n; j++) {
                const msgpack_object *s = &v->via.array.ptr[j];
                if (s->type != MSGPACK_OBJECT_STR) {
                    rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "header: \"history\" holds a non-string");
                    break;
                }
                if (!(h->history[j] = xstrndup(s->via.str.ptr, s->via.str.size))) {
                    rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
                    break;
                }
                h->n_history = j + 1;
            }
        } else {
            n_extra++;
        }
    }
    if (!rc && h->version == 0)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "header lacks the \"dllm\" version key");
    if (!rc && n_extra) {
        /* keep the unknown keys, re-packed as one map, in their original order */
        int bad = msgpack_pack_map(&pk, n_extra);
        for (uint32_t i = 0; i < o->via.map.size && !bad; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (key_is(k, "dllm") || key_is(k, "kind") || key_is(k, "tokenizer") || key_is(k, "seq_len") ||
                key_is(k, "seed") || key_is(k, "history"))
                continue;
            bad = msgpack_pack_object(&pk, *k) || msgpack_pack_object(&pk, o->via.map.ptr[i].val);
        }
        if (bad) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        else { h->extra = sb.data; h->extra_len = sb.size; sb.data = NULL; }
    }
    msgpack_sbuffer_destroy(&sb);
    if (rc) dl_header_free(h);
    return rc;
}

int dl_header_compatible(const dl_header *a, const dl_header *b, char *err, size_t errlen) {
    if (a->kind != b->kind)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "incompatible header: kind \"%s\" vs \"%s\"",
                         dl_kind_name(a->kind), dl_kind_name(b->kind));
    if (a->has_tok != b->has_tok)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "incompatible header: only one of them names a tokenizer");
    if (a->has_tok) {
        if (strcmp(a->tok.sha256, b->tok.sha256) != 0)
            return dl_seterr(err, errlen, -DL_EXIT_DATA,
                             "incompatible header: tokenizer sha256 %.12s... vs %.12s... (different tokenizers)",
                             a->tok.sha256[0] ? a->tok.sha256 : "(none)", b->tok.sha256[0] ? b->tok.sha256 : "(none)");
        const char *what = NULL;
        int64_t x = 0, y = 0;
        if (a->tok.vocab_size != b->tok.vocab_size) { what = "vocab_size"; x = a->tok.vocab_size; y = b->tok.vocab_size; }
        else if (a->tok.mask_id != b->tok.mask_id) { what = "mask_id"; x = a->tok.mask_id; y = b->tok.mask_id; }
        else if (a->tok.eos_id != b->tok.eos_id) { what = "eos_id"; x = a->tok.eos_id; y = b->tok.eos_id; }
        else if (a->tok.pad_id != b->tok.pad_id) { what = "pad_id"; x = a->tok.pad_id; y = b->tok.pad_id; }
        else if (a->tok.bos_id != b->tok.bos_id) { what = "bos_id"; x = a->tok.bos_id; y = b->tok.bos_id; }
        if (what)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "incompatible header: tokenizer %s %lld vs %lld (-1 = absent)",
                             what, (long long)x, (long long)y);
    }
    if (a->seq_len != b->seq_len)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "incompatible header: seq_len %lld vs %lld (-1 = absent)",
                         (long long)a->seq_len, (long long)b->seq_len);
    return 0;
}

static int is_header(const msgpack_object *o) {
    if (o->type != MSGPACK_OBJECT_MAP) return 0;
    for (uint32_t i = 0; i < o->via.map.size; i++)
        if (key_is(&o->via.map.ptr[i].key, "dllm")) return 1;
    return 0;
}

/* ================================================================= reader */
struct dl_reader {
    char **paths;               /* n >= 1; "-" = stdin */
    int n, cur;                 /* cur == n: all done */
    dl_in *in;                  /* current input, NULL between files */
    int in_eof;
    int u_ok;                   /* u initialised */
    msgpack_unpacker u;
    msgpack_unpacked res;
    dl_mpscan scan;             /* the buffered part of the next object (dl_mpscan.h) */
    uint64_t fed;               /* bytes fed to the unpacker from the current file */
    uint64_t file_objs;         /* objects (headers + records) of the current file */
    uint64_t file_recs, total_recs;
    uint64_t raw_done, total_bytes;
    size_t unpack_init;         /* UNPACK_INIT, or UNPACK_SMALL for small inputs */
    size_t read_min;            /* reserve this much before a read (grows to READ_MIN) */
    int have_header;
    dl_header hdr;
    char *hdr_file;             /* file that held the first header */
    msgpack_sbuffer hdr_sb;     /* first header, verbatim */
    msgpack_unpacked hdr_res;
    const char *last_name;      /* name of the file of the last record/error */
    char where[512];
};

static const char *path_display(const char *p) { return strcmp(p, "-") == 0 ? "<stdin>" : p; }

int dl_reader_open(dl_reader **rp, char *const *paths, int n, char *err, size_t errlen) {
    *rp = NULL;
    dl_reader *r = calloc(1, sizeof *r);
    if (!r) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    r->n = n > 0 ? n : 1;
    r->paths = calloc((size_t)r->n, sizeof *r->paths);
    if (!r->paths) {
        free(r);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    msgpack_unpacked_init(&r->res);
    msgpack_unpacked_init(&r->hdr_res);
    msgpack_sbuffer_init(&r->hdr_sb);
    dl_header_init(&r->hdr, DL_KIND_NONE);
    int known = 1;
    for (int i = 0; i < r->n; i++) {
        const char *p = n > 0 && paths[i] ? paths[i] : "-";
        r->paths[i] = xstrndup(p, strlen(p));
        if (!r->paths[i]) { dl_reader_close(r); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        struct stat st;
        if (strcmp(p, "-") != 0 && stat(p, &st) == 0 && S_ISREG(st.st_mode)) r->total_bytes += (uint64_t)st.st_size;
        else known = 0;
    }
    if (!known) r->total_bytes = 0;
    r->unpack_init = known && r->total_bytes < UNPACK_INIT ? UNPACK_SMALL : UNPACK_INIT;
    r->read_min = r->unpack_init == UNPACK_SMALL ? UNPACK_SMALL : READ_MIN;
    if (!msgpack_unpacker_init(&r->u, r->unpack_init)) {
        dl_reader_close(r);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    r->u_ok = 1;
    r->last_name = path_display(r->paths[0]);
    *rp = r;
    return 0;
}

static void close_input(dl_reader *r) {
    if (r->in) {
        r->raw_done += dl_in_raw_consumed(r->in);
        dl_in_close(r->in);
        r->in = NULL;
    }
}

/* Byte offset (decompressed, within the current file) where the object being
 * parsed started. */
static uint64_t obj_start(const dl_reader *r) {
    uint64_t pend = (uint64_t)(r->u.used - r->u.off) + (uint64_t)r->u.parsed;
    return r->fed >= pend ? r->fed - pend : 0;
}

static int rerr(dl_reader *r, char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int rerr(dl_reader *r, char *err, size_t errlen, int code, const char *fmt, ...) {
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dl_seterr(err, errlen, code, "%s: record %llu: %s", r->last_name,
                     (unsigned long long)r->file_recs, msg);
}

/* Next msgpack object of the inputs into r->res: 1, 0 at the end of all
 * inputs, <0 on error.  Checks: non-empty files, no partial object at EOF. */
static int next_obj(dl_reader *r, char *err, size_t errlen) {
    for (;;) {
        if (!r->in) {
            if (r->cur >= r->n) return 0;
            r->last_name = path_display(r->paths[r->cur]);
            int rc = dl_in_open(&r->in, r->paths[r->cur], err, errlen);
            if (rc) return rc;
            r->in_eof = 0;
            r->fed = r->file_objs = r->file_recs = 0;
            dl_mpscan_reset(&r->scan);
        }
        /* the unpacker sees an object only once it is wholly buffered, so
         * it never allocates for elements the input does not hold */
        size_t buffered = r->u.used - r->u.off;
        int64_t size = dl_in_is_zstd(r->in) ? -1 : dl_in_size(r->in);
        uint64_t start = r->fed - buffered;   /* offset of the object in the file */
        uint64_t avail = size >= 0 && (uint64_t)size >= start ? (uint64_t)size - start : DL_MPSCAN_UNKNOWN;
        char msg[256];
        int sc = dl_mpscan_feed(&r->scan, (const unsigned char *)r->u.buffer + r->u.off, buffered, avail, msg,
                                sizeof msg);
        if (sc < 0) return rerr(r, err, errlen, sc, "%s", msg);
        msgpack_unpack_return ur = sc ? msgpack_unpacker_next(&r->u, &r->res) : MSGPACK_UNPACK_CONTINUE;
        if (ur == MSGPACK_UNPACK_SUCCESS) {
            dl_mpscan_reset(&r->scan);
            r->file_objs++;
            return 1;
        }
        if (ur == MSGPACK_UNPACK_NOMEM_ERROR) return rerr(r, err, errlen, -DL_EXIT_IO, "out of memory");
        if (ur != MSGPACK_UNPACK_CONTINUE)
            return rerr(r, err, errlen, -DL_EXIT_DATA, "malformed msgpack in the record starting at byte %llu%s",
                        (unsigned long long)obj_start(r), dl_in_is_zstd(r->in) ? " (decompressed)" : "");
        if (r->in_eof) {
            if (r->u.parsed || r->u.used != r->u.off) {
                if (dl_mpscan_eof_msg(&r->scan, buffered, msg, sizeof msg))
                    return rerr(r, err, errlen, -DL_EXIT_DATA, "%s", msg);
                return rerr(r, err, errlen, -DL_EXIT_DATA,
                            "truncated record at byte %llu%s (input ends inside the record starting at byte %llu)",
                            (unsigned long long)r->fed, dl_in_is_zstd(r->in) ? " (decompressed)" : "",
                            (unsigned long long)obj_start(r));
            }
            if (r->file_objs == 0)
                return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: empty input / no header", r->last_name);
            close_input(r);
            r->cur++;
            continue;
        }
        if (msgpack_unpacker_buffer_capacity(&r->u) < r->read_min &&
            !msgpack_unpacker_reserve_buffer(&r->u, r->read_min))
            return rerr(r, err, errlen, -DL_EXIT_IO, "out of memory");
        if (r->read_min < READ_MIN) r->read_min *= 2;
        ssize_t k = dl_in_read(r->in, msgpack_unpacker_buffer(&r->u), msgpack_unpacker_buffer_capacity(&r->u),
                               err, errlen);
        if (k < 0) {
            /* dl_in's message is "FILE: what": make it "FILE: record N: what" */
            char tmp[512];
            size_t ln = strlen(r->last_name);
            snprintf(tmp, sizeof tmp, "%s", err ? err : "");
            const char *what = strncmp(tmp, r->last_name, ln) == 0 && tmp[ln] == ':' && tmp[ln + 1] == ' ' ? tmp + ln + 2 : tmp;
            return rerr(r, err, errlen, (int)k, "%s", what);
        }
        if (k == 0) r->in_eof = 1;
        msgpack_unpacker_buffer_consumed(&r->u, (size_t)k);
        r->fed += (uint64_t)k;
    }
}

/* A header object arrived: keep it (first) or check it (later ones). */
static int take_header(dl_reader *r, const msgpack_object *o, char *err, size_t errlen) {
    dl_header h;
    char msg[400];
    int rc = dl_header_from_obj(&h, o, msg, sizeof msg);
    if (rc) return rerr(r, err, errlen, rc, "%s", msg);
    if (!r->have_header) {
        dl_header_free(&r->hdr);
        r->hdr = h;
        r->have_header = 1;
        free(r->hdr_file);
        r->hdr_file = xstrndup(r->last_name, strlen(r->last_name));
        msgpack_packer pk;
        msgpack_sbuffer_clear(&r->hdr_sb);
        msgpack_packer_init(&pk, &r->hdr_sb, msgpack_sbuffer_write);
        if (!r->hdr_file || msgpack_pack_object(&pk, *o) ||
            msgpack_unpack_next(&r->hdr_res, r->hdr_sb.data, r->hdr_sb.size, NULL) != MSGPACK_UNPACK_SUCCESS)
            return rerr(r, err, errlen, -DL_EXIT_IO, "out of memory");
        return 0;
    }
    rc = dl_header_compatible(&r->hdr, &h, msg, sizeof msg);
    dl_header_free(&h);
    if (rc) return rerr(r, err, errlen, rc, "%s (first header from %s)", msg, r->hdr_file);
    return 0;
}

/* Next object, enforcing "each file starts with a header" and "records are maps". */
static int next_checked(dl_reader *r, int *hdr, char *err, size_t errlen) {
    int rc = next_obj(r, err, errlen);
    if (rc <= 0) return rc;
    const msgpack_object *o = &r->res.data;
    *hdr = is_header(o);
    if (*hdr) {
        rc = take_header(r, o, err, errlen);
        return rc ? rc : 1;
    }
    if (r->file_objs == 1)
        return rerr(r, err, errlen, -DL_EXIT_DATA, "stream does not start with a header (a map with key \"dllm\")");
    if (o->type != MSGPACK_OBJECT_MAP)
        return rerr(r, err, errlen, -DL_EXIT_DATA, "record is not a map (msgpack %s)", type_name(o->type));
    return 1;
}

int dl_reader_next(dl_reader *r, const msgpack_object **rec, char *err, size_t errlen) {
    for (;;) {
        int hdr = 0;
        int rc = next_checked(r, &hdr, err, errlen);
        if (rc < 0) {
            /* take_header's code: keep what rerr set */
            return rc;
        }
        if (rc == 0) return 0;
        if (hdr) continue;
        r->file_recs++;
        r->total_recs++;
        *rec = &r->res.data;
        return 1;
    }
}

int dl_reader_peek_header(dl_reader *r, char *err, size_t errlen) {
    if (r->have_header) return 0;
    int hdr = 0;
    int rc = next_checked(r, &hdr, err, errlen);
    if (rc < 0) return rc;
    if (rc == 0) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: empty input / no header", r->last_name);
    DL_ASSERT(hdr && r->have_header);   /* next_checked rejects a first non-header */
    return 0;
}

int dl_reader_expect(dl_reader *r, unsigned kinds, char *err, size_t errlen) {
    int rc = dl_reader_peek_header(r, err, errlen);
    if (rc) return rc;
    if (kinds & (1u << r->hdr.kind)) return 0;
    char want[128] = "";
    for (int k = DL_KIND_TEXT; k <= DL_KIND_SCORES; k++)
        if (kinds & (1u << k)) {
            size_t l = strlen(want);
            snprintf(want + l, sizeof want - l, "%s%s", l ? " or " : "", dl_kind_name((dl_kind)k));
        }
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: stream kind is \"%s\", expected %s",
                     r->hdr_file, dl_kind_name(r->hdr.kind), want);
}

const dl_header *dl_reader_header(const dl_reader *r) { return r->have_header ? &r->hdr : NULL; }
const msgpack_object *dl_reader_header_obj(const dl_reader *r) { return r->have_header ? &r->hdr_res.data : NULL; }
const char *dl_reader_file(const dl_reader *r) { return r->last_name; }
uint64_t dl_reader_index(const dl_reader *r) { return r->total_recs ? r->total_recs - 1 : 0; }
uint64_t dl_reader_file_index(const dl_reader *r) { return r->file_recs ? r->file_recs - 1 : 0; }

const char *dl_reader_where(dl_reader *r) {
    snprintf(r->where, sizeof r->where, "%s: record %llu", r->last_name,
             (unsigned long long)dl_reader_file_index(r));
    return r->where;
}

uint64_t dl_reader_raw_bytes(const dl_reader *r) { return r->raw_done + (r->in ? dl_in_raw_consumed(r->in) : 0); }
uint64_t dl_reader_total_bytes(const dl_reader *r) { return r->total_bytes; }

/* The first input that cannot be read a second time: "-", or a path that
 * stat() (which never opens, so never blocks on a FIFO) does not show as a
 * regular file.  NULL when every input is a regular file. */
static const char *first_unrereadable(const dl_reader *r) {
    for (int i = 0; i < r->n; i++) {
        struct stat st;
        if (strcmp(r->paths[i], "-") == 0 || stat(r->paths[i], &st) != 0 || !S_ISREG(st.st_mode)) return r->paths[i];
    }
    return NULL;
}

int dl_reader_rewind(dl_reader *r, char *err, size_t errlen) {
    const char *bad = first_unrereadable(r);
    if (bad && strcmp(bad, "-") == 0)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "cannot re-read standard input (give file names)");
    if (bad)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "cannot re-read %s: not a regular file (give file names)", bad);
    close_input(r);
    msgpack_unpacked_destroy(&r->res);
    msgpack_unpacked_init(&r->res);
    msgpack_unpacker_destroy(&r->u);
    r->u_ok = 0;
    r->read_min = r->unpack_init == UNPACK_SMALL ? UNPACK_SMALL : READ_MIN;
    if (!msgpack_unpacker_init(&r->u, r->unpack_init)) {
        r->cur = r->n;   /* closed for reading; dl_reader_close still safe */
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    r->u_ok = 1;
    r->cur = 0;
    r->in_eof = 0;
    dl_mpscan_reset(&r->scan);
    r->fed = r->file_objs = r->file_recs = r->total_recs = r->raw_done = 0;
    r->last_name = path_display(r->paths[0]);
    return 0;
}

int dl_reader_count(dl_reader *r, uint64_t *n, char *err, size_t errlen) {
    int rc = dl_reader_rewind(r, err, errlen);
    if (rc) return rc;
    const msgpack_object *rec;
    uint64_t c = 0;
    while ((rc = dl_reader_next(r, &rec, err, errlen)) > 0) c++;
    if (rc < 0) return rc;
    *n = c;
    return dl_reader_rewind(r, err, errlen);
}

void dl_reader_close(dl_reader *r) {
    if (!r) return;
    close_input(r);
    msgpack_unpacked_destroy(&r->res);
    msgpack_unpacked_destroy(&r->hdr_res);
    msgpack_sbuffer_destroy(&r->hdr_sb);
    if (r->u_ok) msgpack_unpacker_destroy(&r->u);
    dl_header_free(&r->hdr);
    free(r->hdr_file);
    if (r->paths)
        for (int i = 0; i < r->n; i++) free(r->paths[i]);
    free(r->paths);
    free(r);
}

int dl_ids_check_vocab(const uint32_t *ids, size_t n, const dl_header *h, const char *key,
                       char *err, size_t errlen) {
    if (!h || !h->has_tok || h->tok.vocab_size <= 0) return 0;
    uint32_t mx = 0;
    for (size_t i = 0; i < n; i++) mx = ids[i] > mx ? ids[i] : mx;
    if ((int64_t)mx < h->tok.vocab_size) return 0;
    size_t i = 0;
    while ((int64_t)ids[i] < h->tok.vocab_size) i++;
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\": id %u at position %zu is >= vocab_size %lld",
                     key, ids[i], i, (long long)h->tok.vocab_size);
}

/* ========================================================= record access */
const msgpack_object *dl_rec_get(const msgpack_object *rec, const char *key) {
    if (rec->type != MSGPACK_OBJECT_MAP) return NULL;
    size_t n = strlen(key);
    const msgpack_object_kv *kv = rec->via.map.ptr;
    for (uint32_t i = 0; i < rec->via.map.size; i++)
        if (kv[i].key.type == MSGPACK_OBJECT_STR && kv[i].key.via.str.size == n &&
            memcmp(kv[i].key.via.str.ptr, key, n) == 0)
            return &kv[i].val;
    return NULL;
}

static int missing(const char *key, int optional, char *err, size_t errlen) {
    if (optional) return 1;
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "missing key \"%s\"", key);
}

int dl_rec_ids(const msgpack_object *rec, const char *key, dl_u32buf *out, int optional,
               int64_t vocab, char *err, size_t errlen) {
    const msgpack_object *v = dl_rec_get(rec, key);
    out->n = 0;
    if (!v) return missing(key, optional, err, errlen);
    if (v->type != MSGPACK_OBJECT_BIN)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\" is not a bin blob of uint32 (it is %s)",
                         key, type_name(v->type));
    if (v->via.bin.size % 4)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\": bin of %u bytes is not a multiple of 4",
                         key, v->via.bin.size);
    size_t n = v->via.bin.size / 4;
    if (dl_u32buf_reserve(out, n)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    dl_u32_from_le(out->p, v->via.bin.ptr, n);
    out->n = n;
    if (vocab > 0) {
        dl_header h;
        dl_header_init(&h, DL_KIND_NONE);
        h.has_tok = 1;
        h.tok.vocab_size = vocab;
        return dl_ids_check_vocab(out->p, n, &h, key, err, errlen);
    }
    return 0;
}

int dl_rec_uint(const msgpack_object *rec, const char *key, uint64_t *v, int optional,
                char *err, size_t errlen) {
    const msgpack_object *o = dl_rec_get(rec, key);
    if (!o) return missing(key, optional, err, errlen);
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\" is not an unsigned integer (it is %s)",
                         key, type_name(o->type));
    *v = o->via.u64;
    return 0;
}

int dl_rec_float(const msgpack_object *rec, const char *key, double *v, int optional,
                 char *err, size_t errlen) {
    const msgpack_object *o = dl_rec_get(rec, key);
    if (!o) return missing(key, optional, err, errlen);
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: *v = o->via.f64; return 0;
    case MSGPACK_OBJECT_POSITIVE_INTEGER: *v = (double)o->via.u64; return 0;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: *v = (double)o->via.i64; return 0;
    default:
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\" is not a number (it is %s)", key,
                         type_name(o->type));
    }
}

int dl_rec_str(const msgpack_object *rec, const char *key, const char **s, size_t *n, int optional,
               char *err, size_t errlen) {
    const msgpack_object *o = dl_rec_get(rec, key);
    if (!o) return missing(key, optional, err, errlen);
    if (o->type != MSGPACK_OBJECT_STR)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\" is not a string (it is %s)", key,
                         type_name(o->type));
    *s = o->via.str.ptr;
    *n = o->via.str.size;
    return 0;
}

/* ================================================================= writer */
struct dl_writer {
    dl_out *out;
    msgpack_packer pk;
    int err;
    char msg[400];
    uint64_t records;
};

static int pk_write(void *data, const char *buf, size_t len) {
    dl_writer *w = data;
    if (w->err) return -1;
    int rc = dl_out_write(w->out, buf, len, w->msg, sizeof w->msg);
    if (rc) { w->err = rc; return -1; }
    return 0;
}

int dl_writer_open(dl_writer **wp, const char *path, const dl_out_opts *opts, char *err, size_t errlen) {
    *wp = NULL;
    dl_writer *w = calloc(1, sizeof *w);
    if (!w) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = dl_out_open(&w->out, path, opts, err, errlen);
    if (rc) { free(w); return rc; }
    msgpack_packer_init(&w->pk, w, pk_write);
    *wp = w;
    return 0;
}

msgpack_packer *dl_writer_packer(dl_writer *w) { return &w->pk; }

int dl_writer_error(dl_writer *w, char *err, size_t errlen) {
    return w->err ? dl_seterr(err, errlen, w->err, "%s", w->msg) : 0;
}

int dl_writer_raw(dl_writer *w, const void *buf, size_t n) { return pk_write(w, buf, n); }

static int pack_i64_opt(msgpack_packer *pk, const char *key, int64_t v) {
    if (v < 0) return 0;
    return dl_pack_str(pk, key) || msgpack_pack_uint64(pk, (uint64_t)v);
}

int dl_writer_header(dl_writer *w, const dl_header *h) {
    msgpack_packer *pk = &w->pk;
    const char *inv = dl_invocation();
    int add_inv = inv && *inv;
    /* unknown keys, kept as one packed map */
    msgpack_unpacked ex;
    msgpack_unpacked_init(&ex);
    uint32_t n_extra = 0;
    if (h->extra_len) {
        if (msgpack_unpack_next(&ex, h->extra, h->extra_len, NULL) == MSGPACK_UNPACK_SUCCESS &&
            ex.data.type == MSGPACK_OBJECT_MAP)
            n_extra = ex.data.via.map.size;
    }
    uint32_t n = 2 + (h->kind != DL_KIND_NONE) + (h->has_tok != 0) + (h->seq_len >= 0) + (h->has_seed != 0) + n_extra;
    int bad = msgpack_pack_map(pk, n);
    bad = bad || dl_pack_str(pk, "dllm") || msgpack_pack_uint32(pk, h->version ? h->version : 1);
    if (h->kind != DL_KIND_NONE) bad = bad || dl_pack_str(pk, "kind") || dl_pack_str(pk, dl_kind_name(h->kind));
    if (h->has_tok) {
        const dl_tokinfo *t = &h->tok;
        uint32_t m = (t->sha256[0] != 0) + (t->vocab_size >= 0) + (t->mask_id >= 0) + (t->eos_id >= 0) +
                     (t->pad_id >= 0) + (t->bos_id >= 0);
        bad = bad || dl_pack_str(pk, "tokenizer") || msgpack_pack_map(pk, m);
        if (t->sha256[0]) bad = bad || dl_pack_str(pk, "sha256") || dl_pack_str(pk, t->sha256);
        bad = bad || pack_i64_opt(pk, "vocab_size", t->vocab_size) || pack_i64_opt(pk, "mask_id", t->mask_id) ||
              pack_i64_opt(pk, "eos_id", t->eos_id) || pack_i64_opt(pk, "pad_id", t->pad_id) ||
              pack_i64_opt(pk, "bos_id", t->bos_id);
    }
    bad = bad || pack_i64_opt(pk, "seq_len", h->seq_len);
    if (h->has_seed) bad = bad || dl_pack_str(pk, "seed") || msgpack_pack_uint64(pk, h->seed);
    bad = bad || dl_pack_str(pk, "history") || msgpack_pack_array(pk, (uint32_t)h->n_history + (add_inv ? 1 : 0));
    for (size_t i = 0; i < h->n_history && !bad; i++) bad = dl_pack_str(pk, h->history[i]);
    if (add_inv) bad = bad || dl_pack_str(pk, inv);
    for (uint32_t i = 0; i < n_extra && !bad; i++)
        bad = msgpack_pack_object(pk, ex.data.via.map.ptr[i].key) || msgpack_pack_object(pk, ex.data.via.map.ptr[i].val);
    msgpack_unpacked_destroy(&ex);
    if (bad && !w->err) { w->err = -DL_EXIT_IO; snprintf(w->msg, sizeof w->msg, "%s: cannot write header", dl_out_name(w->out)); }
    return w->err;
}

void dl_writer_count(dl_writer *w) { w->records++; }
uint64_t dl_writer_records(const dl_writer *w) { return w->records; }
const char *dl_writer_name(const dl_writer *w) { return dl_out_name(w->out); }

static int writer_finish(dl_writer *w, char *err, size_t errlen) {
    if (w->err) return dl_writer_error(w, err, errlen);
    return dl_out_finish(w->out, err, errlen);
}

int dl_writer_close(dl_writer *w, char *err, size_t errlen) {
    int rc = dl_writer_error(w, err, errlen);
    if (rc) { dl_writer_abort(w); return rc; }
    rc = dl_out_close(w->out, err, errlen);   /* removes the temp itself on failure */
    free(w);
    return rc;
}

void dl_writer_abort(dl_writer *w) {
    if (!w) return;
    dl_out_abort(w->out);
    free(w);
}

/* packing helpers */
int dl_pack_strn(msgpack_packer *pk, const char *s, size_t n) {
    if (n > UINT32_MAX) return -1;
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n) ? -1 : 0;
}
int dl_pack_str(msgpack_packer *pk, const char *s) { return dl_pack_strn(pk, s, strlen(s)); }

int dl_pack_ids(msgpack_packer *pk, const uint32_t *ids, size_t n) {
    if (n > UINT32_MAX / 4) return -1;
    if (msgpack_pack_bin(pk, n * 4)) return -1;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return msgpack_pack_bin_body(pk, ids, n * 4) ? -1 : 0;
#else
    unsigned char tmp[4096];
    for (size_t i = 0; i < n; i += 1024) {
        size_t k = n - i < 1024 ? n - i : 1024;
        dl_u32_to_le(tmp, ids + i, k);
        if (msgpack_pack_bin_body(pk, tmp, k * 4)) return -1;
    }
    return 0;
#endif
}

int dl_pack_f32(msgpack_packer *pk, float v) { return msgpack_pack_float(pk, v) ? -1 : 0; }

int dl_pack_floats(msgpack_packer *pk, const float *v, size_t n) {
    _Static_assert(sizeof(float) == 4, "float32");
    uint32_t tmp[1024];
    if (n > UINT32_MAX / 4 || msgpack_pack_bin(pk, n * 4)) return -1;
    for (size_t i = 0; i < n; i += 1024) {
        size_t k = n - i < 1024 ? n - i : 1024;
        memcpy(tmp, v + i, k * 4);
        unsigned char le[4096];
        dl_u32_to_le(le, tmp, k);
        if (msgpack_pack_bin_body(pk, le, k * 4)) return -1;
    }
    return 0;
}

static int is_known(const msgpack_object *k, const char *const *known) {
    if (k->type != MSGPACK_OBJECT_STR || !known) return 0;
    for (; *known; known++)
        if (key_is(k, *known)) return 1;
    return 0;
}

uint32_t dl_rec_n_extra(const msgpack_object *rec, const char *const *known) {
    if (rec->type != MSGPACK_OBJECT_MAP) return 0;
    uint32_t c = 0;
    for (uint32_t i = 0; i < rec->via.map.size; i++) c += !is_known(&rec->via.map.ptr[i].key, known);
    return c;
}

int dl_pack_extra(msgpack_packer *pk, const msgpack_object *rec, const char *const *known) {
    if (rec->type != MSGPACK_OBJECT_MAP) return 0;
    for (uint32_t i = 0; i < rec->via.map.size; i++) {
        const msgpack_object_kv *kv = &rec->via.map.ptr[i];
        if (is_known(&kv->key, known)) continue;
        if (msgpack_pack_object(pk, kv->key) || msgpack_pack_object(pk, kv->val)) return -1;
    }
    return 0;
}

/* ================================================================ outsets */
struct dl_outset {
    dl_writer **w;
    int n, next;
};

int dl_outset_open(dl_outset **sp, const char *path, int n_shards, const dl_out_opts *opts,
                   char *err, size_t errlen) {
    *sp = NULL;
    if (n_shards < 0 || n_shards > 99999)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--shards %d: must be between 0 and 99999", n_shards);
    if (n_shards > 0 && (!path || strcmp(path, "-") == 0))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--shards needs -o PREFIX (shards are files)");
    dl_outset *s = calloc(1, sizeof *s);
    int n = n_shards ? n_shards : 1;
    if (s) s->w = calloc((size_t)n, sizeof *s->w);
    if (!s || !s->w) { free(s); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    for (int i = 0; i < n; i++) {
        char name[4096];
        if (n_shards) dl_shard_name(name, sizeof name, path, i, n_shards);
        int rc = dl_writer_open(&s->w[i], n_shards ? name : path, opts, err, errlen);
        if (rc) { s->n = i; dl_outset_abort(s); return rc; }
    }
    s->n = n;
    *sp = s;
    return 0;
}

int dl_outset_header(dl_outset *s, const dl_header *h) {
    int rc = 0;
    for (int i = 0; i < s->n; i++) {
        int r = dl_writer_header(s->w[i], h);
        if (r && !rc) rc = r;
    }
    return rc;
}

dl_writer *dl_outset_next(dl_outset *s) {
    dl_writer *w = s->w[s->next];
    if (++s->next == s->n) s->next = 0;
    return w;
}

int dl_outset_close(dl_outset *s, char *err, size_t errlen) {
    int rc = 0;
    for (int i = 0; i < s->n && !rc; i++) rc = writer_finish(s->w[i], err, errlen);
    if (rc) { dl_outset_abort(s); return rc; }
    /* everything is on disk under temporary names: rename them all; if a
     * rename fails, remove the ones already renamed (no partial set) */
    char **done = calloc((size_t)s->n, sizeof *done);
    if (!done) { dl_outset_abort(s); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    int i;
    for (i = 0; i < s->n && !rc; i++) {
        const char *nm = dl_writer_name(s->w[i]);
        done[i] = xstrndup(nm, strlen(nm));
        rc = dl_writer_close(s->w[i], err, errlen);
        s->w[i] = NULL;
        if (!done[i] && !rc) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    for (int j = 0; j < i; j++) {
        if (rc && done[j] && j < i - 1) unlink(done[j]);
        free(done[j]);
    }
    free(done);
    if (rc) { dl_outset_abort(s); return rc; }
    free(s->w);
    free(s);
    return 0;
}

void dl_outset_abort(dl_outset *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) dl_writer_abort(s->w[i]);
    free(s->w);
    free(s);
}

uint64_t dl_outset_records(const dl_outset *s) {
    uint64_t c = 0;
    for (int i = 0; i < s->n; i++)
        if (s->w[i]) c += dl_writer_records(s->w[i]);
    return c;
}

int dl_outset_n(const dl_outset *s) { return s->n; }
dl_writer *dl_outset_writer(dl_outset *s, int i) { return i >= 0 && i < s->n ? s->w[i] : NULL; }

/* ----------------------------------------------------- header extra keys */
int dl_header_set_extra_uint(dl_header *h, const char *key, uint64_t v, char *err, size_t errlen) {
    msgpack_zone zone;
    msgpack_object old = { .type = MSGPACK_OBJECT_NIL };
    msgpack_zone_init(&zone, 2048);
    if (h->extra && h->extra_len) {
        size_t off = 0;
        if (msgpack_unpack(h->extra, h->extra_len, &off, &zone, &old) != MSGPACK_UNPACK_SUCCESS ||
            old.type != MSGPACK_OBJECT_MAP) {
            msgpack_zone_destroy(&zone);
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "header: extra keys are not a map");
        }
    }
    const char *known[] = { key, NULL };
    uint32_t n = old.type == MSGPACK_OBJECT_MAP ? dl_rec_n_extra(&old, known) : 0;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = msgpack_pack_map(&pk, n + 1);
    if (n) rc |= dl_pack_extra(&pk, &old, known);
    rc |= dl_pack_str(&pk, key);
    rc |= msgpack_pack_uint64(&pk, v);
    msgpack_zone_destroy(&zone);
    if (rc) {
        msgpack_sbuffer_destroy(&sb);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    free(h->extra);
    h->extra = sb.data;     /* sbuffer data is malloc'ed: ownership moves to h */
    h->extra_len = sb.size;
    return 0;
}

int dl_header_get_extra_uint(const dl_header *h, const char *key, uint64_t *v) {
    if (!h->extra || !h->extra_len) return 1;
    msgpack_zone zone;
    msgpack_object m;
    size_t off = 0;
    int rc = 1;
    msgpack_zone_init(&zone, 2048);
    if (msgpack_unpack(h->extra, h->extra_len, &off, &zone, &m) == MSGPACK_UNPACK_SUCCESS &&
        m.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *o = dl_rec_get(&m, key);
        if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) { *v = o->via.u64; rc = 0; }
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

/* ----------------------------------------------------------- slicing */
int dl_reader_slice(dl_reader *r, int is_stdin, long long shard_i, long long shard_n, int explicit_shard,
                    uint64_t *lo, uint64_t *hi, char *err, size_t errlen) {
    *lo = 0;
    *hi = UINT64_MAX;
    if (shard_n <= 1) return 0;
    const char *bad = is_stdin ? "-" : first_unrereadable(r);
    if (bad) {
        int std = strcmp(bad, "-") == 0;
        if (explicit_shard)
            return std ? dl_seterr(err, errlen, -DL_EXIT_USAGE,
                                   "--shard needs input files (stdin cannot be sliced; slice upstream)")
                       : dl_seterr(err, errlen, -DL_EXIT_USAGE,
                                   "--shard needs input files (%s is not a regular file and cannot be sliced; "
                                   "slice upstream)", bad);
        dl_verbose("SLURM array slice ignored: input %s is not a regular file (the upstream stage slices)",
                   path_display(bad));
        return 0;
    }
    uint64_t n;
    int rc = dl_reader_count(r, &n, err, errlen);
    if (rc) return rc;
    /* n * i fits: record counts are far below 2^47, slice counts below 2^17 */
    *lo = n * (uint64_t)shard_i / (uint64_t)shard_n;
    *hi = n * (uint64_t)(shard_i + 1) / (uint64_t)shard_n;
    dl_verbose("slice %lld/%lld: records [%llu, %llu) of %llu", shard_i, shard_n,
               (unsigned long long)*lo, (unsigned long long)*hi, (unsigned long long)n);
    return 0;
}
