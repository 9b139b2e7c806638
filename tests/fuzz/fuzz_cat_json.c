/* tests/fuzz/fuzz_cat_json.c — libFuzzer target: dllm-cat --from-json line
 * conversion (cat/fromjson.c) and back (cat/tojson.c).
 *
 * The input is JSON Lines.  Each line that jansson parses as an object (as
 * cat/main.c parses it: JSON_ALLOW_NUL) is packed by cat_from_json; an object
 * with "dllm" is also read as a header (dl_header_from_obj), as --from-json
 * checks headers.  Invariant of cat.h ("stream -> JSON -> stream -> JSON
 * gives the same JSON"): with P = from_json and J = to_json,
 * J(P(line)) is valid JSON and J(P(J(P(line)))) == J(P(line)).
 * Not here: file handling and sharding of cat/main.c.
 */
#include <jansson.h>
#include <msgpack.h>
#include "cat.h"
#include "dl_stream.h"
#include "fuzz_common.h"

/* JSON text of `j` packed and unpacked again into *out; 0, or <0 when
 * cat_from_json refuses it (a data error). */
static int pack_to_json(json_t *j, dl_strbuf *out, int check_header) {
    char err[512];
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    int rc = cat_from_json(&pk, j, NULL, err, sizeof err);
    if (!rc) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, sb.data, sb.size, &off) != MSGPACK_UNPACK_SUCCESS || off != sb.size)
            fz_fail("cat_from_json wrote bytes that are not one msgpack object");
        if (check_header && json_object_get(j, "dllm")) {
            dl_header h;
            if (!dl_header_from_obj(&h, &u.data, err, sizeof err)) dl_header_free(&h);
        }
        out->n = 0;
        if (cat_to_json(out, &u.data)) fz_fail("cat_to_json failed");
        msgpack_unpacked_destroy(&u);
    }
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void one_line(const char *s, size_t n) {
    json_error_t je;
    json_t *j = json_loadb(s, n, JSON_ALLOW_NUL, &je);
    if (!j) return;
    dl_strbuf a = {0}, b = {0};
    if (json_is_object(j) && !pack_to_json(j, &a, 1)) {
        json_t *j2 = json_loadb(a.p, a.n, JSON_ALLOW_NUL, &je);
        if (!j2) {
            fprintf(stderr, "cat_to_json wrote: %s\njansson: %s\n", a.p, je.text);
            fz_fail("cat_to_json wrote invalid JSON");
        }
        if (pack_to_json(j2, &b, 0)) {
            fprintf(stderr, "JSON: %s\n", a.p);
            fz_fail("cat_from_json refuses what cat_to_json wrote");
        }
        if (a.n != b.n || memcmp(a.p, b.p, a.n)) {
            fprintf(stderr, "first:  %s\nsecond: %s\n", a.p, b.p);
            fz_fail("JSON -> stream -> JSON is not stable");
        }
        json_decref(j2);
    }
    json_decref(j);
    dl_strbuf_free(&a);
    dl_strbuf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *s = (const char *)data, *end = s + size;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        one_line(s, n);
        s += n + (nl != NULL);
    }
    return 0;
}
