/* test_family.c — model families loaded from their own directories
 * (dl_config.c families, dl_family.c names, dl_model.c q_norm / k_norm)
 * against the outputs of each family's OWN modeling code
 * (tests/ref/gen_family_fixtures.py -> tests/data/families/<name>/).
 *
 *  - llada, dream, a2d-llama, a2d-qwen2, a2d-qwen3 (bidirectional) and qwen3
 *    (causal): dl_ckpt_load on the family's directory; the log-softmax of our
 *    fp32 logits at every position equals the family model's (float64)
 *    within 1e-5; the config is read as the family means (canonical arch,
 *    shift_logits for Dream, mask id, tied / untied, head_dim != D/H).
 *  - the --init path (dl_convert_load -> dl_ckpt_save -> dl_ckpt_load):
 *    the canonical checkpoint gives the same log-probs, keeps shift_logits,
 *    the mask id (from the tokenizer for a2d-*) and the chat template.
 *  - qwen3 backward: gradients of the mean causal CE over all positions
 *    equal PyTorch's for q_norm, k_norm, q_proj, k_proj, input_layernorm;
 *    the KV-cached causal forward gives the reference's last-token log-probs.
 *  - Dream's commit schedule: sample/diffusion.c's smp_dream_transfer over
 *    a whole run equals the counts of Dream's _sample (float32 linspace
 *    grid, int(m (1 - s/t))) in dream/dream_schedule.txt, up to 2048 steps.
 *  - bad input: unknown model_type names the supported ones; every
 *    unimplemented LLaDA option, MoE, and short sliding windows are refused
 *    by name.
 * Needs neither network nor PyTorch (committed fixtures).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <sys/stat.h>
#include <jansson.h>
#include "dl_test.h"
#include "dl_ckpt.h"
#include "dl_io.h"
#include "sample.h"   /* smp_dream_transfer (sample/diffusion.c; TEST_PROGS_test_family) */

#define FIX "tests/data/families/"

static dl_dev *dev;
static char tmp[] = "/tmp/dllm-family-XXXXXX";

typedef struct {
    int B, T, V, causal;
    uint32_t *ids;      /* (B*T) */
    double *lp;         /* (B*T*V) */
    json_t *root;
} ref_t;

static int ref_load(ref_t *r, const char *name) {
    char p[512];
    snprintf(p, sizeof p, FIX "%s/reference.json", name);
    json_error_t je;
    memset(r, 0, sizeof *r);
    r->root = json_load_file(p, 0, &je);
    if (!r->root) { printf("  # %s: %s\n", p, je.text); return -1; }
    r->B = (int)json_integer_value(json_object_get(r->root, "B"));
    r->T = (int)json_integer_value(json_object_get(r->root, "T"));
    r->V = (int)json_integer_value(json_object_get(r->root, "V"));
    r->causal = (int)json_integer_value(json_object_get(r->root, "causal"));
    json_t *ids = json_object_get(r->root, "ids"), *lp = json_object_get(r->root, "logprobs");
    size_t N = (size_t)r->B * r->T;
    r->ids = malloc(N * sizeof *r->ids);
    r->lp = malloc(N * r->V * sizeof *r->lp);
    for (int b = 0; b < r->B; b++)
        for (int t = 0; t < r->T; t++)
            r->ids[b * r->T + t] = (uint32_t)json_integer_value(json_array_get(json_array_get(ids, b), t));
    for (size_t i = 0; i < N * r->V; i++) r->lp[i] = json_number_value(json_array_get(lp, i));
    return json_array_size(lp) == N * r->V ? 0 : -1;
}

static void ref_free(ref_t *r) {
    free(r->ids);
    free(r->lp);
    json_decref(r->root);
}

/* Forward at every position; max |our log-softmax - ref|.  exclude >= 0:
 * both distributions renormalised without that id (a mask token whose rows
 * --init appended: its logit is new, the others' must not change). */
