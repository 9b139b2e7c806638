/* dl_config.c — dl_config defaults, config.json load / save, shape compare.
 *
 * Reads the Hugging Face config.json field names of LlamaConfig,
 * Qwen2Config, MistralConfig and Qwen3Config:
 *   model_type (or architectures[0]), hidden_size, num_hidden_layers,
 *   num_attention_heads, num_key_value_heads, head_dim, intermediate_size,
 *   vocab_size, max_position_embeddings, rms_norm_eps, rope_theta (or
 *   rope_parameters.rope_theta), tie_word_embeddings, attention_bias,
 *   bos/eos/pad_token_id (an id, null, or a list: its first id)
 * plus the dllm fields, stored at the top level under the same names:
 *   mask_token_id, shift_logits, objective ("diffusion" | "causal"),
 *   block_diffusion (BD3LM block size; written only when > 0),
 *   rope_layout ("half" | "pairs").
 * Missing optional fields take the transformers class defaults (rms_norm_eps
 * 1e-6, rope_theta 10000, untied, no bias; qwen2 always has q/k/v biases;
 * qwen3 always has q_norm / k_norm).
 *
 * Families read from their own config.json (FAMILIES; c->family keeps the
 * model_type read, c->arch the canonical one we compute and save):
 *   llada      LLaDA's keys (d_model, n_layers, n_heads, n_kv_heads,
 *              mlp_hidden_size | mlp_ratio, vocab_size, embedding_size (the
 *              padded vocab: the embedding / logit rows), weight_tying,
 *              include_qkv_bias, rope_theta, rms_norm_eps,
 *              max_sequence_length, mask/eos/pad_token_id) -> llama;
 *              anything but block_type llama, layer_norm_type rms, rope true,
 *              activation_type silu is refused, and so is each of alibi,
 *              attention_layer_norm, input_emb_norm, scale_logits,
 *              include_bias, bias_for_layer_norm, clip_qkv,
 *              layer_norm_with_affine false, block_group_size != 1, a
 *              nonzero attention/residual/embedding_dropout (named);
 *   Dream      qwen2 keys -> qwen2 with shift_logits (mask_token_id from config);
 *   a2d-llama / a2d-qwen2 / a2d-qwen3   (dLLM's converted models: the base
 *              config with a new model_type) -> llama / qwen2 / qwen3.
 * Refused: an unknown model_type (the message lists the supported ones),
 * mixture-of-experts variants (*moe*, mixtral, num_experts,
 * num_local_experts, n_routed_experts), hidden_act other than silu,
 * mlp_bias, rope_scaling other than null/"default", and sliding-window
 * attention shorter than max_position_embeddings (check_sliding_window):
 * it is not implemented, so such a checkpoint is refused at load rather
 * than run with full attention.
 *
 * Saving writes what transformers' AutoConfig / AutoModelForCausalLM read
 * (architectures, model_type, torch_dtype, ...), through dl_out (temp file +
 * rename).  Reals are written with the shortest decimal that reads back as
 * the same float ("1e-6", not "9.99999997e-07").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dl_io.h"
#include "dl_model.h"
#include "dl_json.h"

void dl_config_default(dl_config *c) {
    memset(c, 0, sizeof *c);
    snprintf(c->arch, sizeof c->arch, "llama");
    c->max_seq_len = 2048;
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_layout = DL_ROPE_HALF;
    c->tied = 0;
    c->qkv_bias = 0;
    c->mask_token_id = -1;
    c->bos_token_id = c->eos_token_id = c->pad_token_id = -1;
    c->shift_logits = 0;
    c->block_diffusion = 0;
    snprintf(c->objective, sizeof c->objective, "diffusion");
}

/* ---------------------------------------------------------------- load */
/* Every model_type we read, the canonical arch we compute and save it as,
 * and its class in "architectures".  The first four are the canonical ones
 * (type == arch): dl_config_save writes only those. */
