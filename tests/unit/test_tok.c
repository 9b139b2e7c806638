/* test_tok.c — the tokenizer.json engine (share/tok/dl_tok.h) against HF tokenizers.
 *
 * Fixtures in tests/data/tok/, made by tests/ref/gen_tok_fixtures.py with HF
 * `tokenizers` (encode(text, add_special_tokens=False)):
 *   vectors.json      gpt2 / llama2 / qwen3 ids + decodes for llama.cpp's test
 *                     vectors, edge cases, random strings, invalid UTF-8
 *   synth.json        small tokenizers (embedded) exercising the other pipeline
 *                     components, with their expected ids + decodes
 *   corpus-NAME.txt   hashes of the id / decode streams of whole corpora
 * Tokenizers are looked up as share/data/NAME-tokenizer/ then
 * ../shared/data/NAME-tokenizer/ (relative to the repo root, where
 * tests/run.sh runs us); corpora as share/data/REL then ../shared/data/REL.
 * Anything missing, or a tokenizer whose sha256 differs from the one the
 * fixture was made with, is reported as "skip - ...".
 *
 *   build/tests/test_tok               all checks
 *   build/tests/test_tok --save DIR    write DIR/NAME.json: each real tokenizer
 *                                      found plus "<|mdm_mask|>" (for
 *                                      tests/ref/check_tok_save.py)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include "dl_test.h"
#include "dl_tok.h"
#include "dl_io.h"
#include "tok_utf8.h"

static const char *REAL[] = { "gpt2", "llama2", "qwen3" };
#define FIX "tests/data/tok/"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int find_path(char *buf, size_t n, const char *fmt1, const char *fmt2, const char *arg) {
    snprintf(buf, n, fmt1, arg);
    if (access(buf, R_OK) == 0) return 1;
    snprintf(buf, n, fmt2, arg);
    return access(buf, R_OK) == 0;
}
static int find_tokenizer(char *buf, size_t n, const char *name) {
    return find_path(buf, n, "share/data/%s-tokenizer/tokenizer.json", "../shared/data/%s-tokenizer/tokenizer.json", name);
}
static int find_corpus(char *buf, size_t n, const char *rel) {
    return find_path(buf, n, "share/data/%s", "../shared/data/%s", rel);
}

/* Printable preview of a text (escapes control and non-ASCII bytes). */
static void preview(const char *s, size_t n, size_t max) {
    printf("\"");
    for (size_t i = 0; i < n && i < max; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') printf("\\n");
        else if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 32 || c >= 127) printf("\\x%02x", c);
        else putchar(c);
    }
    printf(n > max ? "\"..." : "\"");
}
static void print_ids(const char *label, const uint32_t *ids, size_t n) {
    printf("  # %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %u", ids[i]);
    printf(n > 40 ? " ...\n" : "\n");
}