static double max_lp_diff(dl_model *m, const ref_t *r, int exclude) {
    char err[512];
    int N = r->B * r->T, V = m->cfg.vocab_size;
    if (V != r->V) { printf("  # vocab %d vs reference %d\n", V, r->V); return 1e9; }
    if (dl_model_reserve(m, r->B, r->T, N, DL_ACTS_INFER, err, sizeof err)) { printf("  # %s\n", err); return 1e9; }
    uint32_t *d_ids = dl_dev_alloc(m->dev, N * sizeof *d_ids);
    int32_t *d_sel = dl_dev_alloc(m->dev, N * sizeof *d_sel), *sel = malloc(N * sizeof *sel);
    float *logits = malloc((size_t)N * V * sizeof *logits);
    for (int i = 0; i < N; i++) sel[i] = i;
    dl_dev_h2d(m->dev, d_ids, r->ids, N * sizeof *d_ids);
    dl_dev_h2d(m->dev, d_sel, sel, N * sizeof *sel);
    double worst = 1e9;
    if (!dl_model_forward(m, d_ids, NULL, r->B, r->T, d_sel, NULL, N, NULL, r->causal ? DL_ATTN_CAUSAL : DL_ATTN_BIDIR,
                          0, err, sizeof err)) {
        dl_dev_d2h(m->dev, logits, dl_model_logits(m), (size_t)N * V * sizeof *logits);
        worst = 0;
        for (int i = 0; i < N; i++) {
            const float *l = logits + (size_t)i * V;
            const double *rl = r->lp + (size_t)i * V;
            double mx = -INFINITY, s = 0, rs = 0;
            for (int v = 0; v < V; v++) mx = v != exclude && l[v] > mx ? l[v] : mx;
            for (int v = 0; v < V; v++) s += v != exclude ? exp(l[v] - mx) : 0;
            for (int v = 0; v < V; v++) rs += v != exclude ? exp(rl[v]) : 0;
            for (int v = 0; v < V; v++) {
                if (v == exclude) continue;
                double d = fabs(l[v] - mx - log(s) - (rl[v] - log(rs)));
                worst = d > worst ? d : worst;
            }
        }
    } else printf("  # %s\n", err);
    dl_dev_free(m->dev, d_ids);
    dl_dev_free(m->dev, d_sel);
    free(sel);
    free(logits);
    return worst;
}

static const struct {
    const char *name, *arch;
    int tied, shift, qk_norm, head_dim, vocab;
    int64_t mask;   /* in config.json (-1: none; a2d names it in the tokenizer only) */
} FAM[] = {
    { "llada", "llama", 0, 0, 0, 4, 24, 21 },
    { "dream", "qwen2", 0, 1, 0, 4, 24, 21 },
    { "a2d-llama", "llama", 0, 0, 0, 4, 24, -1 },
    { "a2d-qwen2", "qwen2", 0, 0, 0, 4, 24, -1 },
    { "a2d-qwen3", "qwen3", 1, 0, 1, 8, 24, -1 },
    { "qwen3", "qwen3", 0, 0, 1, 8, 24, -1 },
};
#define N_FAM (int)(sizeof FAM / sizeof FAM[0])

static void test_forward(void) {
    char err[512], dir[512];
    for (int f = 0; f < N_FAM; f++) {
        ref_t r;
        dl_model m;
        snprintf(dir, sizeof dir, FIX "%s", FAM[f].name);
        if (ref_load(&r, FAM[f].name)) { DL_CHECK(0, "%s: reference.json", FAM[f].name); continue; }
        int rc = dl_ckpt_load(&m, dir, dev, err, sizeof err);
        DL_CHECK(rc == 0, "%s: loads from its own directory%s%s", FAM[f].name, rc ? ": " : "", rc ? err : "");
        if (rc) { ref_free(&r); continue; }
        const dl_config *c = &m.cfg;
        DL_CHECK(!strcmp(c->arch, FAM[f].arch) && c->tied == FAM[f].tied && c->shift_logits == FAM[f].shift &&
                 c->qk_norm == FAM[f].qk_norm && c->head_dim == FAM[f].head_dim && c->vocab_size == FAM[f].vocab &&
                 c->mask_token_id == FAM[f].mask && c->n_layers == 2 && c->dim == 16 && c->n_heads == 4 &&
                 c->n_kv_heads == 2 && c->hidden_dim == 24,
                 "%s: config (arch %s, tied %d, shift %d, qk_norm %d, head_dim %d, vocab %d, mask %lld)", FAM[f].name,
                 c->arch, c->tied, c->shift_logits, c->qk_norm, c->head_dim, c->vocab_size, (long long)c->mask_token_id);
        double d = max_lp_diff(&m, &r, -1);
        DL_CHECK(d <= 1e-5, "%s: log-probs equal the family's own model (%s) within 1e-5: max |d| %.3g", FAM[f].name,
                 r.causal ? "causal" : "bidirectional", d);
        dl_model_free(&m);
        ref_free(&r);
    }
}

