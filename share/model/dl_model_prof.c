/* dl_model_prof.c — the blocking per-op profile of a model's device
 * (kernels.h dl_dev_profile) as a table for the programs, which never see
 * the device themselves (dl_model.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include "dl_model.h"

int dl_model_profile(dl_model *m, int on) { return dl_dev_profile(m->dev, on); }

typedef struct { double sec; long calls; int op; } prof_row;

static int by_time(const void *a, const void *b) {
    double x = ((const prof_row *)a)->sec, y = ((const prof_row *)b)->sec;
    return x < y ? 1 : x > y ? -1 : ((const prof_row *)a)->op - ((const prof_row *)b)->op;
}

void dl_model_profile_table(const dl_model *m, char *buf, size_t n) {
    prof_row rows[DL_OP_COUNT];
    int k = 0;
    double total = 0;
    for (int op = 0; op < DL_OP_COUNT; op++) {
        prof_row r = { 0, 0, op };
        dl_dev_profile_get(m->dev, (dl_op)op, &r.sec, &r.calls);
        if (r.calls) { rows[k++] = r; total += r.sec; }
    }
    qsort(rows, (size_t)k, sizeof *rows, by_time);
    size_t used = 0;
    int w = snprintf(buf, n, "%-22s %8s %10s %10s %6s\n", "op", "calls", "total ms", "ms/call", "share");
    used = w > 0 && (size_t)w < n ? (size_t)w : n;
    for (int i = 0; i < k && used < n; i++) {
        w = snprintf(buf + used, n - used, "%-22s %8ld %10.2f %10.4f %5.1f%%\n", dl_op_name((dl_op)rows[i].op),
                     rows[i].calls, 1e3 * rows[i].sec, 1e3 * rows[i].sec / rows[i].calls,
                     total > 0 ? 100 * rows[i].sec / total : 0.0);
        used += w > 0 && (size_t)w < n - used ? (size_t)w : n - used;
    }
    if (used < n) snprintf(buf + used, n - used, "%-22s %8s %10.2f\n", "all ops", "", 1e3 * total);
}
