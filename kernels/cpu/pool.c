/* kernels/cpu/pool.c — the CPU backend's threads: one process-wide pool in
 * which the calling thread never waits for a worker that has not started.
 *
 * Why not OpenMP's fork-join (issue 15, shared cores): an OpenMP region
 * ends at a barrier that every thread of the team must reach.  With a
 * neighbour on the cores, a worker is often descheduled for milliseconds,
 * and every region (a dim-64 training step has hundreds) then waits for it
 * even when the main thread could have done its part.  Here a loop is cut
 * into chunks that threads CLAIM.  Thread t owns the t-th contiguous block
 * of chunks (OpenMP's static schedule, so on a quiet machine each thread
 * touches the same rows op after op and they stay in its cache); a thread
 * that has finished its block takes the unclaimed chunks of the others.
 * The caller starts at once and waits only for chunks a worker has
 * actually claimed: a worker that wakes late finds its block taken.
 *
 * Results: which thread runs a chunk changes nothing (callers write
 * disjoint outputs per chunk, or per-thread scratch indexed by `tid`); how
 * a loop is chunked is decided by the caller from the shape and the thread
 * count, never by who turned up.  So results stay bit-identical for a
 * given thread count, as under OpenMP's static schedules.
 *
 * Protocol (lock-free).  Job g's fields go into slot[g & 1]; block t's
 * claim word is blk[t] = g << 32 | next chunk.
 *  - post: the caller writes the slot, resets `done`, stores blk[t] =
 *    (g, first chunk of block t) for t < nthreads and (g, none) for every
 *    other block any job has used (max_nt), then `post` = g.  The two
 *    slots let a slow worker still read job g while job g+1 is written.
 *  - claim: compare-and-swap blk[t] from (g, i) to (g, i + 1) while i is
 *    in block t.  The CAS also checks that the fields a worker read from
 *    slot[g & 1] are still job g's: the slot is rewritten only for job
 *    g+2, after EVERY blk[] has moved on to g+1 (a job with fewer threads
 *    than an earlier one still stamps the earlier one's blocks: without
 *    that, a worker late from an 8-thread job ran a later 2-thread job's
 *    chunks with tid 5, found by review, reproduced after ~390k jobs), and
 *    the fences order those writes and the worker's reads.
 *  - done: each finished chunk adds 1 (seq_cst: with caller_waiting, the
 *    futex's lost-wake-up check); the caller returns when done == nchunks,
 *    so no chunk of g runs when g+1 is posted.
 *  - sleep: a worker spins on `post` for POOL_SPIN_US microseconds (or
 *    DLLM_POOL_SPIN_US, or what OMP_WAIT_POLICY asks), then sleeps on it
 *    (futex); the caller wakes sleepers only when there are
 *    some.  The caller, waiting for a claimed chunk, spins as long and
 *    then sleeps too (a descheduled worker can take milliseconds, and a
 *    spinning caller on its core would keep it off).  Why 20 us: a
 *    spinning worker holds a core that the caller, descheduled next to a
 *    neighbour, needs; with 2 busy neighbours diffusion sampling of
 *    stories260K ran at 247 tokens/s with 100 us and 315 with 20, and the
 *    quiet figures did not move (docs/bench.md).
 * DLLM_POOL=openmp runs every loop as an OpenMP static-schedule parallel
 * for instead (the fork-join the backend had before; bench/80-shared.sh's
 * reference), with the same chunks, so with the same results.
 * Only one job at a time: a second caller (another host thread, or a chunk
 * calling back in) runs its loop on its own thread, serially.
 * fork(): the child has no workers; the pool starts again on first use.
 */
#include <limits.h>
#include <linux/futex.h>
#include <omp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "cpu.h"

#define POOL_MAX 256       /* the most threads a job may use, caller included */
#define POOL_SPIN_US 20    /* spin before sleeping (DLLM_POOL_SPIN_US): see below */

typedef struct {
    _Atomic(cpu_chunk_fn) fn;
    _Atomic(void *) ctx;
    _Atomic long nchunks;
    _Atomic int nthreads;   /* threads tid < nthreads own a block and may claim */
} pool_job;

static struct {
    _Alignas(64) _Atomic uint32_t post;    /* futex: the newest job's gen */
    _Atomic int sleepers;
    _Alignas(64) _Atomic uint32_t done;    /* futex: chunks finished of the current job */
    _Atomic int caller_waiting;
    _Alignas(64) _Atomic int busy;         /* a job is running */
    pool_job job[2];
    pthread_mutex_t grow;                  /* guards starting workers */
    _Atomic int nworkers;
    int max_nt;                            /* the most threads a job has had (blocks to stamp) */
    long spin_ns;
    int openmp;                            /* DLLM_POOL=openmp */
    _Atomic int hold;                      /* cpu_pool_hold: workers claim nothing */
    int atfork_set;
    struct { _Alignas(64) _Atomic uint64_t v; } blk[POOL_MAX];   /* gen << 32 | next chunk of block t */
} P = { .grow = PTHREAD_MUTEX_INITIALIZER };