static const struct { const char *type, *arch, *cls; } FAMILIES[] = {
    { "llama", "llama", "LlamaForCausalLM" },
    { "qwen2", "qwen2", "Qwen2ForCausalLM" },
    { "mistral", "mistral", "MistralForCausalLM" },
    { "qwen3", "qwen3", "Qwen3ForCausalLM" },
    { "llada", "llama", "LLaDAModelLM" },           /* ML-GSAI/LLaDA: own keys and names */
    { "Dream", "qwen2", "DreamModel" },             /* DreamLM/Dream: qwen2 names, shifted logits */
    { "a2d-llama", "llama", "A2DLlamaLMHeadModel" }, /* ZHZisZZ/dllm a2d: HF names, bidirectional */
    { "a2d-qwen2", "qwen2", "A2DQwen2LMHeadModel" },
    { "a2d-qwen3", "qwen3", "A2DQwen3LMHeadModel" },
};
#define N_FAMILIES (sizeof FAMILIES / sizeof FAMILIES[0])
#define N_CANONICAL 4
#define SUPPORTED "llama, qwen2, mistral, qwen3, llada, Dream, a2d-llama, a2d-qwen2, a2d-qwen3"

static int get_int(json_t *o, const char *key, int required, int64_t *v, const char *path,
                   char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j)) {
        if (required) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: missing field %s", path, key);
        return 1;
    }
    if (json_is_integer(j)) { *v = json_integer_value(j); return 0; }
    if (json_is_real(j) && json_real_value(j) == floor(json_real_value(j))) {
        /* casting a double outside int64 is undefined (found by fuzz_config: 1e206) */
        double d = json_real_value(j);
        if (!(fabs(d) < 0x1p62))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s = %g: out of range", path, key, d);
        *v = (int64_t)d;
        return 0;
    }
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s: expected an integer", path, key);
}

/* A positive int field; 1 when absent and not required. */
static int get_pos(json_t *o, const char *key, int required, int *v, const char *path, char *err, size_t errlen) {
    int64_t x = 0;
    int rc = get_int(o, key, required, &x, path, err, errlen);
    if (rc) return rc;
    if (x <= 0 || x > 1 << 30)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s = %lld: must be a positive int", path, key,
                         (long long)x);
    *v = (int)x;
    return 0;
}

static int get_real(json_t *o, const char *key, float *v, const char *path, char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j)) return 1;
    if (!json_is_number(j))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s: expected a number", path, key);
    *v = (float)json_number_value(j);
    return 0;
}

static int get_bool(json_t *o, const char *key, int *v, const char *path, char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j)) return 1;
    if (json_is_boolean(j)) { *v = json_is_true(j); return 0; }
    if (json_is_integer(j)) { *v = json_integer_value(j) != 0; return 0; }
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s: expected true or false", path, key);
}

/* A token id: integer, null (-1), or a list (its first id). */
static int get_token_id(json_t *o, const char *key, int64_t *v, const char *path, char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (j && json_is_array(j)) j = json_array_size(j) ? json_array_get(j, 0) : NULL;
    if (!j || json_is_null(j)) { *v = -1; return 0; }
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s: expected a token id or null", path, key);
    *v = json_integer_value(j);
    return 0;
}

