/* test_ckpt.c — checkpoint directories (dl_ckpt.c) and HF conversion
 * (dl_convert.c) on the tiny fixtures of tests/ref/gen_ckpt_fixture.py.
 *
 *  - save -> load: F32 exact, BF16 = the bf16 rounding of every weight;
 *    optimizer moments + trainer state exact (uint64 seed above 2^63, doubles
 *    bit for bit, args text).
 *  - a checkpoint whose config and tensors disagree (missing tensor, wrong
 *    shape, extra tensor, config edited) is refused, naming file and tensor.
 *  - atomic save: a failing save leaves the previous checkpoint intact and no
 *    temporary directory; a directory holding other files is never replaced.
 *  - conversion of llama (F16, tied), qwen2 (BF16, untied, biases, padded
 *    vocab, rotary cache) and mistral (F32, sharded, [MASK] present): every
 *    weight equals the generator's formula, the appended mask rows equal the
 *    mean of the real rows, tokenizer.json / tokenizer_config.json carry the
 *    mask token; bad sources refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <jansson.h>
#include "dl_test.h"
#include "dl_ckpt.h"
#include "dl_io.h"
#include "dl_tok.h"

#define FIX "tests/data/ckpt/"

static char tmp[] = "/tmp/dllm-ckpt-XXXXXX";
static dl_dev *dev;

static void pth(char *p, const char *name) { snprintf(p, 512, "%s/%s", tmp, name); }
static int sh(const char *fmt, const char *a, const char *b) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    return system(cmd);
}
static int exists(const char *p) { return access(p, F_OK) == 0; }

static void tiny_config(dl_config *c, int tied, int bias) {
    dl_config_default(c);
    c->dim = 16; c->n_layers = 2; c->n_heads = 4; c->n_kv_heads = 2; c->head_dim = 4; c->hidden_dim = 24;
    c->vocab_size = 40; c->max_seq_len = 32; c->tied = tied; c->qkv_bias = bias; c->mask_token_id = 39;
    c->bos_token_id = 1; c->eos_token_id = 2;
}

static float *params_host(const dl_model *m, const float *block) {
    float *h = malloc(m->n_params * sizeof(float));
    dl_dev_d2h(m->dev, h, block, m->n_params * sizeof(float));
    return h;
}

/* 0 when every tensor of a equals b's (through f, e.g. bf16 rounding) */
static int same_tensors(const dl_model *a, const float *ba, const dl_model *b, const float *bb, int bf16) {
    float *x = params_host(a, ba), *y = params_host(b, bb);
    int bad = a->n_tensors != b->n_tensors;
    for (int i = 0; i < a->n_tensors && !bad; i++) {
        const dl_tensor *ta = &a->tensors[i], *tb = dl_model_tensor(b, ta->name);
        if (!tb) { bad = 1; break; }
        size_t n = (size_t)ta->shape[0] * (ta->ndim == 2 ? (size_t)ta->shape[1] : 1);
        for (size_t k = 0; k < n && !bad; k++) {
            float want = bf16 ? dl_bf16_to_f32(dl_f32_to_bf16(x[ta->offset + k])) : x[ta->offset + k];
            if (memcmp(&want, &y[tb->offset + k], 4)) {
                printf("  # %s[%zu]: %.9g vs %.9g\n", ta->name, k, want, y[tb->offset + k]);
                bad = 1;
            }
        }
    }
    free(x);
    free(y);
    return bad;
}

