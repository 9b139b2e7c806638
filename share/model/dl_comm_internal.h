/* dl_comm_internal.h — what the dl_comm implementations share: the
 * struct, the table of functions each fills, and the job-unique id file
 * used by NCCL without MPI.  Only dl_comm*.c include this (and
 * tests/unit/test_comm.c, for the id file).
 *
 * An implementation's init fills rank/size/local_rank (from its own
 * runtime or from c->env) and impl; its free releases impl.  The public
 * functions in dl_comm.c check arguments and dispatch.
 * Does not: choose the implementation (dl_comm.c does).
 */
#ifndef DL_COMM_INTERNAL_H
#define DL_COMM_INTERNAL_H
#include "dl_comm.h"

typedef struct {
    const char *name;
    int (*init)(dl_comm *c, char *err, size_t errlen);
    void (*free)(dl_comm *c);
    int (*allreduce_f32)(dl_comm *c, float *x, size_t n, char *err, size_t errlen);
    int (*allreduce_f64)(dl_comm *c, double *x, size_t n, char *err, size_t errlen);
    int (*allgather_ranges)(dl_comm *c, float *x, const size_t *off, char *err, size_t errlen);
    /* to root only; see dl_comm_gather_ranges */
    int (*gather_ranges)(dl_comm *c, const float *mine, float *x, const size_t *off, int root, char *err,
                         size_t errlen);
    /* non-blocking all-reduce (f32, in place): start; wait (block = 1:
     * until all started ones are done, against the timeout; 0: progress
     * them and return at once) */
    int (*iallreduce_f32)(dl_comm *c, float *x, size_t n, char *err, size_t errlen);
    int (*wait_all)(dl_comm *c, int block, char *err, size_t errlen);
    int (*broadcast)(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen);
    int (*barrier)(dl_comm *c, char *err, size_t errlen);
} dl_comm_ops;

struct dl_comm {
    const dl_comm_ops *ops;
    int rank, size, local_rank;
    int on_cuda;
    double timeout_s;        /* longest wait for init or one collective */
    dl_comm_env env;         /* the launcher's view (dl_comm_env_read) */
    void *impl;              /* the implementation's state */
};

extern const dl_comm_ops dl_comm_single_ops;
#ifdef DL_HAVE_MPI
extern const dl_comm_ops dl_comm_mpi_ops;
/* dl_comm_mpi.c: MPI_Init unless already initialised (then not finalised
 * by us either), waited for at most timeout_s; MPI_ERRORS_RETURN on
 * MPI_COMM_WORLD.  0 or -DL_EXIT_DEVICE (also: init timed out). */
int dl_comm_mpi_start(int *rank, int *size, double timeout_s, char *err, size_t errlen);
void dl_comm_mpi_stop(void);
/* bytes of rank 0 to every rank over MPI_COMM_WORLD (host), polled
 * against timeout_s. */
int dl_comm_mpi_bcast_host(void *buf, size_t bytes, double timeout_s, char *err, size_t errlen);
#endif
#ifdef DL_HAVE_NCCL
extern const dl_comm_ops dl_comm_nccl_ops;
#endif

/* The id file: rank 0 writes `bytes` of buf to DIR/dllm-<key>.id
 * (temp + rename, so a reader never sees half a file); other ranks wait for
 * it up to timeout_s.  key: SLURM_JOB_ID + "." + SLURM_STEP_ID, else
 * DLLM_RUN_ID; none set -> -DL_EXIT_USAGE (a fixed name could be a stale
 * file from another job).  DIR: DLLM_COMM_DIR, else $HOME (a shared
 * filesystem on clusters).  Rank 0 removes a file of its own key first,
 * and the file carries the key and rank 0's start time inside, checked by
 * the readers.  Returns 0, -DL_EXIT_DEVICE (timeout), -DL_EXIT_IO. */
int dl_comm_idfile_exchange(int rank, void *buf, size_t bytes, double timeout_s, char *err, size_t errlen);
/* The path the exchange uses (for messages and tests); 0 or -DL_EXIT_USAGE. */
int dl_comm_idfile_path(char *path, size_t len, char *err, size_t errlen);

/* Sleep between polls: ~spins then up to 1 ms, so a 2-core machine with
 * two ranks keeps making progress. */
void dl_comm_poll_pause(unsigned *iter);
double dl_comm_now(void);

#endif