static int get_string(json_t *o, const char *key, char *dst, size_t n, const char *path, char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    if (!j || json_is_null(j)) return 1;
    if (!json_is_string(j) || strlen(json_string_value(j)) >= n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s: expected a short string", path, key);
    snprintf(dst, n, "%s", json_string_value(j));
    return 0;
}

/* A JSON value that is set and not false / 0 / null / "" (for option flags). */
static int truthy(json_t *j) {
    return j && !json_is_null(j) && !json_is_false(j) && !(json_is_integer(j) && !json_integer_value(j)) &&
           !(json_is_string(j) && !*json_string_value(j));
}

/* Sliding-window attention is not implemented: a checkpoint whose window is
 * shorter than its max_position_embeddings is refused at load (a run could
 * otherwise use sequences the model never attends to in full).  Mistral:
 * sliding_window (null = none).  Qwen2 / Qwen3 / Dream: only when
 * use_sliding_window is true and some layer uses it (layer_types, or
 * max_window_layers < num_hidden_layers). */
static int check_sliding_window(const dl_config *c, json_t *root, const char *path, char *err, size_t errlen) {
    int64_t w = 0;
    int rc = get_int(root, "sliding_window", 0, &w, path, err, errlen);
    if (rc < 0) return rc;
    if (rc == 1 || w >= c->max_seq_len) return 0;
    if (strcmp(c->arch, "mistral")) {
        if (!truthy(json_object_get(root, "use_sliding_window"))) return 0;
        json_t *lt = json_object_get(root, "layer_types");
        int64_t mwl = 0;
        if (json_is_array(lt)) {
            int any = 0;
            for (size_t i = 0; i < json_array_size(lt); i++)
                any |= !json_is_string(json_array_get(lt, i)) ||
                       strcmp(json_string_value(json_array_get(lt, i)), "full_attention") != 0;
            if (!any) return 0;
        } else if (get_int(root, "max_window_layers", 0, &mwl, path, err, errlen) == 0 && mwl >= c->n_layers)
            return 0;
    }
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: sliding_window %lld < max_position_embeddings %d: sliding-window "
                     "attention is not implemented (refused, not ignored)", path, (long long)w, c->max_seq_len);
}

/* LLaDA (configuration_llada.py, ModelConfig): its own keys; only the
 * LLaMA-style block is implemented.  Defaults are ModelConfig's, so an
 * absent block_type ("sequential"), layer_norm_type ("default"), rope
 * (false) or activation_type ("swiglu") is refused like a wrong one. */
static int parse_llada(dl_config *c, json_t *root, const char *path, char *err, size_t errlen) {
    int rc;
    static const struct { const char *key, *want; } strs[] = {
        { "block_type", "llama" }, { "layer_norm_type", "rms" }, { "activation_type", "silu" },
    };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const char *v = json_string_value(json_object_get(root, strs[i].key));
        if (!v || strcmp(v, strs[i].want))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada %s \"%s\" not supported (only \"%s\")", path,
                             strs[i].key, v ? v : "(default)", strs[i].want);
    }
    if (!json_is_true(json_object_get(root, "rope")))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada rope = false not supported (RoPE only)", path);
    /* options that change the math and are not implemented: refused by name */
    static const char *const off[] = { "alibi", "attention_layer_norm", "input_emb_norm", "scale_logits",
                                       "include_bias", "bias_for_layer_norm", "clip_qkv" };
    for (size_t i = 0; i < sizeof off / sizeof off[0]; i++)
        if (truthy(json_object_get(root, off[i])))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada %s is set: not supported", path, off[i]);
    json_t *aff = json_object_get(root, "layer_norm_with_affine");
    if (aff && json_is_false(aff))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada layer_norm_with_affine = false not supported", path);
    int64_t g = 1;
    if ((rc = get_int(root, "block_group_size", 0, &g, path, err, errlen)) < 0) return rc;
    if (g != 1)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada block_group_size %lld not supported (only 1)", path,
                         (long long)g);
    if ((rc = get_pos(root, "d_model", 1, &c->dim, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "n_layers", 1, &c->n_layers, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "n_heads", 1, &c->n_heads, path, err, errlen)) < 0) return rc;
    int mqa = 0;   /* ModelConfig.effective_n_kv_heads */
    if ((rc = get_bool(root, "multi_query_attention", &mqa, path, err, errlen)) < 0) return rc;
    c->n_kv_heads = mqa ? 1 : c->n_heads;
    if ((rc = get_pos(root, "n_kv_heads", 0, &c->n_kv_heads, path, err, errlen)) < 0) return rc;
    int ratio = 4;
    if ((rc = get_pos(root, "mlp_ratio", 0, &ratio, path, err, errlen)) < 0) return rc;
    c->hidden_dim = ratio * c->dim;
    if ((rc = get_pos(root, "mlp_hidden_size", 0, &c->hidden_dim, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "vocab_size", 1, &c->vocab_size, path, err, errlen)) < 0) return rc;
    /* the embedding (and the logits) have embedding_size rows (vocab padded) */
    int real_vocab = c->vocab_size;
    if ((rc = get_pos(root, "embedding_size", 0, &c->vocab_size, path, err, errlen)) < 0) return rc;
    if (c->vocab_size < real_vocab)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada embedding_size %d < vocab_size %d", path, c->vocab_size,
                         real_vocab);
    /* dropout is not implemented (training here never drops): a checkpoint
     * that asks for it is refused by name; absent means none was saved */
    static const char *const drops[] = { "attention_dropout", "residual_dropout", "embedding_dropout" };
    for (size_t i = 0; i < sizeof drops / sizeof drops[0]; i++) {
        float pd = 0;
        if ((rc = get_real(root, drops[i], &pd, path, err, errlen)) < 0) return rc;
        if (pd != 0)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: llada %s = %g: dropout is not implemented", path,
                             drops[i], pd);
    }
    c->max_seq_len = 1024;
    if ((rc = get_pos(root, "max_sequence_length", 0, &c->max_seq_len, path, err, errlen)) < 0) return rc;
    c->norm_eps = 1e-5f;
    if ((rc = get_real(root, "rms_norm_eps", &c->norm_eps, path, err, errlen)) < 0) return rc;
    if ((rc = get_real(root, "rope_theta", &c->rope_theta, path, err, errlen)) < 0) return rc;
    c->tied = 1;
    if ((rc = get_bool(root, "weight_tying", &c->tied, path, err, errlen)) < 0) return rc;
    if ((rc = get_bool(root, "include_qkv_bias", &c->qkv_bias, path, err, errlen)) < 0) return rc;
    if (c->dim % c->n_heads)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: d_model %d not divisible by n_heads %d", path, c->dim,
                         c->n_heads);
    c->head_dim = c->dim / c->n_heads;
    return 0;
}

