/* train/sched.c — the learning-rate schedule of dllm-train.
 *
 *   step s (1-based) <= warmup:  lr · s / warmup              (linear warmup)
 *   after, p = (s - warmup) / (total - warmup) in (0, 1]:
 *     cosine    min_lr + (lr - min_lr) · (1 + cos(pi p)) / 2
 *     linear    lr - (lr - min_lr) · p
 *     constant  lr
 * so the last step runs at min_lr (cosine, linear).  A pure function of the
 * step: nothing to save for --resume beyond the step and the options.
 */
#include <math.h>
#include <string.h>
#include "train.h"

static const char *const NAMES[] = { "cosine", "linear", "constant" };

int train_sched_parse(const char *s, train_sched_kind *k) {
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, NAMES[i])) { *k = (train_sched_kind)i; return 0; }
    return -1;
}

const char *train_sched_name(train_sched_kind k) { return NAMES[k]; }

double train_sched_lr(train_sched_kind k, int64_t step, int64_t total, int64_t warmup, double lr, double min_lr) {
    if (warmup > 0 && step <= warmup) return lr * (double)step / (double)warmup;
    if (k == SCHED_CONSTANT || total <= warmup) return lr;
    double p = (double)(step - warmup) / (double)(total - warmup);
    if (p > 1) p = 1;
    if (k == SCHED_LINEAR) return lr - (lr - min_lr) * p;
    return min_lr + (lr - min_lr) * 0.5 * (1.0 + cos(M_PI * p));
}
