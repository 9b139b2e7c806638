/* kernels/kernels.h — every compute op of the dllm transformer, forward and
 * backward, behind one header, dispatched to a backend (kernels/backend.h):
 *   kernels/cpu/  the production CPU backend (plain loops + OpenMP, CBLAS sgemm)
 *   kernels/ref/  the reference backend: simplest loops, float64 sums, no
 *                 threads, no BLAS; only tests use it (tests/unit/test_backend_ops.c
 *                 checks every op of every backend against it)
 *   kernels/cuda/ the CUDA backend (cuBLAS GEMMs, tiled attention), built with nvcc.
 *
 * Conventions
 *  - Every op takes the device first.  Every pointer is a DEVICE pointer
 *    (host memory on CPU / ref, GPU memory on CUDA): no op reads host
 *    memory except through dl_dev_h2d / d2h.  Ops that return a scalar to
 *    the host say so (they synchronise).
 *  - Shapes in the legend letters: N rows (= B*T tokens), D model dim,
 *    V vocab, Hq query heads, Hk key/value heads, E head dim, F MLP hidden,
 *    M selected (loss) positions.  Row-major; weights in Hugging Face
 *    nn.Linear layout (out_features, in_features).
 *  - dtypes.  An op that reads or writes weights / activations takes ONE
 *    storage dtype `dt` (DL_F32 or DL_BF16) for all of them: its inputs,
 *    outputs and activation gradients (void * below).  Always float32
 *    (float * below), whatever dt: weight gradients, master weights,
 *    optimizer state, norm statistics (rstd), attention log-sum-exp and
 *    probabilities, losses (ce, dce).  Arithmetic accumulates in float32 (or
 *    wider).  Mixed storage meets only in dl_k_convert (e.g. fp32 master
 *    weights -> a bf16 compute copy).  Why one dt per call: a backend then
 *    states what it does as (op, dtype) pairs (dl_dev_supports) and every
 *    kernel has one load / store type, not a combinatorial family.
 *    Calling an op with a dtype the backend does not support is a bug
 *    (asserts); callers check dl_dev_supports once at init.
 *  - Weight dtype `wdt`.  The ops that read a weight MATRIX and nothing
 *    the backward needs (embedding_fwd, linear_fwd, linear_fwd_split) take
 *    a second dtype `wdt` for that matrix (wte, w), next to `dt` for
 *    everything else (inputs, outputs, bias).  wdt == dt is the one-dtype
 *    case above; (dt F32, wdt BF16) is inference from bf16 weights with f32
 *    activations (a bf16 checkpoint on the CPU: the weights stay bf16 in
 *    memory, products accumulate in f32, so it equals the f32 op on the
 *    upcast weights up to summation order).  Norm weights, biases and
 *    every backward op keep dt: training runs on the fp32 masters.
 *    dl_dev_supports_w answers per (op, dt, wdt), a triple rather than a
 *    combined key because a backend's answer is a rule (CPU: wdt may be
 *    BF16 where dt is F32, for these three ops) that is clearest written
 *    over the two dtypes, and the other ops simply require wdt == dt.
 *  - Backward ops ACCUMULATE into weight gradients (dw += ...) and OVERWRITE
 *    input gradients (dx = ...) unless the comment says otherwise, so the
 *    caller zeroes weight grads once per optimizer step and can accumulate
 *    micro-batches.
 */
#ifndef DL_KERNELS_H
#define DL_KERNELS_H
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------ dtypes */
typedef enum { DL_F32 = 0, DL_BF16 = 1, DL_NDTYPES = 2 } dl_dtype;
size_t dl_dtype_size(dl_dtype dt);          /* 4, 2 */
const char *dl_dtype_name(dl_dtype dt);     /* "f32", "bf16" */