/* llama / qwen2 / mistral / qwen3 and the families that use their keys. */
static int parse_hf(dl_config *c, json_t *root, const char *path, char *err, size_t errlen) {
    int rc;
    const char *mt = c->arch;
    c->norm_eps = 1e-6f;   /* transformers' default for all of them */
    if ((rc = get_pos(root, "hidden_size", 1, &c->dim, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "num_hidden_layers", 1, &c->n_layers, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "num_attention_heads", 1, &c->n_heads, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "intermediate_size", 1, &c->hidden_dim, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "vocab_size", 1, &c->vocab_size, path, err, errlen)) < 0) return rc;
    c->n_kv_heads = c->n_heads;
    if ((rc = get_pos(root, "num_key_value_heads", 0, &c->n_kv_heads, path, err, errlen)) < 0) return rc;
    if ((rc = get_pos(root, "head_dim", 0, &c->head_dim, path, err, errlen)) < 0) return rc;
    if (rc == 1) {
        if (c->dim % c->n_heads)
            return dl_seterr(err, errlen, -DL_EXIT_DATA,
                             "%s: hidden_size %d not divisible by num_attention_heads %d", path, c->dim, c->n_heads);
        c->head_dim = c->dim / c->n_heads;
    }
    if ((rc = get_pos(root, "max_position_embeddings", 0, &c->max_seq_len, path, err, errlen)) < 0) return rc;
    if ((rc = get_real(root, "rms_norm_eps", &c->norm_eps, path, err, errlen)) < 0) return rc;
    if ((rc = get_real(root, "rope_theta", &c->rope_theta, path, err, errlen)) < 0) return rc;
    json_t *rp = json_object_get(root, "rope_parameters");   /* transformers >= 5 */
    if (json_is_object(rp) && (rc = get_real(rp, "rope_theta", &c->rope_theta, path, err, errlen)) < 0) return rc;
    json_t *scalings[2] = { json_object_get(root, "rope_scaling"), rp };
    for (int i = 0; i < 2; i++) {
        json_t *s = scalings[i];
        if (!s || json_is_null(s)) continue;
        const char *ty = json_string_value(json_object_get(s, "rope_type"));
        if (!ty) ty = json_string_value(json_object_get(s, "type"));
        if (!json_is_object(s) || (ty && strcmp(ty, "default")) || (!ty && i == 0))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: rope_scaling \"%s\" not supported (only default RoPE)",
                             path, ty ? ty : "?");
    }
    if ((rc = get_bool(root, "tie_word_embeddings", &c->tied, path, err, errlen)) < 0) return rc;
    if (!strcmp(mt, "qwen2")) c->qkv_bias = 1;
    else if (strcmp(mt, "mistral") && (rc = get_bool(root, "attention_bias", &c->qkv_bias, path, err, errlen)) < 0)
        return rc;
    c->qk_norm = !strcmp(mt, "qwen3");
    int mlp_bias = 0;
    if ((rc = get_bool(root, "mlp_bias", &mlp_bias, path, err, errlen)) < 0) return rc;
    if (mlp_bias) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: mlp_bias = true not supported", path);
    char act[32] = "silu";
    if ((rc = get_string(root, "hidden_act", act, sizeof act, path, err, errlen)) < 0) return rc;
    if (strcmp(act, "silu"))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: hidden_act \"%s\" not supported (silu only)", path, act);
    return check_sliding_window(c, root, path, err, errlen);
}

