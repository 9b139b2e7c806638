/* dl_comm_mpi.c — dl_comm over MPI for CPU ranks (host buffers).
 *
 * MPI_Init (unless the program already initialised MPI; on a helper
 * thread, waited for at most the timeout: a rank that never joins ends
 * this one with a message instead of a hang), errors returned
 * instead of aborting (MPI_ERRORS_RETURN) and turned into -DL_EXIT_DEVICE
 * with MPI's own message.  Every collective is the non-blocking MPI call
 * polled with MPI_Test against c->timeout_s, so a rank that hangs ends this
 * one with a message instead of a hang; a rank that dies is noticed by
 * mpirun / srun, which end the job.  Large buffers go in chunks of 2^30
 * elements (MPI counts are int).  Non-blocking all-reduces are kept in a
 * list of requests until dl_comm_wait_all.
 * Does not: use GPU buffers (dl_comm_nccl.c), finalise MPI after an error
 * (a finalize could wait for the dead rank).
 */
#ifdef DL_HAVE_MPI
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <mpi.h>
#include "dl_base.h"
#include "dl_comm_internal.h"

static int started_here, failed;
/* the started non-blocking all-reduces (dl_comm_iallreduce_sum) */
static MPI_Request *pend;
static int n_pend, cap_pend;

static int mpi_err(int mrc, const char *what, char *err, size_t errlen) {
    char msg[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(mrc, msg, &len);
    failed = 1;
    return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "MPI %s failed: %s", what, msg);
}

/* Wait for req, at most timeout_s. */
static int wait_req(MPI_Request *req, double timeout_s, const char *what, char *err, size_t errlen) {
    double t0 = dl_comm_now();
    unsigned it = 0;
    for (;;) {
        int done = 0, mrc = MPI_Test(req, &done, MPI_STATUS_IGNORE);
        if (mrc != MPI_SUCCESS) return mpi_err(mrc, what, err, errlen);
        if (done) return 0;
        if (dl_comm_now() - t0 > timeout_s) {
            failed = 1;
            return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "MPI %s did not complete in %.0f s: another rank died, "
                             "hangs or is far behind (DLLM_COMM_TIMEOUT / --comm-timeout)", what, timeout_s);
        }
        dl_comm_poll_pause(&it);
    }
}

/* MPI_Init waits for every rank of the job to join, with no timeout of
 * its own: it runs on a helper thread while this one waits for it at most
 * timeout_s.  MPI_THREAD_SERIALIZED because later calls come from the
 * caller's thread (never two at once: the helper has ended by then). */
static int init_rc, init_provided, init_done;
static void *init_thread(void *arg) {
    (void)arg;
    init_rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &init_provided);
    __atomic_store_n(&init_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

int dl_comm_mpi_start(int *rank, int *size, double timeout_s, char *err, size_t errlen) {
    int inited = 0, mrc;
    MPI_Initialized(&inited);
    if (!inited) {
        pthread_t th;
        if (pthread_create(&th, NULL, init_thread, NULL))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "MPI init: cannot start a thread");
        double t0 = dl_comm_now();
        unsigned it = 0;
        while (!__atomic_load_n(&init_done, __ATOMIC_ACQUIRE)) {
            if (dl_comm_now() - t0 > timeout_s) {   /* the helper stays blocked in MPI_Init; the caller exits */
                pthread_detach(th);
                failed = 1;
                return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "MPI init did not complete in %.0f s: a rank of this "
                                 "job did not start, or hangs before joining (DLLM_COMM_TIMEOUT / --comm-timeout)",
                                 timeout_s);
            }
            dl_comm_poll_pause(&it);
        }
        pthread_join(th, NULL);
        if (init_rc != MPI_SUCCESS) return mpi_err(init_rc, "init", err, errlen);
        started_here = 1;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((mrc = MPI_Comm_rank(MPI_COMM_WORLD, rank)) != MPI_SUCCESS ||
        (mrc = MPI_Comm_size(MPI_COMM_WORLD, size)) != MPI_SUCCESS)
        return mpi_err(mrc, "rank/size", err, errlen);
    return 0;
}

