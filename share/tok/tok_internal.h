/* tok_internal.h — private structures of the tokenizer.json engine.
 *
 * Only share/tok/tok_*.c include this; the API is dl_tok.h.  Layout of the
 * engine (one file per purpose):
 *   tok_utf8.c       UTF-8 validation / lossy repair, code point classes
 *   tok_map.c        hash maps: string -> u32 (vocab, word cache), id pair -> merge
 *   tok_load.c       tokenizer.json + tokenizer_config.json -> struct dl_tok, accessors
 *   tok_normalize.c  normalizers (NFC.., Lowercase, Prepend, Replace, Strip, Sequence)
 *   tok_regex.c      regex matching: PCRE2 (UTF+UCP+JIT) and hand-written
 *                    matchers for the GPT-2 and Qwen/Llama-3 split patterns
 *   tok_internal.h   this file
 *   tok_pretok.c     pre-tokenizers (ByteLevel, Split, Metaspace, Digits, ...)
 *   tok_bpe.c        BPE model: merges by rank, byte_fallback, unk, word cache
 *   tok_added.c      added tokens matched before the model; dl_tok_encode
 *   tok_decode.c     decoders and dl_tok_decode
 *   tok_edit.c       dl_tok_add_special, dl_tok_save
 *
 * Conventions: all text inside the engine is valid UTF-8 (dl_tok_encode
 * repairs its input first), handled as (pointer, byte length), never
 * NUL-terminated.  A dl_tok owns scratch buffers, so one dl_tok must not be
 * used by two threads at once (load one per thread).
 */
#ifndef TOK_INTERNAL_H
#define TOK_INTERNAL_H
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>
#include <stdint.h>
#include <stddef.h>
#include "dl_tok.h"

/* ---------------------------------------------------------------- UTF-8 (tok_utf8.c) */
/* Length of the longest valid UTF-8 prefix of s[0..n). */
size_t tok_utf8_valid_len(const char *s, size_t n);
/* Append s to out with every invalid sequence replaced by U+FFFD, one per
 * maximal invalid subpart (the policy of Rust's from_utf8_lossy and of
 * Python's errors="replace"). */
int tok_utf8_repair(const char *s, size_t n, dl_strbuf *out);
/* Decode one code point of VALID UTF-8; returns its byte length. */
static inline int tok_utf8_dec(const unsigned char *s, uint32_t *cp) {
    unsigned c = s[0];
    if (c < 0x80) { *cp = c; return 1; }
    if (c < 0xE0) { *cp = ((c & 0x1Fu) << 6) | (s[1] & 0x3Fu); return 2; }
    if (c < 0xF0) { *cp = ((c & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu); return 3; }
    *cp = ((c & 0x07u) << 18) | ((s[1] & 0x3Fu) << 12) | ((s[2] & 0x3Fu) << 6) | (s[3] & 0x3Fu);
    return 4;
}
/* Byte length of the UTF-8 sequence starting with lead byte c (valid text). */
static inline int tok_utf8_len(unsigned char c) {
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}
int tok_utf8_enc(uint32_t cp, char out[4]);       /* returns byte length */

/* Code point classes as the Oniguruma regexes of HF tokenizers see them. */
enum { TOK_CL_OTHER = 0, TOK_CL_L = 1, TOK_CL_N = 2, TOK_CL_S = 4 };
extern const unsigned char tok_ascii_class[128];
int tok_cp_class_slow(uint32_t cp);                 /* non-ASCII */
static inline int tok_cp_class(uint32_t cp) {
    return cp < 128 ? tok_ascii_class[cp] : tok_cp_class_slow(cp);
}
int tok_cp_is_space(uint32_t cp);    /* Unicode White_Space (Rust char::is_whitespace, onig \s) */
int tok_cp_is_numeric(uint32_t cp);  /* Nd, Nl, No (Rust char::is_numeric) */
int tok_cp_is_word(uint32_t cp);     /* regex-syntax \w: Alphabetic, marks, Nd, Pc, Join_Control */

/* ---------------------------------------------------------------- maps (tok_map.c) */
uint64_t tok_hash(const void *p, size_t n);

/* string -> u32, open addressing; keys are copied into a pool. */
typedef struct {
    uint32_t *slot;            /* cap slots: entry index + 1, 0 = empty */
    struct tok_ment { uint64_t hash; uint32_t off, len, val; } *ent;
    size_t n, ecap, cap;       /* entries, entry capacity, slots (power of 2) */
    char *pool; size_t pool_n, pool_cap;
} tok_strmap;
int tok_strmap_put(tok_strmap *m, const char *s, size_t n, uint32_t val);   /* insert or overwrite; 0 / -1 (no memory) */
int64_t tok_strmap_get(const tok_strmap *m, const char *s, size_t n);      /* value or -1 */
int64_t tok_strmap_get_h(const tok_strmap *m, const char *s, size_t n, uint64_t h);
void tok_strmap_clear(tok_strmap *m);
void tok_strmap_free(tok_strmap *m);

/* (left id, right id) -> (rank, merged id) */
typedef struct { uint64_t key; uint32_t rank, id; } tok_pent;
typedef struct { tok_pent *e; size_t cap, n; int bits; } tok_pairmap;
int tok_pairmap_init(tok_pairmap *m, size_t n_expected);
void tok_pairmap_put(tok_pairmap *m, uint32_t a, uint32_t b, uint32_t rank, uint32_t id); /* overwrite */
static inline const tok_pent *tok_pairmap_get(const tok_pairmap *m, uint32_t a, uint32_t b) {
    uint64_t key = ((uint64_t)a << 32) | b;
    size_t mask = m->cap - 1, i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> (64 - m->bits));
    for (;; i = (i + 1) & mask) {
        const tok_pent *e = &m->e[i];
        if (e->key == key) return e;
        if (e->key == UINT64_MAX) return NULL;
    }
}
void tok_pairmap_free(tok_pairmap *m);

