/* tok_regex.c — the regexes of Split / ByteLevel / Replace.
 *
 * HF tokenizers runs its patterns with Oniguruma.  We use PCRE2 (UTF + UCP,
 * JIT) after translating the escapes whose meaning differs: \s (PCRE2 adds
 * U+180E; Oniguruma's is exactly White_Space), \w (Oniguruma: Alphabetic,
 * marks, numbers, connector punctuation; PCRE2 10.42: letters, numbers, _)
 * and \h (Oniguruma: a hex digit).  The negated forms are translated outside
 * character classes only.  The three patterns nearly every byte-level tokenizer
 * uses are recognised by their exact text and run by hand-written matchers
 * (same leftmost-first alternation semantics, ~5x faster than JIT):
 *   GPT-2   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 *   Qwen2/3 (?i:'s|..|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
 *   Llama-3 the same with \p{N}{1,3}
 * Both cover every character, so a match always starts where the last
 * ended.  (?i) in Oniguruma folds ASCII only here ('ſ is not 's), as below.
 * Empty matches are skipped (HF drops empty splits).
 */
#include <stdlib.h>
#include <string.h>
#include "tok_regex.h"
#include "tok_utf8.h"

static const char GPT2_PAT[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
static const char QWEN_PAT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
static const char LLAMA3_PAT[] =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
    "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

#define WS_SET "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}"
#define W_SET "\\p{Alphabetic}\\p{M}\\p{N}\\p{Pc}"
#define H_SET "0-9a-fA-F"

/* Rewrite Oniguruma \s \w \h (and negations) for PCRE2 (see top). */
static char *translate(const char *p, size_t n) {
    dl_strbuf b = { 0 };
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (c == '\\' && i + 1 < n) {
            char d = p[i + 1];
            const char *set = d == 's' || d == 'S' ? WS_SET : d == 'w' || d == 'W' ? W_SET
                            : d == 'h' || d == 'H' ? H_SET : NULL;
            int neg = d == 'S' || d == 'W' || d == 'H';
            if (set && !neg) {
                if ((!in_class && dl_strbuf_puts(&b, "[")) || dl_strbuf_puts(&b, set) ||
                    (!in_class && dl_strbuf_puts(&b, "]"))) goto oom;
            } else if (set && !in_class) {
                if (dl_strbuf_puts(&b, "[^") || dl_strbuf_puts(&b, set) || dl_strbuf_puts(&b, "]")) goto oom;
            } else if (dl_strbuf_append(&b, p + i, 2)) goto oom;
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            if (dl_strbuf_append(&b, &c, 1)) goto oom;
            /* a ']' right after '[' or '[^' is literal */
            if (i + 1 < n && p[i + 1] == '^') { if (dl_strbuf_append(&b, "^", 1)) goto oom; i++; }
            if (i + 1 < n && p[i + 1] == ']') { if (dl_strbuf_append(&b, "]", 1)) goto oom; i++; }
            continue;
        }
        if (in_class && c == ']') in_class = 0;
        if (dl_strbuf_append(&b, &c, 1)) goto oom;
    }
    if (!b.p && dl_strbuf_append(&b, "", 0)) goto oom;
    return b.p;
oom:
    dl_strbuf_free(&b);
    return NULL;
}

int tok_re_compile(tok_re *re, const char *pat, size_t n, char *err, size_t errlen) {
    memset(re, 0, sizeof *re);
    if (n == sizeof GPT2_PAT - 1 && !memcmp(pat, GPT2_PAT, n)) { re->kind = TOK_RE_GPT2; return 0; }
    if (n == sizeof QWEN_PAT - 1 && !memcmp(pat, QWEN_PAT, n)) {
        re->kind = TOK_RE_QWEN; re->max_digits = 1; return 0;
    }
    if (n == sizeof LLAMA3_PAT - 1 && !memcmp(pat, LLAMA3_PAT, n)) {
        re->kind = TOK_RE_QWEN; re->max_digits = 3; return 0;
    }
    re->kind = TOK_RE_PCRE;
    char *tp = translate(pat, n);
    if (!tp) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int ec; PCRE2_SIZE eo;
    re->code = pcre2_compile((PCRE2_SPTR)tp, strlen(tp), PCRE2_UTF | PCRE2_UCP, &ec, &eo, NULL);
    free(tp);
    if (!re->code) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(ec, msg, sizeof msg);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "regex \"%.*s\": %s", (int)(n > 80 ? 80 : n), pat,
                         (const char *)msg);
    }
    pcre2_jit_compile(re->code, PCRE2_JIT_COMPLETE);   /* falls back to the interpreter on failure */
    re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
    if (!re->md) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    return 0;
}

int tok_re_literal(tok_re *re, const char *lit, size_t n, char *err, size_t errlen) {
    memset(re, 0, sizeof *re);
    re->kind = TOK_RE_LIT;
    re->lit = malloc(n + 1);
    if (!re->lit) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    memcpy(re->lit, lit, n);
    re->lit[n] = 0;
    re->litn = n;
    return 0;
}

void tok_re_free(tok_re *re) {
    if (re->md) pcre2_match_data_free(re->md);
    if (re->code) pcre2_code_free(re->code);
    free(re->lit);
    memset(re, 0, sizeof *re);
}

