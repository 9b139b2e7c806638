/* dl_family.c — the tensor names of each model family's own checkpoints
 * (implements dl_family_tensor_name / dl_family_has_tensor of dl_ckpt.h).
 *
 * The model (dl_model.c) names its tensors as Hugging Face LLaMA / Qwen2 /
 * Qwen3 do ("model.layers.3.self_attn.q_proj.weight"); that is also what
 * dl_ckpt_save writes.  Loading a family's own directory reads the names it
 * wrote:
 *   llada (modeling_llada.py, LLaDAModelLM -> LLaDAModel, block_type llama,
 *   block_group_size 1):
 *     model.embed_tokens.weight            model.transformer.wte.weight
 *     model.norm.weight                    model.transformer.ln_f.weight
 *     lm_head.weight                       model.transformer.ff_out.weight (weight_tying false)
 *     model.layers.N.input_layernorm       model.transformer.blocks.N.attn_norm
 *       .self_attn.{q,k,v}_proj (+bias)      .{q,k,v}_proj
 *       .self_attn.o_proj                    .attn_out
 *       .post_attention_layernorm            .ff_norm
 *       .mlp.gate_proj / up_proj / down_proj .ff_proj / up_proj / ff_out
 *   every other family (Dream, a2d-*, qwen3, ...): the HF names unchanged.
 * Does not: read files or check shapes (dl_ckpt.c, dl_convert.c do).
 */
#include <stdio.h>
#include <string.h>
#include "dl_ckpt.h"
#include "dl_io.h"

static const char *const LLADA_LAYER[][2] = {
    { "input_layernorm.weight", "attn_norm.weight" },
    { "self_attn.q_proj.weight", "q_proj.weight" }, { "self_attn.q_proj.bias", "q_proj.bias" },
    { "self_attn.k_proj.weight", "k_proj.weight" }, { "self_attn.k_proj.bias", "k_proj.bias" },
    { "self_attn.v_proj.weight", "v_proj.weight" }, { "self_attn.v_proj.bias", "v_proj.bias" },
    { "self_attn.o_proj.weight", "attn_out.weight" },
    { "post_attention_layernorm.weight", "ff_norm.weight" },
    { "mlp.gate_proj.weight", "ff_proj.weight" }, { "mlp.up_proj.weight", "up_proj.weight" },
    { "mlp.down_proj.weight", "ff_out.weight" },
};
static const char *const LLADA_TOP[][2] = {
    { "model.embed_tokens.weight", "model.transformer.wte.weight" },
    { "model.norm.weight", "model.transformer.ln_f.weight" },
    { "lm_head.weight", "model.transformer.ff_out.weight" },
};

static int llada_name(const char *name, char *out, size_t n) {
    for (size_t i = 0; i < sizeof LLADA_TOP / sizeof LLADA_TOP[0]; i++)
        if (!strcmp(name, LLADA_TOP[i][0])) return snprintf(out, n, "%s", LLADA_TOP[i][1]) < (int)n ? 0 : -1;
    int layer, used = 0;
    if (sscanf(name, "model.layers.%d.%n", &layer, &used) != 1 || used == 0) return -1;
    for (size_t i = 0; i < sizeof LLADA_LAYER / sizeof LLADA_LAYER[0]; i++)
        if (!strcmp(name + used, LLADA_LAYER[i][0]))
            return snprintf(out, n, "model.transformer.blocks.%d.%s", layer, LLADA_LAYER[i][1]) < (int)n ? 0 : -1;
    return -1;
}

int dl_family_tensor_name(const dl_config *c, const char *name, char *out, size_t n, char *err, size_t errlen) {
    int rc = 0;
    if (!strcmp(c->family, "llada")) rc = llada_name(name, out, n);
    else rc = snprintf(out, n, "%s", name) < (int)n ? 0 : -1;
    if (rc) return dl_seterr(err, errlen, -DL_EXIT_DATA, "tensor \"%s\" has no name in a %s checkpoint", name, c->family);
    return 0;
}

int dl_family_has_tensor(const dl_model *m, const char *src_name) {
    char nm[128], e[8];
    for (int i = 0; i < m->n_tensors; i++)
        if (!dl_family_tensor_name(&m->cfg, m->tensors[i].name, nm, sizeof nm, e, sizeof e) && !strcmp(nm, src_name))
            return 1;
    return 0;
}