/* ---------------------------------------------------------------- unit checks */
static void check_utf8(void) {
    static const struct { const char *in; size_t n; const char *out; } cases[] = {
        { "a\xff" "b", 3, "a\xEF\xBF\xBD" "b" },
        { "\xe2\x82", 2, "\xEF\xBF\xBD" },
        { "\xe2\x82" "A", 3, "\xEF\xBF\xBD" "A" },
        { "\xf0\x80\x80\x80", 4, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
        { "\xed\xa0\x80", 3, "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
        { "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
        { "x\xf0\x9f\x98", 4, "x\xEF\xBF\xBD" },
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        dl_strbuf b = { 0 };
        tok_utf8_repair(cases[i].in, cases[i].n, &b);
        if (b.n != strlen(cases[i].out) || memcmp(b.p, cases[i].out, b.n)) { bad++; printf("  # case %zu\n", i); }
        dl_strbuf_free(&b);
    }
    DL_CHECK(bad == 0, "invalid UTF-8 repaired like from_utf8_lossy (%zu cases)", sizeof cases / sizeof *cases);
    DL_CHECK(tok_utf8_valid_len("ab\xc3\xa9", 4) == 4 && tok_utf8_valid_len("ab\xc3", 3) == 2, "UTF-8 validation");
}

static void check_errors(void) {
    char err[256] = "";
    dl_tok *t = NULL;
    int rc = dl_tok_load(&t, "tests/data/tok/no-such-tokenizer.json", err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO && !t && strstr(err, "no-such"), "missing tokenizer: I/O error naming it (%s)", err);
    char tmpl[] = "/tmp/dllm-test-tok-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) return;
    const char *bad[] = {
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}",
        "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}",
        "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}, \"normalizer\": {\"type\": \"Precompiled\"}}",
        "{\"model\": ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        FILE *f = fopen(tmpl, "w");
        fputs(bad[i], f);
        fclose(f);
        err[0] = 0;
        rc = dl_tok_load(&t, tmpl, err, sizeof err);
        DL_CHECK(rc == -DL_EXIT_DATA && !t && strstr(err, tmpl), "bad tokenizer.json %zu: data error (%s)", i, err);
    }
    FILE *f = fopen(tmpl, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, \"merges\": [\"a b\"]}}", f);
    fclose(f);
    rc = dl_tok_load(&t, tmpl, err, sizeof err);
    DL_CHECK(rc == 0, "minimal tokenizer.json loads (%s)", rc ? err : "");
    if (!rc) {
        dl_u32buf ids = { 0 };
        dl_strbuf s = { 0 };
        rc = dl_tok_encode(t, "abba", 4, &ids, err, sizeof err);
        DL_CHECK(rc == 0 && ids.n == 3 && ids.p[0] == 2 && ids.p[1] == 1 && ids.p[2] == 0, "minimal BPE encodes abba as ab b a");
        uint32_t big = 7;
        rc = dl_tok_decode(t, &big, 1, 0, &s, err, sizeof err);
        DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "7"), "decode of an id >= vocab size is a data error (%s)", err);
        dl_strbuf_free(&s);
        rc = dl_tok_decode(t, ids.p, ids.n, 0, &s, err, sizeof err);
        DL_CHECK(rc == 0 && s.n == 6 && !memcmp(s.p, "ab b a", 6), "no decoder: tokens joined with spaces");
        DL_CHECK(dl_tok_vocab_size(t) == 3 && dl_tok_token_id(t, "ab") == 2 && dl_tok_token_id(t, "x") == -1 &&
                 !strcmp(dl_tok_id_token(t, 1), "b") && dl_tok_id_token(t, 3) == NULL && !dl_tok_is_special(t, 0),
                 "vocab accessors");
        DL_CHECK(dl_tok_special_id(t, DL_TOK_EOS) == -1 && dl_tok_special_id(t, DL_TOK_MASK) == -1, "no specials: -1");
        dl_u32buf_free(&ids);
        dl_strbuf_free(&s);
        dl_tok_free(t);
    }
    unlink(tmpl);
}

/* ---------------------------------------------------------------- vectors */
static size_t hex_decode(const char *h, char *out) {
    size_t n = strlen(h) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    return n;
}

static int ids_equal(const dl_u32buf *got, json_t *want) {
    if (json_array_size(want) != got->n) return 0;
    for (size_t i = 0; i < got->n; i++)
        if ((json_int_t)got->p[i] != json_integer_value(json_array_get(want, i))) return 0;
    return 1;
}

static void print_want(json_t *want) {
    size_t n = json_array_size(want);
    printf("  # want (%zu):", n);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %lld", (long long)json_integer_value(json_array_get(want, i)));
    printf(n > 40 ? " ...\n" : "\n");
}

