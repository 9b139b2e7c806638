/* test_show.c — dllm-sample --show (sample/show.c) drawn into a memory
 * buffer (open_memstream): decoded text per span, styles, placeholder, the
 * status line, cursor-up counts that match what the previous drawing
 * printed, wrapping, clipping to the terminal height, deferred drawings, and
 * no control bytes from token text.  Tokenizers: share/data llama2
 * (SentencePiece, byte fallback) and gpt2 (byte-level).
 * sample/show.c comes from dllm-sample's archive (build/sample/libsample.a);
 * show_internal.h exposes the canvas fields the test pins.
 */
#include <stdlib.h>
#include <string.h>
#include "dl_test.h"
#include "dl_tok.h"
#include "show_internal.h"

static char *buf;
static size_t buflen;
static FILE *mem;

/* a fresh empty buffer for the next drawing */
static void reset(show *s) {
    fclose(mem);
    free(buf);
    mem = open_memstream(&buf, &buflen);
    if (s) s->f = mem;
}

/* text of the drawing with every CSI sequence (ESC [ params letter) removed;
 * returns 0 when an ESC that does not start such a sequence is found */
static int strip_csi(const char *in, size_t n, char *out) {
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == 0x1b) {
            if (i + 1 >= n || in[i + 1] != '[') return 0;
            i += 2;
            while (i < n && ((in[i] >= '0' && in[i] <= '9') || in[i] == ';')) i++;
            if (i >= n || !strchr("mAJ", in[i])) return 0;
            continue;
        }
        out[j++] = in[i];
    }
    out[j] = 0;
    return 1;
}

static int count_nl(const char *p) {
    int c = 0;
    for (; *p; p++) c += *p == '\n';
    return c;
}

static int ups(const char *p) {  /* the n of a leading ESC[nA, 0 if none */
    return p[0] == 0x1b && p[1] == '[' && strchr(p, 'A') ? atoi(p + 2) : 0;
}

static dl_tok *load(const char *name, int64_t *mask) {
    char path[256], err[256];
    dl_tok *t = NULL;
    snprintf(path, sizeof path, "share/data/%s-tokenizer/tokenizer.json", name);
    if (dl_tok_load(&t, path, err, sizeof err) < 0) {
        printf("# %s\n", err);
        return NULL;
    }
    *mask = dl_tok_add_special(t, "<|mdm_mask|>", err, sizeof err);
    return t;
}

/* Encode text appending to ids. */
static void enc(dl_tok *t, dl_u32buf *ids, const char *text) {
    char err[256];
    dl_tok_encode(t, text, strlen(text), ids, err, sizeof err);
}