static int parse(dl_config *c, json_t *root, const char *path, char *err, size_t errlen) {
    char mt[32] = "";
    int rc = get_string(root, "model_type", mt, sizeof mt, path, err, errlen);
    if (rc < 0) return rc;
    if (!mt[0]) {   /* no model_type: take it from architectures[0] */
        json_t *a = json_object_get(root, "architectures");
        const char *cls = json_is_array(a) ? json_string_value(json_array_get(a, 0)) : NULL;
        for (size_t i = 0; cls && i < N_FAMILIES; i++)
            if (!strcmp(cls, FAMILIES[i].cls)) snprintf(mt, sizeof mt, "%s", FAMILIES[i].type);
        if (!mt[0])
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no model_type (and architectures names none of the "
                             "supported classes; model types: " SUPPORTED ")", path);
    }
    /* mixture-of-experts variants: named, not mistaken for the dense model */
    static const char *const moe_keys[] = { "num_experts", "num_local_experts", "n_routed_experts" };
    const char *moe = strstr(mt, "moe") || !strcmp(mt, "mixtral") ? "model_type" : NULL;
    for (size_t i = 0; !moe && i < sizeof moe_keys / sizeof moe_keys[0]; i++)
        if (truthy(json_object_get(root, moe_keys[i]))) moe = moe_keys[i];
    if (moe)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: model_type \"%s\" (%s): mixture-of-experts models are not "
                         "supported (dense only: " SUPPORTED ")", path, mt, moe);
    size_t k = 0;
    while (k < N_FAMILIES && strcmp(mt, FAMILIES[k].type)) k++;
    if (k == N_FAMILIES)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: model_type \"%s\" not supported (" SUPPORTED ")", path, mt);
    dl_config_default(c);
    snprintf(c->arch, sizeof c->arch, "%s", FAMILIES[k].arch);
    snprintf(c->family, sizeof c->family, "%s", FAMILIES[k].type);
    if (!strcmp(mt, "llada")) rc = parse_llada(c, root, path, err, errlen);
    else rc = parse_hf(c, root, path, err, errlen);
    if (rc < 0) return rc;
    if (!(c->norm_eps > 0) || !(c->rope_theta > 0) || !isfinite(c->norm_eps) || !isfinite(c->rope_theta))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: rms_norm_eps and rope_theta must be positive", path);
    /* Dream predicts token i from hidden i-1 (its generate shifts the logits right by one) */
    if (!strcmp(mt, "Dream")) c->shift_logits = 1;

    if ((rc = get_token_id(root, "bos_token_id", &c->bos_token_id, path, err, errlen)) < 0) return rc;
    if ((rc = get_token_id(root, "eos_token_id", &c->eos_token_id, path, err, errlen)) < 0) return rc;
    if ((rc = get_token_id(root, "pad_token_id", &c->pad_token_id, path, err, errlen)) < 0) return rc;
    if ((rc = get_token_id(root, "mask_token_id", &c->mask_token_id, path, err, errlen)) < 0) return rc;
    if ((rc = get_bool(root, "shift_logits", &c->shift_logits, path, err, errlen)) < 0) return rc;
    if ((rc = get_string(root, "objective", c->objective, sizeof c->objective, path, err, errlen)) < 0) return rc;
    if (strcmp(c->objective, "diffusion") && strcmp(c->objective, "causal"))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: objective \"%s\": expected diffusion or causal", path,
                         c->objective);
    int64_t bd = 0;
    if ((rc = get_int(root, "block_diffusion", 0, &bd, path, err, errlen)) < 0) return rc;
    if (bd < 0 || bd > 1 << 30)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: block_diffusion %lld: expected a block size >= 0", path,
                         (long long)bd);
    c->block_diffusion = (int)bd;
    char rl[16] = "half";
    if ((rc = get_string(root, "rope_layout", rl, sizeof rl, path, err, errlen)) < 0) return rc;
    if (!strcmp(rl, "half")) c->rope_layout = DL_ROPE_HALF;
    else if (!strcmp(rl, "pairs")) c->rope_layout = DL_ROPE_PAIRS;
    else return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: rope_layout \"%s\": expected half or pairs", path, rl);

    /* consistency */
    if (c->n_heads % c->n_kv_heads)
        return dl_seterr(err, errlen, -DL_EXIT_DATA,
                         "%s: num_attention_heads %d not divisible by num_key_value_heads %d", path, c->n_heads,
                         c->n_kv_heads);
    if (c->head_dim % 2)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: head_dim %d must be even (RoPE)", path, c->head_dim);
    int64_t ids[4] = { c->bos_token_id, c->eos_token_id, c->pad_token_id, c->mask_token_id };
    static const char *idn[4] = { "bos_token_id", "eos_token_id", "pad_token_id", "mask_token_id" };
    for (int i = 0; i < 4; i++)
        if (ids[i] >= c->vocab_size)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %s %lld >= vocab_size %d", path, idn[i],
                             (long long)ids[i], c->vocab_size);
    return 0;
}