void dl_comm_mpi_stop(void) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (started_here && !failed && !fin) MPI_Finalize();
    started_here = 0;
}

int dl_comm_mpi_bcast_host(void *buf, size_t bytes, double timeout_s, char *err, size_t errlen) {
    for (size_t o = 0; o < bytes; o += 1u << 30) {
        size_t k = bytes - o < (1u << 30) ? bytes - o : 1u << 30;
        MPI_Request req;
        int mrc = MPI_Ibcast((char *)buf + o, (int)k, MPI_BYTE, 0, MPI_COMM_WORLD, &req);
        if (mrc != MPI_SUCCESS) return mpi_err(mrc, "broadcast", err, errlen);
        if ((mrc = wait_req(&req, timeout_s, "broadcast", err, errlen))) return mrc;
    }
    return 0;
}

static int m_init(dl_comm *c, char *err, size_t errlen) {
    int rc = dl_comm_mpi_start(&c->rank, &c->size, c->timeout_s, err, errlen);
    if (rc) return rc;
    /* the local rank only matters for picking a GPU; mpirun and srun say it */
    c->local_rank = c->env.size == c->size ? c->env.local_rank : 0;
    return 0;
}

static void m_free(dl_comm *c) {
    (void)c;
    free(pend);   /* after an error requests may be left: MPI is not finalised then */
    pend = NULL;
    n_pend = cap_pend = 0;
    dl_comm_mpi_stop();
}

static int allreduce(void *x, size_t n, MPI_Datatype t, size_t esz, double timeout_s, char *err, size_t errlen) {
    for (size_t o = 0; o < n; o += 1u << 30) {
        size_t k = n - o < (1u << 30) ? n - o : 1u << 30;
        MPI_Request req;
        int mrc = MPI_Iallreduce(MPI_IN_PLACE, (char *)x + o * esz, (int)k, t, MPI_SUM, MPI_COMM_WORLD, &req);
        if (mrc != MPI_SUCCESS) return mpi_err(mrc, "all-reduce", err, errlen);
        if ((mrc = wait_req(&req, timeout_s, "all-reduce", err, errlen))) return mrc;
    }
    return 0;
}

static int m_f32(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    return allreduce(x, n, MPI_FLOAT, sizeof *x, c->timeout_s, err, errlen);
}

static int m_f64(dl_comm *c, double *x, size_t n, char *err, size_t errlen) {
    return allreduce(x, n, MPI_DOUBLE, sizeof *x, c->timeout_s, err, errlen);
}

static int m_gather(dl_comm *c, float *x, const size_t *off, char *err, size_t errlen) {
    int *cnt = malloc(2 * (size_t)c->size * sizeof *cnt), *dsp = cnt + c->size;   /* (size) counts, displacements */
    if (!cnt) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    for (int r = 0; r < c->size; r++) {
        if (off[r + 1] > INT_MAX) {
            free(cnt);
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "all-gather of %zu floats: more than MPI's int counts",
                             off[c->size]);
        }
        cnt[r] = (int)(off[r + 1] - off[r]);
        dsp[r] = (int)off[r];
    }
    MPI_Request req;
    int mrc = MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, x, cnt, dsp, MPI_FLOAT, MPI_COMM_WORLD, &req);
    int rc = mrc != MPI_SUCCESS ? mpi_err(mrc, "all-gather", err, errlen)
                                : wait_req(&req, c->timeout_s, "all-gather", err, errlen);
    free(cnt);
    return rc;
}

