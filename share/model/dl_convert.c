/* dl_convert.c — an autoregressive model becomes a diffusion-ready model
 * (implements dl_convert_load of dl_ckpt.h).
 *
 * Sources: an HF checkpoint directory (config.json, tokenizer.json,
 * model.safetensors or model.safetensors.index.json + shards; every family
 * of dl_config.c, tensor names mapped by dl_family_tensor_name; F32 / F16 / BF16; tied or untied; a
 * checkpoint saved without the "model." prefix is read too), or a llama2.c
 * legacy .bin with its tokenizer .bin (dl_llama2c.c: RoPE rows permuted to
 * the HF layout, tokenizer rewritten as tokenizer.json).
 * Every tensor the config implies must be present with its shape; a source
 * tensor the model has no place for is refused (rotary caches and a tied
 * model's lm_head.weight excepted).
 *
 * The mask token: config.json's mask_token_id when set, else the
 * tokenizer's mask token (tokenizer_config.json mask_token, or a well-known
 * name: <|mdm_mask|>, <|mask|>, [MASK], <mask>), else "<|mdm_mask|>" is
 * appended as a special added token with the next free id
 * (dl_tok_add_special), which may fall inside an embedding matrix padded
 * beyond the tokenizer (Qwen2) or add a row.  An APPENDED mask token's
 * embedding row — and its lm_head row when untied — is set to the MEAN of the
 * rows of the real tokens (ids below min(config vocab, tokenizer vocab)):
 * a neutral input that carries no token's identity but sits where the
 * embeddings live (norm and direction typical of the vocabulary, unlike a
 * zero row), and an output logit equal to the average logit, so the
 * converted model almost never predicts the mask token — its AR outputs are
 * unchanged in practice (the stories260K test excludes ids >= the original
 * vocab from its argmax anyway).  Zero-mean noise of the embeddings' scale
 * would work as well; the mean is deterministic and needs no RNG.  Rows
 * beyond the original embedding other than the mask (a tokenizer larger
 * than the embedding) are initialised the same way.  An EXISTING mask row
 * (e.g. an already-trained diffusion model) is kept as it is.
 *
 * The result: config with objective "diffusion" and mask_token_id set,
 * bos/eos/pad from the tokenizer where the config has none; tokenizer.json
 * (+ tokenizer_config.json, mask_token set) written into scratch_dir, which
 * must not be the source directory.
 *
 * Not here: saving (dl_ckpt.c), training.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>
#include "dl_ckpt.h"
#include "dl_io.h"
#include "dl_json.h"
#include "dl_tok.h"

#define MASK_TOKEN "<|mdm_mask|>"

static int write_json(json_t *o, const char *path, char *err, size_t errlen) {
    return dl_json_write(path, o, JSON_INDENT(2), err, errlen);
}

/* ================================================================ sources */
typedef struct {
    const char *path;
    int is_l2c;
    dl_llama2c l2c;
    dl_ckpt_weights w;
} source;

static const dl_st_tensor *hf_find(const dl_ckpt_weights *w, const char *name, const dl_st_file **f) {
    const dl_st_tensor *t = dl_ckpt_weights_find(w, name, f);
    if (!t && !strncmp(name, "model.", 6)) t = dl_ckpt_weights_find(w, name + 6, f);
    return t;
}

/* The source tensor `name`, of shape (rows) or (rows, cols), into dst. */
static int fetch(source *s, const dl_config *cfg, const char *name, int ndim, int64_t rows, int64_t cols, float *dst,
                 char *err, size_t errlen) {
    size_t n = (size_t)rows * (size_t)(ndim == 2 ? cols : 1);
    if (s->is_l2c) return dl_llama2c_tensor(&s->l2c, name, dst, n, err, errlen);
    const dl_st_file *f;
    char src_name[128];
    int rc = dl_family_tensor_name(cfg, name, src_name, sizeof src_name, err, errlen);
    if (rc) return rc;
    name = src_name;
    const dl_st_tensor *t = hf_find(&s->w, name, &f);
    if (!t) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" missing (the config implies it)", s->path, name);
    if (t->ndim != ndim || t->shape[0] != rows || (ndim == 2 && t->shape[1] != cols)) {
        char got[96] = "";
        for (int k = 0; k < t->ndim; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "", (long long)t->shape[k]);
        if (ndim == 2)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": shape [%s] but the config implies [%lld, %lld]",
                             f->path, t->name, got, (long long)rows, (long long)cols);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": shape [%s] but the config implies [%lld]", f->path,
                         t->name, got, (long long)rows);
    }
    return dl_st_read_f32(f, t, dst, n, err, errlen);
}