/* ---------------------------------------------------------------- round trips */
static void test_roundtrip(void) {
    char err[512], d[512], p[600];
    dl_config c;
    tiny_config(&c, 0, 1);
    dl_model m, r;
    int rc = dl_model_init(&m, &c, dev, err, sizeof err);
    DL_CHECK(rc == 0, "tiny model init (%s)", rc ? err : "");
    if (rc) return;
    dl_model_init_weights(&m, 7);
    pth(d, "rt");
    rc = dl_ckpt_save(&m, d, NULL, NULL, 0, err, sizeof err);
    DL_CHECK(rc == 0, "save f32 (%s)", rc ? err : "");
    rc = rc ? rc : dl_ckpt_load(&r, d, dev, err, sizeof err);
    DL_CHECK(rc == 0, "load f32 (%s)", rc ? err : "");
    if (!rc) {
        DL_CHECK(!same_tensors(&m, m.params, &r, r.params, 0) && !dl_config_same_shapes(&m.cfg, &r.cfg, err, sizeof err) &&
                 r.cfg.mask_token_id == 39 && r.cfg.qkv_bias && !r.cfg.tied && !strcmp(r.cfg.objective, "diffusion"),
                 "f32 round trip: every weight bit-identical, config kept");
        dl_model_free(&r);
    }
    /* a single .safetensors path with config.json beside it loads too */
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    rc = dl_ckpt_load(&r, p, dev, err, sizeof err);
    DL_CHECK(rc == 0, "load by model.safetensors path (%s)", rc ? err : "");
    if (!rc) dl_model_free(&r);

    pth(d, "rt16");
    rc = dl_ckpt_save(&m, d, NULL, NULL, DL_ST_BF16, err, sizeof err);
    rc = rc ? rc : dl_ckpt_load(&r, d, dev, err, sizeof err);
    DL_CHECK(rc == 0, "save + load bf16 (%s)", rc ? err : "");
    if (!rc) {
        DL_CHECK(!same_tensors(&m, m.params, &r, r.params, 1), "bf16 round trip: every weight = its bf16 rounding");
        dl_model_free(&r);
    }
    snprintf(p, sizeof p, "%s/config.json", d);
    json_t *j = json_load_file(p, 0, NULL);
    DL_CHECK(j && !strcmp(json_string_value(json_object_get(j, "torch_dtype")) ?: "", "bfloat16"),
             "bf16 checkpoint: config torch_dtype bfloat16");
    json_decref(j);
    snprintf(p, sizeof p, "%s/model.safetensors", d);
    dl_st_file f;
    if (!dl_st_open(&f, p, err, sizeof err)) {
        DL_CHECK(f.n == m.n_tensors && f.t[0].dtype == DL_ST_BF16 && f.metadata_json &&
                 strstr(f.metadata_json, "\"pt\""), "model.safetensors: BF16, HF names, format pt");
        dl_st_close(&f);
    }

    /* optimizer + trainer state */
    rc = dl_model_alloc_optimizer(&m, err, sizeof err);
    float *h = malloc(m.n_params * sizeof(float));
    for (size_t i = 0; i < m.n_params; i++) h[i] = (float)i * 1e-3f - 0.5f;
    dl_dev_h2d(dev, m.adam_m, h, m.n_params * sizeof(float));
    for (size_t i = 0; i < m.n_params; i++) h[i] = (float)(i % 97) * 3.3e-7f;
    dl_dev_h2d(dev, m.adam_v, h, m.n_params * sizeof(float));
    free(h);
    dl_train_state st = { 0 }, st2;
    st.step = 123; st.seed = 18446744073709551000ull; st.data_epoch = 2; st.data_record = 4567;
    st.tokens_seen = 1234567.0 / 3.0; st.lr_last = 3e-4 * 0.123456789;
    snprintf(st.args_json, sizeof st.args_json, "{\"lr\":0.00029999999999999997,\"batch\":8,\"loss_norm\":\"masked\"}");
    pth(d, "rs");
    rc = dl_ckpt_save(&m, d, NULL, &st, 0, err, sizeof err);
    DL_CHECK(rc == 0, "save with trainer state (%s)", rc ? err : "");
    rc = rc ? rc : dl_ckpt_load(&r, d, dev, err, sizeof err);
    rc = rc ? rc : dl_ckpt_load_train_state(&r, &st2, d, err, sizeof err);
    DL_CHECK(rc == 0, "load with trainer state (%s)", rc ? err : "");
    if (!rc) {
        DL_CHECK(!same_tensors(&m, m.adam_m, &r, r.adam_m, 0) && !same_tensors(&m, m.adam_v, &r, r.adam_v, 0),
                 "AdamW m and v bit-identical after reload");
        DL_CHECK(st2.step == 123 && st2.seed == st.seed && st2.data_epoch == 2 && st2.data_record == 4567 &&
                 !memcmp(&st2.tokens_seen, &st.tokens_seen, 8) && !memcmp(&st2.lr_last, &st.lr_last, 8) &&
                 !strcmp(st2.args_json, st.args_json),
                 "trainer state exact (seed > 2^63, doubles bit for bit, args %s)", st2.args_json);
        dl_model_free(&r);
    }
    /* resume from a checkpoint without trainer state */
    pth(d, "rt");
    rc = dl_ckpt_load(&r, d, dev, err, sizeof err);
    int rs = rc ? 0 : dl_ckpt_load_train_state(&r, &st2, d, err, sizeof err);
    DL_CHECK(rc == 0 && rs == -DL_EXIT_IO && strstr(err, "trainer_state.json"), "no trainer state: I/O error (%s)", err);
    if (!rc) dl_model_free(&r);
    /* save with trainer state but no optimizer */
    dl_model q;
    if (!dl_model_init(&q, &c, dev, err, sizeof err)) {
        pth(d, "noopt");
        rc = dl_ckpt_save(&q, d, NULL, &st, 0, err, sizeof err);
        DL_CHECK(rc != 0 && !exists(d), "trainer state without optimizer moments refused, nothing written (%s)", err);
        dl_model_free(&q);
    }
    dl_model_free(&m);
}

