/* kernels/ref/attention.c — reference attention (full, with the three masks,
 * lens and GQA; forward and backward) and KV-cache attention, one query row
 * at a time in float64.
 *   S_ij = s q_i.k_j (s = 1/sqrt(E)) on the visible keys j < jmax(i) (ref.h)
 *   (DL_ATTN_BD3: j < jmax(i) with dl_attn_visible, P = 0 on the holes);
 *   lse_i = log sum_j exp(S_ij); P_ij = exp(S_ij - lse_i); O_i = sum_j P_ij v_j
 *   dP_ij = dO_i.v_j; dS_ij = P_ij (dP_ij - sum_j P_ij dP_ij)
 *   dq_i = s sum_j dS_ij k_j; dk_j = s sum_{h,i} dS_ij q_i; dv_j = sum_{h,i} P_ij dO_i
 * The backward recomputes P from q and k itself: it reads neither att nor
 * lse nor out, so it checks a backend's backward independently of that
 * backend's forward.  Scratch (float64): a P row, a dP row, and dK, dV
 * accumulators of one (b, kv head): 2 T + 2 T E doubles.
 * Does not: threads, tiling; a query with no visible key gets out = 0,
 * lse = -inf and contributes no gradient.
 */
#include "ref.h"

static int len_of(const int32_t *lens, int b, int T) {
    int len = lens ? lens[b] : T;
    return len > T ? T : len < 0 ? 0 : len;
}

/* p[0..jm) = P row i of (b, h) in float64; returns lse */
/* vis (jm) or NULL (all of [0, jm) visible): invisible entries get p = 0 */
static double prob_row_vis(double *p, dl_dtype dt, const void *q, const void *k, size_t qoff, size_t koff0,
                           size_t ldk, int jm, int E, const char *vis) {
    double s = 1.0 / sqrt((double)E), mx = -INFINITY, sum = 0;
    int any = 0;
    for (int j = 0; j < jm; j++) {
        double a = 0;
        for (int e = 0; e < E; e++) a += ld(q, dt, qoff + e) * ld(k, dt, koff0 + (size_t)j * ldk + e);
        p[j] = s * a;
        if (!vis || vis[j]) { mx = fmax(mx, p[j]); any = 1; }
    }
    for (int j = 0; j < jm; j++) if (!vis || vis[j]) sum += exp(p[j] - mx);
    double lse = any ? mx + log(sum) : -INFINITY;
    for (int j = 0; j < jm; j++) p[j] = !vis || vis[j] ? exp(p[j] - lse) : 0.0;
    return lse;
}
static double prob_row(double *p, dl_dtype dt, const void *q, const void *k, size_t qoff, size_t koff0, size_t ldk,
                       int jm, int E) {
    return prob_row_vis(p, dt, q, k, qoff, koff0, ldk, jm, E, NULL);
}
/* the mask of query i: vis[0..T) (DL_ATTN_BD3) or NULL (a prefix [0, jm)) */
static const char *vis_of(char *vis, int i, int len, int T, dl_attn_mask mask, int block) {
    if (mask != DL_ATTN_BD3) return NULL;
    for (int j = 0; j < T; j++) vis[j] = (char)dl_attn_visible(i, j, len, T, mask, block);
    return vis;
}

void ref_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                       const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block) {
    (void)d;
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0 && (mask != DL_ATTN_BLOCK || block > 0) &&
                (mask != DL_ATTN_BD3 || (block > 0 && T > 0 && T % 2 == 0)));
    double p[T > 0 ? T : 1];
    char vis[T > 0 ? T : 1];
    size_t ldq = (size_t)Hq * E, ldk = (size_t)Hk * E;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < Hq; h++) {
            int g = h / (Hq / Hk), len = len_of(lens, b, T);
            size_t koff = (size_t)b * T * ldk + (size_t)g * E;
            for (int i = 0; i < T; i++) {
                int jm = ref_jmax(i, len, T, mask, block);
                size_t qoff = ((size_t)b * T + i) * ldq + (size_t)h * E;
                lse[((size_t)b * Hq + h) * T + i] =
                    (float)prob_row_vis(p, dt, q, k, qoff, koff, ldk, jm, E, vis_of(vis, i, len, T, mask, block));
                for (int e = 0; e < E; e++) {
                    double o = 0;
                    for (int j = 0; j < jm; j++) o += p[j] * ld(v, dt, koff + (size_t)j * ldk + e);
                    st(out, dt, qoff + e, o);
                }
                if (att) {
                    float *a = att + (((size_t)b * Hq + h) * T + i) * T;
                    for (int j = 0; j < T; j++) a[j] = j < jm ? (float)p[j] : 0.0f;
                }
            }
        }
}

size_t ref_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att) {
    (void)d; (void)B; (void)Hq; (void)Hk; (void)have_att;
    return sizeof(double) * (2 * (size_t)T + 2 * (size_t)T * E);
}

