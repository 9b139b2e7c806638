/* dl_open.h — the opening every stream program repeats, in one place.
 *
 * A filter (dllm-pack, dllm-mask, ...) opens its input, checks the header
 * kind, finds the records of its --shard slice, then opens its output(s)
 * from the common options (-o, --shards, --zstd, --force) and writes the
 * header (with the history line, dl_writer_header).  These two calls do
 * that; they return 0 or a negative DL_EXIT_* with err set, and on failure
 * leave nothing open and nothing on disk.  They do not print or exit.
 */
#ifndef DL_OPEN_H
#define DL_OPEN_H
#include <stddef.h>
#include <stdint.h>
#include "dl_opts.h"
#include "dl_stream.h"

/* Open paths[0..n) (none, or one "-": stdin), peek the header and require
 * its kind to be one of `kinds` (bits 1u << DL_KIND_*). */
int dl_open_input(dl_reader **r, char *const *paths, int n, unsigned kinds, char *err, size_t errlen);
/* [*lo, *hi): the record indexes of the --shard slice c->shard_i of
 * c->shard_n of the input opened from paths[0..n) (dl_reader_slice).  A
 * separate call so a program checks the header before the input is
 * counted. */
int dl_open_slice(dl_reader *r, char *const *paths, int n, const dl_common *c, uint64_t *lo, uint64_t *hi,
                  char *err, size_t errlen);

/* Open the output set at `path` (n_shards as --shards; 0 = one output,
 * NULL/"-" = stdout) with the output options of c, and write header h into
 * every output. */
int dl_open_output(dl_outset **os, const char *path, int n_shards, const dl_common *c,
                   const dl_header *h, char *err, size_t errlen);

#endif