/* Encode + decode every text of a vector set; one ok/not ok line per aspect. */
static void check_vectors(dl_tok *t, const char *name, json_t *texts, json_t *fx, json_t *invalid_hex) {
    char err[256];
    dl_u32buf ids = { 0 };
    dl_strbuf s = { 0 };
    size_t n = json_array_size(texts), bad = 0, dbad = 0, ibad = 0;
    json_t *want_ids = json_object_get(fx, "ids"), *want_dec = json_object_get(fx, "decode");
    for (size_t i = 0; i < n; i++) {
        json_t *tx = json_array_get(texts, i);
        const char *text = json_string_value(tx);
        size_t len = json_string_length(tx);
        ids.n = 0;
        if (dl_tok_encode(t, text, len, &ids, err, sizeof err)) { printf("  # encode: %s\n", err); bad++; continue; }
        if (!ids_equal(&ids, json_array_get(want_ids, i))) {
            if (bad++ < 3) {
                printf("  # %s text %zu ", name, i);
                preview(text, len, 120);
                printf("\n");
                print_ids("got", ids.p, ids.n);
                print_want(json_array_get(want_ids, i));
            }
            continue;
        }
        json_t *d = json_array_get(want_dec, i);
        for (int skip = 0; skip < 2; skip++) {
            json_t *w = json_array_get(d, 0);
            const char *ws = json_is_string(w) ? json_string_value(w) : text;
            size_t wn = json_is_string(w) ? json_string_length(w) : len;
            if (skip && json_is_string(json_array_get(d, 1))) {
                ws = json_string_value(json_array_get(d, 1));
                wn = json_string_length(json_array_get(d, 1));
            }
            s.n = 0;
            if (dl_tok_decode(t, ids.p, ids.n, skip, &s, err, sizeof err) || s.n != wn || memcmp(s.p, ws, wn)) {
                if (dbad++ < 3) {
                    printf("  # %s decode(skip_special=%d) of text %zu: got ", name, skip, i);
                    preview(s.p ? s.p : "", s.n, 120);
                    printf(" want ");
                    preview(ws, wn, 120);
                    printf("\n");
                }
            }
        }
    }
    DL_CHECK(bad == 0, "%s: ids of %zu texts as HF (%zu differ)", name, n, bad);
    DL_CHECK(dbad == 0, "%s: decode of %zu texts as HF (%zu differ)", name, n, dbad);
    json_t *inv = json_object_get(fx, "invalid_ids");
    if (invalid_hex && inv) {
        size_t k = json_array_size(invalid_hex);
        for (size_t i = 0; i < k; i++) {
            char raw[256];
            size_t rn = hex_decode(json_string_value(json_array_get(invalid_hex, i)), raw);
            ids.n = 0;
            if (dl_tok_encode(t, raw, rn, &ids, err, sizeof err) || !ids_equal(&ids, json_array_get(inv, i))) {
                if (ibad++ < 3) { printf("  # invalid %zu\n", i); print_ids("got", ids.p, ids.n); print_want(json_array_get(inv, i)); }
            }
        }
        DL_CHECK(ibad == 0, "%s: %zu invalid UTF-8 inputs encode as their U+FFFD repair", name, k);
    }
    dl_u32buf_free(&ids);
    dl_strbuf_free(&s);
}

static void check_real_vectors(void) {
    json_error_t je;
    json_t *v = json_load_file(FIX "vectors.json", JSON_ALLOW_NUL, &je);
    DL_CHECK(v != NULL, "read " FIX "vectors.json (%s)", v ? "" : je.text);
    if (!v) return;
    json_t *texts = json_object_get(v, "texts"), *inv = json_object_get(v, "invalid_hex");
    for (size_t k = 0; k < 3; k++) {
        char path[512], err[512];
        json_t *fx = json_object_get(json_object_get(v, "tokenizers"), REAL[k]);
        if (!find_tokenizer(path, sizeof path, REAL[k])) {
            printf("skip - %s vectors: no tokenizer in share/data or ../shared/data\n", REAL[k]);
            continue;
        }
        dl_tok *t;
        double t0 = now();
        int rc = dl_tok_load(&t, path, err, sizeof err);
        DL_CHECK(rc == 0, "load %s (%.2fs) %s", path, now() - t0, rc ? err : "");
        if (rc) continue;
        if (strcmp(dl_tok_sha256(t), json_string_value(json_object_get(fx, "sha256")))) {
            printf("skip - %s vectors: %s is not the tokenizer the fixture was made with\n", REAL[k], path);
            dl_tok_free(t);
            continue;
        }
        DL_CHECK((json_int_t)dl_tok_vocab_size(t) == json_integer_value(json_object_get(fx, "vocab_size")),
                 "%s: vocab size %u", REAL[k], dl_tok_vocab_size(t));
        check_vectors(t, REAL[k], texts, fx, inv);
        dl_tok_free(t);
    }
    json_decref(v);
}

