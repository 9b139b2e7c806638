/* kernels/ref/select.c — reference token selection (kernels.h, "token
 * selection"), written for reading, not speed: one position after another,
 * filters by a full qsort of the ids (best first; the order is total, so
 * the kept sets and their order equal the CPU kernel's quickselect / merge
 * sort), Philox uniforms one call each (kernels/kphilox.h).
 *
 * Does not: use threads, reuse Philox blocks, touch a device (d unused).
 */
#include <math.h>
#include <stdlib.h>
#include "kphilox.h"
#include "ref.h"

static double uniform(const dl_select_args *a, int q, uint64_t j) {
    uint64_t i = a->noise_base[q] + j;
    return a->noise ? a->noise[i] : kphilox_uniform(a->key, a->noise_stream[q], a->purpose, i);
}

static _Thread_local const float *sort_l;
static int best_first(const void *x, const void *y) {
    int32_t i = *(const int32_t *)x, j = *(const int32_t *)y;
    if (sort_l[i] != sort_l[j]) return sort_l[i] > sort_l[j] ? -1 : 1;
    return (i > j) - (i < j);
}

/* idx[0..n) = ids (all, or only the finite ones) sorted best first; returns n */
static int sorted_ids(const float *l, int V, int finite_only, int32_t *idx) {
    int n = 0;
    for (int v = 0; v < V; v++)
        if (!finite_only || l[v] > -INFINITY) idx[n++] = v;
    sort_l = l;
    qsort(idx, (size_t)n, sizeof *idx, best_first);
    return n;
}

static int argmax(const float *l, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (l[v] > l[best]) best = v;
    return best;
}

static int gumbel(const dl_select_args *a, int q, const float *l, int32_t *idx) {
    int V = a->V;
    double T = a->temperature;
    int n = sorted_ids(l, V, 0, idx);
    if (a->top_k > 0 && a->top_k < V) n = a->top_k;
    if (a->top_p > 0 && a->top_p < 1) {
        double mx = (double)l[idx[0]] / T, sum = 0, c = 0;
        for (int i = 0; i < n; i++) sum += exp((double)l[idx[i]] / T - mx);
        int keep = 0;
        while (keep < n && (keep == 0 || c < a->top_p)) c += exp((double)l[idx[keep++]] / T - mx) / sum;
        n = keep;
    }
    int best = -1;
    double bs = -INFINITY;
    for (int i = 0; i < n; i++) {
        int v = idx[i];
        if (l[v] == -INFINITY) continue;
        double sc = (double)l[v] - T * log(-log(uniform(a, q, (uint64_t)v)));
        if (best < 0 || sc > bs || (sc == bs && v < best)) { bs = sc; best = v; }
    }
    if (best >= 0) return best;
    return (a->top_k > 0 && a->top_k < V) || (a->top_p > 0 && a->top_p < 1) ? idx[0] : 0;
}

static int invcdf(const dl_select_args *a, int q, const float *l, int32_t *idx, uint8_t *kept) {
    int V = a->V, top = argmax(l, V);
    double T = a->temperature, zmax = (double)l[top] / T;
    int filter = (a->top_k > 0 && a->top_k < V) || a->top_p < 1.0;
    for (int v = 0; v < V; v++) kept[v] = !filter;
    if (filter) {
        int n = sorted_ids(l, V, 1, idx);
        if (a->top_k > 0 && a->top_k < n) n = a->top_k;
        if (a->top_p < 1.0 && n > 1) {
            double tot = 0, cum = 0;
            for (int i = 0; i < n; i++) tot += exp((double)l[idx[i]] / T - zmax);
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += exp((double)l[idx[i]] / T - zmax);
                if (cum >= a->top_p * tot) { keep = i + 1; break; }
            }
            n = keep;
        }
        for (int i = 0; i < n; i++) kept[idx[i]] = 1;
    }
    double W = 0;
    for (int v = 0; v < V; v++)
        if (kept[v]) W += exp((double)l[v] / T - zmax);
    double target = uniform(a, q, 0) * W, cum = 0;
    if (!(W > 0)) return top;
    int last = top;
    for (int v = 0; v < V; v++) {
        if (!kept[v]) continue;
        double w = exp((double)l[v] / T - zmax);
        if (w > 0) last = v;
        cum += w;
        if (cum > target) return v;
    }
    return last;
}

/* Dream's sample_tokens (kernels.h DL_SEL_DREAM): q = softmax(z) over the
 * ids its top-p then top-k keep (kept[v]); every sum in increasing id order. */
static double zt(const float *l, int v, double T) { return T > 0 ? (double)l[v] / T : (double)l[v]; }

