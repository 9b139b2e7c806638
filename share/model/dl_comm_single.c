/* dl_comm_single.c — the single-process dl_comm table: rank 0 of 1; the
 * collectives leave every buffer as it is (the sum over one rank is the
 * buffer; dl_comm.c does not even call them for size 1).
 * Does not: talk to anything.
 */
#include "dl_base.h"
#include "dl_comm_internal.h"

static int s_init(dl_comm *c, char *err, size_t errlen) {
    (void)err; (void)errlen;
    c->rank = 0; c->size = 1; c->local_rank = 0;
    return 0;
}
static void s_free(dl_comm *c) { (void)c; }
static int s_f32(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    (void)c; (void)x; (void)n; (void)err; (void)errlen;
    return 0;
}
static int s_f64(dl_comm *c, double *x, size_t n, char *err, size_t errlen) {
    (void)c; (void)x; (void)n; (void)err; (void)errlen;
    return 0;
}
static int s_gather(dl_comm *c, float *x, const size_t *off, char *err, size_t errlen) {
    (void)c; (void)x; (void)off; (void)err; (void)errlen;
    return 0;
}
static int s_gather_root(dl_comm *c, const float *mine, float *x, const size_t *off, int root, char *err,
                         size_t errlen) {
    (void)c; (void)mine; (void)x; (void)off; (void)root; (void)err; (void)errlen;
    return 0;
}
static int s_wait(dl_comm *c, int block, char *err, size_t errlen) {
    (void)c; (void)block; (void)err; (void)errlen;
    return 0;
}
static int s_bcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    (void)c; (void)buf; (void)bytes; (void)root; (void)err; (void)errlen;
    return 0;
}
static int s_barrier(dl_comm *c, char *err, size_t errlen) {
    (void)c; (void)err; (void)errlen;
    return 0;
}

const dl_comm_ops dl_comm_single_ops = { "single", s_init, s_free, s_f32, s_f64, s_gather, s_gather_root, s_f32, s_wait,
                                         s_bcast, s_barrier };