static void check_synth(void) {
    json_error_t je;
    json_t *v = json_load_file(FIX "synth.json", JSON_ALLOW_NUL, &je);
    DL_CHECK(v != NULL, "read " FIX "synth.json (%s)", v ? "" : je.text);
    if (!v) return;
    json_t *texts = json_object_get(v, "texts"), *fx;
    const char *name;
    json_object_foreach(json_object_get(v, "tokenizers"), name, fx) {
        char path[] = "/tmp/dllm-test-tok-XXXXXX", err[512];
        int fd = mkstemp(path);
        if (fd < 0) continue;
        close(fd);
        json_dump_file(json_object_get(fx, "json"), path, 0);
        dl_tok *t;
        int rc = dl_tok_load(&t, path, err, sizeof err);
        DL_CHECK(rc == 0, "load %s %s", name, rc ? err : "");
        if (!rc) {
            check_vectors(t, name, texts, fx, NULL);
            /* no ids: an empty text for every decoder chain (a Replace
             * after ByteLevel added NULL + 0 before, UB found by
             * fuzz_tok_load on seed synth-split2.json; make test-asan) */
            dl_strbuf out = {0};
            rc = dl_tok_decode(t, NULL, 0, 0, &out, err, sizeof err);
            DL_CHECK(rc == 0 && out.n == 0, "%s: decode of no ids is empty %s", name, rc ? err : "");
            dl_strbuf_free(&out);
            dl_tok_free(t);
        }
        unlink(path);
    }
    json_decref(v);
}

/* ---------------------------------------------------------------- corpora */
typedef struct {
    dl_tok *t;
    dl_strbuf ids_stream, dec_stream, dec;
    size_t *ids_off, *dec_off, ndocs, cap;    /* stream offsets after each doc */
    size_t ntokens, rt_diff;
    dl_u32buf ids;
    int fail;
    char err[256];
} corpus_run;

static void run_doc(corpus_run *r, const char *s, size_t n) {
    r->ids.n = 0;
    if (!r->fail && dl_tok_encode(r->t, s, n, &r->ids, r->err, sizeof r->err)) r->fail = 1;
    uint32_t cnt = (uint32_t)r->ids.n;
    unsigned char le[4];
    dl_u32_to_le(le, &cnt, 1);
    dl_strbuf_append(&r->ids_stream, le, 4);
    dl_strbuf_reserve(&r->ids_stream, r->ids_stream.n + 4 * r->ids.n);
    if (r->ids.n) dl_u32_to_le(r->ids_stream.p + r->ids_stream.n, r->ids.p, r->ids.n);
    r->ids_stream.n += 4 * r->ids.n;
    r->ntokens += r->ids.n;
    r->dec.n = 0;
    if (!r->fail && dl_tok_decode(r->t, r->ids.p, r->ids.n, 0, &r->dec, r->err, sizeof r->err)) r->fail = 1;
    if (r->dec.n != n || (n && memcmp(r->dec.p, s, n))) r->rt_diff++;
    dl_strbuf_append(&r->dec_stream, r->dec.p ? r->dec.p : "", r->dec.n);
    dl_strbuf_append(&r->dec_stream, "\xff", 1);
    if (r->ndocs == r->cap) {
        r->cap = r->cap ? 2 * r->cap : 1024;
        r->ids_off = realloc(r->ids_off, r->cap * sizeof *r->ids_off);
        r->dec_off = realloc(r->dec_off, r->cap * sizeof *r->dec_off);
    }
    r->ids_off[r->ndocs] = r->ids_stream.n;
    r->dec_off[r->ndocs] = r->dec_stream.n;
    r->ndocs++;
}

