/* bench/gen_tokens.c — writes a synthetic `tokens` stream for benchmarks:
 *   gen_tokens N_TOKENS [VOCAB] > tokens.msgpack
 * Documents of 50..2000 ids (uniform), ids uniform in [3, VOCAB), header with
 * vocab_size, eos_id 2, mask_id VOCAB-1.  Deterministic (Philox, seed 0).
 * Built by bench/pack_mask.sh against build/libdllm.a; not part of `make`. */
#include <stdio.h>
#include <stdlib.h>
#include "dl_log.h"
#include "dl_rng.h"
#include "dl_stream.h"

int main(int argc, char **argv) {
    char err[512];
    dl_prog_init("gen_tokens", argc, argv);
    if (argc < 2) dl_die(DL_EXIT_USAGE, "usage: gen_tokens N_TOKENS [VOCAB]");
    unsigned long long total = strtoull(argv[1], NULL, 10);
    uint32_t vocab = argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 10) : 50000;
    dl_writer *w;
    dl_out_opts oo = DL_OUT_OPTS_DEFAULT;
    oo.force = 1;
    if (dl_writer_open(&w, "-", &oo, err, sizeof err)) dl_die(DL_EXIT_IO, "%s", err);
    dl_header h;
    dl_header_init(&h, DL_KIND_TOKENS);
    h.has_tok = 1;
    dl_tokinfo_clear(&h.tok);
    h.tok.vocab_size = vocab;
    h.tok.eos_id = 2;
    h.tok.mask_id = vocab - 1;
    if (dl_writer_header(w, &h)) dl_die(DL_EXIT_IO, "header");
    dl_header_free(&h);
    msgpack_packer *pk = dl_writer_packer(w);
    uint32_t *ids = malloc(2000 * sizeof *ids);
    dl_rng r;
    dl_rng_init(&r, 0, 0, 0, 0);
    for (unsigned long long done = 0; done < total;) {
        uint32_t n = 50 + dl_rng_below(&r, 1951);
        if (n > total - done) n = (uint32_t)(total - done);
        for (uint32_t i = 0; i < n; i++) ids[i] = 3 + dl_rng_below(&r, vocab - 4);
        msgpack_pack_map(pk, 1);
        dl_pack_str(pk, "ids");
        dl_pack_ids(pk, ids, n);
        dl_writer_count(w);
        done += n;
    }
    if (dl_writer_close(w, err, sizeof err)) dl_die(DL_EXIT_IO, "%s", err);
    free(ids);
    return 0;
}
