/* dl_comm.c — the dl_comm.h entry points: which implementation
 * (DLLM_COMM, the launcher's world size, the device), the launcher's
 * environment, argument checks and dispatch to the chosen table, the
 * status agreement and the even split of a buffer over ranks.
 * Does not: talk to other processes itself (dl_comm_single/mpi/nccl.c),
 * poll (dl_comm_poll.c).
 */
#include <stdlib.h>
#include <string.h>
#include "dl_base.h"
#include "dl_comm_internal.h"

int dl_comm_kind_parse(const char *s, dl_comm_kind *k) {
    static const char *const names[] = { "auto", "single", "mpi", "nccl" };
    for (int i = 0; i < 4; i++)
        if (s && !strcmp(s, names[i])) { *k = (dl_comm_kind)i; return 0; }
    return -1;
}

int dl_comm_kind_built(dl_comm_kind k) {
    switch (k) {
#ifdef DL_HAVE_MPI
    case DL_COMM_MPI: return 1;
#endif
#ifdef DL_HAVE_NCCL
    case DL_COMM_NCCL: return 1;
#endif
    case DL_COMM_AUTO: case DL_COMM_SINGLE: return 1;
    default: return 0;
    }
}

/* A non-negative integer from the environment, else -1. */
static int env_int(const char *name) {
    const char *s = getenv(name);
    if (!s || !*s) return -1;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v < 0 || v > 1 << 24 ? -1 : (int)v;
}

void dl_comm_env_read(dl_comm_env *e) {
    memset(e, 0, sizeof *e);
    e->size = 1;
    e->from = "none";
    int r = env_int("OMPI_COMM_WORLD_RANK"), n = env_int("OMPI_COMM_WORLD_SIZE");
    if (r >= 0 && n >= 1) {
        e->rank = r; e->size = n;
        e->local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK") >= 0 ? env_int("OMPI_COMM_WORLD_LOCAL_RANK") : 0;
        e->from = "mpirun";
        return;
    }
    /* srun sets SLURM_STEP_ID (and the step's task count); a batch
     * script has SLURM_NTASKS of the allocation but is one process. */
    r = env_int("SLURM_PROCID");
    n = env_int("SLURM_STEP_NUM_TASKS");
    if (n < 1) n = env_int("SLURM_NTASKS");
    if (r >= 0 && n >= 1 && getenv("SLURM_STEP_ID") && env_int("SLURM_STEP_ID") >= 0) {
        e->rank = r; e->size = n;
        e->local_rank = env_int("SLURM_LOCALID") >= 0 ? env_int("SLURM_LOCALID") : 0;
        e->from = "srun";
    }
}

int dl_comm_open(dl_comm **cp, dl_comm_kind want, int on_cuda, double timeout_s, char *err, size_t errlen) {
    *cp = NULL;
    const char *ev = getenv("DLLM_COMM");
    if (ev && *ev && dl_comm_kind_parse(ev, &want))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "DLLM_COMM='%s': expected auto, single, mpi or nccl", ev);
    dl_comm *c = calloc(1, sizeof *c);
    if (!c) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    c->on_cuda = on_cuda;
    c->timeout_s = timeout_s > 0 ? timeout_s : 600;
    const char *et = getenv("DLLM_COMM_TIMEOUT");
    if (et && *et) {
        char *end;
        double v = strtod(et, &end);
        if (*end || !(v > 0)) {
            free(c);
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "DLLM_COMM_TIMEOUT='%s': expected seconds > 0", et);
        }
        c->timeout_s = v;
    }
    dl_comm_env_read(&c->env);
    if (want == DL_COMM_AUTO) {
        if (c->env.size == 1) want = DL_COMM_SINGLE;
        else if (on_cuda && dl_comm_kind_built(DL_COMM_NCCL)) want = DL_COMM_NCCL;
        else if (dl_comm_kind_built(DL_COMM_MPI)) want = DL_COMM_MPI;
        else {
            dl_seterr(err, errlen, -DL_EXIT_USAGE, "started as rank %d of %d (%s) but this build has no %s: "
                      "rebuild where mpicc%s works (make HAVE_MPI=1)", c->env.rank, c->env.size, c->env.from,
                      on_cuda ? "NCCL or MPI" : "MPI", on_cuda ? " or NCCL" : "");
            free(c);
            return -DL_EXIT_USAGE;
        }
    }
    if (!dl_comm_kind_built(want)) {
        free(c);
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "communication '%s' is not built in (make HAVE_%s=1)",
                         want == DL_COMM_MPI ? "mpi" : "nccl", want == DL_COMM_MPI ? "MPI" : "NCCL");
    }
    if (want == DL_COMM_NCCL && !on_cuda) {
        free(c);
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "NCCL moves GPU buffers: it needs --device cuda (CPU ranks use mpi)");
    }
    c->ops = &dl_comm_single_ops;