static void walk_json(corpus_run *r, json_t *v) {
    size_t i;
    json_t *x;
    const char *k;
    if (json_is_string(v)) run_doc(r, json_string_value(v), json_string_length(v));
    else if (json_is_array(v)) json_array_foreach(v, i, x) walk_json(r, x);
    else if (json_is_object(v)) json_object_foreach(v, k, x) walk_json(r, x);
}

static void split_docs(corpus_run *r, const char *data, size_t len, const char *mode) {
    if (!strcmp(mode, "file")) { run_doc(r, data, len); return; }
    const char *sep = !strcmp(mode, "paras") ? "\n\n" : "\n";
    size_t sn = strlen(sep), pos = 0;
    for (;;) {
        const char *p = memmem(data + pos, len - pos, sep, sn);
        size_t e = p ? (size_t)(p - data) : len;
        if (!strcmp(mode, "jsonl")) {
            if (e > pos) {
                json_error_t je;
                json_t *v = json_loadb(data + pos, e - pos, JSON_ALLOW_NUL, &je);
                if (!v) { r->fail = 1; snprintf(r->err, sizeof r->err, "bad JSONL line: %s", je.text); return; }
                walk_json(r, v);
                json_decref(v);
            }
        } else {
            run_doc(r, data + pos, e - pos);
        }
        if (!p) break;
        pos = e + sn;
    }
}

static void sha_prefix(const void *p, size_t n, char out[65]) { dl_sha256_hex(n ? p : "", n, out); }

static void check_corpus_set(dl_tok *t, const char *name, const char *rel, const char *mode, size_t chunk,
                             size_t want_docs, size_t want_tokens, size_t want_rt, const char *want_ids,
                             const char *want_dec, char **chunks, size_t nchunks) {
    char path[512];
    if (!find_corpus(path, sizeof path, rel)) {
        printf("skip - %s %s %s: corpus not in share/data or ../shared/data\n", name, rel, mode);
        return;
    }
    char *data;
    size_t len;
    char err[256];
    if (dl_read_file(path, &data, &len, err, sizeof err)) { DL_CHECK(0, "read %s: %s", path, err); return; }
    corpus_run r = { .t = t };
    double t0 = now();
    split_docs(&r, data, len, mode);
    double dt = now() - t0;
    char h[65], hd[65];
    sha_prefix(r.ids_stream.p, r.ids_stream.n, h);
    sha_prefix(r.dec_stream.p, r.dec_stream.n, hd);
    int ok_ids = !r.fail && r.ndocs == want_docs && r.ntokens == want_tokens && !strcmp(h, want_ids);
    int ok_dec = !r.fail && r.ndocs == want_docs && !strcmp(hd, want_dec) && r.rt_diff == want_rt;
    if (r.fail) printf("  # %s\n", r.err);
    if ((!ok_ids || !ok_dec) && r.ndocs == want_docs) {
        for (size_t c = 0; c < nchunks; c++) {
            size_t a = c * chunk, b = a + chunk < r.ndocs ? a + chunk : r.ndocs;
            size_t ia = a ? r.ids_off[a - 1] : 0, da = a ? r.dec_off[a - 1] : 0;
            char ci[65], cd[65];
            sha_prefix(r.ids_stream.p + ia, r.ids_off[b - 1] - ia, ci);
            sha_prefix(r.dec_stream.p + da, r.dec_off[b - 1] - da, cd);
            int bi = strncmp(ci, chunks[c] + 2, 8) != 0, bd = strncmp(cd, chunks[c] + 11, 8) != 0;
            if (bi || bd) {
                printf("  # first difference (%s) in docs %zu..%zu; expected ids of doc K: "
                       "/work/venv/bin/python tests/ref/gen_tok_fixtures.py --show %s %s %s K\n",
                       bi ? "ids" : "decode", a, b - 1, name, rel, mode);
                break;
            }
        }
    }
    if (r.ndocs != want_docs) printf("  # %zu docs, fixture has %zu\n", r.ndocs, want_docs);
    DL_CHECK(ok_ids, "%s %s %s: %zu docs, %zu tokens as HF (%.1f MB/s encode+decode)", name, rel, mode, r.ndocs,
             r.ntokens, (double)len / 1e6 / (dt > 0 ? dt : 1e-9));
    DL_CHECK(ok_dec, "%s %s %s: decode as HF (%zu docs differ from their text)", name, rel, mode, r.rt_diff);
    free(data);
    dl_strbuf_free(&r.ids_stream); dl_strbuf_free(&r.dec_stream); dl_strbuf_free(&r.dec);
    dl_u32buf_free(&r.ids);
    free(r.ids_off); free(r.dec_off);
}

