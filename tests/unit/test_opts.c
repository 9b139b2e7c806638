/* test_opts.c — the option table: long/short/grouped/=value forms, defaults
 * through the same parsers, sizes with suffixes and overflow, errors. */
#include <string.h>
#include <stdlib.h>
#include "dl_test.h"
#include "dl_opts.h"

static long long L, n; static uint64_t sz; static double x; static const char *s; static int flag, cnt;
static dl_strlist list; static dl_common common;
static dl_opt OPTS[] = {
    { "seq-len", 'L', DL_OPT_INT, &L, "1024", "N", "row length", NULL },
    { "size", 0, DL_OPT_SIZE, &sz, "1K", NULL, "a size", NULL },
    { "x", 'x', DL_OPT_FLOAT, &x, "0.5", NULL, "a float", NULL },
    { "name", 0, DL_OPT_STR, &s, "abc", NULL, "a string", NULL },
    { "flag", 'F', DL_OPT_FLAG, &flag, NULL, NULL, "a flag", NULL },
    { "count", 'c', DL_OPT_COUNT, &cnt, NULL, NULL, "a counter", NULL },
    { "item", 0, DL_OPT_STRLIST, &list, NULL, NULL, "repeatable", NULL },
    { "n", 'n', DL_OPT_INT, &n, NULL, NULL, "no default", NULL },
    DL_COMMON_OPTS(&common),
    DL_OPTS_END
};

static int parse(const char *line, char ***pos, int *npos, char *err) {
    static char buf[512]; static char *argv[64];
    strcpy(buf, line);
    int argc = 0;
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) argv[argc++] = t;
    memset(&common, 0, sizeof common); flag = cnt = 0; list.n = 0; n = -1;
    return dl_opts_parse(OPTS, argc, argv, pos, npos, err, 256);
}

int main(void) {
    char err[256], **pos; int np;
    DL_CHECK(parse("prog", &pos, &np, err) == 0 && L == 1024 && sz == 1024 && x == 0.5 && !strcmp(s, "abc") && n == -1 && np == 0,
             "defaults applied through the parsers");
    free(pos);
    DL_CHECK(parse("prog -L 256 --size=2M -x0.25 --name zz a.txt - -Fcc --item a --item b", &pos, &np, err) == 0, "parse ok: %s", err);
    DL_CHECK(L == 256 && sz == 2u << 20 && x == 0.25 && !strcmp(s, "zz") && flag && cnt == 2, "values set");
    DL_CHECK(np == 2 && !strcmp(pos[0], "a.txt") && !strcmp(pos[1], "-"), "positionals in order, '-' kept");
    DL_CHECK(list.n == 2 && !strcmp(list.v[1], "b"), "repeatable option collected");
    free(pos);
    DL_CHECK(parse("prog -L256 -- -F", &pos, &np, err) == 0 && L == 256 && np == 1 && !flag, "-L256 and -- ends options");
    free(pos);
    DL_CHECK(parse("prog --bogus", &pos, &np, err) == -DL_EXIT_USAGE && strstr(err, "--bogus"), "unknown option: %s", err);
    DL_CHECK(parse("prog -L", &pos, &np, err) == -DL_EXIT_USAGE && strstr(err, "needs a value"), "missing value: %s", err);
    DL_CHECK(parse("prog -L 12x", &pos, &np, err) == -DL_EXIT_USAGE && strstr(err, "seq-len"), "bad int names the option: %s", err);
    DL_CHECK(parse("prog --size 20000000T", &pos, &np, err) == -DL_EXIT_USAGE && strstr(err, "overflows"), "size overflow: %s", err);
    DL_CHECK(parse("prog --flag=1", &pos, &np, err) == -DL_EXIT_USAGE, "flag with value refused: %s", err);
    DL_CHECK(parse("prog --shard 2/4", &pos, &np, err) == 0 && common.shard_i == 2 && common.shard_n == 4, "--shard I/N");
    free(pos);
    DL_CHECK(parse("prog --shard 4/4", &pos, &np, err) == -DL_EXIT_USAGE, "--shard out of range: %s", err);
    /* SLURM defaults */
    parse("prog", &pos, &np, err); free(pos);
    setenv("SLURM_ARRAY_TASK_ID", "3", 1); setenv("SLURM_ARRAY_TASK_COUNT", "8", 1);
    DL_CHECK(dl_common_finish(&common, err, sizeof err) == 0 && common.shard_i == 3 && common.shard_n == 8, "--shard from SLURM_ARRAY_TASK_ID/COUNT");
    parse("prog --shard 1/2", &pos, &np, err); free(pos);
    DL_CHECK(dl_common_finish(&common, err, sizeof err) == 0 && common.shard_i == 1 && common.shard_n == 2, "explicit --shard beats SLURM");
    unsetenv("SLURM_ARRAY_TASK_ID");
    parse("prog --shards 4", &pos, &np, err); free(pos);
    DL_CHECK(dl_common_finish(&common, err, sizeof err) == -DL_EXIT_USAGE, "--shards without -o refused: %s", err);
    FILE *f = tmpfile();
    dl_opts_usage(f, OPTS, "prog [options] FILE...", "Does things.");
    long len = ftell(f); rewind(f);
    char *help = calloc(1, len + 1); size_t got = fread(help, 1, len, f); fclose(f); (void)got;
    DL_CHECK(strstr(help, "--seq-len N") && strstr(help, "[1024]") && strstr(help, "--shard I/N") && strstr(help, "exit codes"),
             "--help generated from the table shows names, defaults and exit codes");
    free(help);
    return dl_test_end();
}
