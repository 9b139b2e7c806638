/* tests/fuzz/fuzz_llama2c.c — libFuzzer target: the llama2.c legacy model
 * loader (share/model/dl_llama2c.c).
 *
 * The input is a model .bin.  When dl_llama2c_open accepts it, its config
 * must be sane (positive sizes, dim = heads * head_dim) and every tensor of
 * the first and last layer, plus embeddings, final norm and (untied)
 * lm_head, is read with the element count its config gives (the file size
 * matched the header exactly, so this reads inside the mapping).
 * Not here: the llama2.c tokenizer .bin converter, conversion to a
 * checkpoint (dl_convert.c).
 */
#include "dl_ckpt.h"
#include "fuzz_common.h"

static void read_tensor(const dl_llama2c *l, const char *name, uint64_t n) {
    char err[512];
    if (n > (1u << 28)) fz_fail("an accepted tensor larger than any input");
    float *dst = malloc(sizeof(float) * (size_t)n + 1);
    if (!dst) return;
    if (dl_llama2c_tensor(l, name, dst, (size_t)n, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        fz_fail("an accepted model refuses one of its tensors");
    }
    free(dst);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512], name[128];
    dl_llama2c l;
    if (dl_llama2c_open(&l, fz_file("model.bin", data, size), err, sizeof err)) return 0;
    const dl_config *c = &l.cfg;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 || c->hidden_dim <= 0 ||
        c->vocab_size <= 0 || c->head_dim * c->n_heads != c->dim)
        fz_fail("dl_llama2c_open accepted an inconsistent header");
    uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->hidden_dim, V = (uint64_t)c->vocab_size,
             KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim;
    read_tensor(&l, "model.embed_tokens.weight", V * D);
    read_tensor(&l, "model.norm.weight", D);
    if (!c->tied) read_tensor(&l, "lm_head.weight", V * D);
    static const struct { const char *suffix; int rows, cols; } PER_LAYER[] = {
        { "input_layernorm.weight", 0, 'D' }, { "post_attention_layernorm.weight", 0, 'D' },
        { "self_attn.q_proj.weight", 'D', 'D' }, { "self_attn.k_proj.weight", 'K', 'D' },
        { "self_attn.v_proj.weight", 'K', 'D' }, { "self_attn.o_proj.weight", 'D', 'D' },
        { "mlp.gate_proj.weight", 'F', 'D' }, { "mlp.down_proj.weight", 'D', 'F' }, { "mlp.up_proj.weight", 'F', 'D' },
    };
    int layers[2] = { 0, c->n_layers - 1 };
    for (int li = 0; li < 2; li++)
        for (size_t i = 0; i < sizeof PER_LAYER / sizeof PER_LAYER[0]; i++) {
            uint64_t dims[2];
            for (int d = 0; d < 2; d++) {
                int code = d ? PER_LAYER[i].cols : PER_LAYER[i].rows;
                dims[d] = code == 'D' ? D : code == 'F' ? F : code == 'K' ? KV : 1;
            }
            snprintf(name, sizeof name, "model.layers.%d.%s", layers[li], PER_LAYER[i].suffix);
            read_tensor(&l, name, dims[0] * dims[1]);
        }
    dl_llama2c_close(&l);
    return 0;
}
