/* cat/cat.h — dllm-cat internals: msgpack <-> JSON Lines.
 *
 * JSON mapping (both directions agree, so stream -> JSON -> stream -> JSON
 * gives the same JSON):
 *   uint/int          integer             float32  %.9g   float64  %.17g
 *                     (a float that prints like an integer gets ".0")
 *   bin under ids/x0/xt/docs (LE uint32)  -> [integers]
 *   bin under t_blocks (LE float32)       -> [floats]
 *   other bin          {"$bin":"<base64>"}
 *   ext                {"$ext":[type,"<base64>"]}
 *   NaN / +-Inf        {"$f32":"nan"|"inf"|"-inf"} (or "$f64")
 *   str                JSON string; invalid UTF-8 bytes become U+FFFD
 *   non-string keys    their JSON text, as a string key
 * Back from JSON: the key "t" is a float32; another real is a float32 when
 * its text is exactly how dllm-cat prints that float32 and would differ as
 * a float64, else a float64.
 */
#ifndef DLLM_CAT_H
#define DLLM_CAT_H
#include <jansson.h>
#include <msgpack.h>
#include "dl_base.h"

/* Append the JSON text of `o` (no newline).  0 or -DL_EXIT_IO (memory). */
int cat_to_json(dl_strbuf *b, const msgpack_object *o);

/* Pack a JSON value; `key` is the map key it sits under (NULL at top level
 * or inside arrays).  0 or <0 with err set (a data error: bad $bin ...). */
int cat_from_json(msgpack_packer *pk, json_t *j, const char *key, char *err, size_t errlen);

/* Shortest-free fixed formats used both ways. */
void cat_fmt_f32(char out[40], float f);
void cat_fmt_f64(char out[40], double d);

#endif
