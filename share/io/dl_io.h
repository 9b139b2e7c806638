/* dl_io.h — byte streams: files or stdio, zstd detected on read, chosen on write.
 *
 * dl_in: opens a path ("-" or NULL = stdin), peeks the first 4 bytes into its
 * own buffer and, when they are the zstd magic (28 b5 2f fd), decompresses
 * transparently (ZSTD_DStream; concatenated frames are fine).  EOF inside a
 * zstd frame or a corrupt frame is an error naming the file and byte offset.
 *
 * dl_out: opens a path ("-" or NULL = stdout).  A named file is written to
 * "<path>.tmp.<pid>" (registered for removal on SIGINT/SIGTERM) and renamed
 * to <path> by dl_out_close() only when everything was written and flushed;
 * dl_out_abort() removes it.  An existing output that is not a regular file
 * (/dev/null, a FIFO) is written in place, never replaced.  Output is
 * zstd-compressed when opts->zstd > 0, or opts->zstd < 0 (auto) and the path
 * ends in ".zst".  Binary output to a
 * terminal is refused unless opts->force (text outputs pass binary=0).
 * Every write error (EPIPE, ENOSPC) is reported, including at close.
 */
#ifndef DL_IO_H
#define DL_IO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "dl_base.h"

typedef struct dl_in dl_in;
int dl_in_open(dl_in **in, const char *path, char *err, size_t errlen);
/* Reads up to n decompressed bytes. Returns bytes read (>0), 0 at clean EOF,
 * or a negative DL_EXIT_* with err set. */
ssize_t dl_in_read(dl_in *in, void *buf, size_t n, char *err, size_t errlen);
const char *dl_in_name(const dl_in *in);  /* path, or "<stdin>" */
int64_t dl_in_size(const dl_in *in);       /* on-disk size, -1 when unknown (pipe) */
uint64_t dl_in_raw_consumed(const dl_in *in); /* compressed bytes consumed so far */
uint64_t dl_in_offset(const dl_in *in);    /* decompressed bytes delivered so far */
int dl_in_is_zstd(const dl_in *in);
void dl_in_close(dl_in *in);

typedef struct {
    int zstd;      /* -1 auto (by ".zst" suffix), 0 never, 1 always */
    int level;     /* zstd level, 0 = default (3) */
    int force;     /* allow binary output to a terminal */
    int binary;    /* 1 = refuse a terminal unless force (msgpack), 0 = text */
} dl_out_opts;
#define DL_OUT_OPTS_DEFAULT { -1, 3, 0, 1 }

typedef struct dl_out dl_out;
int dl_out_open(dl_out **out, const char *path, const dl_out_opts *opts, char *err, size_t errlen);
int dl_out_write(dl_out *out, const void *buf, size_t n, char *err, size_t errlen);
/* Finish the zstd frame, flush, fsync, close, rename temp -> final, fsync the
 * directory (dl_sync.h).  Any failure removes the output.  Frees out. */
int dl_out_close(dl_out *out, char *err, size_t errlen);
/* Finish writing without renaming: end the zstd frame, flush, fsync, close the
 * file.  dl_out_close() afterwards only renames (all-or-nothing multi-file
 * outputs finish every file first, then rename them all). */
int dl_out_finish(dl_out *out, char *err, size_t errlen);
/* Remove the temporary file (stdout: just stop). Frees out. Safe on NULL. */
void dl_out_abort(dl_out *out);
const char *dl_out_name(const dl_out *out);  /* final path or "<stdout>" */
uint64_t dl_out_bytes(const dl_out *out);    /* uncompressed bytes written */

/* "PREFIX-00003-of-00016.msgpack.zst" (i 0-based); n <= 99999 */
void dl_shard_name(char *dst, size_t dstlen, const char *prefix, int i, int n);

/* Paths: dst holds DL_PATH_MAX bytes; a result that does not fit is a usage error. */
#define DL_PATH_MAX 4096
int dl_path_join(char *dst, const char *dir, const char *name, char *err, size_t errlen);
int dl_is_dir(const char *path);
int dl_is_file(const char *path);   /* a regular file (after symlinks) */
/* Copy a small file (tokenizer.json, config.json) through dl_out: temp + rename. */
int dl_copy_file(const char *src, const char *dst, char *err, size_t errlen);

/* Read a whole file (zstd handled) into a NUL-terminated malloc'ed buffer. */
int dl_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen);

#endif