/* ---------------------------------------------------------------- disagreements */
/* Copy src safetensors to dst dropping `drop`, reshaping `reshape` to [n], adding `extra`. */
static int rewrite(const char *src, const char *dst, const char *drop, const char *reshape, const char *extra) {
    char err[512];
    dl_st_file f;
    dl_st_writer *w;
    if (dl_st_open(&f, src, err, sizeof err) || dl_st_writer_open(&w, dst, err, sizeof err)) { printf("  # %s\n", err); return -1; }
    int rc = 0;
    for (int i = 0; i < f.n && !rc; i++) {
        dl_st_tensor *t = &f.t[i];
        if (drop && !strcmp(t->name, drop)) continue;
        int64_t n = dl_st_numel(t), flat[1] = { n };
        float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
        rc = dl_st_read_f32(&f, t, x, (size_t)n, err, sizeof err);
        int re = reshape && !strcmp(t->name, reshape);
        if (!rc) rc = dl_st_writer_add(w, t->name, DL_ST_F32, re ? 1 : t->ndim, re ? flat : t->shape, x, err, sizeof err);
        if (!rc && extra && i == 0) rc = dl_st_writer_add(w, extra, DL_ST_F32, 1, flat, x, err, sizeof err);
        free(x);
    }
    dl_st_close(&f);
    if (rc) { dl_st_writer_abort(w); return rc; }
    return dl_st_writer_close(w, err, sizeof err);
}

static void expect_load_fails(const char *label, const char *dir, const char *n1, const char *n2) {
    char err[512] = "";
    dl_model m;
    int rc = dl_ckpt_load(&m, dir, dev, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && (!n1 || strstr(err, n1)) && (!n2 || strstr(err, n2)), "refused: %s (%s)", label, err);
    if (!rc) dl_model_free(&m);
}

