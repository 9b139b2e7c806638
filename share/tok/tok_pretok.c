/* tok_pretok.c — tokenizer.json "pre_tokenizer": parse and run.
 *
 * Supported: ByteLevel (add_prefix_space, use_regex with the GPT-2
 * pattern), Split (String or Regex pattern; behavior Removed, Isolated,
 * MergedWithPrevious, MergedWithNext, Contiguous; invert), Metaspace
 * (replacement, prepend_scheme always/first/never or legacy
 * add_prefix_space, split), Digits (individual_digits), Whitespace,
 * WhitespaceSplit, Punctuation, Sequence (flattened), null.
 *
 * Running: stages are applied depth-first — each piece a stage produces goes
 * through the remaining stages and then straight to the BPE model, so no
 * list of words is ever materialised.  This equals HF's stage-by-stage
 * splitting because every stage acts on each piece independently; the one
 * positional rule (Metaspace prepend_scheme "first": only a piece whose first
 * character is aligned to original offset 0) is carried as z, the byte
 * length of the piece's leading characters aligned to offset 0.  Empty pieces are
 * dropped, as HF does.  When ByteLevel is the last stage and the vocab has
 * all 256 byte-level characters, pieces reach the model as raw bytes;
 * otherwise they are converted to byte-level characters (tok_byte_char).
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <utf8proc.h>
#include "tok_pretok.h"
#include "tok_engine.h"
#include "tok_utf8.h"
#include "tok_map.h"
#include "tok_regex.h"
#include "tok_bytelevel.h"
#include "tok_bpe.h"

/* ---------------------------------------------------------------- parse */
static int push_pre(dl_tok *t, tok_pre **out) {
    tok_pre *p = realloc(t->pre, (size_t)(t->n_pre + 1) * sizeof *p);
    if (!p) return -1;
    t->pre = p;
    *out = &p[t->n_pre++];
    memset(*out, 0, sizeof **out);
    return 0;
}

