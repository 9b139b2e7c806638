/* dl_mpscan.c — declared sizes of a msgpack object vs the input (see dl_mpscan.h). */
#include "dl_mpscan.h"
#include <stdio.h>
#include "dl_base.h"

void dl_mpscan_reset(dl_mpscan *s) { s->pos = 0; s->depth = 0; }

static uint64_t be(const unsigned char *p, int k) {
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v = v << 8 | p[i];
    return v;
}

/* One element ended: count it in its container, closing the containers it
 * completes.  1 when the whole object is done. */
static int element_done(dl_mpscan *s) {
    while (s->depth > 0) {
        if (--s->left[s->depth - 1] > 0) return 0;
        s->depth--;
    }
    return 1;
}

/* Byte 0xc1 (never used) at s->pos: the unpacker will call the object
 * malformed (return 1), but only after allocating every container that is
 * open there.  With the input's size unknown, a container may declare more
 * elements than the bytes buffered after its header (zstd input, found by
 * fuzz_stream_zstd: 1e9 elements, 26 GB); that is a data error here. */
static int malformed_at(const dl_mpscan *s, size_t n, uint64_t avail, char *err, size_t errlen) {
    if (avail != DL_MPSCAN_UNKNOWN) return 1;   /* declarations already checked against avail */
    for (int i = 0; i < s->depth; i++) {
        uint64_t need = s->decl[i] * (s->is_map[i] ? 2 : 1);
        if (need > n - s->at[i])
            return dl_seterr(err, errlen, -DL_EXIT_DATA,
                             "malformed msgpack: byte 0xc1 inside %s that declares %llu elements, more than the "
                             "%zu bytes after its header", s->is_map[i] ? "a map" : "an array",
                             (unsigned long long)s->decl[i], n - s->at[i]);
    }
    return 1;
}

int dl_mpscan_feed(dl_mpscan *s, const unsigned char *buf, size_t n, uint64_t avail, char *err, size_t errlen) {
    while (s->pos < n) {
        const unsigned char *p = buf + s->pos;
        unsigned c = p[0];
        size_t hdr = 1;           /* header bytes */
        uint64_t body = 0;        /* payload bytes after the header (str/bin/ext) */
        int64_t count = -1;       /* container elements (map: pairs), -1 for a scalar */
        int is_map = 0;
        if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        } else if (c <= 0x8f) { count = c & 0x0f; is_map = 1; }
        else if (c <= 0x9f) count = c & 0x0f;
        else if (c <= 0xbf) body = c & 0x1f;
        else if (c == 0xc1) return malformed_at(s, n, avail, err, errlen);   /* never used in msgpack */
        else if (c >= 0xc4 && c <= 0xc6) hdr = 1 + ((size_t)1 << (c - 0xc4));          /* bin 8/16/32 */
        else if (c >= 0xc7 && c <= 0xc9) hdr = 2 + ((size_t)1 << (c - 0xc7));          /* ext 8/16/32 + type */
        else if (c == 0xca) hdr = 5;
        else if (c == 0xcb) hdr = 9;
        else if (c >= 0xcc && c <= 0xcf) hdr = 1 + ((size_t)1 << (c - 0xcc));          /* uint 8..64 */
        else if (c >= 0xd0 && c <= 0xd3) hdr = 1 + ((size_t)1 << (c - 0xd0));          /* int 8..64 */
        else if (c >= 0xd4 && c <= 0xd8) hdr = 2 + ((size_t)1 << (c - 0xd4));          /* fixext 1..16 */
        else if (c >= 0xd9 && c <= 0xdb) hdr = 1 + ((size_t)1 << (c - 0xd9));          /* str 8/16/32 */
        else if (c == 0xdc || c == 0xdd) { hdr = c == 0xdc ? 3 : 5; count = 0; }      /* array 16/32 */
        else { hdr = c == 0xde ? 3 : 5; count = 0; is_map = 1; }                        /* map 16/32 */
        if (n - s->pos < hdr) return 0;
        if ((c >= 0xc4 && c <= 0xc9) || (c >= 0xd9 && c <= 0xdb))
            body = be(p + 1, (int)(c >= 0xd9 ? hdr - 1 : c >= 0xc7 ? hdr - 2 : hdr - 1));
        if (c >= 0xdc) count = (int64_t)be(p + 1, (int)hdr - 1);
        size_t after = s->pos + hdr;
        const char *what = is_map ? "map" : "array";
        if (count >= 0 && s->depth >= DL_MPSCAN_DEPTH)   /* msgpack-c refuses any container there */
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "containers nested deeper than %d levels", DL_MPSCAN_DEPTH);
        if (count > 0) {
            uint64_t need = (uint64_t)count * (is_map ? 2 : 1);
            if (avail != DL_MPSCAN_UNKNOWN && need > avail - after)
                return dl_seterr(err, errlen, -DL_EXIT_DATA,
                                 "truncated or corrupt record: declared %s of %lld elements exceeds the remaining input (%llu bytes)", what,
                                 (long long)count, (unsigned long long)(avail - after));
            s->pos = after;
            s->left[s->depth] = need;
            s->decl[s->depth] = (uint64_t)count;
            s->at[s->depth] = after;
            s->is_map[s->depth] = (unsigned char)is_map;
            s->depth++;
            continue;
        }
        /* a str/bin/ext body is not allocated by msgpack-c (it points into
         * the buffer): one too long for the input is a plain truncation */
        if (body > n - after) return 0;
        s->pos = after + (size_t)body;
        if (element_done(s)) return 1;
    }
    return 0;
}

int dl_mpscan_eof_msg(const dl_mpscan *s, size_t n, char *msg, size_t len) {
    for (int i = 0; i < s->depth; i++) {
        uint64_t need = s->decl[i] * (s->is_map[i] ? 2 : 1);
        if (need > n - s->at[i]) {
            snprintf(msg, len, "truncated or corrupt record: declared %s of %llu elements exceeds the remaining input (%zu bytes)",
                     s->is_map[i] ? "map" : "array", (unsigned long long)s->decl[i], n - s->at[i]);
            return 1;
        }
    }
    return 0;
}
