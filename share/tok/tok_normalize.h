/* tok_normalize.h — normalizers: parse the "normalizer" chain and run it (tok_normalize.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_normalize.c uses
 * tok_regex, tok_utf8.
 */
#ifndef TOK_NORMALIZE_H
#define TOK_NORMALIZE_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

int tok_norm_parse(dl_tok *t, const void *json, char *err, size_t errlen);  /* json_t * */
/* Normalize s[0..n) through the whole normalizer chain into out (replaced).
 * z (may be NULL): in, the byte length of the leading characters of s whose
 * original offset is 0; out, the same for the result, following HF's
 * alignment rules (see tok_pre_run). */
int tok_normalize(dl_tok *t, const char *s, size_t n, dl_strbuf *out, size_t *z);
void tok_norm_free(dl_tok *t);

#endif
