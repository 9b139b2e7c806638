/* tok/tok.h — what the files of dllm-tok share (not a library API).
 *
 *   main.c    options, tokenizer set-up (special ids, mask token), dispatch
 *   input.c   documents from plain text (whole / --lines / --split), JSONL,
 *             and `text` msgpack streams
 *   json.c    JSON <-> msgpack values (carried keys), UTF-8 repair
 *   encode.c  documents -> `tokens` records
 *   decode.c  tokens / rows / masked / samples records -> text or JSONL
 *   train.c   `dllm-tok train` (BPE training, see tok_train.h)
 *
 * Conventions as in share/: functions return 0 (or 1 = "got one") and a
 * negative DL_EXIT_* with a one-line message in err; only main() exits.
 */
#ifndef TK_TOK_H
#define TK_TOK_H
#include <stdint.h>
#include <jansson.h>
#include <msgpack.h>
#include "dl_base.h"
#include "dl_opts.h"
#include "dl_stream.h"
#include "dl_tok.h"
#include "dl_chat.h"

/* ------------------------------------------------------------ options */
typedef struct {
    dl_common common;
    const char *tk_path;      /* -t: tokenizer.json or a directory holding one */
    int decode;                /* -d */
    int bos, eos;              /* --bos / --eos: add per document */
    int jsonl;                 /* --jsonl: inputs (encode) / output (decode) are JSONL */
    int lines;                 /* --lines: one document per line */
    const char *split;         /* --split STR: documents separated by STR */
    const char *chat_template; /* --chat-template NAME ("auto") */
    int add_mask;              /* --add-mask-token */
    const char *save_tok;      /* -T OUT.json */
    const char *bos_token, *eos_token, *pad_token, *mask_token;  /* overrides by text */
    int skip_special;          /* -d --skip-special */
    const char *key;           /* -d --key: ids key to decode (default by kind) */
    int ids_out;               /* -d --ids: print ids as numbers */
    int strict;                /* -d --strict: tokenizer mismatch is an error */
    long long threads;         /* encode threads */
} tk_cfg;

/* ------------------------------------------------------------ chat
 * Chat templates live in share/tok/dl_chat.h (dllm-sample --chat uses them too). */

/* ------------------------------------------------------------ documents */
typedef struct {
    dl_strbuf prompt;     /* the text of a plain document, or the prompt */
    dl_strbuf response;   /* sft only */
    int sft;              /* 1: prompt + response, n_prompt is written */
    dl_strbuf extra;      /* carried keys: n_extra packed msgpack key/value pairs */
    uint32_t n_extra;
    char where[320];      /* "FILE: line N" for messages */
    uint64_t index;       /* global document index (before --shard slicing) */
    /* filled by encoding */
    dl_u32buf ids;
    uint64_t n_prompt;
    int rc;
    char err[512];
} tk_doc;
void tk_doc_reset(tk_doc *d);   /* empty it, keep allocations */
void tk_doc_free(tk_doc *d);

typedef struct tk_input tk_input;
/* path NULL or "-" = stdin.  JSONL when cfg->jsonl or the name ends in
 * .jsonl / .jsonl.zst; a `text` msgpack stream when the data starts with a
 * dllm header (any other kind is an error); else plain text split per cfg. */
int tk_input_open(tk_input **in, const char *path, const tk_cfg *cfg, const dl_chat *chat,
                   char *err, size_t errlen);
/* 1 = *d filled (d is reset first), 0 = end of this input, <0 = error
 * naming file and line/record. */
int tk_input_next(tk_input *in, tk_doc *d, char *err, size_t errlen);
/* The `text` stream header of this input, NULL for text / JSONL. */
const dl_header *tk_input_header(const tk_input *in);
uint64_t tk_input_raw_bytes(const tk_input *in);   /* bytes read from disk/pipe */
void tk_input_close(tk_input *in);

/* ------------------------------------------------------------ json.c */
/* Pack a JSON value as msgpack (str, int, float64, bool, nil, array, map). */
int tk_json_pack(msgpack_packer *pk, const json_t *v);
/* msgpack -> JSON; bin and ext become NULL (not representable) and set
 * *dropped.  Strings are repaired to valid UTF-8.  New reference. */
json_t *tk_msgpack_to_json(const msgpack_object *o, int *dropped);
/* Append s with every invalid UTF-8 sequence replaced by U+FFFD. */
int tk_utf8_repair(const char *s, size_t n, dl_strbuf *out);

/* ------------------------------------------------------------ runs */
/* toks: ntok identically set-up tokenizers, one per thread (cfg->threads);
 * toks[0]'s sha256 / ids go into the header. */
int tk_encode_run(const tk_cfg *cfg, dl_tok **toks, int ntok, char **paths, int npaths);
int tk_decode_run(const tk_cfg *cfg, dl_tok *tok, char **paths, int npaths);

#endif
