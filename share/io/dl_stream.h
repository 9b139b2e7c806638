/* dl_stream.h — dllm msgpack streams: headers, record reader, record writer.
 *
 * A stream is a sequence of msgpack maps.  A map holding the key "dllm" is a
 * header (DESIGN.md "Streams"); every stream starts with one and headers may
 * re-appear (cat a b |): the reader checks each new header against the first
 * (same kind, same tokenizer sha256/vocab, same seq_len) and fails otherwise.
 * Token ids are bin blobs of little-endian uint32.
 *
 * Records handed out by dl_reader_next() are msgpack_objects that live until
 * the next call; copy what you keep (dl_rec_ids copies).
 */
#ifndef DL_STREAM_H
#define DL_STREAM_H
#include <stdint.h>
#include <msgpack.h>
#include "dl_base.h"
#include "dl_io.h"

typedef enum {
    DL_KIND_NONE = 0, DL_KIND_TEXT, DL_KIND_TOKENS, DL_KIND_ROWS,
    DL_KIND_MASKED, DL_KIND_SAMPLES, DL_KIND_SCORES
} dl_kind;
const char *dl_kind_name(dl_kind k);        /* "tokens" ... */
dl_kind dl_kind_parse(const char *s, size_t n);  /* DL_KIND_NONE if unknown */

typedef struct {
    char sha256[65];      /* hex of tokenizer.json bytes; "" = unknown */
    int64_t vocab_size;   /* -1 = unknown */
    int64_t mask_id, eos_id, pad_id, bos_id;   /* -1 = absent */
} dl_tokinfo;
void dl_tokinfo_clear(dl_tokinfo *t);   /* all unknown / absent */

typedef struct {
    uint32_t version;     /* 1 */
    dl_kind kind;
    int has_tok;
    dl_tokinfo tok;
    int64_t seq_len;      /* -1 = absent */
    int has_seed;
    uint64_t seed;
    char **history;       /* oldest first, malloc'ed strings */
    size_t n_history;
    /* Every other key of the header as received, re-packed (a msgpack map of
     * the unknown keys only), so they are carried through unchanged. */
    char *extra; size_t extra_len;
} dl_header;
void dl_header_init(dl_header *h, dl_kind kind);
void dl_header_free(dl_header *h);
int dl_header_copy(dl_header *dst, const dl_header *src);   /* deep copy */
/* Build from a header map object. */
int dl_header_from_obj(dl_header *h, const msgpack_object *o, char *err, size_t errlen);
/* 0 when compatible (same kind, tokenizer, seq_len); else -DL_EXIT_DATA + why */
int dl_header_compatible(const dl_header *a, const dl_header *b, char *err, size_t errlen);
/* Set (add or replace) an unsigned key among the header's extra keys. */
int dl_header_set_extra_uint(dl_header *h, const char *key, uint64_t v, char *err, size_t errlen);
/* Read an unsigned extra key: 0 and *v set, or 1 when absent / not unsigned. */
int dl_header_get_extra_uint(const dl_header *h, const char *key, uint64_t *v);
/* Randomness namespace of a sliced stream: a program that ran with --shard I/N
 * on a stage whose output records cannot be numbered globally (dllm-pack
 * pretrain rows) writes header key "index_base" = I << 40; the next stage keys
 * its randomness by index_base + record index, so slices never share draws. */
#define DL_INDEX_BASE_SHIFT 40

/* ------------------------------------------------------------------ reader */
typedef struct dl_reader dl_reader;
/* paths: n == 0 means stdin; "-" means stdin.  Files are read in order as one
 * stream.  Does not read anything yet. */
int dl_reader_open(dl_reader **r, char *const *paths, int n, char *err, size_t errlen);
/* Next data record (headers are consumed and checked).  1 = *rec set,
 * 0 = end of all inputs, <0 = error (err names file and record index:
 * "data.msgpack: record 12: truncated record at byte 3456").  The first call
 * fails when the input does not start with a header or is empty. */
int dl_reader_next(dl_reader *r, const msgpack_object **rec, char *err, size_t errlen);
/* The first header (valid after the first successful dl_reader_next, or after
 * dl_reader_peek_header). */
const dl_header *dl_reader_header(const dl_reader *r);
/* The first header exactly as received (raw msgpack map, keys in their
 * original order); same validity as dl_reader_header, NULL before. */
const msgpack_object *dl_reader_header_obj(const dl_reader *r);
/* Read up to and including the first header without consuming a record
 * (so programs can validate kind/seq_len before the loop).  0 or <0. */
int dl_reader_peek_header(dl_reader *r, char *err, size_t errlen);
/* Fail unless the header's kind is one of `kinds` (bit mask of 1u<<DL_KIND_*). */
int dl_reader_expect(dl_reader *r, unsigned kinds, char *err, size_t errlen);
const char *dl_reader_file(const dl_reader *r);     /* current input name */
uint64_t dl_reader_index(const dl_reader *r);       /* global 0-based index of the last data record returned */
uint64_t dl_reader_file_index(const dl_reader *r);  /* its index within the current file */
/* "FILE: record N" for messages about the last record (N within that file) */
const char *dl_reader_where(dl_reader *r);
uint64_t dl_reader_raw_bytes(const dl_reader *r);   /* input bytes consumed, for progress */
uint64_t dl_reader_total_bytes(const dl_reader *r); /* sum of input file sizes, 0 if unknown */
/* Restart from the first input (regular files only: stdin, a named pipe,
 * /dev/stdin or a process substitution cannot be read twice -> -DL_EXIT_USAGE,
 * checked with stat() so a FIFO is never reopened, which would block). */
