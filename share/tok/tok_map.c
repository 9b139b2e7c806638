/* tok_map.c — the engine's hash maps (open addressing, linear probing).
 *
 * tok_strmap: byte string -> u32 (vocab, added tokens, BPE word cache).
 *   Slots hold entry indexes; entries keep the 64-bit hash, so a probe
 *   compares bytes only on a full hash hit.  Load factor <= 1/2.
 * tok_pairmap: (left id, right id) -> (rank, merged id) for BPE merges,
 *   16-byte entries probed inline (see tok_pairmap_get in tok_map.h).
 * Neither shrinks; tok_strmap_clear keeps the memory for reuse.
 */
#include <stdlib.h>
#include <string.h>
#include "tok_map.h"

static inline uint64_t mix(uint64_t a, uint64_t b) {
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t tok_hash(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 0x243F6A8885A308D3ull ^ (n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = mix(h ^ w, 0xBF58476D1CE4E5B9ull);
        s += 8; n -= 8;
    }
    if (n) {
        uint64_t w = 0;
        memcpy(&w, s, n);
        h = mix(h ^ w, 0x94D049BB133111EBull);
    }
    return mix(h, 0x9E3779B97F4A7C15ull);
}

/* ---------------------------------------------------------------- tok_strmap */
static int strmap_grow(tok_strmap *m) {
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint32_t *slot = calloc(cap, sizeof *slot);
    if (!slot) return -1;
    for (size_t e = 0; e < m->n; e++) {
        size_t i = (size_t)m->ent[e].hash & (cap - 1);
        while (slot[i]) i = (i + 1) & (cap - 1);
        slot[i] = (uint32_t)e + 1;
    }
    free(m->slot);
    m->slot = slot; m->cap = cap;
    return 0;
}

int64_t tok_strmap_get_h(const tok_strmap *m, const char *s, size_t n, uint64_t h) {
    if (!m->cap) return -1;
    size_t mask = m->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint32_t e = m->slot[i];
        if (!e) return -1;
        const struct tok_ment *en = &m->ent[e - 1];
        if (en->hash == h && en->len == n && memcmp(m->pool + en->off, s, n) == 0) return en->val;
    }
}

int64_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n) {
    return tok_strmap_get_h(m, s, n, tok_hash(s, n));
}

int tok_strmap_put(tok_strmap *m, const char *s, size_t n, uint32_t val) {
    uint64_t h = tok_hash(s, n);
    if (m->cap) {
        size_t mask = m->cap - 1;
        for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
            uint32_t e = m->slot[i];
            if (!e) break;
            struct tok_ment *en = &m->ent[e - 1];
            if (en->hash == h && en->len == n && memcmp(m->pool + en->off, s, n) == 0) {
                en->val = val;
                return 0;
            }
        }
    }
    if ((m->n + 1) * 2 > m->cap && strmap_grow(m)) return -1;
    if (m->n == m->ecap) {
        size_t c = m->ecap ? m->ecap * 2 : 64;
        void *p = realloc(m->ent, c * sizeof *m->ent);
        if (!p) return -1;
        m->ent = p; m->ecap = c;
    }
    if (m->pool_n + n + 1 > m->pool_cap) {
        size_t c = m->pool_cap ? m->pool_cap : 1024;
        while (c < m->pool_n + n + 1) c *= 2;
        char *p = realloc(m->pool, c);
        if (!p) return -1;
        m->pool = p; m->pool_cap = c;
    }
    memcpy(m->pool + m->pool_n, s, n);
    m->ent[m->n] = (struct tok_ment){ h, (uint32_t)m->pool_n, (uint32_t)n, val };
    m->pool_n += n;
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    while (m->slot[i]) i = (i + 1) & mask;
    m->slot[i] = (uint32_t)(++m->n);
    return 0;
}

void tok_strmap_clear(tok_strmap *m) {
    if (m->slot) memset(m->slot, 0, m->cap * sizeof *m->slot);
    m->n = 0; m->pool_n = 0;
}

void tok_strmap_free(tok_strmap *m) {
    free(m->slot); free(m->ent); free(m->pool);
    memset(m, 0, sizeof *m);
}

/* ---------------------------------------------------------------- tok_pairmap */
int tok_pairmap_init(tok_pairmap *m, size_t n_expected) {
    int bits = 4;
    while (((size_t)1 << bits) < n_expected * 2 + 16) bits++;
    m->bits = bits;
    m->cap = (size_t)1 << bits;
    m->n = 0;
    m->e = malloc(m->cap * sizeof *m->e);
    if (!m->e) return -1;
    for (size_t i = 0; i < m->cap; i++) m->e[i].key = UINT64_MAX;
    return 0;
}

void tok_pairmap_put(tok_pairmap *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id) {
    uint64_t key = ((uint64_t)a << 32) | b;
    size_t mask = m->cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - m->bits));
    for (;; i = (i + 1) & mask) {
        tok_pent *e = &m->e[i];
        if (e->key == key) { e->rank = rank; e->id = id; return; }
        if (e->key == UINT64_MAX) { e->key = key; e->rank = rank; e->id = id; m->n++; return; }
    }
}

void tok_pairmap_free(tok_pairmap *m) {
    free(m->e);
    memset(m, 0, sizeof *m);
}

int tok_spans_push(tok_spans *s, size_t a, size_t b, int m) {
    if (s->n == s->cap) {
        size_t c = s->cap ? s->cap * 2 : 64;
        void *p = realloc(s->v, c * sizeof *s->v);
        if (!p) return -1;
        s->v = p; s->cap = c;
    }
    s->v[s->n++] = (tok_span){ a, b, m };
    return 0;
}
