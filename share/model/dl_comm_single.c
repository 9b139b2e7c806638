/* dl_comm_single.c — dl_comm.h for one process: rank 0 of 1; the
 * collectives leave every buffer as it is (the sum over one rank is the
 * buffer).  Does not: talk to anything.
 */
#include <stdlib.h>
#include "dl_base.h"
#include "dl_comm.h"

struct dl_comm { int rank, size; };

int dl_comm_init(dl_comm **c, char *err, size_t errlen) {
    *c = calloc(1, sizeof **c);
    if (!*c) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    (*c)->size = 1;
    return 0;
}

void dl_comm_free(dl_comm *c) { free(c); }
int dl_comm_rank(const dl_comm *c) { return c->rank; }
int dl_comm_size(const dl_comm *c) { return c->size; }

int dl_comm_allreduce_sum(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    (void)c; (void)x; (void)n; (void)err; (void)errlen;
    return 0;
}

int dl_comm_broadcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    (void)buf; (void)bytes; (void)err;
    if (root < 0 || root >= c->size) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "broadcast from rank %d of %d",
                                                      root, c->size);
    return 0;
}

int dl_comm_barrier(dl_comm *c, char *err, size_t errlen) {
    (void)c; (void)err; (void)errlen;
    return 0;
}
