/* show.h — dllm-sample --show: redraw the canvas in the terminal as it unmasks.
 *
 * Draws on `tty` (stderr; never stdout: stdout is the samples stream): the
 * prompt in normal text, committed tokens bold (those committed this step
 * highlighted), masks as a dim placeholder, and a status line with step and
 * NFE.  Each call moves the cursor up over what the previous call drew,
 * clears it, and draws again (ANSI escapes), so the canvas unmasks in place.
 * Only on a terminal: when `tty` is not one (stderr redirected), show draws
 * on /dev/tty when the process has a controlling terminal, else nothing at
 * all (every call is then a no-op).  Not thread-safe; one canvas (row) at a
 * time.
 */
#ifndef DL_SAMPLE_SHOW_H
#define DL_SAMPLE_SHOW_H
#include <stdint.h>
#include <stdio.h>
#include "dl_tok.h"

typedef struct show show;

/* tok: decoder for the canvas ids (borrowed, must outlive s; show decodes
 * with it, so no other thread may use it meanwhile); mask_id: the mask
 * token, drawn as the placeholder; tty: normally stderr.  Returns 0 or
 * -DL_EXIT_IO (out of memory); not being on a terminal is not an error. */
int show_open(show **s, const dl_tok *tok, uint32_t mask_id, FILE *tty);
/* Redraw: canvas[0..n) with canvas[0..n_prompt) the prompt; new_mask (n
 * bytes, 1 = committed this step) or NULL; step and nfe for the status line.
 * Calls closer than 30 ms apart are deferred (the latest is drawn by the
 * next call or by show_close). */
void show_canvas(show *s, const uint32_t *canvas, int n, int n_prompt, const uint8_t *new_mask,
                 int step, int nfe);
/* Draws a deferred canvas, leaves the last drawing on screen, frees s. NULL is fine. */
void show_close(show *s);

#endif
