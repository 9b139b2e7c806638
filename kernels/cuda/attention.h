/* kernels/cuda/attention.h — what the two attention implementations share
 * (internal to kernels/cuda): the argument block, which keys a query sees,
 * and the tensor-core twin's entry points.
 *   attention.cu      fp32 FMA kernels: every dtype, head dim <= 256, the
 *                     probabilities when asked, the cache forwards;
 *   attention_mma.cu  bf16 tensor-core (WMMA) kernels for training: head dim
 *                     a multiple of 16 up to 128, no probabilities.
 * cu_attention_fwd / _bwd (attention.cu) pick one; tests/unit/test_backend_ops
 * checks both against the reference backend (DLLM_CUDA_ATTN=fma forces the
 * FMA kernels).
 */
#ifndef DL_KERNELS_CUDA_ATTENTION_H
#define DL_KERNELS_CUDA_ATTENTION_H
#include "cuda.h"

#include "attention_rules.h"

/* the tensor-core twin (attention_mma.cu): 1 when it takes this call (bf16,
 * E % 16 == 0, E <= 128, sm_80+, no probabilities, not DLLM_CUDA_ATTN=fma,
 * q / k / v / dout 16-byte aligned: its tile loads are 16-byte vectors;
 * dout may be NULL) */
int cu_attn_mma_usable(dl_dev *d, dl_dtype dt, int E, const float *att, const void *q, const void *k, const void *v,
                       const void *dout);
void cu_attn_mma_fwd(dl_dev *d, const attn_args<bf16> &a, int B);
void cu_attn_mma_bwd(dl_dev *d, const attn_args<bf16> &a, int B, bf16 *dq, bf16 *dk, bf16 *dv, const bf16 *dout,
                     const float *lse, const float *Dd);

#endif