/* --init: convert (family dir) -> save canonical -> load: same log-probs, conventions kept. */
static void test_init(void) {
    char err[512], dir[512], out[600], tj[600], scratch[600], p[700];
    for (int f = 0; f < N_FAM; f++) {
        ref_t r;
        dl_model m, m2;
        snprintf(dir, sizeof dir, FIX "%s", FAM[f].name);
        snprintf(scratch, sizeof scratch, "%s/scratch-%d", tmp, f);
        snprintf(out, sizeof out, "%s/out-%d", tmp, f);
        mkdir(scratch, 0755);
        if (ref_load(&r, FAM[f].name)) continue;
        int rc = dl_convert_load(&m, dir, NULL, scratch, tj, sizeof tj, dev, err, sizeof err);
        if (!rc) {
            rc = dl_ckpt_save(&m, out, tj, NULL, 0, err, sizeof err);
            dl_model_free(&m);
        }
        if (!rc) rc = dl_ckpt_load(&m2, out, dev, err, sizeof err);
        DL_CHECK(rc == 0, "%s: --init writes a canonical checkpoint that loads%s%s", FAM[f].name, rc ? ": " : "",
                 rc ? err : "");
        if (rc) { ref_free(&r); continue; }
        const dl_config *c = &m2.cfg;
        DL_CHECK(!strcmp(c->arch, FAM[f].arch) && !strcmp(c->family, FAM[f].arch) && c->shift_logits == FAM[f].shift &&
                 c->qk_norm == FAM[f].qk_norm && c->mask_token_id == (FAM[f].mask >= 0 ? FAM[f].mask : 21) &&
                 !strcmp(c->objective, "diffusion"),
                 "%s: canonical config keeps the conventions (arch %s, shift %d, mask %lld)", FAM[f].name, c->arch,
                 c->shift_logits, (long long)c->mask_token_id);
        /* qwen3 (AR) has no mask token: --init appends one (id 21, mean rows) */
        int appended = !strcmp(FAM[f].name, "qwen3") ? 21 : -1;
        double d = max_lp_diff(&m2, &r, appended);
        DL_CHECK(d <= 1e-5, "%s: the canonical checkpoint gives the same log-probs%s: max |d| %.3g", FAM[f].name,
                 appended >= 0 ? " (over the ids but the appended mask)" : "", d);
        snprintf(p, sizeof p, "%s/tokenizer_config.json", out);
        json_t *tc = json_load_file(p, 0, NULL);
        DL_CHECK(tc && json_is_string(json_object_get(tc, "chat_template")), "%s: chat template kept (tokenizer_config.json)",
                 FAM[f].name);
        json_decref(tc);
        dl_model_free(&m2);
        ref_free(&r);
    }
}

