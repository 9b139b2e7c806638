/* dl_tok.h — Hugging Face tokenizer.json engine (encode/decode), no Python.
 *
 * Goal: ids identical to HF `tokenizers` encode(text, add_special_tokens=False)
 * (checked by tests/unit/test_tok.c against fixtures from HF, see
 * tests/ref/gen_tok_fixtures.py).  Supported (what the models dllm targets use):
 *   model BPE with merges ("a b" strings or [a, b] pairs), unk, byte_fallback,
 *     fuse_unk, ignore_merges, continuing_subword_prefix, end_of_word_suffix
 *     (dropout is ignored: encoding is deterministic);
 *   normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace (String or
 *     Regex pattern), Strip, StripAccents, Sequence, null;
 *   pre_tokenizers: ByteLevel (add_prefix_space, use_regex), Split (Regex /
 *     String pattern, behavior Isolated/Removed/MergedWithPrevious/
 *     MergedWithNext/Contiguous, invert), Metaspace (prepend_scheme
 *     always/first/never, split), Digits, Whitespace, WhitespaceSplit,
 *     Punctuation, Sequence, null;
 *   decoders: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace,
 *     BPEDecoder, Sequence, null (tokens joined with spaces);
 *   added_tokens matched in the raw text before normalization (normalized
 *     ones in the normalized text), leftmost-longest, honouring
 *     single_word/lstrip/rstrip/normalized as HF does.
 * Other model types (WordPiece, Unigram, WordLevel) and normalizers /
 * pre-tokenizers / decoders not listed (BertNormalizer, Precompiled, ...)
 * make dl_tok_load fail with a message naming them.
 * truncation / padding / post_processor are ignored: a corpus is never
 * truncated and no special tokens are added by encode (HF
 * add_special_tokens=False); callers add BOS/EOS explicitly.
 * Regexes use PCRE2 (UTF + UCP, JIT; Oniguruma's \s \w \h translated), with
 * hand-written matchers for the GPT-2 and Qwen2/Llama-3 split patterns;
 * normalization uses utf8proc.
 * Invalid UTF-8 input (HF would refuse the str): each maximal invalid
 * subsequence is replaced by U+FFFD before encoding (the policy of Python's
 * bytes.decode("utf-8", "replace") and Rust's from_utf8_lossy).
 * Known differences from HF: characters assigned in recent Unicode versions
 * may normalize differently (HF's normalization tables are older than
 * utf8proc's 15.0; letters/digits of Unicode 15.1/16 are patched in for the
 * split patterns), and PCRE2 10.42's Unicode 14 data applies to patterns
 * other than the three hand-written ones.  A vocab key containing "\u0000"
 * cannot be loaded (jansson object keys).
 * Threads: a dl_tok keeps scratch buffers and a word cache, so it must not
 * be used by two threads at once (load one per thread).
 */
#ifndef DL_TOK_H
#define DL_TOK_H
#include <stddef.h>
#include <stdint.h>
#include "dl_base.h"

typedef struct dl_tok dl_tok;

/* path: a tokenizer.json, or a directory holding one (a checkpoint).
 * Reads tokenizer_config.json beside it when present for bos/eos/pad names.
 * Errors: -DL_EXIT_IO (cannot read), -DL_EXIT_DATA (bad or unsupported
 * tokenizer.json), with a message naming the file. */
int dl_tok_load(dl_tok **t, const char *path, char *err, size_t errlen);
void dl_tok_free(dl_tok *t);

/* Append the ids of `text` (len bytes, need not be NUL-terminated, may hold
 * NUL bytes and invalid UTF-8, see above) to out.  On error out may hold a
 * partial result. */
int dl_tok_encode(dl_tok *t, const char *text, size_t len, dl_u32buf *out, char *err, size_t errlen);
/* Append the decoded text of ids to out.  skip_special: drop special added
 * tokens (as HF decode(skip_special_tokens=True)). ids >= vocab, or ids no
 * token has, are an error (-DL_EXIT_DATA naming the id and its position);
 * HF silently skips them. */
int dl_tok_decode(dl_tok *t, const uint32_t *ids, size_t n, int skip_special, dl_strbuf *out,
                  char *err, size_t errlen);

uint32_t dl_tok_vocab_size(const dl_tok *t);      /* max id + 1 over model vocab and added tokens */
int64_t dl_tok_token_id(const dl_tok *t, const char *token);  /* exact token string, -1 if none */
/* Token string or NULL (a normalized added token gives its normalized
 * content, as HF's id_to_token); valid until dl_tok_add_special / dl_tok_free. */
const char *dl_tok_id_token(const dl_tok *t, uint32_t id);
int dl_tok_is_special(const dl_tok *t, uint32_t id);
const char *dl_tok_sha256(const dl_tok *t);       /* of the tokenizer.json bytes as loaded/saved */

/* Special ids: from tokenizer_config.json (bos_token/eos_token/pad_token/
 * mask_token; a key present with null means none) when present, else the
 * first well-known name the vocab has:
 *   BOS  <|begin_of_text|> <s> <|startoftext|> <|endoftext|>
 *   EOS  <|end_of_text|> </s> <|endoftext|> <|im_end|> <|eot_id|>
 *   PAD  <pad> <|pad|> [PAD]
 *   MASK <|mdm_mask|> <|mask|> [MASK] <mask>
 * -1 when absent.  Callers may override with dl_tok_set_special. */
typedef enum { DL_TOK_BOS, DL_TOK_EOS, DL_TOK_PAD, DL_TOK_MASK } dl_tok_special;
int64_t dl_tok_special_id(const dl_tok *t, dl_tok_special which);
void dl_tok_set_special(dl_tok *t, dl_tok_special which, int64_t id);

/* Add a special added token (e.g. "<|mdm_mask|>") with the next free id
 * (= dl_tok_vocab_size(), normalized=false, the id HF assigns when it loads
 * the saved file), unless it exists; returns its id (>= 0) or a negative
 * DL_EXIT_*.  It takes the roles still -1 whose names above include it (so
 * adding <|mdm_mask|> sets DL_TOK_MASK).  dl_tok_save writes it. */
int64_t dl_tok_add_special(dl_tok *t, const char *content, char *err, size_t errlen);
/* Write the (possibly extended) tokenizer.json; updates dl_tok_sha256 to the
 * written bytes. Temp + rename.  "truncation" and "padding" are written as
 * null (dllm ignores them; HF would apply them to the saved checkpoint). */
int dl_tok_save(dl_tok *t, const char *path, char *err, size_t errlen);

#endif
