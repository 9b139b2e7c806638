/* dl_opts.h — one option table drives parsing and --help.
 *
 * A program declares `static dl_opt OPTS[] = { ..., DL_OPTS_END }`, calls
 * dl_opts_parse(), and --help prints dl_opts_usage() from the same table, so
 * help and parser never drift.  Defaults are strings parsed by the same code
 * as the command line (so `--help` shows exactly what is used).
 *
 * Syntax accepted: --name VALUE, --name=VALUE, -x VALUE, -xVALUE, grouped
 * short flags (-qv), "--" ends options, "-" alone is a positional (stdin).
 * Sizes accept K/M/G/T suffixes (powers of 1024) with overflow checks.
 */
#ifndef DL_OPTS_H
#define DL_OPTS_H
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "dl_base.h"
#include "dl_io.h"

typedef enum {
    DL_OPT_FLAG,     /* int*: set to 1 (no value) */
    DL_OPT_COUNT,    /* int*: incremented each time (-v -v) */
    DL_OPT_INT,      /* long long* */
    DL_OPT_SIZE,     /* uint64_t*: with K/M/G/T suffix */
    DL_OPT_FLOAT,    /* double* */
    DL_OPT_STR,      /* const char**: points into argv or `def` */
    DL_OPT_STRLIST,  /* dl_strlist*: repeatable, each occurrence appended */
    DL_OPT_FUNC,     /* custom: fn(arg, dst, err, errlen) returns 0 or -DL_EXIT_USAGE */
    DL_OPT_THREADS,  /* long long*: a thread count in [0, DL_THREADS_MAX], 0 = the default */
    DL_OPT_HEADING   /* not an option: a section title in --help (name = title) */
} dl_opt_type;

typedef struct { const char **v; size_t n, cap; } dl_strlist;
void dl_strlist_free(dl_strlist *l);

typedef int (*dl_opt_fn)(const char *arg, void *dst, char *err, size_t errlen);

typedef struct {
    const char *name;      /* long name without "--"; NULL ends the table */
    char short_name;       /* 0 = none */
    dl_opt_type type;
    void *dst;
    const char *def;       /* default as a string, NULL = none (dst untouched) */
    const char *metavar;   /* "N", "FILE", NULL = derived from the type */
    const char *help;
    dl_opt_fn fn;          /* DL_OPT_FUNC only */
} dl_opt;
#define DL_OPTS_END { NULL, 0, DL_OPT_FLAG, NULL, NULL, NULL, NULL, NULL }

/* Parse argv[1..].  Positional arguments are collected, in order, into
 * *pos (malloc'ed array of pointers into argv, caller frees) / *npos.
 * Subcommands: parsing stops at nothing; callers that take a subcommand
 * check argv[1] before calling.  Returns 0, 1 when --help was handled by
 * the caller's table entry (see below), or -DL_EXIT_USAGE with err set. */
int dl_opts_parse(const dl_opt *opts, int argc, char **argv,
                  char ***pos, int *npos, char *err, size_t errlen);

/* Largest --threads a DL_OPT_THREADS option accepts (more is a typo, not a machine). */
#define DL_THREADS_MAX 1024

/* Print "usage: SYNOPSIS\n\nDESCRIPTION\n\noptions:\n ..." and the exit-code
 * table to `f`, and flush it.  Returns 0, or -DL_EXIT_IO when `f` could not
 * be written (closed, full; errno tells why). */
int dl_opts_usage(FILE *f, const dl_opt *opts, const char *synopsis, const char *description);
/* --help for a program's main: usage to stdout; returns the exit status,
 * 0 or DL_EXIT_IO after dl_error() said why (`prog --help >&-`, > /dev/full). */
int dl_opts_help(const dl_opt *opts, const char *synopsis, const char *description);
/* The same with `epilog` (NULL = none) printed after the usage, e.g. a table
 * of chat templates. */
int dl_opts_help_epilog(const dl_opt *opts, const char *synopsis, const char *description,
                        const char *epilog);

/* Helpers shared by every program (parse a value the same way as the table). */
int dl_parse_size(const char *s, uint64_t *out, char *err, size_t errlen);
int dl_parse_int(const char *s, long long *out, char *err, size_t errlen);
int dl_parse_float(const char *s, double *out, char *err, size_t errlen);

/* ---- the options every stream program shares -----------------------------
 * Use DL_COMMON_OPTS(&common) inside the table. --shard defaults from
 * SLURM_ARRAY_TASK_ID / SLURM_ARRAY_TASK_COUNT (applied by dl_common_finish). */
typedef struct {
    const char *output;     /* -o: file, or prefix with --shards; NULL/"-" = stdout */
    long long shards;       /* --shards N: 0 = single output named by -o */
    long long shard_i, shard_n;  /* --shard I/N: process slice I of N (0-based); n=1 = all */
    int zstd;               /* --zstd: compress even without .zst */
    long long zstd_level;   /* --zstd-level */
    int force;              /* --force: write binary to a terminal, overwrite */
    int quiet;              /* -q */
    int verbose;            /* -v (count) */
    int progress;           /* --progress */
    int help;               /* -h/--help */
    int version;            /* --version */
    int shard_given;
} dl_common;
int dl_opt_shard_fn(const char *arg, void *dst, char *err, size_t errlen);  /* parses "I/N" into dl_common */
#define DL_COMMON_OPTS(c) \
    { "Common options", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL }, \
    { "output", 'o', DL_OPT_STR, &(c)->output, NULL, "PATH", "output file, or shard prefix with --shards (default: stdout)", NULL }, \
    { "shards", 0, DL_OPT_INT, &(c)->shards, "0", "N", "write N shards PATH-0000i-of-0000N.msgpack.zst (round-robin)", NULL }, \
    { "shard", 0, DL_OPT_FUNC, (c), NULL, "I/N", "process only slice I (0-based) of N of the input (default from SLURM_ARRAY_TASK_ID/COUNT)", dl_opt_shard_fn }, \
    { "zstd", 0, DL_OPT_FLAG, &(c)->zstd, NULL, NULL, "zstd-compress the output even if its name lacks .zst", NULL }, \
    { "zstd-level", 0, DL_OPT_INT, &(c)->zstd_level, "1", "N", "zstd compression level (1-19; 1 keeps shards at disk speed)", NULL }, \
    { "force", 'f', DL_OPT_FLAG, &(c)->force, NULL, NULL, "write binary output to a terminal", NULL }, \
    { "progress", 0, DL_OPT_FLAG, &(c)->progress, NULL, NULL, "show a progress line even when stderr is not a terminal", NULL }, \
    { "quiet", 'q', DL_OPT_FLAG, &(c)->quiet, NULL, NULL, "errors only", NULL }, \
    { "verbose", 'v', DL_OPT_COUNT, &(c)->verbose, NULL, NULL, "more messages (repeat for debug)", NULL }, \
    { "help", 'h', DL_OPT_FLAG, &(c)->help, NULL, NULL, "show this help and exit", NULL }, \
    { "version", 0, DL_OPT_FLAG, &(c)->version, NULL, NULL, "print the version and exit", NULL }

/* After parsing: apply -q/-v to dl_verbosity, SLURM defaults for --shard,
 * validate ranges.  Returns 0 or -DL_EXIT_USAGE. */
int dl_common_finish(dl_common *c, char *err, size_t errlen);
/* The output options the common flags ask for: zstd by --zstd or by a .zst
 * name, --zstd-level, --force (binary output, refused on a terminal otherwise). */
void dl_common_out_opts(const dl_common *c, dl_out_opts *o);

#define DL_VERSION "0.1.0"

#endif
