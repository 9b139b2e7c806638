/* tok_utf8.c — UTF-8 validation and lossy repair, code point classes.
 *
 * Repair policy: each maximal invalid subpart (a byte that cannot start a
 * sequence, or the longest prefix of a valid sequence that is cut short)
 * becomes one U+FFFD.  This is Rust's String::from_utf8_lossy and Python's
 * bytes.decode("utf-8", "replace"), so the test fixtures made in Python
 * see the same text as the engine.
 * Classes follow Oniguruma's Unicode \s (= White_Space), \p{L}, \p{N}, which
 * is what HF tokenizers' regexes use; categories come from utf8proc, patched
 * by CLASS_FIX for the letters and digits of Unicode 15.1 / 16.0.
 */
#include <string.h>
#include <utf8proc.h>
#include "tok_utf8.h"

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

/* Code points that HF's Oniguruma (Unicode 16) classes as letters / numbers
 * but utf8proc 2.8 (Unicode 15.0) does not: made by
 * `tests/ref/gen_tok_fixtures.py --ucd` (regenerate when either side moves). */
struct cprange { uint32_t lo, hi; unsigned char cl; };
static const struct cprange CLASS_FIX[] = {
/* CLASS_FIX: 29 ranges, HF tokenizers 0.23.3 vs utf8proc */
    { 0x01C89, 0x01C8A, TOK_CL_L },
    { 0x0A7CB, 0x0A7CD, TOK_CL_L },
    { 0x0A7DA, 0x0A7DC, TOK_CL_L },
    { 0x105C0, 0x105F3, TOK_CL_L },
    { 0x10D40, 0x10D49, TOK_CL_N },
    { 0x10D4A, 0x10D65, TOK_CL_L },
    { 0x10D6F, 0x10D85, TOK_CL_L },
    { 0x10EC2, 0x10EC4, TOK_CL_L },
    { 0x11380, 0x11389, TOK_CL_L },
    { 0x1138B, 0x1138B, TOK_CL_L },
    { 0x1138E, 0x1138E, TOK_CL_L },
    { 0x11390, 0x113B5, TOK_CL_L },
    { 0x113B7, 0x113B7, TOK_CL_L },
    { 0x113D1, 0x113D1, TOK_CL_L },
    { 0x113D3, 0x113D3, TOK_CL_L },
    { 0x116D0, 0x116E3, TOK_CL_N },
    { 0x11BC0, 0x11BE0, TOK_CL_L },
    { 0x11BF0, 0x11BF9, TOK_CL_N },
    { 0x13460, 0x143FA, TOK_CL_L },
    { 0x16100, 0x1611D, TOK_CL_L },
    { 0x16130, 0x16139, TOK_CL_N },
    { 0x16D40, 0x16D6C, TOK_CL_L },
    { 0x16D70, 0x16D79, TOK_CL_N },
    { 0x18CFF, 0x18CFF, TOK_CL_L },
    { 0x1CCF0, 0x1CCF9, TOK_CL_N },
    { 0x1E5D0, 0x1E5ED, TOK_CL_L },
    { 0x1E5F0, 0x1E5F0, TOK_CL_L },
    { 0x1E5F1, 0x1E5FA, TOK_CL_N },
    { 0x2EBF0, 0x2EE5D, TOK_CL_L },
};

/* Marks of Unicode 16.0 that regex-syntax's \w (HF's Whitespace) knows. */
static const struct cprange WORD_FIX[] = {
/* WORD_FIX: 13 ranges */
    { 0x00897, 0x00897, 1 },
    { 0x10D69, 0x10D6D, 1 },
    { 0x10EFC, 0x10EFC, 1 },
    { 0x113B8, 0x113C0, 1 },
    { 0x113C2, 0x113C2, 1 },
    { 0x113C5, 0x113C5, 1 },
    { 0x113C7, 0x113CA, 1 },
    { 0x113CC, 0x113D0, 1 },
    { 0x113D2, 0x113D2, 1 },
    { 0x113E1, 0x113E2, 1 },
    { 0x11F5A, 0x11F5A, 1 },
    { 0x1611E, 0x1612F, 1 },
    { 0x1E5EE, 0x1E5EF, 1 },
};

#define FIND(tab, cp) find_range(tab, sizeof tab / sizeof *tab, cp)
static int find_range(const struct cprange *tab, size_t n, uint32_t cp) {   /* cl or -1 */
    size_t lo = 0, hi = n;
    if (cp < tab[0].lo) return -1;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < tab[mid].lo) hi = mid;
        else if (cp > tab[mid].hi) lo = mid + 1;
        else return tab[mid].cl;
    }
    return -1;
}
static int class_fix(uint32_t cp) { return FIND(CLASS_FIX, cp); }

int tok_cp_class_slow(uint32_t cp) {
    if (tok_cp_is_space(cp)) return TOK_CL_S;
    int f = class_fix(cp);
    if (f >= 0) return f;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: return TOK_CL_L;
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_NO: return TOK_CL_N;
    default: return TOK_CL_OTHER;
    }
}

int tok_cp_is_numeric(uint32_t cp) {
    if (cp < 128) return cp >= '0' && cp <= '9';
    if (class_fix(cp) == TOK_CL_N) return 1;
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

/* regex-syntax's \w (HF's Whitespace pre-tokenizer, single_word): Alphabetic,
 * marks, decimal numbers, connector punctuation, Join_Control.  Alphabetic =
 * letters, Nl and Other_Alphabetic, whose members outside M are the circled /
 * squared letters listed here. */
int tok_cp_is_word(uint32_t cp) {
    if (cp < 128) return tok_ascii_class[cp] == TOK_CL_L || tok_ascii_class[cp] == TOK_CL_N || cp == '_';
    if (cp == 0x200C || cp == 0x200D || (cp >= 0x24B6 && cp <= 0x24E9) || (cp >= 0x1F130 && cp <= 0x1F149) ||
        (cp >= 0x1F150 && cp <= 0x1F169) || (cp >= 0x1F170 && cp <= 0x1F189) || class_fix(cp) > 0 ||
        FIND(WORD_FIX, cp) > 0)
        return 1;
    switch (utf8proc_category((utf8proc_int32_t)cp)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC: return 1;
    default: return 0;
    }
}
