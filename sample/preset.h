/* sample/preset.h — dllm-sample --preset NAME: a model family's published
 * sampling defaults as a list of ordinary options.
 *
 * A preset is applied by parsing its options before the command line's
 * (smp_preset_argv puts them right after argv[0]), so any flag given on the
 * command line, before or after --preset, overrides it.  --help prints the
 * same table (smp_preset_help), so help and behaviour cannot drift.
 *
 * Does not: turn on a chat template (--chat does, never a preset: see
 * preset.c for what each family's scripts do with their prompts), choose a
 * checkpoint's conventions (mask id, logit shift: config.json's).
 */
#ifndef DL_SAMPLE_PRESET_H
#define DL_SAMPLE_PRESET_H

typedef struct {
    const char *opt;      /* "--name", as typed on a command line */
    const char *value;    /* its value as typed on a command line */
    const char *source;   /* where the family publishes this default (file:line) */
} smp_preset_opt;

typedef struct {
    const char *name;               /* --preset NAME */
    const char *about;              /* one line: whose defaults, which repository / commit */
    const char *note;               /* what the preset does NOT reproduce, or NULL */
    const smp_preset_opt *opts;     /* ends with { NULL } */
} smp_preset;

/* The preset called name, or NULL. */
const smp_preset *smp_preset_find(const char *name);
/* "llada, dream, fast-dllm" (static). */
const char *smp_preset_names(void);
/* New argv: argv[0], then "--OPT" "VALUE" for every option of p, then
 * argv[1..argc).  *out is malloc'ed (the strings are not copied: they point
 * into p and argv); NULL on out of memory. */
char **smp_preset_argv(const smp_preset *p, int argc, char **argv, int *outc);
/* The --help epilog listing every preset and what it sets (malloc'ed; NULL
 * on out of memory). */
char *smp_preset_help(void);

#endif
