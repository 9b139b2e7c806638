/* noise.c — dllm-sample's noise source: uniforms in (0,1) by index.
 *
 * Philox mode: u[i] comes from Philox4x32-10 (share/io/dl_rng.h) with key =
 * seed and counter = {prompt index lo, hi, (copy << 8) | DL_RNG_SAMPLE,
 * block}, block = i / 2 (low 32 bits; the higher bits go into `copy`, so a
 * stream holds 2^56 uniforms), the 64-bit word (w[2h] | w[2h+1] << 32) for
 * h = i % 2 mapped as dl_rng_double_open: ((x >> 12) + 0.5) / 2^52.  A pure
 * function of (seed, index, i): any range can be filled from any thread.
 *
 * File mode (--noise FILE, the test hook): the raw little-endian float64
 * values of FILE, read into memory at open; every value must lie in (0,1).
 * Taking past the end marks the stream failed; smp_noise_check reports it.
 *
 * Does not: decide the order of consumption (sample.h documents it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_rng.h"
#include "sample.h"

struct smp_noise {
    int is_file;
    uint32_t key[2];
    uint64_t seed;         /* Philox: key as one number */
    uint64_t index;        /* Philox: prompt index */
    double *vals;          /* file: n_vals values */
    uint64_t n_vals;
    uint64_t cursor;
    int failed;
    char path[256];
};

int smp_noise_philox(smp_noise **n, uint64_t seed, uint64_t index) {
    smp_noise *z = calloc(1, sizeof *z);
    if (!z) return -DL_EXIT_IO;
    smp_noise_rekey(z, seed, index);
    *n = z;
    return 0;
}

void smp_noise_rekey(smp_noise *n, uint64_t seed, uint64_t index) {
    n->key[0] = (uint32_t)seed;
    n->key[1] = (uint32_t)(seed >> 32);
    n->seed = seed;
    n->index = index;
    n->cursor = 0;
}

int smp_noise_file(smp_noise **n, const char *path, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot open noise file", path);
    smp_noise *z = calloc(1, sizeof *z);
    size_t cap = 0, len = 0;
    unsigned char *buf = NULL;
    int rc = z ? 0 : dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    while (!rc) {
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(buf, nc);
            if (!nb) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: out of memory", path); break; }
            buf = nb; cap = nc;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) {
            if (ferror(f)) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: read error", path);
            break;
        }
    }
    fclose(f);
    if (!rc && len % 8)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %zu bytes is not a whole number of float64 values", path, len);
    if (rc) { free(buf); free(z); return rc; }
    z->is_file = 1;
    z->n_vals = len / 8;
    z->vals = (double *)buf;   /* converted in place */
    for (uint64_t i = 0; i < z->n_vals; i++) {
        const unsigned char *p = buf + 8 * i;
        uint64_t x = 0;
        for (int b = 7; b >= 0; b--) x = x << 8 | p[b];
        double d;
        memcpy(&d, &x, sizeof d);
        if (!(d > 0.0 && d < 1.0)) {
            free(buf); free(z);
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: value %llu is %g, not in (0,1)", path,
                             (unsigned long long)i, d);
        }
        z->vals[i] = d;
    }
    snprintf(z->path, sizeof z->path, "%s", path);
    *n = z;
    return 0;
}

uint64_t smp_noise_take(smp_noise *n, uint64_t count) {
    uint64_t i0 = n->cursor;
    n->cursor += count;
    if (n->is_file && n->cursor > n->n_vals) n->failed = 1;
    return i0;
}

static double philox_u(const smp_noise *n, uint64_t i, uint32_t w[4], uint64_t *have) {
    uint64_t blk = i >> 1;
    if (*have != blk) {
        uint32_t ctr[4] = { (uint32_t)n->index, (uint32_t)(n->index >> 32),
                            (uint32_t)(((blk >> 32) << 8) | DL_RNG_SAMPLE), (uint32_t)blk };
        dl_philox4x32_10(n->key, ctr, w);
        *have = blk;
    }
    int h = (int)(i & 1);
    uint64_t x = (uint64_t)w[2 * h] | (uint64_t)w[2 * h + 1] << 32;
    return ((x >> 12) + 0.5) * 0x1.0p-52;
}

void smp_noise_fill(const smp_noise *n, uint64_t i0, size_t count, double *out) {
    if (n->is_file) {
        for (size_t j = 0; j < count; j++) {
            uint64_t i = i0 + j;
            out[j] = i < n->n_vals ? n->vals[i] : 0.5;
        }
        return;
    }
    uint32_t w[4];
    uint64_t have = UINT64_MAX;
    for (size_t j = 0; j < count; j++) out[j] = philox_u(n, i0 + j, w, &have);
}

double smp_noise_u(smp_noise *n) {
    double u;
    smp_noise_fill(n, smp_noise_take(n, 1), 1, &u);
    return u;
}

void smp_noise_skip(smp_noise *n, uint64_t count) { smp_noise_take(n, count); }

int smp_noise_check(const smp_noise *n, char *err, size_t errlen) {
    if (!n->failed) return 0;
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: noise file too short: %llu values, %llu needed", n->path,
                     (unsigned long long)n->n_vals, (unsigned long long)n->cursor);
}

int smp_noise_is_file(const smp_noise *n) { return n->is_file; }

void smp_noise_key(const smp_noise *n, uint64_t *seed, uint64_t *stream) {
    *seed = n->is_file ? 0 : n->seed;
    *stream = n->is_file ? 0 : n->index;
}

void smp_noise_free(smp_noise *n) {
    if (!n) return;
    free(n->vals);
    free(n);
}