static void check_corpora(const char *name) {
    char fpath[256], path[512], err[512];
    snprintf(fpath, sizeof fpath, FIX "corpus-%s.txt", name);
    char *fx;
    size_t fxn;
    if (dl_read_file(fpath, &fx, &fxn, err, sizeof err)) { DL_CHECK(0, "read %s: %s", fpath, err); return; }
    if (!find_tokenizer(path, sizeof path, name)) {
        printf("skip - %s corpora: no tokenizer in share/data or ../shared/data\n", name);
        free(fx);
        return;
    }
    dl_tok *t;
    if (dl_tok_load(&t, path, err, sizeof err)) { DL_CHECK(0, "load %s: %s", path, err); free(fx); return; }
    /* lines: "tokenizer NAME SHA", "set REL MODE CHUNK NDOCS NTOKENS RTDIFF IDS DEC", "c IDS8 DEC8" */
    char **lines = NULL;
    size_t nl = 0;
    for (char *p = fx; p && *p;) {
        char *e = strchr(p, '\n');
        if (e) *e = 0;
        lines = realloc(lines, (nl + 1) * sizeof *lines);
        lines[nl++] = p;
        p = e ? e + 1 : NULL;
    }
    for (size_t i = 0; i < nl; i++) {
        char a[256], b[256], c[65], d[65];
        size_t chunk, nd, nt, rt;
        if (!strncmp(lines[i], "tokenizer ", 10)) {
            if (sscanf(lines[i], "tokenizer %255s %64s", a, c) == 2 && strcmp(c, dl_tok_sha256(t))) {
                printf("skip - %s corpora: %s is not the tokenizer the fixture was made with\n", name, path);
                break;
            }
        } else if (sscanf(lines[i], "set %255s %255s %zu %zu %zu %zu %64s %64s", a, b, &chunk, &nd, &nt, &rt, c, d) == 8) {
            size_t nc = 0;
            while (i + 1 + nc < nl && lines[i + 1 + nc][0] == 'c') nc++;
            check_corpus_set(t, name, a, b, chunk, nd, nt, rt, c, d, lines + i + 1, nc);
            i += nc;
        }
    }
    free(lines);
    free(fx);
    dl_tok_free(t);
}

