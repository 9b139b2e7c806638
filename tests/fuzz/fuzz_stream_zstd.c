/* tests/fuzz/fuzz_stream_zstd.c — libFuzzer target: the stream reader behind
 * the zstd decompressor.
 *
 * The input is compressed (level 1) before it is read, as two concatenated
 * frames split at a point chosen by the input's length, so the mutations
 * reach the msgpack parser through valid zstd framing and frame boundaries
 * fall inside records.  Raw corrupt frames are fuzz_stream.c's job.
 */
#include <zstd.h>
#include "fuzz_stream_read.h"

static size_t frame(uint8_t *dst, size_t cap, const uint8_t *src, size_t n) {
    size_t k = ZSTD_compress(dst, cap, src, n, 1);
    if (ZSTD_isError(k)) fz_fail(ZSTD_getErrorName(k));
    return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t cap = 2 * ZSTD_compressBound(size) + 64;
    uint8_t *z = malloc(cap);
    if (!z) return 0;
    size_t cut = size ? (size * 7 / 13) % size : 0;   /* some split, stable for one input */
    size_t n = frame(z, cap, data, cut);
    n += frame(z + n, cap - n, data + cut, size - cut);
    fz_read_stream(fz_file("in.msgpack.zst", z, n));
    free(z);
    return 0;
}