#ifdef DL_HAVE_MPI
    if (want == DL_COMM_MPI) c->ops = &dl_comm_mpi_ops;
#endif
#ifdef DL_HAVE_NCCL
    if (want == DL_COMM_NCCL) c->ops = &dl_comm_nccl_ops;
#endif
    int rc = c->ops->init(c, err, errlen);
    if (rc) { free(c); return rc; }
    *cp = c;
    return 0;
}

int dl_comm_init(dl_comm **c, char *err, size_t errlen) { return dl_comm_open(c, DL_COMM_AUTO, 0, 0, err, errlen); }

void dl_comm_free(dl_comm *c) {
    if (!c) return;
    c->ops->free(c);
    free(c);
}

int dl_comm_rank(const dl_comm *c) { return c->rank; }
int dl_comm_size(const dl_comm *c) { return c->size; }
int dl_comm_local_rank(const dl_comm *c) { return c->local_rank; }
const char *dl_comm_name(const dl_comm *c) { return c->ops->name; }

int dl_comm_allreduce_sum(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    return c->size == 1 || n == 0 ? 0 : c->ops->allreduce_f32(c, x, n, err, errlen);
}

int dl_comm_allreduce_sum_f64(dl_comm *c, double *x, size_t n, char *err, size_t errlen) {
    return c->size == 1 || n == 0 ? 0 : c->ops->allreduce_f64(c, x, n, err, errlen);
}

int dl_comm_allgather_ranges(dl_comm *c, float *x, const size_t *off, char *err, size_t errlen) {
    for (int r = 0; r < c->size; r++)
        if (off[r] > off[r + 1]) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "all-gather: ranges not ascending");
    return c->size == 1 ? 0 : c->ops->allgather_ranges(c, x, off, err, errlen);
}

int dl_comm_gather_ranges(dl_comm *c, const float *mine, float *x, const size_t *off, int root, char *err,
                          size_t errlen) {
    if (root < 0 || root >= c->size)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "gather to rank %d of %d", root, c->size);
    for (int r = 0; r < c->size; r++)
        if (off[r] > off[r + 1]) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "gather: ranges not ascending");
    if (c->size == 1)   /* nothing to move: the one rank's part must already be in place */
        return mine == x + off[0] ? 0 : dl_seterr(err, errlen, -DL_EXIT_USAGE, "gather on one rank: not in place");
    return c->ops->gather_ranges(c, mine, x, off, root, err, errlen);
}

int dl_comm_iallreduce_sum(dl_comm *c, float *x, size_t n, char *err, size_t errlen) {
    return c->size == 1 || n == 0 ? 0 : c->ops->iallreduce_f32(c, x, n, err, errlen);
}

int dl_comm_test(dl_comm *c, char *err, size_t errlen) {
    return c->size == 1 ? 0 : c->ops->wait_all(c, 0, err, errlen);
}

int dl_comm_wait_all(dl_comm *c, char *err, size_t errlen) {
    return c->size == 1 ? 0 : c->ops->wait_all(c, 1, err, errlen);
}

int dl_comm_broadcast(dl_comm *c, void *buf, size_t bytes, int root, char *err, size_t errlen) {
    if (root < 0 || root >= c->size)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "broadcast from rank %d of %d", root, c->size);
    return c->size == 1 || bytes == 0 ? 0 : c->ops->broadcast(c, buf, bytes, root, err, errlen);
}

int dl_comm_barrier(dl_comm *c, char *err, size_t errlen) {
    return c->size == 1 ? 0 : c->ops->barrier(c, err, errlen);
}

int dl_comm_agree(dl_comm *c, int rc, int *bad_rank, char *err, size_t errlen) {
    *bad_rank = rc ? c->rank : -1;
    if (c->size == 1) return rc;
    double *v = calloc((size_t)c->size, sizeof *v);   /* (size) each rank's status at its index */
    if (!v) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    v[c->rank] = rc;
    char e2[256];
    int xr = dl_comm_allreduce_sum_f64(c, v, (size_t)c->size, e2, sizeof e2);
    if (xr) {
        free(v);
        return dl_seterr(err, errlen, xr, "%s", e2);
    }
    int out = 0;
    *bad_rank = -1;
    for (int r = 0; r < c->size; r++)
        if (v[r] != 0) { *bad_rank = r; out = (int)v[r]; break; }
    free(v);
    return out;
}

void dl_comm_split(size_t n, int size, size_t align, size_t *off) {
    if (align == 0) align = 1;
    size_t per = (n + (size_t)size - 1) / (size_t)size;
    per = (per + align - 1) / align * align;
    off[0] = 0;
    for (int r = 1; r <= size; r++) off[r] = (size_t)r * per < n ? (size_t)r * per : n;
    off[size] = n;
}
