/* tok/train_bpe.c — the BPE trainer behind `dllm-tok train`: word counter,
 * byte-level alphabet, and the merge loop (HF BpeTrainer's algorithm; see
 * tok_train.h for the exact rules and the known divergences).
 *
 * Data: tokens are UTF-8 strings (byte-level chars) in one arena with a
 * string -> id hash; each distinct word is a run of token ids in one pool
 * (merges only shrink a word, so it is rewritten in place); pairs live in a
 * (left << 32 | right) -> record hash and are never deleted.  A pair record
 * holds its count and, during one step, the words where it was created.
 * The heap holds (count, pair, words) entries: an entry whose count is stale
 * is re-pushed with the current count; a fresh one is merged in exactly its
 * words.  Memory ~ 4 bytes per byte of distinct words + 16 per pair-in-word.
 *
 * Does not: read files, pre-tokenize, or write JSON (tok/train.c).
 */
#include <stdlib.h>
#include <string.h>
#include "dl_base.h"
#include "dl_log.h"
#include "tok_train.h"

/* ------------------------------------------------------------------------ */
static uint64_t hash_bytes(const void *p, size_t n) {  /* FNV-1a, 64-bit */
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) { h ^= s[i]; h *= 1099511628211ULL; }
    return h;
}

static uint64_t hash_u64(uint64_t x) {  /* splitmix64 finalizer */
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static void *grow(void *p, size_t *cap, size_t need, size_t elem) {  /* NULL on OOM, p kept */
    if (need <= *cap) return p;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *q = realloc(p, c * elem);
    if (q) *cap = c;
    return q;
}

/* GPT-2 byte -> code point: printable bytes map to themselves, the rest to
 * U+0100.. in byte order. */
static uint32_t byte_to_cp(unsigned char b) {
    if ((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE) return b;
    uint32_t n = 0;  /* rank of b among the unprintable bytes */
    for (unsigned c = 0; c < b; c++)
        if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) n++;
    return 256 + n;
}

/* ---------------------------------------------------------------- word counts */
struct tok_wc {
    char *bytes; size_t nbytes, capbytes;           /* all words, back to back */
    struct wc_ent { uint64_t off, count, hash; uint32_t len; } *ent;
    size_t n, cap;
    uint32_t *slot; size_t nslot;                   /* open addressing: entry index + 1, 0 = empty */
};

int tok_wc_init(tok_wc **wcp, char *err, size_t errlen) {
    tok_wc *wc = calloc(1, sizeof *wc);
    if (wc) { wc->nslot = 1024; wc->slot = calloc(wc->nslot, sizeof *wc->slot); }
    if (!wc || !wc->slot) { free(wc); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    *wcp = wc;
    return 0;
}

static int wc_rehash(tok_wc *wc) {
    size_t ns = wc->nslot * 2;
    uint32_t *s = calloc(ns, sizeof *s);
    if (!s) return -1;
    for (size_t i = 0; i < wc->n; i++) {
        size_t j = wc->ent[i].hash & (ns - 1);
        while (s[j]) j = (j + 1) & (ns - 1);
        s[j] = (uint32_t)(i + 1);
    }
    free(wc->slot);
    wc->slot = s; wc->nslot = ns;
    return 0;
}

int tok_wc_add(tok_wc *wc, const char *word, size_t len, uint64_t count, char *err, size_t errlen) {
    if (len == 0) return 0;
    if (len > UINT32_MAX) return dl_seterr(err, errlen, -DL_EXIT_DATA, "a pre-tokenized word of %zu bytes is too long", len);
    uint64_t h = hash_bytes(word, len);
    size_t j = h & (wc->nslot - 1);
    for (uint32_t e; (e = wc->slot[j]); j = (j + 1) & (wc->nslot - 1)) {
        struct wc_ent *x = &wc->ent[e - 1];
        if (x->hash == h && x->len == len && !memcmp(wc->bytes + x->off, word, len)) {
            x->count += count;
            return 0;
        }
    }
    if (wc->n >= UINT32_MAX - 1) return dl_seterr(err, errlen, -DL_EXIT_DATA, "more than 2^32 distinct words");
    char *b = grow(wc->bytes, &wc->capbytes, wc->nbytes + len, 1);
    if (!b) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    wc->bytes = b;
    struct wc_ent *en = grow(wc->ent, &wc->cap, wc->n + 1, sizeof *en);
    if (!en) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    wc->ent = en;
    memcpy(wc->bytes + wc->nbytes, word, len);
    wc->ent[wc->n] = (struct wc_ent){ wc->nbytes, count, h, (uint32_t)len };
    wc->nbytes += len;
    wc->slot[j] = (uint32_t)(++wc->n);
    if (2 * wc->n > wc->nslot && wc_rehash(wc)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    return 0;
}

size_t tok_wc_distinct(const tok_wc *wc) { return wc->n; }

void tok_wc_free(tok_wc *wc) {
    if (!wc) return;
    free(wc->bytes); free(wc->ent); free(wc->slot); free(wc);
}

/* ---------------------------------------------------------------- trainer state */
typedef struct {
    /* tokens: strings in arena, string -> id hash */
    char *arena; size_t narena, caparena;
    uint64_t *tok_off; size_t ntok, captok;
    uint32_t *tslot; size_t ntslot;            /* id + 1, 0 = empty */
    /* words */
    uint32_t *sym;                              /* all words' symbols */
    uint64_t *w_off; uint32_t *w_len; uint64_t *w_count; size_t nw;
    /* pairs */
    struct pair { uint64_t key; int64_t count; uint32_t *wtu; uint32_t nwtu, capwtu; int64_t last_rank; } *pr;
    size_t npr, cappr;
    uint32_t *pslot; size_t npslot;             /* pair index + 1 */
    uint32_t *touched; size_t ntouched, captouched;
    /* heap */
    struct hent { uint64_t count, key; uint32_t *pos; uint32_t npos; } *heap;
    size_t nheap, capheap;
    /* every merge step, repeats included: left, right, pair index */
    struct step { uint32_t a, b, pair; } *mg;
    size_t nmg, capmg;
} bpe;

static const char *tok_str(const bpe *s, size_t id) { return s->arena + s->tok_off[id]; }

static int64_t tok_find(const bpe *s, const char *str, size_t len, uint64_t h) {
    for (size_t j = h & (s->ntslot - 1); s->tslot[j]; j = (j + 1) & (s->ntslot - 1)) {
        const char *t = tok_str(s, s->tslot[j] - 1);
        if (strlen(t) == len && !memcmp(t, str, len)) return s->tslot[j] - 1;
    }
    return -1;
}

/* Adds str (len bytes, no NUL inside) as a new id; caller checked absence. */
static int tok_add(bpe *s, const char *str, size_t len) {
    char *a = grow(s->arena, &s->caparena, s->narena + len + 1, 1);
    if (!a) return -1;
    s->arena = a;
    uint64_t *o = grow(s->tok_off, &s->captok, s->ntok + 1, sizeof *o);
    if (!o) return -1;
    s->tok_off = o;
    memcpy(s->arena + s->narena, str, len);
    s->arena[s->narena + len] = 0;
    s->tok_off[s->ntok++] = s->narena;
    s->narena += len + 1;
    if (2 * s->ntok > s->ntslot) {
        size_t ns = s->ntslot ? 2 * s->ntslot : 1024;
        uint32_t *t = calloc(ns, sizeof *t);
        if (!t) return -1;
        for (size_t i = 0; i < s->ntok; i++) {
            const char *ti = tok_str(s, i);
            size_t j = hash_bytes(ti, strlen(ti)) & (ns - 1);
            while (t[j]) j = (j + 1) & (ns - 1);
            t[j] = (uint32_t)(i + 1);
        }
        free(s->tslot);
        s->tslot = t; s->ntslot = ns;
    } else {
        size_t j = hash_bytes(str, len) & (s->ntslot - 1);
        while (s->tslot[j]) j = (j + 1) & (s->ntslot - 1);
        s->tslot[j] = (uint32_t)s->ntok;
    }
    return 0;
}

/* pair record for key, created (count 0) when absent; -1 on OOM */
static int64_t pair_get(bpe *s, uint64_t key) {
    size_t j = hash_u64(key) & (s->npslot - 1);
    for (uint32_t e; (e = s->pslot[j]); j = (j + 1) & (s->npslot - 1))
        if (s->pr[e - 1].key == key) return e - 1;
    if (s->npr >= UINT32_MAX - 1) return -1;
    struct pair *p = grow(s->pr, &s->cappr, s->npr + 1, sizeof *p);
    if (!p) return -1;
    s->pr = p;
    s->pr[s->npr] = (struct pair){ key, 0, NULL, 0, 0, -1 };
    s->pslot[j] = (uint32_t)(++s->npr);
    if (2 * s->npr > s->npslot) {
        size_t ns = 2 * s->npslot;
        uint32_t *t = calloc(ns, sizeof *t);
        if (!t) return -1;
        for (size_t i = 0; i < s->npr; i++) {
            size_t k = hash_u64(s->pr[i].key) & (ns - 1);
            while (t[k]) k = (k + 1) & (ns - 1);
            t[k] = (uint32_t)(i + 1);
        }
        free(s->pslot);
        s->pslot = t; s->npslot = ns;
    }
    return (int64_t)s->npr - 1;
}

/* HF's change record: pair count += delta * count(word); a created pair
 * (delta > 0) remembers the word for this step's heap entry. */
static int change(bpe *s, uint32_t a, uint32_t b, int delta, uint32_t w) {
    int64_t pi = pair_get(s, (uint64_t)a << 32 | b);
    if (pi < 0) return -1;
    struct pair *p = &s->pr[pi];
    p->count += delta * (int64_t)s->w_count[w];
    if (delta <= 0) return 0;
    if (!p->wtu) {  /* first creation this step */
        uint32_t *t = grow(s->touched, &s->captouched, s->ntouched + 1, sizeof *t);
        if (!t) return -1;
        s->touched = t;
        s->touched[s->ntouched++] = (uint32_t)pi;
        p->capwtu = 4;
        p->wtu = malloc(p->capwtu * sizeof *p->wtu);
        if (!p->wtu) return -1;
        p->nwtu = 0;
    }
    if (p->nwtu && p->wtu[p->nwtu - 1] == w) return 0;  /* words are processed one at a time */
    size_t cap = p->capwtu;
    uint32_t *v = grow(p->wtu, &cap, (size_t)p->nwtu + 1, sizeof *v);
    if (!v) return -1;
    p->wtu = v; p->capwtu = (uint32_t)cap;
    p->wtu[p->nwtu++] = w;
    return 0;
}

/* ---------------------------------------------------------------- heap */
static int hent_less(const struct hent *x, const struct hent *y) {  /* x below y */
    if (x->count != y->count) return x->count < y->count;
    return x->key > y->key;   /* smaller (left, right) wins a tie */
}

static int heap_push(bpe *s, struct hent e) {
    struct hent *h = grow(s->heap, &s->capheap, s->nheap + 1, sizeof *h);
    if (!h) return -1;
    s->heap = h;
    size_t i = s->nheap++;
    while (i > 0) {
        size_t par = (i - 1) / 2;
        if (!hent_less(&h[par], &e)) break;
        h[i] = h[par];
        i = par;
    }
    h[i] = e;
    return 0;
}

static struct hent heap_pop(bpe *s) {
    struct hent *h = s->heap, top = h[0], last = h[--s->nheap];
    size_t i = 0, n = s->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hent_less(&h[c], &h[c + 1])) c++;
        if (!hent_less(&last, &h[c])) break;
        h[i] = h[c];
        i = c;
    }
    if (n) h[i] = last;
    return top;
}

/* Every pair created this step (or at start) with a positive count gets a
 * heap entry owning its word list. */
static int flush_touched(bpe *s) {
    for (size_t i = 0; i < s->ntouched; i++) {
        struct pair *p = &s->pr[s->touched[i]];
        if (p->count > 0) {
            if (heap_push(s, (struct hent){ (uint64_t)p->count, p->key, p->wtu, p->nwtu })) return -1;
        } else {
            free(p->wtu);
        }
        p->wtu = NULL; p->nwtu = p->capwtu = 0;
    }
    s->ntouched = 0;
    return 0;
}

/* Merge (a, b) -> r left to right in word w, reporting changes as HF's
 * Word::merge does: the left neighbour is the already-rewritten symbol. */
static int merge_word(bpe *s, uint32_t w, uint32_t a, uint32_t b, uint32_t r) {
    uint32_t *x = s->sym + s->w_off[w], n = s->w_len[w], o = 0;
    for (uint32_t i = 0; i < n;) {
        if (x[i] == a && i + 1 < n && x[i + 1] == b) {
            if (o > 0 && (change(s, x[o - 1], a, -1, w) || change(s, x[o - 1], r, 1, w))) return -1;
            x[o++] = r;
            i += 2;
            if (i < n && (change(s, b, x[i], -1, w) || change(s, r, x[i], 1, w))) return -1;
        } else {
            x[o++] = x[i++];
        }
    }
    s->w_len[w] = o;
    return 0;
}

static void bpe_free(bpe *s) {
    free(s->arena); free(s->tok_off); free(s->tslot);
    free(s->sym); free(s->w_off); free(s->w_len); free(s->w_count);
    for (size_t i = 0; i < s->npr; i++) free(s->pr[i].wtu);
    free(s->pr); free(s->pslot); free(s->touched);
    for (size_t i = 0; i < s->nheap; i++) free(s->heap[i].pos);
    free(s->heap); free(s->mg);
}

static size_t put_utf8(char *d, uint32_t cp) {
    if (cp < 0x80) { d[0] = (char)cp; return 1; }
    if (cp < 0x800) { d[0] = (char)(0xC0 | cp >> 6); d[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    d[0] = (char)(0xE0 | cp >> 12); d[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); d[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* ---------------------------------------------------------------- training */
#define OOM() do { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto done; } while (0)

int tok_bpe_train(const tok_wc *wc, const tok_bpe_opts *o, tok_bpe_model *m,
                  char *err, size_t errlen) {
    bpe S = {0}, *s = &S;
    int rc = 0;
    memset(m, 0, sizeof *m);
    s->ntslot = 1024; s->tslot = calloc(s->ntslot, sizeof *s->tslot);
    s->npslot = 1024; s->pslot = calloc(s->npslot, sizeof *s->pslot);
    if (!s->tslot || !s->pslot) OOM();

    /* 1. special tokens, 2. the byte-level alphabet in code point order */
    for (size_t i = 0; i < o->n_special; i++) {
        const char *t = o->special[i];
        if (tok_find(s, t, strlen(t), hash_bytes(t, strlen(t))) < 0 && tok_add(s, t, strlen(t))) OOM();
    }
    uint32_t n_special = (uint32_t)s->ntok, byte_id[256];
    if (o->vocab_size < (uint64_t)n_special + 256) {
        rc = dl_seterr(err, errlen, -DL_EXIT_USAGE, "vocab size %llu is below 256 + %u special tokens",
                       (unsigned long long)o->vocab_size, n_special);
        goto done;
    }
    unsigned char order[256];
    for (int i = 0; i < 256; i++) order[i] = (unsigned char)i;
    for (int i = 1; i < 256; i++)   /* insertion sort by code point */
        for (int j = i; j > 0 && byte_to_cp(order[j - 1]) > byte_to_cp(order[j]); j--) {
            unsigned char t = order[j]; order[j] = order[j - 1]; order[j - 1] = t;
        }
    for (int i = 0; i < 256; i++) {
        char u[4];
        size_t n = put_utf8(u, byte_to_cp(order[i]));
        int64_t id = tok_find(s, u, n, hash_bytes(u, n));
        if (id < 0) { if (tok_add(s, u, n)) OOM(); id = (int64_t)s->ntok - 1; }
        byte_id[order[i]] = (uint32_t)id;
    }

    /* 3. words as id sequences, 4. initial pair counts */
    s->nw = wc->n;
    s->sym = malloc((wc->nbytes ? wc->nbytes : 1) * sizeof *s->sym);
    s->w_off = malloc((s->nw ? s->nw : 1) * sizeof *s->w_off);
    s->w_len = malloc((s->nw ? s->nw : 1) * sizeof *s->w_len);
    s->w_count = malloc((s->nw ? s->nw : 1) * sizeof *s->w_count);
    if (!s->sym || !s->w_off || !s->w_len || !s->w_count) OOM();
    for (size_t w = 0; w < s->nw; w++) {
        const struct wc_ent *e = &wc->ent[w];
        s->w_off[w] = e->off; s->w_len[w] = e->len; s->w_count[w] = e->count;
        for (uint32_t i = 0; i < e->len; i++) s->sym[e->off + i] = byte_id[(unsigned char)wc->bytes[e->off + i]];
        for (uint32_t i = 0; i + 1 < e->len; i++)
            if (change(s, s->sym[e->off + i], s->sym[e->off + i + 1], 1, (uint32_t)w)) OOM();
    }
    if (flush_touched(s)) OOM();

    /* 5. merges */
    const size_t ntok0 = s->ntok;
    const uint64_t target = o->vocab_size - ntok0;
    while (s->ntok < o->vocab_size && s->nheap) {
        struct hent top = heap_pop(s);
        int64_t pi = pair_get(s, top.key);
        if (pi < 0) { free(top.pos); OOM(); }
        uint64_t cur = (uint64_t)s->pr[pi].count;
        if (top.count != cur) {
            top.count = cur;
            if (heap_push(s, top)) { free(top.pos); OOM(); }
            continue;
        }
        if (top.count < 1 || o->min_frequency > top.count) {
            if (heap_push(s, top)) { free(top.pos); OOM(); }   /* keep ownership in the heap */
            break;
        }
        uint32_t a = (uint32_t)(top.key >> 32), b = (uint32_t)top.key;
        const char *sa = tok_str(s, a), *sb = tok_str(s, b);
        size_t la = strlen(sa), lb = strlen(sb);
        char *nt = malloc(la + lb + 1);
        if (!nt) { free(top.pos); OOM(); }
        memcpy(nt, sa, la); memcpy(nt + la, sb, lb);
        int64_t r = tok_find(s, nt, la + lb, hash_bytes(nt, la + lb));
        if (r < 0) {
            if (tok_add(s, nt, la + lb)) { free(nt); free(top.pos); OOM(); }
            r = (int64_t)s->ntok - 1;
        }
        free(nt);
        struct step *g = grow(s->mg, &s->capmg, s->nmg + 1, sizeof *g);
        if (!g) { free(top.pos); OOM(); }
        s->mg = g;
        s->mg[s->nmg] = (struct step){ a, b, (uint32_t)pi };
        s->pr[pi].last_rank = (int64_t)s->nmg++;
        m->last_count = top.count;
        if (dl_verbosity >= 3)
            dl_debug("merge %zu: '%s' + '%s' -> %lld (count %llu, %u words)", s->nmg - 1, tok_str(s, a),
                     tok_str(s, b), (long long)r, (unsigned long long)top.count, top.npos);
        for (uint32_t i = 0; i < top.npos; i++)
            if (merge_word(s, top.pos[i], a, b, (uint32_t)r)) { free(top.pos); OOM(); }
        free(top.pos);
        if (flush_touched(s)) OOM();
        if (o->progress) o->progress(o->progress_ctx, s->ntok - ntok0, target);
    }

    /* result: a pair merged more than once keeps its last rank (HF's
     * merges map is built pair -> last rank, then written in rank order) */
    m->n_vocab = (uint32_t)s->ntok;
    m->n_special = n_special;
    m->steps = s->nmg;
    m->token = calloc(s->ntok, sizeof *m->token);
    m->merges = malloc((s->nmg ? s->nmg : 1) * 2 * sizeof *m->merges);
    if (!m->token || !m->merges) OOM();
    for (size_t i = 0; i < s->ntok; i++)
        if (!(m->token[i] = strdup(tok_str(s, i)))) OOM();
    for (size_t i = 0; i < s->nmg; i++) {
        if (s->pr[s->mg[i].pair].last_rank != (int64_t)i) continue;
        m->merges[2 * m->n_merges] = s->mg[i].a;
        m->merges[2 * m->n_merges + 1] = s->mg[i].b;
        m->n_merges++;
    }
done:
    bpe_free(s);
    if (rc) tok_bpe_model_free(m);
    return rc;
}

void tok_bpe_model_free(tok_bpe_model *m) {
    if (m->token) for (uint32_t i = 0; i < m->n_vocab; i++) free(m->token[i]);
    free(m->token); free(m->merges);
    memset(m, 0, sizeof *m);
}
