/* tok_vocab.h — the id -> token string table and the token lookups of dl_tok.h (tok_vocab.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_vocab.c uses
 * tok_map.
 */
#ifndef TOK_VOCAB_H
#define TOK_VOCAB_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

/* Set the string of token id (grows the id table; vocab_n = max id + 1).
 * 0, or -1 when out of memory. */
int tok_set_id_token(dl_tok *t, uint32_t id, const char *s, size_t n);

#endif
