/* test_stream.c — unit tests of dl_base (buffers, errors, SHA-256), dl_io
 * (zstd detection on files and pipes, multi-frame, truncation/corruption,
 * temp+rename, write errors) and dl_stream (headers, compat, reader errors,
 * record accessors, round trips, shards).  Files go to a fresh temp dir.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "dl_io.h"
#include "dl_log.h"
#include "dl_mpscan.h"
#include "dl_stream.h"
#include "dl_test.h"

static char dir[256];
static char err[1024];

static const char *P(const char *name) {   /* path in the temp dir (rotating buffers) */
    static char buf[8][512];
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static int exists(const char *p) { struct stat st; return stat(p, &st) == 0; }

static long fsize(const char *p) { struct stat st; return stat(p, &st) == 0 ? (long)st.st_size : -1; }

static int write_bytes(const char *p, const void *d, size_t n) {
    FILE *f = fopen(p, "wb");
    if (!f) return -1;
    size_t w = fwrite(d, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static char *slurp(const char *p, size_t *n) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long l = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *d = malloc((size_t)l + 1);
    *n = fread(d, 1, (size_t)l, f);
    fclose(f);
    return d;
}

static void test_header(dl_header *h, const char *sha, int64_t seq_len) {
    dl_header_init(h, DL_KIND_ROWS);
    h->has_tok = 1;
    snprintf(h->tok.sha256, sizeof h->tok.sha256, "%s", sha);
    h->tok.vocab_size = 1000;
    h->tok.mask_id = 999;
    h->seq_len = seq_len;
}

/* record i: {"ids": [i, i+1, ... (len ids)], "i": i, "name": "r<i>"} */
static int write_stream(const char *path, int zstd, const char *sha, int first, int n, size_t len) {
    dl_out_opts o = DL_OUT_OPTS_DEFAULT;
    o.zstd = zstd;
    dl_writer *w;
    if (dl_writer_open(&w, path, &o, err, sizeof err)) return -1;
    dl_header h;
    test_header(&h, sha, (int64_t)len);
    dl_writer_header(w, &h);
    dl_header_free(&h);
    uint32_t *ids = malloc(len * sizeof *ids);
    msgpack_packer *pk = dl_writer_packer(w);
    for (int i = first; i < first + n; i++) {
        for (size_t j = 0; j < len; j++) ids[j] = (uint32_t)(i + j) % 1000;
        char name[32];
        snprintf(name, sizeof name, "r%d", i);
        msgpack_pack_map(pk, 3);
        dl_pack_str(pk, "ids"); dl_pack_ids(pk, ids, len);
        dl_pack_str(pk, "i"); msgpack_pack_uint32(pk, (uint32_t)i);
        dl_pack_str(pk, "name"); dl_pack_str(pk, name);
        dl_writer_count(w);
    }
    free(ids);
    return dl_writer_close(w, err, sizeof err) ? -1 : 0;
}

/* read all records of paths, check they are first..first+n-1 in order; returns count or <0 */
static long read_check(char *const *paths, int np, int first, size_t len, int *ok) {
    dl_reader *r;
    *ok = 1;
    if (dl_reader_open(&r, paths, np, err, sizeof err)) return -1;
    const msgpack_object *rec;
    dl_u32buf ids = {0};
    long c = 0;
    int rc;
    while ((rc = dl_reader_next(r, &rec, err, sizeof err)) > 0) {
        uint64_t i;
        if (dl_rec_uint(rec, "i", &i, 0, err, sizeof err) || (int)i != first + c) *ok = 0;
        if (dl_rec_ids(rec, "ids", &ids, 0, 1000, err, sizeof err) || ids.n != len) *ok = 0;
        for (size_t j = 0; j < ids.n && *ok; j++)
            if (ids.p[j] != (uint32_t)(i + j) % 1000) *ok = 0;
        if (dl_reader_index(r) != (uint64_t)c) *ok = 0;
        c++;
    }
    dl_u32buf_free(&ids);
    dl_reader_close(r);
    return rc < 0 ? rc : c;
}

static int read_err(char *const *paths, int np, char *msg, size_t msglen) {
    dl_reader *r;
    int rc = dl_reader_open(&r, paths, np, msg, msglen);
    if (rc) return rc;
    const msgpack_object *rec;
    while ((rc = dl_reader_next(r, &rec, msg, msglen)) > 0) {}
    dl_reader_close(r);
    return rc;
}

/* ------------------------------------------------------------------ base */
static void t_base(void) {
    static const struct { size_t n; char c; const char *hex; } V[] = {
        {0, 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {55, 'x', "d5e285683cd4efc02d021a5c62014694958901005d6f71e89e0989fac77e4072"},
        {56, 'x', "04c26261370ee7541549d16dee320c723e3fd14671e66a099afe0a377c16888e"},
        {63, 'x', "75220b47218278e656f2013bb8f0c455a25eaf01e86c64924e9d48d89776d6f2"},
        {64, 'x', "7ce100971f64e7001e8fe5a51973ecdfe1ced42befe7ee8d5fd6219506b5393c"},
        {119, 'x', "000b48d4edf0fa7bee3c6236ecd2785baa5db4eeb8bb54341b029e0d9fa5fb0c"},
        {128, 'x', "24da1b81d0b16df6428eee73c69fcb2a93c76bc6df706f0c6670fe6bfe800464"},
        {1000000, 'a', "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"},
    };
    char hex[65];
    for (size_t k = 0; k < sizeof V / sizeof *V; k++) {
        char *d = malloc(V[k].n + 1);
        memset(d, V[k].c, V[k].n);
        dl_sha256_hex(d, V[k].n, hex);
        DL_CHECK(!strcmp(hex, V[k].hex), "sha256 of %zu x '%c'", V[k].n, V[k].c ? V[k].c : '0');
        free(d);
    }
    dl_sha256_hex("abc", 3, hex);
    DL_CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"), "sha256 abc");
    const char *s56 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    dl_sha256_hex(s56, strlen(s56), hex);
    DL_CHECK(!strcmp(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"), "sha256 FIPS 2-block vector");

    char e[64];
    DL_CHECK(dl_seterr(e, sizeof e, -DL_EXIT_DATA, "x %d", 5) == -DL_EXIT_DATA && !strcmp(e, "x 5"), "dl_seterr");
    dl_err_prefix(e, sizeof e, "file%d", 1);
    DL_CHECK(!strcmp(e, "file1: x 5"), "dl_err_prefix (%s)", e);
    DL_CHECK(strstr(DL_EXIT_HELP, "130") && strstr(DL_EXIT_HELP, "data error"), "DL_EXIT_HELP text");

    dl_strbuf b = {0};
    dl_strbuf_puts(&b, "ab");
    dl_strbuf_printf(&b, "%d-%s", 42, "zz");
    for (int i = 0; i < 1000; i++) dl_strbuf_append(&b, "0123456789", 10);
    DL_CHECK(b.n == 7 + 10000 && !memcmp(b.p, "ab42-zz0123", 11) && b.p[b.n] == 0, "strbuf append/printf");
    dl_strbuf_free(&b);
    dl_u32buf u = {0};
    for (uint32_t i = 0; i < 5000; i++) dl_u32buf_push(&u, i);
    uint32_t more[3] = {7, 8, 9};
    dl_u32buf_append(&u, more, 3);
    DL_CHECK(u.n == 5003 && u.p[4999] == 4999 && u.p[5002] == 9, "u32buf push/append");
    unsigned char le[8];
    uint32_t two[2] = {0x01020304u, 0xA0B0C0D0u}, back[2];
    dl_u32_to_le(le, two, 2);
    dl_u32_from_le(back, le, 2);
    DL_CHECK(le[0] == 4 && le[3] == 1 && le[4] == 0xD0 && back[0] == two[0] && back[1] == two[1], "LE conversion");
    dl_u32buf_free(&u);
}

/* -------------------------------------------------------------------- io */
static void t_io(void) {
    char sn[256];
    dl_shard_name(sn, sizeof sn, "out/train", 3, 16);
    DL_CHECK(!strcmp(sn, "out/train-00003-of-00016.msgpack.zst"), "dl_shard_name (%s)", sn);
    dl_shard_name(sn, sizeof sn, "out/train.msgpack.zst", 0, 2);
    DL_CHECK(!strcmp(sn, "out/train-00000-of-00002.msgpack.zst"), "dl_shard_name strips .msgpack.zst (%s)", sn);

    /* zstd by suffix, magic on disk, read back; multi-frame */
    dl_out *o;
    dl_out_opts oo = DL_OUT_OPTS_DEFAULT;
    int rc = dl_out_open(&o, P("a.txt.zst"), &oo, err, sizeof err);
    dl_out_write(o, "hello ", 6, err, sizeof err);
    DL_CHECK(!exists(P("a.txt.zst")), "output not under its final name before close");
    rc |= dl_out_close(o, err, sizeof err);
    DL_CHECK(rc == 0 && exists(P("a.txt.zst")), "dl_out close renames");
    size_t n;
    char *d = slurp(P("a.txt.zst"), &n);
    DL_CHECK(n > 4 && (unsigned char)d[0] == 0x28 && (unsigned char)d[1] == 0xb5 && (unsigned char)d[2] == 0x2f &&
             (unsigned char)d[3] == 0xfd, "zstd magic written for .zst");
    rc = dl_out_open(&o, P("b.zst"), &oo, err, sizeof err);
    dl_out_write(o, "world", 5, err, sizeof err);
    dl_out_close(o, err, sizeof err);
    size_t n2;
    char *d2 = slurp(P("b.zst"), &n2);
    char *cat = malloc(n + n2);
    memcpy(cat, d, n); memcpy(cat + n, d2, n2);
    write_bytes(P("ab.zst"), cat, n + n2);
    char *all; size_t alln;
    rc = dl_read_file(P("ab.zst"), &all, &alln, err, sizeof err);
    DL_CHECK(rc == 0 && alln == 11 && !memcmp(all, "hello world", 11), "two concatenated zstd frames read as one");
    if (!rc) free(all);

    /* truncated and corrupt zstd */
    write_bytes(P("trunc.zst"), cat, n + n2 - 3);
    rc = dl_read_file(P("trunc.zst"), &all, &alln, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "truncated zstd") && strstr(err, "trunc.zst"), "truncated zstd frame: %s", err);
    dl_out_opts oz = DL_OUT_OPTS_DEFAULT;
    char big[100000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)(i * 7 % 251);
    dl_out_open(&o, P("big.zst"), &oz, err, sizeof err);
    dl_out_write(o, big, sizeof big, err, sizeof err);
    dl_out_close(o, err, sizeof err);
    size_t bn;
    char *bz = slurp(P("big.zst"), &bn);
    for (size_t i = bn / 2; i < bn / 2 + 16 && i < bn; i++) bz[i] ^= 0x5a;
    write_bytes(P("bad.zst"), bz, bn);
    rc = dl_read_file(P("bad.zst"), &all, &alln, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "bad.zst") && strstr(err, "byte"), "corrupt zstd: %s", err);
    free(bz);

    /* missing file: I/O error naming it */
    dl_in *in;
    rc = dl_in_open(&in, P("nope"), err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO && strstr(err, "nope"), "missing input: %s", err);

    /* zstd detection through a pipe (no seeking, no ungetc) */
    int fds[2];
    if (pipe(fds) == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            /* dribble the magic byte by byte to exercise the peek loop */
            for (size_t i = 0; i < n + n2; i++)
                if (write(fds[1], cat + i, 1) != 1) _exit(1);
            _exit(0);
        }
        close(fds[1]);
        char dev[64];
        snprintf(dev, sizeof dev, "/dev/fd/%d", fds[0]);
        rc = dl_read_file(dev, &all, &alln, err, sizeof err);
        DL_CHECK(rc == 0 && alln == 11 && !memcmp(all, "hello world", 11), "zstd detected on a pipe");
        if (!rc) free(all);
        close(fds[0]);
        waitpid(pid, NULL, 0);
    }
    free(d); free(d2); free(cat);

    /* abort leaves nothing; plain by default */
    dl_out_open(&o, P("gone.msgpack"), &oo, err, sizeof err);
    dl_out_write(o, big, sizeof big, err, sizeof err);
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", P("gone.msgpack"), (long)getpid());
    DL_CHECK(exists(tmp), "temp file exists while writing");
    dl_out_abort(o);
    DL_CHECK(!exists(tmp) && !exists(P("gone.msgpack")), "abort removes the temp file");

    /* write error detected at close: stdout on /dev/full */
    int full = open("/dev/full", O_WRONLY);
    if (full >= 0) {
        fflush(stdout);
        int saved = dup(1);
        dup2(full, 1);
        dl_out_opts ot = DL_OUT_OPTS_DEFAULT;
        ot.binary = 0;
        rc = dl_out_open(&o, NULL, &ot, err, sizeof err);
        int wrc = dl_out_write(o, "x", 1, err, sizeof err);   /* buffered: fine */
        int crc = dl_out_close(o, err, sizeof err);
        dup2(saved, 1);
        close(saved); close(full);
        DL_CHECK(rc == 0 && wrc == 0 && crc == -DL_EXIT_IO && strstr(err, "No space"), "ENOSPC reported at close: %s", err);
    } else {
        printf("skip - /dev/full: not available\n");
    }
    /* a device is written in place: no /dev/null.tmp.<pid> */
    rc = dl_out_open(&o, "/dev/null", &oo, err, sizeof err);
    if (!rc) dl_out_write(o, "x", 1, err, sizeof err);
    snprintf(tmp, sizeof tmp, "/dev/null.tmp.%ld", (long)getpid());
    DL_CHECK(rc == 0 && !exists(tmp), "/dev/null written in place");
    DL_CHECK(rc == 0 && dl_out_close(o, err, sizeof err) == 0, "/dev/null close");
    /* big writes bypass the staging buffer; output is still intact */
    char *huge = malloc(3u << 20);
    for (size_t i = 0; i < (3u << 20); i++) huge[i] = (char)(i % 253);
    dl_out_open(&o, P("huge.bin"), &oo, err, sizeof err);
    dl_out_write(o, "abc", 3, err, sizeof err);
    dl_out_write(o, huge, 3u << 20, err, sizeof err);
    rc = dl_out_close(o, err, sizeof err);
    size_t hn;
    char *h = slurp(P("huge.bin"), &hn);
    DL_CHECK(rc == 0 && hn == 3 + (3u << 20) && !memcmp(h, "abc", 3) && !memcmp(h + 3, huge, 3u << 20), "large writes");
    free(h); free(huge);
}

/* ----------------------------------------------------------------- stream */
static void t_headers(void) {
    dl_header a, b, c;
    test_header(&a, "aaaa", 8);
    DL_CHECK(dl_kind_parse("masked", 6) == DL_KIND_MASKED && dl_kind_parse("foo", 3) == DL_KIND_NONE &&
             !strcmp(dl_kind_name(DL_KIND_SCORES), "scores"), "kind names");
    dl_header_copy(&b, &a);
    DL_CHECK(dl_header_compatible(&a, &b, err, sizeof err) == 0, "copy is compatible");
    snprintf(b.tok.sha256, sizeof b.tok.sha256, "bbbb");
    DL_CHECK(dl_header_compatible(&a, &b, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "tokenizer"), "different tokenizer: %s", err);
    dl_header_free(&b);
    dl_header_copy(&b, &a);
    b.seq_len = 16;
    DL_CHECK(dl_header_compatible(&a, &b, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "seq_len"), "different seq_len: %s", err);
    b.seq_len = 8; b.kind = DL_KIND_MASKED;
    DL_CHECK(dl_header_compatible(&a, &b, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "kind"), "different kind: %s", err);
    dl_header_free(&b);

    /* header -> bytes (with history + extra keys) -> header */
    a.has_seed = 1; a.seed = 12345678901234ull;
    a.history = calloc(1, sizeof(char *));
    a.history[0] = strdup("dllm-tok -t x");
    a.n_history = 1;
    msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
    msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    dl_pack_str(&pk, "dllm"); msgpack_pack_uint32(&pk, 1);
    dl_pack_str(&pk, "lang"); dl_pack_str(&pk, "fr");
    dl_pack_str(&pk, "block"); msgpack_pack_uint32(&pk, 32);
    msgpack_unpacked u; msgpack_unpacked_init(&u);
    msgpack_unpack_next(&u, sb.data, sb.size, NULL);
    DL_CHECK(dl_header_from_obj(&c, &u.data, err, sizeof err) == 0 && c.extra_len > 0, "unknown header keys kept");
    a.extra = c.extra; a.extra_len = c.extra_len; c.extra = NULL; c.extra_len = 0;
    dl_header_free(&c);

    dl_writer *w;
    dl_out_opts oo = DL_OUT_OPTS_DEFAULT;
    dl_writer_open(&w, P("h.msgpack"), &oo, err, sizeof err);
    dl_writer_header(w, &a);
    DL_CHECK(dl_writer_close(w, err, sizeof err) == 0, "writer close");
    dl_reader *r;
    char *paths[] = {(char *)P("h.msgpack")};
    dl_reader_open(&r, paths, 1, err, sizeof err);
    int rc = dl_reader_peek_header(r, err, sizeof err);
    const dl_header *g = dl_reader_header(r);
    DL_CHECK(rc == 0 && g && g->kind == DL_KIND_ROWS && g->seq_len == 8 && g->has_seed && g->seed == a.seed &&
             !strcmp(g->tok.sha256, "aaaa") && g->tok.vocab_size == 1000 && g->tok.mask_id == 999 &&
             g->tok.eos_id == -1, "header fields round trip");
    DL_CHECK(g && g->n_history == 2 && !strcmp(g->history[0], "dllm-tok -t x") && strstr(g->history[1], "test_stream"),
             "history gets the invocation appended");
    const msgpack_object *ho = dl_reader_header_obj(r);
    DL_CHECK(ho && dl_rec_get(ho, "lang") && dl_rec_get(ho, "block") && dl_rec_get(ho, "block")->via.u64 == 32,
             "extra header keys carried through");
    DL_CHECK(dl_reader_expect(r, 1u << DL_KIND_ROWS | 1u << DL_KIND_MASKED, err, sizeof err) == 0, "expect rows ok");
    DL_CHECK(dl_reader_expect(r, 1u << DL_KIND_TOKENS, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "tokens"),
             "expect tokens fails: %s", err);
    const msgpack_object *rec;
    DL_CHECK(dl_reader_next(r, &rec, err, sizeof err) == 0, "header-only stream has no records");
    dl_reader_close(r);
    /* version 2 is refused */
    msgpack_sbuffer_clear(&sb);
    msgpack_pack_map(&pk, 1);
    dl_pack_str(&pk, "dllm"); msgpack_pack_uint32(&pk, 2);
    msgpack_unpack_next(&u, sb.data, sb.size, NULL);
    DL_CHECK(dl_header_from_obj(&c, &u.data, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "version"), "version 2 refused");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
    dl_header_free(&a);
}

static void t_reader(void) {
    int ok;
    /* plain and zstd round trips, records bigger than one read */
    DL_CHECK(write_stream(P("p.msgpack"), -1, "aaaa", 0, 2000, 256) == 0, "write plain stream");
    DL_CHECK(write_stream(P("z.msgpack.zst"), -1, "aaaa", 2000, 3000, 256) == 0, "write zstd stream");
    size_t n;
    char *z = slurp(P("z.msgpack.zst"), &n);
    DL_CHECK(n > 4 && (unsigned char)z[0] == 0x28, "zstd stream by suffix");
    free(z);
    char *p1[] = {(char *)P("p.msgpack")};
    DL_CHECK(read_check(p1, 1, 0, 256, &ok) == 2000 && ok, "plain round trip");
    char *p2[] = {(char *)P("p.msgpack"), (char *)P("z.msgpack.zst")};
    DL_CHECK(read_check(p2, 2, 0, 256, &ok) == 5000 && ok, "plain + zstd files read as one stream");
    DL_CHECK(write_stream(P("large.msgpack.zst"), -1, "aaaa", 0, 3, 600000) == 0, "write 2.4 MB records");
    char *p3[] = {(char *)P("large.msgpack.zst")};
    DL_CHECK(read_check(p3, 1, 0, 600000, &ok) == 3 && ok, "records larger than the read size");

    /* count and rewind */
    dl_reader *r;
    dl_reader_open(&r, p2, 2, err, sizeof err);
    uint64_t cnt = 0;
    const msgpack_object *rec;
    DL_CHECK(dl_reader_count(r, &cnt, err, sizeof err) == 0 && cnt == 5000, "dl_reader_count");
    DL_CHECK(dl_reader_total_bytes(r) == (uint64_t)(fsize(P("p.msgpack")) + fsize(P("z.msgpack.zst"))), "total bytes");
    int k = 0;
    while (dl_reader_next(r, &rec, err, sizeof err) > 0 && k < 2500) k++;
    DL_CHECK(dl_reader_file_index(r) == 500 && !strcmp(dl_reader_file(r), P("z.msgpack.zst")) &&
             strstr(dl_reader_where(r), "z.msgpack.zst: record 500"), "file index / where (%s)", dl_reader_where(r));
    DL_CHECK(dl_reader_rewind(r, err, sizeof err) == 0 && dl_reader_next(r, &rec, err, sizeof err) == 1 &&
             dl_rec_get(rec, "i")->via.u64 == 0, "rewind restarts");
    dl_reader_close(r);

    /* compatible re-appearing header: cat a b */
    write_stream(P("c1.msgpack"), 0, "aaaa", 0, 10, 8);
    write_stream(P("c2.msgpack"), 0, "aaaa", 10, 10, 8);
    size_t n1, n2;
    char *a = slurp(P("c1.msgpack"), &n1), *b = slurp(P("c2.msgpack"), &n2);
    char *ab = malloc(n1 + n2);
    memcpy(ab, a, n1); memcpy(ab + n1, b, n2);
    write_bytes(P("cat.msgpack"), ab, n1 + n2);
    char *pc[] = {(char *)P("cat.msgpack")};
    DL_CHECK(read_check(pc, 1, 0, 8, &ok) == 20 && ok, "compatible headers mid-stream are consumed");

    /* incompatible */
    write_stream(P("d.msgpack"), 0, "bbbb", 10, 10, 8);
    char *pd[] = {(char *)P("c1.msgpack"), (char *)P("d.msgpack")};
    int rc = read_err(pd, 2, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "d.msgpack") && strstr(err, "incompatible"), "incompatible header: %s", err);

    /* truncated record at EOF */
    write_bytes(P("t.msgpack"), a, n1 - 5);
    char *pt[] = {(char *)P("t.msgpack")};
    rc = read_err(pt, 1, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "t.msgpack: record 9: truncated"), "truncated record: %s", err);

    /* empty input */
    write_bytes(P("empty.msgpack"), "", 0);
    char *pe[] = {(char *)P("empty.msgpack")};
    rc = read_err(pe, 1, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "empty.msgpack: empty input / no header"), "empty input: %s", err);

    /* no header first */
    static const unsigned char nohdr[] = {0x81, 0xa1, 'a', 0x01};
    write_bytes(P("nohdr.msgpack"), nohdr, sizeof nohdr);
    char *pn[] = {(char *)P("nohdr.msgpack")};
    rc = read_err(pn, 1, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "nohdr.msgpack: record 0") && strstr(err, "header"), "no header: %s", err);

    /* malformed msgpack (0xc1 is never used) */
    memcpy(ab, a, n1);
    ab[n1] = (char)0xc1;
    write_bytes(P("mal.msgpack"), ab, n1 + 1);
    char *pm[] = {(char *)P("mal.msgpack")};
    rc = read_err(pm, 1, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "record 10") && strstr(err, "malformed"), "malformed: %s", err);

    /* a non-map record */
    memcpy(ab, a, n1);
    ab[n1] = 0x05;
    write_bytes(P("int.msgpack"), ab, n1 + 1);
    char *pi[] = {(char *)P("int.msgpack")};
    rc = read_err(pi, 1, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "not a map"), "non-map record: %s", err);

    /* missing file: I/O */
    char *pmiss[] = {(char *)P("missing.msgpack")};
    rc = read_err(pmiss, 1, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO && strstr(err, "missing.msgpack"), "missing file: %s", err);
    free(a); free(b); free(ab);
}