static void test_disagree(void) {
    char err[512], good[512], d[512], p[600], q[600];
    dl_config c;
    tiny_config(&c, 1, 0);
    dl_model m;
    if (dl_model_init(&m, &c, dev, err, sizeof err)) { DL_CHECK(0, "%s", err); return; }
    dl_model_init_weights(&m, 3);
    pth(good, "good");
    int rc = dl_ckpt_save(&m, good, NULL, NULL, 0, err, sizeof err);
    DL_CHECK(rc == 0, "tied model saved (%s)", rc ? err : "");
    snprintf(p, sizeof p, "%s/model.safetensors", good);
    dl_st_file f;
    if (!dl_st_open(&f, p, err, sizeof err)) {
        DL_CHECK(!dl_st_find(&f, "lm_head.weight"), "tied checkpoint has no lm_head.weight");
        dl_st_close(&f);
    }
    struct { const char *label, *drop, *reshape, *extra, *n1, *n2; } cases[] = {
        { "missing tensor", "model.norm.weight", NULL, NULL, "model.norm.weight", "missing" },
        { "wrong shape", NULL, "model.layers.1.self_attn.k_proj.weight", NULL, "model.layers.1.self_attn.k_proj.weight",
          "shape" },
        { "tensor the config does not imply", NULL, NULL, "model.layers.2.mlp.up_proj.weight",
          "model.layers.2.mlp.up_proj.weight", "not part" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pth(d, "bad");
        sh("rm -rf '%s'%s", d, "");
        sh("cp -r '%s' '%s'", good, d);
        snprintf(q, sizeof q, "%s/model.safetensors", d);
        if (rewrite(p, q, cases[i].drop, cases[i].reshape, cases[i].extra)) { DL_CHECK(0, "rewrite"); continue; }
        expect_load_fails(cases[i].label, d, cases[i].n1, cases[i].n2);
        sh("rm -rf '%s'%s", d, "");
    }
    /* an HF-style tied checkpoint may carry lm_head.weight and rotary caches: accepted */
    pth(d, "extras");
    sh("cp -r '%s' '%s'", good, d);
    snprintf(q, sizeof q, "%s/model.safetensors", d);
    rewrite(p, q, NULL, NULL, "model.layers.0.self_attn.rotary_emb.inv_freq");
    dl_model r;
    rc = dl_ckpt_load(&r, d, dev, err, sizeof err);
    DL_CHECK(rc == 0, "rotary_emb.inv_freq in the weights is ignored (%s)", rc ? err : "");
    if (!rc) dl_model_free(&r);
    /* config edited: intermediate_size no longer matches the MLP tensors */
    sh("rm -rf '%s'%s", d, "");
    sh("cp -r '%s' '%s'", good, d);
    snprintf(q, sizeof q, "%s/config.json", d);
    json_t *j = json_load_file(q, 0, NULL);
    json_object_set_new(j, "intermediate_size", json_integer(32));
    json_dump_file(j, q, JSON_INDENT(2));
    json_decref(j);
    expect_load_fails("config.json disagrees with the tensors (intermediate_size)", d, "mlp.", "shape");
    snprintf(q, sizeof q, "%s/config.json", d);
    unlink(q);
    rc = dl_ckpt_load(&r, d, dev, err, sizeof err);
    DL_CHECK(rc != 0 && strstr(err, "config.json"), "no config.json: refused (%s)", err);
    if (!rc) dl_model_free(&r);
    sh("rm -rf '%s'%s", d, "");
    dl_model_free(&m);
}

/* ---------------------------------------------------------------- atomic saves */
static void test_atomic(void) {
    char err[512], d[512], p[600];
    dl_config c;
    tiny_config(&c, 1, 0);
    dl_model a, b, r;
    if (dl_model_init(&a, &c, dev, err, sizeof err) || dl_model_init(&b, &c, dev, err, sizeof err)) return;
    dl_model_init_weights(&a, 1);
    dl_model_init_weights(&b, 2);
    pth(d, "atomic");
    int rc = dl_ckpt_save(&a, d, FIX "qwen2_bf16/tokenizer.json", NULL, 0, err, sizeof err);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", d);
    DL_CHECK(rc == 0 && exists(p), "save A with tokenizer.json (+ tokenizer_config.json beside it) (%s)", rc ? err : "");
    rc = dl_ckpt_save(&b, d, "no/such/tokenizer.json", NULL, 0, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO && strstr(err, "no/such/tokenizer.json"), "save B failing midway (missing tokenizer) (%s)", err);
    rc = dl_ckpt_load(&r, d, dev, err, sizeof err);
    DL_CHECK(rc == 0 && !same_tensors(&a, a.params, &r, r.params, 0), "after the failed save, A is intact");
    if (!rc) dl_model_free(&r);
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "ls -d %s.* 2>/dev/null | grep -q .", d);
    DL_CHECK(system(cmd) != 0, "no temporary directory left behind");
    rc = dl_ckpt_save(&b, d, NULL, NULL, 0, err, sizeof err);
    rc = rc ? rc : dl_ckpt_load(&r, d, dev, err, sizeof err);
    DL_CHECK(rc == 0 && !same_tensors(&b, b.params, &r, r.params, 0) && system(cmd) != 0,
             "save B over A: B in place, old one removed (%s)", rc ? err : "");
    if (!rc) dl_model_free(&r);
    snprintf(p, sizeof p, "%s/tokenizer.json", d);
    DL_CHECK(!exists(p), "the replaced checkpoint is B's alone (no stale tokenizer.json from A)");
    /* never replace a directory holding other files */
    snprintf(p, sizeof p, "%s/notes.txt", d);
    FILE *f = fopen(p, "w");
    fputs("mine\n", f);
    fclose(f);
    rc = dl_ckpt_save(&a, d, NULL, NULL, 0, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE && strstr(err, "notes.txt") && exists(p), "directory with notes.txt not replaced (%s)", err);
    rc = dl_ckpt_save(&a, p, NULL, NULL, 0, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE && strstr(err, "not a directory"), "a regular file as checkpoint dir refused (%s)", err);
    /* trailing slash */
    pth(d, "slash/");
    rc = dl_ckpt_save(&a, d, NULL, NULL, 0, err, sizeof err);
    pth(d, "slash/config.json");
    DL_CHECK(rc == 0 && exists(d), "checkpoint dir given with a trailing slash (%s)", rc ? err : "");
    dl_model_free(&a);
    dl_model_free(&b);
}