/* HF sources: every tensor must have a place in the model. */
static int check_extras(const source *s, const dl_model *m, char *err, size_t errlen) {
    char buf[300];
    for (int i = 0; i < s->w.n; i++)
        for (int j = 0; j < s->w.f[i].n; j++) {
            const char *nm = s->w.f[i].t[j].name;
            size_t n = strlen(nm), k = strlen("rotary_emb.inv_freq");
            snprintf(buf, sizeof buf, "model.%s", nm);
            if (dl_family_has_tensor(m, nm) || dl_family_has_tensor(m, buf) || (n >= k && !strcmp(nm + n - k, "rotary_emb.inv_freq")) ||
                (m->cfg.tied && !strcmp(nm, "lm_head.weight")))
                continue;
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" has no place in a %s model of this config",
                             s->w.f[i].path, nm, m->cfg.arch);
        }
    return 0;
}

/* llama2.c: the tokenizer .bin named, or tok<V>.bin / tokenizer.bin beside the model. */
static int find_tok_bin(char *dst, const char *model, const char *given, int vocab, char *err, size_t errlen) {
    if (given) {
        if (snprintf(dst, DL_PATH_MAX, "%s", given) >= DL_PATH_MAX) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "path too long");
        return 0;
    }
    char dir[DL_PATH_MAX], name[32];
    snprintf(dir, sizeof dir, "%s", model);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0;
    else snprintf(dir, sizeof dir, ".");
    snprintf(name, sizeof name, "tok%d.bin", vocab);
    const char *cands[] = { name, "tokenizer.bin" };
    for (int i = 0; i < 2; i++)
        if (!dl_path_join(dst, dir, cands[i], err, errlen) && dl_is_file(dst)) return 0;
    return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: no tokenizer given and neither %s nor tokenizer.bin beside it",
                     model, name);
}

/* tokenizer_config.json for a converted llama2.c tokenizer. */
static int l2c_tok_config(const char *path, int seq_len, char *err, size_t errlen) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:b}", "tokenizer_class", "PreTrainedTokenizerFast",
                          "bos_token", "<s>", "eos_token", "</s>", "unk_token", "<unk>", "mask_token", MASK_TOKEN,
                          "model_max_length", seq_len, "clean_up_tokenization_spaces", 0);
    if (!o) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = write_json(o, path, err, errlen);
    json_decref(o);
    return rc;
}

/* HF: copy SRC/tokenizer_config.json to dst, naming the appended mask token. */
static int hf_tok_config(const char *src_dir, const char *dst, int64_t mask, int added, char *err, size_t errlen) {
    char p[DL_PATH_MAX];
    int rc = dl_path_join(p, src_dir, "tokenizer_config.json", err, errlen);
    if (rc || !dl_is_file(p)) return rc;
    json_error_t je;
    json_t *o = json_load_file(p, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: line %d: %s", p, je.line, je.text);
    }
    if (added) {
        json_t *dec = json_object_get(o, "added_tokens_decoder");
        char key[24];
        snprintf(key, sizeof key, "%lld", (long long)mask);
        json_object_set_new(o, "mask_token", json_string(MASK_TOKEN));
        if (json_is_object(dec))
            json_object_set_new(dec, key, json_pack("{s:s, s:b, s:b, s:b, s:b, s:b}", "content", MASK_TOKEN, "lstrip", 0,
                                                    "normalized", 0, "rstrip", 0, "single_word", 0, "special", 1));
    }
    rc = write_json(o, dst, err, errlen);
    json_decref(o);
    return rc;
}

/* ================================================================ weights */
static size_t numel(const dl_tensor *t) { return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1); }

/* rows [v0, V) and the appended mask row of a (V, D) matrix := the mean of rows [0, n_real). */
static void fill_new_rows(float *w, int V, int D, int v0, int n_real, int64_t mask, int added) {
    double *acc = calloc((size_t)D, sizeof *acc);
    DL_ASSERT(acc && n_real > 0);
    for (int r = 0; r < n_real; r++)
        for (int j = 0; j < D; j++) acc[j] += w[(size_t)r * D + j];
    for (int r = 0; r < V; r++)
        if (r >= v0 || (added && r == mask))
            for (int j = 0; j < D; j++) w[(size_t)r * D + j] = (float)(acc[j] / n_real);
    free(acc);
}

static int load_weights(dl_model *m, source *s, int v0, int n_real, int64_t mask, int added, char *err, size_t errlen) {
    size_t mx = 1;
    for (int i = 0; i < m->n_tensors; i++)
        if (numel(&m->tensors[i]) > mx) mx = numel(&m->tensors[i]);
    float *host = malloc(mx * sizeof(float));
    if (!host) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = 0;
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const dl_tensor *t = &m->tensors[i];
        int vocab_rows = !strcmp(t->name, "model.embed_tokens.weight") || !strcmp(t->name, "lm_head.weight");
        rc = fetch(s, &m->cfg, t->name, t->ndim, vocab_rows ? v0 : t->shape[0], t->shape[1], host, err, errlen);
        if (rc) break;
        if (vocab_rows) fill_new_rows(host, t->shape[0], t->shape[1], v0, n_real, mask, added);
        dl_dev_h2d(m->dev, m->params + t->offset, host, numel(t) * sizeof(float));
    }
    dl_model_weights_changed(m);
    free(host);
    return rc;
}

