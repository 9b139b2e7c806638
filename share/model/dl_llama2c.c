/* dl_llama2c.c — Karpathy's llama2.c "legacy" model exports and tokenizer
 * .bin files, read as a Hugging Face llama model and tokenizer.json
 * (implements the dl_llama2c_* part of dl_ckpt.h).
 *
 * Model (share/data/stories260K/SOURCE.md): 7 int32 header, then float32
 *   token_embedding (V,D), rms_att (L,D), wq (L,D,D), wk (L,KV,D),
 *   wv (L,KV,D), wo (L,D,D), rms_ffn (L,D), w1 (L,F,D), w2 (L,D,F),
 *   w3 (L,F,D), rms_final (D), freq_cis real + imag (seq_len * E) [unused],
 *   wcls (V,D) only when the header's vocab_size is negative (untied).
 * Weights are nn.Linear (out, in) already; w1 = gate_proj, w2 = down_proj,
 * w3 = up_proj.  The file size must equal the header's promise exactly.
 * The versioned exports ("ak42" magic) are refused: re-export with
 * llama2.c's export.py --version 0.
 *
 * RoPE: llama2.c rotates adjacent pairs (2i, 2i+1) of each head (Meta
 * layout); the HF "rotate_half" layout rotates (i, i + E/2).  As HF's
 * convert_llama_weights_to_hf permute(w) = w.view(H, E/2, 2, D)
 * .transpose(1, 2).reshape(H*E, D), row t*E/2 + i of a head in the result
 * is row 2i + t of the head in the source (t = 0, 1).  q·k is unchanged by
 * permuting q and k alike, so wq and wk are permuted and the model runs
 * with rope_layout HALF: the saved checkpoint is a plain HF Llama.
 *
 * Tokenizer .bin: int32 max_token_length, then per id {float32 score,
 * int32 len, len bytes}.  llama2.c's encode: a dummy-prefix " " token, the
 * text's UTF-8 characters looked up as pieces (else their bytes as ids
 * byte + 3), then repeatedly merge the adjacent pair whose concatenation is a
 * piece with the HIGHEST score.  The equivalent tokenizer.json (Llama-2
 * style): normalizer Prepend "▁" + Replace " " -> "▁", no pre-tokenizer,
 * BPE with byte_fallback whose vocab is the pieces with ' ' -> '▁' (ids 1
 * and 2, "\n<s>\n" / "\n</s>\n" in the file, become "<s>" / "</s>"; <unk>,
 * <s>, </s> are special added tokens), and merges derived from the scores
 * as transformers' SentencePiece converter does: for every piece, in order
 * of decreasing score, EVERY split into two pieces (left part shortest
 * first) becomes a merge — HF then merges the lowest-ranked pair, i.e. the
 * pair whose result has the highest score, as llama2.c does.  (Keeping only
 * one split per piece is NOT equivalent: llama2.c merges any adjacent pair
 * whose concatenation is a piece.)  tests/unit/test_stories260k.c checks
 * the ids against llama2.c's algorithm on TinyStories text; decoder Replace
 * "▁" -> " ", ByteFallback, Fuse, Strip one leading space (llama2.c drops
 * the space of the piece after BOS).
 *
 * Not here: the mask token and the rest of the conversion (dl_convert.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "dl_ckpt.h"
#include "dl_io.h"

#define L2C_MAGIC 0x616b3432u      /* "ak42": llama2.c versioned exports */

/* ================================================================ model */
static int32_t rd_i32(const uint8_t *p) { return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24); }

void dl_llama2c_close(dl_llama2c *l) {
    if (l->map) munmap(l->map, l->size);
    free(l->path);
    memset(l, 0, sizeof *l);
}

/* Offsets (in floats after the header) of each weight array.  Sizes up to
 * 2^24 make products like L*F*D reach 2^72, so every step saturates at
 * UINT64_MAX: a header whose true size wrapped around 2^64 (and could then
 * match a small file) gets an impossible total instead. */
typedef struct { uint64_t emb, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final, freq, cls, total; } layout;

