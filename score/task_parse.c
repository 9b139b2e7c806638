/* score/task_parse.c — task JSONL lines -> (context, continuation) text pairs.
 *
 * Layouts, the split rule and ownership: task_internal.h.  Checks, each a
 * data error naming PATH:LINE: the line is a JSON object; the fields of its
 * layout are present with the right types ("query" string, "choices" a
 * non-empty array of non-empty strings, "gold" an integer in
 * [0, n_options), "context_options" a non-empty array of strings,
 * "continuation" a non-empty string, "context" a string); all lines have one
 * layout.  Does not tokenise (task.c does).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "task_internal.h"
#include "dl_base.h"

/* ------------------------------------------------------------------ helpers */
int tk_layout_parse(const char *name, tk_layout *out) {
    if (!name || !strcmp(name, "auto")) *out = TK_AUTO;
    else if (!strcmp(name, "mc")) *out = TK_MC;
    else if (!strcmp(name, "schema")) *out = TK_SCHEMA;
    else if (!strcmp(name, "lambada")) *out = TK_LAMBADA;
    else return -1;
    return 0;
}

const char *tk_layout_name(tk_layout l) {
    switch (l) {
    case TK_MC: return "mc";
    case TK_SCHEMA: return "schema";
    case TK_LAMBADA: return "lambada";
    default: return "auto";
    }
}

char *tk_unescape(const char *s) {
    size_t n = strlen(s);
    char *o = malloc(n + 1), *p = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char e = s[i + 1];
            if (e == 'n') { *p++ = '\n'; i++; continue; }
            if (e == 't') { *p++ = '\t'; i++; continue; }
            if (e == 'r') { *p++ = '\r'; i++; continue; }
            if (e == '\\') { *p++ = '\\'; i++; continue; }
        }
        *p++ = s[i];
    }
    *p = 0;
    return o;
}

int tk_utf8_chars(const char *s, size_t n) {
    int c = 0;
    for (size_t i = 0; i < n; i++) c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The field text, stripped when asked: *p, *n point into the JSON string. */
static void field(const json_t *v, int strip, const char **p, size_t *n) {
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strip) {
        while (len && is_ws(*s)) { s++; len--; }
        while (len && is_ws(s[len - 1])) len--;
    }
    *p = s; *n = len;
}

/* ctx/cont of A + delim + B, split before the trailing spaces of A + delim. */
static int split_pair(const char *a, size_t na, const char *delim, const char *b, size_t nb,
                      char **ctx, char **cont) {
    size_t nd = strlen(delim), ns = na + nd;
    char *s = malloc(ns + nb + 1);
    if (!s) return -1;
    memcpy(s, a, na);
    memcpy(s + na, delim, nd);
    memcpy(s + ns, b, nb);
    s[ns + nb] = 0;
    size_t k = ns;
    while (k && s[k - 1] == ' ') k--;
    *ctx = malloc(k + 1);
    *cont = malloc(ns + nb - k + 1);
    if (!*ctx || !*cont) { free(s); free(*ctx); free(*cont); *ctx = *cont = NULL; return -1; }
    memcpy(*ctx, s, k);
    (*ctx)[k] = 0;
    memcpy(*cont, s + k, ns + nb - k + 1);
    free(s);
    return 0;
}

static void item_free(tk_item *it) {
    for (int j = 0; j < it->n; j++) {
        if (it->ctx) free(it->ctx[j]);
        if (it->cont) free(it->cont[j]);
    }
    free(it->ctx);
    free(it->cont);
    free(it->chars);
    memset(it, 0, sizeof *it);
}