/* ---------------------------------------------------------------- regex (tok_regex.c) */
enum { TOK_RE_PCRE, TOK_RE_LIT, TOK_RE_GPT2, TOK_RE_QWEN };
typedef struct {
    int kind;
    char *lit; size_t litn;    /* TOK_RE_LIT */
    int max_digits;            /* TOK_RE_QWEN: \p{N} (1) or \p{N}{1,3} (3) */
    pcre2_code *code;
    pcre2_match_data *md;
} tok_re;
/* pattern in HF/Oniguruma syntax (translated for PCRE2 where they differ) */
int tok_re_compile(tok_re *re, const char *pat, size_t n, char *err, size_t errlen);
/* Compile a literal string (Split/Replace with a String pattern). */
int tok_re_literal(tok_re *re, const char *lit, size_t n, char *err, size_t errlen);
/* Next non-empty match in s[0..n) at or after pos: 1 and [*ms, *me), or 0. */
int tok_re_next(tok_re *re, const char *s, size_t n, size_t pos, size_t *ms, size_t *me);
void tok_re_free(tok_re *re);

/* ---------------------------------------------------------------- pipeline parts */
typedef struct { size_t a, b; int m; } tok_span;     /* [a, b), m = is a match */
typedef struct { tok_span *v; size_t n, cap; } tok_spans;
int tok_spans_push(tok_spans *s, size_t a, size_t b, int m);

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

/* tok_load.c */
int tok_is_fallback_name(int which, const char *s);   /* s is a well-known name for role which (dl_tok.h) */
int tok_set_id_token(dl_tok *t, uint32_t id, const char *s, size_t n);
int tok_parse_added(dl_tok *t, const char *s, size_t n, uint32_t id, int special,
                    int single_word, int lstrip, int rstrip, int normalized);

/* tok_normalize.c */
int tok_norm_parse(dl_tok *t, const void *json, char *err, size_t errlen);  /* json_t * */
/* Normalize s[0..n) through the whole normalizer chain into out (replaced).
 * z (may be NULL): in, the byte length of the leading characters of s whose
 * original offset is 0; out, the same for the result, following HF's
 * alignment rules (see tok_pre_run). */
int tok_normalize(dl_tok *t, const char *s, size_t n, dl_strbuf *out, size_t *z);
void tok_norm_free(dl_tok *t);

/* tok_pretok.c */
int tok_pre_parse(dl_tok *t, const void *json, char *err, size_t errlen);
/* Pre-tokenize one piece and feed the words to the model (appending ids).
 * z: byte length of the piece's leading characters that HF aligns to
 * original offset 0 (Metaspace prepend_scheme "first" prepends only there). */
int tok_pre_run(dl_tok *t, const char *s, size_t n, size_t z, dl_u32buf *out);
void tok_pre_free(dl_tok *t);
extern const uint16_t tok_byte_char[256];   /* byte -> byte-level code point */
int tok_char_byte(uint32_t cp);             /* byte-level code point -> byte, or -1 */
/* Metaspace "replacement" (default U+2581) and "prepend_scheme" (or legacy add_prefix_space) */
int tok_parse_replacement(const void *json, char repl[8], int *n);
int tok_parse_prepend(const void *json, int *scheme);

/* tok_bpe.c */
int tok_bpe_parse(dl_tok *t, const void *model_json, char *err, size_t errlen);
/* Encode one word.  raw: s holds raw bytes to be seen as byte-level chars. */
int tok_bpe_build_raw_vocab(dl_tok *t);   /* for ignore_merges on byte-level words */
int tok_bpe_check_meta_split(tok_bpe *b);
int tok_bpe_word(dl_tok *t, const char *s, size_t n, int raw, dl_u32buf *out);
void tok_bpe_free(tok_bpe *b);

/* tok_added.c */
int tok_added_build(dl_tok *t);       /* (re)build raw_set / norm_set after changes */
void tok_added_free(dl_tok *t);

/* tok_decode.c */
int tok_dec_parse(dl_tok *t, const void *json, char *err, size_t errlen);
void tok_dec_free(dl_tok *t);

#endif