static uint64_t mul_sat(uint64_t a, uint64_t b) { return a && b > UINT64_MAX / a ? UINT64_MAX : a * b; }
static uint64_t add_sat(uint64_t a, uint64_t b) { return b > UINT64_MAX - a ? UINT64_MAX : a + b; }

static layout offsets(const dl_config *c) {
    uint64_t V = (uint64_t)c->vocab_size, D = (uint64_t)c->dim, L = (uint64_t)c->n_layers, F = (uint64_t)c->hidden_dim,
             KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim, S = (uint64_t)c->max_seq_len;
    uint64_t LD = mul_sat(L, D), LDD = mul_sat(LD, D), LKVD = mul_sat(mul_sat(L, KV), D), LFD = mul_sat(mul_sat(L, F), D);
    layout o;
    o.emb = 0;
    o.rms_att = add_sat(o.emb, mul_sat(V, D));
    o.wq = add_sat(o.rms_att, LD);
    o.wk = add_sat(o.wq, LDD);
    o.wv = add_sat(o.wk, LKVD);
    o.wo = add_sat(o.wv, LKVD);
    o.rms_ffn = add_sat(o.wo, LDD);
    o.w1 = add_sat(o.rms_ffn, LD);
    o.w2 = add_sat(o.w1, LFD);
    o.w3 = add_sat(o.w2, LFD);
    o.rms_final = add_sat(o.w3, LFD);
    o.freq = add_sat(o.rms_final, D);
    o.cls = add_sat(o.freq, mul_sat(S, (uint64_t)c->head_dim));
    o.total = add_sat(o.cls, c->tied ? 0 : mul_sat(V, D));
    return o;
}

int dl_llama2c_open(dl_llama2c *l, const char *path, char *err, size_t errlen) {
    memset(l, 0, sizeof *l);
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: not a regular file", path);
    }
    if (st.st_size < 28) {
        close(fd);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %lld bytes: too short for a llama2.c model header", path,
                         (long long)st.st_size);
    }
    l->size = (size_t)st.st_size;
    l->map = mmap(NULL, l->size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (l->map == MAP_FAILED) {
        l->map = NULL;
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: mmap: %s", path, strerror(errno));
    }
    if (!(l->path = strdup(path))) { dl_llama2c_close(l); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    if ((uint32_t)rd_i32(l->map) == L2C_MAGIC) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA,
                       "%s: a llama2.c version-%d export; only the legacy format is read (export.py --version 0)", path,
                       rd_i32(l->map + 4));
        dl_llama2c_close(l);
        return rc;
    }
    int32_t h[7];
    for (int i = 0; i < 7; i++) h[i] = rd_i32(l->map + 4 * i);
    dl_config *c = &l->cfg;
    dl_config_default(c);
    c->dim = h[0]; c->hidden_dim = h[1]; c->n_layers = h[2]; c->n_heads = h[3]; c->n_kv_heads = h[4];
    c->tied = h[5] > 0;
    c->vocab_size = h[5] > 0 ? h[5] : (h[5] == INT32_MIN ? 0 : -h[5]);
    c->max_seq_len = h[6];
    int ok = 1;
    for (int i = 0; i < 7; i++) ok &= (i == 5 ? c->vocab_size : h[i]) > 0 && (i == 5 ? c->vocab_size : h[i]) <= (1 << 24);
    ok = ok && c->dim % c->n_heads == 0 && c->n_heads % c->n_kv_heads == 0 && (c->dim / c->n_heads) % 2 == 0;
    if (!ok) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA,
                       "%s: not a llama2.c model: header dim=%d hidden_dim=%d n_layers=%d n_heads=%d n_kv_heads=%d "
                       "vocab_size=%d seq_len=%d is inconsistent", path, h[0], h[1], h[2], h[3], h[4], h[5], h[6]);
        dl_llama2c_close(l);
        return rc;
    }
    c->head_dim = c->dim / c->n_heads;
    snprintf(c->arch, sizeof c->arch, "llama");
    c->norm_eps = 1e-5f;
    c->rope_theta = 10000.0f;
    c->rope_layout = DL_ROPE_HALF;
    c->bos_token_id = 1;
    c->eos_token_id = 2;
    snprintf(c->objective, sizeof c->objective, "causal");
    layout o = offsets(c);
    if (o.total > ((uint64_t)l->size - 28) / 4 || 28 + 4 * o.total != (uint64_t)l->size) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA,
                       "%s: %zu bytes, but its header (dim %d, %d layers, vocab %d, %s classifier) needs %llu: "
                       "truncated or not a legacy llama2.c export", path, l->size, c->dim, c->n_layers, c->vocab_size,
                       c->tied ? "shared" : "separate",
                       (unsigned long long)(o.total > (UINT64_MAX - 28) / 4 ? UINT64_MAX : 28 + 4 * o.total));
        dl_llama2c_close(l);
        return rc;
    }
    return 0;
}

