/* tok_pretok.h — pre-tokenizers: parse the "pre_tokenizer" chain and run it, feeding words to the BPE model (tok_pretok.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_pretok.c uses
 * tok_bpe, tok_regex, tok_map, tok_bytelevel, tok_utf8.
 */
#ifndef TOK_PRETOK_H
#define TOK_PRETOK_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

int tok_pre_parse(dl_tok *t, const void *json, char *err, size_t errlen);
/* Pre-tokenize one piece and feed the words to the model (appending ids).
 * z: byte length of the piece's leading characters that HF aligns to
 * original offset 0 (Metaspace prepend_scheme "first" prepends only there). */
int tok_pre_run(dl_tok *t, const char *s, size_t n, size_t z, dl_u32buf *out);
void tok_pre_free(dl_tok *t);
/* Metaspace "replacement" (default U+2581) and "prepend_scheme" (or legacy add_prefix_space) */
int tok_parse_replacement(const void *json, char repl[8], int *n);
int tok_parse_prepend(const void *json, int *scheme);

#endif
