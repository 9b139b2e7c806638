/* dl_opts.c — the option table parser and the --help printer (one table,
 * both uses), value parsers with overflow checks, and the common options. */
#include "dl_opts.h"
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"

void dl_strlist_free(dl_strlist *l) { free(l->v); memset(l, 0, sizeof *l); }

int dl_parse_int(const char *s, long long *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno == ERANGE)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' is not an integer", s);
    *out = v;
    return 0;
}

int dl_parse_size(const char *s, uint64_t *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    if (!*s || *s == '-') return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' is not a size", s);
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || end == s) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' is not a size", s);
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 0: break;
    case 'K': shift = 10; break;
    case 'M': shift = 20; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s': unknown size suffix", s);
    }
    if (*end) {
        end++;
        if (*end == 'i' || *end == 'I') end++;
        if (*end == 'B' || *end == 'b') end++;
        if (*end) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s': unknown size suffix", s);
    }
    if (shift && v > (ULLONG_MAX >> shift)) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' overflows", s);
    *out = (uint64_t)v << shift;
    return 0;
}

int dl_parse_float(const char *s, double *out, char *err, size_t errlen) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno == ERANGE || isnan(v))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' is not a number", s);
    *out = v;
    return 0;
}

static int takes_value(const dl_opt *o) {
    return o->type != DL_OPT_FLAG && o->type != DL_OPT_COUNT && o->type != DL_OPT_HEADING;
}

static int set_value(const dl_opt *o, const char *arg, char *err, size_t errlen) {
    int rc = 0;
    switch (o->type) {
    case DL_OPT_FLAG: *(int *)o->dst = 1; break;
    case DL_OPT_COUNT: (*(int *)o->dst)++; break;
    case DL_OPT_INT: rc = dl_parse_int(arg, (long long *)o->dst, err, errlen); break;
    case DL_OPT_SIZE: rc = dl_parse_size(arg, (uint64_t *)o->dst, err, errlen); break;
    case DL_OPT_FLOAT: rc = dl_parse_float(arg, (double *)o->dst, err, errlen); break;
    case DL_OPT_STR: *(const char **)o->dst = arg; break;
    case DL_OPT_STRLIST: {
        dl_strlist *l = o->dst;
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 8;
            const char **v = realloc(l->v, cap * sizeof *v);
            if (!v) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            l->v = v; l->cap = cap;
        }
        l->v[l->n++] = arg;
        break;
    }
    case DL_OPT_FUNC: rc = o->fn(arg, o->dst, err, errlen); break;
    case DL_OPT_THREADS: {
        long long *n = o->dst;
        rc = dl_parse_int(arg, n, err, errlen);
        if (!rc && (*n < 0 || *n > DL_THREADS_MAX))
            rc = dl_seterr(err, errlen, -DL_EXIT_USAGE, "%lld: out of range [0, %d]", *n, DL_THREADS_MAX);
        break;
    }
    case DL_OPT_HEADING: break;
    }
    if (rc) dl_err_prefix(err, errlen, "--%s", o->name);
    return rc;
}

int dl_opts_parse(const dl_opt *opts, int argc, char **argv, char ***pos, int *npos,
                  char *err, size_t errlen) {
    /* defaults first, through the same parsers */
    for (const dl_opt *o = opts; o->name; o++) {
        if (o->type == DL_OPT_HEADING || !o->def) continue;
        int rc = set_value(o, o->def, err, errlen);
        if (rc) return rc;
    }
    char **p = calloc((size_t)argc + 1, sizeof *p);
    if (!p) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int np = 0, only_pos = 0;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) { p[np++] = a; continue; }
        if (!strcmp(a, "--")) { only_pos = 1; continue; }
        if (a[1] == '-') {
            const char *name = a + 2, *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            const dl_opt *o = NULL;
            for (const dl_opt *q = opts; q->name; q++)
                if (q->type != DL_OPT_HEADING && strlen(q->name) == len && !strncmp(q->name, name, len)) { o = q; break; }
            if (!o) { free(p); return dl_seterr(err, errlen, -DL_EXIT_USAGE, "unknown option '--%.*s' (see --help)", (int)len, name); }
            const char *val = NULL;
            if (takes_value(o)) {
                if (eq) val = eq + 1;
                else if (i + 1 < argc) val = argv[++i];
                else { free(p); return dl_seterr(err, errlen, -DL_EXIT_USAGE, "option '--%s' needs a value", o->name); }
            } else if (eq) {
                free(p); return dl_seterr(err, errlen, -DL_EXIT_USAGE, "option '--%s' takes no value", o->name);
            }
            int rc = set_value(o, val, err, errlen);
            if (rc) { free(p); return rc; }
            continue;
        }
        /* short options, possibly grouped: -qv, -L256, -L 256 */
        for (const char *c = a + 1; *c; c++) {
            const dl_opt *o = NULL;
            for (const dl_opt *q = opts; q->name; q++)
                if (q->type != DL_OPT_HEADING && q->short_name == *c) { o = q; break; }
            if (!o) { free(p); return dl_seterr(err, errlen, -DL_EXIT_USAGE, "unknown option '-%c' (see --help)", *c); }
            if (takes_value(o)) {
                const char *val = c[1] ? c + 1 : (i + 1 < argc ? argv[++i] : NULL);
                if (!val) { free(p); return dl_seterr(err, errlen, -DL_EXIT_USAGE, "option '-%c' needs a value", *c); }
                int rc = set_value(o, val, err, errlen);
                if (rc) { free(p); return rc; }
                break;
            }
            int rc = set_value(o, NULL, err, errlen);
            if (rc) { free(p); return rc; }
        }
    }
    if (pos) *pos = p; else free(p);
    if (npos) *npos = np;
    return 0;
}

