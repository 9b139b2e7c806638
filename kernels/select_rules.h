/* kernels/select_rules.h — the per-position rules of token selection
 * (kernels.h "token selection": argmax, Gumbel-max with top-k / top-p,
 * inverse-CDF, Dream's sample_tokens, the confidences), written once for the
 * backends that run them a position at a time: kernels/cpu/select.c (one
 * OpenMP task per position) and kernels/cuda/select.cu (one GPU thread per
 * position, after the block applied cfg).  Float64 where the samplers used
 * float64, no fused multiply-adds (select.cu is built with -fmad=false), so
 * both give the reference backend's result; kernels/ref/select.c stays a
 * separate, plainer implementation on purpose: it is what these are tested
 * against.
 * Include after kernels.h.  Scratch: sel_scratch, V ids + V ids + V flags,
 * needed only when a filter runs.  Not here: cfg, suppression, scheduling.
 */
#ifndef KERNELS_SELECT_RULES_H
#define KERNELS_SELECT_RULES_H
#include <math.h>
#include <stdint.h>
#include "kphilox.h"

/* SEL_FN: runs where the positions run; SEL_HD: also on the host (launch set-up) */
#ifdef __CUDACC__
#define SEL_FN __device__ static
#define SEL_HD __host__ __device__ static inline
#else
#define SEL_FN static
#define SEL_HD static inline
#endif

typedef struct {
    int32_t *idx, *tmp;   /* (V) each */
    uint8_t *kept;        /* (V) */
} sel_scratch;

/* a ranks before b: larger logit, then lower id */
SEL_FN int before(const float *l, int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); }

