/* tok_bench.c — encode speed of the tokenizer engine (dl_tok_encode) on a file.
 *
 *   tok_bench TOKENIZER FILE [RUNS] [MODE]
 * MODE: "file" (default: the whole file is one document, as HF's
 * tokenizer.encode(text) in bench/tok_bench.py), "lines" (one document per
 * line).  Prints the best of RUNS (default 5) as
 *   "<MB/s> MB/s <tokens> tokens <seconds> s"
 * on stdout.  Single thread; the BPE word cache starts empty for every run
 * (a fresh dl_tok), as HF's does for a fresh Tokenizer.  Build:
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Ishare/io -Ishare/tok bench/tok_bench.c build/libdllm.a \
 *      -o build/tok_bench -lpcre2-8 -lutf8proc -ljansson -lzstd -lm -fopenmp
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dl_io.h"
#include "dl_tok.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: tok_bench TOKENIZER FILE [RUNS] [file|lines]\n");
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    int lines = argc > 4 && !strcmp(argv[4], "lines");
    char err[512], *data;
    size_t len;
    if (dl_read_file(argv[2], &data, &len, err, sizeof err)) {
        fprintf(stderr, "tok_bench: %s\n", err);
        return 3;
    }
    double best = 1e30;
    size_t ntok = 0;
    for (int r = 0; r < (runs > 0 ? runs : 1); r++) {
        dl_tok *t;
        if (dl_tok_load(&t, argv[1], err, sizeof err)) {
            fprintf(stderr, "tok_bench: %s\n", err);
            return 1;
        }
        dl_u32buf ids = { 0 };
        double t0 = now();
        int rc = 0;
        if (!lines) {
            rc = dl_tok_encode(t, data, len, &ids, err, sizeof err);
        } else {
            for (size_t pos = 0; pos <= len && !rc;) {
                const char *nl = memchr(data + pos, '\n', len - pos);
                size_t e = nl ? (size_t)(nl - data) : len;
                rc = dl_tok_encode(t, data + pos, e - pos, &ids, err, sizeof err);
                pos = e + 1;
            }
        }
        double dt = now() - t0;
        if (rc) {
            fprintf(stderr, "tok_bench: %s\n", err);
            return 1;
        }
        if (dt < best) best = dt;
        ntok = ids.n;
        dl_u32buf_free(&ids);
        dl_tok_free(t);
    }
    printf("%.2f MB/s %zu tokens %.4f s\n", (double)len / 1e6 / best, ntok, best);
    free(data);
    return 0;
}