static int get_bool(json_t *j, const char *k, int dflt) {
    json_t *v = json_object_get(j, k);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

static int parse_behavior(json_t *j, int dflt) {
    const char *b = json_string_value(json_object_get(j, "behavior"));
    if (!b) return dflt;
    if (!strcmp(b, "Removed")) return TOK_B_REMOVED;
    if (!strcmp(b, "Isolated")) return TOK_B_ISOLATED;
    if (!strcmp(b, "MergedWithPrevious")) return TOK_B_MERGED_PREV;
    if (!strcmp(b, "MergedWithNext")) return TOK_B_MERGED_NEXT;
    if (!strcmp(b, "Contiguous")) return TOK_B_CONTIGUOUS;
    return -1;
}

int tok_parse_prepend(const void *jv, int *scheme) {
    json_t *j = (json_t *)jv;
    const char *s = json_string_value(json_object_get(j, "prepend_scheme"));
    if (!s) { *scheme = get_bool(j, "add_prefix_space", 1) ? TOK_PREPEND_ALWAYS : TOK_PREPEND_NEVER; return 0; }
    if (!strcmp(s, "always")) *scheme = TOK_PREPEND_ALWAYS;
    else if (!strcmp(s, "first")) *scheme = TOK_PREPEND_FIRST;
    else if (!strcmp(s, "never")) *scheme = TOK_PREPEND_NEVER;
    else return -1;
    return 0;
}

/* Metaspace replacement char (also used by the Metaspace decoder). */
int tok_parse_replacement(const void *jv, char repl[8], int *n) {
    json_t *j = (json_t *)jv, *r = json_object_get(j, "replacement");
    const char *s = json_is_string(r) ? json_string_value(r) : "\xE2\x96\x81";
    size_t l = strlen(s);
    if (l == 0 || l > 4 || (size_t)tok_utf8_len((unsigned char)s[0]) != l) return -1;
    memcpy(repl, s, l);
    *n = (int)l;
    return 0;
}

static int parse_one(dl_tok *t, json_t *j, char *err, size_t errlen) {
    if (json_is_null(j)) return 0;
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!type) return dl_seterr(err, errlen, -DL_EXIT_DATA, "pre_tokenizer without \"type\"");
    if (!strcmp(type, "Sequence")) {
        json_t *a = json_object_get(j, "pretokenizers"), *v;
        size_t i;
        if (!json_is_array(a)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "pre_tokenizer Sequence without \"pretokenizers\"");
        json_array_foreach(a, i, v) {
            int rc = parse_one(t, v, err, errlen);
            if (rc) return rc;
        }
        return 0;
    }
    tok_pre *p;
    if (push_pre(t, &p)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = 0;
    if (!strcmp(type, "ByteLevel")) {
        static const char gpt2[] =
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
        p->kind = TOK_P_BYTELEVEL;
        p->add_prefix_space = get_bool(j, "add_prefix_space", 1);
        if (get_bool(j, "use_regex", 1)) {
            if ((rc = tok_re_compile(&p->re, gpt2, sizeof gpt2 - 1, err, errlen))) return rc;
            p->has_re = 1;
        }
    } else if (!strcmp(type, "Split")) {
        json_t *pat = json_object_get(j, "pattern");
        json_t *ps = json_object_get(pat, "String"), *pr = json_object_get(pat, "Regex");
        if (!json_is_string(ps) && !json_is_string(pr))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "Split pre_tokenizer without a String or Regex pattern");
        p->kind = TOK_P_SPLIT;
        p->behavior = parse_behavior(j, TOK_B_ISOLATED);
        p->invert = get_bool(j, "invert", 0);
        if (p->behavior < 0) return dl_seterr(err, errlen, -DL_EXIT_DATA, "Split: unknown behavior");
        rc = ps ? tok_re_literal(&p->re, json_string_value(ps), json_string_length(ps), err, errlen)
                : tok_re_compile(&p->re, json_string_value(pr), json_string_length(pr), err, errlen);
        if (rc) return rc;
        p->has_re = 1;
    } else if (!strcmp(type, "Metaspace")) {
        p->kind = TOK_P_METASPACE;
        if (tok_parse_replacement(j, p->repl, &p->repl_n) || tok_parse_prepend(j, &p->prepend))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "Metaspace: bad replacement or prepend_scheme");
        p->split = get_bool(j, "split", 1);
    } else if (!strcmp(type, "Digits")) {
        p->kind = TOK_P_DIGITS;
        p->individual = get_bool(j, "individual_digits", 0);
    } else if (!strcmp(type, "Whitespace")) {
        p->kind = TOK_P_WHITESPACE;      /* \w+|[^\w\s]+ with regex-syntax's \w, hand-written as HF's */
    } else if (!strcmp(type, "WhitespaceSplit")) {
        p->kind = TOK_P_WSPLIT;
    } else if (!strcmp(type, "Punctuation")) {
        p->kind = TOK_P_PUNCT;
        p->behavior = parse_behavior(j, TOK_B_ISOLATED);
        if (p->behavior < 0) return dl_seterr(err, errlen, -DL_EXIT_DATA, "Punctuation: unknown behavior");
    } else {
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "unsupported pre_tokenizer \"%s\"", type);
    }
    return 0;
}

int tok_pre_parse(dl_tok *t, const void *json, char *err, size_t errlen) {
    if (!json) return 0;
    return parse_one(t, (json_t *)json, err, errlen);
}

void tok_pre_free(dl_tok *t) {
    for (int i = 0; i < t->n_pre; i++) {
        tok_pre *p = &t->pre[i];
        if (p->has_re) tok_re_free(&p->re);
        dl_strbuf_free(&p->buf);
        dl_strbuf_free(&p->buf2);
        free(p->spans.v);
    }
    free(t->pre);
    t->pre = NULL; t->n_pre = 0;
}

/* ---------------------------------------------------------------- splitting */
static int is_punct(uint32_t c) {
    if (c < 128) return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
    switch (utf8proc_category((utf8proc_int32_t)c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS: case UTF8PROC_CATEGORY_PE:
    case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF: case UTF8PROC_CATEGORY_PO: return 1;
    default: return 0;
    }
}

/* HF Pattern::find_matches for a char predicate: each matching char is its
 * own match, the runs between are non-matches. */
static int char_matches(const tok_pre *p, const char *s, size_t n, tok_spans *sp) {
    size_t last = 0;
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t l = (size_t)tok_utf8_dec((const unsigned char *)s + i, &c);
        int m;
        switch (p->kind) {
        case TOK_P_METASPACE: m = l == (size_t)p->repl_n && !memcmp(s + i, p->repl, l); break;
        case TOK_P_DIGITS: m = tok_cp_is_numeric(c); break;
        case TOK_P_WSPLIT: m = tok_cp_is_space(c); break;
        default: m = is_punct(c); break;
        }
        if (m) {
            if (last < i && tok_spans_push(sp, last, i, 0)) return -1;
            if (tok_spans_push(sp, i, i + l, 1)) return -1;
            last = i + l;
        }
        i += l;
    }
    if (last < n && tok_spans_push(sp, last, n, 0)) return -1;
    return 0;
}