/* ------------------------------------------------------------ ops (for dl_dev_supports) */
typedef enum {
    DL_OP_EMBEDDING_FWD, DL_OP_EMBEDDING_BWD, DL_OP_RMSNORM_FWD, DL_OP_RMSNORM_BWD,
    DL_OP_LINEAR_FWD, DL_OP_LINEAR_FWD_SPLIT, DL_OP_LINEAR_BWD, DL_OP_ROPE, DL_OP_ATTENTION_FWD, DL_OP_ATTENTION_BWD,
    DL_OP_ATTENTION_KV_FWD, DL_OP_SWIGLU_FWD, DL_OP_SWIGLU_BWD, DL_OP_ADD, DL_OP_ADD_INPLACE,
    DL_OP_GATHER_ROWS, DL_OP_SCATTER_ADD_ROWS, DL_OP_COPY_2D, DL_OP_CONVERT, DL_OP_XENT_FWD, DL_OP_XENT_BWD,
    DL_OP_SUMSQ, DL_OP_ADAMW, DL_OP_SCALE, DL_OP_SELECT_TOKENS, DL_OP_ATTENTION_CACHED_FWD,
    DL_OP_ADD_RMSNORM_FWD, DL_OP_GRAD_CLIP, DL_OP_XENT_CHUNK_FWD, DL_OP_XENT_CHUNK_BWD,
    DL_OP_COUNT
} dl_op;
const char *dl_op_name(dl_op op);           /* "linear_fwd" ... */

/* ------------------------------------------------------------ device */
typedef enum { DL_DEV_CPU = 0, DL_DEV_CUDA = 1, DL_DEV_REF = 2 } dl_dev_kind;
typedef struct dl_dev dl_dev;     /* opaque: backend ops table + its state */

/* index: GPU ordinal (CUDA) or thread count (CPU, 0 = OpenMP default; ref:
 * ignored, always 1).  Picks the backend table by kind.  Returns 0 or
 * -4 (= -DL_EXIT_DEVICE) with err set (e.g. CUDA not built). */
int dl_dev_open(dl_dev **d, dl_dev_kind kind, int index, char *err, size_t errlen);
void dl_dev_close(dl_dev *d);
dl_dev_kind dl_dev_kind_of(const dl_dev *d);
const char *dl_dev_describe(const dl_dev *d);   /* "cpu (2 threads, OpenBLAS 0.3.21)" */
/* 1 when the backend implements op for storage dtype dt (the fp32-only ops
 * sumsq / adamw / scale answer for DL_F32; convert for any dt it converts
 * to and from DL_F32). */
int dl_dev_supports(const dl_dev *d, dl_op op, dl_dtype dt);
/* 1 when the backend implements op for activation dtype dt and weight dtype
 * wdt (see "Weight dtype" above); dl_dev_supports(d, op, dt) is
 * dl_dev_supports_w(d, op, dt, dt). */
int dl_dev_supports_w(const dl_dev *d, dl_op op, dl_dtype dt, dl_dtype wdt);
/* A blocking profile: while on, every dl_k_* op waits for the device
 * after it runs, and its wall time adds to that op's row (so each op's
 * time is its own, and the run is slower).  on = 1 starts it (a zeroed
 * table), 0 stops it; 0, or -1 when out of memory.  dl_dev_profile_get:
 * the seconds and calls of op so far (0 and 0 when never on). */
int dl_dev_profile(dl_dev *d, int on);
void dl_dev_profile_get(const dl_dev *d, dl_op op, double *seconds, long *calls);
void *dl_dev_alloc(dl_dev *d, size_t bytes);    /* zero-filled, 64-byte aligned; NULL on failure */
void dl_dev_free(dl_dev *d, void *p);
void dl_dev_memset0(dl_dev *d, void *p, size_t bytes);
void dl_dev_h2d(dl_dev *d, void *dst, const void *src, size_t bytes);
void dl_dev_d2h(dl_dev *d, void *dst, const void *src, size_t bytes);
void dl_dev_d2d(dl_dev *d, void *dst, const void *src, size_t bytes);   /* may overlap */
void dl_dev_sync(dl_dev *d);
int dl_dev_threads(const dl_dev *d);            /* CPU: OpenMP threads the ops use; others: 1 */
/* CPU only, for tests and benchmarks: on = 1 routes every matmul through
 * OpenBLAS sgemm (the default when built with it), 0 through the plain-C
 * GEMM, -1 only asks.  Returns the setting now in effect (0 without
 * OpenBLAS, and on other backends). */
