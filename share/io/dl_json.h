/* dl_json.h — small jansson helpers shared by the checkpoint code. */
#ifndef DL_JSON_H
#define DL_JSON_H
#include <stddef.h>
#include <jansson.h>
#include "dl_base.h"

/* Write json_dumps(o, flags) plus a newline to path through dl_out (temp +
 * rename; never compressed).  Does not take ownership of o. */
int dl_json_write(const char *path, const json_t *o, size_t flags, char *err, size_t errlen);

#endif
