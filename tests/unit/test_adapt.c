/* test_adapt.c — the shared-cores thread policy (share/io/dl_adapt.h) on
 * made-up intervals, and the switches that turn it off.
 *  - quiet intervals (no run-queue wait) keep the maximum;
 *  - a wait while other processes used under DL_ADAPT_OTHERS of a core is
 *    our own threads' wake-up latency: no drop (unknown: it counts);
 *  - a contended interval (waited > DL_ADAPT_WAIT) drops one thread, down
 *    to 1 and no further;
 *  - below the maximum, nothing happens before the back-off has passed;
 *    then one probe interval at the maximum: contended -> back down with
 *    the back-off doubled (capped at DL_ADAPT_PROBE_MAX), quiet -> stay at
 *    the maximum with the back-off reset;
 *  - off with max 1, OMP_DYNAMIC=false, DLLM_ADAPT_THREADS=0 (dl_adapt_step
 *    then always answers max);
 *  - dl_adapt_sched_totals reads this process' threads (run time grows
 *    while we spin).
 */
#include <stdlib.h>
#include "dl_test.h"
#include "dl_adapt.h"

static const uint64_t MS = 1000000;   /* ns */
static const double NB = 1.0;          /* a neighbour's CPU over the interval: one core */

static void test_policy(void) {
    dl_adapt a;
    dl_adapt_init(&a, 4);
    a.on = 1;   /* decide() is pure; on only matters to dl_adapt_step */
    double t = 0;
    int n = dl_adapt_decide(&a, t += 0.1, 200 * MS, 0, NB);
    DL_CHECK(n == 4, "quiet interval keeps 4 threads (%d)", n);
    n = dl_adapt_decide(&a, t += 0.1, 150 * MS, 50 * MS, NB);   /* 25% waited */
    DL_CHECK(n == 3 && a.drops == 1, "25%% waited drops to 3 (%d)", n);
    n = dl_adapt_decide(&a, t += 0.1, 190 * MS, 10 * MS, NB);   /* 5%: not contended */
    DL_CHECK(n == 3, "5%% waited, back-off not passed: stays at 3 (%d)", n);
    dl_adapt_decide(&a, t += 0.1, 100 * MS, 100 * MS, NB);
    n = dl_adapt_decide(&a, t += 0.1, 100 * MS, 100 * MS, NB);
    DL_CHECK(n == 1, "contended twice more: 1 thread (%d)", n);
    n = dl_adapt_decide(&a, t += 0.1, 100 * MS, 100 * MS, NB);
    DL_CHECK(n == 1, "never below 1 (%d)", n);
    n = dl_adapt_decide(&a, t += DL_ADAPT_PROBE, 100 * MS, 0, NB);
    DL_CHECK(n == 4 && a.probing && a.probes == 1, "after the back-off: a probe at the maximum (%d)", n);
    n = dl_adapt_decide(&a, t += 0.1, 300 * MS, 100 * MS, NB);
    DL_CHECK(n == 3 && a.backoff == 2 * DL_ADAPT_PROBE, "probe contended: back to 3, back-off doubled (%d, %.1f)", n,
             a.backoff);
    n = dl_adapt_decide(&a, t += 0.1, 100 * MS, 0, NB);
    DL_CHECK(n == 3, "before the doubled back-off: no probe (%d)", n);
    for (int i = 0; i < 10; i++) {   /* keep probing into a busy machine */
        dl_adapt_decide(&a, t += DL_ADAPT_PROBE_MAX, 100 * MS, 0, NB);
        dl_adapt_decide(&a, t += 0.1, 100 * MS, 100 * MS, NB);
    }
    DL_CHECK(a.backoff == DL_ADAPT_PROBE_MAX, "the back-off stops at %.0f s (%.1f)", DL_ADAPT_PROBE_MAX, a.backoff);
    n = dl_adapt_decide(&a, t += DL_ADAPT_PROBE_MAX, 100 * MS, 0, NB);
    n = dl_adapt_decide(&a, t += 0.1, 400 * MS, 0, NB);
    DL_CHECK(n == 4 && a.backoff == DL_ADAPT_PROBE, "quiet probe: stays at 4, back-off reset (%d, %.1f)", n, a.backoff);
    int drops = a.drops;
    n = dl_adapt_decide(&a, t += 0.1, 150 * MS, 50 * MS, 0.1);
    DL_CHECK(n == 4 && a.drops == drops, "25%% waited while others used 0.1 core (our own wake-ups): stays at 4 (%d)", n);
    n = dl_adapt_decide(&a, t += 0.1, 150 * MS, 50 * MS, DL_ADAPT_OTHERS_UNKNOWN);
    DL_CHECK(n == 3, "25%% waited, others unknown (no /proc/stat): drops to 3 (%d)", n);
}

static void test_switches(void) {
    dl_adapt a;
    dl_adapt_init(&a, 1);
    DL_CHECK(!a.on && dl_adapt_step(&a) == 1, "off with one thread");
    setenv("OMP_DYNAMIC", "false", 1);
    dl_adapt_init(&a, 2);
    DL_CHECK(!a.on && dl_adapt_step(&a) == 2, "off under OMP_DYNAMIC=false");
    unsetenv("OMP_DYNAMIC");
    setenv("DLLM_ADAPT_THREADS", "0", 1);
    dl_adapt_init(&a, 2);
    DL_CHECK(!a.on && dl_adapt_step(&a) == 2, "off under DLLM_ADAPT_THREADS=0");
    unsetenv("DLLM_ADAPT_THREADS");
    dl_adapt_init(&a, 2);
    uint64_t r0, w0, r1, w1;
    int rc0 = dl_adapt_sched_totals(&r0, &w0);
    volatile double x = 0;
    for (long i = 0; i < 20000000; i++) x += (double)i;
    int rc1 = dl_adapt_sched_totals(&r1, &w1);
    if (rc0 || rc1) {
        printf("skip - schedstat: /proc/thread-self/schedstat not readable here\n");
        DL_CHECK(!a.on, "without schedstat adaptation is off");
    } else {
        DL_CHECK(a.on, "on by default with 2 threads");
        DL_CHECK(r1 > r0, "our run time grows while we compute (%llu -> %llu ns)", (unsigned long long)r0,
                 (unsigned long long)r1);
    }
}

int main(void) {
    test_policy();
    test_switches();
    return dl_test_end();
}
