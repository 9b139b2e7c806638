/* dl_batch.h — one micro-batch's model inputs and outputs, mirrored on the
 * model's device, for the programs that run dl_model_forward /
 * dl_model_backward (train, score, the diffusion sampler).
 *
 * Host arrays (the caller fills them, capacities from dl_batch_reserve):
 *   ids (N = rows x T), lens (rows), sel (M), tgt (M)   inputs
 *   ce (M)                                              out: per-position loss
 *   dce (M)                                             in: d loss / d ce
 * Host and device hold ONE block each, laid out
 *   lens (cap_B) | sel (cap_M) | tgt (cap_M) | ids (cap_N)
 * so a forward is one h2d (from lens to the last id used) and, with
 * targets, one d2h of ce; a backward one h2d of dce.
 *
 * Does not: build positions or targets (that is the program's rule), reserve
 * the model's activations (dl_model_reserve), keep data across a reserve
 * that grows (contents are lost then).
 */
#ifndef DL_BATCH_H
#define DL_BATCH_H
#include <stddef.h>
#include <stdint.h>
#include "dl_model.h"

typedef struct {
    dl_model *m;
    int cap_B, cap_M; size_t cap_N;
    /* host views of the input block, and the outputs */
    int32_t *lens, *sel;
    uint32_t *tgt, *ids;
    float *ce, *dce;
    /* device */
    void *d_in;
    int32_t *d_lens, *d_sel;
    uint32_t *d_tgt, *d_ids;
    float *d_ce, *d_dce;
} dl_batch;

/* Room for forwards of up to B rows, N ids, M positions on m's device
 * (grows; a zeroed struct starts empty).  0 or -DL_EXIT_IO. */
int dl_batch_reserve(dl_batch *b, dl_model *m, int B, size_t N, int M, char *err, size_t errlen);
void dl_batch_free(dl_batch *b);   /* safe on a zeroed struct */
/* Upload and run dl_model_forward over B rows of T ids (ids[0..B*T)),
 * lens[0..B) when with_lens (else every row is T long), the M positions
 * sel[0..M) with targets tgt[0..M) when with_targets (ce downloaded into
 * ce[0..M)), else logits kept on the device (dl_model_logits). */
int dl_batch_forward(dl_batch *b, int B, int T, int M, int with_lens, int with_targets, dl_attn_mask mask,
                     int block, char *err, size_t errlen);
/* Upload dce[0..M) and run dl_model_backward (gradients accumulate). */
int dl_batch_backward(dl_batch *b, int M, char *err, size_t errlen);
/* Upload ids[0..B*n_new) and run dl_model_forward_kv on them (its other
 * arguments as there; logits: a device block such as dl_select_logits). */
int dl_batch_forward_kv(dl_batch *b, dl_kv *kv, int B, int n_new, const int32_t *pos0, const int32_t *n_valid,
                        float *logits, char *err, size_t errlen);
/* Copy the logits of the last forward (rows 0..M-1, V each) to host out. */
void dl_batch_download_logits(dl_batch *b, int M, float *out);

#endif
