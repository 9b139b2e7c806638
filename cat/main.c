/* cat/main.c — dllm-cat: print dllm streams as JSON Lines, or turn such JSON
 * Lines back into a stream.
 *
 *   dllm-cat train.msgpack.zst | head           header line, then one line per record
 *   dllm-cat --no-header a.msgpack b.msgpack    records only (to compare streams)
 *   dllm-cat --count shard-*.msgpack.zst        number of records
 *   dllm-cat --from-json rows.jsonl -o rows.msgpack.zst
 *
 * Printing reads through dl_reader, so it checks what every program checks
 * (headers first and compatible, no truncated record, zstd intact).  Only
 * the first header is printed.  The JSON mapping is in cat/cat.h.
 * --from-json writes the header line verbatim (its history is not extended,
 * so stream -> JSON -> stream -> JSON is the identity) after checking it.
 *
 * A closed pipe is what it is for every dllm program (README, exit codes):
 * SIGPIPE is ignored (dl_prog_init), the failed write is an I/O error, one
 * message "<stdout>: write error: Broken pipe", exit 3 -- text output too.
 * Does not: filter or transform records (other programs do that).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cat.h"
#include "dl_io.h"
#include "dl_log.h"
#include "dl_opts.h"
#include "dl_stream.h"

static dl_common common;
static int opt_from_json, opt_no_header, opt_header_only, opt_count;

static const dl_opt OPTS[] = {
    { "Printing", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "no-header", 'n', DL_OPT_FLAG, &opt_no_header, NULL, NULL, "omit the header line (compare record streams)", NULL },
    { "header", 'H', DL_OPT_FLAG, &opt_header_only, NULL, NULL, "print only the (first) header", NULL },
    { "count", 'c', DL_OPT_FLAG, &opt_count, NULL, NULL, "print the number of records only", NULL },
    { "Converting", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "from-json", 'j', DL_OPT_FLAG, &opt_from_json, NULL, NULL,
      "read JSON Lines (first line: a header) and write a msgpack stream", NULL },
    DL_COMMON_OPTS(&common),
    DL_OPTS_END
};

static const char SYNOPSIS[] = "dllm-cat [options] [FILE...]   (no file or '-': stdin)";
static const char DESCRIPTION[] =
    "Prints dllm streams (msgpack, zstd or not, any number of files or shards) as JSON\n"
    "Lines: the first header, then one object per record.  Token-id blobs (ids, x0, xt,\n"
    "docs) print as integer arrays, t_blocks as a float array, float32 with %.9g and\n"
    "float64 with %.17g (exact round trip), other bin values as {\"$bin\":\"<base64>\"}.\n"
    "--from-json reverses it: JSON Lines in, msgpack stream out (-o, --zstd, --shards).";

static dl_out_opts out_opts(int binary) {
    dl_out_opts o;
    dl_common_out_opts(&common, &o);
    o.binary = binary;
    return o;
}

/* ------------------------------------------------------------ printing */
static int print_streams(char **paths, int npaths, char *err, size_t errlen) {
    dl_reader *r = NULL;
    dl_out *out = NULL;
    dl_strbuf line = {0};
    const msgpack_object *rec;
    uint64_t n = 0;
    dl_out_opts oo = out_opts(0);
    int rc = dl_reader_open(&r, paths, npaths, err, errlen);
    if (!rc) rc = dl_reader_peek_header(r, err, errlen);
    if (!rc) rc = dl_out_open(&out, common.output, &oo, err, errlen);
    if (!rc && !opt_count && !opt_no_header) {
        rc = cat_to_json(&line, dl_reader_header_obj(r));
        if (!rc) rc = dl_strbuf_append(&line, "\n", 1);
        if (rc) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        else rc = dl_out_write(out, line.p, line.n, err, errlen);
    }
    if (!opt_header_only) {
        while (!rc && (rc = dl_reader_next(r, &rec, err, errlen)) > 0) {
            n++;
            if (opt_count) { rc = 0; continue; }
            line.n = 0;
            if (cat_to_json(&line, rec) || dl_strbuf_append(&line, "\n", 1)) {
                rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
                break;
            }
            if (line.n) rc = dl_out_write(out, line.p, line.n, err, errlen);
        }
    }
    if (!rc && opt_count) {
        char t[32];
        int k = snprintf(t, sizeof t, "%llu\n", (unsigned long long)n);
        rc = dl_out_write(out, t, (size_t)k, err, errlen);
    }
    if (!rc) {
        rc = dl_out_close(out, err, errlen);
        out = NULL;
    }
    dl_out_abort(out);
    dl_reader_close(r);
    dl_strbuf_free(&line);
    return rc;
}

