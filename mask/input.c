/* mask/input.c — dllm-mask's input side: the --shard slice of the input, the
 * stdin spool for --copies, and adding a key to a header's extra map.
 *
 * Slicing (files): slice I of N is the contiguous range of GLOBAL record
 * indices [I*n/N, (I+1)*n/N), n counted with dl_reader_count, so the outputs
 * of --shard 0/N .. N-1/N concatenated equal one run record for record.
 * stdin cannot be counted: an explicit --shard with stdin is a usage error;
 * a slice that only came from SLURM_ARRAY_TASK_ID is ignored on stdin (the
 * upstream stage of the pipeline already took its slice).
 *
 * Spool: with --copies K > 1 the input is read K times; stdin is copied byte
 * for byte (compressed or not) into $TMPDIR/dllm-mask.XXXXXX, removed on exit
 * and on SIGINT/SIGTERM, and messages name "<stdin>" instead of that file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_log.h"
#include "mask.h"

int mask_input_open(mask_input *in, char **paths, int n, int copies, char *err, size_t errlen) {
    memset(in, 0, sizeof *in);
    in->tmp_slot = -1;
    int is_stdin = n == 0 || (n == 1 && !strcmp(paths[0], "-"));
    for (int i = 0; i < n && !is_stdin; i++)
        if (!strcmp(paths[i], "-"))
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "\"-\" (stdin) must be the only input");
    in->is_stdin = is_stdin;
    if (!is_stdin || copies <= 1) return dl_reader_open(&in->r, paths, n, err, errlen);

    const char *dir = getenv("TMPDIR");
    snprintf(in->spool, sizeof in->spool, "%s/dllm-mask.XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(in->spool);
    if (fd < 0) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", in->spool, strerror(errno));
    in->tmp_slot = dl_tmp_register(in->spool);
    static char buf[1 << 20];
    for (;;) {
        ssize_t got = read(0, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) { close(fd); return dl_seterr(err, errlen, -DL_EXIT_IO, "<stdin>: %s", strerror(errno)); }
        if (got == 0) break;
        for (ssize_t off = 0; off < got;) {
            ssize_t w = write(fd, buf + off, (size_t)(got - off));
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) {
                int e = errno;
                close(fd);
                return dl_seterr(err, errlen, -DL_EXIT_IO, "%s (spool of stdin): %s", in->spool, strerror(e));
            }
            off += w;
        }
    }
    if (close(fd)) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", in->spool, strerror(errno));
    char *p[1] = { in->spool };
    return dl_reader_open(&in->r, p, 1, err, errlen);
}

void mask_input_close(mask_input *in) {
    if (in->r) dl_reader_close(in->r);
    in->r = NULL;
    if (in->spool[0]) {
        unlink(in->spool);
        if (in->tmp_slot >= 0) dl_tmp_unregister(in->tmp_slot);
        in->spool[0] = 0;
    }
}

void mask_input_fix_msg(const mask_input *in, char *msg, size_t len) {
    if (!in->spool[0]) return;
    size_t sl = strlen(in->spool);
    char *p = strstr(msg, in->spool);
    if (!p) return;
    const char *rep = "<stdin>";
    size_t rl = strlen(rep), tail = strlen(p + sl);
    if ((size_t)(p - msg) + rl + tail + 1 > len) return;
    memmove(p + rl, p + sl, tail + 1);
    memcpy(p, rep, rl);
}