/* dst (H*E, D) = src with each head's rows reordered Meta -> HF rotate-half. */
static void permute_heads(float *dst, const float *src, int H, int E, int D) {
    for (int h = 0; h < H; h++)
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < E / 2; i++)
                memcpy(dst + ((size_t)h * E + (size_t)t * (E / 2) + i) * D, src + ((size_t)h * E + 2 * i + t) * D,
                       sizeof(float) * (size_t)D);
}

int dl_llama2c_tensor(const dl_llama2c *l, const char *name, float *dst, size_t n, char *err, size_t errlen) {
    const dl_config *c = &l->cfg;
    layout o = offsets(c);
    uint64_t D = (uint64_t)c->dim, F = (uint64_t)c->hidden_dim, KV = (uint64_t)c->n_kv_heads * (uint64_t)c->head_dim,
             V = (uint64_t)c->vocab_size;
    uint64_t off = 0, cnt = 0;
    int perm_heads = 0, layer = -1, k = 0;
    const char *suf = name;
    if (sscanf(name, "model.layers.%d.%n", &layer, &k) == 1 && k > 0) suf = name + k;
    if (layer >= c->n_layers) layer = -2;
    if (layer == -1 && !strcmp(name, "model.embed_tokens.weight")) off = o.emb, cnt = V * D;
    else if (layer == -1 && !strcmp(name, "model.norm.weight")) off = o.rms_final, cnt = D;
    else if (layer == -1 && !c->tied && !strcmp(name, "lm_head.weight")) off = o.cls, cnt = V * D;
    else if (layer >= 0) {
        uint64_t L = (uint64_t)layer;
        if (!strcmp(suf, "input_layernorm.weight")) off = o.rms_att + L * D, cnt = D;
        else if (!strcmp(suf, "self_attn.q_proj.weight")) off = o.wq + L * D * D, cnt = D * D, perm_heads = c->n_heads;
        else if (!strcmp(suf, "self_attn.k_proj.weight")) off = o.wk + L * KV * D, cnt = KV * D, perm_heads = c->n_kv_heads;
        else if (!strcmp(suf, "self_attn.v_proj.weight")) off = o.wv + L * KV * D, cnt = KV * D;
        else if (!strcmp(suf, "self_attn.o_proj.weight")) off = o.wo + L * D * D, cnt = D * D;
        else if (!strcmp(suf, "post_attention_layernorm.weight")) off = o.rms_ffn + L * D, cnt = D;
        else if (!strcmp(suf, "mlp.gate_proj.weight")) off = o.w1 + L * F * D, cnt = F * D;
        else if (!strcmp(suf, "mlp.down_proj.weight")) off = o.w2 + L * D * F, cnt = D * F;
        else if (!strcmp(suf, "mlp.up_proj.weight")) off = o.w3 + L * F * D, cnt = F * D;
    }
    if (!cnt) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no tensor \"%s\" in a llama2.c model", l->path, name);
    if (cnt != n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" has %llu elements, %zu wanted", l->path, name,
                         (unsigned long long)cnt, n);
    const uint8_t *src = l->map + 28 + 4 * off;
    if (!perm_heads) {
        memcpy(dst, src, 4 * n);
        return 0;
    }
    float *tmp = malloc(4 * n);
    if (!tmp) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    memcpy(tmp, src, 4 * n);
    permute_heads(dst, tmp, perm_heads, c->head_dim, c->dim);
    free(tmp);
    return 0;
}

