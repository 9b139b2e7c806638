/* cat/tojson.c — one msgpack object to JSON text (mapping in cat.h).
 *
 * Written for throughput on token rows: integers are formatted by hand,
 * everything is appended to one dl_strbuf per record.  Strings are checked
 * as UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF); bad bytes
 * become U+FFFD so the output is always valid JSON.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "cat.h"

static int id_key(const char *k, size_t n) {
    return (n == 3 && !memcmp(k, "ids", 3)) || (n == 2 && (!memcmp(k, "x0", 2) || !memcmp(k, "xt", 2))) ||
           (n == 4 && !memcmp(k, "docs", 4));
}

/* %g prints 1.0 as "1": add ".0" so the value reads back as a real */
static void fix_real(char *s) {
    if (strpbrk(s, ".eEni")) return;
    strcat(s, ".0");
}

void cat_fmt_f32(char out[40], float f) {
    snprintf(out, 40, "%.9g", (double)f);
    fix_real(out);
}

void cat_fmt_f64(char out[40], double d) {
    snprintf(out, 40, "%.17g", d);
    fix_real(out);
}

static char *u64_dec(char *end, uint64_t v) {   /* writes backwards, returns start */
    do { *--end = (char)('0' + v % 10); v /= 10; } while (v);
    return end;
}

static int put_u64(dl_strbuf *b, uint64_t v) {
    char t[24], *s = u64_dec(t + sizeof t, v);
    return dl_strbuf_append(b, s, (size_t)(t + sizeof t - s));
}

static int put_i64(dl_strbuf *b, int64_t v) {
    if (v >= 0) return put_u64(b, (uint64_t)v);
    char t[24], *s = u64_dec(t + sizeof t, (uint64_t)0 - (uint64_t)v);
    *--s = '-';
    return dl_strbuf_append(b, s, (size_t)(t + sizeof t - s));
}

static int put_float(dl_strbuf *b, double v, int f32) {
    if (!isfinite(v)) {
        const char *w = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
        return dl_strbuf_printf(b, "{\"$f%s\":\"%s\"}", f32 ? "32" : "64", w);
    }
    char t[40];
    if (f32) cat_fmt_f32(t, (float)v); else cat_fmt_f64(t, v);
    return dl_strbuf_puts(b, t);
}

/* length of a valid UTF-8 sequence at p (n bytes left), 0 if invalid */
static size_t utf8_len(const unsigned char *p, size_t n) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; if (c == 0xE0) lo = 0xA0; if (c == 0xED) hi = 0x9F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; if (c == 0xF0) lo = 0x90; if (c == 0xF4) hi = 0x8F; }
    else return 0;
    if (n < len || p[1] < lo || p[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xBF) return 0;
    return len;
}

static int put_str(dl_strbuf *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s;
    if (dl_strbuf_reserve(b, b->n + n + 2)) return -DL_EXIT_IO;
    int rc = dl_strbuf_append(b, "\"", 1);
    size_t run = 0;   /* pending bytes copied verbatim */
    for (size_t i = 0; i < n && !rc;) {
        unsigned c = p[i];
        const char *esc = NULL;
        char u[8];
        size_t len = 1;
        if (c == '"') esc = "\\\"";
        else if (c == '\\') esc = "\\\\";
        else if (c < 0x20) {
            switch (c) {
            case '\n': esc = "\\n"; break;
            case '\t': esc = "\\t"; break;
            case '\r': esc = "\\r"; break;
            case '\b': esc = "\\b"; break;
            case '\f': esc = "\\f"; break;
            default: snprintf(u, sizeof u, "\\u%04x", c); esc = u;
            }
        } else if (c >= 0x80) {
            len = utf8_len(p + i, n - i);
            if (!len) { esc = "\\ufffd"; len = 1; }
        }
        if (esc) {
            rc = dl_strbuf_append(b, s + i - run, run);
            run = 0;
            if (!rc) rc = dl_strbuf_puts(b, esc);
        } else {
            run += len;
        }
        i += len;
    }
    if (!rc && run) rc = dl_strbuf_append(b, s + n - run, run);   /* an empty string's s may be NULL */
    if (!rc) rc = dl_strbuf_append(b, "\"", 1);
    return rc;
}

static int put_b64(dl_strbuf *b, const unsigned char *p, size_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (dl_strbuf_reserve(b, b->n + (n + 2) / 3 * 4 + 2)) return -DL_EXIT_IO;
    char *o = b->p + b->n;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63]; *o++ = tab[(v >> 6) & 63]; *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)p[i] << 16;
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63]; *o++ = '='; *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
        *o++ = tab[v >> 18]; *o++ = tab[(v >> 12) & 63]; *o++ = tab[(v >> 6) & 63]; *o++ = '=';
    }
    *o++ = '"';
    b->n = (size_t)(o - b->p);
    b->p[b->n] = '\0';
    return 0;
}

