/* tok_bpe.c — the BPE model of tokenizer.json: parse, and encode one word.
 *
 * A word's initial symbols are its characters looked up in the vocab (with
 * continuing_subword_prefix / end_of_word_suffix), else its bytes as
 * "<0xXX>" tokens (byte_fallback), else the unk token (consecutive unknowns
 * fused into one when fuse_unk), else nothing — HF BPE::merge_word, quirks
 * included.  Then the adjacent pair with the lowest merge rank, leftmost
 * among equals, is merged until no pair has a rank (HF Word::merge_all gives
 * exactly this order).  Short words: linear scans over a compact array.
 * Long words (no pre-tokenizer: Llama-2's "word" is the whole text): a
 * binary heap of (rank, position) over a linked list, O(n log n); stale heap
 * entries are dropped by re-checking the pair's rank when popped.  When the
 * vocab allows it (tok_bpe_check_meta_split), a long word is first cut
 * before each U+2581 — same result, and the pieces hit the cache.
 * Byte-level words arrive as raw bytes (raw = 1): symbol i is the id of the
 * byte-level character of byte i (byte_sym), no string is built.
 * Words up to 256 bytes are cached (key = the word's bytes); the cache is
 * emptied when it holds 2^17 words or 2^22 ids.
 * dropout is ignored (encoding is deterministic).
 * SMALL_WORD can be set at compile time (e.g. -DSMALL_WORD=1 runs every word
 * through the heap version, to test it against the fixtures).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "tok_bpe.h"
#include "tok_engine.h"
#include "tok_utf8.h"
#include "tok_map.h"
#include "tok_bytelevel.h"
#include "tok_vocab.h"

#ifndef SMALL_WORD
#define SMALL_WORD 48          /* symbols; above this the heap version runs */
#endif
#define CACHE_MAX_WORD 256     /* bytes */
#define CACHE_MAX_ENTRIES (1u << 17)
#define CACHE_MAX_IDS (1u << 22)

static char *dup_nonempty(json_t *v, size_t *n) {
    *n = 0;
    if (!json_is_string(v) || json_string_length(v) == 0) return NULL;
    *n = json_string_length(v);
    char *p = malloc(*n + 1);
    if (p) { memcpy(p, json_string_value(v), *n); p[*n] = 0; }
    return p;
}