static void futex_wait(_Atomic uint32_t *w, uint32_t val) {
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}
static void futex_wake(_Atomic uint32_t *w, int n) {
    syscall(SYS_futex, (uint32_t *)w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
}
static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
static long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000000000L + ts.tv_nsec;
}
/* true once spin_ns has passed since the first call with *t0 == 0 (reads
 * the clock every 64 calls) */
static int spun_out(long *t0, unsigned *k) {
    if (++*k & 63) return 0;
    long t = now_ns();
    if (!*t0) { *t0 = t; return 0; }
    return t - *t0 >= P.spin_ns;
}

#define NO_CHUNK 0xffffffffu   /* a block with nothing to claim */

/* the end of block b of job (n chunks, nt blocks) */
static inline long block_end(long n, int nt, int b) { return (long)((int64_t)n * (b + 1) / nt); }

/* Run chunks of job g (fields already read): block `tid` first, then the
 * others' leftovers. */
static void run_chunks(uint32_t g, cpu_chunk_fn fn, void *ctx, long n, int nt, int tid) {
    for (int k = 0; k < nt; k++) {
        int b = tid + k < nt ? tid + k : tid + k - nt;
        long end = block_end(n, nt, b);
        _Atomic uint64_t *w = &P.blk[b].v;
        uint64_t c = atomic_load_explicit(w, memory_order_acquire);
        for (;;) {
            if ((uint32_t)(c >> 32) != g) return;      /* job g is over */
            long i = (long)(uint32_t)c;
            if (i >= end) break;
            if (!atomic_compare_exchange_weak_explicit(w, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
                continue;
            fn(ctx, i, tid);
            uint32_t fin = atomic_fetch_add(&P.done, 1) + 1;
            if (fin == (uint32_t)n && atomic_load(&P.caller_waiting)) futex_wake(&P.done, 1);
            c = atomic_load_explicit(w, memory_order_acquire);
        }
    }
}

static void *worker(void *arg) {
    int tid = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&P.post);
    long t0 = 0;
    unsigned k = 0;
    for (;;) {
        uint32_t g = atomic_load_explicit(&P.post, memory_order_acquire);
        if (g != seen) {
            seen = g;
            pool_job *j = &P.job[g & 1];
            int nt = atomic_load_explicit(&j->nthreads, memory_order_relaxed);
            cpu_chunk_fn fn = atomic_load_explicit(&j->fn, memory_order_relaxed);
            void *ctx = atomic_load_explicit(&j->ctx, memory_order_relaxed);
            long n = atomic_load_explicit(&j->nchunks, memory_order_relaxed);
            atomic_thread_fence(memory_order_acquire);   /* the fields before the blk[] that validate them */
            if (tid < nt && !atomic_load_explicit(&P.hold, memory_order_relaxed)) run_chunks(g, fn, ctx, n, nt, tid);
            t0 = 0;
            continue;
        }
        if (!spun_out(&t0, &k)) { relax(); continue; }
        atomic_fetch_add(&P.sleepers, 1);
        if (atomic_load(&P.post) == seen) futex_wait(&P.post, seen);
        atomic_fetch_sub(&P.sleepers, 1);
        t0 = 0;
    }
    return NULL;
}

static void pool_after_fork(void) {   /* the child: no workers, no job */
    atomic_store(&P.nworkers, 0);
    atomic_store(&P.busy, 0);
    atomic_store(&P.sleepers, 0);
    atomic_store(&P.caller_waiting, 0);
    pthread_mutex_init(&P.grow, NULL);
}

/* Workers 1 .. want-1 exist (as many as could be started); returns how many
 * threads a job can have. */
static int pool_grow(int want) {
    if (want > POOL_MAX) want = POOL_MAX;
    int have = atomic_load_explicit(&P.nworkers, memory_order_acquire) + 1;
    if (have >= want) return want;
    pthread_mutex_lock(&P.grow);
    if (!P.atfork_set) P.atfork_set = !pthread_atfork(NULL, NULL, pool_after_fork);
    have = atomic_load(&P.nworkers) + 1;
    sigset_t all, old;
    sigfillset(&all);   /* asynchronous signals go to the program's own threads; faults stay deliverable */
    const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS };
    for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    for (; have < want; have++) {
        pthread_t th;
        if (pthread_create(&th, &at, worker, (void *)(intptr_t)have)) break;
        pthread_setname_np(th, "dllm-cpu");
        atomic_store_explicit(&P.nworkers, have, memory_order_release);
    }
    pthread_attr_destroy(&at);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_unlock(&P.grow);
    return have < want ? have : want;
}

/* The spin, read once: DLLM_POOL_SPIN_US (microseconds), else the user's
 * OMP_WAIT_POLICY as OpenMP defines it (passive: sleep at once; active:
 * keep spinning, here for a second), else POOL_SPIN_US.  And DLLM_POOL. */
static void pool_settings(void) {
    const char *s = getenv("DLLM_POOL_SPIN_US"), *w = getenv("OMP_WAIT_POLICY");
    long us = POOL_SPIN_US;
    if (s && *s) us = strtol(s, NULL, 10);
    else if (w && !strcasecmp(w, "passive")) us = 0;
    else if (w && !strcasecmp(w, "active")) us = 1000000;
    s = getenv("DLLM_POOL");
    P.openmp = s && !strcmp(s, "openmp");
    P.spin_ns = (us < 0 ? 0 : us) * 1000L;
}