/* ---------------------------------------------------------------- conversion */
static float fx_value(const char *name, size_t i) {
    unsigned k = 0;
    for (const char *s = name; *s; s++) k += (unsigned char)*s;
    k %= 251;
    return (float)((long)((7 * i + 13 * (size_t)k) % 255) - 127) / 64.0f;
}

/* Every converted tensor equals the formula; vocab rows: `v0` source rows,
 * the appended mask row and rows >= v0 are the mean of rows [0, n_real). */
static int check_converted(const dl_model *m, int v0, int n_real, int mask_added) {
    float *h = params_host(m, m->params);
    int bad = 0;
    int64_t mask = m->cfg.mask_token_id;
    for (int i = 0; i < m->n_tensors && !bad; i++) {
        const dl_tensor *t = &m->tensors[i];
        int vocab = !strcmp(t->name, "model.embed_tokens.weight") || !strcmp(t->name, "lm_head.weight");
        int rows = t->shape[0], cols = t->ndim == 2 ? t->shape[1] : 1;
        for (int r = 0; r < rows && !bad; r++) {
            int fill = vocab && (r >= v0 || (mask_added && r == mask));
            for (int j = 0; j < cols && !bad; j++) {
                float got = h[t->offset + (size_t)r * cols + j], want;
                if (fill) {
                    double s = 0;
                    for (int q = 0; q < n_real; q++) s += fx_value(t->name, (size_t)q * cols + j);
                    want = (float)(s / n_real);
                } else want = fx_value(t->name, (size_t)r * cols + j);
                if (got != want) {
                    printf("  # %s[%d,%d] = %.9g, want %.9g\n", t->name, r, j, got, want);
                    bad = 1;
                }
            }
        }
    }
    free(h);
    return bad;
}