int dl_reader_rewind(dl_reader *r, char *err, size_t errlen);
/* Count the data records of all inputs (files only; rewinds after). */
int dl_reader_count(dl_reader *r, uint64_t *n, char *err, size_t errlen);
/* The --shard I/N slice of the input: the contiguous global record range
 * [I*n/N, (I+1)*n/N) (*lo, *hi), n counted by dl_reader_count, so slices
 * concatenated equal one run.  N <= 1: everything (hi = UINT64_MAX).  stdin
 * and any other input that is not a regular file (pipe, FIFO, /dev/stdin,
 * <(...)) cannot be counted: an explicit --shard is a usage error, a slice
 * that only came from SLURM_ARRAY_* is ignored (the upstream stage already
 * sliced).  is_stdin: the caller's own "-" test; the reader also checks. */
int dl_reader_slice(dl_reader *r, int is_stdin, long long shard_i, long long shard_n, int explicit_shard,
                    uint64_t *lo, uint64_t *hi, char *err, size_t errlen);
void dl_reader_close(dl_reader *r);

/* Validate `n` ids against a header's vocab (no-op when vocab unknown). */
int dl_ids_check_vocab(const uint32_t *ids, size_t n, const dl_header *h, const char *key,
                       char *err, size_t errlen);

/* --------------------------------------------------------- record access */
const msgpack_object *dl_rec_get(const msgpack_object *rec, const char *key);
/* Copy a bin blob of LE uint32 into *out (replacing its content). Missing key
 * -> -DL_EXIT_DATA ("missing key \"ids\"") unless optional (returns 1, out->n=0).
 * A blob whose length is not a multiple of 4, or a non-bin value, is an error.
 * vocab > 0: every id must be < vocab. */
int dl_rec_ids(const msgpack_object *rec, const char *key, dl_u32buf *out, int optional,
               int64_t vocab, char *err, size_t errlen);
/* Unsigned integer value; optional: returns 1 and leaves *v when missing. */
int dl_rec_uint(const msgpack_object *rec, const char *key, uint64_t *v, int optional,
                char *err, size_t errlen);
int dl_rec_float(const msgpack_object *rec, const char *key, double *v, int optional,
                 char *err, size_t errlen);
/* String value (not NUL-terminated: *s,*n point into the record). */
int dl_rec_str(const msgpack_object *rec, const char *key, const char **s, size_t *n, int optional,
               char *err, size_t errlen);

/* ------------------------------------------------------------------ writer */
typedef struct dl_writer dl_writer;
int dl_writer_open(dl_writer **w, const char *path, const dl_out_opts *opts, char *err, size_t errlen);
msgpack_packer *dl_writer_packer(dl_writer *w);
/* Writes the header with `history` = h->history + dl_invocation(); extra keys
 * of h are written too.  Call once before records. */
int dl_writer_header(dl_writer *w, const dl_header *h);
/* Latched error state of the packer (first write error), 0 if fine. */
int dl_writer_error(dl_writer *w, char *err, size_t errlen);
/* Write already-packed msgpack bytes (e.g. a header kept verbatim). 0 or -1. */
int dl_writer_raw(dl_writer *w, const void *buf, size_t n);
/* Bump the record counter (for stats); call once per record written. */
void dl_writer_count(dl_writer *w);
uint64_t dl_writer_records(const dl_writer *w);
int dl_writer_close(dl_writer *w, char *err, size_t errlen);  /* frees; renames into place */
void dl_writer_abort(dl_writer *w);                           /* frees; removes temp */
const char *dl_writer_name(const dl_writer *w);

/* Packing helpers (all return 0 or -1 like msgpack_pack_*; check
 * dl_writer_error() for the message). */
int dl_pack_str(msgpack_packer *pk, const char *s);
int dl_pack_strn(msgpack_packer *pk, const char *s, size_t n);
int dl_pack_ids(msgpack_packer *pk, const uint32_t *ids, size_t n);  /* bin, LE */
int dl_pack_f32(msgpack_packer *pk, float v);
int dl_pack_floats(msgpack_packer *pk, const float *v, size_t n);   /* bin, LE float32 */
/* Number of key/value pairs of `rec` whose key is not in `known` (NULL-terminated). */
uint32_t dl_rec_n_extra(const msgpack_object *rec, const char *const *known);
/* Pack those pairs unchanged (carry user keys through). */
int dl_pack_extra(msgpack_packer *pk, const msgpack_object *rec, const char *const *known);

/* --------------------------------------------- one output or N shards */
typedef struct dl_outset dl_outset;
/* n_shards == 0: one output at `path` (NULL/"-" = stdout).  n_shards >= 1:
 * files dl_shard_name(path, i, n), path required.  Records go round-robin:
 * dl_outset_next() returns the writer for the next record. */
int dl_outset_open(dl_outset **s, const char *path, int n_shards, const dl_out_opts *opts,
                   char *err, size_t errlen);
int dl_outset_header(dl_outset *s, const dl_header *h);
dl_writer *dl_outset_next(dl_outset *s);
int dl_outset_close(dl_outset *s, char *err, size_t errlen);  /* all or nothing renamed */
void dl_outset_abort(dl_outset *s);
uint64_t dl_outset_records(const dl_outset *s);
/* Number of writers (1 for a single output) and writer i (e.g. to give every
 * shard a verbatim header instead of dl_outset_header). */
int dl_outset_n(const dl_outset *s);
dl_writer *dl_outset_writer(dl_outset *s, int i);

#endif
