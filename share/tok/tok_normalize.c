/* tok_normalize.c — tokenizer.json "normalizer": parse and apply.
 *
 * Supported: NFC, NFD, NFKC, NFKD (utf8proc), Lowercase (Rust
 * char::to_lowercase: simple mappings + U+0130 -> "i\u0307"), Prepend,
 * Replace (String or Regex pattern), Strip (White_Space), StripAccents
 * (drops combining marks), Sequence (flattened), null.  Not supported
 * (load fails with a message): BertNormalizer, Precompiled, Nmt.
 * The engine only needs the normalized text, not HF's offset alignments.
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <utf8proc.h>
#include "tok_normalize.h"
#include "tok_engine.h"
#include "tok_utf8.h"
#include "tok_regex.h"

/* ---------------------------------------------------------------- parse */
static int push_norm(dl_tok *t, tok_norm **out) {
    tok_norm *p = realloc(t->norm, (size_t)(t->n_norm + 1) * sizeof *p);
    if (!p) return -1;
    t->norm = p;
    *out = &p[t->n_norm++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static char *dup_str(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) { memcpy(p, s, n); p[n] = 0; }
    return p;
}

static int parse_one(dl_tok *t, json_t *j, char *err, size_t errlen) {
    if (json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return dl_seterr(err, errlen, -DL_EXIT_DATA, "normalizer without \"type\"");
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(j, "normalizers"), *v;
        size_t i;
        if (!json_is_array(a)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "normalizer Sequence without \"normalizers\"");
        json_array_foreach(a, i, v) {
            int rc = parse_one(t, v, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    tok_norm *n;
    if (push_norm(t, &n)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    if (!strcmp(type, "NFC")) n->kind = TOK_N_NFC;
    else if (!strcmp(type, "NFD")) n->kind = TOK_N_NFD;
    else if (!strcmp(type, "NFKC")) n->kind = TOK_N_NFKC;
    else if (!strcmp(type, "NFKD")) n->kind = TOK_N_NFKD;
    else if (!strcmp(type, "Lowercase")) n->kind = TOK_N_LOWER;
    else if (!strcmp(type, "StripAccents")) n->kind = TOK_N_STRIP_ACCENTS;
    else if (!strcmp(type, "Strip")) {
        n->kind = TOK_N_STRIP;
        n->left = json_is_true(json_object_get(j, "strip_left"));
        n->right = json_is_true(json_object_get(j, "strip_right"));
    } else if (!strcmp(type, "Prepend")) {
        json_t *p = json_object_get(j, "prepend");
        if (!json_is_string(p)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "Prepend without \"prepend\"");
        n->kind = TOK_N_PREPEND;
        n->an = json_string_length(p);
        if (!(n->a = dup_str(json_string_value(p), n->an))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    } else if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(j, "pattern"), *c = json_object_get(j, "content");
        json_t *ps = json_object_get(pat, "String"), *pr = json_object_get(pat, "Regex");
        if (!json_is_string(c) || (!json_is_string(ps) && !json_is_string(pr)))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "Replace normalizer needs pattern and content");
        n->kind = TOK_N_REPLACE;
        n->bn = json_string_length(c);
        if (!(n->b = dup_str(json_string_value(c), n->bn))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        int rc = ps ? tok_re_literal(&n->re, json_string_value(ps), json_string_length(ps), err, errlen)
                    : tok_re_compile(&n->re, json_string_value(pr), json_string_length(pr), err, errlen);
        if (rc) return rc;
        n->has_re = 1;
    } else {
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "unsupported normalizer \"%s\"", type);
    }
    return 0;
}

int tok_norm_parse(dl_tok *t, const void *json, char *err, size_t errlen) {
    if (!json) return 0;
    return parse_one(t, (json_t *)json, err, errlen);
}

void tok_norm_free(dl_tok *t) {
    for (int i = 0; i < t->n_norm; i++) {
        free(t->norm[i].a); free(t->norm[i].b);
        if (t->norm[i].has_re) tok_re_free(&t->norm[i].re);
    }
    free(t->norm);
    t->norm = NULL; t->n_norm = 0;
}

/* ---------------------------------------------------------------- apply */
static int nf_map(const char *s, size_t n, int opts, dl_strbuf *out) {
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &dst,
                                      (utf8proc_option_t)(UTF8PROC_STABLE | opts));
    if (r < 0) { free(dst); return dl_strbuf_append(out, s, n); }   /* cannot happen on valid UTF-8 */
    int rc = dl_strbuf_append(out, dst, (size_t)r);
    free(dst);
    return rc;
}

/* ASCII is invariant under every normalization form, and an ASCII character
 * neither composes with nor reorders around its neighbours (it has combining
 * class 0 and is never the second of a composition), so only the stretches
 * from the ASCII character before a non-ASCII run to the end of that run go
 * through utf8proc. */
static int unicode_nf(const char *s, size_t n, int opts, dl_strbuf *out) {
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + j, 8);
            if (w & 0x8080808080808080ull) break;
            j += 8;
        }
        while (j < n && !((unsigned char)s[j] & 0x80)) j++;
        if (j == n) return dl_strbuf_append(out, s + i, n - i);
        size_t a = j > i ? j - 1 : j, e = j;
        while (e < n && ((unsigned char)s[e] & 0x80)) e++;
        if (dl_strbuf_append(out, s + i, a - i) || nf_map(s + a, e - a, opts, out)) return -1;
        i = e;
    }
    return out->p ? 0 : dl_strbuf_append(out, "", 0);
}