static void t_records(void) {
    msgpack_sbuffer sb; msgpack_sbuffer_init(&sb);
    msgpack_packer pk; msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    uint32_t ids[4] = {1, 2, 3, 5000};
    float fl[2] = {0.25f, -1.5f};
    msgpack_pack_map(&pk, 7);
    dl_pack_str(&pk, "ids"); dl_pack_ids(&pk, ids, 4);
    dl_pack_str(&pk, "n"); msgpack_pack_uint32(&pk, 7);
    dl_pack_str(&pk, "t"); dl_pack_f32(&pk, 0.5f);
    dl_pack_str(&pk, "s"); dl_pack_strn(&pk, "hey", 3);
    dl_pack_str(&pk, "neg"); msgpack_pack_int32(&pk, -3);
    dl_pack_str(&pk, "odd"); msgpack_pack_bin(&pk, 3); msgpack_pack_bin_body(&pk, "abc", 3);
    dl_pack_str(&pk, "tb"); dl_pack_floats(&pk, fl, 2);
    msgpack_unpacked u; msgpack_unpacked_init(&u);
    msgpack_unpack_next(&u, sb.data, sb.size, NULL);
    const msgpack_object *rec = &u.data;
    dl_u32buf b = {0};
    DL_CHECK(dl_rec_ids(rec, "ids", &b, 0, 0, err, sizeof err) == 0 && b.n == 4 && b.p[3] == 5000, "dl_rec_ids");
    DL_CHECK(dl_rec_ids(rec, "ids", &b, 0, 1000, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "5000"), "vocab check: %s", err);
    DL_CHECK(dl_rec_ids(rec, "x0", &b, 1, 0, err, sizeof err) == 1 && b.n == 0, "optional missing ids");
    DL_CHECK(dl_rec_ids(rec, "x0", &b, 0, 0, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "missing key \"x0\""), "missing ids: %s", err);
    DL_CHECK(dl_rec_ids(rec, "odd", &b, 0, 0, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "multiple of 4"), "odd bin: %s", err);
    DL_CHECK(dl_rec_ids(rec, "n", &b, 0, 0, err, sizeof err) == -DL_EXIT_DATA && strstr(err, "not a bin"), "non-bin ids: %s", err);
    uint64_t v = 0;
    double f = 0;
    const char *s; size_t sn;
    DL_CHECK(dl_rec_uint(rec, "n", &v, 0, err, sizeof err) == 0 && v == 7, "dl_rec_uint");
    DL_CHECK(dl_rec_uint(rec, "neg", &v, 0, err, sizeof err) == -DL_EXIT_DATA, "negative is not uint");
    DL_CHECK(dl_rec_uint(rec, "zz", &v, 1, err, sizeof err) == 1 && v == 7, "optional uint leaves value");
    DL_CHECK(dl_rec_float(rec, "t", &f, 0, err, sizeof err) == 0 && f == 0.5, "dl_rec_float f32");
    DL_CHECK(dl_rec_float(rec, "n", &f, 0, err, sizeof err) == 0 && f == 7.0, "dl_rec_float from int");
    DL_CHECK(dl_rec_str(rec, "s", &s, &sn, 0, err, sizeof err) == 0 && sn == 3 && !memcmp(s, "hey", 3), "dl_rec_str");
    DL_CHECK(dl_rec_str(rec, "n", &s, &sn, 0, err, sizeof err) == -DL_EXIT_DATA, "non-string str");
    const msgpack_object *tb = dl_rec_get(rec, "tb");
    float back[2];
    if (tb && tb->type == MSGPACK_OBJECT_BIN && tb->via.bin.size == 8) memcpy(back, tb->via.bin.ptr, 8);
    DL_CHECK(tb && tb->via.bin.size == 8 && back[0] == 0.25f && back[1] == -1.5f, "dl_pack_floats");
    uint32_t bad[2] = {3, 7};
    dl_header h; test_header(&h, "x", 2); h.tok.vocab_size = 5;
    DL_CHECK(dl_ids_check_vocab(bad, 2, &h, "x0", err, sizeof err) == -DL_EXIT_DATA && strstr(err, "position 1"), "dl_ids_check_vocab: %s", err);
    h.has_tok = 0;
    DL_CHECK(dl_ids_check_vocab(bad, 2, &h, "x0", err, sizeof err) == 0, "no vocab, no check");
    static const char *const known[] = {"ids", "t", "tb", NULL};
    DL_CHECK(dl_rec_n_extra(rec, known) == 4, "dl_rec_n_extra");
    msgpack_sbuffer sb2; msgpack_sbuffer_init(&sb2);
    msgpack_packer pk2; msgpack_packer_init(&pk2, &sb2, msgpack_sbuffer_write);
    msgpack_pack_map(&pk2, dl_rec_n_extra(rec, known));
    dl_pack_extra(&pk2, rec, known);
    msgpack_unpacked u2; msgpack_unpacked_init(&u2);
    int urc = msgpack_unpack_next(&u2, sb2.data, sb2.size, NULL);
    DL_CHECK(urc == MSGPACK_UNPACK_SUCCESS && u2.data.via.map.size == 4 && dl_rec_get(&u2.data, "neg") &&
             !dl_rec_get(&u2.data, "ids"), "dl_pack_extra");
    msgpack_unpacked_destroy(&u2); msgpack_sbuffer_destroy(&sb2);
    msgpack_unpacked_destroy(&u); msgpack_sbuffer_destroy(&sb);
    dl_u32buf_free(&b);
}