static void test_convert(void) {
    char err[512], s[512], tj[4096], p[600];
    struct {
        const char *dir, *arch;
        int tied, bias, V, v0, n_real, mask, added;
    } cases[] = {
        { "llama_f16", "llama", 1, 0, 21, 20, 20, 20, 1 },
        { "qwen2_bf16", "qwen2", 0, 1, 24, 24, 20, 20, 1 },
        { "mistral_sharded", "mistral", 0, 0, 21, 21, 20, 20, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, FIX "%s", cases[i].dir);
        pth(s, cases[i].dir);
        mkdir(s, 0755);
        dl_model m;
        int rc = dl_convert_load(&m, src, NULL, s, tj, sizeof tj, dev, err, sizeof err);
        DL_CHECK(rc == 0, "convert %s (%s)", src, rc ? err : "");
        if (rc) continue;
        const dl_config *c = &m.cfg;
        DL_CHECK(!strcmp(c->arch, cases[i].arch) && c->tied == cases[i].tied && c->qkv_bias == cases[i].bias &&
                 c->vocab_size == cases[i].V && c->mask_token_id == cases[i].mask && !strcmp(c->objective, "diffusion") &&
                 c->dim == 8 && c->n_layers == 2 && c->n_kv_heads == 1 && c->head_dim == 4 && c->hidden_dim == 12,
                 "%s: config (arch %s, tied %d, bias %d, vocab %d, mask %lld)", cases[i].dir, c->arch, c->tied, c->qkv_bias,
                 c->vocab_size, (long long)c->mask_token_id);
        DL_CHECK(!check_converted(&m, cases[i].v0, cases[i].n_real, cases[i].added),
                 "%s: every weight as written by the generator%s", cases[i].dir,
                 cases[i].added ? ", mask rows = mean of the real rows" : ", existing [MASK] row kept");
        dl_tok *t;
        rc = dl_tok_load(&t, tj, err, sizeof err);
        if (!rc) {
            const char *mname = cases[i].added ? "<|mdm_mask|>" : "[MASK]";
            DL_CHECK(dl_tok_token_id(t, mname) == cases[i].mask && dl_tok_special_id(t, DL_TOK_MASK) == cases[i].mask &&
                     dl_tok_is_special(t, (uint32_t)cases[i].mask),
                     "%s: written tokenizer.json has %s = %d as a special token", cases[i].dir, mname, cases[i].mask);
            dl_tok_free(t);
        } else DL_CHECK(0, "written tokenizer loads (%s)", err);
        if (i == 1) {   /* tokenizer_config.json updated; then save + load the converted model */
            snprintf(p, sizeof p, "%s/tokenizer_config.json", s);
            json_t *j = json_load_file(p, 0, NULL);
            json_t *dec = json_object_get(json_object_get(j, "added_tokens_decoder"), "20");
            DL_CHECK(j && !strcmp(json_string_value(json_object_get(j, "mask_token")) ?: "", "<|mdm_mask|>") &&
                     !strcmp(json_string_value(json_object_get(dec, "content")) ?: "", "<|mdm_mask|>"),
                     "qwen2: tokenizer_config.json names the mask token (mask_token, added_tokens_decoder[20])");
            json_decref(j);
            char ck[600];
            snprintf(ck, sizeof ck, "%s/ckpt", s);
            dl_model r;
            rc = dl_ckpt_save(&m, ck, tj, NULL, 0, err, sizeof err);
            rc = rc ? rc : dl_ckpt_load(&r, ck, dev, err, sizeof err);
            DL_CHECK(rc == 0, "converted qwen2 saved and reloaded (%s)", rc ? err : "");
            if (!rc) {
                DL_CHECK(!same_tensors(&m, m.params, &r, r.params, 0) && r.cfg.mask_token_id == 20 && r.cfg.qkv_bias,
                         "reloaded converted checkpoint identical");
                dl_model_free(&r);
            }
        }
        dl_model_free(&m);
    }
}

static void expect_convert_fails(const char *label, const char *src, const char *tokbin, int code, const char *n1,
                                 const char *n2) {
    char err[512] = "", s[512], tj[4096];
    pth(s, "scratch");
    mkdir(s, 0755);
    dl_model m;
    int rc = dl_convert_load(&m, src, tokbin, s, tj, sizeof tj, dev, err, sizeof err);
    DL_CHECK(rc == code && (!n1 || strstr(err, n1)) && (!n2 || strstr(err, n2)), "convert refused: %s (%s)", label, err);
    if (!rc) dl_model_free(&m);
}

