/* tok_decode.h — decoders: parse the "decoder" chain; dl_tok_decode (tok_decode.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_decode.c uses
 * tok_pretok (Metaspace options), tok_regex, tok_bytelevel, tok_utf8.
 */
#ifndef TOK_DECODE_H
#define TOK_DECODE_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

int tok_dec_parse(dl_tok *t, const void *json, char *err, size_t errlen);
void tok_dec_free(dl_tok *t);

#endif