static void t_outset(void) {
    dl_outset *s;
    dl_out_opts oo = DL_OUT_OPTS_DEFAULT;
    int rc = dl_outset_open(&s, P("sh/train"), 3, &oo, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO, "shards into a missing directory fail: %s", err);
    mkdir(P("sh"), 0777);
    rc = dl_outset_open(&s, P("sh/train"), 3, &oo, err, sizeof err);
    DL_CHECK(rc == 0 && dl_outset_n(s) == 3, "outset open");
    dl_header h; test_header(&h, "aaaa", 4);
    dl_outset_header(s, &h);
    dl_header_free(&h);
    uint32_t ids[4] = {1, 2, 3, 4};
    for (int i = 0; i < 10; i++) {
        dl_writer *w = dl_outset_next(s);
        msgpack_packer *pk = dl_writer_packer(w);
        msgpack_pack_map(pk, 2);
        dl_pack_str(pk, "ids"); dl_pack_ids(pk, ids, 4);
        dl_pack_str(pk, "i"); msgpack_pack_uint32(pk, (uint32_t)i);
        dl_writer_count(w);
    }
    DL_CHECK(dl_outset_records(s) == 10, "outset records");
    DL_CHECK(!exists(P("sh/train-00000-of-00003.msgpack.zst")), "no final name before close");
    DL_CHECK(dl_outset_close(s, err, sizeof err) == 0, "outset close");
    char *paths[3] = {strdup(P("sh/train-00000-of-00003.msgpack.zst")), strdup(P("sh/train-00001-of-00003.msgpack.zst")),
                      strdup(P("sh/train-00002-of-00003.msgpack.zst"))};
    dl_reader *r;
    dl_reader_open(&r, paths, 3, err, sizeof err);
    uint64_t c = 0;
    DL_CHECK(dl_reader_count(r, &c, err, sizeof err) == 0 && c == 10, "all shards hold all records");
    const msgpack_object *rec;
    dl_reader_next(r, &rec, err, sizeof err);
    dl_reader_next(r, &rec, err, sizeof err);
    DL_CHECK(dl_rec_get(rec, "i")->via.u64 == 3, "round-robin order (shard 0 holds 0,3,6,9)");
    dl_reader_close(r);
    for (int i = 0; i < 3; i++) free(paths[i]);

    /* abort leaves nothing */
    rc = dl_outset_open(&s, P("sh/ab"), 2, &oo, err, sizeof err);
    dl_outset_abort(s);
    DL_CHECK(rc == 0 && !exists(P("sh/ab-00000-of-00002.msgpack.zst")), "outset abort");
    {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "ls %s/sh | grep -c tmp > /dev/null", dir);
        DL_CHECK(system(cmd) != 0, "no temp files left in the shard directory");
    }
}

