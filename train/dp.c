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
 * share only and the shares are all-gathered.  With P > 1 a rank holds
 * the AdamW moments of its own share only (dp->adam_m / adam_v, 1/P of
 * plain data parallel; m->adam_m / adam_v stay NULL): a resume loads the
 * whole state and keeps the share.  Before a save the shares are gathered
 * to rank 0 into whole buffers that live for the save only, so
 * optimizer.safetensors is the file plain data parallel writes and any P
 * resumes from it.  There are no separate fp32 masters to shard: the
 * parameters are the fp32 masters, and every rank needs all of them for
 * its forward.
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
    if (dp->m) {
        dl_optim_moments_free(dp->m, dp->adam_m);
        dl_optim_moments_free(dp->m, dp->adam_v);
    }
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

int train_dp_sharded(const train_dp *dp) { return dp->zero && dp->size > 1; }

int train_dp_shard_state(train_dp *dp, dl_model *m, char *err, size_t errlen) {
    if (!train_dp_sharded(dp)) {   /* the trained block's whole moments (a LoRA adapter's under LoRA) */
        dl_optim_block b = dl_optim_trained(m);
        dp->opt_bytes = b.adam_m ? 2 * b.n * sizeof(float) : 0;
        return 0;
    }
    size_t lo = dp->off[dp->rank], k = dp->off[dp->rank + 1] - lo;
    dp->m = m;
    if (dl_optim_take_share(m, lo, k, &dp->adam_m, &dp->adam_v))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory (AdamW moments of %zu parameters)", k);
    dp->opt_bytes = 2 * k * sizeof(float);
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
    dl_model_weights_changed(m);
    return dl_comm_broadcast(dp->comm, m->params, m->n_params * sizeof *m->params, 0, err, errlen);
}

int train_dp_state_view(train_dp *dp, const dl_model *m, dl_model *view, char *err, size_t errlen) {
    *view = *m;
    if (!dp->adam_m) return 0;   /* the whole moments are the model's (also --zero 1 --steps 0 --resume) */
    size_t n = m->n_params;
    float *whole[2] = { NULL, NULL };   /* (n) m, v on rank 0 only */
    int rc = 0;
    if (dp->rank == 0) {
        whole[0] = dl_optim_moments_alloc(m, n);
        whole[1] = dl_optim_moments_alloc(m, n);
        if (!whole[0] || !whole[1])
            rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory (gathering the AdamW moments to save)");
    }
    rc = train_dp_agree(dp, rc, err, errlen);
    if (!rc) rc = dl_comm_gather_ranges(dp->comm, dp->adam_m, whole[0], dp->off, 0, err, errlen);
    if (!rc) rc = dl_comm_gather_ranges(dp->comm, dp->adam_v, whole[1], dp->off, 0, err, errlen);
    view->adam_m = whole[0];
    view->adam_v = whole[1];
    if (rc) train_dp_state_view_free(dp, m, view);
    return rc;
}

void train_dp_state_view_free(train_dp *dp, const dl_model *m, dl_model *view) {
    (void)dp;
    if (view->adam_m != m->adam_m) dl_optim_moments_free(m, view->adam_m);
    if (view->adam_v != m->adam_v) dl_optim_moments_free(m, view->adam_v);
    view->adam_m = view->adam_v = NULL;
}
