/* dl_comm_nccl.c — dl_comm over NCCL for GPU ranks (device buffers).
 *
 * Init: rank / size from MPI when built with it (the unique id is then
 * broadcast over MPI), else from the launcher's environment (dl_comm_env:
 * srun or mpirun) with the id through the job-unique file of
 * dl_comm_idfile.c.  The GPU is local_rank modulo the visible devices.
 * The communicator is non-blocking (ncclConfig_t.blocking = 0): init and
 * every collective are polled (ncclCommGetAsyncError, cudaStreamQuery)
 * against c->timeout_s; on expiry or an async error ncclCommAbort frees
 * this rank and the error names the operation.  One stream of our own;
 * every blocking collective waits for it (callers read the result at
 * once).  The non-blocking all-reduce is enqueued on that stream and
 * returns; dl_comm_wait_all waits for the stream.  Its buffer must be
 * ready when it starts: we cannot see the model's stream, so the caller
 * synchronises its device first (a host wait per bucket; the all-reduce
 * then runs while the next layers' kernels run on the model's stream).
 * Does not: wait on the model's stream with an event, use host buffers for the float
 * collectives (f64 ones go through a small device scratch), run without a
 * GPU (dl_comm_open refuses nccl for CPU models).
 */
#ifdef DL_HAVE_NCCL
#include <stdio.h>
#include <stdlib.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include "dl_base.h"
#include "dl_comm_internal.h"

typedef struct {
    ncclComm_t comm;
    cudaStream_t stream;
    double *d_f64; size_t f64_cap;   /* (f64_cap) device scratch for the host f64 collectives */
    int used_mpi, failed;
} nccl_impl;

static int cuda_err(cudaError_t e, const char *what, char *err, size_t errlen) {
    return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "CUDA %s: %s", what, cudaGetErrorString(e));
}

/* Wait until the communicator's pending work (init, or the collective on
 * our stream when `stream`) is done; abort it on error or timeout. */
static int wait_nccl(dl_comm *c, int stream, const char *what, char *err, size_t errlen) {
    nccl_impl *p = c->impl;
    double t0 = dl_comm_now();
    unsigned it = 0;
    for (;;) {
        ncclResult_t st = ncclSuccess;
        ncclResult_t r = ncclCommGetAsyncError(p->comm, &st);
        if (r != ncclSuccess) st = r;
        if (st != ncclSuccess && st != ncclInProgress) {
            p->failed = 1;
            ncclCommAbort(p->comm);
            p->comm = NULL;
            return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL %s failed: %s (%s)", what, ncclGetErrorString(st),
                             ncclGetLastError(NULL));
        }
        if (st == ncclSuccess) {
            if (!stream) return 0;
            cudaError_t q = cudaStreamQuery(p->stream);
            if (q == cudaSuccess) return 0;
            if (q != cudaErrorNotReady) { p->failed = 1; return cuda_err(q, what, err, errlen); }
        }
        if (dl_comm_now() - t0 > c->timeout_s) {
            p->failed = 1;
            ncclCommAbort(p->comm);
            p->comm = NULL;
            return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL %s did not complete in %.0f s: another rank died, "
                             "hangs or is far behind (DLLM_COMM_TIMEOUT / --comm-timeout)", what, c->timeout_s);
        }
        dl_comm_poll_pause(&it);
    }
}

static int issued(dl_comm *c, ncclResult_t r, const char *what, char *err, size_t errlen) {
    if (r != ncclSuccess && r != ncclInProgress)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL %s: %s", what, ncclGetErrorString(r));
    return wait_nccl(c, 1, what, err, errlen);
}

static int n_init(dl_comm *c, char *err, size_t errlen) {
    nccl_impl *p = calloc(1, sizeof *p);
    if (!p) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    c->impl = p;
    int rc;
#ifdef DL_HAVE_MPI
    if ((rc = dl_comm_mpi_start(&c->rank, &c->size, c->timeout_s, err, errlen))) return rc;
    p->used_mpi = 1;
    c->local_rank = c->env.size == c->size ? c->env.local_rank : 0;
#else
    c->rank = c->env.rank; c->size = c->env.size; c->local_rank = c->env.local_rank;
#endif
    int ndev = 0;
    cudaError_t ce = cudaGetDeviceCount(&ndev);
    if (ce != cudaSuccess || ndev < 1) return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL: no CUDA device (%s)",
                                                        ce != cudaSuccess ? cudaGetErrorString(ce) : "0 devices");
    if ((ce = cudaSetDevice(c->local_rank % ndev)) != cudaSuccess) return cuda_err(ce, "set device", err, errlen);
    ncclUniqueId id;
    if (c->rank == 0 && ncclGetUniqueId(&id) != ncclSuccess)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL: ncclGetUniqueId failed");
#ifdef DL_HAVE_MPI
    rc = dl_comm_mpi_bcast_host(&id, sizeof id, c->timeout_s, err, errlen);
#else
    rc = dl_comm_idfile_exchange(c->rank, &id, sizeof id, c->timeout_s, err, errlen);
#endif
    if (rc) return rc;
    if ((ce = cudaStreamCreateWithFlags(&p->stream, cudaStreamNonBlocking)) != cudaSuccess)
        return cuda_err(ce, "stream", err, errlen);
    ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
    cfg.blocking = 0;
    ncclResult_t r = ncclCommInitRankConfig(&p->comm, c->size, id, c->rank, &cfg);
    if (r != ncclSuccess && r != ncclInProgress)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL init (rank %d of %d): %s", c->rank, c->size,
                         ncclGetErrorString(r));
    if ((rc = wait_nccl(c, 0, "init", err, errlen))) return rc;
