/* cat/fromjson.c — one JSON value (jansson) packed as msgpack, the inverse
 * of cat/tojson.c (mapping in cat.h).  Packs straight into the writer's
 * packer; a data error midway leaves a partial record, so callers abort the
 * output on any error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cat.h"
#include "dl_stream.h"

static int id_key(const char *k) {
    return k && (!strcmp(k, "ids") || !strcmp(k, "x0") || !strcmp(k, "xt") || !strcmp(k, "docs"));
}

static int b64_val(int c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* decode into a malloc'ed buffer; 0 or -1 (bad base64) */
static int b64_decode(const char *s, size_t n, unsigned char **out, size_t *outn) {
    if (n % 4) return -1;
    unsigned char *p = malloc(n / 4 * 3 + 1);
    if (!p) return -1;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            if (s[i + k] == '=' && i + 4 == n && k >= 2) { v[k] = 0; pad++; continue; }
            if (pad || (v[k] = b64_val((unsigned char)s[i + k])) < 0) { free(p); return -1; }
        }
        if (pad == 1 && s[i + 3] != '=') { free(p); return -1; }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        p[o++] = (unsigned char)(w >> 16);
        if (pad < 2) p[o++] = (unsigned char)(w >> 8);
        if (pad < 1) p[o++] = (unsigned char)w;
    }
    *out = p; *outn = o;
    return 0;
}

/* float32 when the JSON text is how a float32 prints and a float64 would
 * print differently (see cat.h) */
static int looks_f32(double v) {
    float f = (float)v;
    if (!isfinite(f)) return 0;
    char a[40], b[40];
    cat_fmt_f32(a, f);
    if (strtod(a, NULL) != v) return 0;
    cat_fmt_f64(b, v);
    return strcmp(a, b) != 0;
}

static int all_u32(json_t *a) {
    size_t i; json_t *e;
    json_array_foreach(a, i, e) {
        if (!json_is_integer(e)) return 0;
        json_int_t v = json_integer_value(e);
        if (v < 0 || v > (json_int_t)UINT32_MAX) return 0;
    }
    return 1;
}

static int all_numbers(json_t *a) {
    size_t i; json_t *e;
    json_array_foreach(a, i, e) if (!json_is_number(e)) return 0;
    return 1;
}

static int special_float(json_t *o, const char *name, double *v) {
    json_t *s = json_object_get(o, name);
    if (json_object_size(o) != 1 || !json_is_string(s)) return 0;
    const char *t = json_string_value(s);
    if (!strcmp(t, "nan")) *v = NAN;
    else if (!strcmp(t, "inf")) *v = INFINITY;
    else if (!strcmp(t, "-inf")) *v = -INFINITY;
    else return 0;
    return 1;
}

static int pack_bin_b64(msgpack_packer *pk, const char *s, size_t n, int ext, int8_t type,
                        char *err, size_t errlen) {
    unsigned char *p;
    size_t len;
    if (b64_decode(s, n, &p, &len))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "invalid base64 in %s", ext ? "$ext" : "$bin");
    int bad = ext ? msgpack_pack_ext(pk, len, type) || msgpack_pack_ext_body(pk, p, len)
                  : msgpack_pack_bin(pk, len) || msgpack_pack_bin_body(pk, p, len);
    free(p);
    return bad ? -DL_EXIT_IO : 0;
}

int cat_from_json(msgpack_packer *pk, json_t *j, const char *key, char *err, size_t errlen) {
    int bad = 0;
    /* keys with a fixed binary meaning */
    if (key && json_is_array(j) && id_key(key) && all_u32(j)) {
        size_t n = json_array_size(j);
        uint32_t *ids = malloc((n ? n : 1) * sizeof *ids);
        if (!ids) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)json_integer_value(json_array_get(j, i));
        bad = dl_pack_ids(pk, ids, n);
        free(ids);
        return bad ? -DL_EXIT_IO : 0;
    }
    if (key && json_is_array(j) && !strcmp(key, "t_blocks") && all_numbers(j)) {
        size_t n = json_array_size(j);
        float *f = malloc((n ? n : 1) * sizeof *f);
        if (!f) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        for (size_t i = 0; i < n; i++) f[i] = (float)json_number_value(json_array_get(j, i));
        bad = dl_pack_floats(pk, f, n);
        free(f);
        return bad ? -DL_EXIT_IO : 0;
    }
    if (key && !strcmp(key, "t") && json_is_number(j))
        return msgpack_pack_float(pk, (float)json_number_value(j)) ? -DL_EXIT_IO : 0;

    switch (json_typeof(j)) {
    case JSON_NULL: bad = msgpack_pack_nil(pk); break;
    case JSON_TRUE: bad = msgpack_pack_true(pk); break;
    case JSON_FALSE: bad = msgpack_pack_false(pk); break;
    case JSON_INTEGER: {
        json_int_t v = json_integer_value(j);
        bad = v >= 0 ? msgpack_pack_uint64(pk, (uint64_t)v) : msgpack_pack_int64(pk, (int64_t)v);
        break;
    }
    case JSON_REAL: {
        double v = json_real_value(j);
        bad = looks_f32(v) ? msgpack_pack_float(pk, (float)v) : msgpack_pack_double(pk, v);
        break;
    }
    case JSON_STRING:
        bad = dl_pack_strn(pk, json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        size_t i; json_t *e;
        if (json_array_size(j) > UINT32_MAX) return dl_seterr(err, errlen, -DL_EXIT_DATA, "array too long");
        bad = msgpack_pack_array(pk, (uint32_t)json_array_size(j));
        json_array_foreach(j, i, e) {
            if (bad) break;
            int rc = cat_from_json(pk, e, NULL, err, errlen);
            if (rc) return rc;
        }
        break;
    }
    case JSON_OBJECT: {
        json_t *s = json_object_get(j, "$bin");
        if (json_object_size(j) == 1 && json_is_string(s))
            return pack_bin_b64(pk, json_string_value(s), json_string_length(s), 0, 0, err, errlen);
        s = json_object_get(j, "$ext");
        if (json_object_size(j) == 1 && json_is_array(s) && json_array_size(s) == 2 &&
            json_is_integer(json_array_get(s, 0)) && json_is_string(json_array_get(s, 1))) {
            json_int_t t = json_integer_value(json_array_get(s, 0));
            if (t < -128 || t > 127) return dl_seterr(err, errlen, -DL_EXIT_DATA, "$ext type %lld out of range", (long long)t);
            json_t *b = json_array_get(s, 1);
            return pack_bin_b64(pk, json_string_value(b), json_string_length(b), 1, (int8_t)t, err, errlen);
        }
        double v;
        if (special_float(j, "$f32", &v)) return msgpack_pack_float(pk, (float)v) ? -DL_EXIT_IO : 0;
        if (special_float(j, "$f64", &v)) return msgpack_pack_double(pk, v) ? -DL_EXIT_IO : 0;
        if (json_object_size(j) > UINT32_MAX) return dl_seterr(err, errlen, -DL_EXIT_DATA, "object too large");
        bad = msgpack_pack_map(pk, (uint32_t)json_object_size(j));
        const char *k; json_t *e;
        json_object_foreach(j, k, e) {
            if (bad) break;
            bad = dl_pack_str(pk, k);
            if (bad) break;
            int rc = cat_from_json(pk, e, k, err, errlen);
            if (rc) return rc;
        }
        break;
    }
    }
    return bad ? dl_seterr(err, errlen, -DL_EXIT_IO, "write error") : 0;
}
