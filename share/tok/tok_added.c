/* tok_added.c — added tokens, and the encode pipeline (dl_tok_encode).
 *
 * Pipeline, as HF TokenizerImpl::encode with add_special_tokens=False:
 *   0. invalid UTF-8 -> U+FFFD (tok_utf8_repair)
 *   1. split the raw text on the added tokens with normalized=false
 *   2. normalize each remaining piece, split it on the normalized=true
 *      added tokens (their content passed through the normalizer too)
 *   3. pre-tokenize each remaining piece and BPE each word (tok_pretok.c)
 * Matching is leftmost-longest (HF uses aho-corasick LeftmostLongest); the
 * scan resumes after a match even when single_word rejects it, exactly as
 * HF iterates the automaton's matches.  lstrip / rstrip extend the match
 * over neighbouring White_Space (never back past the previous match),
 * single_word requires no word character on either side.  Special and
 * non-special added tokens are matched alike (split_special_tokens=False).
 */
#include <stdlib.h>
#include <string.h>
#include "tok_added.h"
#include "tok_engine.h"
#include "tok_utf8.h"
#include "tok_map.h"
#include "tok_vocab.h"
#include "tok_normalize.h"
#include "tok_pretok.h"

/* ---------------------------------------------------------------- sets */
static const char *tok_text(const dl_tok *t, uint32_t i, int norm, size_t *n) {
    const tok_added *a = &t->added[i];
    *n = norm ? a->normn : a->n;
    return norm ? a->norm : a->s;
}
static int cmp_added(const void *x, const void *y, void *arg) {
    const tok_aset *set = arg;
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    size_t an, bn;
    const unsigned char *as = (const unsigned char *)tok_text(set->sort_t, a, set->normalized, &an);
    const unsigned char *bs = (const unsigned char *)tok_text(set->sort_t, b, set->normalized, &bn);
    if (as[0] != bs[0]) return as[0] < bs[0] ? -1 : 1;
    if (an != bn) return an > bn ? -1 : 1;      /* longest first */
    return a < b ? -1 : a > b;
}

static int build_set(dl_tok *t, tok_aset *set, int normalized) {
    free(set->idx);
    memset(set, 0, sizeof *set);
    set->normalized = normalized;
    set->idx = malloc((t->n_added + 1) * sizeof *set->idx);
    if (!set->idx) return -1;
    for (size_t i = 0; i < t->n_added; i++) {
        size_t n;
        tok_text(t, (uint32_t)i, normalized, &n);
        if (t->added[i].normalized == normalized && n > 0) set->idx[set->n++] = (uint32_t)i;
    }
    set->sort_t = t;
    qsort_r(set->idx, set->n, sizeof *set->idx, cmp_added, set);
    size_t k = 0;
    for (int c = 0; c <= 256; c++) {
        while (c < 256 && k < set->n) {
            size_t n;
            const unsigned char *s = (const unsigned char *)tok_text(t, set->idx[k], normalized, &n);
            if (s[0] >= c) break;
            k++;
        }
        set->lo[c] = (uint32_t)k;
    }
    set->lo[256] = (uint32_t)set->n;
    return 0;
}

int tok_added_build(dl_tok *t) {
    /* normalized tokens are matched by their normalized content */
    for (size_t i = 0; i < t->n_added; i++) {
        tok_added *a = &t->added[i];
        if (!a->normalized || a->norm) continue;
        dl_strbuf nb = { 0 };
        if (tok_normalize(t, a->s, a->n, &nb, NULL) || (!nb.p && dl_strbuf_append(&nb, "", 0))) {
            dl_strbuf_free(&nb);
            return -1;
        }
        a->norm = nb.p; a->normn = nb.n;
        /* HF maps the id of a normalized added token to its normalized content */
        if (tok_set_id_token(t, a->id, a->norm, a->normn)) return -1;
    }
    if (build_set(t, &t->raw_set, 0) || build_set(t, &t->norm_set, 1)) return -1;
    /* decode(skip_special) drops a token when its string is the content of a
     * special added token (HF compares strings, not ids) */
    for (size_t i = 0; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        const char *str = dl_tok_id_token(t, a->id);
        int64_t j = str ? tok_strmap_get(&t->added_map, str, t->id_len[a->id]) : -1;
        t->id_flags[a->id] = (unsigned char)((t->id_flags[a->id] & ~TOK_FLAG_SKIP) |
                                             (j >= 0 && t->added[j].special ? TOK_FLAG_SKIP : 0));
        if (a->special) {
            int64_t m = tok_strmap_get(&t->bpe.vocab, a->s, a->n);
            if (m >= 0 && t->id_len[m] == a->n && !memcmp(dl_tok_id_token(t, (uint32_t)m), a->s, a->n))
                t->id_flags[m] |= TOK_FLAG_SKIP;
        }
    }
    return 0;
}

void tok_added_free(dl_tok *t) {
    for (size_t i = 0; i < t->n_added; i++) {
        free(t->added[i].s);
        free(t->added[i].norm);
    }
    free(t->added);
    free(t->raw_set.idx);
    free(t->norm_set.idx);
    tok_strmap_free(&t->added_map);
    t->added = NULL; t->n_added = t->cap_added = 0;
}

