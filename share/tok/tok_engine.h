/* tok_engine.h — the types of the tokenizer engine: struct dl_tok and its
 * parts (normalizers, pre-tokenizers, BPE model, added tokens, decoders).
 *
 * Private to share/tok (the API is dl_tok.h).  Types only: no function of a
 * part is declared here (each part has its own tok_<part>.h), so including
 * this creates no call dependency between files.
 *
 * Conventions: all text inside the engine is valid UTF-8 (dl_tok_encode
 * repairs its input first), handled as (pointer, byte length), never
 * NUL-terminated.  A dl_tok owns scratch buffers, so one dl_tok must not be
 * used by two threads at once (load one per thread).
 */
#ifndef TOK_ENGINE_H
#define TOK_ENGINE_H
#include <stddef.h>
#include <stdint.h>
#include "dl_tok.h"
#include "tok_map.h"
#include "tok_regex.h"

enum { TOK_N_NFC, TOK_N_NFD, TOK_N_NFKC, TOK_N_NFKD, TOK_N_LOWER, TOK_N_PREPEND,
       TOK_N_REPLACE, TOK_N_STRIP, TOK_N_STRIP_ACCENTS };
typedef struct {
    int kind;
    char *a; size_t an;        /* Prepend text */
    char *b; size_t bn;        /* Replace content */
    tok_re re; int has_re;     /* Replace pattern (literal or regex) */
    int left, right;           /* Strip */
} tok_norm;

enum { TOK_P_BYTELEVEL, TOK_P_SPLIT, TOK_P_METASPACE, TOK_P_DIGITS, TOK_P_WHITESPACE,
       TOK_P_WSPLIT, TOK_P_PUNCT };
enum { TOK_B_REMOVED, TOK_B_ISOLATED, TOK_B_MERGED_PREV, TOK_B_MERGED_NEXT, TOK_B_CONTIGUOUS };
enum { TOK_PREPEND_ALWAYS, TOK_PREPEND_FIRST, TOK_PREPEND_NEVER };
typedef struct {
    int kind;
    tok_re re; int has_re;     /* Split (regex or literal), ByteLevel use_regex */
    int behavior, invert;      /* Split; also used for Punctuation */
    int add_prefix_space;      /* ByteLevel */
    char repl[8]; int repl_n;  /* Metaspace replacement (UTF-8) */
    int prepend, split;        /* Metaspace */
    int individual;            /* Digits */
    /* scratch, reused per call */
    dl_strbuf buf, buf2;
    tok_spans spans;
} tok_pre;

enum { TOK_D_BYTELEVEL, TOK_D_REPLACE, TOK_D_BYTEFALLBACK, TOK_D_FUSE, TOK_D_STRIP,
       TOK_D_METASPACE, TOK_D_BPE };
typedef struct {
    int kind;
    char *a; size_t an;        /* BPEDecoder suffix */
    char *b; size_t bn;        /* Replace content */
    tok_re re; int has_re;
    uint32_t ch; int start, stop;   /* Strip */
    char repl[8]; int repl_n; int prepend;  /* Metaspace */
} tok_dec;

typedef struct {
    char *s; size_t n;         /* content */
    char *norm; size_t normn;  /* content after the normalizer (normalized tokens) */
    uint32_t id;
    unsigned char special, single_word, lstrip, rstrip, normalized;
} tok_added;

/* One set of added tokens matched leftmost-longest: raw (normalized=false,
 * matched in the input) or normalized (matched in each normalized piece). */
typedef struct {
    uint32_t *idx;             /* indexes into t->added, by first byte then length desc */
    uint32_t lo[257];          /* idx range of tokens starting with byte c: [lo[c], lo[c+1]) */
    size_t n;
    int normalized;
    const struct dl_tok *sort_t;
} tok_aset;

typedef struct { size_t a, b; int64_t id; } tok_seg;   /* id < 0: text to encode */
typedef struct { tok_seg *v; size_t n, cap; } tok_segs;

/* BPE model */
typedef struct {
    tok_strmap vocab;          /* token string -> id */
    tok_pairmap merges;
    int64_t unk_id;
    int fuse_unk, byte_fallback, ignore_merges;
    char *prefix, *suffix;     /* continuing_subword_prefix / end_of_word_suffix, NULL if empty */
    size_t prefix_n, suffix_n;
    int32_t byte_fb[256];      /* id of "<0xXX>" or -1 */
    int32_t byte_sym[256];     /* id of the byte-level char of each byte, or -1 */
    int bytelevel_ok;          /* all 256 byte_sym exist and no prefix/suffix */
    int meta_split;            /* long words may be cut before U+2581 (tok_bpe_check_meta_split) */
    tok_strmap raw_vocab;      /* raw bytes -> id (byte-level + ignore_merges only) */
    /* word cache: key bytes -> (off, n) in cache_ids */
    tok_strmap cache;
    uint32_t *cache_ids; size_t cache_n, cache_cap;
    struct { uint32_t off, n; } *cache_ent; size_t cache_en, cache_ecap;
    /* merge scratch */
    uint32_t *sym; int32_t *prev, *next; uint32_t *rank, *nid; uint64_t *heap;
    size_t scap, hcap;
} tok_bpe;

struct dl_tok {
    char *json; size_t json_len;   /* tokenizer.json bytes as loaded/saved */
    char sha[65];
    char *path;                    /* the tokenizer.json path */
    uint32_t vocab_n;              /* max id + 1 */
    uint64_t id_limit;             /* while loading: ids must be below this (set_id_limit, tok_load.c) */
    char id_limit_why[160];        /* the rule, for the error message */
    /* id -> token string (added tokens override the model) */
    uint32_t *id_off, *id_len;     /* UINT32_MAX = no token with that id */
    size_t id_cap;
    char *id_pool; size_t id_pool_n, id_pool_cap;
    unsigned char *id_flags;       /* bit 0 special, bit 1 added */
    /* added tokens */
    tok_added *added; size_t n_added, cap_added;
    tok_strmap added_map;          /* content -> index in added */
    tok_aset raw_set, norm_set;
    size_t n_new_added;            /* appended by dl_tok_add_special (last ones in added[]) */
    /* pipeline */
    tok_norm *norm; int n_norm;    /* flattened Sequence; 0 = none */
    tok_pre *pre; int n_pre;
    int pre_bytelevel_last;        /* last pre-tokenizer is ByteLevel and BPE takes raw bytes */
    tok_bpe bpe;
    tok_dec *dec; int n_dec; int has_decoder;
    int64_t special[4];
    /* scratch */
    dl_strbuf repaired, normbuf, normtmp, wordbuf;
    tok_segs segs, nsegs;
};

#define TOK_FLAG_SPECIAL 1
#define TOK_FLAG_ADDED 2
#define TOK_FLAG_SKIP 4     /* dropped by decode(skip_special): its string is a special token's content */

#endif