void ref_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                       const void *out, const float *lse, const float *att, const void *q, const void *k,
                       const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                       dl_attn_mask mask, int block) {
    (void)d; (void)out; (void)lse; (void)att;
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0 && (mask != DL_ATTN_BLOCK || block > 0) &&
                (mask != DL_ATTN_BD3 || (block > 0 && T > 0 && T % 2 == 0)));
    double *p = scratch, *dp = p + T, *dK = dp + T, *dV = dK + (size_t)T * E;
    char vis[T > 0 ? T : 1];
    size_t ldq = (size_t)Hq * E, ldk = (size_t)Hk * E;
    double s = 1.0 / sqrt((double)E);
    int rep = Hq / Hk;
    for (int b = 0; b < B; b++)
        for (int g = 0; g < Hk; g++) {
            int len = len_of(lens, b, T);
            size_t koff = (size_t)b * T * ldk + (size_t)g * E;
            memset(dK, 0, sizeof(double) * (size_t)T * E);
            memset(dV, 0, sizeof(double) * (size_t)T * E);
            for (int h = g * rep; h < (g + 1) * rep; h++)
                for (int i = 0; i < T; i++) {
                    int jm = ref_jmax(i, len, T, mask, block);
                    size_t qoff = ((size_t)b * T + i) * ldq + (size_t)h * E;
                    prob_row_vis(p, dt, q, k, qoff, koff, ldk, jm, E, vis_of(vis, i, len, T, mask, block));
                    double rd = 0;
                    for (int j = 0; j < jm; j++) {
                        double a = 0;
                        for (int e = 0; e < E; e++) a += ld(dout, dt, qoff + e) * ld(v, dt, koff + (size_t)j * ldk + e);
                        dp[j] = a;
                        rd += p[j] * a;
                    }
                    for (int j = 0; j < jm; j++) dp[j] = p[j] * (dp[j] - rd);   /* dS */
                    for (int e = 0; e < E; e++) {
                        double a = 0;
                        for (int j = 0; j < jm; j++) a += dp[j] * ld(k, dt, koff + (size_t)j * ldk + e);
                        st(dq, dt, qoff + e, s * a);
                    }
                    for (int j = 0; j < jm; j++)
                        for (int e = 0; e < E; e++) {
                            dK[(size_t)j * E + e] += s * dp[j] * ld(q, dt, qoff + e);
                            dV[(size_t)j * E + e] += p[j] * ld(dout, dt, qoff + e);
                        }
                }
            for (int j = 0; j < T; j++)
                for (int e = 0; e < E; e++) {
                    st(dk, dt, koff + (size_t)j * ldk + e, dK[(size_t)j * E + e]);
                    st(dv, dt, koff + (size_t)j * ldk + e, dV[(size_t)j * E + e]);
                }
        }
}

void ref_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                          const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E) {
    (void)d;
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0);
    double p[Tmax > 0 ? Tmax : 1];
    size_t ldq = (size_t)Hq * E, ldk = (size_t)Hk * E;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++)
            for (int h = 0; h < Hq; h++) {
                int nk = n_past[b] + j + 1;
                nk = nk > Tmax ? Tmax : nk < 0 ? 0 : nk;
                size_t qoff = ((size_t)b * n + j) * ldq + (size_t)h * E;
                size_t koff = (size_t)b * Tmax * ldk + (size_t)(h / (Hq / Hk)) * E;
                prob_row(p, dt, q, kcache, qoff, koff, ldk, nk, E);
                for (int e = 0; e < E; e++) {
                    double o = 0;
                    for (int t = 0; t < nk; t++) o += p[t] * ld(vcache, dt, koff + (size_t)t * ldk + e);
                    st(out, dt, qoff + e, o);
                }
            }
}

void ref_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                              const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                              int Hq, int Hk, int E) {
    (void)d;
    DL_K_ASSERT(Hk > 0 && Hq % Hk == 0);
    double p[Tmax > 0 ? Tmax : 1];
    size_t ldq = (size_t)Hq * E, ldk = (size_t)Hk * E;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++)
            for (int h = 0; h < Hq; h++) {
                int nk = n_keys[b] > Tmax ? Tmax : n_keys[b] < 0 ? 0 : n_keys[b];
                size_t r = rows ? (size_t)rows[b] : (size_t)b;
                size_t qoff = ((size_t)b * n + j) * ldq + (size_t)h * E;
                size_t koff = r * Tmax * ldk + (size_t)(h / (Hq / Hk)) * E;
                prob_row(p, dt, q, kcache, qoff, koff, ldk, nk, E);
                for (int e = 0; e < E; e++) {
                    double o = 0;
                    for (int t = 0; t < nk; t++) o += p[t] * ld(vcache, dt, koff + (size_t)t * ldk + e);
                    st(out, dt, qoff + e, o);
                }
            }
}
