/* tok_bytelevel.h — GPT-2 byte-level alphabet: byte <-> code point (tok_bytelevel.c).
 *
 * Private to share/tok (the API is dl_tok.h).  The engine's files call each
 * other in one direction only (see share/tok/README.md); tok_bytelevel.c uses
 * nothing.
 */
#ifndef TOK_BYTELEVEL_H
#define TOK_BYTELEVEL_H
#include <stddef.h>
#include <stdint.h>

extern const uint16_t tok_byte_char[256];   /* byte -> byte-level code point */
int tok_char_byte(uint32_t cp);             /* byte-level code point -> byte, or -1 */

#endif
