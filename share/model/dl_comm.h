/* dl_comm.h — communication between the processes of one data-parallel
 * run (DESIGN.md "Backends and scale"): rank, size, in-place all-reduce
 * (sum) of float buffers on the model's device, broadcast, barrier.
 *
 * This tree has the single-process implementation only (dl_comm_single.c:
 * rank 0 of 1, every collective a no-op that returns 0); MPI (CPU) and
 * NCCL (GPU) implementations will provide the same functions.  Usage in
 * dllm-train: all-reduce the gradients before the optimizer step; only rank
 * 0 writes checkpoints.
 *
 * Buffers are device pointers of the device the caller's model runs on.
 * Functions return 0 or a negative DL_EXIT_* with err set.
 * Does not: pick ranks from slurm / mpirun (an implementation's init does),
 * average (callers scale the sum).
 */
#ifndef DL_COMM_H
#define DL_COMM_H
#include <stddef.h>

typedef struct dl_comm dl_comm;

int dl_comm_init(dl_comm **c, char *err, size_t errlen);
void dl_comm_free(dl_comm *c);   /* NULL is fine */
int dl_comm_rank(const dl_comm *c);
int dl_comm_size(const dl_comm *c);
/* x (n) = sum over ranks of x, in place. */
int dl_comm_allreduce_sum(dl_comm *c, float *x, size_t n, char *err, size_t errlen);
/* buf (bytes) of rank root copied to every rank. */
int dl_comm_broadcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen);
int dl_comm_barrier(dl_comm *c, char *err, size_t errlen);

#endif
