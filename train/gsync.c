/* train/gsync.c — dllm-train's data-parallel gradient all-reduce in
 * buckets, started during the backward of a step's last micro-batch.
 *
 * The parameter block (dl_model.h) holds every matrix in [0, n_decay) in
 * Hugging Face order: embed, layer 0 .. layer L-1, lm_head (untied); the
 * norms and biases follow in [n_decay, n).  The backward runs the head,
 * then layers L-1 .. 0, then the embedding, so once layer l is done the
 * range [lo(l), n_decay) (lo(l): layer l's q_proj, its first matrix) is
 * final.  The plan walks l = L-1 .. 0 and closes a bucket [lo(l), hi)
 * whenever it holds >= `bucket` floats; what is left, [0, hi) (embedding,
 * lower layers; the tied head's gradient lands in the embedding last)
 * and [n_decay, n) (every norm and bias), goes after the backward.
 * Buckets are whole layers, so one is "a few layers' gradients".
 *
 * Order: every rank starts the same buckets in the same order (MPI
 * matches collectives by order): the plan depends only on the layout and
 * the bucket size, the hook starts them in plan order, and
 * train_gsync_start_rest starts the rest in plan order before any other
 * collective of the step (a rank whose last micro-batch had nothing to
 * learn from runs no backward and starts them all there).
 * Sums: each element is summed over the ranks by the same all-reduce
 * algorithm whether or not it is cut into buckets; with 2 ranks a + b is
 * the same bits in any order (train_dp.sh checks bucketed = one
 * all-reduce, bit for bit); with more ranks MPI may pick another
 * algorithm for another count, a rounding-level change.
 * Does not: bucket a LoRA adapter's block (small: one all-reduce), use
 * reduce-scatter under ZeRO-1, run the backward.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "train.h"

int train_gsync_plan(train_gsync *g, dl_comm *comm, dl_model *m, size_t bucket, char *err, size_t errlen) {
    memset(g, 0, sizeof *g);
    g->comm = comm;
    g->m = m;
    const int L = m->cfg.n_layers;
    if (!comm || dl_comm_size(comm) == 1 || bucket == 0 || m->lora || L < 1) return 0;
    size_t *lo = malloc((size_t)L * sizeof *lo);   /* (L) offset of layer l's first matrix */
    g->b = malloc(((size_t)L + 2) * sizeof *g->b);
    g->ready = malloc(((size_t)L + 2) * sizeof *g->ready);
    if (!lo || !g->b || !g->ready) {
        free(lo);
        train_gsync_free(g);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    char name[96];
    for (int l = 0; l < L; l++) {
        snprintf(name, sizeof name, "model.layers.%d.self_attn.q_proj.weight", l);
        const dl_tensor *t = dl_model_tensor(m, name);
        lo[l] = t ? t->offset : 0;
        if (!t || (l > 0 && lo[l] <= lo[l - 1]) || lo[l] >= m->n_decay_params) {   /* not the layout above */
            free(lo);
            train_gsync_free(g);
            return 0;
        }
    }
    size_t hi = m->n_decay_params;
    for (int l = L - 1; l >= 0; l--)
        if (hi - lo[l] >= bucket) {
            g->b[g->n_b][0] = lo[l];
            g->b[g->n_b][1] = hi;
            g->ready[g->n_b++] = l;
            hi = lo[l];
        }
    free(lo);
    if (g->n_b == 0) {   /* the model is smaller than a bucket: one all-reduce after the backward */
        train_gsync_free(g);
        return 0;
    }
    const size_t rest[2][2] = { { 0, hi }, { m->n_decay_params, m->n_params } };
    for (int i = 0; i < 2; i++)
        if (rest[i][1] > rest[i][0]) {
            g->b[g->n_b][0] = rest[i][0];
            g->b[g->n_b][1] = rest[i][1];
            g->ready[g->n_b++] = -1;
        }
    return 0;
}

void train_gsync_free(train_gsync *g) {
    free(g->b);
    free(g->ready);
    g->b = NULL;
    g->ready = NULL;
    g->n_b = g->next = 0;
}

/* Start, in plan order, the buckets final once `layer` is done (-1: all). */
static int start_upto(train_gsync *g, int layer, char *err, size_t errlen) {
    int synced = 0;
    while (g->next < g->n_b && g->ready[g->next] >= layer) {
        if (!synced) {   /* a GPU's kernels were only issued */
            dl_model_sync(g->m);
            synced = 1;
        }
        size_t a = g->b[g->next][0], n = g->b[g->next][1] - a;
        int rc = dl_comm_iallreduce_sum(g->comm, g->m->grads + a, n, err, errlen);
        if (rc) return rc;
        g->next++;
    }
    return synced ? 0 : dl_comm_test(g->comm, err, errlen);   /* nothing new: let the started ones progress */
}

static void hook(void *ctx, int layer) {
    train_gsync *g = ctx;
    int before = g->next;
    if (!g->rc) g->rc = start_upto(g, layer, g->err, sizeof g->err);
    g->n_early += (uint64_t)(g->next - before);
}

void train_gsync_arm(train_gsync *g, int on) {
    if (!g->n_b) return;
    g->m->bwd_hook = on ? hook : NULL;
    g->m->bwd_ctx = on ? g : NULL;
}

int train_gsync_start_rest(train_gsync *g, char *err, size_t errlen) {
    train_gsync_arm(g, 0);
    if (g->rc) return dl_seterr(err, errlen, g->rc, "%s", g->err);
    g->n_started += (uint64_t)g->n_b;
    return start_upto(g, -1, err, errlen);
}

int train_gsync_wait(train_gsync *g, char *err, size_t errlen) {
    int rc = dl_comm_wait_all(g->comm, err, errlen);
    g->next = 0;
    g->rc = 0;
    return rc;
}