int dl_dev_cpu_blas(dl_dev *d, int on);
/* Built with OpenBLAS but it could not be loaded (kernels/cpu/openblas.c,
 * tried when a CPU device opens): why, and the CPU GEMMs run in plain C;
 * NULL when it loaded or the build has none. */
const char *dl_k_openblas_missing(void);
/* CPU only, for decoding: rows > 0 makes linear_fwd with N <= rows (capped
 * at 16) stream each weight row once per call (a GEMV, kernels/cpu/gemv.c,
 * f32 or bf16 weights, threads split the output rows) instead of the GEMM;
 * its summation order differs from the GEMM's (results agree to ~1e-6
 * relative), so it is off (0) unless a caller asks: the autoregressive
 * sampler's decode steps.  -1 only asks.  Returns the setting now in
 * effect (0 on other backends). */
int dl_dev_cpu_gemv(dl_dev *d, int rows);
/* CPU only, for inference: on = 1 makes linear_fwd with f32 weights read a
 * copy of each weight packed in 32-column panels, made on its first use
 * (kernels/cpu/linear_packed.c: no per-call packing, so a few rows run at
 * about 1.5x OpenBLAS's speed).  Each output element is then one FMA chain
 * over k in order, whatever N, the threads or the tile (rows agree exactly
 * between a block and a full forward); it differs from the GEMM's order by
 * ~1e-6 relative.  Costs one more copy of each weight; the weights must not
 * change while it is on.  0 turns it off and frees the copies; -1 only asks.
 * Returns the setting in effect (0 on other backends).  The diffusion
 * sampler turns it on. */
int dl_dev_cpu_pack(dl_dev *d, int on);

/* ------------------------------------------------------------ embedding */
/* out (N,D, dt) = wte[ids[n]] (wte (V,D) in wdt; a bf16 row widens exactly) ; ids (N) < V */
void dl_k_embedding_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const uint32_t *ids, const void *wte, int N, int D);
/* dwte[ids[n]] += dout[n]  (deterministic: serial per vocab row).  dwte fp32. */
void dl_k_embedding_bwd(dl_dev *d, dl_dtype dt, float *dwte, const void *dout, const uint32_t *ids, int N, int D);

/* ------------------------------------------------------------ RMSNorm */
/* y = x * rstd * w,  rstd (N, fp32) = 1/sqrt(mean(x^2) + eps) saved for backward */
void dl_k_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *y, float *rstd, const void *x, const void *w, int N, int D,
                      float eps);
/* dx (N,D) += ..., dw (D, fp32) += ...   (dx ACCUMULATES: it is the residual stream;
 * dw NULL: skipped, a frozen weight) */
void dl_k_rmsnorm_bwd(dl_dev *d, dl_dtype dt, void *dx, float *dw, const void *dy, const void *x, const void *w,
                      const float *rstd, int N, int D);
/* The residual add fused with the next norm, in one pass over the rows:
 *   sum (N,D) = a + b (rounded to dt);  y, rstd = rmsnorm_fwd(sum, w)
 * bit-identical to dl_k_add then dl_k_rmsnorm_fwd on the stored sum.  sum
 * may alias a or b; y may not alias any of them. */
void dl_k_add_rmsnorm_fwd(dl_dev *d, dl_dtype dt, void *sum, void *y, float *rstd, const void *a, const void *b,
                          const void *w, int N, int D, float eps);

/* ------------------------------------------------------------ linear */
/* out (N,O) = inp (N,C) @ w (O,C)^T + bias (O) [bias may be NULL]; w in wdt, the rest in dt */
void dl_k_linear_fwd(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *out, const void *inp, const void *w, const void *bias,
                     int N, int C, int O);
/* A fused projection: w = [w_0; w_1; ...] adjacent row blocks (O_p, C) and
 * bias = [b_0; b_1; ...] (or NULL), one linear whose output is split:
 *   outs[p] (N, O_p) = inp @ w_p^T + b_p,   p < nparts (<= 4)
 * (q|k|v and gate|up of dl_model.c).  A GPU backend runs ONE GEMM over the
 * stacked weights; the CPU backend runs one GEMM per part, because its
 * OpenBLAS panels make a fused GEMM round some elements differently
 * (outputs must stay bit-identical to the unfused model). */
