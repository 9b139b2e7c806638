/* tok_load.h — dl_tok_load / dl_tok_free: builds every part from tokenizer.json (tok_load.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_load.c uses
 * every part above; no part calls back into it.
 */
#ifndef TOK_LOAD_H
#define TOK_LOAD_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

int tok_is_fallback_name(int which, const char *s);   /* s is a well-known name for role which (dl_tok.h) */
int tok_parse_added(dl_tok *t, const char *s, size_t n, uint32_t id, int special,
                    int single_word, int lstrip, int rstrip, int normalized);

#endif
