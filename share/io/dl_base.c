/* dl_base.c — error messages, growable buffers, little-endian conversion,
 * assertions and SHA-256 (implements dl_base.h).
 *
 * Conventions: buffer functions return 0 or -DL_EXIT_IO when memory runs
 * out; they grow geometrically so appends are amortised O(1).
 * SHA-256 is FIPS 180-4, written here (no external crypto library), used
 * for the tokenizer hash in headers; it is not meant for secrets.
 * Not here: logging (dl_log.c), files (dl_io.c).
 */
#include "dl_base.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char DL_EXIT_HELP[] =
    "exit codes:\n"
    "  0    ok\n"
    "  1    data error (bad record, incompatible header, truncated or corrupt stream, bad token id)\n"
    "  2    usage error (bad flags or arguments)\n"
    "  3    I/O error (cannot open/read/write/rename, disk full, closed pipe)\n"
    "  4    device error (CUDA / NCCL / MPI)\n"
    "  130  interrupted (SIGINT/SIGTERM; temporary outputs removed)\n";

/* ------------------------------------------------------------------ errors */
int dl_seterr(char *err, size_t errlen, int code, const char *fmt, ...) {
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

void dl_err_prefix(char *err, size_t errlen, const char *fmt, ...) {
    if (!err || !errlen) return;
    char pre[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t lp = strlen(pre), le = strnlen(err, errlen - 1);
    if (lp + 2 >= errlen) { snprintf(err, errlen, "%s", pre); return; }
    size_t keep = le;
    if (lp + 2 + keep >= errlen) keep = errlen - 1 - lp - 2;
    memmove(err + lp + 2, err, keep);
    memcpy(err, pre, lp);
    err[lp] = ':'; err[lp + 1] = ' ';
    err[lp + 2 + keep] = '\0';
}

_Noreturn void dl_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "dllm: internal error: assertion failed at %s:%d: %s\n", file, line, expr);
    fflush(stderr);
    abort();
}

/* ------------------------------------------------------------------ buffers */
static size_t grow(size_t cap, size_t need) {
    size_t c = cap ? cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2) return need;
        c *= 2;
    }
    return c;
}

int dl_u32buf_reserve(dl_u32buf *b, size_t cap) {
    if (cap <= b->cap) return 0;
    if (cap > SIZE_MAX / sizeof(uint32_t)) return -DL_EXIT_IO;
    size_t c = grow(b->cap, cap);
    uint32_t *p = realloc(b->p, c * sizeof *p);
    if (!p) return -DL_EXIT_IO;
    b->p = p; b->cap = c;
    return 0;
}

int dl_u32buf_push(dl_u32buf *b, uint32_t v) {
    if (b->n == b->cap && dl_u32buf_reserve(b, b->n + 1)) return -DL_EXIT_IO;
    b->p[b->n++] = v;
    return 0;
}

int dl_u32buf_append(dl_u32buf *b, const uint32_t *v, size_t n) {
    if (n == 0) return 0;
    if (dl_u32buf_reserve(b, b->n + n)) return -DL_EXIT_IO;
    memcpy(b->p + b->n, v, n * sizeof *v);
    b->n += n;
    return 0;
}

void dl_u32buf_free(dl_u32buf *b) {
    free(b->p);
    b->p = NULL; b->n = b->cap = 0;
}

int dl_strbuf_reserve(dl_strbuf *b, size_t cap) {
    if (cap + 1 <= b->cap) return 0;
    if (cap == SIZE_MAX) return -DL_EXIT_IO;
    size_t c = grow(b->cap, cap + 1);
    char *p = realloc(b->p, c);
    if (!p) return -DL_EXIT_IO;
    if (!b->p) p[0] = '\0';
    b->p = p; b->cap = c;
    return 0;
}

int dl_strbuf_append(dl_strbuf *b, const void *s, size_t n) {
    if (dl_strbuf_reserve(b, b->n + n)) return -DL_EXIT_IO;
    if (n) memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
    return 0;
}

int dl_strbuf_puts(dl_strbuf *b, const char *s) { return dl_strbuf_append(b, s, strlen(s)); }

int dl_strbuf_printf(dl_strbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (k < 0) return -DL_EXIT_IO;
    if (!b->p || (size_t)k >= b->cap - b->n) {
        if (dl_strbuf_reserve(b, b->n + (size_t)k)) return -DL_EXIT_IO;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)k;
    return 0;
}

void dl_strbuf_free(dl_strbuf *b) {
    free(b->p);
    b->p = NULL; b->n = b->cap = 0;
}

/* ------------------------------------------------------------ little endian */
void dl_u32_to_le(void *dst, const uint32_t *src, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(dst, src, n * 4);   /* an empty bin's pointer may be NULL: memcpy(NULL, ..., 0) is UB */
#else
    unsigned char *d = dst;
    for (size_t i = 0; i < n; i++) {
        uint32_t v = src[i];
        d[4 * i] = (unsigned char)v; d[4 * i + 1] = (unsigned char)(v >> 8);
        d[4 * i + 2] = (unsigned char)(v >> 16); d[4 * i + 3] = (unsigned char)(v >> 24);
    }
#endif
}

void dl_u32_from_le(uint32_t *dst, const void *src, size_t n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (n) memcpy(dst, src, n * 4);   /* an empty bin's pointer may be NULL: memcpy(NULL, ..., 0) is UB */
#else
    const unsigned char *s = src;
    for (size_t i = 0; i < n; i++)
        dst[i] = (uint32_t)s[4 * i] | (uint32_t)s[4 * i + 1] << 8 |
                 (uint32_t)s[4 * i + 2] << 16 | (uint32_t)s[4 * i + 3] << 24;
#endif
}

/* ------------------------------------------------------------------ SHA-256
 * FIPS 180-4 §6.2: 64-byte blocks, 64 rounds, big-endian words. */
static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* The fuzz build (clang -fsanitize=fuzzer) traces every comparison; the
 * rounds' loop counters made hashing a tokenizer.json a third of
 * fuzz_tok_load's time while finding nothing (the rounds never branch on the
 * data).  ASan/UBSan still check this code. */
#if defined(__clang__)
#define SHA_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define SHA_NO_COVERAGE
#endif

SHA_NO_COVERAGE static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = k + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
        k = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
    }
    h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += k;
}

SHA_NO_COVERAGE void dl_sha256_hex(const void *data, size_t n, char out[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t left = n;
    while (left >= 64) { sha256_block(h, p); p += 64; left -= 64; }
    unsigned char tail[128] = {0};
    if (left) memcpy(tail, p, left);
    tail[left] = 0x80;
    size_t tl = left + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++) tail[tl - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha256_block(h, tail);
    if (tl == 128) sha256_block(h, tail + 64);
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++) {
            unsigned v = (h[i] >> (24 - 8 * j)) & 0xff;
            out[8 * i + 2 * j] = hex[v >> 4];
            out[8 * i + 2 * j + 1] = hex[v & 15];
        }
    out[64] = '\0';
}