int tok_bpe_parse(dl_tok *t, const void *mjson, char *err, size_t errlen) {
    json_t *m = (json_t *)mjson;
    tok_bpe *b = &t->bpe;
    if (!json_is_object(m)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "no \"model\" object");
    const char *type = json_string_value(json_object_get(m, "type"));
    json_t *vocab = json_object_get(m, "vocab"), *merges = json_object_get(m, "merges");
    if (type ? strcmp(type, "BPE") != 0 : !json_is_array(merges))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "unsupported model type \"%s\" (only BPE)",
                         type ? type : "?");
    if (!json_is_object(vocab)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "BPE model without \"vocab\" object");
    const char *key;
    json_t *val;
    void *tmp;
    json_object_foreach_safe(vocab, tmp, key, val) {
        json_int_t id = json_integer_value(val);
        if (!json_is_integer(val) || id < 0 || id >= INT32_MAX)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "vocab entry \"%.40s\": bad id", key);
        if ((uint64_t)id >= t->id_limit)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "vocab entry \"%.40s\": id %lld is unreasonable (%s)", key,
                             (long long)id, t->id_limit_why);
        size_t kn = strlen(key);
        if (tok_strmap_put(&b->vocab, key, kn, (uint32_t)id) || tok_set_id_token(t, (uint32_t)id, key, kn))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    b->prefix = dup_nonempty(json_object_get(m, "continuing_subword_prefix"), &b->prefix_n);
    b->suffix = dup_nonempty(json_object_get(m, "end_of_word_suffix"), &b->suffix_n);
    b->fuse_unk = json_is_true(json_object_get(m, "fuse_unk"));
    b->byte_fallback = json_is_true(json_object_get(m, "byte_fallback"));
    b->ignore_merges = json_is_true(json_object_get(m, "ignore_merges"));
    b->unk_id = -1;
    json_t *unk = json_object_get(m, "unk_token");
    if (json_is_string(unk)) {
        b->unk_id = tok_strmap_get(&b->vocab, json_string_value(unk), json_string_length(unk));
        if (b->unk_id < 0) b->unk_id = -2;          /* configured but missing: error when needed */
    }

    size_t nm = json_is_array(merges) ? json_array_size(merges) : 0;
    if (tok_pairmap_init(&b->merges, nm)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    dl_strbuf cat = { 0 };
    for (size_t r = 0; r < nm; r++) {
        json_t *e = json_array_get(merges, r);
        const char *a, *c;
        size_t an, cn;
        if (json_is_string(e)) {
            a = json_string_value(e);
            const char *sp = memchr(a, ' ', json_string_length(e));
            if (!sp || memchr(sp + 1, ' ', json_string_length(e) - (size_t)(sp + 1 - a))) {
                dl_strbuf_free(&cat);
                return dl_seterr(err, errlen, -DL_EXIT_DATA, "merge %zu: not \"a b\"", r + 1);
            }
            an = (size_t)(sp - a); c = sp + 1; cn = json_string_length(e) - an - 1;
        } else if (json_is_array(e) && json_array_size(e) == 2 && json_is_string(json_array_get(e, 0)) &&
                   json_is_string(json_array_get(e, 1))) {
            a = json_string_value(json_array_get(e, 0)); an = json_string_length(json_array_get(e, 0));
            c = json_string_value(json_array_get(e, 1)); cn = json_string_length(json_array_get(e, 1));
        } else {
            dl_strbuf_free(&cat);
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "merge %zu: not a string or a pair", r + 1);
        }
        int64_t ia = tok_strmap_get(&b->vocab, a, an), ic = tok_strmap_get(&b->vocab, c, cn);
        size_t skip = b->prefix_n <= cn ? b->prefix_n : cn;
        cat.n = 0;
        if (dl_strbuf_append(&cat, a, an) || dl_strbuf_append(&cat, c + skip, cn - skip)) {
            dl_strbuf_free(&cat);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        }
        int64_t in = tok_strmap_get(&b->vocab, cat.p, cat.n);
        if (ia < 0 || ic < 0 || in < 0) {
            int rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "merge %zu: token \"%.40s\" not in vocab", r + 1,
                               ia < 0 ? a : ic < 0 ? c : cat.p);
            dl_strbuf_free(&cat);
            return rc;
        }
        tok_pairmap_put(&b->merges, (uint32_t)ia, (uint32_t)ic, (uint32_t)r, (uint32_t)in);
    }
    dl_strbuf_free(&cat);

    b->bytelevel_ok = !b->prefix && !b->suffix;
    for (int c = 0; c < 256; c++) {
        char k[8];
        snprintf(k, sizeof k, "<0x%02X>", c);
        b->byte_fb[c] = (int32_t)tok_strmap_get(&b->vocab, k, 6);
        int kn = tok_utf8_enc(tok_byte_char[c], k);
        b->byte_sym[c] = (int32_t)tok_strmap_get(&b->vocab, k, (size_t)kn);
        if (b->byte_sym[c] < 0) b->bytelevel_ok = 0;
    }
    return 0;
}

/* raw_vocab (raw bytes -> id) for ignore_merges on byte-level words. */
int tok_bpe_build_raw_vocab(dl_tok *t) {
    tok_bpe *b = &t->bpe;
    dl_strbuf raw = { 0 };
    for (size_t e = 0; e < b->vocab.n; e++) {
        const struct tok_ment *en = &b->vocab.ent[e];
        const unsigned char *s = (const unsigned char *)b->vocab.pool + en->off;
        raw.n = 0;
        int ok = 1;
        for (size_t i = 0; i < en->len && ok;) {
            uint32_t cp;
            i += (size_t)tok_utf8_dec(s + i, &cp);
            int by = tok_char_byte(cp);
            char c = (char)by;
            if (by < 0 || dl_strbuf_append(&raw, &c, 1)) ok = 0;
        }
        if (ok && raw.n && tok_strmap_put(&b->raw_vocab, raw.p, raw.n, en->val)) { dl_strbuf_free(&raw); return -1; }
    }
    dl_strbuf_free(&raw);
    return 0;
}

