/* show.c — dllm-sample --show: the canvas redrawn in place as it unmasks.
 *
 * One drawing = the canvas text wrapped at the terminal width, then a status
 * line, every line ended by '\n'.  The next drawing first moves the cursor up
 * over the lines the previous one printed ("ESC[<n>A", then "\r ESC[J" clears
 * to the end of the screen), so the canvas changes in place.  Styles (SGR):
 *   prompt            normal
 *   committed         bold                       ESC[1m
 *   committed now     bold yellow (highlight)    ESC[1;33m
 *   mask              dim placeholder "░"        ESC[2m, one cell per mask
 *   special tokens    dim, as their token string ESC[2m (e.g. <s>, </s>)
 * Text is decoded per span of same-styled tokens with dl_tok_decode; a span
 * not at the canvas start is decoded behind an anchor token ("a") whose text
 * is then cut off, so it keeps the leading space a SentencePiece/Metaspace
 * decoder strips from the first token of a sequence.  Control characters of
 * the decoded text (ESC, CR, C1 ...) never reach the terminal: tabs and CR
 * become spaces, other controls "?"; '\n' breaks the line.  We wrap ourselves (utf8proc widths), so we know how
 * many lines we printed; a canvas taller than the terminal shows its tail.
 * Drawings closer than SHOW_MIN_INTERVAL apart are deferred (the latest one
 * is kept and drawn by the next call or by show_close), so a fast sampler is
 * not slowed down by the terminal.
 * Terminal only: when the given stream is not a terminal, /dev/tty is opened
 * instead (stdout and a redirected stderr stay clean); without one, nothing
 * is drawn.
 * Does not: handle terminal resizes of lines already printed, or draw several
 * rows at once.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>
#include <utf8proc.h>
#include "dl_log.h"
#include "show.h"
#include "show_internal.h"

#define SHOW_MIN_INTERVAL 0.03  /* seconds between drawings */

enum { K_PROMPT, K_OLD, K_NEW, K_MASK, K_SPECIAL, K_N };
static const char *const STYLE[K_N] = {"\033[0m", "\033[0;1m", "\033[0;1;33m", "\033[0;2m",
                                       "\033[0;2m"};
static const char PLACEHOLDER[] = "\xe2\x96\x91";  /* U+2591 LIGHT SHADE */

/* tests/unit/test_show.c sets this to draw into a memory stream */
int show_force_draw;

static int kind_of(const show *s, int i) {
    uint32_t id = s->canvas[i];
    if (id == s->mask_id) return K_MASK;
    if (id < dl_tok_vocab_size(s->tok) && dl_tok_is_special(s->tok, id)) return K_SPECIAL;
    if (i < s->n_prompt) return K_PROMPT;
    return s->have_new && s->new_mask[i] ? K_NEW : K_OLD;
}

/* Anchor: a plain token "a" (byte-level and SentencePiece vocabs have one)
 * whose text doubles when repeated, i.e. decodes independently of context. */
static void pick_anchor(show *s) {
    static const char *const cand[] = {"a", "e", "t", "x"};
    char err[256];
    s->anchor = -1;
    for (size_t c = 0; c < sizeof cand / sizeof *cand; c++) {
        int64_t id = dl_tok_token_id(s->tok, cand[c]);
        if (id < 0 || dl_tok_is_special(s->tok, (uint32_t)id)) continue;
        uint32_t two[2] = {(uint32_t)id, (uint32_t)id};
        s->text.n = 0;
        if (dl_tok_decode(s->tok, two, 1, 0, &s->text, err, sizeof err) < 0 || s->text.n == 0) continue;
        size_t one = s->text.n;
        if (dl_tok_decode(s->tok, two, 2, 0, &s->text, err, sizeof err) < 0) continue;
        if (s->text.n == 3 * one && memcmp(s->text.p, s->text.p + one, one) == 0 &&
            memcmp(s->text.p, s->text.p + 2 * one, one) == 0) {
            s->anchor = id;
            s->anchor_len = one;
            return;
        }
    }
}

