/* tests/fuzz/fuzz_safetensors.c — libFuzzer target: the safetensors reader
 * (share/model/dl_safetensors.c).
 *
 * The input is a .safetensors file.  When dl_st_open accepts it, every
 * tensor must be findable by name and lie inside the data section as
 * dl_safetensors.h promises (end - begin == numel * dtype size), and every
 * F32/F16/BF16 tensor is converted with dl_st_read_f32 (the accepted file
 * holds its bytes, so the buffer is at most 2x the input).
 * Not here: the writer, sharded checkpoints (dl_ckpt_weights).
 */
#include "dl_safetensors.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    dl_st_file f;
    memset(&f, 0, sizeof f);
    if (dl_st_open(&f, fz_file("model.safetensors", data, size), err, sizeof err)) return 0;
    uint64_t data_bytes = (uint64_t)(f.size - (size_t)(f.data - f.map));
    for (int i = 0; i < f.n; i++) {
        const dl_st_tensor *t = &f.t[i];
        if (dl_st_find(&f, t->name) == NULL) fz_fail("dl_st_find misses a tensor of the file");
        if (t->ndim < 0 || t->ndim > 8) fz_fail("tensor rank out of range");
        int64_t numel = dl_st_numel(t);
        if (numel < 0 || t->begin > t->end || t->end > data_bytes ||
            t->end - t->begin != (uint64_t)numel * (uint64_t)dl_st_dtype_size(t->dtype))
            fz_fail("an accepted tensor does not fit its data section");
        if (t->dtype != DL_ST_F32 && t->dtype != DL_ST_F16 && t->dtype != DL_ST_BF16) continue;
        float *dst = malloc(sizeof(float) * (size_t)numel + 1);
        if (!dst) continue;
        if (dl_st_read_f32(&f, t, dst, (size_t)numel, err, sizeof err)) fz_fail("dl_st_read_f32 refused a tensor");
        free(dst);
    }
    dl_st_close(&f);
    return 0;
}