/* ================================================================ tokenizer */
static int utf8_ok(const unsigned char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        size_t k = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((s[i + j] & 0xc0) != 0x80) return 0;
        i += k;
    }
    return 1;
}

static int is_byte_piece(const char *p) {
    unsigned v;
    char tail;
    return strlen(p) == 6 && sscanf(p, "<0x%2X%c", &v, &tail) == 2 && tail == '>';
}

typedef struct { char *s; float score; int id; } piece;

static int by_score(const void *a, const void *b) {
    const piece *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->id - y->id;
}

/* ' ' -> U+2581 "▁" */
static char *metaspace(const char *s, size_t n) {
    size_t sp = 0;
    for (size_t i = 0; i < n; i++) sp += s[i] == ' ';
    char *o = malloc(n + 2 * sp + 1), *q = o;
    if (!o) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') { memcpy(q, "\xe2\x96\x81", 3); q += 3; }
        else *q++ = s[i];
    }
    *q = 0;
    return o;
}

static json_t *added_token(int id, const char *s) {
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(id));
    json_object_set_new(o, "content", json_string(s));
    json_object_set_new(o, "single_word", json_false());
    json_object_set_new(o, "lstrip", json_false());
    json_object_set_new(o, "rstrip", json_false());
    json_object_set_new(o, "normalized", json_false());
    json_object_set_new(o, "special", json_true());
    return o;
}

/* The fixed parts of a Llama-2-style tokenizer.json (everything but the
 * vocab, merges and added tokens). */
static const char TEMPLATE[] =
    "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": [],"
    " \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": ["
    "  {\"type\": \"Prepend\", \"prepend\": \"\\u2581\"},"
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \" \"}, \"content\": \"\\u2581\"}]},"
    " \"pre_tokenizer\": null,"
    " \"post_processor\": {\"type\": \"TemplateProcessing\","
    "  \"single\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}],"
    "  \"pair\": [{\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 0}}, {\"Sequence\": {\"id\": \"A\", \"type_id\": 0}},"
    "   {\"SpecialToken\": {\"id\": \"<s>\", \"type_id\": 1}}, {\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}],"
    "  \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [1], \"tokens\": [\"<s>\"]}}},"
    " \"decoder\": {\"type\": \"Sequence\", \"decoders\": ["
    "  {\"type\": \"Replace\", \"pattern\": {\"String\": \"\\u2581\"}, \"content\": \" \"},"
    "  {\"type\": \"ByteFallback\"}, {\"type\": \"Fuse\"},"
    "  {\"type\": \"Strip\", \"content\": \" \", \"start\": 1, \"stop\": 0}]},"
    " \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": \"<unk>\", \"continuing_subword_prefix\": null,"
    "  \"end_of_word_suffix\": null, \"fuse_unk\": true, \"byte_fallback\": true, \"ignore_merges\": false}}";

static int build_json(piece *pc, int nv, const char *tok_bin, const char *out_path, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_loads(TEMPLATE, 0, &je);
    DL_ASSERT(root);
    json_t *model = json_object_get(root, "model"), *added = json_object_get(root, "added_tokens");
    json_t *vocab = json_object(), *merges = json_array();
    int rc = 0;
    if (!vocab || !merges) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto out; }
    for (int i = 0; i < nv && !rc; i++) {
        if (json_object_get(vocab, pc[i].s))
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: piece %d \"%s\" appears twice", tok_bin, i, pc[i].s);
        else if (json_object_set_new(vocab, pc[i].s, json_integer(i)))
            rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    for (int i = 0; i < 3 && i < nv && !rc; i++) json_array_append_new(added, added_token(i, pc[i].s));
    /* merges: pieces by decreasing score; every split into two pieces */
    piece *ord = rc ? NULL : malloc(sizeof *ord * (size_t)nv);
    if (!rc && !ord) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    if (!rc) {
        memcpy(ord, pc, sizeof *ord * (size_t)nv);
        qsort(ord, (size_t)nv, sizeof *ord, by_score);
    }
    char buf[4096];
    for (int r = 0; !rc && r < nv; r++) {
        const char *s = ord[r].s;
        size_t n = strlen(s);
        if (ord[r].id < 3 || is_byte_piece(s) || n >= sizeof buf) continue;
        for (size_t k = 1; k < n && !rc; k++) {
            if (((unsigned char)s[k] & 0xc0) == 0x80) continue;      /* split at characters only */
            memcpy(buf, s, k);
            buf[k] = 0;
            if (!json_object_get(vocab, buf) || !json_object_get(vocab, s + k)) continue;
            json_t *pair = json_array();
            if (!pair || json_array_append_new(pair, json_string(buf)) || json_array_append_new(pair, json_string(s + k)) ||
                json_array_append_new(merges, pair))
                rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        }
    }
    free(ord);
    if (!rc) {
        json_object_set(model, "vocab", vocab);
        json_object_set(model, "merges", merges);
        char *text = json_dumps(root, JSON_INDENT(2));
        if (!text) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        else {
            dl_out *out;
            dl_out_opts opts = { 0, 0, 0, 0 };
            if (!(rc = dl_out_open(&out, out_path, &opts, err, errlen))) {
                if ((rc = dl_out_write(out, text, strlen(text), err, errlen))) dl_out_abort(out);
                else rc = dl_out_close(out, err, errlen);
            }
            free(text);
        }
    }
out:
    json_decref(vocab);
    json_decref(merges);
    json_decref(root);
    return rc;
}