void dl_k_linear_fwd_split(dl_dev *d, dl_dtype dt, dl_dtype wdt, void *const *outs, const int *O_parts, int nparts,
                           const void *inp, const void *w, const void *bias, int N, int C);
/* dinp (N,C) = dout @ w  [dinp NULL: skip];  dw (O,C) += dout^T @ inp [dw NULL: skip, a frozen weight];
 * dbias (O) += sum dout [NULL: skip].  dw, dbias fp32. */
void dl_k_linear_bwd(dl_dev *d, dl_dtype dt, void *dinp, float *dw, float *dbias, const void *dout, const void *inp,
                     const void *w, int N, int C, int O);

/* ------------------------------------------------------------ RoPE */
typedef enum {
    DL_ROPE_HALF = 0,   /* Hugging Face rotate_half: pairs (i, i + E/2) */
    DL_ROPE_PAIRS = 1   /* Meta / llama2.c: adjacent pairs (2i, 2i+1) */
} dl_rope_layout;
/* In place on x (N, H, E); pos (N) is each row's position.  freq_j = theta^(-2j/E).
 * inverse = 1 rotates by -angle (that is the backward: dx = R^T dy). */
void dl_k_rope(dl_dev *d, dl_dtype dt, void *x, const int32_t *pos, int N, int H, int E, float theta,
               dl_rope_layout layout, int inverse);

/* ------------------------------------------------------------ attention */
typedef enum {
    DL_ATTN_BIDIR = 0,   /* every query sees every valid key (diffusion) */
    DL_ATTN_CAUSAL = 1,  /* key <= query (autoregressive) */
    DL_ATTN_BLOCK = 2,   /* block-causal: key block <= query block (block diffusion) */
    DL_ATTN_BD3 = 3      /* BD3LM training over x_t (+) x_0 (T = 2L, below) */
} dl_attn_mask;
/* DL_ATTN_BD3: the sequence is [x_t ; x_0], T = 2L (T even), blocks of
 * `block` positions within each half (j mod L).  Noisy query i < L sees the
 * keys of its own block of x_t (bidirectionally) and the clean blocks of x_0
 * before it; clean query i >= L sees the clean blocks of x_0 up to its own
 * (block-causal).  lens[b] cuts BOTH halves: keys with j mod L >= lens[b]
 * are invisible.  Its visible keys are not a prefix: dl_attn_visible. */
/* DL_K_HD: a helper the CUDA kernels call on the device too (one rule, not two copies) */
#ifdef __CUDACC__
#define DL_K_HD __host__ __device__
#else
#define DL_K_HD
#endif
static inline DL_K_HD int dl_attn_visible(int i, int j, int len, int T, dl_attn_mask mask, int block) {
    if (mask != DL_ATTN_BD3) {
        int jm = mask == DL_ATTN_CAUSAL ? i + 1 : mask == DL_ATTN_BLOCK ? (i / block + 1) * block : T;
        return j < jm && j < len && j < T;
    }
    int L = T / 2, li = i % L, lj = j % L;
    if (lj >= len) return 0;
    if (i < L) return j < L ? lj / block == li / block : lj / block < li / block;
    return j >= L && lj / block <= li / block;
}
/* DL_ATTN_BD3's visible keys of query i as two ranges, ascending and
 * disjoint: [r[0], r[1]) then [r[2], r[3]) (empty when start >= end); the
 * same set as dl_attn_visible (tests/unit/test_bd3.c), without a
 * division per key.  Noisy i < L: its own block of x_t, then the clean
 * blocks before it; clean i >= L: nothing in x_t, then x_0 up to its block. */
