/* tests/cuda/emu/nccl_emu.c — NCCL over MPI, and the few CUDA runtime calls
 * of share/model/dl_comm_nccl.c, for dllm-train linked with the emulated
 * CUDA backend (make test-cuda-emu): so that the NCCL communication path,
 * id exchange, init, the collectives, ZeRO-1's gathers and the bucketed
 * all-reduce included, runs with CPU ranks under mpirun.  The buffers are
 * host memory (the emulated backend's "device" memory).  The unique id is
 * checked: every rank must init with the bytes rank 0 drew.
 * Asynchronous as NCCL's non-blocking communicator: a collective is posted
 * (MPI_Iallreduce / Ibcast / Isend / Irecv on a communicator of its own)
 * and returns; cudaStreamQuery answers cudaErrorNotReady until every posted
 * one has completed, so dl_comm_nccl.c's polling and timeout run for real.
 * Fault injection, DLLM_NCCL_EMU_STALL=R:K: on rank R the K-th collective
 * (1-based) and every later one are never posted, as a rank stuck in a
 * kernel: its stream never drains and the other ranks' collectives never
 * complete.  DLLM_NCCL_EMU_COUNT=1 prints "nccl_emu: rank R: N collectives"
 * to stderr at exit (what a test picks K from).
 * Does not: model async errors (ncclCommGetAsyncError reports success),
 * or two ranks on one GPU. */
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "nccl/nccl.h"