void tok_bpe_free(tok_bpe *b) {
    tok_strmap_free(&b->vocab);
    tok_pairmap_free(&b->merges);
    tok_strmap_free(&b->raw_vocab);
    tok_strmap_free(&b->cache);
    free(b->prefix); free(b->suffix);
    free(b->cache_ids); free(b->cache_ent);
    free(b->sym); free(b->prev); free(b->next); free(b->rank); free(b->nid); free(b->heap);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- merging */
static int reserve_syms(tok_bpe *b, size_t n) {
    if (n <= b->scap) return 0;
    size_t c = b->scap ? b->scap : 256;
    while (c < n) c *= 2;
    void *p;
    if (!(p = realloc(b->sym, c * sizeof *b->sym))) return -1;
    b->sym = p;
    if (!(p = realloc(b->prev, c * sizeof *b->prev))) return -1;
    b->prev = p;
    if (!(p = realloc(b->next, c * sizeof *b->next))) return -1;
    b->next = p;
    if (!(p = realloc(b->rank, c * sizeof *b->rank))) return -1;
    b->rank = p;
    if (!(p = realloc(b->nid, c * sizeof *b->nid))) return -1;
    b->nid = p;
    b->scap = c;
    return 0;
}

static size_t merge_small(const tok_pairmap *pm, uint32_t *sym, uint32_t *rank, uint32_t *nid, size_t m) {
    if (m < 2) return m;
    for (size_t i = 0; i + 1 < m; i++) {
        const tok_pent *e = tok_pairmap_get(pm, sym[i], sym[i + 1]);
        rank[i] = e ? e->rank : UINT32_MAX;
        nid[i] = e ? e->id : 0;
    }
    for (;;) {
        uint32_t best = UINT32_MAX;
        size_t bi = 0;
        for (size_t i = 0; i + 1 < m; i++)
            if (rank[i] < best) { best = rank[i]; bi = i; }
        if (best == UINT32_MAX) break;
        sym[bi] = nid[bi];
        if (m > bi + 2) memmove(&sym[bi + 1], &sym[bi + 2], (m - bi - 2) * sizeof *sym);
        if (m > bi + 3) {
            memmove(&rank[bi + 1], &rank[bi + 2], (m - bi - 3) * sizeof *rank);
            memmove(&nid[bi + 1], &nid[bi + 2], (m - bi - 3) * sizeof *nid);
        }
        m--;
        if (bi > 0) {
            const tok_pent *e = tok_pairmap_get(pm, sym[bi - 1], sym[bi]);
            rank[bi - 1] = e ? e->rank : UINT32_MAX;
            nid[bi - 1] = e ? e->id : 0;
        }
        if (bi + 1 < m) {
            const tok_pent *e = tok_pairmap_get(pm, sym[bi], sym[bi + 1]);
            rank[bi] = e ? e->rank : UINT32_MAX;
            nid[bi] = e ? e->id : 0;
        }
    }
    return m;
}

/* binary min-heap of (rank << 32 | position) */
static inline void heap_push(uint64_t *h, size_t *n, uint64_t v) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h[p] <= v) break;
        h[i] = h[p]; i = p;
    }
    h[i] = v;
}

static inline uint64_t heap_pop(uint64_t *h, size_t *n) {
    uint64_t top = h[0], v = h[--(*n)];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && h[c + 1] < h[c]) c++;
        if (h[c] >= v) break;
        h[i] = h[c]; i = c;
    }
    if (m) h[i] = v;
    return top;
}

static int merge_large(tok_bpe *b, size_t m, size_t *out_m) {
    const tok_pairmap *pm = &b->merges;
    uint32_t *sym = b->sym;
    int32_t *prev = b->prev, *next = b->next;
    size_t need = 3 * m + 16;
    if (need > b->hcap) {
        uint64_t *p = realloc(b->heap, need * sizeof *p);
        if (!p) return -1;
        b->heap = p; b->hcap = need;
    }
    uint64_t *h = b->heap;
    size_t hn = 0;
    for (size_t i = 0; i < m; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < m ? (int32_t)(i + 1) : -1;
        if (i + 1 < m) {
            const tok_pent *e = tok_pairmap_get(pm, sym[i], sym[i + 1]);
            if (e) h[hn++] = ((uint64_t)e->rank << 32) | i;
        }
    }
    for (size_t i = hn / 2; i-- > 0;) {          /* heapify */
        uint64_t v = h[i];
        size_t k = i;
        for (;;) {
            size_t c = 2 * k + 1;
            if (c >= hn) break;
            if (c + 1 < hn && h[c + 1] < h[c]) c++;
            if (h[c] >= v) break;
            h[k] = h[c]; k = c;
        }
        h[k] = v;
    }
    while (hn) {
        uint64_t top = heap_pop(h, &hn);
        uint32_t rank = (uint32_t)(top >> 32), i = (uint32_t)top;
        int32_t j = next[i];
        if (j < 0) continue;                          /* last symbol, or removed (-2) */
        const tok_pent *e = tok_pairmap_get(pm, sym[i], sym[j]);
        if (!e || e->rank != rank) continue;          /* stale */
        sym[i] = e->id;
        next[i] = next[j];
        next[j] = -2;
        if (next[i] >= 0) prev[next[i]] = (int32_t)i;
        if (hn + 2 > b->hcap) return -1;              /* cannot happen: <= m + 2 * merges */
        if (prev[i] >= 0) {
            const tok_pent *f = tok_pairmap_get(pm, sym[prev[i]], sym[i]);
            if (f) heap_push(h, &hn, ((uint64_t)f->rank << 32) | (uint32_t)prev[i]);
        }
        if (next[i] >= 0) {
            const tok_pent *f = tok_pairmap_get(pm, sym[i], sym[next[i]]);
            if (f) heap_push(h, &hn, ((uint64_t)f->rank << 32) | i);
        }
    }
    size_t k = 0;
    for (int32_t i = 0; i >= 0; i = next[i]) sym[k++] = sym[i];
    *out_m = k;
    return 0;
}

