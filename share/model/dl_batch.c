/* dl_batch.c — host/device mirrors of a micro-batch (dl_batch.h).
 * One allocation per side for the inputs (lens | sel | tgt | ids), one each
 * for ce and dce.  Does not: interpret ids, positions or losses.
 */
#include <stdlib.h>
#include <string.h>
#include "dl_batch.h"

static void carve(void *blk, int B, int M, int32_t **lens, int32_t **sel, uint32_t **tgt, uint32_t **ids) {
    *lens = blk;
    *sel = *lens + B;
    *tgt = (uint32_t *)(*sel + M);
    *ids = *tgt + M;
}

static size_t in_bytes(int B, int M, size_t N) { return ((size_t)B + 2 * (size_t)M + N) * 4; }

int dl_batch_reserve(dl_batch *b, dl_model *m, int B, size_t N, int M, char *err, size_t errlen) {
    if (b->m && B <= b->cap_B && N <= b->cap_N && M <= b->cap_M) return 0;
    int nB = B > b->cap_B ? B : b->cap_B, nM = M > b->cap_M ? M : b->cap_M;
    size_t nN = N > b->cap_N ? N : b->cap_N;
    if (nB < 1) nB = 1;
    if (nM < 1) nM = 1;
    if (nN < 1) nN = 1;
    dl_batch_free(b);
    b->m = m;
    dl_dev *d = m->dev;
    void *h = calloc(1, in_bytes(nB, nM, nN));
    b->ce = calloc((size_t)nM, sizeof *b->ce);
    b->dce = calloc((size_t)nM, sizeof *b->dce);
    b->d_in = dl_dev_alloc(d, in_bytes(nB, nM, nN));
    b->d_ce = dl_dev_alloc(d, (size_t)nM * sizeof *b->d_ce);
    b->d_dce = dl_dev_alloc(d, (size_t)nM * sizeof *b->d_dce);
    if (!h || !b->ce || !b->dce || !b->d_in || !b->d_ce || !b->d_dce) {
        free(h);
        b->lens = NULL;
        dl_batch_free(b);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory (batch of %d rows, %zu ids)", nB, nN);
    }
    carve(h, nB, nM, &b->lens, &b->sel, &b->tgt, &b->ids);
    carve(b->d_in, nB, nM, &b->d_lens, &b->d_sel, &b->d_tgt, &b->d_ids);
    b->cap_B = nB; b->cap_M = nM; b->cap_N = nN;
    return 0;
}

void dl_batch_free(dl_batch *b) {
    if (!b->m) { memset(b, 0, sizeof *b); return; }
    dl_dev *d = b->m->dev;
    free(b->lens); free(b->ce); free(b->dce);
    if (b->d_in) dl_dev_free(d, b->d_in);
    if (b->d_ce) dl_dev_free(d, b->d_ce);
    if (b->d_dce) dl_dev_free(d, b->d_dce);
    memset(b, 0, sizeof *b);
}

int dl_batch_forward(dl_batch *b, int B, int T, int M, int with_lens, int with_targets, dl_attn_mask mask,
                     int block, char *err, size_t errlen) {
    dl_dev *d = b->m->dev;
    size_t n = (size_t)B * T;
    if (B > b->cap_B || M > b->cap_M || n > b->cap_N)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "batch: %d rows x %d, %d positions exceed the reserve", B, T,
                         M);
    dl_dev_h2d(d, b->d_in, b->lens, (size_t)((char *)(b->ids + n) - (char *)b->lens));
    int rc = dl_model_forward(b->m, b->d_ids, with_lens ? b->d_lens : NULL, B, T, b->d_sel,
                              with_targets ? b->d_tgt : NULL, M, with_targets ? b->d_ce : NULL, mask, block, err,
                              errlen);
    if (rc) return rc;
    if (with_targets && M > 0) dl_dev_d2h(d, b->ce, b->d_ce, (size_t)M * sizeof *b->ce);
    return 0;
}

int dl_batch_backward(dl_batch *b, int M, char *err, size_t errlen) {
    dl_dev_h2d(b->m->dev, b->d_dce, b->dce, (size_t)M * sizeof *b->dce);
    return dl_model_backward(b->m, b->d_dce, err, errlen);
}

int dl_batch_forward_kv(dl_batch *b, dl_kv *kv, int B, int n_new, const int32_t *pos0, const int32_t *n_valid,
                        float *logits, char *err, size_t errlen) {
    size_t n = (size_t)B * n_new;
    if (n > b->cap_N) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "batch: %zu ids exceed the reserve", n);
    dl_dev_h2d(b->m->dev, b->d_ids, b->ids, n * sizeof *b->ids);
    return dl_model_forward_kv(b->m, kv, b->d_ids, B, n_new, pos0, n_valid, logits, err, errlen);
}

void dl_batch_download_logits(dl_batch *b, int M, float *out) {
    dl_dev_d2h(b->m->dev, out, dl_model_logits(b->m), (size_t)M * b->m->cfg.vocab_size * sizeof *out);
}
