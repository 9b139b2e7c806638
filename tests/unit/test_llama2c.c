/* test_llama2c.c — hostile llama2.c model headers (share/model/dl_llama2c.c).
 *
 * Regression for a header whose sizes (each <= 2^24, so accepted one by one)
 * make the weight count wrap around 2^64 to exactly what a 131 KB file
 * holds: it was accepted and dl_llama2c_tensor then read terabytes past the
 * mapping (found by tests/fuzz/fuzz_llama2c.c; the same bytes are its seed
 * tests/fuzz/corpus/llama2c/wrapped-size.bin).  Also checks that a small
 * consistent model still opens and reads.  Files are written under $TMPDIR.
 * Not here: the real stories260K model (test_stories260k.c).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_test.h"
#include "dl_ckpt.h"

/* Write the 7-int32 header h then n_floats zero floats to path; 0 or -1. */
static int write_model(const char *path, const int32_t h[7], uint64_t n_floats) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    int ok = fwrite(h, 4, 7, f) == 7;
    float z = 0;
    for (uint64_t i = 0; ok && i < n_floats; i++) ok = fwrite(&z, 4, 1, f) == 1;
    return fclose(f) == 0 && ok ? 0 : -1;
}

int main(void) {
    char path[512], err[512];
    const char *tmp = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/dllm-test-llama2c.%d.bin", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    dl_llama2c l;

    /* dim 2^14, hidden 11173886, 2^24 layers, 8192 heads (head_dim 2), 1 kv
     * head, vocab 1 (tied), seq_len 1: the per-layer weights
     * L*D*(2 + 2D + 2KV + 3F) = 2^38 * 2^25 = 2^63 floats vanish modulo
     * 2^62, leaving 2D + S*E = 32770 floats; the file has exactly those. */
    const int32_t wrapped[7] = { 16384, 11173886, 1 << 24, 8192, 1, 1, 1 };
    DL_CHECK(write_model(path, wrapped, 2 * 16384 + 2) == 0, "write the wrapped-size model");
    int rc = dl_llama2c_open(&l, path, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "truncated or not a legacy llama2.c export"),
             "a header whose size wraps around 2^64 is a data error (rc %d: %s)", rc, rc ? err : "accepted");
    dl_llama2c_close(&l);

    /* dim 8, hidden 16, 1 layer, 2 heads, 1 kv head, vocab 8 tied, seq 4:
     * 8*8 + 8 + 64 + 2*4*8 + 64 + 8 + 3*16*8 + 8 + 4*4 = 680 floats (kv rows 4) */
    const int32_t small[7] = { 8, 16, 1, 2, 1, 8, 4 };
    DL_CHECK(write_model(path, small, 680) == 0, "write a small model");
    rc = dl_llama2c_open(&l, path, err, sizeof err);
    DL_CHECK(rc == 0, "a consistent small model opens (%s)", rc ? err : "ok");
    float w[64];
    if (!rc) {
        rc = dl_llama2c_tensor(&l, "model.layers.0.self_attn.q_proj.weight", w, 64, err, sizeof err);
        DL_CHECK(rc == 0, "its q_proj reads (%s)", rc ? err : "ok");
    }
    dl_llama2c_close(&l);
    DL_CHECK(write_model(path, small, 679) == 0, "write it one float short");
    rc = dl_llama2c_open(&l, path, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA, "one float short is a data error (rc %d)", rc);
    dl_llama2c_close(&l);
    unlink(path);
    return dl_test_end();
}
