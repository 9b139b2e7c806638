/* dl_comm_poll.c — the clock and the pause the dl_comm implementations
 * use while they poll a non-blocking operation against a timeout (its own
 * file: dl_comm.c dispatches to the implementations, which call these, so
 * the calls between files stay acyclic).
 * Does not: know any transport.
 */
#include <time.h>
#include "dl_comm_internal.h"

void dl_comm_poll_pause(unsigned *iter) {
    if (++*iter < 64) return;
    struct timespec ts = { 0, *iter < 1024 ? 20000 : 1000000 };   /* 20 us, then 1 ms */
    nanosleep(&ts, NULL);
}

double dl_comm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