static void test_convert_bad(void) {
    char d[512], p[600], q[600];
    pth(d, "badsrc");
    snprintf(p, sizeof p, FIX "llama_f16/model.safetensors");
    snprintf(q, sizeof q, "%s/model.safetensors", d);
    struct { const char *label, *drop, *reshape, *extra, *n1, *n2; } cases[] = {
        { "missing tensor", "model.layers.1.mlp.down_proj.weight", NULL, NULL, "model.layers.1.mlp.down_proj.weight",
          "missing" },
        { "wrong shape", NULL, "model.layers.0.self_attn.o_proj.weight", NULL, "model.layers.0.self_attn.o_proj.weight",
          "shape" },
        { "unknown tensor", NULL, NULL, "model.layers.0.mlp.experts.weight", "model.layers.0.mlp.experts.weight",
          "no place" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sh("rm -rf '%s'; cp -r " FIX "llama_f16 '%s'", d, d);
        rewrite(p, q, cases[i].drop, cases[i].reshape, cases[i].extra);
        expect_convert_fails(cases[i].label, d, NULL, -DL_EXIT_DATA, cases[i].n1, cases[i].n2);
    }
    sh("rm -rf '%s'; cp -r " FIX "llama_f16 '%s'", d, d);
    snprintf(q, sizeof q, "%s/tokenizer.json", d);
    unlink(q);
    expect_convert_fails("no tokenizer.json", d, NULL, -DL_EXIT_DATA, "tokenizer.json", NULL);
    sh("rm -rf '%s'; cp -r " FIX "mistral_sharded '%s'", d, d);
    snprintf(q, sizeof q, "%s/model-00002-of-00002.safetensors", d);
    unlink(q);
    expect_convert_fails("a shard missing", d, NULL, -DL_EXIT_IO, "model-00002-of-00002.safetensors", NULL);
    char err[512], tj[4096];
    dl_model m;
    int rc = dl_convert_load(&m, FIX "llama_f16", NULL, FIX "llama_f16", tj, sizeof tj, dev, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_USAGE, "scratch dir == source refused (%s)", err);
    if (!rc) dl_model_free(&m);
    /* llama2.c: truncated model, tokenizer of another vocabulary, versioned export */
    pth(d, "cut.bin");
    sh("head -c 100000 share/data/stories260K/stories260K.bin > '%s'%s", d, "");
    pth(q, "tok512.bin");
    sh("cp share/data/stories260K/tok512.bin '%s'%s", q, "");
    expect_convert_fails("truncated llama2.c model", d, NULL, -DL_EXIT_DATA, "cut.bin", "truncated");
    pth(p, "short_tok.bin");
    sh("head -c 3000 share/data/stories260K/tok512.bin > '%s'%s", p, "");
    expect_convert_fails("truncated tokenizer .bin", "share/data/stories260K/stories260K.bin", p, -DL_EXIT_DATA,
                         "short_tok.bin", "truncated");
    pth(d, "v1.bin");
    FILE *f = fopen(d, "wb");
    unsigned hdr[8] = { 0x616b3432u, 1, 64, 172, 5, 8, 4, 512 };
    fwrite(hdr, 4, 8, f);
    fclose(f);
    expect_convert_fails("llama2.c version-1 export", d, NULL, -DL_EXIT_DATA, "v1.bin", "legacy");
    expect_convert_fails("a lone .safetensors file", FIX "llama_f16/model.safetensors", NULL, -DL_EXIT_USAGE,
                         "model.safetensors", NULL);
}

int main(void) {
    char err[512];
    if (!mkdtemp(tmp)) { printf("not ok - mkdtemp\n"); return 1; }
    if (dl_dev_open(&dev, DL_DEV_CPU, 0, err, sizeof err)) { printf("not ok - device: %s\n", err); return 1; }
    test_roundtrip();
    test_disagree();
    test_atomic();
    test_convert();
    test_convert_bad();
    dl_dev_close(dev);
    sh("rm -rf '%s'%s", tmp, "");
    return dl_test_end();
}
