/* dl_open.c — dl_open_input / dl_open_output (see dl_open.h). */
#include "dl_open.h"
#include <string.h>

int dl_open_input(dl_reader **r, char *const *paths, int n, unsigned kinds, char *err, size_t errlen) {
    int rc;
    *r = NULL;
    if ((rc = dl_reader_open(r, paths, n, err, errlen)) ||
        (rc = dl_reader_peek_header(*r, err, errlen)) ||
        (rc = dl_reader_expect(*r, kinds, err, errlen))) {
        if (*r) dl_reader_close(*r);
        *r = NULL;
    }
    return rc;
}

int dl_open_slice(dl_reader *r, char *const *paths, int n, const dl_common *c, uint64_t *lo, uint64_t *hi,
                  char *err, size_t errlen) {
    int is_stdin = n == 0 || (n == 1 && !strcmp(paths[0], "-"));
    return dl_reader_slice(r, is_stdin, c->shard_i, c->shard_n, c->shard_given, lo, hi, err, errlen);
}

int dl_open_output(dl_outset **os, const char *path, int n_shards, const dl_common *c,
                   const dl_header *h, char *err, size_t errlen) {
    dl_out_opts oo;
    dl_common_out_opts(c, &oo);
    int rc = dl_outset_open(os, path, n_shards, &oo, err, errlen);
    if (rc) { *os = NULL; return rc; }
    if (dl_outset_header(*os, h)) {
        /* the writer that failed holds the reason (disk full, closed pipe) */
        rc = 0;
        for (int i = 0; i < dl_outset_n(*os) && !rc; i++) rc = dl_writer_error(dl_outset_writer(*os, i), err, errlen);
        if (!rc) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "cannot write the output header");
        dl_outset_abort(*os);
        *os = NULL;
        return -DL_EXIT_IO;   /* as every program reported it before: an I/O error */
    }
    return 0;
}
