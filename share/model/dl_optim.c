/* dl_optim.c — gradient norm, clip factor and the two AdamW calls
 * (dl_optim.h).  Allocates only m->gclip (2 doubles, dl_optim_reserve or
 * the first dl_optim_clip); m->grads, adam_m, adam_v come from dl_model_alloc_grads /
 * dl_model_alloc_optimizer.
 */
#include <math.h>
#include "dl_lora.h"
#include "dl_optim.h"

dl_optim_block dl_optim_trained(const dl_model *m) {
    if (m->lora) {
        dl_lora_block b = dl_lora_block_of(m->lora);
        return (dl_optim_block){ b.params, b.grads, b.adam_m, b.adam_v, b.n, b.n };
    }
    return (dl_optim_block){ m->params, m->grads, m->adam_m, m->adam_v, m->n_params, m->n_decay_params };
}

int dl_optim_reserve(dl_model *m, char *err, size_t errlen) {
    if (!m->gclip && !(m->gclip = dl_dev_alloc(m->dev, 2 * sizeof(double))))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "model: out of device memory (2 doubles for the gradient norm)");
    return 0;
}

int dl_optim_clip(dl_model *m, const dl_optim_cfg *c, char *err, size_t errlen) {
    int rc = dl_optim_reserve(m, err, errlen);
    if (rc) return rc;
    dl_optim_block b = dl_optim_trained(m);
    dl_k_grad_clip(m->dev, m->gclip, b.grads, b.n, c->clip);
    return 0;
}

void dl_optim_clip_read(dl_model *m, double *grad_norm, double *clip_scale) {
    double h[2];
    dl_dev_d2h(m->dev, h, m->gclip, sizeof h);
    *grad_norm = h[0];
    *clip_scale = h[1];
}

void dl_optim_step(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step) {
    dl_optim_step_range(m, c, lr, step, 0, dl_optim_trained(m).n);
}

void dl_optim_step_range(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step, size_t lo, size_t hi) {
    dl_optim_block b = dl_optim_trained(m);
    dl_optim_step_shard(m, c, lr, step, lo, hi, b.adam_m + lo, b.adam_v + lo);
}

/* AdamW is elementwise, so [lo, hi) cut at n_decay_params into the decay
 * and no-decay calls gives every element exactly what the whole-block
 * calls give it; sm[i - lo] is element i's first moment.  The clip factor
 * is read on the device (m->gclip[1]); the bf16 compute copy of the base
 * model, when there is one, is written in the same pass. */
void dl_optim_step_shard(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step, size_t lo, size_t hi, float *sm,
                         float *sv) {
    dl_dev *d = m->dev;
    dl_optim_block b = dl_optim_trained(m);
    size_t nd = b.n_decay;
    DL_ASSERT(m->gclip);   /* dl_optim_clip first */
    const double *gs = m->gclip + 1;
    uint16_t *copy = m->wcomp && !m->lora ? (uint16_t *)m->wcomp : NULL;
    size_t a = lo, e = hi < nd ? hi : nd;   /* decay part [a, e) */
    if (e > a)
        dl_k_adamw(d, b.params + a, b.grads + a, sm + (a - lo), sv + (a - lo), e - a, (float)lr, (float)c->beta1,
                   (float)c->beta2, (float)c->eps, (float)c->wd, (int)step, 1.0f, gs, copy ? copy + a : NULL);
    a = lo > nd ? lo : nd;                  /* no-decay part [a, hi) */
    if (hi > a)
        dl_k_adamw(d, b.params + a, b.grads + a, sm + (a - lo), sv + (a - lo), hi - a, (float)lr, (float)c->beta1,
                   (float)c->beta2, (float)c->eps, 0.0f, (int)step, 1.0f, gs, copy ? copy + a : NULL);
    dl_dev_sync(d);
}

float *dl_optim_moments_alloc(const dl_model *m, size_t n) { return dl_dev_alloc(m->dev, (n ? n : 1) * sizeof(float)); }

void dl_optim_moments_free(const dl_model *m, float *p) {
    if (p) dl_dev_free(m->dev, p);
}

int dl_optim_take_share(dl_model *m, size_t lo, size_t k, float **sm, float **sv) {
    *sm = dl_optim_moments_alloc(m, k);
    *sv = dl_optim_moments_alloc(m, k);
    if (!*sm || !*sv) {
        dl_optim_moments_free(m, *sm);
        dl_optim_moments_free(m, *sv);
        *sm = *sv = NULL;
        return -1;
    }
    if (m->adam_m) {   /* resumed: keep this share of the whole state */
        dl_dev_d2d(m->dev, *sm, m->adam_m + lo, k * sizeof(float));
        dl_dev_d2d(m->dev, *sv, m->adam_v + lo, k * sizeof(float));
        dl_dev_sync(m->dev);
        dl_dev_free(m->dev, m->adam_m);
        dl_dev_free(m->dev, m->adam_v);
        m->adam_m = m->adam_v = NULL;
    }
    return 0;
}
