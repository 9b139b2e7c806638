/* tests/fuzz/fuzz_config.c — libFuzzer target: the JSON config readers of
 * share/model: dl_config_parse (config.json) and dl_train_state_parse
 * (trainer_state.json), on the same bytes, in memory (the *_load functions
 * read the file and call them).
 *
 * A loaded config must satisfy what dl_config_load promises its callers
 * (dl_model.h): positive sizes, dim % heads and heads % kv_heads consistent.
 * Not here: writing configs, checkpoint directories (dl_ckpt).
 */
#include "dl_ckpt.h"
#include "dl_model.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    dl_config c;
    if (!dl_config_parse(&c, (const char *)data, size, "config.json", err, sizeof err)) {
        if (c.dim <= 0 || c.n_layers <= 0 || c.n_heads <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 ||
            c.hidden_dim <= 0 || c.vocab_size <= 0)
            fz_fail("dl_config_load accepted a non-positive size");
        if (c.n_heads % c.n_kv_heads) fz_fail("dl_config_load accepted heads % kv_heads != 0");
        if (!memchr(c.arch, 0, sizeof c.arch) || !memchr(c.objective, 0, sizeof c.objective))
            fz_fail("unterminated string in dl_config");
    }
    dl_train_state st;
    (void)dl_train_state_parse(&st, (const char *)data, size, "trainer_state.json", err, sizeof err);
    return 0;
}