static inline void dl_attn_bd3_ranges(int i, int len, int T, int block, int r[4]) {
    int L = T / 2, li = i % L, b0 = li / block * block, b1 = b0 + block;
    int cut = len < L ? (len < 0 ? 0 : len) : L;
    if (i < L) {
        r[0] = b0 < cut ? b0 : cut; r[1] = b1 < cut ? b1 : cut;
        r[2] = L; r[3] = L + (b0 < cut ? b0 : cut);
    } else {
        r[0] = r[1] = 0;
        r[2] = L; r[3] = L + (b1 < cut ? b1 : cut);
    }
}
/* one past the last visible key of query i (0: none) */
static inline int dl_attn_jend(int i, int len, int T, dl_attn_mask mask, int block) {
    int j = T;
    while (j > 0 && !dl_attn_visible(i, j - 1, len, T, mask, block)) j--;
    return j;
}
/* q (B,T,Hq,E), k/v (B,T,Hk,E), Hq % Hk == 0 (GQA: query head h uses kv head h/(Hq/Hk)).
 * lens (B): keys at positions >= lens[b] are invisible (random-length cut,
 * padding); NULL = all T.  Visible keys of query i: [0, jmax(i)) with
 * jmax = min(len, T | i+1 | (i/block+1)*block) for BIDIR | CAUSAL | BLOCK;
 * DL_ATTN_BD3's visible keys are dl_attn_visible's (lens per half, above).
 * scale = 1/sqrt(E).  block: block size of DL_ATTN_BLOCK (> 0), else ignored.
 * out (B,T,Hq,E).  lse (B,Hq,T) fp32, always written: log sum_j exp(s_ij)
 * over the visible keys (-inf for a query with none; its out is 0).
 * att (B,Hq,T,T) fp32 softmax probabilities, OPTIONAL: NULL = not stored
 * (flash-style backends); when given, invisible entries are exact 0. */
void dl_k_attention_fwd(dl_dev *d, dl_dtype dt, void *out, float *lse, float *att, const void *q, const void *k,
                        const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                        dl_attn_mask mask, int block);
/* dq (B,T,Hq,E), dk/dv (B,T,Hk,E) overwritten.  out, lse: the forward's.
 * att: the forward's probabilities or NULL (then they are recomputed from
 * q, k and lse).  lens / mask / block as in the forward.  scratch: device
 * memory of dl_k_attention_bwd_scratch_bytes(same shape, att != NULL). */
void dl_k_attention_bwd(dl_dev *d, dl_dtype dt, void *dq, void *dk, void *dv, void *scratch, const void *dout,
                        const void *out, const float *lse, const float *att, const void *q, const void *k,
                        const void *v, const int32_t *lens, int B, int T, int Hq, int Hk, int E,
                        dl_attn_mask mask, int block);
/* bytes of scratch the backward needs (CPU: (B,Hq,T,T) floats for dS, twice
 * that when att is NULL; a flash backend: little or nothing) */
size_t dl_k_attention_bwd_scratch_bytes(const dl_dev *d, int B, int T, int Hq, int Hk, int E, int have_att);

/* ------------------------------------------------------------ KV-cache attention */
/* Incremental causal decoding (dl_model_forward_kv).  q, out (B,n,Hq,E): the
 * n new queries of each row; kcache, vcache (B,Tmax,Hk,E) already hold the
 * new tokens' keys / values at positions n_past[b] .. n_past[b]+n-1.
 * n_past (B, device): tokens of row b before this call.  Query j of row b
 * sees keys [0, n_past[b] + j] (clamped to Tmax); GQA as above; scale
 * 1/sqrt(E).  Equals dl_k_attention_fwd DL_ATTN_CAUSAL on the whole prefix up
 * to rounding.  No probabilities are kept (inference only). */
void dl_k_attention_kv_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                           const void *vcache, const int32_t *n_past, int B, int n, int Tmax, int Hq, int Hk, int E);

/* Bidirectional attention of a window against a cache (the diffusion
 * sampler's prefix / dual caches, share/model/dl_model_dcache.c): q, out
 * (B, n, Hq, E) the n window queries of each row; kcache, vcache
 * (R, Tmax, Hk, E) per cache row, already holding the window's own keys /
 * values; rows (B, device) the cache row of query row b (NULL: b);
 * n_keys (B, device): EVERY query of row b sees keys [0, n_keys[b]) of its
 * cache row (clamped to Tmax), whatever its position.  GQA and scale as
 * above.  Equals dl_k_attention_fwd DL_ATTN_BIDIR with lens = n_keys on the
 * matching rows up to rounding.  Inference only. */
void dl_k_attention_cached_fwd(dl_dev *d, dl_dtype dt, void *out, const void *q, const void *kcache,
                               const void *vcache, const int32_t *rows, const int32_t *n_keys, int B, int n, int Tmax,
                               int Hq, int Hk, int E);

