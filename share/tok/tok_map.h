/* tok_map.h — hash maps (string -> u32, id pair -> merge) and span lists (tok_map.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_map.c uses
 * nothing of the engine but plain data structures.
 */
#ifndef TOK_MAP_H
#define TOK_MAP_H
#include <stddef.h>
#include <stdint.h>

uint64_t tok_hash(const void *p, size_t n);

/* string -> u32, open addressing; keys are copied into a pool. */
typedef struct {
    uint32_t *slot;            /* cap slots: entry index + 1, 0 = empty */
    struct tok_ment { uint64_t hash; uint32_t off, len, val; } *ent;
    size_t n, ecap, cap;       /* entries, entry capacity, slots (power of 2) */
    char *pool; size_t pool_n, pool_cap;
} tok_strmap;
int tok_strmap_put(tok_strmap *m, const char *s, size_t n, uint32_t val);   /* insert or overwrite; 0 / -1 (no memory) */
int64_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n);      /* value or -1 */
int64_t tok_strmap_get_h(const tok_strmap *m, const char *s, size_t n, uint64_t h);
void tok_strmap_clear(tok_strmap *m);
void tok_strmap_free(tok_strmap *m);

/* (left id, right id) -> (rank, merged id) */
typedef struct { uint64_t key; uint32_t rank, id; } tok_pent;
typedef struct { tok_pent *e; size_t cap, n; int bits; } tok_pairmap;
int tok_pairmap_init(tok_pairmap *m, size_t n_expected);
void tok_pairmap_put(tok_pairmap *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id); /* overwrite */
static inline const tok_pent *tok_pairmap_get(const tok_pairmap *m, uint32_t a, uint32_t b) {
    uint64_t key = ((uint64_t)a << 32) | b;
    size_t mask = m->cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - m->bits));
    for (;; i = (i + 1) & mask) {
        const tok_pent *e = &m->e[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
    }
}
void tok_pairmap_free(tok_pairmap *m);

/* growable list of spans (pre-tokenizer pieces) */
typedef struct { size_t a, b; int m; } tok_span;     /* [a, b), m = is a match */
typedef struct { tok_span *v; size_t n, cap; } tok_spans;
int tok_spans_push(tok_spans *s, size_t a, size_t b, int m);

#endif