/* ---------------------------------------------------------------- matching */
static int segs_push(tok_segs *s, size_t a, size_t b, int64_t id) {
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 16;
        void *p = realloc(s->v, c * sizeof *s->v);
        if (!p) return -1;
        s->v = p; s->cap = c;
    }
    s->v[s->n++] = (tok_seg){ a, b, id };
    return 0;
}

static uint32_t last_cp(const char *s, size_t end) {   /* code point ending at end (> 0) */
    size_t k = end - 1;
    while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
    uint32_t c;
    tok_utf8_dec((const unsigned char *)s + k, &c);
    return c;
}

/* HF AddedVocabulary::find_matches: segments covering s (text: id = -1). */
static int find_matches(const dl_tok *t, const tok_aset *set, const char *s, size_t n, tok_segs *out) {
    out->n = 0;
    if (n == 0) return 0;
    size_t start_offset = 0, i = 0;
    int norm = set->normalized;
    while (i < n && set->n) {
        unsigned char c = (unsigned char)s[i];
        uint32_t lo = set->lo[c], hi = set->lo[c + 1];
        const tok_added *hit = NULL;
        for (uint32_t k = lo; k < hi; k++) {
            const tok_added *a = &t->added[set->idx[k]];
            const char *ts = norm ? a->norm : a->s;
            size_t tn = norm ? a->normn : a->n;
            if (tn <= n - i && !memcmp(s + i, ts, tn)) { hit = a; break; }
        }
        if (!hit) { i++; continue; }
        size_t start = i, stop = i + (norm ? hit->normn : hit->n);
        i = stop;
        if (hit->single_word) {
            uint32_t cp;
            int start_space = start == 0 || !tok_cp_is_word(last_cp(s, start));
            int stop_space = stop == n || (tok_utf8_dec((const unsigned char *)s + stop, &cp), !tok_cp_is_word(cp));
            if (!start_space || !stop_space) continue;
        }
        if (hit->lstrip) {
            size_t ns = start;
            while (ns > 0 && tok_cp_is_space(last_cp(s, ns))) {
                size_t k = ns - 1;
                while (k > 0 && ((unsigned char)s[k] & 0xC0) == 0x80) k--;
                ns = k;
            }
            start = ns > start_offset ? ns : start_offset;
        }
        if (hit->rstrip) {
            while (stop < n) {
                uint32_t cp;
                int l = tok_utf8_dec((const unsigned char *)s + stop, &cp);
                if (!tok_cp_is_space(cp)) break;
                stop += (size_t)l;
            }
        }
        if (start_offset < start && segs_push(out, start_offset, start, -1)) return -1;
        if (segs_push(out, start, stop, hit->id)) return -1;
        start_offset = stop;
    }
    if (start_offset < n && segs_push(out, start_offset, n, -1)) return -1;
    return 0;
}

/* ---------------------------------------------------------------- encode */
/* at_start: s begins at offset 0 of the input, so its first character is
 * aligned to original offset 0 (z, see tok_pre_run). */
static int encode_text(dl_tok *t, const char *s, size_t n, int at_start, dl_u32buf *out) {
    if (n == 0) return 0;
    const char *ns = s;
    size_t nn = n, z = at_start ? (size_t)tok_utf8_len((unsigned char)s[0]) : 0;
    if (t->n_norm) {
        if (tok_normalize(t, s, n, &t->normbuf, &z)) return -DL_EXIT_IO;
        ns = t->normbuf.p; nn = t->normbuf.n;
    }
    if (!t->norm_set.n) return tok_pre_run(t, ns, nn, z, out);
    if (find_matches(t, &t->norm_set, ns, nn, &t->nsegs)) return -DL_EXIT_IO;
    for (size_t i = 0; i < t->nsegs.n; i++) {
        tok_seg g = t->nsegs.v[i];
        int rc = g.id >= 0 ? dl_u32buf_push(out, (uint32_t)g.id)
                           : tok_pre_run(t, ns + g.a, g.b - g.a, z > g.a ? z - g.a : 0, out);
        if (rc) return rc;
    }
    return 0;
}

int dl_tok_encode(dl_tok *t, const char *text, size_t len, dl_u32buf *out, char *err, size_t errlen) {
    const char *s = text;
    size_t n = len;
    if (tok_utf8_valid_len(text, len) < len) {
        t->repaired.n = 0;
        if (tok_utf8_repair(text, len, &t->repaired)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        s = t->repaired.p; n = t->repaired.n;
    }
    int rc = 0;
    if (!t->raw_set.n) {
        rc = encode_text(t, s, n, 1, out);
    } else {
        if (find_matches(t, &t->raw_set, s, n, &t->segs)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        for (size_t i = 0; i < t->segs.n && !rc; i++) {
            tok_seg g = t->segs.v[i];
            rc = g.id >= 0 ? dl_u32buf_push(out, (uint32_t)g.id) : encode_text(t, s + g.a, g.b - g.a, g.a == 0, out);
        }
    }
    if (rc == -DL_EXIT_DATA) return dl_seterr(err, errlen, rc, "the model's unk_token is not in its vocab");
    if (rc) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    return 0;
}
