/* tests/fuzz/fuzz_stream.c — libFuzzer target: the msgpack stream reader on
 * raw bytes (share/io dl_stream + dl_io).
 *
 * The input is the file as given: dl_in detects the zstd magic itself, so
 * seeds that are .zst files fuzz the zstd framing (corrupt and truncated
 * frames), the others the msgpack parsing.  See fuzz_stream_read.h for what
 * is read and checked; fuzz_stream_zstd.c feeds valid zstd frames instead.
 */
#include "fuzz_stream_read.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_read_stream(fz_file("in.msgpack", data, size));
    return 0;
}
