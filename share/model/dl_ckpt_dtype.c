/* dl_ckpt_dtype.c — the storage dtype of a model source's weights, so a
 * program that re-saves a model (dllm-train --init / --resume) can keep the
 * source's dtype by default (dl_ckpt.h, dl_ckpt_source_dtype).
 *
 * The answer is the dtype of the source's matrices (2-D tensors): F32, BF16
 * or F16 when they all agree, F32 when they are mixed (the safe choice:
 * nothing is rounded).  A llama2.c .bin is F32.  Vectors (norms, biases)
 * do not count: some exporters keep them f32 next to bf16 matrices.
 * Does not: load any data (only the safetensors headers are parsed).
 */
#include <string.h>
#include "dl_ckpt.h"
#include "dl_io.h"

int dl_ckpt_source_dtype(const char *src, dl_st_dtype *dt, char *err, size_t errlen) {
    *dt = DL_ST_F32;
    size_t n = strlen(src);
    int is_st = n > 12 && !strcmp(src + n - 12, ".safetensors");
    if (!dl_is_dir(src) && !is_st) return 0;   /* llama2.c export: float32 */
    dl_ckpt_weights w;
    int rc = dl_ckpt_weights_open(&w, src, err, errlen);
    if (rc) return rc;
    int seen = 0, mixed = 0;
    dl_st_dtype first = DL_ST_F32;
    for (int i = 0; i < w.n; i++)
        for (int j = 0; j < w.f[i].n; j++) {
            const dl_st_tensor *t = &w.f[i].t[j];
            if (t->ndim != 2) continue;
            if (!seen) { first = t->dtype; seen = 1; }
            else if (t->dtype != first) mixed = 1;
        }
    if (seen && !mixed && (first == DL_ST_BF16 || first == DL_ST_F16)) *dt = first;
    dl_ckpt_weights_close(&w);
    return 0;
}
