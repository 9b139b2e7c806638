/* dl_json.c — see dl_json.h. */
#include "dl_json.h"
#include <stdlib.h>
#include <string.h>
#include "dl_io.h"

int dl_json_write(const char *path, const json_t *o, size_t flags, char *err, size_t errlen) {
    char *text = json_dumps(o, flags);
    if (!text) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: out of memory", path);
    dl_out *out;
    dl_out_opts opts = { 0, 0, 0, 0 };   /* plain text, no terminal check */
    int rc = dl_out_open(&out, path, &opts, err, errlen);
    if (!rc) {
        if ((rc = dl_out_write(out, text, strlen(text), err, errlen)) || (rc = dl_out_write(out, "\n", 1, err, errlen)))
            dl_out_abort(out);
        else rc = dl_out_close(out, err, errlen);
    }
    free(text);
    return rc;
}
