/* tests/fuzz/fuzz_task.c — libFuzzer target: the dllm-score --task JSON Lines
 * parser (score/task_parse.c).
 *
 * The input is a task file; it is parsed with every layout (auto, mc,
 * schema, lambada), with and without --strip, with the default delimiter
 * " " and with "\n", and the escape helper tk_unescape runs on it.  A parsed
 * set must hold what task_internal.h promises: n >= 1 options per item,
 * gold in [0, n) (-1 for lambada), every text present, chars >= 0.
 * Not here: tokenizing the pairs (task.c), scoring.
 */
#include "task_internal.h"
#include "fuzz_common.h"

static void check(const tk_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        const tk_item *it = &s->items[i];
        if (it->n < 1) fz_fail("an item without options");
        if (s->layout == TK_LAMBADA ? it->gold != -1 : (it->gold < 0 || it->gold >= it->n))
            fz_fail("gold out of range");
        for (int j = 0; j < it->n; j++) {
            if (!it->ctx[j] || !it->cont[j]) fz_fail("a missing text");
            if (it->chars[j] < 0) fz_fail("negative chars");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[512];
    static const tk_layout LAYOUTS[] = { TK_AUTO, TK_MC, TK_SCHEMA, TK_LAMBADA };
    static const char *const DELIMS[] = { " ", "\n" };
    for (size_t l = 0; l < sizeof LAYOUTS / sizeof LAYOUTS[0]; l++)
        for (int strip = 0; strip < 2; strip++)
            for (int d = 0; d < 2; d++) {
                tk_set s;
                memset(&s, 0, sizeof s);
                if (!tk_parse(&s, "fuzz.jsonl", (const char *)data, size, LAYOUTS[l], DELIMS[d], strip,
                              strip ? 3 : 0, err, sizeof err))
                    check(&s);
                tk_set_free(&s);
            }
    char *z = malloc(size + 1);
    if (!z) return 0;
    memcpy(z, data, size);
    z[size] = 0;
    free(tk_unescape(z));
    (void)tk_utf8_chars(z, size);
    free(z);
    return 0;
}