/* qwen3: gradients of the mean causal CE (targets = the ids) against PyTorch's. */
static void test_qwen3_backward(void) {
    char err[512];
    ref_t r;
    dl_model m;
    if (ref_load(&r, "qwen3") || dl_ckpt_load(&m, FIX "qwen3", dev, err, sizeof err)) {
        DL_CHECK(0, "qwen3 backward: load");
        return;
    }
    int N = r.B * r.T, rc = dl_model_alloc_grads(&m, err, sizeof err);
    if (!rc) rc = dl_model_reserve(&m, r.B, r.T, N, DL_ACTS_TRAIN, err, sizeof err);
    uint32_t *d_ids = dl_dev_alloc(m.dev, N * sizeof *d_ids);
    int32_t *d_sel = dl_dev_alloc(m.dev, N * sizeof *d_sel), *sel = malloc(N * sizeof *sel);
    float *ce = dl_dev_alloc(m.dev, N * sizeof *ce), *dce = dl_dev_alloc(m.dev, N * sizeof *dce);
    float *h = malloc(N * sizeof *h);
    for (int i = 0; i < N; i++) { sel[i] = i; h[i] = 1.0f / N; }
    dl_dev_h2d(m.dev, d_ids, r.ids, N * sizeof *d_ids);
    dl_dev_h2d(m.dev, d_sel, sel, N * sizeof *sel);
    dl_dev_h2d(m.dev, dce, h, N * sizeof *h);
    dl_model_zero_grads(&m);
    if (!rc) rc = dl_model_forward(&m, d_ids, NULL, r.B, r.T, d_sel, d_ids, N, ce, DL_ATTN_CAUSAL, 0, err, sizeof err);
    if (!rc) rc = dl_model_backward(&m, dce, err, sizeof err);
    DL_CHECK(rc == 0, "qwen3: forward + backward%s%s", rc ? ": " : "", rc ? err : "");
    dl_dev_d2h(m.dev, h, ce, N * sizeof *h);
    double loss = 0;
    for (int i = 0; i < N; i++) loss += h[i] / N;
    double want = json_number_value(json_object_get(r.root, "loss"));
    DL_CHECK(fabs(loss - want) <= 1e-5, "qwen3: loss %.8f = PyTorch's %.8f", loss, want);
    json_t *grads = json_object_get(r.root, "grads");
    const char *name;
    json_t *g;
    json_object_foreach(grads, name, g) {
        const dl_tensor *t = dl_model_tensor(&m, name);
        size_t n = json_array_size(g);
        if (!t || n != (size_t)t->shape[0] * (t->ndim == 2 ? t->shape[1] : 1)) {
            DL_CHECK(0, "qwen3: gradient %s: tensor", name);
            continue;
        }
        float *got = malloc(n * sizeof *got), *want_g = malloc(n * sizeof *want_g);
        dl_dev_d2h(m.dev, got, m.grads + t->offset, n * sizeof *got);
        for (size_t i = 0; i < n; i++) want_g[i] = (float)json_number_value(json_array_get(g, i));
        char label[160];
        snprintf(label, sizeof label, "qwen3: gradient %s = PyTorch's", name);
        dl_tcheck(label, got, want_g, n, 1e-5f, 1e-4f, 1e-9);
        free(got);
        free(want_g);
    }
    dl_dev_free(m.dev, d_ids); dl_dev_free(m.dev, d_sel); dl_dev_free(m.dev, ce); dl_dev_free(m.dev, dce);
    free(sel); free(h);
    dl_model_free(&m);
    ref_free(&r);
}

/* qwen3 through the KV cache (causal sampling): prompt in two pieces, the
 * last token's log-probs equal the reference's (q_norm / k_norm in the
 * cached path too). */
static void test_qwen3_kv(void) {
    char err[512];
    ref_t r;
    dl_model m;
    if (ref_load(&r, "qwen3") || dl_ckpt_load(&m, FIX "qwen3", dev, err, sizeof err)) {
        DL_CHECK(0, "qwen3 kv: load");
        return;
    }
    int T = r.T, V = r.V, n1 = 6;
    dl_kv *kv = NULL;
    uint32_t *d_ids = dl_dev_alloc(m.dev, T * sizeof *d_ids);
    float *d_logits = dl_dev_alloc(m.dev, V * sizeof(float)), *l = malloc(V * sizeof *l);
    dl_dev_h2d(m.dev, d_ids, r.ids, T * sizeof *d_ids);   /* row 0 */
    int32_t pos0 = 0;
    int rc = dl_model_kv_init(&kv, &m, 1, T, T, err, sizeof err);
    if (!rc) rc = dl_model_forward_kv(&m, kv, d_ids, 1, n1, &pos0, NULL, d_logits, err, sizeof err);
    pos0 = n1;
    if (!rc) rc = dl_model_forward_kv(&m, kv, d_ids + n1, 1, T - n1, &pos0, NULL, d_logits, err, sizeof err);
    double worst = 1e9;
    if (!rc) {
        dl_dev_d2h(m.dev, l, d_logits, V * sizeof *l);
        double mx = l[0], s = 0;
        for (int v = 1; v < V; v++) mx = l[v] > mx ? l[v] : mx;
        for (int v = 0; v < V; v++) s += exp(l[v] - mx);
        worst = 0;
        for (int v = 0; v < V; v++) {
            double d = fabs(l[v] - mx - log(s) - r.lp[(size_t)(T - 1) * V + v]);
            worst = d > worst ? d : worst;
        }
    }
    DL_CHECK(rc == 0 && worst <= 1e-5, "qwen3: KV-cached causal forward = Qwen3ForCausalLM within 1e-5: max |d| %.3g%s%s",
             worst, rc ? ": " : "", rc ? err : "");
    dl_model_kv_free(kv);
    dl_dev_free(m.dev, d_ids);
    dl_dev_free(m.dev, d_logits);
    free(l);
    dl_model_free(&m);
    ref_free(&r);
}

