/* kernels/cpu/select.c — token selection (dl_k_select_tokens) on the CPU: the candidate token
 * and confidence of each selected position of a sampler step (the rules are
 * in kernels.h, "token selection"; they are sample/pick.c's and ar.c's,
 * moved here so that full-vocabulary logits never leave the device).
 *
 * The rules themselves are kernels/select_rules.h (shared with the CUDA
 * backend).  Positions are independent: one pool chunk per position over the device's
 * threads (claimed one at a time: filtered positions cost more).  Per thread one
 * scratch of V ids (+ V ids of merge space + V kept flags), allocated per
 * call and only when a top-k / top-p filter runs.  Float64 where the
 * samplers used float64; no FMA-capable clones (results must equal the
 * reference bit for bit whatever the machine).
 *
 * Costs per position: argmax one pass over V; Gumbel one Philox block per
 * two ids + one log-log per kept id; top-k a quickselect (O(V)); top-p a
 * merge sort of the kept ids (Dream's rule: of all V ids, its top-p comes
 * first).  Does not: allocate when no filter runs, read
 * host memory.
 */
#include <math.h>
#include <stdlib.h>
#include "cpu.h"
#include "select_rules.h"

/* cfg and suppressions on position q's logits (in place), then the rules */
static void select_one(const dl_select_args *a, int q, sel_scratch *s) {
    const int V = a->V;
    float *l = a->logits + (size_t)(a->row ? a->row[q] : q) * V;
    if (a->cfg) {
        const float *un = a->logits + (size_t)(a->M + q) * V;
        for (int v = 0; v < V; v++) l[v] = un[v] + a->cfg_w1 * (l[v] - un[v]);
    }
    for (int i = 0; i < a->n_suppress; i++)
        if (a->suppress[i] < (uint32_t)V) l[a->suppress[i]] = -INFINITY;
    if (a->mask_id < (uint32_t)V) l[a->mask_id] = -INFINITY;
    sel_position(a, q, l, s);
}

typedef struct {
    const dl_select_args *a;
    sel_scratch *scr;   /* one per thread */
} sel_job;
static void select_chunk(void *arg, long q, int tid) {
    const sel_job *j = arg;
    select_one(j->a, (int)q, &j->scr[tid]);
}

int cpu_select_tokens(dl_dev *d, const dl_select_args *a) {
    if (a->M <= 0) return 0;
    int filt = sel_needs_scratch(a);
    /* threads only for work worth waking one (>= 16384 logits each): at
     * AR decode's few positions a sleeping worker's wake-up cost more than
     * the selection (stories260K, 4 x 512 logits a step: 2 threads 0.38
     * ms/step, 1 thread 0.25); results do not depend on the split */
    int nt = cpu_nthreads(d, (size_t)a->M * (size_t)a->V, 16384);
    if (nt > a->M) nt = a->M;
    sel_scratch *scr = calloc((size_t)nt, sizeof *scr);
    if (!scr) return -1;
    int rc = 0;
    for (int t = 0; filt && t < nt; t++) {
        scr[t].idx = malloc((size_t)a->V * sizeof *scr[t].idx);
        scr[t].tmp = malloc((size_t)a->V * sizeof *scr[t].tmp);
        scr[t].kept = malloc((size_t)a->V);
        if (!scr[t].idx || !scr[t].tmp || !scr[t].kept) rc = -1;
    }
    if (!rc) {
        sel_job j = { a, scr };
        cpu_pool_run(nt, a->M, select_chunk, &j);
    }
    for (int t = 0; t < nt; t++) { free(scr[t].idx); free(scr[t].tmp); free(scr[t].kept); }
    free(scr);
    return rc;
}
