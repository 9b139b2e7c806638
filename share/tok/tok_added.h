/* tok_added.h — added tokens matched before the model, and dl_tok_encode (tok_added.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_added.c uses
 * tok_pretok, tok_normalize, tok_vocab, tok_map, tok_utf8.
 */
#ifndef TOK_ADDED_H
#define TOK_ADDED_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

int tok_added_build(dl_tok *t);       /* (re)build raw_set / norm_set after changes */
void tok_added_free(dl_tok *t);

#endif
