/* pack/pack.h — dllm-pack's internal pieces: the row builders (rows.c) and
 * the sink that shuffles, splits and writes rows (sink.c).  Used by main.c
 * only; not a library API.
 *
 * Rows travel as complete serialized msgpack records (bytes), so the sink
 * can hold them in its shuffle window and write them unchanged.
 */
#ifndef PACK_PACK_H
#define PACK_PACK_H
#include <stdint.h>
#include <msgpack.h>
#include "dl_stream.h"

/* ------------------------------------------------------------------- sink
 * put(): the row goes to the held-out stream when split_p > 0 and
 * U(seed, key, split_copy, DL_RNG_SPLIT) < split_p, else to the training
 * stream; each stream has its own shuffle window of `window` rows
 * (0 = no shuffle: written at once). */
typedef struct {
    char *data; size_t len, cap;
} pack_slot;

typedef struct {
    pack_slot *slot;        /* (window) */
    uint64_t cap, filled;   /* window size, slots in use */
    uint64_t seen;          /* rows put into this window so far */
    uint32_t rng_copy;      /* the `copy` field of its DL_RNG_SHUFFLE keys */
} pack_window;

typedef struct {
    dl_outset *train, *valid;   /* valid: NULL without --split */
    pack_window win[2];         /* [0] train, [1] valid */
    uint64_t seed;
    double split_p;
    uint64_t n_rows[2];         /* rows written (or held) per stream */
} pack_sink;

/* window 0 = no shuffle.  shuffle_copy: base `copy` for the shuffle keys
 * (stream s uses shuffle_copy*2 + s). */
int pack_sink_init(pack_sink *s, dl_outset *train, dl_outset *valid, uint64_t seed, double split_p,
                   uint64_t window, uint32_t shuffle_copy, char *err, size_t errlen);
/* key/split_copy: the row's DL_RNG_SPLIT key (index, copy). */
int pack_sink_put(pack_sink *s, uint64_t key, uint32_t split_copy, const void *rec, size_t len,
                  char *err, size_t errlen);
/* Emit what the windows still hold (in random order). */
int pack_sink_flush(pack_sink *s, char *err, size_t errlen);
void pack_sink_free(pack_sink *s);

/* ------------------------------------------------------------ row builders */
typedef struct {
    uint32_t L, eos, pad;
    int keep_tail;
    dl_u32buf buf;          /* pending tokens; [head, buf.n) not yet in a row */
    size_t head;
    uint64_t *starts;       /* buffer positions where a document starts, [shead, n_starts) */
    size_t n_starts, cap_starts, shead;
    msgpack_sbuffer sb;     /* scratch for one serialized row */
    msgpack_packer pk;
    uint64_t docs, tokens, rows, tail_tokens, n_pad_rows;
    uint32_t *le;           /* (L) scratch for docs offsets */
} pack_pretrain;

int pack_pretrain_init(pack_pretrain *p, uint32_t L, uint32_t eos, uint32_t pad, int keep_tail);
/* Add one document; emits every complete row to the sink. */
int pack_pretrain_add(pack_pretrain *p, const uint32_t *ids, size_t n, pack_sink *s, uint32_t split_copy,
                      char *err, size_t errlen);
/* End of input: the tail (< L tokens) is dropped, or padded with --keep-tail. */
int pack_pretrain_finish(pack_pretrain *p, pack_sink *s, uint32_t split_copy, char *err, size_t errlen);
void pack_pretrain_free(pack_pretrain *p);

typedef struct {
    uint32_t L, eos, pad;
    int drop_long;          /* --truncate drop (else right) */
    dl_u32buf row;          /* (L) */
    msgpack_sbuffer sb;
    msgpack_packer pk;
    uint64_t examples, rows, dropped_prompt, dropped_long, dropped_empty, truncated;
} pack_sft;

int pack_sft_init(pack_sft *p, uint32_t L, uint32_t eos, uint32_t pad, int drop_long);
/* One example -> at most one row; rec's unknown keys are carried.
 * key: the example's global index (its DL_RNG_SPLIT key). */
int pack_sft_add(pack_sft *p, const msgpack_object *rec, const uint32_t *ids, size_t n, uint64_t n_prompt,
                 uint64_t key, pack_sink *s, char *err, size_t errlen);
void pack_sft_free(pack_sft *p);

#endif