static int dream(const dl_select_args *a, int q, const float *l, int32_t *idx, uint8_t *kept, double *cf) {
    int V = a->V, top = argmax(l, V), k = a->top_k;
    double T = a->temperature;
    for (int v = 0; v < V; v++) kept[v] = 1;
    if ((k > 0 && k < V) || (a->top_p > 0 && a->top_p < 1)) {
        int n = sorted_ids(l, V, 0, idx);
        if (a->top_p > 0 && a->top_p < 1) {
            double zmax = zt(l, idx[0], T), sum = 0;
            for (int v = 0; v < V; v++) sum += exp(zt(l, v, T) - zmax);
            double c = exp(zt(l, idx[0], T) - zmax) / sum;
            n = 1;
            while (n < V && c <= a->top_p) c += exp(zt(l, idx[n++], T) - zmax) / sum;
        }
        float lk = k > 0 && k < n ? l[idx[k - 1]] : -INFINITY;
        for (int v = 0; v < V; v++) kept[v] = 0;
        for (int j = 0; j < n; j++) kept[idx[j]] = l[idx[j]] >= lk;
    }
    int tok = top;
    if (T > 0) {
        double bs = -INFINITY;
        int best = -1;
        for (int v = 0; v < V; v++) {
            if (!kept[v] || l[v] == -INFINITY) continue;
            double sc = (double)l[v] - T * log(-log(uniform(a, q, (uint64_t)v)));
            if (best < 0 || sc > bs) { bs = sc; best = v; }
        }
        if (best >= 0) tok = best;
    }
    *cf = 0;
    if (a->conf == DL_CONF_NONE || !(l[top] > -INFINITY)) return tok;
    double zmax = zt(l, top, T), sum = 0, e2 = 0;
    for (int v = 0; v < V; v++)
        if (kept[v]) sum += exp(zt(l, v, T) - zmax);
    for (int v = 0; v < V; v++)
        if (kept[v] && v != top && exp(zt(l, v, T) - zmax) > e2) e2 = exp(zt(l, v, T) - zmax);
    if (a->conf == DL_CONF_MARGIN) *cf = 1.0 / sum - e2 / sum;
    else if (a->conf == DL_CONF_NEGENT) {
        for (int v = 0; v < V; v++) {
            if (!kept[v]) continue;
            double p = exp(zt(l, v, T) - zmax) / sum;
            *cf += p * log(p + 1e-10);
        }
    } else *cf = exp(zt(l, tok, T) - zmax) / sum;
    return tok;
}

static double conf(dl_sel_conf kind, const float *l, int V, int tok) {
    if (kind == DL_CONF_NONE) return 0;
    int top = argmax(l, V);
    double mx = l[top];
    if (kind == DL_CONF_PROB0 && !(mx > -INFINITY)) return 0;
    double sum = 0;
    for (int v = 0; v < V; v++) sum += exp((double)l[v] - mx);
    if (kind == DL_CONF_PROB || kind == DL_CONF_PROB0) return exp((double)l[tok] - mx) / sum;
    if (kind == DL_CONF_MARGIN) {
        double e2 = 0;   /* the largest exp among all ids but the first maximum */
        for (int v = 0; v < V; v++) {
            double e = exp((double)l[v] - mx);
            if (v != top && e > e2) e2 = e;
        }
        return 1.0 / sum - e2 / sum;
    }
    double sl = 0;
    for (int v = 0; v < V; v++) {
        double e = exp((double)l[v] - mx);
        if (e > 0) sl += e * ((double)l[v] - mx);
    }
    return sl / sum - log(sum);
}

int ref_select_tokens(dl_dev *d, const dl_select_args *a) {
    (void)d;
    int V = a->V;
    int32_t *idx = malloc((size_t)V * sizeof *idx);
    uint8_t *kept = malloc((size_t)V);
    if (!idx || !kept) { free(idx); free(kept); return -1; }
    for (int q = 0; q < a->M; q++) {
        float *l = a->logits + (size_t)(a->row ? a->row[q] : q) * V;
        if (a->cfg) {
            const float *un = a->logits + (size_t)(a->M + q) * V;
            for (int v = 0; v < V; v++) l[v] = un[v] + a->cfg_w1 * (l[v] - un[v]);
        }
        for (int i = 0; i < a->n_suppress; i++)
            if (a->suppress[i] < (uint32_t)V) l[a->suppress[i]] = -INFINITY;
        if (a->mask_id < (uint32_t)V) l[a->mask_id] = -INFINITY;
        if (a->draw == DL_SEL_DREAM) {
            double c;
            a->tok[q] = (uint32_t)dream(a, q, l, idx, kept, &c);
            a->confidence[q] = c;
            continue;
        }
        int tok = a->draw == DL_SEL_ARGMAX || a->temperature <= 0 ? argmax(l, V)
                  : a->draw == DL_SEL_GUMBEL ? gumbel(a, q, l, idx) : invcdf(a, q, l, idx, kept);
        a->tok[q] = (uint32_t)tok;
        a->confidence[q] = conf(a->conf, l, V, tok);
    }
    free(idx); free(kept);
    return 0;
}