/* ---------------------------------------------------------------- add_special / save */
static int encode_eq_concat(dl_tok *t, int64_t id) {
    char err[256];
    dl_u32buf a = { 0 }, b = { 0 }, all = { 0 };
    dl_tok_encode(t, "Hi there", 8, &a, err, sizeof err);
    dl_tok_encode(t, " you!", 5, &b, err, sizeof err);
    const char *txt = "Hi there<|mdm_mask|> you!";
    dl_tok_encode(t, txt, strlen(txt), &all, err, sizeof err);
    int ok = all.n == a.n + b.n + 1 && !memcmp(all.p, a.p, a.n * 4) && all.p[a.n] == (uint32_t)id &&
             !memcmp(all.p + a.n + 1, b.p, b.n * 4);
    dl_u32buf_free(&a); dl_u32buf_free(&b); dl_u32buf_free(&all);
    return ok;
}

static void check_add_save(const char *name, const char *path, const char *outdir) {
    char err[512], out[600];
    dl_tok *t;
    if (dl_tok_load(&t, path, err, sizeof err)) { DL_CHECK(0, "load %s: %s", path, err); return; }
    uint32_t v0 = dl_tok_vocab_size(t);
    int64_t roles[3] = { dl_tok_special_id(t, DL_TOK_BOS), dl_tok_special_id(t, DL_TOK_EOS),
                         dl_tok_special_id(t, DL_TOK_PAD) };
    int64_t id = dl_tok_add_special(t, "<|mdm_mask|>", err, sizeof err);
    DL_CHECK(id == (int64_t)v0 && dl_tok_vocab_size(t) == v0 + 1 && dl_tok_is_special(t, (uint32_t)id) &&
             dl_tok_token_id(t, "<|mdm_mask|>") == id && !strcmp(dl_tok_id_token(t, (uint32_t)id), "<|mdm_mask|>"),
             "%s: add_special <|mdm_mask|> = %lld (next free id)", name, (long long)id);
    DL_CHECK(dl_tok_add_special(t, "<|mdm_mask|>", err, sizeof err) == id, "%s: adding it again returns its id", name);
    DL_CHECK(dl_tok_special_id(t, DL_TOK_MASK) == id && dl_tok_special_id(t, DL_TOK_BOS) == roles[0] &&
             dl_tok_special_id(t, DL_TOK_EOS) == roles[1] && dl_tok_special_id(t, DL_TOK_PAD) == roles[2],
             "%s: it becomes the mask id, other roles unchanged", name);
    DL_CHECK(encode_eq_concat(t, id), "%s: text around it encodes as the pieces alone", name);
    dl_strbuf s = { 0 };
    uint32_t ids[2] = { (uint32_t)id, (uint32_t)id };
    dl_tok_decode(t, ids, 2, 0, &s, err, sizeof err);
    int dec_ok = s.p && strstr(s.p, "<|mdm_mask|>") != NULL;
    s.n = 0;
    dl_tok_decode(t, ids, 2, 1, &s, err, sizeof err);
    DL_CHECK(dec_ok && s.n == 0, "%s: decode shows it, skip_special drops it", name);
    dl_strbuf_free(&s);
    snprintf(out, sizeof out, "%s/%s.json", outdir, name);
    int rc = dl_tok_save(t, out, err, sizeof err);
    DL_CHECK(rc == 0, "%s: save %s %s", name, out, rc ? err : "");
    if (!rc) {
        char *data, hex[65];
        size_t len;
        dl_read_file(out, &data, &len, err, sizeof err);
        dl_sha256_hex(data, len, hex);
        free(data);
        DL_CHECK(!strcmp(hex, dl_tok_sha256(t)), "%s: dl_tok_sha256 is the saved file's", name);
        dl_tok *t2;
        rc = dl_tok_load(&t2, out, err, sizeof err);
        DL_CHECK(rc == 0 && dl_tok_vocab_size(t2) == v0 + 1 && dl_tok_token_id(t2, "<|mdm_mask|>") == id &&
                 dl_tok_is_special(t2, (uint32_t)id) && encode_eq_concat(t2, id) && !strcmp(dl_tok_sha256(t2), hex),
                 "%s: the saved file reloads with the same ids", name);
        if (!rc) dl_tok_free(t2);
    }
    rc = dl_tok_save(t, "/nonexistent-dir/x/tokenizer.json", err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO, "%s: saving into a missing directory is an I/O error", name);
    dl_tok_free(t);
}