/* ---------------------------------------------------------------- words */
static int cache_put(tok_bpe *b, const char *s, size_t n, const uint32_t *ids, size_t k) {
    if (b->cache.n >= CACHE_MAX_ENTRIES || b->cache_n + k > CACHE_MAX_IDS) {
        tok_strmap_clear(&b->cache);
        b->cache_n = 0; b->cache_en = 0;
    }
    if (b->cache_n + k > b->cache_cap) {
        size_t c = b->cache_cap ? b->cache_cap : 1 << 14;
        while (c < b->cache_n + k) c *= 2;
        uint32_t *p = realloc(b->cache_ids, c * sizeof *p);
        if (!p) return -1;
        b->cache_ids = p; b->cache_cap = c;
    }
    if (b->cache_en == b->cache_ecap) {
        size_t c = b->cache_ecap ? b->cache_ecap * 2 : 1 << 12;
        void *p = realloc(b->cache_ent, c * sizeof *b->cache_ent);
        if (!p) return -1;
        b->cache_ent = p; b->cache_ecap = c;
    }
    if (tok_strmap_put(&b->cache, s, n, (uint32_t)b->cache_en)) return -1;
    if (k) memcpy(b->cache_ids + b->cache_n, ids, k * sizeof *ids);   /* k == 0: ids and cache_ids may be NULL */
    b->cache_ent[b->cache_en].off = (uint32_t)b->cache_n;
    b->cache_ent[b->cache_en].n = (uint32_t)k;
    b->cache_en++;
    b->cache_n += k;
    return 0;
}

static inline int sym_push(tok_bpe *b, size_t *m, uint32_t id) {
    if (*m >= b->scap && reserve_syms(b, *m + 1)) return -1;
    b->sym[(*m)++] = id;
    return 0;
}

/* Initial symbols of a non-raw word (HF merge_word). */
static int initial_syms(dl_tok *t, const char *s, size_t n, size_t *pm) {
    tok_bpe *b = &t->bpe;
    size_t m = 0;
    int64_t unk = -1;                  /* pending unk symbol (id), HF's `unk` */
    dl_strbuf *key = &t->wordbuf;
    for (size_t i = 0; i < n;) {
        size_t l = (size_t)tok_utf8_len((unsigned char)s[i]);
        const char *k = s + i;
        size_t kn = l;
        if ((b->prefix && i > 0) || (b->suffix && i + l >= n)) {
            key->n = 0;
            if ((b->prefix && i > 0 && dl_strbuf_append(key, b->prefix, b->prefix_n)) ||
                dl_strbuf_append(key, s + i, l) ||
                (b->suffix && i + l >= n && dl_strbuf_append(key, b->suffix, b->suffix_n)))
                return -1;
            k = key->p; kn = key->n;
        }
        i += l;
        int64_t id = tok_strmap_get(&b->vocab, k, kn);
        if (id >= 0) {
            if (unk >= 0) { if (sym_push(b, &m, (uint32_t)unk)) return -1; unk = -1; }
            if (sym_push(b, &m, (uint32_t)id)) return -1;
            continue;
        }
        if (b->byte_fallback) {
            int all = 1;
            for (size_t q = 0; q < kn; q++) if (b->byte_fb[(unsigned char)k[q]] < 0) all = 0;
            if (all) {
                for (size_t q = 0; q < kn; q++)
                    if (sym_push(b, &m, (uint32_t)b->byte_fb[(unsigned char)k[q]])) return -1;
                continue;
            }
        }
        if (b->unk_id == -2) return -2;
        if (b->unk_id >= 0) {
            if (unk >= 0 && !b->fuse_unk) { if (sym_push(b, &m, (uint32_t)unk)) return -1; }
            unk = b->unk_id;
        }
    }
    if (unk >= 0 && sym_push(b, &m, (uint32_t)unk)) return -1;
    *pm = m;
    return 0;
}