int dl_llama2c_tokenizer_json(const char *tok_bin, int n_vocab, const char *out_path, char *err, size_t errlen) {
    char *data;
    size_t len;
    int rc = dl_read_file(tok_bin, &data, &len, err, errlen);
    if (rc) return rc;
    piece *pc = calloc((size_t)n_vocab, sizeof *pc);
    size_t pos = 4;
    if (!pc) { free(data); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    if (len < 4) rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: too short for a llama2.c tokenizer", tok_bin);
    for (int i = 0; i < n_vocab && !rc; i++) {
        if (len - pos < 8) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: truncated at piece %d of the model's %d", tok_bin, i, n_vocab);
            break;
        }
        float score;
        memcpy(&score, data + pos, 4);
        int32_t n = rd_i32((const uint8_t *)data + pos + 4);
        pos += 8;
        if (n <= 0 || (size_t)n > len - pos) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: piece %d: bad length %d (truncated or not a tokenizer)",
                           tok_bin, i, n);
            break;
        }
        const char *s = data + pos;
        pos += (size_t)n;
        if (!utf8_ok((const unsigned char *)s, (size_t)n) || memchr(s, 0, (size_t)n)) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: piece %d is not valid UTF-8", tok_bin, i);
            break;
        }
        /* ids 1, 2: llama2.c's export writes BOS/EOS as "\n<s>\n" / "\n</s>\n" */
        if ((i == 1 && n == 5 && !memcmp(s, "\n<s>\n", 5)) || (i == 2 && n == 6 && !memcmp(s, "\n</s>\n", 6)))
            s++, n -= 2;
        pc[i].s = metaspace(s, (size_t)n);
        pc[i].score = score;
        pc[i].id = i;
        if (!pc[i].s) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    if (!rc && pos != len)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %zu bytes left after the model's %d pieces: tokenizer and model "
                       "vocabularies differ", tok_bin, len - pos, n_vocab);
    if (!rc) rc = build_json(pc, n_vocab, tok_bin, out_path, err, errlen);
    for (int i = 0; i < n_vocab; i++) free(pc[i].s);
    free(pc);
    free(data);
    return rc;
}
