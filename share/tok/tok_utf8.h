/* tok_utf8.h — UTF-8 validation and repair, code point classes (tok_utf8.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_utf8.c uses
 * nothing of the engine: it is the bottom of share/tok.
 */
#ifndef TOK_UTF8_H
#define TOK_UTF8_H
#include <stddef.h>
#include <stdint.h>
#include "dl_base.h"

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

#endif
