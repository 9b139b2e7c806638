/* dl_log.h — program identity, diagnostics on stderr, progress line, signals.
 *
 * Every message goes to stderr prefixed "PROG: " (PROG = argv[0]'s basename
 * or the name given to dl_prog_init).  stdout carries data only.
 * Verbosity: 0 (-q: errors only), 1 default (warnings + summaries),
 * 2 (-v: info), 3 (-vv: debug).
 */
#ifndef DL_LOG_H
#define DL_LOG_H
#include <stdint.h>
#include <stdio.h>
#include "dl_base.h"

extern int dl_verbosity;

/* First settles OpenMP's waiting policy (dl_omp_env.h: may re-execute the
 * program with GOMP_SPINCOUNT set).  Sets the program name, remembers argv joined by spaces (for `history`),
 * installs SIGINT/SIGTERM handlers that remove registered temporary files and
 * exit with DL_EXIT_INTERRUPTED, and ignores nothing else. */
void dl_prog_init(const char *name, int argc, char **argv);
const char *dl_prog_name(void);
/* Change the name messages start with (e.g. "dllm-train[rank 3]"); nothing else. */
void dl_prog_rename(const char *name);
const char *dl_invocation(void);       /* "dllm-pack -L 256 -o x", argv[0] basename'd */

void dl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* "PROG: error: ..." */
void dl_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* verbosity >= 1 */
void dl_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));   /* verbosity >= 1, "PROG: ..." (summaries) */
void dl_verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));/* verbosity >= 2 */
void dl_info_lines(const char *text);   /* dl_info("  LINE") for each line of text (a table) */
void dl_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* verbosity >= 3 */
/* Print "PROG: error: ..." and exit(code).  Only main() may call it. */
_Noreturn void dl_die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* --- temporary files removed on SIGINT/SIGTERM (async-signal-safe list) --- */
int dl_tmp_register(const char *path);     /* returns a slot >= 0, or -1 when full */
void dl_tmp_unregister(int slot);
/* 1 once SIGINT/SIGTERM arrived (handlers also _exit after cleanup; this is for
 * code that masks signals around critical sections) */
int dl_interrupted(void);

/* --- progress line: records, tokens, MB/s, ETA when total bytes known -------
 * Enabled when stderr is a terminal or --progress was given, never with -q.
 * Redraws at most 5 times a second with '\r'; dl_progress_end prints the final
 * line and a newline. */
typedef struct {
    int enabled;
    double t0, t_last;
    uint64_t total_bytes;      /* 0 = unknown */
    uint64_t records, tokens, bytes;
    int drawn;
} dl_progress;
void dl_progress_init(dl_progress *p, int force_on, uint64_t total_bytes);
void dl_progress_update(dl_progress *p, uint64_t records, uint64_t tokens, uint64_t bytes);
void dl_progress_end(dl_progress *p);

double dl_now(void);  /* monotonic seconds */

#endif