/* ------------------------------------------------------------ SwiGLU */
/* out (N,F) = silu(gate) * up */
void dl_k_swiglu_fwd(dl_dev *d, dl_dtype dt, void *out, const void *gate, const void *up, int N, int F);
void dl_k_swiglu_bwd(dl_dev *d, dl_dtype dt, void *dgate, void *dup, const void *dout, const void *gate,
                     const void *up, int N, int F);

/* ------------------------------------------------------------ elementwise / copies */
void dl_k_add(dl_dev *d, dl_dtype dt, void *y, const void *a, const void *b, size_t n);   /* y = a + b (y may alias) */
void dl_k_add_inplace(dl_dev *d, dl_dtype dt, void *y, const void *x, size_t n);          /* y += x */
/* out (M,D) = in[idx[m]];  idx (M) rows of in (N,D) */
void dl_k_gather_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
/* out[idx[m]] += in[m]  (idx may repeat: deterministic serial order) */
void dl_k_scatter_add_rows(dl_dev *d, dl_dtype dt, void *out, const void *in, const int32_t *idx, int M, int D);
/* dst[r*ld_dst + c] = src[r*ld_src + c] for r < rows, c < cols (elements):
 * splits a fused projection's output (N, O1+O2+...) into its parts. */
void dl_k_copy_2d(dl_dev *d, dl_dtype dt, void *dst, size_t ld_dst, const void *src, size_t ld_src,
                  int rows, int cols);
/* dst (n, dst_dt) = src (n, src_dt), rounding to nearest even into bf16 */
void dl_k_convert(dl_dev *d, void *dst, dl_dtype dst_dt, const void *src, dl_dtype src_dt, size_t n);

/* ------------------------------------------------------------ cross-entropy */
/* The output head runs only on the M positions that carry loss: the caller
 * gathers their hidden states and calls dl_k_linear_fwd to get logits (M,V).
 * In place: logits -> softmax probs; ce (M, fp32) = -log p[target]
 * (float64 sum inside for stability).  targets (M) < V. */
void dl_k_softmax_xent_fwd(dl_dev *d, dl_dtype dt, float *ce, void *probs_inout, const uint32_t *targets, int M,
                           int V);
/* In place: probs -> dlogits = dce[m] * (p - onehot(target)).  dce (M, fp32)
 * is d loss / d ce_m, chosen by the caller (loss normalisation, 1/t, path loss). */
void dl_k_softmax_xent_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const float *dce, const uint32_t *targets,
                           int M, int V);
/* The same loss with the vocabulary in chunks, so that only an (M, vc)
 * block of logits exists at a time (the model's xent_chunk): the caller
 * computes the head's logits for columns [v0, v0+vc) (row-major (M, vc))
 * and folds them in with
 *   dl_k_xent_chunk_fwd: stat (M,3 float64) = running max, running sum of
 *     exp(z - max), target logit; v0 == 0 starts every row, and the chunk
 *     that ends at V writes ce[m] = lse - z_t and leaves lse in stat[3m];
 * then in the backward recomputes each block and turns it in place into
 *   dl_k_xent_chunk_bwd: dlogits = dce[m] * (exp(z - lse) - onehot(t - v0)).
 * Chunks come in increasing v0 and cover [0, V) once.  Rounding differs
 * from the unchunked pair (an online max), not the value. */
void dl_k_xent_chunk_fwd(dl_dev *d, dl_dtype dt, double *stat, float *ce, const void *logits, const uint32_t *targets,
                         int M, int V, int v0, int vc);
void dl_k_xent_chunk_bwd(dl_dev *d, dl_dtype dt, void *dlogits_inout, const double *stat, const float *dce,
                         const uint32_t *targets, int M, int v0, int vc);

/* ------------------------------------------------------------ optimizer (fp32 only) */
/* sum of squares of x (n), returned to the host (synchronises). float64 accumulate. */
double dl_k_sumsq(dl_dev *d, const float *x, size_t n);
/* torch clip_grad_norm_'s factor for a global gradient norm: clip > 0 and
 * norm > clip: clip / (norm + 1e-6), else 1; and NaN when the norm is not
 * finite, whatever clip, so that an AdamW reading it leaves every weight
 * as it was (x - x == 0 is false exactly for inf and NaN). */
