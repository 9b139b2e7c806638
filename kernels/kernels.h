/* kernels/kernels.h — every compute op of the dllm transformer, forward and
 * backward, behind one header.  kernels/cpu/ is the readable reference
 * (plain loops + OpenMP, CBLAS sgemm); kernels/cuda/ (issue 5/6) will
 * implement the same signatures and be tested against it.
 *
 * Conventions
 *  - Every op takes the backend handle first.  Every pointer is a DEVICE
 *    pointer (host memory on CPU, GPU memory on CUDA): no op reads host
 *    memory except through dl_dev_memcpy.  Ops that return a scalar to the
 *    host say so (they synchronise).
 *  - Shapes in the legend letters: N rows (= B*T tokens), D model dim,
 *    V vocab, Hq query heads, Hk key/value heads, E head dim, F MLP hidden,
 *    M selected (loss) positions.  Row-major; weights in Hugging Face
 *    nn.Linear layout (out_features, in_features).
 *  - Backward ops ACCUMULATE into weight gradients (dw += ...) and OVERWRITE
 *    input gradients (dx = ...) unless the comment says otherwise, so the
 *    caller zeroes weight grads once per optimizer step and can accumulate
 *    micro-batches.
 *  - fp32 everywhere on CPU.  fp32 master weights live apart from compute
 *    buffers (dl_model.h); a CUDA twin may compute in bf16 from a copy.
 */
#ifndef DL_KERNELS_H
#define DL_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ backend */
typedef enum { DL_DEV_CPU = 0, DL_DEV_CUDA = 1 } dl_dev_kind;
typedef struct dl_dev dl_dev;     /* opaque: kind, threads, BLAS/cuBLAS handles, scratch */

/* index: GPU ordinal (CUDA) or thread count (CPU, 0 = OpenMP default).
 * Returns 0 or -DL_EXIT_DEVICE (-4) with err set (e.g. CUDA not built). */
int dl_dev_open(dl_dev **d, dl_dev_kind kind, int index, char *err, size_t errlen);
void dl_dev_close(dl_dev *d);
dl_dev_kind dl_dev_kind_of(const dl_dev *d);
const char *dl_dev_describe(const dl_dev *d);   /* "cpu (2 threads, OpenBLAS 0.3.21)" */
void *dl_dev_alloc(dl_dev *d, size_t bytes);    /* zero-filled; NULL on failure */
void dl_dev_free(dl_dev *d, void *p);
void dl_dev_memset0(dl_dev *d, void *p, size_t bytes);
void dl_dev_h2d(dl_dev *d, void *dst, const void *src, size_t bytes);
void dl_dev_d2h(dl_dev *d, void *dst, const void *src, size_t bytes);
void dl_dev_d2d(dl_dev *d, void *dst, const void *src, size_t bytes);
void dl_dev_sync(dl_dev *d);
int dl_dev_threads(const dl_dev *d);            /* CPU: OpenMP threads the ops use; CUDA: 1 */
/* CPU only, for tests and benchmarks: on = 1 routes every matmul through
 * OpenBLAS sgemm (the default when built with it), 0 through the plain-C
 * GEMM, -1 only asks.  Returns the setting now in effect (0 without OpenBLAS). */
int dl_dev_cpu_blas(dl_dev *d, int on);

/* ------------------------------------------------------------ embedding */
/* out (N,D) = wte[ids[n]] ; ids (N) < V */
void dl_k_embedding_fwd(dl_dev *d, float *out, const uint32_t *ids, const float *wte, int N, int D);
/* dwte[ids[n]] += dout[n]  (deterministic: serial per vocab row) */
void dl_k_embedding_bwd(dl_dev *d, float *dwte, const float *dout, const uint32_t *ids, int N, int D);

/* ------------------------------------------------------------ RMSNorm */
/* y = x * rstd * w,  rstd (N) = 1/sqrt(mean(x^2) + eps) saved for backward */
void dl_k_rmsnorm_fwd(dl_dev *d, float *y, float *rstd, const float *x, const float *w, int N, int D, float eps);
/* dx (N,D) += ..., dw (D) += ...   (dx ACCUMULATES: it is the residual stream) */
void dl_k_rmsnorm_bwd(dl_dev *d, float *dx, float *dw, const float *dy, const float *x, const float *w,
                      const float *rstd, int N, int D);

/* ------------------------------------------------------------ linear */
/* out (N,O) = inp (N,C) @ w (O,C)^T + bias (O) [bias may be NULL] */
void dl_k_linear_fwd(dl_dev *d, float *out, const float *inp, const float *w, const float *bias, int N, int C, int O);
/* dinp (N,C) = dout @ w  [dinp NULL: skip];  dw (O,C) += dout^T @ inp;  dbias (O) += sum dout [NULL: skip] */
void dl_k_linear_bwd(dl_dev *d, float *dinp, float *dw, float *dbias, const float *dout, const float *inp,
                     const float *w, int N, int C, int O);

