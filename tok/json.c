/* tok/json.c — JSON <-> msgpack for the keys dllm-tok carries through
 * (a JSONL line's "id", "source", ... become msgpack values of the record;
 * decode --jsonl turns them back), and UTF-8 repair for JSON output.
 *
 * Mapping: string <-> str, integer <-> int, real <-> float64 (float32 is
 * widened), true/false <-> bool, null <-> nil, array <-> array, object <->
 * map.  msgpack bin / ext and non-string map keys have no JSON form: they are
 * dropped and reported through *dropped.
 */
#include <stdlib.h>
#include <string.h>
#include "tok.h"

int tk_json_pack(msgpack_packer *pk, const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_STRING: return dl_pack_strn(pk, json_string_value(v), json_string_length(v));
    case JSON_INTEGER: return msgpack_pack_int64(pk, (int64_t)json_integer_value(v));
    case JSON_REAL: return msgpack_pack_double(pk, json_real_value(v));
    case JSON_TRUE: return msgpack_pack_true(pk);
    case JSON_FALSE: return msgpack_pack_false(pk);
    case JSON_NULL: return msgpack_pack_nil(pk);
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (msgpack_pack_array(pk, n)) return -1;
        for (size_t i = 0; i < n; i++)
            if (tk_json_pack(pk, json_array_get(v, i))) return -1;
        return 0;
    }
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        if (msgpack_pack_map(pk, json_object_size(v))) return -1;
        json_object_foreach((json_t *)v, k, x)
            if (dl_pack_str(pk, k) || tk_json_pack(pk, x)) return -1;
        return 0;
    }
    }
    return -1;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned min;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x7f >> len);
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

int tk_utf8_repair(const char *s, size_t n, dl_strbuf *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;   /* [i - run, i) is valid and not yet copied */
    while (i < n) {
        size_t l = utf8_len(p + i, n - i);
        if (l) { i += l; run += l; continue; }
        if (run && dl_strbuf_append(out, p + i - run, run)) return -DL_EXIT_IO;
        if (dl_strbuf_append(out, "\xef\xbf\xbd", 3)) return -DL_EXIT_IO;
        run = 0;
        i++;
    }
    if (dl_strbuf_append(out, p + n - run, run)) return -DL_EXIT_IO;
    return 0;
}

static json_t *str_to_json(const char *s, size_t n) {
    json_t *j = json_stringn(s, n);
    if (j) return j;
    dl_strbuf b = {0};
    if (tk_utf8_repair(s, n, &b) == 0) j = json_stringn(b.p ? b.p : "", b.n);
    dl_strbuf_free(&b);
    return j;
}

json_t *tk_msgpack_to_json(const msgpack_object *o, int *dropped) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: return str_to_json(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *x = tk_msgpack_to_json(&o->via.array.ptr[i], dropped);
            if (x) json_array_append_new(a, x);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR) { *dropped = 1; continue; }
            json_t *x = tk_msgpack_to_json(&kv->val, dropped);
            if (!x) continue;
            char *k = strndup(kv->key.via.str.ptr, kv->key.via.str.size);
            if (k) json_object_set_new(m, k, x); else json_decref(x);
            free(k);
        }
        return m;
    }
    default:   /* bin, ext */
        *dropped = 1;
        return NULL;
    }
}