/* dl_mpscan: complete objects fed byte by byte, declared sizes vs avail */
static void t_mpscan(void) {
    /* {"a":[1,"xy",{}],"b":bin8(2)} */
    static const unsigned char obj[] = { 0x82, 0xa1, 'a', 0x93, 0x01, 0xa2, 'x', 'y', 0x80, 0xa1, 'b', 0xc4, 0x02, 9, 9 };
    dl_mpscan s;
    char msg[256];
    dl_mpscan_reset(&s);
    int rc = 0;
    size_t n;
    for (n = 1; n <= sizeof obj && (rc = dl_mpscan_feed(&s, obj, n, DL_MPSCAN_UNKNOWN, msg, sizeof msg)) == 0; n++) {}
    DL_CHECK(rc == 1 && n == sizeof obj && s.pos == sizeof obj, "mpscan: a nested object fed byte by byte completes at its last byte");
    static const unsigned char big[] = { 0x91, 0xdd, 0xff, 0xff, 0xff, 0xff, 1, 2, 3 };
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, big, sizeof big, sizeof big, msg, sizeof msg);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(msg, "declared array of 4294967295 elements exceeds the remaining input (3 bytes)"),
             "mpscan: array32 of 2^32-1 in 9 known bytes: data msgor (%s)", msg);
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, big, sizeof big, DL_MPSCAN_UNKNOWN, msg, sizeof msg);
    DL_CHECK(rc == 0 && dl_mpscan_eof_msg(&s, sizeof big, msg, sizeof msg) && strstr(msg, "array of 4294967295"),
             "mpscan: ... size unknown: incomplete, then named at the end");
    static const unsigned char trunc[] = { 0x91, 0xa3, 0x78 };   /* ["x.." cut] */
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, trunc, sizeof trunc, DL_MPSCAN_UNKNOWN, msg, sizeof msg);
    DL_CHECK(rc == 0 && !dl_mpscan_eof_msg(&s, sizeof trunc, msg, sizeof msg), "mpscan: a fitting array whose string is cut short is a plain truncation");
    /* 0xc1 (never used) after a huge declaration, size unknown (zstd): the
     * unpacker would allocate the array before seeing the byte (found by
     * fuzz_stream_zstd, seed tests/fuzz/corpus/stream_zstd/c1-after-array32.msgpack) */
    static const unsigned char c1big[] = { 0x91, 0xdd, 0x40, 0x64, 0x66, 0x36, 1, 2, 0xc1, 3 };
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, c1big, sizeof c1big, DL_MPSCAN_UNKNOWN, msg, sizeof msg);
    DL_CHECK(rc == -DL_EXIT_DATA &&
             strstr(msg, "byte 0xc1 inside an array that declares 1080321590 elements"),
             "mpscan: 0xc1 inside a 1e9-element array, size unknown: data error (%s)", msg);
    static const unsigned char c1small[] = { 0x93, 1, 0xc1, 3 };
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, c1small, sizeof c1small, DL_MPSCAN_UNKNOWN, msg, sizeof msg);
    DL_CHECK(rc == 1, "mpscan: 0xc1 inside an array the buffer holds: left to the unpacker (malformed)");
    unsigned char deep[40];
    memset(deep, 0x91, sizeof deep);
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, deep, sizeof deep, DL_MPSCAN_UNKNOWN, msg, sizeof msg);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(msg, "deeper than 32"), "mpscan: 33 nested arrays: data msgor");
    deep[32] = 0x01;
    dl_mpscan_reset(&s);
    rc = dl_mpscan_feed(&s, deep, 33, DL_MPSCAN_UNKNOWN, msg, sizeof msg);
    DL_CHECK(rc == 1, "mpscan: 32 nested arrays (msgpack-c's limit) complete");
}

int main(int argc, char **argv) {
    dl_prog_init("test_stream", argc, argv);
    snprintf(dir, sizeof dir, "%s/dllm-test-stream.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    t_base();
    t_io();
    t_headers();
    t_reader();
    t_records();
    t_outset();
    t_mpscan();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("# could not remove %s\n", dir);
    return dl_test_end();
}