static int put_u32_array(dl_strbuf *b, const unsigned char *p, size_t n) {
    /* at most 11 bytes per id ("4294967295,") */
    if (dl_strbuf_reserve(b, b->n + n * 11 + 2)) return -DL_EXIT_IO;
    char *o = b->p + b->n;
    *o++ = '[';
    for (size_t i = 0; i < n; i++) {
        uint32_t v;
        dl_u32_from_le(&v, p + 4 * i, 1);
        char t[12], *s = u64_dec(t + sizeof t, v);
        size_t l = (size_t)(t + sizeof t - s);
        if (i) *o++ = ',';
        memcpy(o, s, l);
        o += l;
    }
    *o++ = ']';
    b->n = (size_t)(o - b->p);
    b->p[b->n] = '\0';
    return 0;
}

static int put_f32_array(dl_strbuf *b, const unsigned char *p, size_t n) {
    int rc = dl_strbuf_append(b, "[", 1);
    for (size_t i = 0; i < n && !rc; i++) {
        uint32_t u;
        float f;
        dl_u32_from_le(&u, p + 4 * i, 1);
        memcpy(&f, &u, 4);
        if (i) rc = dl_strbuf_append(b, ",", 1);
        if (!rc) rc = put_float(b, f, 1);
    }
    return rc ? rc : dl_strbuf_append(b, "]", 1);
}

static int emit(dl_strbuf *b, const msgpack_object *o, const char *key, size_t klen);

static int put_key(dl_strbuf *b, const msgpack_object *k) {
    if (k->type == MSGPACK_OBJECT_STR) return put_str(b, k->via.str.ptr, k->via.str.size);
    dl_strbuf t = {0};
    int rc = emit(&t, k, NULL, 0);
    if (!rc) rc = put_str(b, t.p, t.n);
    dl_strbuf_free(&t);
    return rc;
}

static int emit(dl_strbuf *b, const msgpack_object *o, const char *key, size_t klen) {
    int rc = 0;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return dl_strbuf_puts(b, "null");
    case MSGPACK_OBJECT_BOOLEAN: return dl_strbuf_puts(b, o->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER: return put_u64(b, o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return put_i64(b, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32: return put_float(b, o->via.f64, 1);
    case MSGPACK_OBJECT_FLOAT64: return put_float(b, o->via.f64, 0);
    case MSGPACK_OBJECT_STR: return put_str(b, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN: {
        const unsigned char *p = (const unsigned char *)o->via.bin.ptr;
        size_t n = o->via.bin.size;
        if (key && n % 4 == 0 && id_key(key, klen)) return put_u32_array(b, p, n / 4);
        if (key && n % 4 == 0 && klen == 8 && !memcmp(key, "t_blocks", 8)) return put_f32_array(b, p, n / 4);
        rc = dl_strbuf_puts(b, "{\"$bin\":");
        if (!rc) rc = put_b64(b, p, n);
        return rc ? rc : dl_strbuf_append(b, "}", 1);
    }
    case MSGPACK_OBJECT_EXT:
        rc = dl_strbuf_printf(b, "{\"$ext\":[%d,", (int)o->via.ext.type);
        if (!rc) rc = put_b64(b, (const unsigned char *)o->via.ext.ptr, o->via.ext.size);
        return rc ? rc : dl_strbuf_puts(b, "]}");
    case MSGPACK_OBJECT_ARRAY:
        rc = dl_strbuf_append(b, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size && !rc; i++) {
            if (i) rc = dl_strbuf_append(b, ",", 1);
            if (!rc) rc = emit(b, &o->via.array.ptr[i], NULL, 0);
        }
        return rc ? rc : dl_strbuf_append(b, "]", 1);
    case MSGPACK_OBJECT_MAP:
        rc = dl_strbuf_append(b, "{", 1);
        for (uint32_t i = 0; i < o->via.map.size && !rc; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            if (i) rc = dl_strbuf_append(b, ",", 1);
            if (!rc) rc = put_key(b, k);
            if (!rc) rc = dl_strbuf_append(b, ":", 1);
            if (!rc) {
                int sk = k->type == MSGPACK_OBJECT_STR;
                rc = emit(b, &o->via.map.ptr[i].val, sk ? k->via.str.ptr : NULL, sk ? k->via.str.size : 0);
            }
        }
        return rc ? rc : dl_strbuf_append(b, "}", 1);
    }
    return dl_strbuf_puts(b, "null");
}

int cat_to_json(dl_strbuf *b, const msgpack_object *o) {
    return emit(b, o, NULL, 0) ? -DL_EXIT_IO : 0;
}