static void check_specials(void) {
    static const struct { const char *name; int64_t bos, eos, pad; } want[] = {
        { "gpt2", 50256, 50256, -1 }, { "llama2", 1, 2, 0 }, { "qwen3", -1, 151645, 151643 },
    };
    for (size_t k = 0; k < 3; k++) {
        char path[512], err[512];
        dl_tok *t;
        if (!find_tokenizer(path, sizeof path, want[k].name)) continue;
        if (dl_tok_load(&t, path, err, sizeof err)) continue;
        DL_CHECK(dl_tok_special_id(t, DL_TOK_BOS) == want[k].bos && dl_tok_special_id(t, DL_TOK_EOS) == want[k].eos &&
                 dl_tok_special_id(t, DL_TOK_PAD) == want[k].pad && dl_tok_special_id(t, DL_TOK_MASK) == -1,
                 "%s: bos/eos/pad from tokenizer_config.json (%lld %lld %lld)", want[k].name,
                 (long long)dl_tok_special_id(t, DL_TOK_BOS), (long long)dl_tok_special_id(t, DL_TOK_EOS),
                 (long long)dl_tok_special_id(t, DL_TOK_PAD));
        dl_tok_set_special(t, DL_TOK_PAD, 5);
        DL_CHECK(dl_tok_special_id(t, DL_TOK_PAD) == 5, "%s: dl_tok_set_special", want[k].name);
        dl_tok_free(t);
    }
}

/* A word that encodes to no ids (no vocabulary entry for its symbols, no
 * unk token), seen twice: the second time it comes from the word cache,
 * which holds no ids for it (fuzz_tok_load, 2026-12-05: the cache lookup
 * computed NULL + 0; clang's UBSan reports that).  The seed is the fuzzer's
 * reproducer. */
static void check_empty_word_cached(void) {
    char err[256] = "";
    dl_tok *t = NULL;
    const char *path = "tests/fuzz/corpus/tok_load/empty-word-cached.json";
    if (dl_tok_load(&t, path, err, sizeof err)) {
        DL_CHECK(0, "load %s (%s)", path, err);
        return;
    }
    dl_u32buf once = { 0 }, twice = { 0 };
    int rc1 = dl_tok_encode(t, "Hello", 5, &once, err, sizeof err);
    int rc2 = dl_tok_encode(t, "Hello Hello Hello", 17, &twice, err, sizeof err);
    DL_CHECK(rc1 == 0 && rc2 == 0 && once.n == 0 && twice.n == 0,
             "a word that encodes to nothing, again from the word cache: no ids, no error (%zu, %zu)", once.n, twice.n);
    dl_u32buf_free(&once);
    dl_u32buf_free(&twice);
    dl_tok_free(t);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--save")) {
        for (size_t k = 0; k < 3; k++) {
            char path[512];
            if (find_tokenizer(path, sizeof path, REAL[k])) check_add_save(REAL[k], path, argv[2]);
        }
        return dl_test_end();
    }
    check_utf8();
    check_errors();
    check_real_vectors();
    check_synth();
    check_specials();
    check_empty_word_cached();
    char dir[] = "/tmp/dllm-test-tok-XXXXXX";
    if (mkdtemp(dir)) {
        for (size_t k = 0; k < 3; k++) {
            char path[512], out[600];
            if (find_tokenizer(path, sizeof path, REAL[k])) {
                check_add_save(REAL[k], path, dir);
                snprintf(out, sizeof out, "%s/%s.json", dir, REAL[k]);
                unlink(out);
            } else {
                printf("skip - %s add_special/save: no tokenizer\n", REAL[k]);
            }
        }
        rmdir(dir);
    }
    for (size_t k = 0; k < 3; k++) check_corpora(REAL[k]);
    return dl_test_end();
}
