/* tok_utf8.c — UTF-8 validation and lossy repair, code point classes.
 *
 * Repair policy: each maximal invalid subpart (a byte that cannot start a
 * sequence, or the longest prefix of a valid sequence that is cut short)
 * becomes one U+FFFD.  This is Rust's String::from_utf8_lossy and Python's
 * bytes.decode("utf-8", "replace"), so the test fixtures made in Python
 * see the same text as the engine.
 * Classes follow Oniguruma's Unicode \s (= White_Space), \p{L}, \p{N}, which
 * is what HF tokenizers' regexes use; categories come from utf8proc.
 */
#include <string.h>
#include <utf8proc.h>
#include "tok_internal.h"

/* Second-byte range for lead byte c (0 len = invalid lead). */
static int lead_info(unsigned c, unsigned *lo, unsigned *hi) {
    *lo = 0x80; *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) return 2;
    if (c == 0xE0) { *lo = 0xA0; return 3; }
    if (c == 0xED) { *hi = 0x9F; return 3; }
    if (c >= 0xE1 && c <= 0xEF) return 3;
    if (c == 0xF0) { *lo = 0x90; return 4; }
    if (c >= 0xF1 && c <= 0xF3) return 4;
    if (c == 0xF4) { *hi = 0x8F; return 4; }
    return 0;
}

/* Length of the valid sequence at s[i] (0 when invalid). */
static size_t seq_len(const unsigned char *s, size_t n, size_t i) {
    unsigned lo, hi;
    int len = lead_info(s[i], &lo, &hi);
    if (!len || i + (size_t)len > n) return 0;
    if (s[i + 1] < lo || s[i + 1] > hi) return 0;
    for (int k = 2; k < len; k++)
        if ((s[i + k] & 0xC0) != 0x80) return 0;
    return (size_t)len;
}

size_t tok_utf8_valid_len(const char *str, size_t n) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {               /* 8 ASCII bytes at a time */
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) { i += 8; continue; }
        }
        if (s[i] < 0x80) { i++; continue; }
        size_t l = seq_len(s, n, i);
        if (!l) return i;
        i += l;
    }
    return n;
}

int tok_utf8_repair(const char *str, size_t n, dl_strbuf *out) {
    const unsigned char *s = (const unsigned char *)str;
    static const char fffd[3] = { (char)0xEF, (char)0xBF, (char)0xBD };
    size_t i = 0;
    while (i < n) {
        size_t v = tok_utf8_valid_len(str + i, n - i);
        if (v && dl_strbuf_append(out, str + i, v)) return -1;
        i += v;
        if (i >= n) break;
        /* invalid at i: skip the maximal subpart */
        unsigned lo, hi;
        int len = lead_info(s[i], &lo, &hi);
        size_t j = i + 1;
        if (len && j < n && s[j] >= lo && s[j] <= hi) {
            j++;
            for (int k = 2; k < len && j < n && (s[j] & 0xC0) == 0x80; k++) j++;
        }
        if (dl_strbuf_append(out, fffd, 3)) return -1;
        i = j;
    }
    return 0;
}

int tok_utf8_enc(uint32_t cp, char out[4]) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) { out[0] = (char)(0xC0 | (cp >> 6)); out[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12)); out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F)); return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18)); out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ---------------------------------------------------------------- classes */
#define L_ TOK_CL_L
#define N_ TOK_CL_N
#define S_ TOK_CL_S
const unsigned char tok_ascii_class[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, S_, S_, S_, S_, S_, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    S_, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    N_, N_, N_, N_, N_, N_, N_, N_, N_, N_, 0, 0, 0, 0, 0, 0,
    0, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_,
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, 0, 0, 0, 0, 0,
    0, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_,
    L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, L_, 0, 0, 0, 0, 0,
};

int tok_cp_is_space(uint32_t cp) {
    if (cp < 128) return tok_ascii_class[cp] == TOK_CL_S;
    switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F:
    case 0x205F: case 0x3000: return 1;
    default: return cp >= 0x2000 && cp <= 0x200A;
    }
}

int tok_cp_class_slow(uint32_t cp) {
    if (tok_cp_is_space(cp)) return TOK_CL_S;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: return TOK_CL_L;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return TOK_CL_N;
    default: return TOK_CL_OTHER;
    }
}

int tok_cp_is_numeric(uint32_t cp) {
    if (cp < 128) return cp >= '0' && cp <= '9';
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

int tok_cp_is_word(uint32_t cp) {
    if (cp < 128) return tok_ascii_class[cp] == TOK_CL_L || tok_ascii_class[cp] == TOK_CL_N || cp == '_';
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: case UTF8PROC_CATEGORY_PC: return 1;
    default: return 0;
    }
}