static int regex_matches(tok_pre *p, const char *s, size_t n, tok_spans *sp) {
    size_t pos = 0, ms, me;
    while (tok_re_next(&p->re, s, n, pos, &ms, &me)) {
        if (ms > pos && tok_spans_push(sp, pos, ms, 0)) return -1;
        if (tok_spans_push(sp, ms, me, 1)) return -1;
        pos = me;
    }
    if (pos < n && tok_spans_push(sp, pos, n, 0)) return -1;
    return 0;
}

/* HF NormalizedString::split: rewrite the (span, is_match) list into the kept pieces. */
static void apply_behavior(tok_spans *sp, int behavior) {
    size_t w = 0, n = sp->n;
    tok_span *v = sp->v;
    int prevm = 0;
    switch (behavior) {
    case TOK_B_ISOLATED:
        return;
    case TOK_B_REMOVED:
        for (size_t i = 0; i < n; i++) if (!v[i].m) v[w++] = v[i];
        break;
    case TOK_B_CONTIGUOUS:
        for (size_t i = 0; i < n; i++) {
            if (w && v[i].m == prevm) v[w - 1].b = v[i].b;
            else v[w++] = v[i];
            prevm = v[i].m;
        }
        break;
    case TOK_B_MERGED_PREV:
        for (size_t i = 0; i < n; i++) {
            int m = v[i].m;
            if (w && m && !prevm) v[w - 1].b = v[i].b;
            else v[w++] = v[i];
            prevm = m;
        }
        break;
    case TOK_B_MERGED_NEXT: {
        size_t r = n;                      /* result occupies v[r..n) */
        for (size_t i = n; i-- > 0;) {
            int m = v[i].m;
            if (r < n && m && !prevm) v[r].a = v[i].a;
            else v[--r] = v[i];
            prevm = m;
        }
        w = n - r;
        memmove(v, v + r, w * sizeof *v);
        break;
    }
    }
    sp->n = w;
}

/* ---------------------------------------------------------------- running */
static int run(dl_tok *t, int k, const char *s, size_t n, size_t z, dl_u32buf *out);

/* A byte-level piece of stage k: to the model as raw bytes, or converted. */
static int bytelevel_piece(dl_tok *t, int k, const char *s, size_t n, size_t z, dl_u32buf *out) {
    if (n == 0) return 0;
    if (k == t->n_pre - 1 && t->pre_bytelevel_last) return tok_bpe_word(t, s, n, 1, out);
    dl_strbuf *b = &t->pre[k].buf2;
    size_t nz = 0;
    b->n = 0;
    if (dl_strbuf_reserve(b, 2 * n)) return -DL_EXIT_IO;
    for (size_t i = 0; i < n; i++) {
        char c[4];
        int l = tok_utf8_enc(tok_byte_char[(unsigned char)s[i]], c);
        memcpy(b->p + b->n, c, (size_t)l);
        b->n += (size_t)l;
        if (i < z) nz = b->n;
    }
    return run(t, k + 1, b->p, b->n, nz, out);
}

/* z: byte length of the piece's leading characters whose original offset is 0
 * (HF's alignments; only Metaspace prepend_scheme "first" looks at it). */
