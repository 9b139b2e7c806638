/* dl_select.c — token selection for the samplers (dl_select.h): device
 * buffers, one upload of the per-position inputs, the kernel call, one
 * download each of tokens and confidences.
 *
 * Layout of the per-position block (host h and device d alike):
 *   base (M_max uint64) | stream (M_max uint64) | row (M_max int32)
 * so a call is one h2d of that block.  Does not: interpret the results.
 */
#include <stdlib.h>
#include <string.h>
#include "dl_select.h"

int dl_select_init(dl_selector *s, dl_model *m, const dl_select_cfg *c, int M_max, int rows_max, char *err,
                   size_t errlen) {
    memset(s, 0, sizeof *s);
    s->m = m;
    s->c = *c;
    s->c.suppress = NULL;
    if (M_max < 1) M_max = 1;
    s->M_max = M_max;
    s->rows_max = rows_max;
    dl_dev *d = m->dev;
    size_t M = (size_t)M_max, V = (size_t)m->cfg.vocab_size, inb = M * (2 * sizeof(uint64_t) + sizeof(int32_t));
    uint8_t *h = malloc(inb);
    s->tok = malloc(M * sizeof *s->tok);
    s->conf = malloc(M * sizeof *s->conf);
    s->d_in = dl_dev_alloc(d, inb);
    s->d_tok = dl_dev_alloc(d, M * sizeof *s->d_tok);
    s->d_conf = dl_dev_alloc(d, M * sizeof *s->d_conf);
    s->d_sup = c->n_suppress > 0 ? dl_dev_alloc(d, (size_t)c->n_suppress * sizeof *s->d_sup) : NULL;
    s->d_logits = rows_max > 0 ? dl_dev_alloc(d, (size_t)rows_max * V * sizeof *s->d_logits) : NULL;
    if (h) {
        s->base = (uint64_t *)h;
        s->stream = s->base + M;
        s->row = (int32_t *)(s->stream + M);
        memset(h, 0, inb);
    }
    if (!h || !s->tok || !s->conf || !s->d_in || !s->d_tok || !s->d_conf || (c->n_suppress > 0 && !s->d_sup) ||
        (rows_max > 0 && !s->d_logits)) {
        dl_select_free(s);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory for token selection (%d positions)", M_max);
    }
    if (c->n_suppress > 0) dl_dev_h2d(d, s->d_sup, c->suppress, (size_t)c->n_suppress * sizeof *s->d_sup);
    return 0;
}

void dl_select_free(dl_selector *s) {
    if (!s->m) return;
    dl_dev *d = s->m->dev;
    free(s->base); free(s->tok); free(s->conf);
    if (s->d_in) dl_dev_free(d, s->d_in);
    if (s->d_tok) dl_dev_free(d, s->d_tok);
    if (s->d_conf) dl_dev_free(d, s->d_conf);
    if (s->d_sup) dl_dev_free(d, s->d_sup);
    if (s->d_logits) dl_dev_free(d, s->d_logits);
    if (s->d_noise) dl_dev_free(d, s->d_noise);
    memset(s, 0, sizeof *s);
}

float *dl_select_logits(dl_selector *s) { return s->d_logits; }

int dl_select_set_noise(dl_selector *s, const double *u, size_t n, char *err, size_t errlen) {
    dl_dev *d = s->m->dev;
    if (n > s->cap_noise || !s->d_noise) {
        if (s->d_noise) dl_dev_free(d, s->d_noise);
        s->cap_noise = 0;
        s->d_noise = dl_dev_alloc(d, (n ? n : 1) * sizeof *s->d_noise);
        if (!s->d_noise) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory for %zu noise values", n);
        s->cap_noise = n ? n : 1;
    }
    if (n) dl_dev_h2d(d, s->d_noise, u, n * sizeof *u);
    s->use_noise = 1;
    return 0;
}

static int run(dl_selector *s, float *logits, int M, int rows, uint64_t seed, char *err, size_t errlen) {
    if (M <= 0) return 0;
    if (M > s->M_max)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "token selection: %d positions, room for %d", M, s->M_max);
    dl_dev *d = s->m->dev;
    size_t Mx = (size_t)s->M_max;
    dl_dev_h2d(d, s->d_in, s->base, Mx * 2 * sizeof(uint64_t) + (rows ? (size_t)M * sizeof(int32_t) : 0));
    uint64_t *d_base = s->d_in, *d_stream = d_base + Mx;
    dl_select_args a = {
        .M = M, .V = s->m->cfg.vocab_size, .logits = logits, .row = rows ? (const int32_t *)(d_stream + Mx) : NULL,
        .cfg = s->c.cfg != 0, .cfg_w1 = (float)(s->c.cfg + 1.0),
        .suppress = s->d_sup, .n_suppress = s->c.n_suppress, .mask_id = s->c.mask_id,
        .draw = s->c.draw, .temperature = s->c.temperature, .top_k = s->c.top_k, .top_p = s->c.top_p,
        .conf = s->c.conf, .key = { (uint32_t)seed, (uint32_t)(seed >> 32) }, .purpose = s->c.purpose,
        .noise_stream = d_stream, .noise_base = d_base, .noise = s->use_noise ? s->d_noise : NULL,
        .tok = s->d_tok, .confidence = s->d_conf,
    };
    if (dl_k_select_tokens(d, &a))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "token selection: out of memory (vocab %d)", a.V);
    dl_dev_d2h(d, s->tok, s->d_tok, (size_t)M * sizeof *s->tok);
    dl_dev_d2h(d, s->conf, s->d_conf, (size_t)M * sizeof *s->conf);
    return 0;
}

int dl_select_run(dl_selector *s, int M, uint64_t seed, char *err, size_t errlen) {
    return run(s, (float *)dl_model_logits(s->m), M, 0, seed, err, errlen);
}

int dl_select_run_rows(dl_selector *s, int M, uint64_t seed, char *err, size_t errlen) {
    if (!s->d_logits) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "token selection: no logits block");
    return run(s, s->d_logits, M, 1, seed, err, errlen);
}

int dl_select_run_logits(dl_selector *s, const float *logits, int M, uint64_t seed, char *err, size_t errlen) {
    return run(s, (float *)logits, M, 0, seed, err, errlen);
}