/* ------------------------------------------------------------ RoPE */
typedef enum {
    DL_ROPE_HALF = 0,   /* Hugging Face rotate_half: pairs (i, i + E/2) */
    DL_ROPE_PAIRS = 1   /* Meta / llama2.c: adjacent pairs (2i, 2i+1) */
} dl_rope_layout;
/* In place on x (N, H, E); pos (N) is each row's position.  freq_j = theta^(-2j/E).
 * inverse = 1 rotates by -angle (that is the backward: dx = R^T dy).
 * CPU: cos/sin come from a table the device keeps per (theta, E). */
void dl_k_rope(dl_dev *d, float *x, const int32_t *pos, int N, int H, int E, float theta,
               dl_rope_layout layout, int inverse);

/* ------------------------------------------------------------ attention */
typedef enum {
    DL_ATTN_BIDIR = 0,   /* every query sees every valid key (diffusion) */
    DL_ATTN_CAUSAL = 1,  /* key <= query (autoregressive) */
    DL_ATTN_BLOCK = 2    /* block-causal: key block <= query block (block diffusion) */
} dl_attn_mask;
/* q (B,T,Hq,E), k/v (B,T,Hk,E), Hq % Hk == 0 (GQA: query head h uses kv head h/(Hq/Hk)).
 * lens (B): keys at positions >= lens[b] are invisible (random-length cut,
 * padding); NULL = all T.  out (B,T,Hq,E); att (B,Hq,T,T) softmax probs saved
 * for backward, invisible entries exactly 0 (a query with no visible key,
 * lens[b] = 0, gets all-zero probs and out = 0).  scale = 1/sqrt(E).
 * block: block size of DL_ATTN_BLOCK (> 0), ignored otherwise. */
void dl_k_attention_fwd(dl_dev *d, float *out, float *att, const float *q, const float *k, const float *v,
                        const int32_t *lens, int B, int T, int Hq, int Hk, int E, dl_attn_mask mask, int block);
/* dq (B,T,Hq,E), dk/dv (B,T,Hk,E) overwritten.  scratch: (B,Hq,T,T) floats.
 * No mask argument: the visible keys are read off the zeros of att. */
void dl_k_attention_bwd(dl_dev *d, float *dq, float *dk, float *dv, float *scratch, const float *dout,
                        const float *att, const float *q, const float *k, const float *v,
                        int B, int T, int Hq, int Hk, int E);

/* ------------------------------------------------------------ SwiGLU */
/* out (N,F) = silu(gate) * up */
void dl_k_swiglu_fwd(dl_dev *d, float *out, const float *gate, const float *up, int N, int F);
void dl_k_swiglu_bwd(dl_dev *d, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                     int N, int F);

/* ------------------------------------------------------------ elementwise */
void dl_k_add(dl_dev *d, float *y, const float *a, const float *b, size_t n);   /* y = a + b (y may alias) */
void dl_k_add_inplace(dl_dev *d, float *y, const float *x, size_t n);           /* y += x */
/* out (M,D) = in[idx[m]];  idx (M) rows of in (N,D) */
void dl_k_gather_rows(dl_dev *d, float *out, const float *in, const int32_t *idx, int M, int D);
/* out[idx[m]] += in[m]  (idx may repeat: deterministic serial order) */
void dl_k_scatter_add_rows(dl_dev *d, float *out, const float *in, const int32_t *idx, int M, int D);

/* ------------------------------------------------------------ cross-entropy */
/* The output head runs only on the M positions that carry loss: the caller
 * gathers their hidden states and calls dl_k_linear_fwd to get logits (M,V).
 * In place: logits -> softmax probs; ce (M) = -log p[target]  (float64 sum
 * inside for stability). suppress: nothing; targets (M) < V. */
void dl_k_softmax_xent_fwd(dl_dev *d, float *ce, float *probs_inout, const uint32_t *targets, int M, int V);
/* In place: probs -> dlogits = dce[m] * (p - onehot(target)).  dce (M) is
 * d loss / d ce_m, chosen by the caller (loss normalisation, 1/t, path loss). */
void dl_k_softmax_xent_bwd(dl_dev *d, float *dlogits_inout, const float *dce, const uint32_t *targets, int M, int V);

/* ------------------------------------------------------------ optimizer */
/* sum of squares of x (n), returned to the host (synchronises). float64 accumulate. */
double dl_k_sumsq(dl_dev *d, const float *x, size_t n);
/* AdamW (Loshchilov & Hutter), torch.optim.AdamW's single-tensor path in
 * its operation order (bc1 = 1-b1^step, bc2 = 1-b2^step):
 *   g = grad * grad_scale                      (grad_scale: clipping factor)
 *   p = p * (1 - lr*wd)                        (decoupled decay first)
 *   m = m + (1-b1) (g - m);  v = b2 v + (1-b2) g^2
 *   p = p - (lr/bc1) * ( m / (sqrt(v)/sqrt(bc2) + eps) )
 * weight decay applied to every element of this call (callers split decayed /
 * non-decayed tensors).  step >= 1. */
