/* dl_select.h — the samplers' token selection on the model's device
 * (kernels.h dl_k_select_tokens): after a forward, one call turns the
 * logits of M selected positions into M (token, confidence) pairs, and only
 * those come back to the host; full-vocabulary logits never do.
 *
 * Per call the caller fills, for the M positions (host arrays of the
 * selector, capacity M_max):
 *   row[q]     logits row of position q (only with dl_select_run_rows)
 *   stream[q]  Philox stream of the position (the prompt index)
 *   base[q]    index of its first uniform in that stream, or, after
 *              dl_select_set_noise, in the uploaded uniforms
 * and gets tok[q], conf[q].  Rules (CFG, suppression, argmax / Gumbel /
 * inverse CDF, top-k / top-p, confidences): kernels.h, "token selection".
 *
 * Buffers (device: outputs, per-position inputs, the suppress list, an
 * optional logits block for callers that run dl_model_forward_kv, the
 * uploaded uniforms) are allocated at init (uniforms: grown on demand) and
 * freed by dl_select_free.
 *
 * Does not: decide which positions to commit or draw host-side noise (the
 * samplers do: schedules, remask random, alg-temp), change the model.
 */
#ifndef DL_SELECT_H
#define DL_SELECT_H
#include <stddef.h>
#include <stdint.h>
#include "dl_model.h"

typedef struct {
    dl_sel_draw draw;
    dl_sel_conf conf;
    double temperature;          /* <= 0: argmax */
    int top_k;                   /* 0 = off */
    double top_p;                /* 1 = off */
    double cfg;                  /* guidance weight w, 0 = off (the 2M-row layout of kernels.h) */
    const uint32_t *suppress;    /* host, copied at init */
    int n_suppress;
    uint32_t mask_id;            /* suppressed too; >= vocab: none */
    uint32_t purpose;            /* Philox purpose byte of the streams (DL_RNG_SAMPLE) */
} dl_select_cfg;

typedef struct {
    dl_model *m;
    dl_select_cfg c;
    int M_max, rows_max;
    /* host, (M_max) each: inputs filled by the caller, outputs of the last run */
    int32_t *row;
    uint64_t *stream, *base;
    uint32_t *tok;
    double *conf;
    /* device */
    void *d_in;                  /* one block: base (M_max) | stream (M_max) | row (M_max) */
    uint32_t *d_tok; double *d_conf;
    uint32_t *d_sup;
    float *d_logits;             /* (rows_max, V) or NULL */
    double *d_noise; size_t cap_noise;
    int use_noise;               /* 1 after dl_select_set_noise: base indexes the uploaded uniforms */
} dl_selector;

/* M_max positions per call; rows_max > 0 also allocates a (rows_max, V)
 * device logits block (dl_select_logits) for dl_model_forward_kv. */
int dl_select_init(dl_selector *s, dl_model *m, const dl_select_cfg *c, int M_max, int rows_max, char *err,
                   size_t errlen);
void dl_select_free(dl_selector *s);   /* safe on a zeroed struct */
/* The device logits block of init's rows_max (an opaque device pointer). */
float *dl_select_logits(dl_selector *s);
/* Upload n uniforms (host) for the next runs: base[q] then indexes them
 * instead of Philox (the --noise FILE test hook; the only noise copy). */
int dl_select_set_noise(dl_selector *s, const double *u, size_t n, char *err, size_t errlen);
/* Select M positions from the model's last forward logits (dl_model_logits,
 * rows 0..M-1, with cfg the unconditional rows M..2M-1 after them); Philox
 * key = seed.  tok / conf filled. */
int dl_select_run(dl_selector *s, int M, uint64_t seed, char *err, size_t errlen);
/* The same over the logits block of dl_select_logits, position q reading
 * row[q] (no cfg). */
int dl_select_run_rows(dl_selector *s, int M, uint64_t seed, char *err, size_t errlen);

/* dl_select_run on logits (M or 2M rows with cfg, V) the caller computed
 * elsewhere (device pointer; dl_model_forward_window) */
int dl_select_run_logits(dl_selector *s, const float *logits, int M, uint64_t seed, char *err, size_t errlen);
#endif
