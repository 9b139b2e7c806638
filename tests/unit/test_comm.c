/* test_comm.c — the single-process dl_comm (share/model/dl_comm.h): rank 0
 * of 1, all-reduce / broadcast leave buffers as they are, barrier returns,
 * a broadcast from a rank that does not exist is a usage error; the
 * non-blocking all-reduce and the gather to a root on one rank.  And the
 * NCCL id file (dl_comm_idfile.c, through dl_comm_internal.h): a rank
 * whose rank 0 never writes the file gives up after the timeout with
 * -DL_EXIT_DEVICE and a message naming the file, a stale file (older than
 * the wait allows) is not read, a fresh one is.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utime.h>
#include "dl_base.h"
#include "dl_comm.h"
#include "dl_comm_internal.h"
#include "dl_test.h"

static void test_idfile(void) {
    char dir[] = "/tmp/dllm-test-comm.XXXXXX", err[512], path[1024];
    if (!mkdtemp(dir)) { DL_CHECK(0, "mkdtemp"); return; }
    char run[64];
    snprintf(run, sizeof run, "test-comm-%ld", (long)getpid());
    setenv("DLLM_COMM_DIR", dir, 1);
    setenv("DLLM_RUN_ID", run, 1);
    unsigned char id[16], got[16];
    for (int i = 0; i < 16; i++) id[i] = (unsigned char)(7 * i + 1);
    /* rank 0 never writes: rank 1 waits 0.5 s and gives up */
    double t0 = dl_comm_now();
    int rc = dl_comm_idfile_exchange(1, got, sizeof got, 0.5, err, sizeof err);
    double dt = dl_comm_now() - t0;
    DL_CHECK(rc == -DL_EXIT_DEVICE, "no rank 0: -DL_EXIT_DEVICE (got %d)", rc);
    DL_CHECK(dt >= 0.5 && dt < 5, "no rank 0: gives up after the timeout (%.2f s)", dt);
    DL_CHECK(strstr(err, "waited") && strstr(err, run), "no rank 0: the message names the wait and the file: %s", err);
    /* a file of this key but from long ago: not read */
    DL_CHECK(dl_comm_idfile_exchange(0, id, sizeof id, 0.5, err, sizeof err) == 0, "rank 0 writes the id file");
    DL_CHECK(dl_comm_idfile_path(path, sizeof path, err, sizeof err) == 0, "the id file's path");
    struct utimbuf old = { 1000000, 1000000 };
    DL_CHECK(utime(path, &old) == 0, "age the file");
    rc = dl_comm_idfile_exchange(1, got, sizeof got, 0.5, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DEVICE, "a stale file is not read (got %d)", rc);
    /* a fresh one is */
    DL_CHECK(dl_comm_idfile_exchange(0, id, sizeof id, 0.5, err, sizeof err) == 0, "rank 0 writes it again");
    memset(got, 0, sizeof got);
    rc = dl_comm_idfile_exchange(1, got, sizeof got, 0.5, err, sizeof err);
    DL_CHECK(rc == 0 && !memcmp(got, id, sizeof id), "rank 1 reads rank 0's id (rc %d)", rc);
    remove(path);
    rmdir(dir);
    unsetenv("DLLM_RUN_ID");
    unsetenv("DLLM_COMM_DIR");
}

int main(void) {
    char err[256];
    dl_comm *c = NULL;
    int rc = dl_comm_init(&c, err, sizeof err);
    DL_CHECK(rc == 0 && c, "dl_comm_init");
    if (rc) return dl_test_end();
    DL_CHECK(dl_comm_rank(c) == 0 && dl_comm_size(c) == 1, "one process: rank 0 of 1");
    float x[5] = { 1, -2, 3.5f, 0, 1e30f }, y[5];
    memcpy(y, x, sizeof x);
    DL_CHECK(dl_comm_allreduce_sum(c, x, 5, err, sizeof err) == 0 && !memcmp(x, y, sizeof x),
             "all-reduce sum over one rank leaves the buffer");
    DL_CHECK(dl_comm_broadcast(c, x, sizeof x, 0, err, sizeof err) == 0 && !memcmp(x, y, sizeof x),
             "broadcast from rank 0 leaves the buffer");
    DL_CHECK(dl_comm_broadcast(c, x, sizeof x, 1, err, sizeof err) == -DL_EXIT_USAGE, "broadcast from rank 1: usage");
    DL_CHECK(dl_comm_barrier(c, err, sizeof err) == 0, "barrier");
    DL_CHECK(dl_comm_iallreduce_sum(c, x, 5, err, sizeof err) == 0 && dl_comm_test(c, err, sizeof err) == 0 &&
             dl_comm_wait_all(c, err, sizeof err) == 0 && !memcmp(x, y, sizeof x),
             "non-blocking all-reduce over one rank leaves the buffer");
    size_t off[2] = { 1, 4 };
    DL_CHECK(dl_comm_gather_ranges(c, x + 1, x, off, 0, err, sizeof err) == 0 && !memcmp(x, y, sizeof x),
             "gather to rank 0 of one rank, in place");
    DL_CHECK(dl_comm_gather_ranges(c, y, x, off, 0, err, sizeof err) == -DL_EXIT_USAGE,
             "gather on one rank from elsewhere: usage");
    DL_CHECK(dl_comm_gather_ranges(c, x + 1, x, off, 1, err, sizeof err) == -DL_EXIT_USAGE, "gather to rank 1: usage");
    dl_comm_free(c);
    dl_comm_free(NULL);
    test_idfile();
    return dl_test_end();
}