static int m_gather_root(dl_comm *c, const float *mine, float *x, const size_t *off, int root, char *err,
                         size_t errlen) {
    int *cnt = NULL, *dsp = NULL;   /* (size) counts, displacements: root only */
    if (c->rank == root) {
        if (!(cnt = malloc(2 * (size_t)c->size * sizeof *cnt))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        dsp = cnt + c->size;
        for (int r = 0; r < c->size; r++) {
            cnt[r] = (int)(off[r + 1] - off[r]);
            dsp[r] = (int)off[r];
        }
    }
    if (off[c->size] > INT_MAX) {
        free(cnt);
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "gather of %zu floats: more than MPI's int counts", off[c->size]);
    }
    int mine_n = (int)(off[c->rank + 1] - off[c->rank]);
    MPI_Request req;
    /* the root's own part: MPI_IN_PLACE when it already sits in x */
    const void *send = c->rank == root && mine == x + off[root] ? MPI_IN_PLACE : (const void *)mine;
    int mrc = MPI_Igatherv(send, mine_n, MPI_FLOAT, x, cnt, dsp, MPI_FLOAT, root, MPI_COMM_WORLD, &req);
    int rc = mrc != MPI_SUCCESS ? mpi_err(mrc, "gather", err, errlen)
                                : wait_req(&req, c->timeout_s, "gather", err, errlen);
    free(cnt);
    return rc;
}

static int m_iallreduce(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    (void)c;
    for (size_t o = 0; o < n; o += 1u << 30) {
        size_t k = n - o < (1u << 30) ? n - o : 1u << 30;
        if (n_pend == cap_pend) {
            int cap = cap_pend ? 2 * cap_pend : 16;
            MPI_Request *p = realloc(pend, (size_t)cap * sizeof *p);
            if (!p) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            pend = p;
            cap_pend = cap;
        }
        int mrc = MPI_Iallreduce(MPI_IN_PLACE, x + o, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &pend[n_pend]);
        if (mrc != MPI_SUCCESS) return mpi_err(mrc, "all-reduce", err, errlen);
        n_pend++;
    }
    return 0;
}

/* MPI_Testall both progresses the requests and says whether all are done;
 * done ones become MPI_REQUEST_NULL. */
static int m_wait_all(dl_comm *c, int block, char *err, size_t errlen) {
    double t0 = dl_comm_now();
    unsigned it = 0;
    for (;;) {
        int done = 0, mrc = MPI_Testall(n_pend, pend, &done, MPI_STATUSES_IGNORE);
        if (mrc != MPI_SUCCESS) return mpi_err(mrc, "all-reduce", err, errlen);
        if (done) { n_pend = 0; return 0; }
        if (!block) return 0;
        if (dl_comm_now() - t0 > c->timeout_s) {
            failed = 1;
            return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "MPI all-reduce did not complete in %.0f s: another rank "
                             "died, hangs or is far behind (DLLM_COMM_TIMEOUT / --comm-timeout)", c->timeout_s);
        }
        dl_comm_poll_pause(&it);
    }
}

static int m_bcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    for (size_t o = 0; o < bytes; o += 1u << 30) {
        size_t k = bytes - o < (1u << 30) ? bytes - o : 1u << 30;
        MPI_Request req;
        int mrc = MPI_Ibcast((char *)buf + o, (int)k, MPI_BYTE, root, MPI_COMM_WORLD, &req);
        if (mrc != MPI_SUCCESS) return mpi_err(mrc, "broadcast", err, errlen);
        if ((mrc = wait_req(&req, c->timeout_s, "broadcast", err, errlen))) return mrc;
    }
    return 0;
}

static int m_barrier(dl_comm *c, char *err, size_t errlen) {
    MPI_Request req;
    int mrc = MPI_Ibarrier(MPI_COMM_WORLD, &req);
    if (mrc != MPI_SUCCESS) return mpi_err(mrc, "barrier", err, errlen);
    return wait_req(&req, c->timeout_s, "barrier", err, errlen);
}

const dl_comm_ops dl_comm_mpi_ops = { "mpi", m_init, m_free, m_f32, m_f64, m_gather, m_gather_root, m_iallreduce,
                                      m_wait_all, m_bcast, m_barrier };
#else
typedef int dl_comm_mpi_not_built;   /* ISO C: a translation unit is not empty */
#endif