static void test_tok(const char *name, int bos) {
    int64_t mask;
    dl_tok *t = load(name, &mask);
    DL_CHECK(t && mask > 0, "%s: tokenizer loaded, mask id %lld", name, (long long)mask);
    if (!t) return;
    dl_u32buf ids = {0};
    if (bos >= 0) dl_u32buf_push(&ids, (uint32_t)bos);
    enc(t, &ids, "Once upon a time");
    int np = (int)ids.n;
    ids.n = bos >= 0;
    enc(t, &ids, "Once upon a time there was a little girl named Lily.");
    int n = (int)ids.n, g = n - np;
    uint32_t *cv = malloc((size_t)n * sizeof *cv);
    uint8_t *nm = calloc((size_t)n, 1);
    char *plain = malloc(1 << 16);

    show *s;
    DL_CHECK(show_open(&s, t, (uint32_t)mask, mem) == 0 && s, "%s: show_open", name);
    DL_CHECK(s->anchor >= 0, "%s: anchor token found (%lld)", name, (long long)s->anchor);
    s->min_interval = 0;
    s->cols = 80;
    s->rows = 24;

    /* step 0: everything after the prompt masked */
    for (int i = 0; i < n; i++) cv[i] = i < np ? ids.p[i] : (uint32_t)mask;
    reset(s);
    show_canvas(s, cv, n, np, NULL, 0, 0);
    fflush(mem);
    DL_CHECK(ups(buf) == 0 && strncmp(buf, "\r\033[J", 4) == 0, "%s: first drawing: no cursor-up, clears", name);
    DL_CHECK(strip_csi(buf, strlen(buf), plain), "%s: only CSI escapes", name);
    char want[512];
    snprintf(want, sizeof want, "%sOnce upon a time", bos >= 0 ? "<s> " : "");  /* as HF decode */
    DL_CHECK(strncmp(plain, "\r", 1) == 0 && strncmp(plain + 1, want, strlen(want)) == 0,
             "%s: prompt text (got \"%.40s\")", name, plain + 1);
    const char *ph = strstr(buf, "\033[0;2m\xe2\x96\x91");
    int nph = 0;
    for (const char *p = ph; p && (p = strstr(p, "\xe2\x96\x91")); p += 3) nph++;
    DL_CHECK(ph && nph == g, "%s: %d dim placeholders (got %d)", name, g, nph);
    snprintf(want, sizeof want, "step 0  nfe 0  %d masked\n", g);
    DL_CHECK(strstr(plain, want) != NULL, "%s: status line \"%s\"", name, "step 0  nfe 0  G masked");
    int lines = count_nl(buf);
    DL_CHECK(lines == 2, "%s: 2 lines drawn (got %d)", name, lines);

    /* step 1: commit the first two generated tokens (new) */
    cv[np] = ids.p[np];
    cv[np + 1] = ids.p[np + 1];
    nm[np] = nm[np + 1] = 1;
    reset(s);
    show_canvas(s, cv, n, np, nm, 1, 1);
    fflush(mem);
    DL_CHECK(ups(buf) == lines && strstr(buf, "A\r\033[J") == buf + 3, "%s: moves up %d lines, clears", name, lines);
    DL_CHECK(strstr(buf, "\033[0;1;33m there was") != NULL, "%s: new tokens highlighted, leading space kept", name);
    strip_csi(buf, strlen(buf), plain);
    snprintf(want, sizeof want, "step 1  nfe 1  %d masked", g - 2);
    DL_CHECK(strstr(plain, want) != NULL, "%s: status after step 1", name);

    /* step 2: commit everything; the old ones are plain bold */
    memset(nm, 0, (size_t)n);
    for (int i = np + 2; i < n; i++) cv[i] = ids.p[i], nm[i] = 1;
    reset(s);
    show_canvas(s, cv, n, np, nm, 2, 2);
    fflush(mem);
    DL_CHECK(strstr(buf, "\033[0;1m there was\033[0;1;33m a little girl named Lily.") != NULL,
             "%s: bold old span then highlighted new span", name);
    strip_csi(buf, strlen(buf), plain);
    snprintf(want, sizeof want, "\r%sOnce upon a time there was a little girl named Lily.\nstep 2  nfe 2  0 masked\n",
             bos >= 0 ? "<s> " : "");
    DL_CHECK(strcmp(plain, want) == 0, "%s: final text", name);
    if (strcmp(plain, want) != 0) printf("  # got: %s\n", plain);
    lines = count_nl(buf);

    /* narrow terminal: wrapped by us, cursor-up matches the lines printed */
    s->cols = 10;
    reset(s);
    show_canvas(s, cv, n, np, NULL, 3, 3);
    fflush(mem);
    int l2 = count_nl(buf);
    DL_CHECK(ups(buf) == lines && l2 > 4, "%s: wrapped at 10 columns into %d lines", name, l2);
    strip_csi(buf, strlen(buf), plain);
    int longest = 0, cur = 0, line = 0;
    for (const char *p = plain; *p && line < l2 - 1; p++) {   /* canvas lines, not the status */
        if (*p == '\n') { cur = 0; line++; continue; }
        if (*p != '\r' && ((unsigned char)*p & 0xc0) != 0x80) cur++;
        if (cur > longest) longest = cur;
    }
    DL_CHECK(longest <= 10, "%s: no wrapped canvas line wider than 10: %d", name, longest);
    /* short terminal: only the tail fits */
    s->rows = 4;
    reset(s);
    show_canvas(s, cv, n, np, NULL, 4, 4);
    fflush(mem);
    int l3 = count_nl(buf);
    DL_CHECK(ups(buf) == l2 && l3 == 3, "%s: clipped to rows-1 = 3 lines (got %d)", name, l3);
    strip_csi(buf, strlen(buf), plain);
    DL_CHECK(strstr(plain, "named") && strstr(plain, "y.\n") && !strstr(plain, "Once"), "%s: the tail is shown", name);
    s->rows = 24;
    s->cols = 80;

    /* deferred drawing: a call within min_interval prints nothing, close draws it */
    s->min_interval = 1e9;
    reset(s);
    show_canvas(s, cv, n, np, NULL, 5, 5);
    fflush(mem);
    DL_CHECK(buf[0] == 0, "%s: call within the interval is deferred", name);
    reset(s);
    show_close(s);
    fflush(mem);
    strip_csi(buf, strlen(buf), plain);
    DL_CHECK(strstr(plain, "step 5  nfe 5") != NULL, "%s: show_close draws the deferred canvas", name);

    free(cv);
    free(nm);
    free(plain);
    dl_u32buf_free(&ids);
    dl_tok_free(t);
}

