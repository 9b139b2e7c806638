/* tok_vocab.c — the id -> token string table (one pool, offsets by id) and
 * the lookups of dl_tok.h that read it: vocab size, token <-> id, special.
 * Filled by the BPE model and the added tokens while loading; does not
 * parse anything itself.
 */
#include "tok_engine.h"
#include "tok_map.h"
#include <stdlib.h>
#include <string.h>
#include "tok_vocab.h"

/* ---------------------------------------------------------------- id table */
int tok_set_id_token(dl_tok *t, uint32_t id, const char *s, size_t n) {
    if (id >= t->id_cap) {
        size_t c = t->id_cap ? t->id_cap : 1024;
        while (c <= id) c *= 2;
        uint32_t *o = realloc(t->id_off, c * sizeof *o);
        if (!o) return -1;
        t->id_off = o;
        uint32_t *l = realloc(t->id_len, c * sizeof *l);
        if (!l) return -1;
        t->id_len = l;
        unsigned char *f = realloc(t->id_flags, c);
        if (!f) return -1;
        t->id_flags = f;
        for (size_t i = t->id_cap; i < c; i++) { o[i] = UINT32_MAX; l[i] = 0; f[i] = 0; }
        t->id_cap = c;
    }
    if (t->id_pool_n + n + 1 > t->id_pool_cap) {
        size_t c = t->id_pool_cap ? t->id_pool_cap : 1 << 16;
        while (c < t->id_pool_n + n + 1) c *= 2;
        char *p = realloc(t->id_pool, c);
        if (!p) return -1;
        t->id_pool = p; t->id_pool_cap = c;
    }
    memcpy(t->id_pool + t->id_pool_n, s, n);
    t->id_pool[t->id_pool_n + n] = 0;
    t->id_off[id] = (uint32_t)t->id_pool_n;
    t->id_len[id] = (uint32_t)n;
    t->id_pool_n += n + 1;
    if (id >= t->vocab_n) t->vocab_n = id + 1;
    return 0;
}

uint32_t dl_tok_vocab_size(const dl_tok *t) { return t->vocab_n; }

int64_t dl_tok_token_id(const dl_tok *t, const char *token) {
    size_t n = strlen(token);
    int64_t a = tok_strmap_get(&t->added_map, token, n);
    if (a >= 0) return t->added[a].id;
    return tok_strmap_get(&t->bpe.vocab, token, n);
}

const char *dl_tok_id_token(const dl_tok *t, uint32_t id) {
    if (id >= t->vocab_n || t->id_off[id] == UINT32_MAX) return NULL;
    return t->id_pool + t->id_off[id];
}

int dl_tok_is_special(const dl_tok *t, uint32_t id) {
    return id < t->vocab_n && (t->id_flags[id] & TOK_FLAG_SPECIAL);
}