/* A config.json of text: loading it fails with a data error naming `want`. */
static void expect_refused(const char *label, const char *json, const char *want) {
    char p[600], err[512];
    snprintf(p, sizeof p, "%s/config.json", tmp);
    FILE *f = fopen(p, "w");
    fputs(json, f);
    fclose(f);
    dl_config c;
    int rc = dl_config_load(&c, p, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, want), "refused: %s (\"%s\" in: %s)", label, want, rc ? err : "loaded");
}

#define LLADA_OK "\"model_type\":\"llada\",\"d_model\":16,\"n_layers\":2,\"n_heads\":4,\"vocab_size\":24," \
                 "\"block_type\":\"llama\",\"layer_norm_type\":\"rms\",\"rope\":true,\"activation_type\":\"silu\""
#define HF_OK "\"hidden_size\":16,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"intermediate_size\":24," \
              "\"vocab_size\":24,\"max_position_embeddings\":4096"

static void test_bad(void) {
    char p[600], err[512];
    dl_config c;
    snprintf(p, sizeof p, "%s/config.json", tmp);
    FILE *f = fopen(p, "w");
    fputs("{" LLADA_OK "}", f);
    fclose(f);
    int rc = dl_config_load(&c, p, err, sizeof err);
    DL_CHECK(rc == 0 && c.tied == 1 && c.hidden_dim == 64 && c.n_kv_heads == 4 && c.max_seq_len == 1024,
             "llada: ModelConfig defaults (weight_tying true, mlp_ratio 4, n_kv_heads = n_heads, 1024 positions)%s%s",
             rc ? ": " : "", rc ? err : "");
    /* an integral real beyond int64 was cast (undefined; fuzz_config,
     * seed tests/fuzz/corpus/config/heads-1e206.json) */
    expect_refused("num_attention_heads 1e206", "{\"model_type\":\"llama\"," HF_OK ",\"num_attention_heads\":1e206}",
                   "num_attention_heads = 1e+206: out of range");
    expect_refused("unknown model_type lists the supported ones", "{\"model_type\":\"gpt2\"," HF_OK "}",
                   "llama, qwen2, mistral, qwen3, llada, Dream, a2d-llama, a2d-qwen2, a2d-qwen3");
    static const char *const llada_bad[][2] = {
        { "\"block_type\":\"sequential\"", "block_type" }, { "\"layer_norm_type\":\"default\"", "layer_norm_type" },
        { "\"rope\":false", "rope" }, { "\"alibi\":true", "alibi" }, { "\"activation_type\":\"swiglu\"", "activation_type" },
        { "\"attention_layer_norm\":true", "attention_layer_norm" }, { "\"input_emb_norm\":true", "input_emb_norm" },
        { "\"scale_logits\":true", "scale_logits" }, { "\"include_bias\":true", "include_bias" },
        { "\"clip_qkv\":8.0", "clip_qkv" }, { "\"bias_for_layer_norm\":true", "bias_for_layer_norm" },
        { "\"block_group_size\":2", "block_group_size" }, { "\"layer_norm_with_affine\":false", "layer_norm_with_affine" },
        { "\"residual_dropout\":0.1", "residual_dropout" }, { "\"embedding_size\":16", "embedding_size" },
    };
    for (size_t i = 0; i < sizeof llada_bad / sizeof llada_bad[0]; i++) {
        char j[1024];
        /* a later duplicate key wins in jansson: the bad value overrides the good one */
        snprintf(j, sizeof j, "{" LLADA_OK ",%s}", llada_bad[i][0]);
        char label[128];
        snprintf(label, sizeof label, "llada %s", llada_bad[i][0]);
        expect_refused(label, j, llada_bad[i][1]);
    }
    expect_refused("llada without block_type (ModelConfig default sequential)",
                   "{\"model_type\":\"llada\",\"d_model\":16,\"n_layers\":2,\"n_heads\":4,\"vocab_size\":24}", "block_type");
    expect_refused("qwen3_moe", "{\"model_type\":\"qwen3_moe\"," HF_OK ",\"num_experts\":8}", "mixture-of-experts");
    expect_refused("num_experts on a dense type", "{\"model_type\":\"qwen3\"," HF_OK ",\"num_experts\":8}", "num_experts");
    expect_refused("mixtral", "{\"model_type\":\"mixtral\"," HF_OK "}", "mixture-of-experts");
    expect_refused("mistral sliding_window < max_position_embeddings",
                   "{\"model_type\":\"mistral\"," HF_OK ",\"sliding_window\":1024}", "sliding_window 1024");
    expect_refused("qwen2 use_sliding_window", "{\"model_type\":\"qwen2\"," HF_OK ",\"use_sliding_window\":true,"
                   "\"sliding_window\":512,\"max_window_layers\":0}", "sliding_window 512");
    expect_refused("qwen3 sliding layer_types", "{\"model_type\":\"qwen3\"," HF_OK ",\"use_sliding_window\":true,"
                   "\"sliding_window\":512,\"layer_types\":[\"full_attention\",\"sliding_attention\"]}", "sliding_window");
    /* a window no shorter than the positions, or one switched off, is no restriction */
    static const char *const ok[] = {
        "{\"model_type\":\"mistral\"," HF_OK ",\"sliding_window\":4096}",
        "{\"model_type\":\"mistral\"," HF_OK ",\"sliding_window\":null}",
        "{\"model_type\":\"qwen2\"," HF_OK ",\"use_sliding_window\":false,\"sliding_window\":512}",
        "{\"model_type\":\"qwen2\"," HF_OK ",\"use_sliding_window\":true,\"sliding_window\":512,\"max_window_layers\":2}",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        f = fopen(p, "w");
        fputs(ok[i], f);
        fclose(f);
        rc = dl_config_load(&c, p, err, sizeof err);
        DL_CHECK(rc == 0, "loads: %s%s%s", ok[i], rc ? ": " : "", rc ? err : "");
    }
}