static inline DL_K_HD double dl_k_clip_factor(double norm, double clip) {
    if (!(norm - norm == 0.0)) return norm - norm;   /* NaN */
    return clip > 0 && norm > clip ? clip / (norm + 1e-6) : 1.0;
}
/* The global norm and its clip factor without a host round trip:
 *   norm_scale[0] = sqrt(sum x^2)  (the same sum as dl_k_sumsq)
 *   norm_scale[1] = dl_k_clip_factor(norm_scale[0], clip)
 * norm_scale: 2 doubles of device memory; asynchronous (dl_dev_d2h reads
 * them when the host wants the norm, e.g. after the AdamW calls). */
void dl_k_grad_clip(dl_dev *d, double *norm_scale, const float *x, size_t n, double clip);
/* AdamW (Loshchilov & Hutter), torch.optim.AdamW's single-tensor path in
 * its operation order (bc1 = 1-b1^step, bc2 = 1-b2^step):
 *   g = grad * s,  s = dev_scale ? (float)dev_scale[0] : grad_scale
 *                  (the clip factor; dev_scale: device memory, written by
 *                  dl_k_grad_clip, so no host round trip; s not finite:
 *                  the call changes nothing)
 *   p = p * (1 - lr*wd)                        (decoupled decay first)
 *   m = m + (1-b1) (g - m);  v = b2 v + (1-b2) g^2
 *   p = p - (lr/bc1) * ( m / (sqrt(v)/sqrt(bc2) + eps) )
 * weight decay applied to every element of this call (callers split decayed /
 * non-decayed tensors).  step >= 1. */
/* bf16_copy (NULL: none; n bf16 on the device) receives bf16(p) of every
 * updated p: the compute copy, written in the same pass. */
void dl_k_adamw(dl_dev *d, float *param, const float *grad, float *m, float *v, size_t n, float lr,
                float b1, float b2, float eps, float wd, int step, float grad_scale, const double *dev_scale,
                uint16_t *bf16_copy);
void dl_k_scale(dl_dev *d, float *x, float s, size_t n);   /* x *= s */

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
 *      DL_SEL_DREAM   (diffusion, Dream's sample_tokens) z = l / T (T > 0) or l
 *                     (T <= 0); top-p (0 < p < 1) on all ids sorted best first
 *                     (ties: lower id), softmax(z) mass c accumulated: idx[0]
 *                     kept, idx[j] kept while c through idx[j-1] <= p; then
 *                     top-k (0 < k < V) keeps the kept ids whose l is >= the
 *                     k-th best kept l (ties all kept); q = softmax(z) over the
 *                     kept ids.  Token: T <= 0 argmax l (lowest id), else as
 *                     GUMBEL over the kept finite ids (V uniforms).  Filters
 *                     apply at T <= 0 too: they change q, hence conf.
 *   4. conf (float64), DL_SEL_DREAM: from q (PROB / PROB0 q(token), MARGIN
 *      q1 - q2, NEGENT sum q log(q + 1e-10), Dream's epsilon); other draws:
 *      DL_CONF_NONE 0; DL_CONF_PROB p(token) under softmax(l)
 *      (after 2, untempered, unfiltered); DL_CONF_PROB0 the same but 0 when every
 *      logit is -inf; DL_CONF_MARGIN p1 - p2 (two largest); DL_CONF_NEGENT
 *      sum p log p.
 * Uniforms: u of position q are uniform[noise_base[q] + j], j < V (GUMBEL) or
 * j = 0 (INVCDF), where uniform[i] = noise[i] when noise != NULL (a device
 * copy, e.g. of a test file), else kphilox_uniform(key, noise_stream[q],
 * purpose, i) (kernels/kphilox.h).  All pointers are device pointers.
 * Returns 0, or -1 when scratch memory could not be had. */
typedef enum { DL_SEL_ARGMAX = 0, DL_SEL_GUMBEL = 1, DL_SEL_INVCDF = 2, DL_SEL_DREAM = 3 } dl_sel_draw;
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
