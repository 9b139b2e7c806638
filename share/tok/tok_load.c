/* tok_load.c — dl_tok_load / dl_tok_free and the small accessors.
 *
 * Reads tokenizer.json with jansson (the tree is freed after loading; the
 * raw bytes are kept for dl_tok_sha256 and dl_tok_save), builds the model,
 * the added tokens and the normalizer / pre-tokenizer / decoder chains, and
 * reads bos/eos/pad/mask names from tokenizer_config.json beside it.
 * truncation, padding and post_processor are ignored (see dl_tok.h).
 * Added-token ids are taken from the file (HF re-derives them the same way
 * for any file HF itself wrote).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <jansson.h>
#include "dl_io.h"
#include "tok_load.h"
#include "tok_engine.h"
#include "tok_map.h"
#include "tok_vocab.h"
#include "tok_normalize.h"
#include "tok_bpe.h"
#include "tok_pretok.h"
#include "tok_added.h"
#include "tok_decode.h"

int tok_parse_added(dl_tok *t, const char *s, size_t n, uint32_t id, int special, int single_word, int lstrip,
                    int rstrip, int normalized) {
    if (n == 0 || tok_strmap_get(&t->added_map, s, n) >= 0) return 0;   /* HF skips empty / duplicate */
    if (t->n_added == t->cap_added) {
        size_t c = t->cap_added ? t->cap_added * 2 : 16;
        tok_added *p = realloc(t->added, c * sizeof *p);
        if (!p) return -1;
        t->added = p; t->cap_added = c;
    }
    tok_added *a = &t->added[t->n_added];
    memset(a, 0, sizeof *a);
    if (!(a->s = malloc(n + 1))) return -1;
    memcpy(a->s, s, n);
    a->s[n] = 0;
    a->n = n; a->id = id;
    a->special = (unsigned char)special; a->single_word = (unsigned char)single_word;
    a->lstrip = (unsigned char)lstrip; a->rstrip = (unsigned char)rstrip;
    a->normalized = (unsigned char)normalized;
    if (tok_strmap_put(&t->added_map, s, n, (uint32_t)t->n_added)) { free(a->s); return -1; }
    t->n_added++;
    if (tok_set_id_token(t, id, s, n)) return -1;
    t->id_flags[id] = (unsigned char)(TOK_FLAG_ADDED | (special ? TOK_FLAG_SPECIAL : 0));
    return 0;
}

/* ---------------------------------------------------------------- specials */
static const char *const FALLBACK[4][6] = {
    [DL_TOK_BOS] = { "<|begin_of_text|>", "<s>", "<|startoftext|>", "<|endoftext|>", NULL },
    [DL_TOK_EOS] = { "<|end_of_text|>", "</s>", "<|endoftext|>", "<|im_end|>", "<|eot_id|>", NULL },
    [DL_TOK_PAD] = { "<pad>", "<|pad|>", "[PAD]", NULL },
    [DL_TOK_MASK] = { "<|mdm_mask|>", "<|mask|>", "[MASK]", "<mask>", NULL },
};
static const char *const CONFIG_KEY[4] = { "bos_token", "eos_token", "pad_token", "mask_token" };

static int64_t fallback_special(const dl_tok *t, int which) {
    for (int i = 0; FALLBACK[which][i]; i++) {
        int64_t id = dl_tok_token_id(t, FALLBACK[which][i]);
        if (id >= 0) return id;
    }
    return -1;
}

int tok_is_fallback_name(int which, const char *s) {
    for (int i = 0; FALLBACK[which][i]; i++)
        if (!strcmp(FALLBACK[which][i], s)) return 1;
    return 0;
}

static void read_config(dl_tok *t, const char *jpath) {
    int from_config[4] = { 0 };
    const char *slash = strrchr(jpath, '/');
    size_t dn = slash ? (size_t)(slash - jpath + 1) : 0;
    char *cpath = malloc(dn + 32);
    if (cpath) {
        memcpy(cpath, jpath, dn);
        strcpy(cpath + dn, "tokenizer_config.json");
        json_t *c = json_load_file(cpath, 0, NULL);
        free(cpath);
        for (int w = 0; c && w < 4; w++) {
            json_t *v = json_object_get(c, CONFIG_KEY[w]);
            if (!v) continue;
            if (json_is_object(v)) v = json_object_get(v, "content");
            from_config[w] = 1;
            t->special[w] = json_is_string(v) ? dl_tok_token_id(t, json_string_value(v)) : -1;
        }
        json_decref(c);
    }
    for (int w = 0; w < 4; w++)
        if (!from_config[w]) t->special[w] = fallback_special(t, w);
}

/* ---------------------------------------------------------------- id limit */
/* The id tables (tok_vocab.c) are indexed by id, so one huge id in a tiny
 * file ({"a": 300000000}) would cost gigabytes.  HF's vocab size is a count
 * (model entries + added tokens), so HF's own files use ids below that count;
 * ids up to twice the count plus 256 are accepted so a file with holes still
 * loads.  Table memory (9 bytes per id) thus stays proportional to the file:
 * each entry takes at least 6 bytes of JSON. */