int show_open(show **out, const dl_tok *tok, uint32_t mask_id, FILE *tty) {
    show *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s) return -DL_EXIT_IO;
    s->tok = (dl_tok *)tok;
    s->mask_id = mask_id;
    s->f = tty;
    int fd = tty ? fileno(tty) : -1;
    if (!show_force_draw && (fd < 0 || !isatty(fd)))
        s->f = s->own = fopen("/dev/tty", "w");   /* NULL without a controlling terminal */
    s->min_interval = SHOW_MIN_INTERVAL;
    s->t_last = -1e9;
    if (s->f) pick_anchor(s);
    *out = s;
    return 0;
}

/* Decoded text of canvas[a..b) into s->text (all one kind, not masks). */
static void span_text(show *s, int a, int b) {
    char err[256];
    s->text.n = 0;
    s->ids.n = 0;
    int anchored = a > 0 && s->anchor >= 0;   /* the canvas start decodes as a sequence start */
    if (anchored && dl_u32buf_push(&s->ids, (uint32_t)s->anchor) < 0) return;
    if (dl_u32buf_append(&s->ids, s->canvas + a, (size_t)(b - a)) < 0) return;
    if (dl_tok_decode(s->tok, s->ids.p, s->ids.n, 0, &s->text, err, sizeof err) == 0) {
        if (anchored) {
            if (s->text.n >= s->anchor_len) {   /* the anchor's text is a prefix (checked at open) */
                memmove(s->text.p, s->text.p + s->anchor_len, s->text.n - s->anchor_len + 1);
                s->text.n -= s->anchor_len;
            }
        }
        return;
    }
    /* an id the tokenizer lacks: token by token, "<id>" for the bad ones */
    s->text.n = 0;
    if (s->text.p) s->text.p[0] = 0;
    for (int i = a; i < b; i++)
        if (dl_tok_decode(s->tok, s->canvas + i, 1, 0, &s->text, err, sizeof err) < 0)
            dl_strbuf_printf(&s->text, "<%u>", s->canvas[i]);
}

typedef struct { int col, nlines, kind; } layout;

/* Room for line n in line_off/line_kind; 0 or -1 (out of memory). */
static int lines_reserve(show *s, int n) {
    if (n < s->line_cap) return 0;
    int cap = s->line_cap ? 2 * s->line_cap : 64;
    while (cap <= n) cap *= 2;
    size_t *o = realloc(s->line_off, (size_t)cap * sizeof *o);
    if (o) s->line_off = o;
    int *k = realloc(s->line_kind, (size_t)cap * sizeof *k);
    if (k) s->line_kind = k;
    if (!o || !k) return -1;
    s->line_cap = cap;
    return 0;
}

/* End the current line; lines past an allocation failure are counted but
 * not recorded (the drawing is then not clipped). */
static void new_line(show *s, layout *L) {
    dl_strbuf_append(&s->body, "\n", 1);
    L->col = 0;
    if (lines_reserve(s, L->nlines) == 0) {
        s->line_off[L->nlines] = s->body.n;
        s->line_kind[L->nlines] = L->kind;
    }
    L->nlines++;
}

/* Append one character (bytes c[0..len), width w) wrapping at cols. */
static void put_cell(show *s, layout *L, const char *c, size_t len, int w, int cols) {
    if (L->col > 0 && L->col + w > cols) new_line(s, L);
    dl_strbuf_append(&s->body, c, len);
    L->col += w;
}

/* Append s->text made safe for a terminal. */
static void put_text(show *s, layout *L, int cols) {
    const uint8_t *p = (const uint8_t *)s->text.p;
    utf8proc_ssize_t n = (utf8proc_ssize_t)s->text.n, i = 0;
    while (i < n) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t k = utf8proc_iterate(p + i, n - i, &cp);
        if (k <= 0) { put_cell(s, L, "\xef\xbf\xbd", 3, 1, cols); i++; continue; }  /* bad byte: U+FFFD */
        if (cp == '\n') new_line(s, L);
        else if (cp == '\t' || cp == '\r') put_cell(s, L, " ", 1, 1, cols);
        else if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) put_cell(s, L, "?", 1, 1, cols);
        else {
            int w = utf8proc_charwidth(cp);
            put_cell(s, L, (const char *)p + i, (size_t)k, w < 0 ? 1 : w, cols);
        }
        i += k;
    }
}