void dl_k_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr,
                float b1, float b2, float eps, float wd, int step, float grad_scale);
void dl_k_scale(dl_dev *d, float *x, float s, size_t n);   /* x *= s */

/* ------------------------------------------------------------ KV-cache attention */
/* Incremental causal decoding (dl_model_forward_kv).  q, out (B,n,Hq,E): the
 * n new queries of each row; kcache, vcache (B,Tmax,Hk,E) already hold the
 * new tokens' keys / values at positions n_past[b] .. n_past[b]+n-1.
 * n_past (B, device): tokens of row b before this call.  Query j of row b
 * sees keys [0, n_past[b] + j] (clamped to Tmax); GQA as above; scale
 * 1/sqrt(E).  Equals dl_k_attention_fwd DL_ATTN_CAUSAL on the whole prefix up
 * to fp32 rounding.  No probabilities are kept (inference only). */
void dl_k_attention_kv_fwd(dl_dev *d, float *out, const float *q, const float *kcache, const float *vcache,
                           const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E);

/* ------------------------------------------------------------ token selection */
/* One candidate token (and its confidence) per selected position of a
 * sampler step, from that position's logits (M,V), on the device: only the
 * (token, confidence) pairs go back to the host.  Per position q, in order:
 *   0. l = logits row row[q] (row == NULL: q);
 *   1. cfg: l = un + cfg_w1 * (l - un), un = logits[M + q] (the unconditional
 *      rows follow the M conditional ones; cfg needs row == NULL), float32 as
 *      the samplers did;
 *   2. suppress: l[suppress[i]] = -inf (ids >= V ignored), l[mask_id] = -inf
 *      (mask_id >= V: none).  Steps 1-2 write the logits IN PLACE.
 *   3. the token (draw):
 *      DL_SEL_ARGMAX  argmax l, lowest id on ties (also when temperature <= 0);
 *      DL_SEL_GUMBEL  (diffusion) z = l / T; top-k keeps the k best (ties: lower
 *                     id), top-p (0 < p < 1) the smallest best-first prefix of
 *                     what is left whose softmax mass reaches p (the crossing id
 *                     kept, mass as c += exp(z - max) / sum, c < p continues);
 *                     then argmax over kept finite ids of l - T log(-log u[v])
 *                     in float64, lowest id on ties; V uniforms per position;
 *      DL_SEL_INVCDF  (autoregressive) the finite ids sorted best first; top-k
 *                     keeps k; top-p (< 1, when more than one is left) keeps the
 *                     first prefix with cum >= p * total; then ONE uniform u: the
 *                     first kept id in increasing id order whose running sum of
 *                     exp(z - zmax) exceeds u * W (else the last with weight > 0;
 *                     no weight at all: the argmax).
 *   4. conf (float64): DL_CONF_NONE 0; DL_CONF_PROB p(token) under softmax(l)
 *      (after 2, untempered, unfiltered); DL_CONF_PROB0 the same but 0 when every
 *      logit is -inf; DL_CONF_MARGIN p1 - p2 (two largest); DL_CONF_NEGENT
 *      sum p log p.
 * Uniforms: u of position q are uniform[noise_base[q] + j], j < V (GUMBEL) or
 * j = 0 (INVCDF), where uniform[i] = noise[i] when noise != NULL (a device
 * copy, e.g. of a test file), else kphilox_uniform(key, noise_stream[q],
 * purpose, i) (kernels/kphilox.h).  All pointers are device pointers.
 * Returns 0, or -1 when scratch memory could not be had. */
typedef enum { DL_SEL_ARGMAX = 0, DL_SEL_GUMBEL = 1, DL_SEL_INVCDF = 2 } dl_sel_draw;
typedef enum { DL_CONF_NONE = 0, DL_CONF_PROB = 1, DL_CONF_PROB0 = 2, DL_CONF_MARGIN = 3,
               DL_CONF_NEGENT = 4 } dl_sel_conf;
typedef struct {
    int M, V;
    float *logits;                /* (M,V), or (2M,V) with cfg; modified in place */
    const int32_t *row;           /* (M) logits row of position q, or NULL: row q */
    int cfg; float cfg_w1;        /* cfg != 0: combine with the unconditional rows, weight w + 1 */
    const uint32_t *suppress; int n_suppress;   /* (n_suppress) */
    uint32_t mask_id;
    dl_sel_draw draw;
    double temperature; int top_k; double top_p;
    dl_sel_conf conf;
    uint32_t key[2], purpose;     /* Philox key (seed) and purpose byte */
    const uint64_t *noise_stream; /* (M) Philox stream (prompt index) of each position */
    const uint64_t *noise_base;   /* (M) index of each position's first uniform */
    const double *noise;          /* explicit uniforms, or NULL for Philox */
    uint32_t *tok;                /* out (M) */
    double *confidence;           /* out (M) */
} dl_select_args;
int dl_k_select_tokens(dl_dev *d, const dl_select_args *a);

#endif