/* ================================================================ convert */
int dl_convert_load(dl_model *m, const char *src, const char *tokenizer_bin, const char *scratch_dir,
                    char *tokenizer_json_out, size_t tj_len, dl_dev *dev, char *err, size_t errlen) {
    memset(m, 0, sizeof *m);
    source s;
    memset(&s, 0, sizeof s);
    s.path = src;
    dl_tok *tok = NULL;
    dl_config c0, c;
    char tj[DL_PATH_MAX], tc[DL_PATH_MAX], p[DL_PATH_MAX];
    int rc;
    if ((rc = dl_path_join(tj, scratch_dir, "tokenizer.json", err, errlen)) ||
        (rc = dl_path_join(tc, scratch_dir, "tokenizer_config.json", err, errlen)))
        return rc;
    if (!dl_is_dir(scratch_dir)) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: not a directory", scratch_dir);
    if (dl_is_dir(src)) {
        char rs[PATH_MAX], rd[PATH_MAX];
        if (realpath(src, rs) && realpath(scratch_dir, rd) && !strcmp(rs, rd))
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: the scratch directory must not be the source", scratch_dir);
        if ((rc = dl_path_join(p, src, "config.json", err, errlen)) || (rc = dl_config_load(&c0, p, err, errlen))) return rc;
        if ((rc = dl_path_join(p, src, "tokenizer.json", err, errlen))) return rc;
        if (!dl_is_file(p))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no tokenizer.json (a converted checkpoint needs its tokenizer)",
                             src);
        if ((rc = dl_ckpt_weights_open(&s.w, src, err, errlen))) return rc;
        if ((rc = dl_tok_load(&tok, src, err, errlen))) goto out;
    } else {
        size_t n = strlen(src);
        if (n > 12 && !strcmp(src + n - 12, ".safetensors"))
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: give the checkpoint directory (config.json, tokenizer.json)",
                             src);
        if ((rc = dl_llama2c_open(&s.l2c, src, err, errlen))) return rc;
        s.is_l2c = 1;
        c0 = s.l2c.cfg;
        if ((rc = find_tok_bin(p, src, tokenizer_bin, c0.vocab_size, err, errlen)) ||
            (rc = dl_llama2c_tokenizer_json(p, c0.vocab_size, tj, err, errlen)) ||
            (rc = l2c_tok_config(tc, c0.max_seq_len, err, errlen)) || (rc = dl_tok_load(&tok, tj, err, errlen)))
            goto out;
    }
    /* the mask token */
    int64_t mask = c0.mask_token_id;
    int added = 0;
    int v_tok0 = (int)dl_tok_vocab_size(tok);
    if (mask < 0) mask = dl_tok_special_id(tok, DL_TOK_MASK);
    if (mask < 0) {
        if ((mask = dl_tok_add_special(tok, MASK_TOKEN, err, errlen)) < 0) { rc = (int)mask; goto out; }
        dl_tok_set_special(tok, DL_TOK_MASK, mask);
        added = 1;
    }
    c = c0;
    c.mask_token_id = mask;
    int64_t V = c0.vocab_size;
    if ((int64_t)dl_tok_vocab_size(tok) > V) V = dl_tok_vocab_size(tok);
    if (mask + 1 > V) V = mask + 1;
    if (V > INT32_MAX / 2) { rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: vocabulary of %lld tokens", src, (long long)V); goto out; }
    c.vocab_size = (int)V;
    snprintf(c.objective, sizeof c.objective, "diffusion");
    if (c.bos_token_id < 0) c.bos_token_id = dl_tok_special_id(tok, DL_TOK_BOS);
    if (c.eos_token_id < 0) c.eos_token_id = dl_tok_special_id(tok, DL_TOK_EOS);
    if (c.pad_token_id < 0) c.pad_token_id = dl_tok_special_id(tok, DL_TOK_PAD);
    if ((rc = dl_model_init(m, &c, dev, err, errlen))) { dl_err_prefix(err, errlen, "%s", src); goto out; }
    int n_real = v_tok0 < c0.vocab_size ? v_tok0 : c0.vocab_size;
    if ((rc = load_weights(m, &s, c0.vocab_size, n_real > 0 ? n_real : 1, mask, added, err, errlen))) goto out;
    if (!s.is_l2c && (rc = check_extras(&s, m, err, errlen))) goto out;
    /* the tokenizer, with its mask token */
    if ((rc = dl_tok_save(tok, tj, err, errlen))) goto out;
    if (!s.is_l2c && (rc = hf_tok_config(src, tc, mask, added, err, errlen))) goto out;
    if (snprintf(tokenizer_json_out, tj_len, "%s", tj) >= (int)tj_len)
        rc = dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: path too long", tj);
out:
    if (rc) dl_model_free(m);
    dl_tok_free(tok);
    dl_ckpt_weights_close(&s.w);
    dl_llama2c_close(&s.l2c);
    return rc;
}
