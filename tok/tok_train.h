/* tok/tok_train.h — `dllm-tok train`: byte-level BPE training.
 *
 * tok/main.c dispatches here when argv[1] is "train": it has already called
 * dl_prog_init("dllm-tok", argc, argv) with the full command line (so
 * dl_invocation() is "dllm-tok train ..."), then calls
 * tok_train_main(argc - 1, argv + 1): argv[0] is "train" and options start at
 * argv[1], as dl_opts_parse expects.  Passing the full argv (argv[0] the
 * program, argv[1] "train") works too: the word "train" is then skipped.
 * Returns the process exit status.
 *
 * The algorithm is Hugging Face `tokenizers`' BpeTrainer (0.2x), reproduced
 * step for step so that the same corpus gives the same vocab and merges:
 *   - text is read line by line, each line keeping its '\n' (HF
 *     `Tokenizer.train(files)`), and special-token strings are cut out of
 *     the text before pre-tokenization (HF does not; feed HF the pieces
 *     between them to compare);
 *   - pre-tokenization: the GPT-2 regex, then bytes -> GPT-2 byte-level chars;
 *   - vocab: special tokens first (ids 0..k-1, in command-line order), then
 *     the 256 byte-level chars sorted by code point, then one id per new
 *     token string in merge order (a string made twice keeps its first id);
 *   - each step merges the pair with the highest count; ties go to the
 *     smallest (left id, right id) — HF's own order;
 *   - counts are HF's (overlapping pairs such as "a a a" count twice) and
 *     updated incrementally with a pair -> words index and a lazy max-heap;
 *   - stops at vocab_size tokens, when the best count < min_frequency, or
 *     when no pair is left.
 *   - a pair merged twice (possible only after one token string was made
 *     by two different merges) is written once, at its last rank, as HF's
 *     serializer does.
 * Checked: byte-identical tokenizer.json to HF 0.23's on TinyStories,
 * tinyshakespeare and a 6.7 MB mix, vocab 300..60000, min_frequency 0..2
 * (tests/ref/gen_bpe_train_fixture.py).  Known divergences, both in corner
 * cases: two heap entries of one pair with equal counts (again only after a
 * token string was made twice) pop in our heap's order, not HF's; and HF
 * keeps pair counts in i32, which overflows past 2^31 occurrences, we in i64.
 *
 * Below main's entry point: the word counter and the trainer, shared by
 * tok/train.c (CLI, input, JSON) and tok/train_bpe.c (the algorithm).
 */
#ifndef TOK_TRAIN_H
#define TOK_TRAIN_H
#include <stddef.h>
#include <stdint.h>

int tok_train_main(int argc, char **argv);

/* ---------------------------------------------------------------- word counts
 * Distinct pre-tokenized words (raw bytes) with their counts, in first-seen
 * order.  init allocates, free releases (safe on NULL). */
typedef struct tok_wc tok_wc;
int tok_wc_init(tok_wc **wc, char *err, size_t errlen);
int tok_wc_add(tok_wc *wc, const char *word, size_t len, uint64_t count, char *err, size_t errlen);
size_t tok_wc_distinct(const tok_wc *wc);
void tok_wc_free(tok_wc *wc);

/* ---------------------------------------------------------------- trainer */
typedef struct {
    uint64_t vocab_size;             /* >= 256 + number of distinct specials */
    uint64_t min_frequency;          /* a merge needs a count >= this */
    const char *const *special;      /* UTF-8 strings, ids 0.. in this order (duplicates skipped) */
    size_t n_special;
    /* called after every merge; may be NULL */
    void (*progress)(void *ctx, uint64_t merges_done, uint64_t target);
    void *progress_ctx;
} tok_bpe_opts;

typedef struct {
    uint32_t n_vocab;       /* ids 0..n_vocab-1 */
    char **token;           /* [n_vocab] UTF-8: byte-level chars, specials verbatim */
    uint32_t n_special;     /* ids 0..n_special-1 are the special tokens */
    uint32_t n_merges;      /* distinct merges, in rank order */
    uint32_t *merges;       /* [2*n_merges] (left id, right id) */
    uint64_t steps;         /* merge steps done (> n_merges only with repeats) */
    uint64_t last_count;    /* count of the last pair merged (0 when none) */
} tok_bpe_model;

int tok_bpe_train(const tok_wc *wc, const tok_bpe_opts *o, tok_bpe_model *m,
                  char *err, size_t errlen);
void tok_bpe_model_free(tok_bpe_model *m);   /* safe on a zeroed struct */

#endif