int dl_config_parse(dl_config *c, const char *text, size_t len, const char *name, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    if (!root) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s:%d: %s", name, je.line, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: not a JSON object", name);
    }
    int rc = parse(c, root, name, err, errlen);
    json_decref(root);
    return rc;
}

int dl_config_load(dl_config *c, const char *path, char *err, size_t errlen) {
    char *text = NULL;
    size_t len = 0;
    int rc = dl_read_file(path, &text, &len, err, errlen);
    if (rc) return rc;
    rc = dl_config_parse(c, text, len, path, err, errlen);
    free(text);
    return rc;
}

/* ---------------------------------------------------------------- save */
/* The shortest %g that reads back as the same float, as a double. */
static json_t *short_real(float f) {
    char buf[32];
    for (int p = 1; p <= 9; p++) {
        snprintf(buf, sizeof buf, "%.*g", p, f);
        if (strtof(buf, NULL) == f) break;
    }
    return json_real(strtod(buf, NULL));
}

static json_t *token_id(int64_t v) { return v < 0 ? json_null() : json_integer(v); }

int dl_config_save(const dl_config *c, const char *path, const char *torch_dtype, char *err, size_t errlen) {
    size_t k = 0;
    while (k < N_CANONICAL && strcmp(c->arch, FAMILIES[k].arch)) k++;
    if (k == N_CANONICAL)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: model_type \"%s\" not supported", path, c->arch);
    if (!strcmp(c->arch, "qwen2") && !c->qkv_bias)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: qwen2 always has q/k/v biases", path);
    if (!strcmp(c->arch, "mistral") && c->qkv_bias)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: mistral has no q/k/v biases (use llama)", path);
    if (c->qk_norm != !strcmp(c->arch, "qwen3"))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: q_norm / k_norm exist in qwen3 only (arch %s)", path, c->arch);
    json_t *o = json_object();
    json_t *arch = json_array();
    json_array_append_new(arch, json_string(FAMILIES[k].cls));
    json_object_set_new(o, "architectures", arch);
    json_object_set_new(o, "model_type", json_string(c->arch));
    json_object_set_new(o, "hidden_size", json_integer(c->dim));
    json_object_set_new(o, "intermediate_size", json_integer(c->hidden_dim));
    json_object_set_new(o, "num_hidden_layers", json_integer(c->n_layers));
    json_object_set_new(o, "num_attention_heads", json_integer(c->n_heads));
    json_object_set_new(o, "num_key_value_heads", json_integer(c->n_kv_heads));
    json_object_set_new(o, "head_dim", json_integer(c->head_dim));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "max_position_embeddings", json_integer(c->max_seq_len));
    json_object_set_new(o, "rms_norm_eps", short_real(c->norm_eps));
    json_object_set_new(o, "rope_theta", short_real(c->rope_theta));
    json_object_set_new(o, "rope_scaling", json_null());
    json_object_set_new(o, "hidden_act", json_string("silu"));
    json_object_set_new(o, "initializer_range", json_real(0.02));
    json_object_set_new(o, "tie_word_embeddings", json_boolean(c->tied));
    if (!strcmp(c->arch, "llama") || !strcmp(c->arch, "qwen3")) {
        json_object_set_new(o, "attention_bias", json_boolean(c->qkv_bias));
        json_object_set_new(o, "mlp_bias", json_false());
    }
    if (!strcmp(c->arch, "qwen2") || !strcmp(c->arch, "qwen3"))
        json_object_set_new(o, "use_sliding_window", json_false());
    if (!strcmp(c->arch, "mistral")) json_object_set_new(o, "sliding_window", json_null());
    json_object_set_new(o, "attention_dropout", json_real(0.0));
    json_object_set_new(o, "bos_token_id", token_id(c->bos_token_id));
    json_object_set_new(o, "eos_token_id", token_id(c->eos_token_id));
    json_object_set_new(o, "pad_token_id", token_id(c->pad_token_id));
    json_object_set_new(o, "torch_dtype", json_string(torch_dtype ? torch_dtype : "float32"));
    json_object_set_new(o, "use_cache", json_true());
    /* dllm fields */
    json_object_set_new(o, "mask_token_id", token_id(c->mask_token_id));
    json_object_set_new(o, "shift_logits", json_boolean(c->shift_logits));
    json_object_set_new(o, "objective", json_string(c->objective));
    if (c->block_diffusion > 0) json_object_set_new(o, "block_diffusion", json_integer(c->block_diffusion));
    json_object_set_new(o, "rope_layout", json_string(c->rope_layout == DL_ROPE_PAIRS ? "pairs" : "half"));

    int rc = dl_json_write(path, o, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9), err, errlen);
    json_decref(o);
    return rc;
}

/* ---------------------------------------------------------------- compare */
int dl_config_same_shapes(const dl_config *a, const dl_config *b, char *err, size_t errlen) {
#define SAME(f, name) \
    if (a->f != b->f) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s differs: %lld vs %lld", name, \
                                       (long long)a->f, (long long)b->f)
    SAME(dim, "hidden_size");
    SAME(n_layers, "num_hidden_layers");
    SAME(n_heads, "num_attention_heads");
    SAME(n_kv_heads, "num_key_value_heads");
    SAME(head_dim, "head_dim");
    SAME(hidden_dim, "intermediate_size");
    SAME(vocab_size, "vocab_size");
    SAME(tied, "tie_word_embeddings");
    SAME(qkv_bias, "attention_bias");
    SAME(qk_norm, "q_norm / k_norm");
#undef SAME
    return 0;
}