static void set_id_limit(dl_tok *t, size_t n_vocab, size_t n_added) {
    t->id_limit = 2 * ((uint64_t)n_vocab + n_added) + 256;
    snprintf(t->id_limit_why, sizeof t->id_limit_why,
             "the file has %zu vocab entries and %zu added tokens, so ids must be below %llu", n_vocab, n_added,
             (unsigned long long)t->id_limit);
}

/* ---------------------------------------------------------------- load */
static int load_json(dl_tok *t, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_loadb(t->json, t->json_len, JSON_ALLOW_NUL, &je);
    if (!root) return dl_seterr(err, errlen, -DL_EXIT_DATA, "line %d: %s", je.line, je.text);
    int rc = 0;
    if (!json_is_object(root)) { rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "not a JSON object"); goto done; }
    set_id_limit(t, json_object_size(json_object_get(json_object_get(root, "model"), "vocab")),
                 json_array_size(json_object_get(root, "added_tokens")));
    if ((rc = tok_bpe_parse(t, json_object_get(root, "model"), err, errlen))) goto done;
    json_t *added = json_object_get(root, "added_tokens"), *a;
    size_t i;
    json_array_foreach(added, i, a) {
        json_t *c = json_object_get(a, "content"), *id = json_object_get(a, "id");
        if (!json_is_string(c) || !json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= INT32_MAX) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "added_tokens[%zu]: needs \"content\" and \"id\"", i);
            goto done;
        }
        if ((uint64_t)json_integer_value(id) >= t->id_limit) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "added_tokens[%zu]: id %lld is unreasonable (%s)", i,
                           (long long)json_integer_value(id), t->id_limit_why);
            goto done;
        }
        int special = json_is_true(json_object_get(a, "special"));
        json_t *nz = json_object_get(a, "normalized");
        int normalized = json_is_boolean(nz) ? json_is_true(nz) : !special;
        if (tok_parse_added(t, json_string_value(c), json_string_length(c), (uint32_t)json_integer_value(id), special,
                            json_is_true(json_object_get(a, "single_word")), json_is_true(json_object_get(a, "lstrip")),
                            json_is_true(json_object_get(a, "rstrip")), normalized)) {
            rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            goto done;
        }
    }
    if ((rc = tok_norm_parse(t, json_object_get(root, "normalizer"), err, errlen))) goto done;
    if ((rc = tok_pre_parse(t, json_object_get(root, "pre_tokenizer"), err, errlen))) goto done;
    if ((rc = tok_dec_parse(t, json_object_get(root, "decoder"), err, errlen))) goto done;
    t->pre_bytelevel_last = t->n_pre > 0 && t->pre[t->n_pre - 1].kind == TOK_P_BYTELEVEL && t->bpe.bytelevel_ok;
    if (t->bpe.ignore_merges && t->pre_bytelevel_last && tok_bpe_build_raw_vocab(t)) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        goto done;
    }
    tok_bpe_check_meta_split(&t->bpe);
    if (tok_added_build(t)) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
done:
    json_decref(root);
    return rc;
}

int dl_tok_load(dl_tok **tp, const char *path, char *err, size_t errlen) {
    *tp = NULL;
    dl_tok *t = calloc(1, sizeof *t);
    if (!t) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    struct stat st;
    size_t pn = strlen(path);
    t->path = malloc(pn + 32);
    if (!t->path) { free(t); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    strcpy(t->path, path);
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        strcpy(t->path + pn, pn && path[pn - 1] == '/' ? "tokenizer.json" : "/tokenizer.json");
    int rc = dl_read_file(t->path, &t->json, &t->json_len, err, errlen);
    if (rc) { dl_tok_free(t); return rc; }
    dl_sha256_hex(t->json, t->json_len, t->sha);
    if ((rc = load_json(t, err, errlen))) {
        dl_err_prefix(err, errlen, "%s", t->path);
        dl_tok_free(t);
        return rc;
    }
    read_config(t, t->path);
    *tp = t;
    return 0;
}

void dl_tok_free(dl_tok *t) {
    if (!t) return;
    tok_bpe_free(&t->bpe);
    tok_added_free(t);
    tok_norm_free(t);
    tok_pre_free(t);
    tok_dec_free(t);
    free(t->json); free(t->path);
    free(t->id_off); free(t->id_len); free(t->id_flags); free(t->id_pool);
    dl_strbuf_free(&t->repaired); dl_strbuf_free(&t->normbuf); dl_strbuf_free(&t->normtmp);
    dl_strbuf_free(&t->wordbuf);
    free(t->segs.v); free(t->nsegs.v);
    free(t);
}

/* ---------------------------------------------------------------- accessors */
const char *dl_tok_sha256(const dl_tok *t) { return t->sha; }

int64_t dl_tok_special_id(const dl_tok *t, dl_tok_special which) {
    return (unsigned)which < 4 ? t->special[which] : -1;
}

void dl_tok_set_special(dl_tok *t, dl_tok_special which, int64_t id) {
    if ((unsigned)which < 4) t->special[which] = id;
}
