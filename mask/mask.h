/* mask/mask.h — dllm-mask's internal pieces (input.c), used by main.c only.
 * Not a library API: programs meet only through streams. */
#ifndef MASK_MASK_H
#define MASK_MASK_H
#include <stdint.h>
#include "dl_opts.h"
#include "dl_stream.h"

typedef struct {
    dl_reader *r;
    int is_stdin;
    char spool[512];   /* temporary copy of stdin when it must be read twice; "" = none */
    int tmp_slot;
} mask_input;

/* Open the inputs (n == 0: stdin); stdin is spooled when copies > 1. */
int mask_input_open(mask_input *in, char **paths, int n, int copies, char *err, size_t errlen);
void mask_input_close(mask_input *in);   /* also removes the spool */
/* Replace the spool's path by "<stdin>" in a message (in place). */
void mask_input_fix_msg(const mask_input *in, char *msg, size_t len);
/* Global record range [lo, hi) this run handles (--shard I/N); hi = UINT64_MAX = all. */
/* Add or replace KEY = v (uint) in the header's extra map. */

#endif
