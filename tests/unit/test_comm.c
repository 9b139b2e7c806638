/* test_comm.c — the single-process dl_comm (share/model/dl_comm.h): rank 0
 * of 1, all-reduce / broadcast leave buffers as they are, barrier returns,
 * a broadcast from a rank that does not exist is a usage error.
 */
#include <string.h>
#include "dl_base.h"
#include "dl_comm.h"
#include "dl_test.h"

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
    dl_comm_free(c);
    dl_comm_free(NULL);
    return dl_test_end();
}