/* Offset-0 tracking (z, see tok_normalize): HF gives a character that
 * replaces k removed ones the alignment of the last removed one, an inserted
 * character that of the one before it, and keeps it for 1:1 changes. */
static int apply_one(const tok_norm *nm, const char *s, size_t n, dl_strbuf *out, size_t *zp) {
    size_t z = zp ? *zp : 0, nz = 0;
    out->n = 0;
    if (out->p) out->p[0] = 0;
    int opts = -1, rc = 0;
    switch (nm->kind) {
    case TOK_N_NFC: opts = UTF8PROC_COMPOSE; break;
    case TOK_N_NFD: opts = UTF8PROC_DECOMPOSE; break;
    case TOK_N_NFKC: opts = UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case TOK_N_NFKD: opts = UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    case TOK_N_PREPEND:
        if (n && dl_strbuf_append(out, nm->a, nm->an)) return -1;
        nz = z && n ? z + nm->an : 0;
        rc = dl_strbuf_append(out, s, n);
        break;
    case TOK_N_REPLACE: {
        size_t pos = 0, ms, me;
        int still = z > 0;                /* everything written so far is aligned to 0 */
        tok_re *re = (tok_re *)&nm->re;
        while (tok_re_next(re, s, n, pos, &ms, &me)) {
            if (dl_strbuf_append(out, s + pos, ms - pos)) return -1;
            if (still && ms > z) { nz = out->n - (ms - z); still = 0; }
            else if (still) nz = out->n;
            if (dl_strbuf_append(out, nm->b, nm->bn)) return -1;
            if (still) {
                size_t last = me - 1;          /* start of the last removed character */
                while (last > ms && ((unsigned char)s[last] & 0xC0) == 0x80) last--;
                if (last < z) nz = out->n; else still = 0;
                if (me >= z) still = 0;
            }
            pos = me;
        }
        if (dl_strbuf_append(out, s + pos, n - pos)) return -1;
        if (still) nz = out->n - (n > z ? n - z : 0);
        break;
    }
    case TOK_N_LOWER:
    case TOK_N_STRIP_ACCENTS:
        if (dl_strbuf_reserve(out, n + 8)) return -1;
        for (size_t i = 0; i < n;) {
            uint32_t c;
            size_t i0 = i;
            int l = tok_utf8_dec((const unsigned char *)s + i, &c);
            i += (size_t)l;
            if (nm->kind == TOK_N_STRIP_ACCENTS) {
                utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)c);
                if (cat == UTF8PROC_CATEGORY_MN || cat == UTF8PROC_CATEGORY_MC || cat == UTF8PROC_CATEGORY_ME)
                    continue;
            }
            if (nm->kind == TOK_N_LOWER && c == 0x130) {
                if (dl_strbuf_append(out, "i\xCC\x87", 3)) return -1;
            } else {
                if (nm->kind == TOK_N_LOWER) c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
                char b[4];
                if (dl_strbuf_append(out, b, (size_t)tok_utf8_enc(c, b))) return -1;
            }
            if (i0 < z) nz = out->n;
        }
        if (!out->p) rc = dl_strbuf_append(out, "", 0);
        break;
    case TOK_N_STRIP: {
        size_t a = 0, b = n;
        if (nm->left)
            while (a < b) {
                uint32_t c;
                int l = tok_utf8_dec((const unsigned char *)s + a, &c);
                if (!tok_cp_is_space(c)) break;
                a += (size_t)l;
            }
        if (nm->right)
            while (b > a) {
                size_t k = b - 1;
                while (k > a && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                uint32_t c;
                tok_utf8_dec((const unsigned char *)s + k, &c);
                if (!tok_cp_is_space(c)) break;
                b = k;
            }
        nz = z > a ? (z < b ? z : b) - a : 0;
        rc = dl_strbuf_append(out, s + a, b - a);
        break;
    }
    }
    if (opts >= 0) {
        rc = unicode_nf(s, n, opts, out);
        if (!rc && z) {                    /* what the leading aligned characters became */
            if (z >= n) nz = out->n;
            else {
                dl_strbuf pre = { 0 };
                if (unicode_nf(s, z, opts, &pre)) return -1;
                nz = pre.n < out->n ? pre.n : out->n;
                dl_strbuf_free(&pre);
            }
        }
    }
    if (zp) *zp = nz;
    return rc;
}

int tok_normalize(dl_tok *t, const char *s, size_t n, dl_strbuf *out, size_t *z) {
    dl_strbuf *tmp = &t->normtmp;
    if (t->n_norm == 0) { out->n = 0; return dl_strbuf_append(out, s, n); }
    /* ping-pong so that the last step lands in out */
    dl_strbuf *bufs[2] = { (t->n_norm % 2) ? out : tmp, (t->n_norm % 2) ? tmp : out };
    const char *cur = s;
    size_t curn = n;
    for (int i = 0; i < t->n_norm; i++) {
        dl_strbuf *dst = bufs[i % 2];
        if (apply_one(&t->norm[i], cur, curn, dst, z)) return -1;
        cur = dst->p; curn = dst->n;
    }
    return 0;
}
