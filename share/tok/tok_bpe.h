/* tok_bpe.h — the BPE model: parse "model", encode one word (tok_bpe.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_bpe.c uses
 * tok_map, tok_vocab, tok_bytelevel, tok_utf8.
 */
#ifndef TOK_BPE_H
#define TOK_BPE_H
#include <stddef.h>
#include <stdint.h>
#include "tok_engine.h"

int tok_bpe_parse(dl_tok *t, const void *model_json, char *err, size_t errlen);
/* Encode one word.  raw: s holds raw bytes to be seen as byte-level chars. */
int tok_bpe_build_raw_vocab(dl_tok *t);   /* for ignore_merges on byte-level words */
int tok_bpe_check_meta_split(tok_bpe *b);
int tok_bpe_word(dl_tok *t, const char *s, size_t n, int raw, dl_u32buf *out);
void tok_bpe_free(tok_bpe *b);

#endif