/* ---------------------------------------------------------------- hand-written matchers */
static inline int cls_at(const unsigned char *s, size_t i, int *len) {
    if (s[i] < 0x80) { *len = 1; return tok_ascii_class[s[i]]; }
    uint32_t c;
    *len = tok_utf8_dec(s + i, &c);
    return tok_cp_class_slow(c);
}

/* End of the run of code points of class cl starting at i. */
static inline size_t run_of(const unsigned char *s, size_t n, size_t i, int cl) {
    while (i < n) {
        if (s[i] < 0x80) {
            if (tok_ascii_class[s[i]] != cl) break;
            i++;
        } else {
            int l;
            if (cls_at(s, i, &l) != cl) break;
            i += (size_t)l;
        }
    }
    return i;
}

/* Whitespace run from i: end k, start of its last char, end of its last CR/LF (0 if none). */
static inline size_t ws_run(const unsigned char *s, size_t n, size_t i, size_t *last, size_t *lastnl) {
    *last = i; *lastnl = 0;
    while (i < n) {
        int l;
        if (cls_at(s, i, &l) != TOK_CL_S) break;
        if (s[i] == '\r' || s[i] == '\n') *lastnl = i + 1;
        *last = i;
        i += (size_t)l;
    }
    return i;
}

static inline size_t contraction(const unsigned char *s, size_t n, size_t i, int fold) {
    if (i + 1 >= n) return 0;
    unsigned d = s[i + 1], e = i + 2 < n ? s[i + 2] : 0;
    if (fold) { d |= 0x20; e |= 0x20; }   /* only compared with lowercase letters */
    if (d == 's' || d == 't' || d == 'm' || d == 'd') return i + 2;
    if ((d == 'r' && e == 'e') || (d == 'v' && e == 'e') || (d == 'l' && e == 'l')) return i + 3;
    return 0;
}

static size_t gpt2_at(const unsigned char *s, size_t n, size_t i) {
    size_t j;
    if (s[i] == '\'' && (j = contraction(s, n, i, 0))) return j;
    int l0, c0 = cls_at(s, i, &l0);
    if (s[i] == ' ' && i + 1 < n) {
        int l1, c1 = cls_at(s, i + 1, &l1);
        if (c1 != TOK_CL_S) return run_of(s, n, i + 1, c1);
    }
    if (c0 != TOK_CL_S) return run_of(s, n, i, c0);
    size_t last, lastnl, k = ws_run(s, n, i, &last, &lastnl);
    if (k == n) return n;                 /* \s+(?!\S) at the end */
    return last > i ? last : k;           /* \s+(?!\S) leaves the last one; else \s+ */
}

static size_t qwen_at(const unsigned char *s, size_t n, size_t i, int max_digits) {
    size_t j;
    if (s[i] == '\'' && (j = contraction(s, n, i, 1))) return j;
    int l0, c0 = cls_at(s, i, &l0);
    if (c0 == TOK_CL_L) return run_of(s, n, i, TOK_CL_L);
    if (c0 != TOK_CL_N && s[i] != '\r' && s[i] != '\n' && i + (size_t)l0 < n) {
        int l1;
        if (cls_at(s, i + (size_t)l0, &l1) == TOK_CL_L) return run_of(s, n, i + (size_t)l0, TOK_CL_L);
    }
    if (c0 == TOK_CL_N) {
        j = i + (size_t)l0;
        for (int d = 1; d < max_digits && j < n; d++) {
            int l;
            if (cls_at(s, j, &l) != TOK_CL_N) break;
            j += (size_t)l;
        }
        return j;
    }
    size_t k = i;
    if (s[i] == ' ' && i + 1 < n) {
        int l1;
        if (cls_at(s, i + 1, &l1) == TOK_CL_OTHER) k = i + 1;
    }
    if (k > i || c0 == TOK_CL_OTHER) {
        j = run_of(s, n, k, TOK_CL_OTHER);
        while (j < n && (s[j] == '\r' || s[j] == '\n')) j++;
        return j;
    }
    size_t last, lastnl;
    k = ws_run(s, n, i, &last, &lastnl);
    if (lastnl) return lastnl;            /* \s*[\r\n]+ */
    if (k == n) return n;
    return last > i ? last : k;
}

int tok_re_next(tok_re *re, const char *str, size_t n, size_t pos, size_t *ms, size_t *me) {
    const unsigned char *s = (const unsigned char *)str;
    if (pos >= n) return 0;
    switch (re->kind) {
    case TOK_RE_GPT2:
        *ms = pos; *me = gpt2_at(s, n, pos);
        return 1;
    case TOK_RE_QWEN:
        *ms = pos; *me = qwen_at(s, n, pos, re->max_digits);
        return 1;
    case TOK_RE_LIT: {
        if (!re->litn) return 0;
        const char *p = memmem(str + pos, n - pos, re->lit, re->litn);
        if (!p) return 0;
        *ms = (size_t)(p - str); *me = *ms + re->litn;
        return 1;
    }
    default:
        for (;;) {
            int rc = pcre2_match(re->code, s, n, pos, PCRE2_NO_UTF_CHECK, re->md, NULL);
            if (rc < 0) return 0;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(re->md);
            if (ov[1] > ov[0]) { *ms = ov[0]; *me = ov[1]; return 1; }
            pos = ov[0] + (ov[0] < n ? (size_t)tok_utf8_len(s[ov[0]]) : 1);   /* skip empty match */
            if (pos > n) return 0;
        }
    }
}
