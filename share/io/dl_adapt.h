/* dl_adapt.h — how many threads to use while other processes compete for
 * the cores (issue 15, "Shared cores").
 *
 * The signal: Linux keeps, per thread, the time it ran and the time it sat
 * on a run queue ready to run (/proc/thread-self/schedstat, fields 1 and
 * 2).  The caller is the program's main thread, which runs all the time
 * (the serial parts, and its share of every parallel region): on cores we
 * have to ourselves it never waits; with a neighbour it waits about as long
 * as the neighbour runs.  So over an interval: waited = wait / (run + wait)
 * of the calling thread.  Not the OpenMP workers': they sleep between
 * parallel regions, and each wake-up counts as run-queue wait even on an
 * idle machine (summing all threads read 20-40% "waited" on a quiet
 * machine and cost sampling a quarter of its speed).
 * Processes on cores we are not allowed on (a cluster job's affinity mask)
 * never make us wait, so they do not count, unlike the load average.
 * A wait counts only when other processes used at least DL_ADAPT_OTHERS of
 * a core over the interval (/proc/stat's busy time minus our own CPU
 * time): on a quiet 2-vCPU VM the main thread's wake-up latency after the
 * many tiny barriers of a dim-64 model passed 15% on its own, and 5 of 6
 * quiet sampling runs dropped to one thread (381 against 625 tokens/s).
 *
 * The policy (dl_adapt_decide, a pure function so tests can feed it):
 *  - every DL_ADAPT_INTERVAL seconds of wall time, look at the interval;
 *  - waited > DL_ADAPT_WAIT, while others used >= DL_ADAPT_OTHERS cores,
 *    with more than one thread: one thread fewer
 *    (with N threads on a busy machine, barriers wait for the slowest,
 *    so fewer threads that each keep a core go faster);
 *  - below the maximum, every `backoff` seconds (DL_ADAPT_PROBE, doubling
 *    up to DL_ADAPT_PROBE_MAX while probes keep finding the neighbour)
 *    go back to the maximum for one interval to see whether the
 *    neighbour has left (one thread alone cannot tell: it never waits
 *    when a core is free).
 * Results do not depend on it: the callers (share/model's forward passes)
 * only change the CPU thread count of ops whose results are independent
 * of it (rows, heads or GEMM panels are split among threads, never a sum).
 *
 * Off (dl_adapt_init) when: max <= 1; the user set OMP_DYNAMIC=false (the
 * OpenMP way to say "use exactly my thread count"); DLLM_ADAPT_THREADS=0;
 * or the kernel has no schedstat.
 * Does not: pick more threads than asked, move threads between cores,
 * adapt training (its reductions are not shown to be thread-count free).
 */
#ifndef DL_ADAPT_H
#define DL_ADAPT_H
#include <stdint.h>

#define DL_ADAPT_INTERVAL 0.1   /* seconds between looks */
#define DL_ADAPT_WAIT 0.15      /* waited fraction that counts as contention */
#define DL_ADAPT_PROBE 1.0      /* first back-off before trying the maximum again, seconds */
#define DL_ADAPT_PROBE_MAX 8.0
#define DL_ADAPT_OTHERS 0.25    /* other processes' CPU, in cores, below which a wait is not contention */
#define DL_ADAPT_OTHERS_UNKNOWN 1e9   /* `others` when /proc/stat cannot be read: every wait counts */

typedef struct {
    int on;
    int max, cur;             /* threads asked for; threads in use */
    double t0;                /* the interval's start (dl_now) */
    uint64_t run0, wait0;     /* the calling thread's totals then, ns */
    double probe_at, backoff; /* when to try max again; the current back-off */
    int probing;              /* this interval runs max threads as a probe */
    int drops, probes;        /* how often it stepped down / probed (for the summary line) */
    int have_cpu;             /* /proc/stat readable: machine0 / self0 valid */
    uint64_t machine0, self0; /* the machine's busy CPU time and ours then, ns */
} dl_adapt;

/* Run and run-queue wait of the calling thread, ns.  0, or -1 when
 * /proc/thread-self/schedstat cannot be read. */
int dl_adapt_sched_totals(uint64_t *run_ns, uint64_t *wait_ns);

void dl_adapt_init(dl_adapt *a, int max_threads);

/* The policy on one interval: `now` (seconds), the interval's run and wait
 * (ns, of the calling thread), and the CPU other processes used over it
 * (in cores; DL_ADAPT_OTHERS_UNKNOWN when not known).  Updates a and
 * returns the threads for what follows. */
int dl_adapt_decide(dl_adapt *a, double now, uint64_t run_ns, uint64_t wait_ns, double others);

/* Call between steps, from the thread that called dl_adapt_init: returns
 * the threads for the next step (a->max when off).  Reads schedstat only
 * once an interval has passed. */
int dl_adapt_step(dl_adapt *a);

#endif
