/* dl_sync.h — fsync helpers for durable outputs (directories and parents).
 *
 * The durability rule every writer of dllm follows (dl_out for one file,
 * dl_ckpt_save for a checkpoint directory): write under a temporary name,
 * fsync the file (for a directory: every file in it, then the directory),
 * rename it over the final name, then fsync the directory that holds the
 * final name, so that after a crash or power loss the final name holds
 * either the old complete content or the new complete content.
 *
 * A filesystem that cannot fsync a directory (EINVAL: some FUSE and network
 * filesystems) counts as success; every other error is an I/O error.
 * Not here: the files themselves (dl_io.c fsyncs each output before close).
 */
#ifndef DL_SYNC_H
#define DL_SYNC_H
#include <stddef.h>

/* fsync the directory dir.  0, or -DL_EXIT_IO with err set. */
int dl_sync_dir(const char *dir, char *err, size_t errlen);
/* fsync the directory that holds path ("." for a bare name). */
int dl_sync_parent(const char *path, char *err, size_t errlen);

#endif