static pthread_once_t settings_once = PTHREAD_ONCE_INIT;
static void post_and_run(int nthreads, long nchunks, cpu_chunk_fn fn, void *ctx);

void cpu_pool_hold(int on) { atomic_store(&P.hold, on); }

long cpu_pool_spin_us(void) {
    pthread_once(&settings_once, pool_settings);
    return P.spin_ns / 1000;
}

void cpu_pool_run(int nthreads, long nchunks, cpu_chunk_fn fn, void *ctx) {
    if (nchunks <= 0) return;
    if (nthreads > nchunks) nthreads = (int)nchunks;
    pthread_once(&settings_once, pool_settings);
    if (P.openmp && nthreads > 1) {   /* the fork-join reference twin */
#pragma omp parallel for schedule(static) num_threads(nthreads)
        for (long c = 0; c < nchunks; c++) fn(ctx, c, omp_get_thread_num());
        return;
    }
    int expect = 0;
    if (nthreads > 1 && nchunks <= (long)INT32_MAX && atomic_compare_exchange_strong(&P.busy, &expect, 1)) {
        nthreads = pool_grow(nthreads);
        if (nthreads > 1) post_and_run(nthreads, nchunks, fn, ctx);
        atomic_store_explicit(&P.busy, 0, memory_order_release);
        if (nthreads > 1) return;
    }
    for (long c = 0; c < nchunks; c++) fn(ctx, c, 0);   /* one thread, a nested or concurrent call */
}

/* Job g = post + 1 (the caller holds `busy`): post it, run chunks, wait for
 * the ones workers claimed. */
static void post_and_run(int nthreads, long nchunks, cpu_chunk_fn fn, void *ctx) {
    uint32_t g = atomic_load_explicit(&P.post, memory_order_relaxed) + 1;
    pool_job *j = &P.job[g & 1];
    if (nthreads > P.max_nt) P.max_nt = nthreads;
    atomic_thread_fence(memory_order_release);   /* job g-1's blk[] stamps before this slot's new fields */
    atomic_store_explicit(&j->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&j->ctx, ctx, memory_order_relaxed);
    atomic_store_explicit(&j->nchunks, nchunks, memory_order_relaxed);
    atomic_store_explicit(&j->nthreads, nthreads, memory_order_relaxed);
    atomic_store_explicit(&P.done, 0, memory_order_relaxed);
    for (int b = 0; b < P.max_nt; b++) {
        uint64_t first = b >= nthreads ? NO_CHUNK : b ? (uint64_t)block_end(nchunks, nthreads, b - 1) : 0;
        atomic_store_explicit(&P.blk[b].v, (uint64_t)g << 32 | first, memory_order_release);
    }
    atomic_store(&P.post, g);
    if (atomic_load(&P.sleepers) > 0) futex_wake(&P.post, INT_MAX);
    run_chunks(g, fn, ctx, nchunks, nthreads, 0);
    long t0 = 0;
    unsigned k = 0;
    for (;;) {   /* chunks that workers claimed and still run */
        uint32_t fin = atomic_load_explicit(&P.done, memory_order_acquire);
        if (fin == (uint32_t)nchunks) break;
        if (!spun_out(&t0, &k)) { relax(); continue; }
        atomic_store(&P.caller_waiting, 1);
        fin = atomic_load(&P.done);
        if (fin != (uint32_t)nchunks) futex_wait(&P.done, fin);
        atomic_store(&P.caller_waiting, 0);
    }
}

/* cpu_par_range's chunks: [n c / k, n (c + 1) / k) */
typedef struct {
    cpu_range_fn fn;
    void *ctx;
    long n, k;
} range_job;
static void range_chunk(void *arg, long c, int tid) {
    const range_job *r = arg;
    long lo = r->n * c / r->k, hi = r->n * (c + 1) / r->k;   /* k <= CPU_CHUNKS_PER_THREAD x threads: no overflow */
    if (lo < hi) r->fn(r->ctx, lo, hi, tid);
}

void cpu_par_range(const dl_dev *d, long n, size_t work, size_t grain, cpu_range_fn fn, void *ctx) {
    if (n <= 0) return;
    int nt = cpu_nthreads(d, work, grain);
    if (nt > n) nt = (int)n;
    if (nt <= 1) { fn(ctx, 0, n, 0); return; }
    /* CPU_CHUNKS_PER_THREAD chunks a thread, each still >= grain: a thread
     * that is descheduled part way leaves the rest to the others.  k >= nt,
     * since nt <= n and nt <= work / grain here. */
    size_t k = (size_t)nt * CPU_CHUNKS_PER_THREAD, most = work / (grain ? grain : 1);
    if (k > most) k = most;
    if (k > (size_t)n) k = (size_t)n;
    range_job r = { fn, ctx, n, (long)k };
    cpu_pool_run(nt, (long)k, range_chunk, &r);
}
