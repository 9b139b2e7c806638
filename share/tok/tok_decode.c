/* tok_decode.c — tokenizer.json "decoder": parse, and dl_tok_decode.
 *
 * As HF TokenizerImpl::decode: ids -> token strings (added tokens first, a
 * normalized one as its normalized content, then the model; when
 * skip_special, tokens whose string is a special token's content are
 * dropped — a string test, as HF does), the whole list
 * through the decoder chain, then concatenated.  No decoder: tokens joined
 * with " ".  Decoders (HF semantics, quirks included):
 *   ByteLevel    all tokens -> bytes via the byte-level alphabet (a token
 *                with a char outside it is taken as its UTF-8 bytes), then
 *                lossy UTF-8 (U+FFFD per maximal invalid subpart); one token
 *   Replace      per token, pattern (String/Regex) -> content
 *   ByteFallback runs of "<0xXX>" tokens -> their bytes if valid UTF-8,
 *                else one U+FFFD per byte
 *   Fuse         all tokens -> one
 *   Strip        per token, up to `start` leading / `stop` trailing `content`
 *   Metaspace    replacement -> ' '; in the first token (prepend_scheme not
 *                never) every replacement char is dropped
 *   BPEDecoder   suffix -> ' ' in every token but the last, where it goes
 *   Sequence     flattened
 * Ids >= vocab size, or ids no token has, are an error (HF skips them).
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "tok_decode.h"
#include "tok_engine.h"
#include "tok_utf8.h"
#include "tok_regex.h"
#include "tok_bytelevel.h"
#include "tok_pretok.h"

/* ---------------------------------------------------------------- parse */
static int push_dec(dl_tok *t, tok_dec **out) {
    tok_dec *p = realloc(t->dec, (size_t)(t->n_dec + 1) * sizeof *p);
    if (!p) return -1;
    t->dec = p;
    *out = &p[t->n_dec++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int parse_one(dl_tok *t, json_t *j, char *err, size_t errlen) {
    if (json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return dl_seterr(err, errlen, -DL_EXIT_DATA, "decoder without \"type\"");
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(j, "decoders"), *v;
        size_t i;
        if (!json_is_array(a)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "decoder Sequence without \"decoders\"");
        json_array_foreach(a, i, v) {
            int rc = parse_one(t, v, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    tok_dec *d;
    if (push_dec(t, &d)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    if (!strcmp(type, "ByteLevel")) d->kind = TOK_D_BYTELEVEL;
    else if (!strcmp(type, "ByteFallback")) d->kind = TOK_D_BYTEFALLBACK;
    else if (!strcmp(type, "Fuse")) d->kind = TOK_D_FUSE;
    else if (!strcmp(type, "Strip")) {
        json_t *c = json_object_get(j, "content");
        d->kind = TOK_D_STRIP;
        d->ch = ' ';
        if (json_is_string(c) && json_string_length(c))
            tok_utf8_dec((const unsigned char *)json_string_value(c), &d->ch);
        d->start = (int)json_integer_value(json_object_get(j, "start"));
        d->stop = (int)json_integer_value(json_object_get(j, "stop"));
    } else if (!strcmp(type, "Replace")) {
        json_t *pat = json_object_get(j, "pattern"), *c = json_object_get(j, "content");
        json_t *ps = json_object_get(pat, "String"), *pr = json_object_get(pat, "Regex");
        if (!json_is_string(c) || (!json_is_string(ps) && !json_is_string(pr)))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "Replace decoder needs pattern and content");
        d->kind = TOK_D_REPLACE;
        d->bn = json_string_length(c);
        if (!(d->b = malloc(d->bn + 1))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        memcpy(d->b, json_string_value(c), d->bn + 1);
        int rc = ps ? tok_re_literal(&d->re, json_string_value(ps), json_string_length(ps), err, errlen)
                    : tok_re_compile(&d->re, json_string_value(pr), json_string_length(pr), err, errlen);
        if (rc) return rc;
        d->has_re = 1;
    } else if (!strcmp(type, "BPEDecoder")) {
        json_t *sfx = json_object_get(j, "suffix");
        const char *sv = json_is_string(sfx) ? json_string_value(sfx) : "</w>";
        d->kind = TOK_D_BPE;
        d->an = json_is_string(sfx) ? json_string_length(sfx) : 4;
        if (!(d->a = malloc(d->an + 1))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        memcpy(d->a, sv, d->an + 1);
    } else if (!strcmp(type, "Metaspace")) {
        d->kind = TOK_D_METASPACE;
        if (tok_parse_replacement(j, d->repl, &d->repl_n) || tok_parse_prepend(j, &d->prepend))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "Metaspace decoder: bad replacement or prepend_scheme");
    } else {
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "unsupported decoder \"%s\"", type);
    }
    return 0;
}

int tok_dec_parse(dl_tok *t, const void *json, char *err, size_t errlen) {
    if (!json || json_is_null((json_t *)json)) return 0;
    t->has_decoder = 1;
    return parse_one(t, (json_t *)json, err, errlen);
}

void tok_dec_free(dl_tok *t) {
    for (int i = 0; i < t->n_dec; i++) {
        free(t->dec[i].a); free(t->dec[i].b);
        if (t->dec[i].has_re) tok_re_free(&t->dec[i].re);
    }
    free(t->dec);
    t->dec = NULL; t->n_dec = 0;
}

/* ---------------------------------------------------------------- token lists */
typedef struct { dl_strbuf b; size_t *off; size_t n, cap; } toklist;   /* token i = b.p[off[i]..off[i+1]) */

static int tl_reset(toklist *l) {
    l->b.n = 0; l->n = 0;
    if (!l->off) {
        l->cap = 64;
        if (!(l->off = malloc(l->cap * sizeof *l->off))) return -1;
    }
    l->off[0] = 0;
    return 0;
}
/* end the current token (its bytes were appended to l->b) */
static int tl_end(toklist *l) {
    if (l->n + 2 > l->cap) {
        size_t c = l->cap * 2;
        size_t *p = realloc(l->off, c * sizeof *p);
        if (!p) return -1;
        l->off = p; l->cap = c;
    }
    l->off[++l->n] = l->b.n;
    return 0;
}
static int tl_push(toklist *l, const char *s, size_t n) {
    return dl_strbuf_append(&l->b, s, n) || tl_end(l);
}
static void tl_free(toklist *l) { dl_strbuf_free(&l->b); free(l->off); }

static int hexv(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xXX>" -> byte (u8::from_str_radix accepts "+X" too), else -1 */
static int byte_token(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) || s[5] != '>') return -1;
    int hi = hexv(s[3]), lo = hexv(s[4]);
    if (s[3] == '+' && lo >= 0) return lo;
    return hi >= 0 && lo >= 0 ? hi * 16 + lo : -1;
}

static int apply(const tok_dec *d, toklist *in, toklist *out, dl_strbuf *tmp) {
    if (tl_reset(out)) return -1;
    /* no bytes yet (decode of no ids): b.p is NULL and every token is
     * empty; B + 0 on NULL is undefined behaviour, so point at "" */
    const char *B = in->b.p ? in->b.p : "";
    switch (d->kind) {
    case TOK_D_BYTELEVEL: {
        tmp->n = 0;
        for (size_t i = 0; i < in->n; i++) {
            const unsigned char *s = (const unsigned char *)B + in->off[i];
            size_t n = in->off[i + 1] - in->off[i], start = tmp->n;
            if (dl_strbuf_reserve(tmp, tmp->n + n)) return -1;
            for (size_t k = 0; k < n;) {
                uint32_t cp;
                k += (size_t)tok_utf8_dec(s + k, &cp);
                int by = tok_char_byte(cp);
                if (by < 0) {     /* not byte-level: the token's own bytes */
                    tmp->n = start;
                    memcpy(tmp->p + tmp->n, s, n);
                    tmp->n += n;
                    break;
                }
                tmp->p[tmp->n++] = (char)by;
            }
        }
        if (tok_utf8_repair(tmp->p ? tmp->p : "", tmp->n, &out->b)) return -1;
        return tl_end(out);
    }
    case TOK_D_FUSE:
        if (dl_strbuf_append(&out->b, B ? B : "", in->b.n)) return -1;
        return tl_end(out);
    case TOK_D_BYTEFALLBACK: {
        tmp->n = 0;
        for (size_t i = 0; i <= in->n; i++) {
            int by = -1;
            if (i < in->n) by = byte_token(B + in->off[i], in->off[i + 1] - in->off[i]);
            if (by >= 0) {
                char c = (char)by;
                if (dl_strbuf_append(tmp, &c, 1)) return -1;
                continue;
            }
            if (tmp->n) {
                if (tok_utf8_valid_len(tmp->p, tmp->n) == tmp->n) {
                    if (tl_push(out, tmp->p, tmp->n)) return -1;
                } else {
                    for (size_t k = 0; k < tmp->n; k++)
                        if (tl_push(out, "\xEF\xBF\xBD", 3)) return -1;
                }
                tmp->n = 0;
            }
            if (i < in->n && tl_push(out, B + in->off[i], in->off[i + 1] - in->off[i])) return -1;
        }
        return 0;
    }
    case TOK_D_REPLACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = B + in->off[i];
            size_t n = in->off[i + 1] - in->off[i], pos = 0, ms, me;
            while (tok_re_next((tok_re *)&d->re, s, n, pos, &ms, &me)) {
                if (dl_strbuf_append(&out->b, s + pos, ms - pos) || dl_strbuf_append(&out->b, d->b, d->bn)) return -1;
                pos = me;
            }
            if (dl_strbuf_append(&out->b, s + pos, n - pos) || tl_end(out)) return -1;
        }
        return 0;
    case TOK_D_STRIP:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = B + in->off[i];
            size_t n = in->off[i + 1] - in->off[i], a = 0, b = n;
            for (int k = 0; k < d->start && a < b; k++) {
                uint32_t cp;
                int l = tok_utf8_dec((const unsigned char *)s + a, &cp);
                if (cp != d->ch) break;
                a += (size_t)l;
            }
            for (int k = 0; k < d->stop && b > a; k++) {
                size_t q = b - 1;
                while (q > a && ((unsigned char)s[q] & 0xC0) == 0x80) q--;
                uint32_t cp;
                tok_utf8_dec((const unsigned char *)s + q, &cp);
                if (cp != d->ch) break;
                b = q;
            }
            if (tl_push(out, s + a, b - a)) return -1;
        }
        return 0;
    case TOK_D_BPE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = B + in->off[i];
            size_t n = in->off[i + 1] - in->off[i], pos = 0;
            const char *hit;
            while (d->an && pos < n && (hit = memmem(s + pos, n - pos, d->a, d->an))) {
                size_t h = (size_t)(hit - s);
                if (dl_strbuf_append(&out->b, s + pos, h - pos)) return -1;
                if (i + 1 < in->n && dl_strbuf_append(&out->b, " ", 1)) return -1;
                pos = h + d->an;
            }
            if (dl_strbuf_append(&out->b, s + pos, n - pos) || tl_end(out)) return -1;
        }
        return 0;
    case TOK_D_METASPACE:
        for (size_t i = 0; i < in->n; i++) {
            const char *s = B + in->off[i];
            size_t n = in->off[i + 1] - in->off[i], rn = (size_t)d->repl_n;
            int drop = i == 0 && d->prepend != TOK_PREPEND_NEVER;
            for (size_t k = 0; k < n;) {
                if (k + rn <= n && !memcmp(s + k, d->repl, rn)) {
                    if (!drop && dl_strbuf_append(&out->b, " ", 1)) return -1;
                    k += rn;
                } else {
                    size_t l = (size_t)tok_utf8_len((unsigned char)s[k]);
                    if (dl_strbuf_append(&out->b, s + k, l)) return -1;
                    k += l;
                }
            }
            if (tl_end(out)) return -1;
        }
        return 0;
    }
    return -1;
}

int dl_tok_decode(dl_tok *t, const uint32_t *ids, size_t n, int skip_special, dl_strbuf *out,
                  char *err, size_t errlen) {
    toklist l[2] = { { { 0 }, 0, 0, 0 }, { { 0 }, 0, 0, 0 } };
    dl_strbuf tmp = { 0 };
    int rc = 0, cur = 0;
    if (tl_reset(&l[0])) goto oom;
    for (size_t i = 0; i < n; i++) {
        uint32_t id = ids[i];
        if (id >= t->vocab_n || t->id_off[id] == UINT32_MAX) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "token id %u at position %zu is not in the vocabulary (size %u)",
                           id, i, t->vocab_n);
            goto done;
        }
        if (skip_special && (t->id_flags[id] & TOK_FLAG_SKIP)) continue;
        if (!t->has_decoder && l[0].n && dl_strbuf_append(&l[0].b, " ", 1)) goto oom;
        if (dl_strbuf_append(&l[0].b, t->id_pool + t->id_off[id], t->id_len[id])) goto oom;
        if (t->has_decoder && tl_end(&l[0])) goto oom;
        else if (!t->has_decoder) l[0].n = 1;
    }
    if (!t->has_decoder) {
        if (dl_strbuf_append(out, l[0].b.p ? l[0].b.p : "", l[0].b.n)) goto oom;
        goto done;
    }
    for (int k = 0; k < t->n_dec; k++) {
        if (apply(&t->dec[k], &l[cur], &l[1 - cur], &tmp)) goto oom;
        cur = 1 - cur;
    }
    if (dl_strbuf_append(out, l[cur].b.p ? l[cur].b.p : "", l[cur].b.n)) goto oom;
    goto done;
oom:
    rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
done:
    tl_free(&l[0]); tl_free(&l[1]); dl_strbuf_free(&tmp);
    return rc;
}
