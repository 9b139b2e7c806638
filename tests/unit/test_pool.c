/* test_pool.c — the CPU backend's thread pool (kernels/cpu/pool.c).
 *
 * 1. Every chunk runs exactly once, on a thread tid < nthreads, for
 *    nthreads 1 .. 8 and nchunks 1 .. 1000; cpu_par_range covers [0, n)
 *    exactly once in ranges.
 * 2. 20,000 jobs back to back, every 500th after a pause long enough for
 *    the workers to fall asleep (the futex path): no chunk lost or run
 *    twice, and the workers took part.
 * 2b. Jobs whose thread count shrinks (8, 2, 2, ...: a worker late from
 *    the 8-thread job must not claim chunks of a later 2-thread one): 60,000
 *    jobs, every chunk once and every tid below the job's own nthreads.
 * 3. The point of the pool: with the workers held (cpu_pool_hold, as if
 *    the OS had descheduled them) a 2-thread job still completes, every
 *    chunk on the caller, instead of waiting for them.
 * 4. A chunk that calls back in, and a second host thread calling at the
 *    same time, run their loops serially on their own thread.
 * 5. A forked child starts its own workers (pool_after_fork).
 * 6. The spin: 20 us by default, 0 under OMP_WAIT_POLICY=passive, a second
 *    under active, DLLM_POOL_SPIN_US over both (this binary re-run with
 *    `--spin`: the settings are read once per process).  DLLM_POOL=openmp:
 *    tests/cli/shared.sh runs the programs under it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "dl_test.h"
#include "kernels.h"
#include "kbase.h"
#include "cpu/cpu.h"

#define MAXC 1000

typedef struct {
    _Atomic int runs[MAXC];
    _Atomic int by_worker;   /* chunks run by tid > 0 */
    _Atomic int bad_tid;
    int nthreads;
    int spin_ns;             /* work per chunk */
} count_job;

static void spin_for(long ns) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec) < ns);
}

static void count_chunk(void *arg, long c, int tid) {
    count_job *j = arg;
    atomic_fetch_add(&j->runs[c], 1);
    if (tid) atomic_fetch_add(&j->by_worker, 1);
    if (tid < 0 || tid >= j->nthreads) atomic_fetch_add(&j->bad_tid, 1);
    if (j->spin_ns) spin_for(j->spin_ns);
}

static int once_each(count_job *j, long n) {
    for (long c = 0; c < n; c++)
        if (atomic_load(&j->runs[c]) != 1) return 0;
    return 1;
}

static void reset(count_job *j, int nthreads, int spin_ns) {
    memset(j, 0, sizeof *j);
    j->nthreads = nthreads;
    j->spin_ns = spin_ns;
}

static void test_once_each(void) {
    static count_job j;
    const int nts[] = { 1, 2, 3, 4, 8 };
    const long ns[] = { 1, 2, 3, 7, 64, 1000 };
    int bad = 0, cases = 0;
    for (size_t a = 0; a < sizeof nts / sizeof *nts; a++)
        for (size_t b = 0; b < sizeof ns / sizeof *ns; b++) {
            reset(&j, nts[a], 0);
            cpu_pool_run(nts[a], ns[b], count_chunk, &j);
            bad += !once_each(&j, ns[b]) || atomic_load(&j.bad_tid);
            cases++;
        }
    DL_CHECK(!bad, "every chunk once, on a thread below nthreads (%d cases, %d bad)", cases, bad);
}

typedef struct {
    _Atomic int hits[MAXC];
    _Atomic int bad;
} range_job;
static void range_fn(void *arg, long lo, long hi, int tid) {
    range_job *r = arg;
    if (lo >= hi || lo < 0 || hi > MAXC) atomic_fetch_add(&r->bad, 1);
    for (long i = lo; i < hi && i < MAXC; i++) atomic_fetch_add(&r->hits[i], 1);
    (void)tid;
}
static void test_ranges(dl_dev *d) {
    static range_job r;
    const long ns[] = { 1, 5, 999, 1000 };
    const size_t works[] = { 1, 100000, 10000000 };
    int bad = 0;
    for (size_t a = 0; a < 4; a++)
        for (size_t b = 0; b < 3; b++) {
            memset(&r, 0, sizeof r);
            cpu_par_range(d, ns[a], works[b], 16384, range_fn, &r);
            for (long i = 0; i < ns[a]; i++) bad += atomic_load(&r.hits[i]) != 1;
            bad += atomic_load(&r.bad);
        }
    DL_CHECK(!bad, "cpu_par_range covers [0, n) once (%d bad)", bad);
}

static void test_many_jobs(void) {
    static count_job j;
    int bad = 0, by_worker = 0;
    for (int k = 0; k < 20000; k++) {
        if (k % 500 == 0) usleep(2000);   /* the workers go to sleep */
        long n = 1 + k % 17;
        reset(&j, 2, 2000);
        cpu_pool_run(2, n, count_chunk, &j);
        bad += !once_each(&j, n) || atomic_load(&j.bad_tid);
        by_worker += atomic_load(&j.by_worker);
    }
    DL_CHECK(!bad, "20000 jobs back to back, with sleeps: every chunk once (%d bad)", bad);
    DL_CHECK(by_worker > 0, "the worker took part (%d chunks)", by_worker);
}