static void term_size(show *s, int *cols, int *rows) {
    *cols = s->cols;
    *rows = s->rows;
    struct winsize ws;
    int fd = fileno(s->f);
    if ((!*cols || !*rows) && fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) {
        if (!*cols) *cols = ws.ws_col;
        if (!*rows) *rows = ws.ws_row;
    }
    const char *e;
    if (!*cols) *cols = (e = getenv("COLUMNS")) && atoi(e) > 0 ? atoi(e) : 80;
    if (!*rows) *rows = (e = getenv("LINES")) && atoi(e) > 0 ? atoi(e) : 24;
    if (*cols < 8) *cols = 8;
    if (*rows < 3) *rows = 3;
}

static void draw(show *s) {
    int cols, rows;
    term_size(s, &cols, &rows);
    layout L = {0, 1, K_PROMPT};   /* line 0 starts at body offset 0 (never clipped off) */
    s->body.n = 0;
    int masked = 0;
    for (int i = 0; i < s->n;) {
        int k = kind_of(s, i), j = i + 1;
        while (j < s->n && kind_of(s, j) == k && k != K_SPECIAL) j++;
        if (k != L.kind) dl_strbuf_puts(&s->body, STYLE[k]);
        L.kind = k;
        if (k == K_MASK) {
            for (int m = i; m < j; m++) put_cell(s, &L, PLACEHOLDER, sizeof PLACEHOLDER - 1, 1, cols);
            masked += j - i;
        } else {
            span_text(s, i, j);
            put_text(s, &L, cols);
        }
        i = j;
    }
    int first = 0, maxl = rows - 2;   /* room for the status line and the cursor's line */
    if (L.nlines > maxl && L.nlines <= s->line_cap) first = L.nlines - maxl;  /* all lines recorded */

    dl_strbuf *o = &s->out;
    o->n = 0;
    if (s->lines_last > 0) dl_strbuf_printf(o, "\033[%dA", s->lines_last);
    dl_strbuf_puts(o, "\r\033[J");
    if (first > 0) dl_strbuf_puts(o, STYLE[s->line_kind[first]]);
    size_t off = first ? s->line_off[first] : 0;
    if (s->body.n > off) dl_strbuf_append(o, s->body.p + off, s->body.n - off);
    dl_strbuf_printf(o, "\033[0m\n\033[2mstep %d  nfe %d  %d masked\033[0m\n", s->step, s->nfe, masked);
    if (o->p) fwrite(o->p, 1, o->n, s->f);
    fflush(s->f);
    s->lines_last = L.nlines - first + 1;
    s->pending = 0;
}

void show_canvas(show *s, const uint32_t *canvas, int n, int n_prompt, const uint8_t *new_mask,
                 int step, int nfe) {
    if (!s || !s->f || n < 0) return;
    if (n > s->cap) {
        uint32_t *c = realloc(s->canvas, (size_t)n * sizeof *c);
        if (c) s->canvas = c;
        uint8_t *m = realloc(s->new_mask, (size_t)n);
        if (m) s->new_mask = m;
        if (!c || !m) return;
        s->cap = n;
    }
    if (n) memcpy(s->canvas, canvas, (size_t)n * sizeof *canvas);
    s->have_new = new_mask != NULL;
    if (new_mask && n) memcpy(s->new_mask, new_mask, (size_t)n);
    s->n = n;
    s->n_prompt = n_prompt < 0 ? 0 : n_prompt > n ? n : n_prompt;
    s->step = step;
    s->nfe = nfe;
    s->pending = 1;
    double t = dl_now();
    if (t - s->t_last < s->min_interval) return;
    s->t_last = t;
    draw(s);
}

void show_close(show *s) {
    if (!s) return;
    if (s->pending && s->f) draw(s);
    if (s->own) fclose(s->own);
    free(s->canvas);
    free(s->new_mask);
    free(s->line_off);
    free(s->line_kind);
    dl_u32buf_free(&s->ids);
    dl_strbuf_free(&s->text);
    dl_strbuf_free(&s->body);
    dl_strbuf_free(&s->out);
    free(s);
}