/* ---- CUDA runtime: host memory, synchronous */
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "nccl_emu cuda error"; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int i) { return i == 0 ? cudaSuccess : cudaErrorInvalidValue; }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned f) { (void)f; *s = (void *)1; return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t s) { (void)s; return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t s);   /* below: the posted collectives */
cudaError_t cudaMalloc(void **p, size_t n) { *p = malloc(n ? n : 1); return *p ? cudaSuccess : cudaErrorMemoryAllocation; }
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, cudaMemcpyKind k) { (void)k; memmove(d, s, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind k, cudaStream_t st) {
    (void)k; (void)st;
    memmove(d, s, n);
    return cudaSuccess;
}

/* ---- NCCL */
struct nccl_emu_comm { int rank, size; };
static int group;   /* inside ncclGroupStart / End: the calls are posted at once, in order */
static MPI_Comm world = MPI_COMM_NULL;   /* a duplicate: our non-blocking calls never meet dllm's own MPI calls */
static MPI_Request *pending;
static int n_pending, cap_pending, stalled, stall_rank = -1, my_rank = -1;
static long n_calls, stall_at;

static MPI_Datatype mpi_type(ncclDataType_t t) { return t == ncclFloat ? MPI_FLOAT : t == ncclDouble ? MPI_DOUBLE : MPI_BYTE; }

cudaError_t cudaStreamQuery(cudaStream_t s) {
    (void)s;
    if (stalled) return cudaErrorNotReady;
    int done = 1;
    if (n_pending && MPI_Testall(n_pending, pending, &done, MPI_STATUSES_IGNORE) != MPI_SUCCESS) return cudaErrorInvalidValue;
    if (!done) return cudaErrorNotReady;
    n_pending = 0;
    return cudaSuccess;
}

static void print_count(void) { fprintf(stderr, "nccl_emu: rank %d: %ld collectives\n", my_rank, n_calls); }

/* a new request slot, or NULL for a collective never posted (the stall) */
static MPI_Request *post(void) {
    n_calls++;
    if (stall_rank >= 0 && n_calls >= stall_at && my_rank == stall_rank) {
        stalled = 1;
        return NULL;
    }
    if (n_pending == cap_pending) {
        int c = cap_pending ? 2 * cap_pending : 16;
        MPI_Request *p = realloc(pending, sizeof *p * (size_t)c);
        if (!p) abort();
        pending = p;
        cap_pending = c;
    }
    return &pending[n_pending++];
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id) {
    memset(id, 0, sizeof *id);
    snprintf(id->internal, sizeof id->internal, "nccl_emu %ld %ld", (long)getpid(), (long)rand());
    return ncclSuccess;
}
ncclResult_t ncclCommInitRankConfig(ncclComm_t *c, int nranks, ncclUniqueId id, int rank, ncclConfig_t *cfg) {
    (void)cfg;
    int size = 0, me = -1, ok;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (size != nranks || me != rank) return ncclInvalidArgument;
    ncclUniqueId root = id;   /* the id every rank was given must be rank 0's */
    MPI_Bcast(&root, (int)sizeof root, MPI_BYTE, 0, MPI_COMM_WORLD);
    ok = !memcmp(&root, &id, sizeof id);
    MPI_Allreduce(MPI_IN_PLACE, &ok, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD);
    if (!ok) return ncclInvalidUsage;
    if (world == MPI_COMM_NULL) {
        MPI_Comm_dup(MPI_COMM_WORLD, &world);
        my_rank = me;
        const char *st = getenv("DLLM_NCCL_EMU_STALL"), *cnt = getenv("DLLM_NCCL_EMU_COUNT");
        if (st && sscanf(st, "%d:%ld", &stall_rank, &stall_at) != 2) stall_rank = -1;
        if (cnt && *cnt == '1') atexit(print_count);
    }
    *c = malloc(sizeof **c);
    if (!*c) return ncclSystemError;
    (*c)->rank = rank;
    (*c)->size = nranks;
    return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *st) { (void)c; *st = ncclSuccess; return ncclSuccess; }
ncclResult_t ncclCommAbort(ncclComm_t c) { free(c); return ncclSuccess; }   /* what is posted stays posted: we exit */
ncclResult_t ncclCommDestroy(ncclComm_t c) { free(c); return ncclSuccess; }
const char *ncclGetErrorString(ncclResult_t r) { return r == ncclSuccess ? "no error" : "nccl_emu error"; }
const char *ncclGetLastError(ncclComm_t c) { (void)c; return ""; }
ncclResult_t ncclAllReduce(const void *s, void *r, size_t n, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                           cudaStream_t st) {
    (void)st;
    if (!c || op != ncclSum || t == ncclInt8 || n > INT32_MAX) return ncclInvalidArgument;
    if (s != r) memmove(r, s, n * (t == ncclFloat ? 4 : 8));
    MPI_Request *q = post();
    if (!q) return ncclSuccess;
    return MPI_Iallreduce(MPI_IN_PLACE, r, (int)n, mpi_type(t), MPI_SUM, world, q) == MPI_SUCCESS ? ncclSuccess
                                                                                                  : ncclSystemError;
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t st) {
    (void)st;
    size_t es = t == ncclFloat ? 4 : t == ncclDouble ? 8 : 1;
    if (!c || root < 0 || root >= c->size || n * es > INT32_MAX) return ncclInvalidArgument;
    if (c->rank == root && s != r) memmove(r, s, n * es);
    MPI_Request *q = post();
    if (!q) return ncclSuccess;
    return MPI_Ibcast(r, (int)(n * es), MPI_BYTE, root, world, q) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
ncclResult_t ncclSend(const void *s, size_t n, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    (void)st;
    if (!c || n > INT32_MAX) return ncclInvalidArgument;
    MPI_Request *q = post();
    if (!q) return ncclSuccess;
    return MPI_Isend(s, (int)n, mpi_type(t), peer, 7, world, q) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
ncclResult_t ncclRecv(void *r, size_t n, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    (void)st;
    if (!c || n > INT32_MAX) return ncclInvalidArgument;
    MPI_Request *q = post();
    if (!q) return ncclSuccess;
    return MPI_Irecv(r, (int)n, mpi_type(t), peer, 7, world, q) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
ncclResult_t ncclGroupStart(void) { group++; return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return group-- > 0 ? ncclSuccess : ncclInvalidUsage; }
