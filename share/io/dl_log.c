/* dl_log.c — program identity, stderr diagnostics, progress line, and the
 * SIGINT/SIGTERM handler that removes registered temporary files.
 * Everything here writes to stderr only; stdout belongs to the data. */
#include "dl_log.h"
#include "dl_omp_env.h"
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int dl_verbosity = 1;
static char prog_name[64] = "dllm";
static char *invocation;

/* ------------------------------------------------------------------------ */
/* temporary files: fixed slots so the handler needs no allocation or locks */
#define DL_TMP_SLOTS 1024
static char *volatile tmp_paths[DL_TMP_SLOTS];
static volatile sig_atomic_t got_signal;

static void on_signal(int sig) {
    got_signal = sig;
    for (int i = 0; i < DL_TMP_SLOTS; i++)
        if (tmp_paths[i]) unlink(tmp_paths[i]);
    static const char msg[] = ": interrupted, temporary outputs removed\n";
    ssize_t w = write(2, prog_name, strlen(prog_name));
    w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(DL_EXIT_INTERRUPTED);
}

int dl_tmp_register(const char *path) {
    char *copy = strdup(path);
    if (!copy) return -1;
    for (int i = 0; i < DL_TMP_SLOTS; i++)
        if (!tmp_paths[i]) { tmp_paths[i] = copy; return i; }
    free(copy);
    return -1;
}

void dl_tmp_unregister(int slot) {
    if (slot < 0 || slot >= DL_TMP_SLOTS) return;
    char *p = tmp_paths[slot];
    tmp_paths[slot] = NULL;
    free(p);
}

int dl_interrupted(void) { return got_signal != 0; }

/* ------------------------------------------------------------------------ */
void dl_prog_init(const char *name, int argc, char **argv) {
    dl_omp_env_settle(argv);    /* may re-execute the program (dl_omp_env.c) */
    const char *base = name;
    if (!base && argc > 0) { base = strrchr(argv[0], '/'); base = base ? base + 1 : argv[0]; }
    snprintf(prog_name, sizeof prog_name, "%s", base ? base : "dllm");
    dl_strbuf b = {0};
    dl_strbuf_puts(&b, prog_name);
    for (int i = 1; i < argc; i++) {
        dl_strbuf_puts(&b, " ");
        /* quote arguments that would not survive a shell round trip */
        if (argv[i][0] && !strpbrk(argv[i], " \t\n'\"\\$`*?[]{}()<>|&;#~!")) dl_strbuf_puts(&b, argv[i]);
        else {
            dl_strbuf_puts(&b, "'");
            for (const char *p = argv[i]; *p; p++) {
                if (*p == '\'') dl_strbuf_puts(&b, "'\\''"); else dl_strbuf_append(&b, p, 1);
            }
            dl_strbuf_puts(&b, "'");
        }
    }
    free(invocation);
    invocation = b.p;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);   /* a closed pipe becomes EPIPE: a write error we report */
}

const char *dl_prog_name(void) { return prog_name; }
void dl_prog_rename(const char *name) { snprintf(prog_name, sizeof prog_name, "%s", name); }
const char *dl_invocation(void) { return invocation ? invocation : prog_name; }

static void vmsg(const char *level, const char *fmt, va_list ap) {
    char buf[4096];
    int n = snprintf(buf, sizeof buf, "%s: %s", prog_name, level);
    if (n < 0) n = 0;
    if ((size_t)n < sizeof buf) vsnprintf(buf + n, sizeof buf - n, fmt, ap);
    size_t len = strlen(buf);
    if (len + 1 < sizeof buf) { buf[len++] = '\n'; buf[len] = 0; }
    fputs(buf, stderr);
}

#define DL_VMSG(level, min) do { if (dl_verbosity < (min)) return; \
    va_list ap; va_start(ap, fmt); vmsg(level, fmt, ap); va_end(ap); } while (0)
void dl_error(const char *fmt, ...) { DL_VMSG("error: ", 0); }
void dl_warn(const char *fmt, ...) { DL_VMSG("warning: ", 1); }
void dl_info(const char *fmt, ...) { DL_VMSG("", 1); }
void dl_verbose(const char *fmt, ...) { DL_VMSG("", 2); }
void dl_info_lines(const char *text) {
    for (const char *p = text; *p;) {
        const char *e = strchr(p, '\n');
        int n = e ? (int)(e - p) : (int)strlen(p);
        dl_info("  %.*s", n, p);
        p += n + (e != NULL);
    }
}
void dl_debug(const char *fmt, ...) { DL_VMSG("debug: ", 3); }

_Noreturn void dl_die(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg("error: ", fmt, ap);
    va_end(ap);
    exit(code);
}

/* ------------------------------------------------------------------------ */
double dl_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void dl_progress_init(dl_progress *p, int force_on, uint64_t total_bytes) {
    memset(p, 0, sizeof *p);
    p->enabled = dl_verbosity > 0 && (force_on || isatty(2));
    p->t0 = p->t_last = dl_now();
    p->total_bytes = total_bytes;
}

static void human(char *dst, size_t n, double v) {
    const char *u = "";
    if (v >= 1e9) { v /= 1e9; u = "G"; } else if (v >= 1e6) { v /= 1e6; u = "M"; } else if (v >= 1e3) { v /= 1e3; u = "k"; }
    snprintf(dst, n, u[0] ? "%.2f%s" : "%.0f%s", v, u);
}

static void progress_draw(dl_progress *p, int final) {
    double el = dl_now() - p->t0;
    char rec[32], tok[32], eta[48] = "";
    human(rec, sizeof rec, (double)p->records);
    human(tok, sizeof tok, (double)p->tokens);
    double mbs = el > 0 ? p->bytes / el / 1e6 : 0;
    if (!final && p->total_bytes && p->bytes && p->bytes <= p->total_bytes && el > 0)
        snprintf(eta, sizeof eta, ", ETA %.0fs", el * ((double)p->total_bytes / p->bytes - 1));
    fprintf(stderr, "\r%s: %s records, %s tokens, %.1f MB/s, %.1fs%s\033[K%s", prog_name, rec, tok,
            mbs, el, eta, final ? "\n" : "");
    p->drawn = 1;
}

void dl_progress_update(dl_progress *p, uint64_t records, uint64_t tokens, uint64_t bytes) {
    p->records = records; p->tokens = tokens; p->bytes = bytes;
    if (!p->enabled) return;
    double now = dl_now();
    if (now - p->t_last < 0.2) return;
    p->t_last = now;
    progress_draw(p, 0);
}

void dl_progress_end(dl_progress *p) {
    if (p->enabled && p->drawn) progress_draw(p, 1);
    p->enabled = 0;
}