/* ---------------------------------------------------------- from JSON */
typedef struct {
    dl_in *in;
    char *buf;
    size_t len, pos, cap;
    uint64_t line;
} line_reader;

/* Next line without its '\n' (NUL-terminated in place): 1, 0 at EOF, <0. */
static int next_line(line_reader *lr, char **s, size_t *n, char *err, size_t errlen) {
    for (;;) {
        char *nl = lr->pos < lr->len ? memchr(lr->buf + lr->pos, '\n', lr->len - lr->pos) : NULL;
        if (nl || (lr->in == NULL && lr->pos < lr->len)) {
            size_t end = nl ? (size_t)(nl - lr->buf) : lr->len;
            *s = lr->buf + lr->pos;
            *n = end - lr->pos;
            lr->buf[end] = '\0';   /* buf always has one spare byte */
            lr->pos = nl ? end + 1 : lr->len;
            lr->line++;
            return 1;
        }
        if (!lr->in) return 0;
        if (lr->pos) {
            memmove(lr->buf, lr->buf + lr->pos, lr->len - lr->pos);
            lr->len -= lr->pos;
            lr->pos = 0;
        }
        if (lr->cap - lr->len < (1u << 16) + 1) {
            size_t nc = lr->cap ? lr->cap * 2 : 1u << 20;
            char *p = realloc(lr->buf, nc);
            if (!p) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            lr->buf = p;
            lr->cap = nc;
        }
        ssize_t k = dl_in_read(lr->in, lr->buf + lr->len, lr->cap - lr->len - 1, err, errlen);
        if (k < 0) return (int)k;
        if (k == 0) { dl_in_close(lr->in); lr->in = NULL; }
        lr->len += (size_t)k;
    }
}

static int is_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
    return 1;
}

/* Pack a header line to bytes, check it parses as a dllm header. */
static int pack_header(json_t *j, msgpack_sbuffer *sb, char *err, size_t errlen) {
    msgpack_packer pk;
    msgpack_sbuffer_clear(sb);
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    int rc = cat_from_json(&pk, j, NULL, err, errlen);
    if (rc) return rc;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    dl_header h;
    if (msgpack_unpack_next(&u, sb->data, sb->size, NULL) != MSGPACK_UNPACK_SUCCESS)
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "cannot re-read the packed header");
    else if (!(rc = dl_header_from_obj(&h, &u.data, err, errlen)))
        dl_header_free(&h);
    msgpack_unpacked_destroy(&u);
    return rc;
}

