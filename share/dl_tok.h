/* dl_tok.h — Hugging Face tokenizer.json engine (encode/decode), no Python.
 *
 * Supported (what the models dllm targets use):
 *   model BPE with merges ("a b" strings or [a, b] pairs), unk, byte_fallback,
 *     fuse_unk, ignore_merges;
 *   normalizers: NFC, NFD, NFKC, NFKD, Lowercase, Prepend, Replace (string
 *     pattern), Sequence, null;
 *   pre_tokenizers: ByteLevel (add_prefix_space, use_regex), Split (Regex /
 *     String pattern, behavior Isolated/Removed/MergedWithPrevious/...,
 *     invert), Metaspace, Digits, Sequence, null;
 *   decoders: ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace,
 *     Sequence;
 *   added_tokens matched in the raw text before normalization (longest first,
 *     honouring single_word/lstrip/rstrip/normalized as HF does).
 * truncation / padding / post_processor are ignored: a corpus is never
 * truncated and no special tokens are added by encode (HF
 * add_special_tokens=False); callers add BOS/EOS explicitly.
 * Regexes use PCRE2 (UTF + UCP, JIT); normalization uses utf8proc.
 * Invalid UTF-8 input: replaced by U+FFFD (documented in README).
 */
#ifndef DL_TOK_H
#define DL_TOK_H
#include <stddef.h>
#include <stdint.h>
#include "dl_base.h"

typedef struct dl_tok dl_tok;

/* path: a tokenizer.json, or a directory holding one (a checkpoint).
 * Reads tokenizer_config.json beside it when present for bos/eos/pad names. */
int dl_tok_load(dl_tok **t, const char *path, char *err, size_t errlen);
void dl_tok_free(dl_tok *t);

/* Append the ids of `text` (len bytes, need not be NUL-terminated) to out. */
int dl_tok_encode(dl_tok *t, const char *text, size_t len, dl_u32buf *out, char *err, size_t errlen);
/* Append the decoded text of ids to out.  skip_special: drop special added
 * tokens (as HF decode(skip_special_tokens=True)). ids >= vocab are an error. */
int dl_tok_decode(dl_tok *t, const uint32_t *ids, size_t n, int skip_special, dl_strbuf *out,
                  char *err, size_t errlen);

uint32_t dl_tok_vocab_size(const dl_tok *t);      /* max id + 1 over model vocab and added tokens */
int64_t dl_tok_token_id(const dl_tok *t, const char *token);  /* exact token string, -1 if none */
const char *dl_tok_id_token(const dl_tok *t, uint32_t id);    /* token string or NULL */
int dl_tok_is_special(const dl_tok *t, uint32_t id);
const char *dl_tok_sha256(const dl_tok *t);       /* of the tokenizer.json bytes as loaded/saved */

/* Special ids: from tokenizer_config.json (bos_token/eos_token/pad_token)
 * when present, else well-known names (<|endoftext|>, </s>, <s>, <|im_end|>,
 * <|end_of_text|>, <|begin_of_text|>, <pad>, <|mdm_mask|>, <|mask|>, [MASK]).
 * -1 when absent.  Callers may override with dl_tok_set_special. */
typedef enum { DL_TOK_BOS, DL_TOK_EOS, DL_TOK_PAD, DL_TOK_MASK } dl_tok_special;
int64_t dl_tok_special_id(const dl_tok *t, dl_tok_special which);
void dl_tok_set_special(dl_tok *t, dl_tok_special which, int64_t id);

/* Add a special added token (e.g. "<|mdm_mask|>") with the next free id,
 * unless it exists; returns its id (>= 0) or a negative DL_EXIT_*.  The
 * tokenizer's JSON is updated so dl_tok_save writes it. */
int64_t dl_tok_add_special(dl_tok *t, const char *content, char *err, size_t errlen);
/* Write the (possibly extended) tokenizer.json; updates dl_tok_sha256 to the
 * written bytes. Temp + rename. */
int dl_tok_save(dl_tok *t, const char *path, char *err, size_t errlen);

#endif
