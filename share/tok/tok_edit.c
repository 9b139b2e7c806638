/* tok_edit.c — dl_tok_add_special and dl_tok_save.
 *
 * A new special token gets id = dl_tok_vocab_size() (the next free id),
 * special=true, normalized=false, no lstrip/rstrip/single_word — the id HF
 * tokenizers assigns when it loads the saved file (it re-derives added-token
 * ids as max(model vocab size, last added id + 1)); tests/ref checks that
 * HF encodes identically with the saved file.
 * Saving re-parses the bytes the tokenizer was loaded from, appends the new
 * tokens to "added_tokens", sets "truncation" and "padding" to null (dllm
 * ignores them; a leftover truncation would silently cut HF's encodings of
 * the saved checkpoint) and writes everything else unchanged (key order
 * kept, 2-space indent, UTF-8 unescaped) through dl_out (temp + rename).
 */
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dl_io.h"
#include "tok_engine.h"
#include "tok_utf8.h"
#include "tok_added.h"
#include "tok_load.h"

int64_t dl_tok_add_special(dl_tok *t, const char *content, char *err, size_t errlen) {
    size_t n = strlen(content);
    if (n == 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "cannot add an empty token");
    if (tok_utf8_valid_len(content, n) != n)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "token \"%s\" is not valid UTF-8", content);
    int64_t id = dl_tok_token_id(t, content);
    if (id >= 0) return id;
    id = t->vocab_n;
    if (tok_parse_added(t, content, n, (uint32_t)id, 1, 0, 0, 0, 0) || tok_added_build(t))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    t->n_new_added++;
    for (int w = 0; w < 4; w++)
        if (t->special[w] < 0 && tok_is_fallback_name(w, content)) t->special[w] = id;
    return id;
}

int dl_tok_save(dl_tok *t, const char *path, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_loadb(t->json, t->json_len, JSON_ALLOW_NUL, &je);
    if (!root) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: line %d: %s", t->path, je.line, je.text);
    json_t *arr = json_object_get(root, "added_tokens");
    if (!json_is_array(arr)) {
        arr = json_array();
        if (!arr || json_object_set_new(root, "added_tokens", arr)) goto oom;
    }
    for (size_t i = t->n_added - t->n_new_added; i < t->n_added; i++) {
        const tok_added *a = &t->added[i];
        json_t *o = json_object();
        if (!o || json_array_append_new(arr, o) ||
            json_object_set_new(o, "id", json_integer(a->id)) ||
            json_object_set_new(o, "content", json_stringn(a->s, a->n)) ||
            json_object_set_new(o, "single_word", json_boolean(a->single_word)) ||
            json_object_set_new(o, "lstrip", json_boolean(a->lstrip)) ||
            json_object_set_new(o, "rstrip", json_boolean(a->rstrip)) ||
            json_object_set_new(o, "normalized", json_boolean(a->normalized)) ||
            json_object_set_new(o, "special", json_boolean(a->special)))
            goto oom;
    }
    if ((json_object_get(root, "truncation") && json_object_set_new(root, "truncation", json_null())) ||
        (json_object_get(root, "padding") && json_object_set_new(root, "padding", json_null())))
        goto oom;
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    if (!text) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    size_t len = strlen(text);
    dl_out *out;
    dl_out_opts opts = { 0, 0, 0, 0 };
    int rc = dl_out_open(&out, path, &opts, err, errlen);
    if (!rc && (rc = dl_out_write(out, text, len, err, errlen))) dl_out_abort(out);
    else if (!rc) rc = dl_out_close(out, err, errlen);
    if (rc) { free(text); return rc; }
    free(t->json);
    t->json = text;
    t->json_len = len;
    dl_sha256_hex(text, len, t->sha);
    t->n_new_added = 0;
    return 0;
oom:
    json_decref(root);
    return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
}