static void test_shrinking(void) {
    static count_job js[3];
    int bad = 0;
    for (int k = 0; k < 60000; k++) {
        int m = k % 3, nt = m == 0 ? 8 : 2;
        long n = m == 0 ? 8 : m == 1 ? 2 : 1000;
        reset(&js[m], nt, 0);
        cpu_pool_run(nt, n, count_chunk, &js[m]);
        bad += !once_each(&js[m], n) || atomic_load(&js[m].bad_tid);
    }
    DL_CHECK(!bad, "thread counts 8, 2, 2, ... (60000 jobs): every chunk once, tids below each job's count (%d bad)", bad);
}

static void test_held(void) {
    static count_job j;
    cpu_pool_hold(1);
    reset(&j, 2, 1000);
    cpu_pool_run(2, 200, count_chunk, &j);
    DL_CHECK(once_each(&j, 200) && atomic_load(&j.by_worker) == 0,
             "workers held: the caller ran all 200 chunks itself (%d by workers)", atomic_load(&j.by_worker));
    cpu_pool_hold(0);
    int by_worker = 0;
    for (int k = 0; k < 200 && !by_worker; k++) {
        reset(&j, 2, 20000);
        cpu_pool_run(2, 8, count_chunk, &j);
        by_worker += atomic_load(&j.by_worker);
    }
    DL_CHECK(by_worker > 0, "released: the workers take chunks again");
}

/* a chunk that posts a job of its own */
typedef struct {
    count_job inner[4];
    _Atomic int bad;
} nest_job;
static void nest_chunk(void *arg, long c, int tid) {
    nest_job *n = arg;
    (void)tid;
    count_job *j = &n->inner[c];
    cpu_pool_run(2, 10, count_chunk, j);
    if (!once_each(j, 10)) atomic_fetch_add(&n->bad, 1);
}
static void *other_caller(void *arg) {
    count_job *j = arg;
    for (int k = 0; k < 2000; k++) {
        for (long c = 0; c < 50; c++) atomic_store(&j->runs[c], 0);
        cpu_pool_run(2, 50, count_chunk, j);
        if (!once_each(j, 50)) return (void *)1;
    }
    return NULL;
}
static void test_nested_and_concurrent(void) {
    static nest_job n;
    memset(&n, 0, sizeof n);
    for (int i = 0; i < 4; i++) reset(&n.inner[i], 2, 0);
    cpu_pool_run(2, 4, nest_chunk, &n);
    DL_CHECK(!atomic_load(&n.bad), "a chunk that runs a loop of its own: every inner chunk once");
    static count_job a, b;
    reset(&a, 2, 0);
    reset(&b, 2, 0);
    pthread_t th;
    int started = !pthread_create(&th, NULL, other_caller, &a);
    int bad = 0;
    for (int k = 0; k < 2000; k++) {
        for (long c = 0; c < 50; c++) atomic_store(&b.runs[c], 0);
        cpu_pool_run(2, 50, count_chunk, &b);
        bad += !once_each(&b, 50);
    }
    void *rv = (void *)1;
    if (started) pthread_join(th, &rv);
    DL_CHECK(started && !rv && !bad, "two host threads at once: every chunk once on both");
}

static void test_fork(void) {
    pid_t p = fork();
    if (p == 0) {
        static count_job j;
        int by_worker = 0;
        for (int k = 0; k < 200 && !by_worker; k++) {
            reset(&j, 2, 20000);
            cpu_pool_run(2, 8, count_chunk, &j);
            if (!once_each(&j, 8)) _exit(2);
            by_worker += atomic_load(&j.by_worker);
        }
        _exit(by_worker ? 0 : 3);
    }
    int st = 0;
    waitpid(p, &st, 0);
    DL_CHECK(p > 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "a forked child runs jobs with workers of its own (status %d)",
             WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

/* this test binary run again with ENV, printing its spin */
static long spin_with(const char *env) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "env -u OMP_WAIT_POLICY -u DLLM_POOL_SPIN_US %s /proc/%d/exe --spin", env, (int)getpid());
    FILE *f = popen(cmd, "r");
    long us = -1;
    if (f) {
        if (fscanf(f, "%ld", &us) != 1) us = -1;
        pclose(f);
    }
    return us;
}
static void test_spin_settings(void) {
    DL_CHECK(spin_with("") == 20, "spin: 20 us by default");
    DL_CHECK(spin_with("OMP_WAIT_POLICY=passive") == 0, "spin: OMP_WAIT_POLICY=passive sleeps at once");
    DL_CHECK(spin_with("OMP_WAIT_POLICY=ACTIVE") == 1000000, "spin: OMP_WAIT_POLICY=active spins a second");
    DL_CHECK(spin_with("OMP_WAIT_POLICY=passive DLLM_POOL_SPIN_US=7") == 7, "spin: DLLM_POOL_SPIN_US wins");
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--spin")) {
        printf("%ld\n", cpu_pool_spin_us());
        return 0;
    }
    unsetenv("DLLM_POOL");
    dl_dev *d = NULL;
    char err[256];
    if (dl_dev_open(&d, DL_DEV_CPU, 4, err, sizeof err)) {
        printf("not ok - open cpu device: %s\n", err);
        return 1;
    }
    test_once_each();
    test_ranges(d);
    test_many_jobs();
    test_shrinking();
    test_held();
    test_nested_and_concurrent();
    test_fork();
    test_spin_settings();
    dl_dev_close(d);
    return dl_test_end();
}
