/* pick.c — the candidate token at one position and the softmax statistics
 * the confidences need; shared by the diffusion (diffusion.c) and AR (ar.c)
 * samplers.  Rules (ties, filter order, float64 Gumbel) are in sample.h.
 *
 * Costs: temperature 0 is one pass over V; Gumbel-max adds one log-log per
 * kept id; --top-k is a quickselect (O(V)); --top-p sorts the kept ids
 * (O(K log K), K = V without --top-k).  Nothing is allocated per call.
 */
#include <math.h>
#include <stdlib.h>
#include "sample.h"

int smp_scratch_init(smp_scratch *s, int V) {
    s->V = V;
    s->idx = malloc((size_t)V * sizeof *s->idx);
    s->z = malloc((size_t)V * sizeof *s->z);
    s->u = malloc((size_t)V * sizeof *s->u);
    if (!s->idx || !s->z || !s->u) { smp_scratch_free(s); return -DL_EXIT_IO; }
    return 0;
}

void smp_scratch_free(smp_scratch *s) {
    free(s->idx); free(s->z); free(s->u);
    s->idx = NULL; s->z = NULL; s->u = NULL;
}

void smp_suppress(const smp_opts *o, float *logits, int V) {
    for (int i = 0; i < o->n_suppress; i++)
        if (o->suppress[i] < (uint32_t)V) logits[o->suppress[i]] = -INFINITY;
    if (o->mask_id < (uint32_t)V) logits[o->mask_id] = -INFINITY;
}

/* a ranks before b: larger logit, then lower id */
static int before(const float *l, int32_t a, int32_t b) {
    return l[a] > l[b] || (l[a] == l[b] && a < b);
}

/* Reorder idx[0..n) so that idx[0..k) are the k best (unordered). */
static void select_top(const float *l, int32_t *idx, int n, int k) {
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int32_t piv = idx[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (before(l, idx[i], piv)) i++;
            while (before(l, piv, idx[j])) j--;
            if (i <= j) { int32_t t = idx[i]; idx[i] = idx[j]; idx[j] = t; i++; j--; }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

/* Stable merge sort of a[0..n) best first (tmp: n slots). */
static void msort(const float *l, int32_t *a, int32_t *tmp, int n) {
    if (n < 2) return;
    if (n <= 16) {
        for (int i = 1; i < n; i++) {
            int32_t v = a[i];
            int j = i - 1;
            while (j >= 0 && before(l, v, a[j])) { a[j + 1] = a[j]; j--; }
            a[j + 1] = v;
        }
        return;
    }
    int h = n / 2;
    msort(l, a, tmp, h);
    msort(l, a + h, tmp, n - h);
    int i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = before(l, a[j], a[i]) ? a[j++] : a[i++];
    while (i < h) tmp[k++] = a[i++];
    while (j < n) tmp[k++] = a[j++];
    for (k = 0; k < n; k++) a[k] = tmp[k];
}

uint32_t smp_pick(const smp_opts *o, const float *logits, int V, const double *u, smp_scratch *s) {
    if (o->temperature <= 0 || !u) {
        int best = 0;
        for (int v = 1; v < V; v++)
            if (logits[v] > logits[best]) best = v;
        return (uint32_t)best;
    }
    double T = o->temperature;
    int filtered = (o->top_k > 0 && o->top_k < V) || (o->top_p > 0 && o->top_p < 1);
    if (!filtered) {
        int best = -1;
        double bs = -INFINITY;
        for (int v = 0; v < V; v++) {
            if (logits[v] == -INFINITY) continue;
            double sc = (double)logits[v] - T * log(-log(u[v]));
            if (best < 0 || sc > bs) { bs = sc; best = v; }
        }
        return (uint32_t)(best < 0 ? 0 : best);
    }
    int32_t *idx = s->idx;
    int n = V;
    for (int v = 0; v < V; v++) idx[v] = v;
    if (o->top_k > 0 && o->top_k < V) {
        select_top(logits, idx, V, o->top_k);
        n = o->top_k;
    }
    if (o->top_p > 0 && o->top_p < 1) {
        /* sort the kept ids best first; tmp space: reuse z's bytes as int32 */
        msort(logits, idx, (int32_t *)s->z, n);
        double mx = (double)logits[idx[0]] / T, sum = 0;
        for (int i = 0; i < n; i++) sum += exp((double)logits[idx[i]] / T - mx);
        double c = 0;
        int keep = 0;
        while (keep < n && (keep == 0 || c < o->top_p)) {
            c += exp((double)logits[idx[keep]] / T - mx) / sum;
            keep++;
        }
        n = keep;
    }
    int best = -1;
    double bs = -INFINITY;
    for (int i = 0; i < n; i++) {
        int v = idx[i];
        if (logits[v] == -INFINITY) continue;
        double sc = (double)logits[v] - T * log(-log(u[v]));
        if (best < 0 || sc > bs || (sc == bs && v < best)) { bs = sc; best = v; }
    }
    return (uint32_t)(best < 0 ? idx[0] : best);
}

void smp_softmax_stats(const float *logits, int V, uint32_t tok, double *p_tok, double *p1, double *p2,
                       double *negent) {
    float mx = logits[0];
    for (int v = 1; v < V; v++) if (logits[v] > mx) mx = logits[v];
    double sum = 0, sl = 0, e2 = 0;
    int need2 = p2 != NULL, needent = negent != NULL;
    int seen_max = 0;
    for (int v = 0; v < V; v++) {
        double d = (double)logits[v] - (double)mx;
        double e = exp(d);
        sum += e;
        if (needent && e > 0) sl += e * d;
        if (need2) {
            if (logits[v] == mx && !seen_max) seen_max = 1;   /* the max itself, once */
            else if (e > e2) e2 = e;
        }
    }
    if (p_tok) *p_tok = exp((double)logits[tok] - (double)mx) / sum;
    if (p1) *p1 = 1.0 / sum;
    if (p2) *p2 = e2 / sum;
    if (negent) *negent = sl / sum - log(sum);
}
