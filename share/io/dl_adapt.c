/* dl_adapt.c — thread count under contention; the rules are in dl_adapt.h. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "dl_adapt.h"
#include "dl_log.h"

int dl_adapt_sched_totals(uint64_t *run_ns, uint64_t *wait_ns) {
    *run_ns = *wait_ns = 0;
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f) return -1;
    unsigned long long r, w;
    int ok = fscanf(f, "%llu %llu", &r, &w) == 2;
    fclose(f);
    if (!ok) return -1;
    *run_ns = r;
    *wait_ns = w;
    return 0;
}

/* CPU time, ns: the whole machine's busy time (/proc/stat's first line:
 * user, nice, system, irq, softirq; not idle, iowait or a hypervisor's
 * steal) and this process's own.  -1 when /proc/stat cannot be read. */
static int cpu_totals(uint64_t *machine_ns, uint64_t *self_ns) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    unsigned long long u, n, s, idle, io, irq, sirq;
    int ok = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu", &u, &n, &s, &idle, &io, &irq, &sirq) == 7;
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    struct timespec ts;
    if (!ok || hz <= 0 || clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)) return -1;
    *machine_ns = (uint64_t)(u + n + s + irq + sirq) * (1000000000ull / (uint64_t)hz);
    *self_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    return 0;
}

void dl_adapt_init(dl_adapt *a, int max_threads) {
    memset(a, 0, sizeof *a);
    a->max = a->cur = max_threads > 0 ? max_threads : 1;
    a->backoff = DL_ADAPT_PROBE;
    const char *dyn = getenv("OMP_DYNAMIC"), *opt = getenv("DLLM_ADAPT_THREADS");
    if (a->max <= 1) return;
    if (dyn && (!strcmp(dyn, "false") || !strcmp(dyn, "FALSE") || !strcmp(dyn, "0"))) return;
    if (opt && !strcmp(opt, "0")) return;
    if (dl_adapt_sched_totals(&a->run0, &a->wait0)) return;
    a->have_cpu = cpu_totals(&a->machine0, &a->self0) == 0;
    a->on = 1;
    a->t0 = dl_now();
}

int dl_adapt_decide(dl_adapt *a, double now, uint64_t run_ns, uint64_t wait_ns, double others) {
    double busy = (double)run_ns + (double)wait_ns;
    /* without a neighbour's CPU time the wait was our own threads' wake-up latency */
    int contended = others >= DL_ADAPT_OTHERS && busy > 0 && (double)wait_ns / busy > DL_ADAPT_WAIT;
    if (a->probing) {   /* the probe's answer: stay at max, or back down and wait longer */
        a->probing = 0;
        if (contended) {
            a->cur = a->max - 1;
            a->backoff = a->backoff * 2 < DL_ADAPT_PROBE_MAX ? a->backoff * 2 : DL_ADAPT_PROBE_MAX;
            a->probe_at = now + a->backoff;
        } else {
            a->backoff = DL_ADAPT_PROBE;
        }
    } else if (contended && a->cur > 1) {
        a->cur--;
        a->drops++;
        a->probe_at = now + a->backoff;
    } else if (a->cur < a->max && now >= a->probe_at) {
        a->cur = a->max;
        a->probing = 1;
        a->probes++;
    }
    return a->cur;
}

int dl_adapt_step(dl_adapt *a) {
    if (!a->on) return a->max;
    double now = dl_now();
    if (now - a->t0 < DL_ADAPT_INTERVAL) return a->cur;
    uint64_t r, w, mach = 0, self = 0;
    if (dl_adapt_sched_totals(&r, &w)) return a->cur;
    double others = DL_ADAPT_OTHERS_UNKNOWN;
    if (a->have_cpu && cpu_totals(&mach, &self) == 0) {
        others = ((double)(int64_t)(mach - a->machine0) - (double)(int64_t)(self - a->self0)) / ((now - a->t0) * 1e9);
        a->machine0 = mach;
        a->self0 = self;
    }
    int n = dl_adapt_decide(a, now, r - a->run0, w - a->wait0, others);
    a->t0 = now;
    a->run0 = r;
    a->wait0 = w;
    return n;
}
