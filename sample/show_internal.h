/* show_internal.h — the inside of sample/show.c's canvas, for its unit test.
 *
 * Only sample/show.c and tests/unit/test_show.c include this; everything
 * else uses show.h.  The test draws into a memory stream by setting
 * show_force_draw and s->f, and pins the terminal size (s->cols, s->rows)
 * and the redraw interval (s->min_interval).  Nothing here is an API.
 */
#ifndef SHOW_INTERNAL_H
#define SHOW_INTERNAL_H
#include <stdint.h>
#include <stdio.h>
#include "dl_tok.h"
#include "show.h"

/* 1: draw even when the target is not a terminal (the test's memory stream) */
extern int show_force_draw;

struct show {
    dl_tok *tok;              /* decode needs its scratch buffers (not const) */
    uint32_t mask_id;
    FILE *f;                  /* where we draw, NULL = nowhere */
    FILE *own;                /* /dev/tty when we opened it */
    int64_t anchor;           /* id prepended to each span, -1 = none */
    size_t anchor_len;        /* bytes of the anchor's decoded text */
    int lines_last;           /* lines the previous drawing printed */
    int cols, rows;           /* 0 = ask the terminal (ioctl, then $COLUMNS/$LINES, then 80x24) */
    double min_interval, t_last;
    /* the deferred drawing */
    uint32_t *canvas;
    uint8_t *new_mask;
    int n, cap, n_prompt, step, nfe, pending, have_new;
    /* scratch */
    dl_u32buf ids;
    dl_strbuf text, body, out;
    size_t *line_off;         /* body offset where each line starts */
    int *line_kind;           /* style active at that line start */
    int line_cap;
};

#endif
