/* score/task_internal.h — what task.c and task_parse.c share (dllm-score --task).
 *
 * A task file is JSON Lines, one item a line, in one of three layouts (those
 * of llm-foundry's local eval data, ../shared/data/eval-mc/SOURCE.md):
 *   mc       {"query", "choices": [..], "gold": int}   ARC, PIQA, COPA
 *   schema   {"context_options": [..], "continuation", "gold": int}  WinoGrande
 *   lambada  {"context", "continuation"}              LAMBADA
 * Every item becomes n (context, continuation) text pairs, one per option:
 * mc: (query, choice_j); schema: (context_options_j, continuation);
 * lambada: one pair.  Text of a pair = A + delimiter + B exactly; it is split
 * into context | continuation before the trailing spaces (U+0020) of
 * A + delimiter, so the space goes with the continuation (lm-eval's
 * target_delimiter " ", llm-foundry's rstrip + prefix space):
 *   "Question: x\nAnswer:" | " choice".
 * (task.c drops that space again for tokenizers that prepend their own
 * word-start marker, see there.)
 * Other keys of an item are ignored.  Blank lines are skipped (still counted
 * for line numbers).  Ownership: tk_parse allocates, tk_set_free releases.
 */
#ifndef DLLM_TASK_INTERNAL_H
#define DLLM_TASK_INTERNAL_H
#include <stddef.h>

typedef enum { TK_AUTO = 0, TK_MC, TK_SCHEMA, TK_LAMBADA } tk_layout;

typedef struct {
    int line;         /* 1-based line of the file */
    int gold;         /* index of the right option; -1 for lambada */
    int n;            /* options: choices (mc), context options (schema), 1 (lambada) */
    char **ctx;       /* (n) context texts, NUL-terminated */
    char **cont;      /* (n) continuation texts (leading spaces moved here) */
    int *chars;       /* (n) Unicode code points of the choice / continuation field
                         as given (after --strip, without the delimiter): acc_norm's
                         length, as lm-eval's len(choice) */
} tk_item;

typedef struct {
    tk_layout layout; /* of every item (a file holds one layout) */
    tk_item *items;
    size_t n, cap;
} tk_set;

/* Parse the JSONL text of `path` (for messages) into s: at most `limit` items
 * (0 = all).  force = TK_AUTO detects the layout per line (and requires the
 * same for all lines).  strip: strip ASCII whitespace around every text
 * field first (llm-foundry's strip_dataset).  Errors are -DL_EXIT_DATA
 * "PATH:LINE: why" (or -DL_EXIT_IO for out of memory). */
int tk_parse(tk_set *s, const char *path, const char *text, size_t len, tk_layout force,
             const char *delim, int strip, long long limit, char *err, size_t errlen);
void tk_set_free(tk_set *s);

/* "auto" (or NULL), "mc", "schema", "lambada" -> layout; -1 when unknown. */
int tk_layout_parse(const char *name, tk_layout *out);
const char *tk_layout_name(tk_layout l);
/* Expand \n \t \r \\ in s into a malloc'ed string (other backslashes stay). */
char *tk_unescape(const char *s);
/* Number of UTF-8 code points of s[0..n) (bytes that are not continuation bytes). */
int tk_utf8_chars(const char *s, size_t n);

#endif