static int convert_file(const char *path, dl_outset *os, int *seen_header, msgpack_sbuffer *sb,
                        char *err, size_t errlen) {
    line_reader lr = {0};
    int rc = dl_in_open(&lr.in, path, err, errlen);
    const char *name = lr.in ? dl_in_name(lr.in) : path;
    char namebuf[1024];
    snprintf(namebuf, sizeof namebuf, "%s", name ? name : "<stdin>");
    char *s = NULL;
    size_t n = 0;
    char msg[512];
    while (!rc && (rc = next_line(&lr, &s, &n, err, errlen)) > 0) {
        rc = 0;
        if (is_blank(s, n)) continue;
        json_error_t je;
        json_t *j = json_loadb(s, n, JSON_ALLOW_NUL, &je);
        if (!j) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: line %llu: invalid JSON: %s (column %d)", namebuf,
                           (unsigned long long)lr.line, je.text, je.column);
            break;
        }
        if (!json_is_object(j)) {
            json_decref(j);
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: line %llu: not a JSON object (records and headers are objects)",
                           namebuf, (unsigned long long)lr.line);
            break;
        }
        int hdr = json_object_get(j, "dllm") != NULL;
        if (!*seen_header && !hdr) {
            json_decref(j);
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: line %llu: the first line must be a header (an object with \"dllm\")",
                           namebuf, (unsigned long long)lr.line);
            break;
        }
        if (hdr) {
            /* headers go verbatim to every output */
            rc = pack_header(j, sb, msg, sizeof msg);
            for (int i = 0; !rc && i < dl_outset_n(os); i++)
                if (dl_writer_raw(dl_outset_writer(os, i), sb->data, sb->size))
                    rc = dl_writer_error(dl_outset_writer(os, i), msg, sizeof msg);
            *seen_header = 1;
        } else {
            dl_writer *w = dl_outset_next(os);
            rc = cat_from_json(dl_writer_packer(w), j, NULL, msg, sizeof msg);
            int werr = dl_writer_error(w, msg, sizeof msg);
            if (werr) { json_decref(j); rc = werr; dl_seterr(err, errlen, rc, "%s", msg); break; }
            dl_writer_count(w);
        }
        json_decref(j);
        if (rc) dl_seterr(err, errlen, rc, "%s: line %llu: %s", namebuf, (unsigned long long)lr.line, msg);
    }
    if (!rc && !*seen_header) rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: empty input / no header", namebuf);
    dl_in_close(lr.in);
    free(lr.buf);
    return rc;
}

static int from_json(char **paths, int npaths, char *err, size_t errlen) {
    dl_outset *os = NULL;
    dl_out_opts oo = out_opts(1);
    int rc = dl_outset_open(&os, common.output, (int)common.shards, &oo, err, errlen);
    if (rc) return rc;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    int seen_header = 0;
    for (int i = 0; i < (npaths ? npaths : 1) && !rc; i++)
        rc = convert_file(npaths ? paths[i] : "-", os, &seen_header, &sb, err, errlen);
    msgpack_sbuffer_destroy(&sb);
    if (rc) { dl_outset_abort(os); return rc; }
    return dl_outset_close(os, err, errlen);
}

int main(int argc, char **argv) {
    char err[1024];
    char **paths = NULL;
    int npaths = 0;
    dl_prog_init("dllm-cat", argc, argv);
    int rc = dl_opts_parse(OPTS, argc, argv, &paths, &npaths, err, sizeof err);
    if (rc < 0) dl_die(DL_EXIT_USAGE, "%s", err);
    if (common.help || common.version) free(paths);   /* the only allocation so far */
    if (common.help) return dl_opts_help(OPTS, SYNOPSIS, DESCRIPTION);
    if (common.version) { printf("dllm-cat %s\n", DL_VERSION); return 0; }
    if (dl_common_finish(&common, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);
    if (common.shard_given) dl_die(DL_EXIT_USAGE, "--shard: dllm-cat reads whole inputs (give it the shard files)");
    if (opt_from_json && (opt_no_header || opt_header_only || opt_count))
        dl_die(DL_EXIT_USAGE, "--from-json cannot be combined with --no-header, --header or --count");
    if (!opt_from_json && common.shards)
        dl_die(DL_EXIT_USAGE, "--shards only applies to --from-json (JSON output is one file)");

    if (opt_from_json) {
        rc = from_json(paths, npaths, err, sizeof err);
    } else {
        rc = print_streams(paths, npaths, err, sizeof err);
    }
    free(paths);
    if (rc) dl_die(-rc, "%s", err);
    return 0;
}