#define ZSUB(z, a) ((z) > (a) ? (z) - (a) : 0)
static int run(dl_tok *t, int k, const char *s, size_t n, size_t z, dl_u32buf *out) {
    if (n == 0) return 0;
    if (k == t->n_pre) return tok_bpe_word(t, s, n, 0, out);
    tok_pre *p = &t->pre[k];
    int rc;
    if (p->kind == TOK_P_BYTELEVEL) {
        if (p->add_prefix_space && s[0] != ' ') {
            p->buf.n = 0;
            if (dl_strbuf_append(&p->buf, " ", 1) || dl_strbuf_append(&p->buf, s, n)) return -DL_EXIT_IO;
            s = p->buf.p; n = p->buf.n;
            if (z) z++;
        }
        if (!p->has_re) return bytelevel_piece(t, k, s, n, z, out);
        size_t pos = 0, ms, me;
        while (tok_re_next(&p->re, s, n, pos, &ms, &me)) {
            if (ms > pos && (rc = bytelevel_piece(t, k, s + pos, ms - pos, ZSUB(z, pos), out))) return rc;
            if ((rc = bytelevel_piece(t, k, s + ms, me - ms, ZSUB(z, ms), out))) return rc;
            pos = me;
        }
        return bytelevel_piece(t, k, s + pos, n - pos, ZSUB(z, pos), out);
    }
    if (p->kind == TOK_P_SPLIT && (p->behavior == TOK_B_ISOLATED || p->behavior == TOK_B_REMOVED)) {
        /* streaming: no span list */
        int keep_m = p->behavior == TOK_B_ISOLATED || p->invert;
        int keep_g = p->behavior == TOK_B_ISOLATED || !p->invert;
        size_t pos = 0, ms, me;
        while (tok_re_next(&p->re, s, n, pos, &ms, &me)) {
            if (keep_g && ms > pos && (rc = run(t, k + 1, s + pos, ms - pos, ZSUB(z, pos), out))) return rc;
            if (keep_m && (rc = run(t, k + 1, s + ms, me - ms, ZSUB(z, ms), out))) return rc;
            pos = me;
        }
        if (keep_g && pos < n) return run(t, k + 1, s + pos, n - pos, ZSUB(z, pos), out);
        return 0;
    }
    if (p->kind == TOK_P_WHITESPACE) {
        /* runs of word chars and runs of other non-space chars; spaces dropped */
        size_t a = 0;
        int cur = -1;                      /* class of the current run: 0 space, 1 word, 2 other */
        for (size_t i = 0; i <= n;) {
            int c = 0;
            size_t l = 1;
            if (i < n) {
                uint32_t cp;
                l = (size_t)tok_utf8_dec((const unsigned char *)s + i, &cp);
                c = tok_cp_is_space(cp) ? 0 : tok_cp_is_word(cp) ? 1 : 2;
            }
            if (i == n || c != cur) {
                if (cur > 0 && (rc = run(t, k + 1, s + a, i - a, ZSUB(z, a), out))) return rc;
                cur = c; a = i;
            }
            i += l;
        }
        return 0;
    }
    if (p->kind == TOK_P_METASPACE) {
        size_t nz = 0;
        p->buf.n = 0;
        /* HF replaces spaces first, then tests "starts with the replacement" */
        int starts = s[0] == ' ' || ((size_t)p->repl_n <= n && !memcmp(s, p->repl, (size_t)p->repl_n));
        if (!starts && (p->prepend == TOK_PREPEND_ALWAYS || (p->prepend == TOK_PREPEND_FIRST && z > 0))) {
            if (dl_strbuf_append(&p->buf, p->repl, (size_t)p->repl_n)) return -DL_EXIT_IO;
            if (z) nz = p->buf.n;
        }
        for (size_t i = 0; i < n;) {
            const char *sp = memchr(s + i, ' ', n - i);
            size_t e = sp ? (size_t)(sp - s) : n;
            if (dl_strbuf_append(&p->buf, s + i, e - i)) return -DL_EXIT_IO;
            if (i < z) nz = p->buf.n - (e > z ? e - z : 0);
            if (!sp) break;
            if (dl_strbuf_append(&p->buf, p->repl, (size_t)p->repl_n)) return -DL_EXIT_IO;
            if (e < z) nz = p->buf.n;
            i = e + 1;
        }
        s = p->buf.p; n = p->buf.n; z = nz;
        if (!p->split) return run(t, k + 1, s, n, z, out);
    }
    p->spans.n = 0;
    if (p->has_re ? regex_matches(p, s, n, &p->spans) : char_matches(p, s, n, &p->spans)) return -DL_EXIT_IO;
    if (p->invert)
        for (size_t i = 0; i < p->spans.n; i++) p->spans.v[i].m = !p->spans.v[i].m;
    int beh = p->kind == TOK_P_SPLIT || p->kind == TOK_P_PUNCT ? p->behavior
            : p->kind == TOK_P_METASPACE ? TOK_B_MERGED_NEXT
            : p->kind == TOK_P_DIGITS ? (p->individual ? TOK_B_ISOLATED : TOK_B_CONTIGUOUS)
            : TOK_B_REMOVED;   /* WhitespaceSplit */
    apply_behavior(&p->spans, beh);
    /* the span list of stage k stays valid while later stages run */
    for (size_t i = 0; i < p->spans.n; i++) {
        tok_span sp = p->spans.v[i];
        if ((rc = run(t, k + 1, s + sp.a, sp.b - sp.a, ZSUB(z, sp.a), out))) return rc;
    }
    return 0;
}

int tok_pre_run(dl_tok *t, const char *s, size_t n, size_t z, dl_u32buf *out) {
    return run(t, 0, s, n, z, out);
}
