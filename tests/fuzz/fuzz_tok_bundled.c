/* tests/fuzz/fuzz_tok_bundled.c — libFuzzer target: encode arbitrary text with
 * the real GPT-2, Llama-2 and Qwen3 tokenizers, then decode it back.
 *
 * Tokenizers: share/data/NAME-tokenizer/tokenizer.json, else
 * ../shared/data/NAME-tokenizer/tokenizer.json (relative to the directory the
 * target runs in, the repo root under tests/fuzz/run.sh); a missing one is
 * reported once at start and left out.  The input is the text (any bytes).
 *
 * Checked for every tokenizer: every id < vocab size, decode accepts the ids.
 * With x' = x after invalid UTF-8 is replaced by U+FFFD (dl_tok.h's policy,
 * tok_utf8_repair) and decode without skipping special tokens:
 *   GPT-2  (byte-level BPE, no normalizer)        decode(encode(x)) == x'
 *   Qwen3  (byte-level BPE, NFC normalizer)       decode(encode(x)) == NFC(x')
 *          for x' without "<"; with "<", y = decode(encode(x)) is a fixed
 *          point, decode(encode(y)) == y: added tokens ("<think>",
 *          "<|im_end|>", all starting with "<") are matched before
 *          normalization, so NFC never reaches across one ("<think>" +
 *          U+0338 keeps ">" U+0338, where NFC(x') composes U+226F);
 *   Llama-2 (SentencePiece-style: Prepend "▁", Replace " " -> "▁", byte
 *           fallback; decoder Replace "▁" -> " ", ByteFallback, Fuse,
 *           Strip one leading space)
 *          decode(encode(x)) == x' with every U+2581 "▁" turned into " ",
 *          for x' without "<s>", "</s>", "<unk>" (those are matched as
 *          special tokens first, and the text after one gets its own "▁"
 *          prefix, which decodes to an extra space: "a<s>b" -> "a<s> b").
 * Not here: HF parity of the ids (tests/unit/test_tok.c), tokenizer loading
 * of hostile files (fuzz_tok_load.c).
 */
#include <utf8proc.h>
#include "dl_tok.h"
#include "tok_utf8.h"
#include "fuzz_common.h"

enum { GPT2, LLAMA2, QWEN3, N_TOKS };
static const char *const NAMES[N_TOKS] = { "gpt2", "llama2", "qwen3" };
static dl_tok *toks[N_TOKS];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    char path[256], err[512];
    for (int k = 0; k < N_TOKS; k++) {
        snprintf(path, sizeof path, "share/data/%s-tokenizer/tokenizer.json", NAMES[k]);
        if (access(path, R_OK)) snprintf(path, sizeof path, "../shared/data/%s-tokenizer/tokenizer.json", NAMES[k]);
        if (access(path, R_OK)) { fprintf(stderr, "fuzz_tok_bundled: no %s tokenizer, left out\n", NAMES[k]); continue; }
        if (dl_tok_load(&toks[k], path, err, sizeof err)) { fprintf(stderr, "fuzz_tok_bundled: %s\n", err); exit(3); }
    }
    return 0;
}

static int contains(const char *s, size_t n, const char *needle) {
    return memmem(s, n, needle, strlen(needle)) != NULL;
}

/* What decode(encode(x)) must give for tokenizer k, into *want: 1 = that
 * text, 2 = a fixed point (checked by the caller), 0 = no invariant
 * (Llama-2 text holding special-token names). */
static int expected(int k, const dl_strbuf *x, dl_strbuf *want) {
    want->n = 0;
    if (k == GPT2) return dl_strbuf_append(want, x->p, x->n) == 0;
    if (k == QWEN3) {
        if (memchr(x->p, '<', x->n)) return 2;
        utf8proc_uint8_t *nfc = NULL;
        utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)x->p, (utf8proc_ssize_t)x->n, &nfc,
                                          UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        if (r < 0) fz_fail("utf8proc refused repaired UTF-8");
        int ok = dl_strbuf_append(want, nfc, (size_t)r) == 0;
        free(nfc);
        return ok;
    }
    if (contains(x->p, x->n, "<s>") || contains(x->p, x->n, "</s>") || contains(x->p, x->n, "<unk>")) return 0;
    for (size_t i = 0; i < x->n;) {
        if (i + 3 <= x->n && !memcmp(x->p + i, "\xe2\x96\x81", 3)) { dl_strbuf_append(want, " ", 1); i += 3; }
        else dl_strbuf_append(want, x->p + i++, 1);
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    dl_strbuf x = {0}, out = {0}, want = {0};
    dl_u32buf ids = {0};
    if (tok_utf8_repair((const char *)data, size, &x)) fz_fail("tok_utf8_repair failed");
    if (!x.p && dl_strbuf_append(&x, "", 0)) fz_fail("out of memory");
    for (int k = 0; k < N_TOKS; k++) {
        if (!toks[k]) continue;
        ids.n = 0;
        out.n = 0;
        if (dl_tok_encode(toks[k], (const char *)data, size, &ids, err, sizeof err)) {
            fprintf(stderr, "%s: encode: %s\n", NAMES[k], err);
            fz_fail("encode failed");
        }
        uint32_t vocab = dl_tok_vocab_size(toks[k]);
        for (size_t i = 0; i < ids.n; i++)
            if (ids.p[i] >= vocab) fz_fail("encode made an id >= vocab size");
        if (dl_tok_decode(toks[k], ids.p, ids.n, 0, &out, err, sizeof err)) {
            fprintf(stderr, "%s: decode: %s\n", NAMES[k], err);
            fz_fail("decode refused the ids encode made");
        }
        int how = expected(k, &x, &want);
        if (how == 2) {   /* want = decode(encode(out)) */
            dl_u32buf again = {0};
            want.n = 0;
            if (dl_tok_encode(toks[k], out.p ? out.p : "", out.n, &again, err, sizeof err) ||
                dl_tok_decode(toks[k], again.p, again.n, 0, &want, err, sizeof err))
                fz_fail("re-encoding a decode failed");
            dl_u32buf_free(&again);
        }
        if (how && (out.n != want.n || memcmp(out.p ? out.p : "", want.p ? want.p : "", out.n))) {
            fprintf(stderr, "%s: decode(encode(x)) differs: %zu bytes, %zu expected\n", NAMES[k], out.n, want.n);
            fz_fail("round trip");
        }
    }
    dl_strbuf_free(&x);
    dl_strbuf_free(&out);
    dl_strbuf_free(&want);
    dl_u32buf_free(&ids);
    return 0;
}
