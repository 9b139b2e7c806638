/* dl_fixture_weights.h — the deterministic weights of the tiny PyTorch
 * reference model: the same formula as weight() in
 * tests/ref/gen_model_fixture.py (fnv1a of the HF tensor name + splitmix64 of
 * the element index -> s in [-1, 1); norms 1 + 0.2 s, biases 0.1 s, matrices
 * s * sqrt(3 / in_features)), written into a model's parameters on its device.
 * Shared by the unit tests that rebuild that model instead of loading it. */
#ifndef DL_FIXTURE_WEIGHTS_H
#define DL_FIXTURE_WEIGHTS_H
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "dl_model.h"

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

static void gen_weights(dl_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const dl_tensor *t = &m->tensors[i];
        size_t n = t->ndim == 2 ? (size_t)t->shape[0] * t->shape[1] : (size_t)t->shape[0];
        float *w = malloc(n * sizeof *w);
        uint64_t key = fnv1a(t->name);
        int is_norm = strstr(t->name, "norm") != NULL, is_bias = strstr(t->name, ".bias") != NULL;
        double a = t->ndim == 2 ? sqrt(3.0 / t->shape[1]) : 0;
        for (size_t j = 0; j < n; j++) {
            uint64_t z = key + j + 0x9E3779B97F4A7C15ull;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
            z ^= z >> 31;
            double s = 2.0 * ((double)(z >> 40) / 16777216.0) - 1.0;
            w[j] = (float)(is_norm ? 1.0 + 0.2 * s : is_bias ? 0.1 * s : s * a);
        }
        dl_dev_h2d(m->dev, m->params + t->offset, w, n * sizeof *w);
        free(w);
    }
}
#endif