#ifndef DL_HAVE_MPI
    if (c->rank == 0) {   /* every rank has joined: the id file has done its job */
        char path[1024];
        if (!dl_comm_idfile_path(path, sizeof path, NULL, 0)) remove(path);
    }
#endif
    return 0;
}

static void n_free(dl_comm *c) {
    nccl_impl *p = c->impl;
    if (!p) return;
    if (p->comm) { if (p->failed) ncclCommAbort(p->comm); else ncclCommDestroy(p->comm); }
    if (p->stream) cudaStreamDestroy(p->stream);
    cudaFree(p->d_f64);
#ifdef DL_HAVE_MPI
    if (p->used_mpi) dl_comm_mpi_stop();
#endif
    free(p);
    c->impl = NULL;
}

static int n_f32(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    nccl_impl *p = c->impl;
    return issued(c, ncclAllReduce(x, x, n, ncclFloat, ncclSum, p->comm, p->stream), "all-reduce", err, errlen);
}

static int n_f64(dl_comm *c, double *x, size_t n, char *err, size_t errlen) {
    nccl_impl *p = c->impl;
    cudaError_t ce;
    if (n > p->f64_cap) {
        cudaFree(p->d_f64);
        p->d_f64 = NULL; p->f64_cap = 0;
        if ((ce = cudaMalloc((void **)&p->d_f64, n * sizeof *x)) != cudaSuccess) return cuda_err(ce, "malloc", err, errlen);
        p->f64_cap = n;
    }
    if ((ce = cudaMemcpy(p->d_f64, x, n * sizeof *x, cudaMemcpyHostToDevice)) != cudaSuccess)
        return cuda_err(ce, "copy", err, errlen);
    int rc = issued(c, ncclAllReduce(p->d_f64, p->d_f64, n, ncclDouble, ncclSum, p->comm, p->stream), "all-reduce",
                    err, errlen);
    if (rc) return rc;
    if ((ce = cudaMemcpy(x, p->d_f64, n * sizeof *x, cudaMemcpyDeviceToHost)) != cudaSuccess)
        return cuda_err(ce, "copy", err, errlen);
    return 0;
}

/* NCCL has no all-gather with per-rank counts: one in-place broadcast per
 * owner, in one group. */
static int n_gather(dl_comm *c, float *x, const size_t *off, char *err, size_t errlen) {
    nccl_impl *p = c->impl;
    ncclResult_t r = ncclGroupStart();
    for (int k = 0; k < c->size && (r == ncclSuccess || r == ncclInProgress); k++)
        r = ncclBroadcast(x + off[k], x + off[k], off[k + 1] - off[k], ncclFloat, k, p->comm, p->stream);
    ncclResult_t e = ncclGroupEnd();
    return issued(c, r != ncclSuccess && r != ncclInProgress ? r : e, "all-gather", err, errlen);
}

/* Every part to root in one group: root receives each other rank's part
 * in place and copies its own when it is elsewhere. */
static int n_gather_root(dl_comm *c, const float *mine, float *x, const size_t *off, int root, char *err,
                         size_t errlen) {
    nccl_impl *p = c->impl;
    if (c->rank == root && mine != x + off[root]) {
        cudaError_t ce = cudaMemcpyAsync(x + off[root], mine, (off[root + 1] - off[root]) * sizeof *x,
                                         cudaMemcpyDeviceToDevice, p->stream);
        if (ce != cudaSuccess) return cuda_err(ce, "copy", err, errlen);
    }
    ncclResult_t r = ncclGroupStart();
    for (int k = 0; k < c->size && (r == ncclSuccess || r == ncclInProgress); k++) {
        size_t n = off[k + 1] - off[k];
        if (k == root || n == 0) continue;
        if (c->rank == root) r = ncclRecv(x + off[k], n, ncclFloat, k, p->comm, p->stream);
        else if (c->rank == k) r = ncclSend(mine, n, ncclFloat, root, p->comm, p->stream);
    }
    ncclResult_t e = ncclGroupEnd();
    return issued(c, r != ncclSuccess && r != ncclInProgress ? r : e, "gather", err, errlen);
}

static int n_iallreduce(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    nccl_impl *p = c->impl;
    ncclResult_t r = ncclAllReduce(x, x, n, ncclFloat, ncclSum, p->comm, p->stream);
    if (r != ncclSuccess && r != ncclInProgress)
        return dl_seterr(err, errlen, -DL_EXIT_DEVICE, "NCCL all-reduce: %s", ncclGetErrorString(r));
    return wait_nccl(c, 0, "all-reduce", err, errlen);   /* enqueued (non-blocking communicator), not done */
}

static int n_wait_all(dl_comm *c, int block, char *err, size_t errlen) {
    return block ? wait_nccl(c, 1, "all-reduce", err, errlen) : 0;   /* the GPU progresses on its own */
}

static int n_bcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    nccl_impl *p = c->impl;
    return issued(c, ncclBroadcast(buf, buf, bytes, ncclInt8, root, p->comm, p->stream), "broadcast", err, errlen);
}

static int n_barrier(dl_comm *c, char *err, size_t errlen) {
    double one = 1;
    return n_f64(c, &one, 1, err, errlen);
}

const dl_comm_ops dl_comm_nccl_ops = { "nccl", n_init, n_free, n_f32, n_f64, n_gather, n_gather_root, n_iallreduce,
                                        n_wait_all, n_bcast, n_barrier };
#else
typedef int dl_comm_nccl_not_built;   /* ISO C: a translation unit is not empty */
#endif