/* token text holding ESC / CR / BEL: never reaches the terminal */
static void test_controls(void) {
    int64_t mask;
    dl_tok *t = load("llama2", &mask);
    if (!t) return;
    /* byte-fallback tokens <0x1B> <0x5B> <0x32> <0x4A> = ESC [ 2 J, <0x0D>, <0x07>, <0x09> */
    const char *bytes[] = {"<0x1B>", "<0x5B>", "<0x32>", "<0x4A>", "<0x0D>", "<0x07>", "<0x09>", "<0x0A>"};
    uint32_t cv[10];
    int n = 0;
    cv[n++] = (uint32_t)dl_tok_token_id(t, "\xe2\x96\x81hi");
    for (size_t i = 0; i < sizeof bytes / sizeof *bytes; i++) cv[n++] = (uint32_t)dl_tok_token_id(t, bytes[i]);
    cv[n++] = 99999;  /* not a token: shown as <99999> */
    show *s;
    show_open(&s, t, (uint32_t)mask, mem);
    s->min_interval = 0;
    s->cols = 80;
    reset(s);
    show_canvas(s, cv, n, 1, NULL, 0, 0);
    fflush(mem);
    char plain[4096];
    int okc = strip_csi(buf, strlen(buf), plain);
    int ctl = 0;
    for (const char *p = plain; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\n' && !(*p == '\r' && p == plain)) ctl++;
    DL_CHECK(okc && ctl == 0, "controls: no raw control bytes from token text (%d)", ctl);
    DL_CHECK(strstr(plain, "hi?[2J ? \n<99999>") != NULL, "controls: replaced by ?/space, newline kept, bad id shown");
    show_close(s);
    dl_tok_free(t);
}

/* a memory stream is no terminal: drawn on /dev/tty if any, never on the stream */
static void test_not_a_terminal(void) {
    int64_t mask;
    dl_tok *t = load("gpt2", &mask);
    if (!t) return;
    show *off;
    show_open(&off, t, (uint32_t)mask, mem);
    DL_CHECK(off && off->f != mem, "not a terminal: not drawn on the stream");
    if (off && off->own) { fclose(off->own); off->own = off->f = NULL; }   /* keep the test's terminal clean */
    uint32_t one = (uint32_t)mask;
    show_canvas(off, &one, 1, 0, NULL, 0, 0);
    show_close(off);
    fflush(mem);
    DL_CHECK(buflen == 0, "not a terminal: nothing written to the stream");
    dl_tok_free(t);
}

int main(void) {
    mem = open_memstream(&buf, &buflen);
    test_not_a_terminal();
    show_force_draw = 1;
    test_tok("llama2", 1);
    test_tok("gpt2", -1);
    test_controls();
    show_close(NULL);
    fclose(mem);
    free(buf);
    return dl_test_end();
}
