/* pack/sink.c — where dllm-pack's rows go: train/held-out split, bounded
 * shuffle window, writing.
 *
 * Split: a row goes to the held-out stream when
 *   dl_rng(seed, key, split_copy, DL_RNG_SPLIT) double < split_p.
 * Shuffle (window W): the first W rows of a stream fill the window; row
 * number k >= W (k counted per stream) evicts and emits slot
 * j = below(W) drawn from dl_rng(seed, k, copy, DL_RNG_SHUFFLE), and takes
 * its place; at the end the remaining rows are emitted in a Fisher-Yates
 * order drawn from dl_rng(seed, k_total, copy, DL_RNG_SHUFFLE).  So the
 * output depends only on the seed and the input, and memory is W rows.
 * copy = shuffle_copy*2 + stream (0 train, 1 held-out).
 */
#include <stdlib.h>
#include <string.h>
#include "dl_rng.h"
#include "pack.h"

int pack_sink_init(pack_sink *s, dl_outset *train, dl_outset *valid, uint64_t seed, double split_p,
                   uint64_t window, uint32_t shuffle_copy, char *err, size_t errlen) {
    memset(s, 0, sizeof *s);
    s->train = train;
    s->valid = valid;
    s->seed = seed;
    s->split_p = valid ? split_p : 0.0;
    for (int k = 0; k < 2; k++) {
        s->win[k].cap = window;
        s->win[k].rng_copy = shuffle_copy * 2 + (uint32_t)k;
        if (window && !(s->win[k].slot = calloc(window, sizeof(pack_slot))))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory for a shuffle window of %llu rows",
                             (unsigned long long)window);
    }
    return 0;
}

static int emit(dl_outset *os, const void *rec, size_t len, char *err, size_t errlen) {
    dl_writer *w = dl_outset_next(os);
    msgpack_packer *pk = dl_writer_packer(w);
    if (pk->callback(pk->data, rec, len)) {
        int rc = dl_writer_error(w, err, errlen);
        return rc ? rc : dl_seterr(err, errlen, -DL_EXIT_IO, "%s: write error", dl_writer_name(w));
    }
    dl_writer_count(w);
    return 0;
}

static int slot_set(pack_slot *sl, const void *rec, size_t len, char *err, size_t errlen) {
    if (len > sl->cap) {
        char *p = realloc(sl->data, len);
        if (!p) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        sl->data = p;
        sl->cap = len;
    }
    memcpy(sl->data, rec, len);
    sl->len = len;
    return 0;
}

int pack_sink_put(pack_sink *s, uint64_t key, uint32_t split_copy, const void *rec, size_t len,
                  char *err, size_t errlen) {
    int k = 0;
    if (s->split_p > 0) {
        dl_rng r;
        dl_rng_init(&r, s->seed, key, split_copy, DL_RNG_SPLIT);
        k = dl_rng_double(&r) < s->split_p;
    }
    dl_outset *os = k ? s->valid : s->train;
    pack_window *w = &s->win[k];
    s->n_rows[k]++;
    if (!w->cap) return emit(os, rec, len, err, errlen);
    int rc;
    if (w->filled < w->cap) {
        rc = slot_set(&w->slot[w->filled], rec, len, err, errlen);
        if (!rc) w->filled++;
    } else {
        dl_rng r;
        dl_rng_init(&r, s->seed, w->seen, w->rng_copy, DL_RNG_SHUFFLE);
        pack_slot *sl = &w->slot[dl_rng_below(&r, (uint32_t)w->cap)];
        rc = emit(os, sl->data, sl->len, err, errlen);
        if (!rc) rc = slot_set(sl, rec, len, err, errlen);
    }
    w->seen++;
    return rc;
}

int pack_sink_flush(pack_sink *s, char *err, size_t errlen) {
    for (int k = 0; k < 2; k++) {
        pack_window *w = &s->win[k];
        if (!w->filled) continue;
        dl_rng r;
        dl_rng_init(&r, s->seed, w->seen, w->rng_copy, DL_RNG_SHUFFLE);
        for (uint64_t n = w->filled; n > 0; n--) {   /* emit a random remaining slot, swap it out */
            uint64_t j = dl_rng_below(&r, (uint32_t)n);
            pack_slot tmp = w->slot[j];
            w->slot[j] = w->slot[n - 1];
            w->slot[n - 1] = tmp;
            int rc = emit(k ? s->valid : s->train, tmp.data, tmp.len, err, errlen);
            if (rc) return rc;
        }
        w->filled = 0;
    }
    return 0;
}

void pack_sink_free(pack_sink *s) {
    for (int k = 0; k < 2; k++) {
        if (!s->win[k].slot) continue;
        for (uint64_t i = 0; i < s->win[k].cap; i++) free(s->win[k].slot[i].data);
        free(s->win[k].slot);
    }
    memset(s, 0, sizeof *s);
}
