/* estimate_internal.h — the inside of score/estimate.c, for its unit test.
 *
 * Only score/estimate.c and tests/unit/test_score.c include this; the
 * program uses score.h.  tests/unit/test_score.c fills the host buffers and
 * calls the forward helpers directly to enumerate every mask pattern (the
 * exact ELBO), and sizes memory budgets with row_bytes.  Nothing here is an
 * API: it changes whenever estimate.c does.
 */
#ifndef ESTIMATE_INTERNAL_H
#define ESTIMATE_INTERNAL_H
#include <stddef.h>
#include <stdint.h>
#include "dl_batch.h"
#include "score.h"

struct sc_ctx {
    sc_opts o;
    dl_model m;                  /* owns its device (dl_model_open.h) */
    dl_tok *tok;
    int causal, shift, V;
    uint32_t mask_id;
    int rB, rT, rM;              /* reserved activation shape */
    dl_batch b;                  /* ids / sel / targets / ce, host and device */
    int32_t *h_row; int cap_row; /* MC row of each selected position */
    float *h_logits; size_t cap_logits;
    double *term, *tr; int *xi; int cap_term;   /* per MC row: term, t, masked count */
    int *perm; int cap_T;
    uint32_t *ans; size_t cap_ans;   /* conditional: the noisy answers of one group (b x T) */
};

/* Buffers for B rows of T tokens with M selected positions (grow only). */
int ensure(sc_ctx *c, int B, int T, int M, char *err, size_t errlen);
/* Activation bytes one row of length T needs (the memory-budget unit). */
double row_bytes(const sc_ctx *c, int T);
int ensure_logits(sc_ctx *c, size_t n, char *err, size_t errlen);
/* Forward of h_ids (B x T); cross-entropy at the M selected positions -> h_ce. */
int forward_ce(sc_ctx *c, int B, int T, int M, dl_attn_mask mask, char *err, size_t errlen);
/* Forward; logits of the M selected positions -> h_logits + off. */
int forward_logits(sc_ctx *c, int B, int T, int M, size_t off, dl_attn_mask mask, char *err, size_t errlen);
/* Masked count of draw i of group k: ((round(k + i*T/b) - 1) mod T) + 1. */
int stratified_count(int k, int i, int T, int b);

#endif
