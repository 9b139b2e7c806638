/* kernels/cuda/select.cu — token selection (dl_k_select_tokens) on the GPU:
 * a line-by-line port of kernels/cpu/select.c (the rules are kernels.h's,
 * "token selection"), one block per position.  The block applies cfg and
 * the suppressions in parallel; the draw and the confidence then run in
 * the block's thread 0 in exactly the CPU's order (float64 where it uses
 * float64; this file is built with -fmad=false so no product is fused), so
 * the result equals the CPU's up to the last-bit differences of the device
 * exp / log against glibc's.  Only tok and confidence are written back: the
 * logits never leave the device.
 * Scratch: when a top-k / top-p filter runs, M x (2 V ids + V flags) from
 * cudaMallocAsync, freed at the end of the call; -1 when it cannot be had.
 * Does not (first version, correct before fast): parallel argmax /
 * softmax reductions, a parallel sort; a position costs O(V) (O(V log V)
 * with top-p) serial work on one thread.
 */
#include <math.h>
#include "cuda.h"
#include "../kphilox.h"

struct sel_scratch { int32_t *idx, *tmp; uint8_t *kept; };

__device__ static int before(const float *l, int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); }

__device__ static void select_top(const float *l, int32_t *idx, int n, int k) {
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

/* bottom-up merge sort, best first (the order is total, so it equals the
 * CPU's recursive one); runs of 16 by insertion first */
__device__ static void msort(const float *l, int32_t *a, int32_t *tmp, int n) {
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

__device__ static int argmax_row(const float *l, int V) {
    int best = 0;
    for (int v = 1; v < V; v++)
        if (l[v] > l[best]) best = v;
    return best;
}

struct unif {
    const dl_select_args *a;
    uint64_t stream, base, blk;
    uint32_t w[4];
};

__device__ static double unif_at(unif *u, uint64_t j) {
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

__device__ static int pick_gumbel(const dl_select_args *a, const float *l, unif *u, sel_scratch *s) {
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

__device__ static int pick_invcdf(const dl_select_args *a, const float *l, unif *u, sel_scratch *s) {
    const int V = a->V;
    const double T = a->temperature;
    int top = argmax_row(l, V);
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

__device__ static double confidence(dl_sel_conf kind, const float *l, int V, int tok) {
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
            if (l[v] == mx && !seen_max) seen_max = 1;
            else if (e > e2) e2 = e;
        }
    }
    if (kind == DL_CONF_MARGIN) return 1.0 / sum - e2 / sum;
    if (kind == DL_CONF_NEGENT) return sl / sum - log(sum);
    return exp((double)l[tok] - (double)mx) / sum;
}

/* one block per position q; a is passed by value (its pointers are device
 * pointers); scratch NULL when no filter runs */
__global__ void k_select(dl_select_args a, int32_t *scr_idx, uint8_t *scr_kept) {
    const int q = blockIdx.x, V = a.V;
    float *l = a.logits + (size_t)(a.row ? a.row[q] : q) * V;
    if (a.cfg) {
        const float *un = a.logits + (size_t)(a.M + q) * V;
        for (int v = threadIdx.x; v < V; v += blockDim.x) l[v] = un[v] + a.cfg_w1 * (l[v] - un[v]);
    }
    __syncthreads();
    if (threadIdx.x != 0) return;
    for (int i = 0; i < a.n_suppress; i++)
        if (a.suppress[i] < (uint32_t)V) l[a.suppress[i]] = -INFINITY;
    if (a.mask_id < (uint32_t)V) l[a.mask_id] = -INFINITY;
    sel_scratch s = { scr_idx ? scr_idx + (size_t)q * 2 * V : NULL, scr_idx ? scr_idx + (size_t)q * 2 * V + V : NULL,
                      scr_kept ? scr_kept + (size_t)q * V : NULL };
    unif u;
    u.a = &a;
    u.stream = a.noise_stream ? a.noise_stream[q] : 0;
    u.base = a.noise_base ? a.noise_base[q] : 0;
    u.blk = UINT64_MAX;
    int tok;
    if (a.draw == DL_SEL_ARGMAX || a.temperature <= 0) tok = argmax_row(l, V);
    else if (a.draw == DL_SEL_GUMBEL) tok = pick_gumbel(&a, l, &u, &s);
    else tok = pick_invcdf(&a, l, &u, &s);
    a.tok[q] = (uint32_t)tok;
    a.confidence[q] = confidence(a.conf, l, V, tok);
}

int cu_select_tokens(dl_dev *d, const dl_select_args *a) {
    DL_K_ASSERT(a->draw != DL_SEL_DREAM);   /* Dream's algs (issue 10) are not ported yet: refuse, never guess */
    if (a->M <= 0) return 0;
    cudaStream_t s = cu_stream(d);
    int filt = a->temperature > 0 && a->draw != DL_SEL_ARGMAX &&
               ((a->top_k > 0 && a->top_k < a->V) || (a->top_p > 0 && a->top_p < 1) ||
                (a->draw == DL_SEL_INVCDF && a->top_p < 1));
    int32_t *idx = NULL;
    uint8_t *kept = NULL;
    if (filt) {
        size_t n = (size_t)a->M * a->V;
        if (cudaMallocAsync((void **)&idx, n * 2 * sizeof(int32_t), s) != cudaSuccess ||
            cudaMallocAsync((void **)&kept, n, s) != cudaSuccess) {
            cudaGetLastError();
            if (idx) cudaFreeAsync(idx, s);
            return -1;
        }
    }
    k_select<<<a->M, 128, 0, s>>>(*a, idx, kept);
    CUDA_LAUNCHED();
    if (filt) { CUDA_CHECK(cudaFreeAsync(idx, s)); CUDA_CHECK(cudaFreeAsync(kept, s)); }
    return 0;
}