void tk_set_free(tk_set *s) {
    for (size_t i = 0; i < s->n; i++) item_free(&s->items[i]);
    free(s->items);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------ one line */
typedef struct {
    const char *path;
    int line;
    char *err;
    size_t errlen;
} where;

#define BAD(w, ...) bad(w, __VA_ARGS__)
static int bad(const where *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int bad(const where *w, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return dl_seterr(w->err, w->errlen, -DL_EXIT_DATA, "%s:%d: %s", w->path, w->line, msg);
}

static tk_layout detect(const json_t *o) {
    if (json_object_get(o, "context_options")) return TK_SCHEMA;
    if (json_object_get(o, "choices") || json_object_get(o, "query")) return TK_MC;
    if (json_object_get(o, "context") || json_object_get(o, "continuation")) return TK_LAMBADA;
    return TK_AUTO;
}

static const json_t *need_str(const where *w, const json_t *o, const char *key, int *rc) {
    const json_t *v = json_object_get(o, key);
    if (!v) { *rc = BAD(w, "missing \"%s\"", key); return NULL; }
    if (!json_is_string(v)) { *rc = BAD(w, "\"%s\" is not a string", key); return NULL; }
    return v;
}

static int need_gold(const where *w, const json_t *o, int n, const char *what, int *gold) {
    const json_t *g = json_object_get(o, "gold");
    if (!g) return BAD(w, "missing \"gold\"");
    if (!json_is_integer(g)) return BAD(w, "\"gold\" is not an integer");
    json_int_t v = json_integer_value(g);
    if (v < 0 || v >= n) return BAD(w, "gold %lld out of range (%d %s)", (long long)v, n, what);
    *gold = (int)v;
    return 0;
}

/* A non-empty array of strings (each non-empty after strip when nonempty). */
static const json_t *need_strs(const where *w, const json_t *o, const char *key, int strip,
                               int nonempty, int *rc) {
    const json_t *a = json_object_get(o, key);
    if (!a) { *rc = BAD(w, "missing \"%s\"", key); return NULL; }
    if (!json_is_array(a)) { *rc = BAD(w, "\"%s\" is not an array", key); return NULL; }
    if (!json_array_size(a)) { *rc = BAD(w, "\"%s\" is empty", key); return NULL; }
    if (json_array_size(a) > 100000) { *rc = BAD(w, "\"%s\" has %zu entries", key, json_array_size(a)); return NULL; }
    for (size_t j = 0; j < json_array_size(a); j++) {
        const json_t *v = json_array_get(a, j);
        if (!json_is_string(v)) { *rc = BAD(w, "%s[%zu] is not a string", key, j); return NULL; }
        const char *p; size_t n;
        field(v, strip, &p, &n);
        if (nonempty && !n) { *rc = BAD(w, "%s[%zu] is empty", key, j); return NULL; }
    }
    return a;
}

static int parse_item(tk_item *it, const where *w, const json_t *o, tk_layout lay,
                      const char *delim, int strip) {
    int rc = 0;
    const char *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    const json_t *q = NULL, *arr = NULL, *cv = NULL;
    it->line = w->line;
    it->gold = -1;
    switch (lay) {
    case TK_MC:
        if (!(q = need_str(w, o, "query", &rc))) return rc;
        if (!(arr = need_strs(w, o, "choices", strip, 1, &rc))) return rc;
        it->n = (int)json_array_size(arr);
        if ((rc = need_gold(w, o, it->n, "choices", &it->gold))) return rc;
        break;
    case TK_SCHEMA:
        if (!(arr = need_strs(w, o, "context_options", strip, 0, &rc))) return rc;
        if (!(cv = need_str(w, o, "continuation", &rc))) return rc;
        it->n = (int)json_array_size(arr);
        if ((rc = need_gold(w, o, it->n, "context options", &it->gold))) return rc;
        break;
    default: /* TK_LAMBADA */
        if (!(q = need_str(w, o, "context", &rc))) return rc;
        if (!(cv = need_str(w, o, "continuation", &rc))) return rc;
        it->n = 1;
        break;
    }
    if (lay != TK_MC) {
        field(cv, strip, &b, &nb);
        if (!nb) return BAD(w, "\"continuation\" is empty");
    }
    it->ctx = calloc((size_t)it->n, sizeof *it->ctx);
    it->cont = calloc((size_t)it->n, sizeof *it->cont);
    it->chars = calloc((size_t)it->n, sizeof *it->chars);
    if (!it->ctx || !it->cont || !it->chars) return dl_seterr(w->err, w->errlen, -DL_EXIT_IO, "out of memory");
    for (int j = 0; j < it->n; j++) {
        if (lay == TK_MC) {
            field(q, strip, &a, &na);
            field(json_array_get(arr, (size_t)j), strip, &b, &nb);
        } else if (lay == TK_SCHEMA) {
            field(json_array_get(arr, (size_t)j), strip, &a, &na);
        } else {
            field(q, strip, &a, &na);
        }
        if (split_pair(a, na, delim, b, nb, &it->ctx[j], &it->cont[j]))
            return dl_seterr(w->err, w->errlen, -DL_EXIT_IO, "out of memory");
        it->chars[j] = tk_utf8_chars(b, nb);
    }
    return 0;
}

/* ------------------------------------------------------------------ the file */
int tk_parse(tk_set *s, const char *path, const char *text, size_t len, tk_layout force,
             const char *delim, int strip, long long limit, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->layout = force;
    int first_line = 0;
    where w = { path, 0, err, errlen };
    size_t pos = 0;
    while (pos < len && (limit <= 0 || (long long)s->n < limit)) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - line) : len - pos;
        pos += n + (nl != NULL);
        w.line++;
        size_t k = 0;
        while (k < n && is_ws(line[k])) k++;
        if (k == n) continue;                 /* blank line */
        json_error_t je;
        json_t *o = json_loadb(line, n, 0, &je);
        if (!o) { tk_set_free(s); return BAD(&w, "malformed JSON: %s (column %d)", je.text, je.column); }
        if (!json_is_object(o)) { json_decref(o); tk_set_free(s); return BAD(&w, "not a JSON object"); }
        tk_layout lay = force ? force : detect(o);
        if (lay == TK_AUTO) {
            json_decref(o); tk_set_free(s);
            return BAD(&w, "unknown layout: expected \"query\"+\"choices\"+\"gold\" (mc), "
                           "\"context_options\"+\"continuation\"+\"gold\" (schema) or "
                           "\"context\"+\"continuation\" (lambada)");
        }
        if (s->layout == TK_AUTO) { s->layout = lay; first_line = w.line; }
        else if (lay != s->layout) {
            tk_layout was = s->layout;
            json_decref(o); tk_set_free(s);
            return BAD(&w, "a %s item, but line %d is a %s item (one layout per file)",
                       tk_layout_name(lay), first_line, tk_layout_name(was));
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? 2 * s->cap : 256;
            tk_item *p = realloc(s->items, cap * sizeof *p);
            if (!p) { json_decref(o); tk_set_free(s); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
            s->items = p;
            s->cap = cap;
        }
        tk_item *it = &s->items[s->n];
        memset(it, 0, sizeof *it);
        int rc = parse_item(it, &w, o, lay, delim, strip);
        json_decref(o);
        if (rc) { item_free(it); tk_set_free(s); return rc; }
        s->n++;
    }
    return 0;
}
