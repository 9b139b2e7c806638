/* dl_comm.h — communication between the processes of one data-parallel
 * run (DESIGN.md "Backends and scale"): rank, size, in-place all-reduce
 * (sum), all-gather of rank-owned ranges, broadcast, barrier, and a status
 * agreement so every rank stops with the same error.
 *
 * Three implementations behind one struct, chosen at dl_comm_open:
 *   single  rank 0 of 1, every collective leaves the buffers as they are
 *           (dl_comm_single.c; always built)
 *   mpi     CPU ranks over MPI (dl_comm_mpi.c; built when mpicc works,
 *           DL_HAVE_MPI); MPI errors return (MPI_ERRORS_RETURN), every
 *           collective is non-blocking + polled against the timeout
 *   nccl    GPU ranks over NCCL (dl_comm_nccl.c; DL_HAVE_NCCL); unique id
 *           through MPI when built with it, else through a job-unique file
 *           (dl_comm_idfile.c); init and collectives polled against the
 *           timeout, ncclCommAbort on expiry
 * DL_COMM_AUTO: the launcher's world size (dl_comm_env) 1 -> single; else
 * nccl when the model runs on CUDA and NCCL is built, else mpi when built,
 * else an error naming what is missing.  The environment variable
 * DLLM_COMM (single|mpi|nccl|auto) overrides `want` when set.
 *
 * Non-blocking all-reduce (gradient buckets overlapped with the backward):
 * dl_comm_iallreduce_sum starts one, dl_comm_test lets the started ones
 * progress (MPI moves data only inside MPI calls: the caller calls it
 * between pieces of work), dl_comm_wait_all waits for every started one
 * (one timeout for all).  The buffer must be ready when started (a GPU
 * caller synchronises its device first) and is not touched by the
 * caller until dl_comm_wait_all returns.
 *
 * Rank / size / local rank: the MPI communicator when MPI is used, else
 * the launcher's environment: OMPI_COMM_WORLD_RANK/SIZE/LOCAL_RANK
 * (mpirun), else SLURM_PROCID, SLURM_STEP_NUM_TASKS (or SLURM_NTASKS),
 * SLURM_LOCALID (srun).  A batch script itself (SLURM_* set, no srun step)
 * is rank 0 of 1.
 *
 * Buffers of the float collectives are device pointers of the device the
 * caller's model runs on (host memory for CPU models); f64 and status
 * collectives take host memory.  Functions return 0 or a negative
 * DL_EXIT_* (-DL_EXIT_DEVICE for a peer that failed, timed out or died)
 * with err set; after such an error the communicator is unusable: free it
 * and exit (the launcher then ends the other ranks).
 * Does not: average (callers normalise by global totals), print, exit.
 */
#ifndef DL_COMM_H
#define DL_COMM_H
#include <stddef.h>

typedef struct dl_comm dl_comm;

typedef enum { DL_COMM_AUTO = 0, DL_COMM_SINGLE, DL_COMM_MPI, DL_COMM_NCCL } dl_comm_kind;
/* "auto" | "single" | "mpi" | "nccl" -> *k; -1 when unknown. */
int dl_comm_kind_parse(const char *s, dl_comm_kind *k);
/* Whether this build has the kind (single and auto: always). */
int dl_comm_kind_built(dl_comm_kind k);

/* The launcher's view, from the environment only (no MPI call). */
typedef struct { int rank, size, local_rank; const char *from; } dl_comm_env;
void dl_comm_env_read(dl_comm_env *e);

/* want: a kind (DLLM_COMM overrides); on_cuda: the model runs on a CUDA
 * device (NCCL needs device buffers; the local rank picks the GPU);
 * timeout_s: the longest wait for init or any collective (<= 0: 600;
 * the environment variable DLLM_COMM_TIMEOUT, seconds, overrides). */
int dl_comm_open(dl_comm **c, dl_comm_kind want, int on_cuda, double timeout_s, char *err, size_t errlen);
/* dl_comm_open(c, DL_COMM_AUTO, 0, 0, ...). */
int dl_comm_init(dl_comm **c, char *err, size_t errlen);
void dl_comm_free(dl_comm *c);   /* NULL is fine; MPI_Finalize when this opened MPI */
int dl_comm_rank(const dl_comm *c);
int dl_comm_size(const dl_comm *c);
int dl_comm_local_rank(const dl_comm *c);
const char *dl_comm_name(const dl_comm *c);   /* "single", "mpi", "nccl" */

/* x (n) = sum over ranks of x, in place (device memory). */
int dl_comm_allreduce_sum(dl_comm *c, float *x, size_t n, char *err, size_t errlen);
/* x (n) = sum over ranks of x, in place (host memory, float64: counts and
 * loss totals stay exact where float32 would round). */
int dl_comm_allreduce_sum_f64(dl_comm *c, double *x, size_t n, char *err, size_t errlen);
/* off (size+1, ascending, off[0] = 0): rank r owns x[off[r], off[r+1]);
 * afterwards every rank holds every owner's range (device memory). */
int dl_comm_allgather_ranges(dl_comm *c, float *x, const size_t *off, char *err, size_t errlen);
/* off as above: rank r's `mine` (off[r+1]-off[r] floats) lands in
 * x[off[r], off[r+1]) on rank root only (ZeRO-1's optimizer shares to
 * the rank that saves; x is ignored and may be NULL on the other ranks).
 * One rank: mine must be x + off[0] (nothing moves).  Device memory. */
int dl_comm_gather_ranges(dl_comm *c, const float *mine, float *x, const size_t *off, int root, char *err,
                          size_t errlen);
/* Start x (n) = sum over ranks of x, in place, non-blocking (above). */
int dl_comm_iallreduce_sum(dl_comm *c, float *x, size_t n, char *err, size_t errlen);
/* Progress the started all-reduces without waiting. */
int dl_comm_test(dl_comm *c, char *err, size_t errlen);
/* Wait until every started all-reduce is done (at most the timeout). */
int dl_comm_wait_all(dl_comm *c, char *err, size_t errlen);
/* buf (bytes) of rank root copied to every rank (device memory). */
int dl_comm_broadcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen);
int dl_comm_barrier(dl_comm *c, char *err, size_t errlen);

/* Every rank passes its status rc (0 or negative DL_EXIT_*); returns the
 * status of the lowest rank whose rc != 0 (0 when all are 0) and sets
 * *bad_rank to it (-1 when none).  A failed exchange returns its own error. */
int dl_comm_agree(dl_comm *c, int rc, int *bad_rank, char *err, size_t errlen);

/* [off[r], off[r+1]): rank r's share of n elements, split evenly with
 * every boundary a multiple of `align` (the last share takes the rest). */
void dl_comm_split(size_t n, int size, size_t align, size_t *off);

#endif
