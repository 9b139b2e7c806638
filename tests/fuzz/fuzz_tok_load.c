/* tests/fuzz/fuzz_tok_load.c — libFuzzer target: tokenizer.json loading
 * (share/tok dl_tok_load), then encode and decode with what loaded.
 *
 * The input is a tokenizer.json.  When it loads, a few fixed texts and the
 * input's own first bytes are encoded; every id must be < vocab size and
 * have a token, and decode (with and without skip_special) must accept the
 * ids encode made.  The file sits alone in the private directory, so no
 * tokenizer_config.json is read beside it.
 * Not here: round trips (depend on the pipeline: fuzz_tok_bundled.c checks
 * them for real tokenizers), dl_tok_save.
 */
#include "dl_tok.h"
#include "fuzz_common.h"

static void encode_decode(dl_tok *t, const char *text, size_t n) {
    char err[512];
    dl_u32buf ids = {0};
    dl_strbuf out = {0};
    uint32_t vocab = dl_tok_vocab_size(t);
    if (!dl_tok_encode(t, text, n, &ids, err, sizeof err)) {
        for (size_t i = 0; i < ids.n; i++) {
            if (ids.p[i] >= vocab) fz_fail("encode made an id >= vocab size");
            if (!dl_tok_id_token(t, ids.p[i])) fz_fail("encode made an id that has no token");
        }
        for (int skip = 0; skip < 2; skip++) {
            out.n = 0;
            if (dl_tok_decode(t, ids.p, ids.n, skip, &out, err, sizeof err)) {
                fprintf(stderr, "decode: %s\n", err);
                fz_fail("decode refused the ids encode made");
            }
        }
    }
    dl_u32buf_free(&ids);
    dl_strbuf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    dl_tok *t = NULL;
    if (dl_tok_load(&t, fz_file("tokenizer.json", data, size), err, sizeof err)) return 0;
    static const char *const TEXTS[] = { "", "a", "Hello world", " ab  ba\n\n\tx", "caf\xc3\xa9 \xe2\x96\x81 \xf0\x9f\x98\x80",
                                         "\xff\xfe bad utf8 \xc3", "<s></s><unk><|endoftext|>", "123 4567 !?" };
    for (size_t i = 0; i < sizeof TEXTS / sizeof TEXTS[0]; i++) encode_decode(t, TEXTS[i], strlen(TEXTS[i]));
    encode_decode(t, (const char *)data, size < 256 ? size : 256);
    (void)dl_tok_sha256(t);
    for (int s = DL_TOK_BOS; s <= DL_TOK_MASK; s++) {
        int64_t id = dl_tok_special_id(t, (dl_tok_special)s);
        if (id >= (int64_t)dl_tok_vocab_size(t)) fz_fail("a special id >= vocab size");
    }
    dl_tok_free(t);
    return 0;
}