static int word(dl_tok *t, const char *s, size_t n, int raw, dl_u32buf *out);

#define META "\xE2\x96\x81"   /* U+2581, SentencePiece's space */
static inline int is_meta(const char *s) { return !memcmp(s, META, 3); }

/* Can a text be cut before every U+2581 that follows another character
 * without changing the result?  Yes when no vocab token has U+2581 right
 * after a different character: then no merge ever joins the two sides (a
 * merged token's string is the concatenation of its parts).  SentencePiece
 * vocabs (Llama-2) have this property; it turns a whole-text "word" into
 * words that the cache serves. */
int tok_bpe_check_meta_split(tok_bpe *b) {
    b->meta_split = 0;
    if (b->prefix || b->suffix || tok_strmap_get(&b->vocab, META, 3) < 0) return 0;
    for (size_t e = 0; e < b->vocab.n; e++) {
        const char *s = b->vocab.pool + b->vocab.ent[e].off;
        size_t n = b->vocab.ent[e].len;
        for (size_t p = 1; p + 3 <= n; p++)
            if (is_meta(s + p) && !(p >= 3 && is_meta(s + p - 3))) return 0;
    }
    b->meta_split = 1;
    return 1;
}

int tok_bpe_word(dl_tok *t, const char *s, size_t n, int raw, dl_u32buf *out) {
    if (n <= CACHE_MAX_WORD || raw || !t->bpe.meta_split) return word(t, s, n, raw, out);
    if (t->bpe.ignore_merges) {           /* the whole word as one token comes first */
        int64_t id = tok_strmap_get(&t->bpe.vocab, s, n);
        if (id >= 0) return dl_u32buf_push(out, (uint32_t)id);
    }
    size_t a = 0;
    for (size_t p = 1; p + 3 <= n; p++) {
        if (is_meta(s + p) && !(p >= 3 && is_meta(s + p - 3))) {
            int rc = word(t, s + a, p - a, raw, out);
            if (rc) return rc;
            a = p;
        }
    }
    return word(t, s + a, n - a, raw, out);
}

static int word(dl_tok *t, const char *s, size_t n, int raw, dl_u32buf *out) {
    tok_bpe *b = &t->bpe;
    if (n == 0) return 0;
    int cached = n <= CACHE_MAX_WORD;
    uint64_t h = 0;
    if (cached) {
        h = tok_hash(s, n);
        int64_t e = tok_strmap_get_h(&b->cache, s, n, h);
        if (e >= 0)   /* a word that encodes to nothing has no ids stored (cache_ids may be NULL) */
            return b->cache_ent[e].n ? dl_u32buf_append(out, b->cache_ids + b->cache_ent[e].off, b->cache_ent[e].n) : 0;
    }
    if (b->ignore_merges) {
        int64_t id = tok_strmap_get(raw ? &b->raw_vocab : &b->vocab, s, n);
        if (id >= 0) {
            uint32_t u = (uint32_t)id;
            if (cached && cache_put(b, s, n, &u, 1)) return -DL_EXIT_IO;
            return dl_u32buf_push(out, u);
        }
    }
    size_t m = 0;
    if (raw) {
        if (reserve_syms(b, n)) return -DL_EXIT_IO;
        for (size_t i = 0; i < n; i++) b->sym[i] = (uint32_t)b->byte_sym[(unsigned char)s[i]];
        m = n;
    } else {
        int rc = initial_syms(t, s, n, &m);
        if (rc == -2) return -DL_EXIT_DATA;
        if (rc) return -DL_EXIT_IO;
    }
    if (m <= SMALL_WORD) {
        m = merge_small(&b->merges, b->sym, b->rank, b->nid, m);
    } else if (merge_large(b, m, &m)) {
        return -DL_EXIT_IO;
    }
    if (cached && cache_put(b, s, n, b->sym, m)) return -DL_EXIT_IO;
    return dl_u32buf_append(out, b->sym, m);
}