/* Each line "m steps eps : k_0 ... k_{steps-1}": replay the run (m -= k_i). */
static void test_dream_schedule(void) {
    FILE *f = fopen(FIX "dream/dream_schedule.txt", "r");
    if (!f) { DL_CHECK(0, "dream/dream_schedule.txt"); return; }
    char *line = NULL;
    size_t cap = 0;
    int cases = 0, ok = 1;
    while (getline(&line, &cap, f) > 0) {
        if (line[0] == '#') continue;
        int m, S, off;
        double eps;
        if (sscanf(line, "%d %d %lf : %n", &m, &S, &eps, &off) != 3) { ok = 0; break; }
        const char *p = line + off;
        int m0 = m, i = 0;
        for (; i < S; i++) {
            char *end;
            long want = strtol(p, &end, 10);
            if (end == p) break;
            p = end;
            int got = smp_dream_transfer(m, i, S, eps);
            if (got != want) {
                printf("  # m %d steps %d eps %g: step %d commits %d, Dream %ld\n", m0, S, eps, i, got, want);
                ok = 0;
                break;
            }
            m -= got;
        }
        ok &= i == S && m == 0;
        cases++;
    }
    free(line);
    fclose(f);
    DL_CHECK(ok && cases >= 8, "dream: commit counts = Dream's _sample at every step (%d runs)", cases);
}

int main(void) {
    char err[512];
    if (!mkdtemp(tmp)) { printf("not ok - mkdtemp\n"); return 1; }
    if (dl_dev_open(&dev, DL_DEV_CPU, 0, err, sizeof err)) { printf("not ok - device: %s\n", err); return 1; }
    test_forward();
    test_init();
    test_qwen3_backward();
    test_qwen3_kv();
    test_bad();
    test_dream_schedule();
    dl_dev_close(dev);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) printf("  # could not remove %s\n", tmp);
    return dl_test_end();
}
