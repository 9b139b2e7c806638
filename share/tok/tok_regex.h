/* tok_regex.h — regex matching: PCRE2 and hand-written GPT-2/Qwen split matchers (tok_regex.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_regex.c uses
 * tok_utf8 only.
 */
#ifndef TOK_REGEX_H
#define TOK_REGEX_H
#include <stddef.h>
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

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

#endif
