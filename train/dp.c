/* train/dp.c — dllm-train's data parallelism around dl_comm.h: which rows
 * of each global batch are this rank's, agreeing on failures and on
 * stopping, the parameter broadcast at start, ZeRO-1's shares and the
 * gathering of the optimizer state before a save.
 *
 * Rows: a global batch is B consecutive records of the input (the same
 * records a single process would take); rank r of P decodes the rows
 * [r·B/P, (r+1)·B/P) of it and skips the others (parsed, not decoded).
 * So the data position (epoch, record) is global: a checkpoint resumes
 * with any P that divides B and continues with the same rows.
 * ZeRO-1: the parameter block is split in P shares (dl_comm_split, 64-float
 * boundaries); after the gradient all-reduce each rank runs AdamW on its
 * share only and the shares are all-gathered.  The AdamW moments are
 * allocated whole (dl_model owns them) but only a rank's own share is kept
 * current; before a save they are all-gathered so rank 0 writes the full
 * state and any P resumes from it.
 * Does not: shard the data by files (every rank reads every file), shard
 * --valid (every rank evaluates all of it; rank 0 reports).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"
#include "train.h"

int train_dp_open(train_dp *dp, const char *kind, int on_cuda, double timeout_s, int zero, char *err, size_t errlen) {
    memset(dp, 0, sizeof *dp);
    dl_comm_kind k;
    if (dl_comm_kind_parse(kind, &k))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--comm '%s': auto, single, mpi or nccl", kind);
    int rc = dl_comm_open(&dp->comm, k, on_cuda, timeout_s, err, errlen);
    if (rc) return rc;
    dp->rank = dl_comm_rank(dp->comm);
    dp->size = dl_comm_size(dp->comm);
    dp->zero = zero;
    return 0;
}

void train_dp_close(train_dp *dp) {
    dl_comm_free(dp->comm);
    free(dp->off);
    memset(dp, 0, sizeof *dp);
}

int train_dp_shares(train_dp *dp, size_t n_params, char *err, size_t errlen) {
    if (!dp->zero) return 0;
    free(dp->off);
    if (!(dp->off = malloc(((size_t)dp->size + 1) * sizeof *dp->off)))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    dl_comm_split(n_params, dp->size, 64, dp->off);
    return 0;
}

int train_dp_mine(const train_dp *dp, int B, int j) { return j / (B / dp->size) == dp->rank; }

int train_dp_agree(train_dp *dp, int rc, char *err, size_t errlen) {
    if (dp->size == 1) return rc;
    int bad = -1;
    char e2[256];
    int out = dl_comm_agree(dp->comm, rc, &bad, e2, sizeof e2);
    if (bad < 0 && out) return dl_seterr(err, errlen, out, "%s", e2);   /* the exchange itself failed */
    if (bad < 0) return 0;
    if (bad != dp->rank)   /* that rank prints its own message */
        return dl_seterr(err, errlen, out, "rank %d of %d failed (its message names the cause)", bad, dp->size);
    return rc ? rc : out;
}

int train_dp_any(train_dp *dp, int flag, int *any, char *err, size_t errlen) {
    *any = flag;
    if (dp->size == 1) return 0;
    double v = flag ? 1 : 0;
    int rc = dl_comm_allreduce_sum_f64(dp->comm, &v, 1, err, errlen);
    *any = v > 0;
    return rc;
}

int train_dp_sync_params(train_dp *dp, dl_model *m, char *err, size_t errlen) {
    if (dp->size == 1) return 0;
    return dl_comm_broadcast(dp->comm, m->params, m->n_params * sizeof *m->params, 0, err, errlen);
}

int train_dp_gather_state(train_dp *dp, dl_model *m, char *err, size_t errlen) {
    if (dp->size == 1 || !dp->zero || !m->adam_m) return 0;
    int rc = dl_comm_allgather_ranges(dp->comm, m->adam_m, dp->off, err, errlen);
    if (!rc) rc = dl_comm_allgather_ranges(dp->comm, m->adam_v, dp->off, err, errlen);
    return rc;
}