static const char *metavar(const dl_opt *o) {
    if (o->metavar) return o->metavar;
    switch (o->type) {
    case DL_OPT_INT: case DL_OPT_THREADS: return "N";
    case DL_OPT_SIZE: return "SIZE";
    case DL_OPT_FLOAT: return "X";
    case DL_OPT_STR: case DL_OPT_STRLIST: case DL_OPT_FUNC: return "STR";
    default: return "";
    }
}

int dl_opts_usage(FILE *f, const dl_opt *opts, const char *synopsis, const char *description) {
    fprintf(f, "usage: %s\n", synopsis);
    if (description && *description) fprintf(f, "\n%s\n", description);
    int first = 1;
    for (const dl_opt *o = opts; o->name; o++) {
        if (o->type == DL_OPT_HEADING) { fprintf(f, "\n%s:\n", o->name); first = 0; continue; }
        if (first) { fprintf(f, "\noptions:\n"); first = 0; }
        char left[96];
        snprintf(left, sizeof left, "  %s%c%s--%s%s%s", o->short_name ? "-" : "",
                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                 takes_value(o) ? " " : "", takes_value(o) ? metavar(o) : "");
        fprintf(f, "%-30s %s", left, o->help ? o->help : "");
        if (o->def && o->type != DL_OPT_FLAG) fprintf(f, " [%s]", o->def);
        if (o->type == DL_OPT_STRLIST) fprintf(f, " (repeatable)");
        fputc('\n', f);
    }
    fprintf(f, "\n%s", DL_EXIT_HELP);
    /* a closed or full stdout shows only at the flush; report it, not exit 0 */
    if (fflush(f) || ferror(f)) return -DL_EXIT_IO;
    return 0;
}

int dl_opts_help(const dl_opt *opts, const char *synopsis, const char *description) {
    return dl_opts_help_epilog(opts, synopsis, description, NULL);
}

int dl_opts_help_epilog(const dl_opt *opts, const char *synopsis, const char *description,
                        const char *epilog) {
    errno = 0;
    int rc = dl_opts_usage(stdout, opts, synopsis, description);
    if (!rc && epilog) {
        fprintf(stdout, "\n%s", epilog);
        if (fflush(stdout) || ferror(stdout)) rc = -DL_EXIT_IO;
    }
    if (!rc) return 0;
    dl_error("writing --help to stdout: %s", errno ? strerror(errno) : "write error");
    return DL_EXIT_IO;
}

/* ------------------------------------------------------------------------ */
int dl_opt_shard_fn(const char *arg, void *dst, char *err, size_t errlen) {
    dl_common *c = dst;
    long long i, n;
    char extra;
    if (sscanf(arg, "%lld/%lld%c", &i, &n, &extra) != 2 || n < 1 || i < 0 || i >= n)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' is not I/N with 0 <= I < N", arg);
    c->shard_i = i; c->shard_n = n; c->shard_given = 1;
    return 0;
}

int dl_common_finish(dl_common *c, char *err, size_t errlen) {
    dl_verbosity = c->quiet ? 0 : 1 + c->verbose;
    if (!c->shard_given) {
        c->shard_i = 0; c->shard_n = 1;
        const char *id = getenv("SLURM_ARRAY_TASK_ID"), *cnt = getenv("SLURM_ARRAY_TASK_COUNT");
        if (id && cnt && *id && *cnt) {
            long long i, n;
            const char *mn = getenv("SLURM_ARRAY_TASK_MIN");
            if (dl_parse_int(id, &i, err, errlen) || dl_parse_int(cnt, &n, err, errlen))
                return dl_seterr(err, errlen, -DL_EXIT_USAGE, "bad SLURM_ARRAY_TASK_ID/COUNT '%s'/'%s'", id, cnt);
            long long m = 0;
            if (mn && *mn && dl_parse_int(mn, &m, err, errlen) == 0) i -= m;  /* arrays may start at 1 */
            if (n < 1 || i < 0 || i >= n)
                return dl_seterr(err, errlen, -DL_EXIT_USAGE, "SLURM_ARRAY_TASK_ID %s out of range for COUNT %s", id, cnt);
            c->shard_i = i; c->shard_n = n;
            dl_verbose("slice %lld/%lld from SLURM_ARRAY_TASK_ID", i, n);
        }
    }
    if (c->shards < 0 || c->shards > 99999)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--shards %lld out of range [0, 99999]", c->shards);
    if (c->shards > 0 && (!c->output || !strcmp(c->output, "-")))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--shards needs -o PREFIX");
    if (c->zstd_level < 1 || c->zstd_level > 22)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "--zstd-level %lld out of range [1, 22]", c->zstd_level);
    return 0;
}

void dl_common_out_opts(const dl_common *c, dl_out_opts *o) {
    const dl_out_opts def = DL_OUT_OPTS_DEFAULT;
    *o = def;
    o->zstd = c->zstd ? 1 : -1;
    o->level = (int)c->zstd_level;
    o->force = c->force;
}
