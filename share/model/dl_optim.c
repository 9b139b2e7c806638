/* dl_optim.c — gradient norm, clip factor and the two AdamW calls
 * (dl_optim.h).  Does not: allocate (m->grads, adam_m, adam_v come from
 * dl_model_alloc_grads / dl_model_alloc_optimizer).
 */
#include <math.h>
#include "dl_optim.h"

double dl_optim_grad_norm(dl_model *m) { return sqrt(dl_k_sumsq(m->dev, m->grads, m->n_params)); }

double dl_optim_clip_scale(const dl_optim_cfg *c, double grad_norm) {
    return c->clip > 0 && grad_norm > c->clip ? c->clip / (grad_norm + 1e-6) : 1.0;
}

void dl_optim_step(dl_model *m, const dl_optim_cfg *c, double lr, int64_t step, double clip_scale) {
    dl_dev *d = m->dev;
    size_t nd = m->n_decay_params;
    float gs = (float)clip_scale;
    if (nd)
        dl_k_adamw(d, m->params, m->grads, m->adam_m, m->adam_v, nd, (float)lr, (float)c->beta1, (float)c->beta2,
                   (float)c->eps, (float)c->wd, (int)step, gs);
    if (m->n_params > nd)
        dl_k_adamw(d, m->params + nd, m->grads + nd, m->adam_m + nd, m->adam_v + nd, m->n_params - nd, (float)lr,
                   (float)c->beta1, (float)c->beta2, (float)c->eps, 0.0f, (int)step, gs);
    dl_dev_sync(d);
}
