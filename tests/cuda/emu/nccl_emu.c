/* tests/cuda/emu/nccl_emu.c — NCCL over MPI, and the few CUDA runtime calls
 * of share/model/dl_comm_nccl.c, for dllm-train linked with the emulated
 * CUDA backend (make test-cuda-emu): so that the NCCL communication path,
 * id exchange, init, the collectives, ZeRO-1's gathers and the bucketed
 * all-reduce included, runs with CPU ranks under mpirun.  The buffers are
 * host memory (the emulated backend's "device" memory).  The unique id is
 * checked: every rank must init with the bytes rank 0 drew.
 * Does not: model NCCL's asynchrony (everything completes in the call),
 * timeouts inside a collective, or two ranks on one GPU. */
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
cudaError_t cudaStreamQuery(cudaStream_t s) { (void)s; return cudaSuccess; }
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
static int group;   /* inside ncclGroupStart / End: the calls still run at once, in order */

static MPI_Datatype mpi_type(ncclDataType_t t) { return t == ncclFloat ? MPI_FLOAT : t == ncclDouble ? MPI_DOUBLE : MPI_BYTE; }

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
    *c = malloc(sizeof **c);
    if (!*c) return ncclSystemError;
    (*c)->rank = rank;
    (*c)->size = nranks;
    return ncclSuccess;
}
ncclResult_t ncclCommGetAsyncError(ncclComm_t c, ncclResult_t *st) { (void)c; *st = ncclSuccess; return ncclSuccess; }
ncclResult_t ncclCommAbort(ncclComm_t c) { free(c); return ncclSuccess; }
ncclResult_t ncclCommDestroy(ncclComm_t c) { free(c); return ncclSuccess; }
const char *ncclGetErrorString(ncclResult_t r) { return r == ncclSuccess ? "no error" : "nccl_emu error"; }
const char *ncclGetLastError(ncclComm_t c) { (void)c; return ""; }
ncclResult_t ncclAllReduce(const void *s, void *r, size_t n, ncclDataType_t t, ncclRedOp_t op, ncclComm_t c,
                           cudaStream_t st) {
    (void)st;
    if (!c || op != ncclSum || t == ncclInt8 || n > INT32_MAX) return ncclInvalidArgument;
    if (s != r) memmove(r, s, n * (t == ncclFloat ? 4 : 8));
    return MPI_Allreduce(MPI_IN_PLACE, r, (int)n, mpi_type(t), MPI_SUM, MPI_COMM_WORLD) == MPI_SUCCESS ? ncclSuccess
                                                                                                        : ncclSystemError;
}
ncclResult_t ncclBroadcast(const void *s, void *r, size_t n, ncclDataType_t t, int root, ncclComm_t c, cudaStream_t st) {
    (void)st;
    size_t es = t == ncclFloat ? 4 : t == ncclDouble ? 8 : 1;
    if (!c || root < 0 || root >= c->size || n * es > INT32_MAX) return ncclInvalidArgument;
    if (c->rank == root && s != r) memmove(r, s, n * es);
    return MPI_Bcast(r, (int)(n * es), MPI_BYTE, root, MPI_COMM_WORLD) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
ncclResult_t ncclSend(const void *s, size_t n, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    (void)st;
    if (!c || n > INT32_MAX) return ncclInvalidArgument;
    return MPI_Send(s, (int)n, mpi_type(t), peer, 7, MPI_COMM_WORLD) == MPI_SUCCESS ? ncclSuccess : ncclSystemError;
}
ncclResult_t ncclRecv(void *r, size_t n, ncclDataType_t t, int peer, ncclComm_t c, cudaStream_t st) {
    (void)st;
    if (!c || n > INT32_MAX) return ncclInvalidArgument;
    return MPI_Recv(r, (int)n, mpi_type(t), peer, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE) == MPI_SUCCESS ? ncclSuccess
                                                                                                       : ncclSystemError;
}
ncclResult_t ncclGroupStart(void) { group++; return ncclSuccess; }
ncclResult_t ncclGroupEnd(void) { return group-- > 0 ? ncclSuccess : ncclInvalidUsage; }