/* Reorder idx[0..n) so that idx[0..k) are the k best (unordered). */
SEL_FN void select_top(const float *l, int32_t *idx, int n, int k) {
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

/* Sort a[0..n) best first (tmp: n slots): runs of 16 by insertion, then
 * bottom-up merges (no recursion: it also runs on a GPU thread).  The order
 * is total, so any correct sort gives the same sequence. */
SEL_FN void msort(const float *l, int32_t *a, int32_t *tmp, int n) {
    for (int s = 0; s < n; s += 16) {
        int e = s + 16 < n ? s + 16 : n;
        for (int i = s + 1; i < e; i++) {
            int32_t v = a[i];
            int j = i - 1;
            while (j >= s && before(l, v, a[j])) { a[j + 1] = a[j]; j--; }
            a[j + 1] = v;
        }
    }
    for (int w = 16; w < n; w *= 2) {
        for (int s = 0; s < n; s += 2 * w) {
            int h = s + w < n ? s + w : n, e = s + 2 * w < n ? s + 2 * w : n;
            int i = s, j = h, k = s;
            while (i < h && j < e) tmp[k++] = before(l, a[j], a[i]) ? a[j++] : a[i++];
            while (i < h) tmp[k++] = a[i++];
            while (j < e) tmp[k++] = a[j++];
        }
        for (int k = 0; k < n; k++) a[k] = tmp[k];
    }
}

SEL_FN int sel_argmax(const float *l, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (l[v] > l[best]) best = v;
    return best;
}

/* Uniforms of one position: Philox blocks cached two at a time. */
typedef struct {
    const dl_select_args *a;
    uint64_t stream, base, blk;
    uint32_t w[4];
} unif;

SEL_FN double unif_at(unif *u, uint64_t j) {
    uint64_t i = u->base + j;
    if (u->a->noise) return u->a->noise[i];
    uint64_t blk = i >> 1;
    if (blk != u->blk) {
        uint32_t ctr[4] = { (uint32_t)u->stream, (uint32_t)(u->stream >> 32),
                            (uint32_t)(((blk >> 32) << 8) | u->a->purpose), (uint32_t)blk };
        kphilox4x32_10(u->a->key, ctr, u->w);
        u->blk = blk;
    }
    int h = (int)(i & 1);
    uint64_t x = (uint64_t)u->w[2 * h] | (uint64_t)u->w[2 * h + 1] << 32;
    return ((double)(x >> 12) + 0.5) * 0x1.0p-52;
}

/* Diffusion rule (kernels.h DL_SEL_GUMBEL). */
SEL_FN int pick_gumbel(const dl_select_args *a, const float *l, unif *u, sel_scratch *s) {
    const int V = a->V;
    const double T = a->temperature;
    int filtered = (a->top_k > 0 && a->top_k < V) || (a->top_p > 0 && a->top_p < 1);
    if (!filtered) {
        int best = -1;
        double bs = -INFINITY;
        for (int v = 0; v < V; v++) {
            if (l[v] == -INFINITY) continue;
            double sc = (double)l[v] - T * log(-log(unif_at(u, (uint64_t)v)));
            if (best < 0 || sc > bs) { bs = sc; best = v; }
        }
        return best < 0 ? 0 : best;
    }
    int32_t *idx = s->idx;
    int n = V;
    for (int v = 0; v < V; v++) idx[v] = v;
    if (a->top_k > 0 && a->top_k < V) {
        select_top(l, idx, V, a->top_k);
        n = a->top_k;
    }
    if (a->top_p > 0 && a->top_p < 1) {
        msort(l, idx, s->tmp, n);
        double mx = (double)l[idx[0]] / T, sum = 0;
        for (int i = 0; i < n; i++) sum += exp((double)l[idx[i]] / T - mx);
        double c = 0;
        int keep = 0;
        while (keep < n && (keep == 0 || c < a->top_p)) {
            c += exp((double)l[idx[keep]] / T - mx) / sum;
            keep++;
        }
        n = keep;
    }
    int best = -1;
    double bs = -INFINITY;
    for (int i = 0; i < n; i++) {
        int v = idx[i];
        if (l[v] == -INFINITY) continue;
        double sc = (double)l[v] - T * log(-log(unif_at(u, (uint64_t)v)));
        if (best < 0 || sc > bs || (sc == bs && v < best)) { bs = sc; best = v; }
    }
    return best < 0 ? idx[0] : best;
}

/* Autoregressive rule (kernels.h DL_SEL_INVCDF). */
SEL_FN int pick_invcdf(const dl_select_args *a, const float *l, unif *u, sel_scratch *s) {
    const int V = a->V;
    const double T = a->temperature;
    int top = sel_argmax(l, V);
    double zmax = (double)l[top] / T;
    int filter = (a->top_k > 0 && a->top_k < V) || a->top_p < 1.0;
    if (filter) {
        int n = 0;
        for (int i = 0; i < V; i++)
            if (l[i] > -INFINITY) s->idx[n++] = i;
        msort(l, s->idx, s->tmp, n);
        if (a->top_k > 0 && a->top_k < n) n = a->top_k;
        if (a->top_p < 1.0 && n > 1) {
            double tot = 0.0, cum = 0.0;
            for (int i = 0; i < n; i++) tot += exp((double)l[s->idx[i]] / T - zmax);
            int keep = n;
            for (int i = 0; i < n; i++) {
                cum += exp((double)l[s->idx[i]] / T - zmax);
                if (cum >= a->top_p * tot) { keep = i + 1; break; }
            }
            n = keep;
        }
        for (int i = 0; i < V; i++) s->kept[i] = 0;
        for (int i = 0; i < n; i++) s->kept[s->idx[i]] = 1;
    }
    double W = 0.0;
    for (int i = 0; i < V; i++)
        if (!filter || s->kept[i]) W += exp((double)l[i] / T - zmax);
    double uu = unif_at(u, 0);
    if (!(W > 0.0)) return top;
    double target = uu * W, cum = 0.0;
    int last = top;
    for (int i = 0; i < V; i++) {
        if (filter && !s->kept[i]) continue;
        double w = exp((double)l[i] / T - zmax);
        if (w > 0.0) last = i;
        cum += w;
        if (cum > target) return i;
    }
    return last;
}

/* ---- Dream's sample_tokens (kernels.h DL_SEL_DREAM) ---------------------- */
SEL_FN double ztemp(const float *l, int v, double T) { return T > 0 ? (double)l[v] / T : (double)l[v]; }

/* Mark the ids Dream's top-p then top-k keep (kept[v] = 1); idx, tmp scratch. */
SEL_FN void dream_keep(const dl_select_args *a, const float *l, sel_scratch *s) {
    const int V = a->V, k = a->top_k;
    const double T = a->temperature;
    int32_t *idx = s->idx;
    uint8_t *kept = s->kept;
    for (int v = 0; v < V; v++) idx[v] = v;
    if (a->top_p > 0 && a->top_p < 1) {
        msort(l, idx, s->tmp, V);
        double zmax = ztemp(l, idx[0], T), sum = 0;
        for (int v = 0; v < V; v++) sum += exp(ztemp(l, v, T) - zmax);
        double c = exp(ztemp(l, idx[0], T) - zmax) / sum;
        int n = 1;   /* idx[n] kept while the mass through idx[n-1] is <= p */
        while (n < V && c <= a->top_p) { c += exp(ztemp(l, idx[n], T) - zmax) / sum; n++; }
        float lk = k > 0 && k < n ? l[idx[k - 1]] : -INFINITY;   /* top-k within them, ties kept */
        for (int v = 0; v < V; v++) kept[v] = 0;
        for (int j = 0; j < n; j++) kept[idx[j]] = l[idx[j]] >= lk;
        return;
    }
    select_top(l, idx, V, k);   /* top-k alone: the k-th best value, ties kept */
    float lk = l[idx[0]];
    for (int j = 1; j < k; j++) if (l[idx[j]] < lk) lk = l[idx[j]];
    for (int v = 0; v < V; v++) kept[v] = l[v] >= lk;
}

/* Token and confidence from q = softmax(z) over the kept ids (all when
 * unfiltered): sums in increasing id order, as the reference. */
SEL_FN int pick_dream(const dl_select_args *a, const float *l, unif *u, sel_scratch *s, double *conf) {
    const int V = a->V;
    const double T = a->temperature;
    const uint8_t *kept = NULL;
    if ((a->top_k > 0 && a->top_k < V) || (a->top_p > 0 && a->top_p < 1)) {
        dream_keep(a, l, s);
        kept = s->kept;
    }
    int top = sel_argmax(l, V), tok = top;
    if (T > 0) {
        int best = -1;
        double bs = -INFINITY;
        for (int v = 0; v < V; v++) {
            if ((kept && !kept[v]) || l[v] == -INFINITY) continue;
            double sc = (double)l[v] - T * log(-log(unif_at(u, (uint64_t)v)));
            if (best < 0 || sc > bs) { bs = sc; best = v; }
        }
        if (best >= 0) tok = best;
    }
    *conf = 0;
    if (a->conf == DL_CONF_NONE || !(l[top] > -INFINITY)) return tok;
    double zmax = ztemp(l, top, T), sum = 0, e2 = 0;
    for (int v = 0; v < V; v++) {
        if (kept && !kept[v]) continue;
        double e = exp(ztemp(l, v, T) - zmax);
        sum += e;
        if (v != top && e > e2) e2 = e;
    }
    if (a->conf == DL_CONF_MARGIN) { *conf = 1.0 / sum - e2 / sum; return tok; }
    if (a->conf == DL_CONF_NEGENT) {
        double h = 0;
        for (int v = 0; v < V; v++) {
            if (kept && !kept[v]) continue;
            double q = exp(ztemp(l, v, T) - zmax) / sum;
            h += q * log(q + 1e-10);
        }
        *conf = h;
        return tok;
    }
    *conf = exp(ztemp(l, tok, T) - zmax) / sum;
    return tok;
}

/* Noise-free softmax statistics (kernels.h step 4). */
SEL_FN double confidence(dl_sel_conf kind, const float *l, int V, int tok) {
    if (kind == DL_CONF_NONE) return 0.0;
    float mx = l[0];
    for (int v = 1; v < V; v++) if (l[v] > mx) mx = l[v];
    if (kind == DL_CONF_PROB0 && !(mx > -INFINITY)) return 0.0;
    double sum = 0, sl = 0, e2 = 0;
    int seen_max = 0;
    for (int v = 0; v < V; v++) {
        double dd = (double)l[v] - (double)mx;
        double e = exp(dd);
        sum += e;
        if (kind == DL_CONF_NEGENT && e > 0) sl += e * dd;
        if (kind == DL_CONF_MARGIN) {
            if (l[v] == mx && !seen_max) seen_max = 1;   /* the max itself, once */
            else if (e > e2) e2 = e;
        }
    }
    if (kind == DL_CONF_MARGIN) return 1.0 / sum - e2 / sum;
    if (kind == DL_CONF_NEGENT) return sl / sum - log(sum);
    return exp((double)l[tok] - (double)mx) / sum;
}

/* The selected token and confidence of position q from its logits l (cfg
 * and suppressions already applied): the draw a->draw asks for. */
SEL_FN void sel_position(const dl_select_args *a, int q, const float *l, sel_scratch *s) {
    const int V = a->V;
    unif u;
    u.a = a;
    u.stream = a->noise_stream ? a->noise_stream[q] : 0;
    u.base = a->noise_base ? a->noise_base[q] : 0;
    u.blk = UINT64_MAX;
    if (a->draw == DL_SEL_DREAM) {
        double c;
        a->tok[q] = (uint32_t)pick_dream(a, l, &u, s, &c);
        a->confidence[q] = c;
        return;
    }
    int tok;
    if (a->draw == DL_SEL_ARGMAX || a->temperature <= 0) tok = sel_argmax(l, V);
    else if (a->draw == DL_SEL_GUMBEL) tok = pick_gumbel(a, l, &u, s);
    else tok = pick_invcdf(a, l, &u, s);
    a->tok[q] = (uint32_t)tok;
    a->confidence[q] = confidence(a->conf, l, V, tok);
}

/* Whether the call needs scratch (a top-k / top-p filter runs). */
SEL_HD int sel_needs_scratch(const dl_select_args *a) {
    if (a->draw == DL_SEL_DREAM)   /* Dream filters at every temperature: they shape q */
        return (a->top_k > 0 && a->top_k < a->V) || (a->top_p > 0 && a->top_p < 1);
    return a->temperature > 0 && a->draw != DL_SEL_ARGMAX &&
           ((a->top_k > 0 && a->top_k < a->V) || (a->top_p > 0 && a->top_p < 1) ||
            (a->draw == DL_SEL_INVCDF && a->top_p < 1));
}

#endif
