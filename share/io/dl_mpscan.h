/* dl_mpscan.h — checks a msgpack object's declared sizes against the bytes
 * that can still come, before msgpack-c's unpacker sees them.
 *
 * Why: msgpack-c allocates 24 bytes per declared array element (48 per map
 * pair) as soon as it reads a container header, so a 6-byte record that
 * declares 4294967295 elements asks for 96 GB ("out of memory", exit 3).  The
 * reader therefore hands msgpack_unpacker_next only objects that are wholly
 * buffered; this scanner walks the buffered bytes (resumable: it keeps its
 * place between reads) and says when the object is complete.  Rule: every
 * element takes at least one byte, so a container of N elements needs N
 * bytes (2N for a map) after its header.  When the input's size is known (a regular uncompressed file) a larger
 * declaration is a data error at once; otherwise (pipe, zstd: the
 * decompressed size is unknown) the object is buffered until it completes or
 * the input ends, so memory stays proportional to the bytes actually read,
 * and at the end dl_mpscan_eof_msg names the declaration that did not fit.
 * Nesting deeper than msgpack-c's 32 open containers is a data error too.
 *
 * Does NOT build objects or validate UTF-8; bytes the format does not define
 * (0xc1) are left to the unpacker, which reports them as malformed, except
 * where a container open there declares more elements than are buffered
 * after its header (input size unknown): the unpacker would allocate them
 * first, so that is a data error here.
 */
#ifndef DL_MPSCAN_H
#define DL_MPSCAN_H
#include <stddef.h>
#include <stdint.h>

#define DL_MPSCAN_DEPTH 32   /* msgpack-c's MSGPACK_EMBED_STACK_SIZE */
#define DL_MPSCAN_UNKNOWN UINT64_MAX

typedef struct {
    size_t pos;                       /* bytes of the object scanned */
    int depth;                        /* open containers */
    uint64_t left[DL_MPSCAN_DEPTH];   /* elements still to come in each */
    uint64_t decl[DL_MPSCAN_DEPTH];   /* declared elements (map: pairs) */
    size_t at[DL_MPSCAN_DEPTH];       /* offset just after its header */
    unsigned char is_map[DL_MPSCAN_DEPTH];
} dl_mpscan;

void dl_mpscan_reset(dl_mpscan *s);
/* buf[0..n): the object's bytes buffered so far (the same start every call;
 * n only grows).  avail: bytes the object can have in all, counted from
 * buf[0] (DL_MPSCAN_UNKNOWN when unknown).  Returns 1 when the object is
 * complete (or holds a byte only the unpacker can judge), 0 when more bytes
 * are needed, -DL_EXIT_DATA with a message in err for a declaration beyond
 * avail or nesting deeper than DL_MPSCAN_DEPTH. */
int dl_mpscan_feed(dl_mpscan *s, const unsigned char *buf, size_t n, uint64_t avail, char *err, size_t errlen);
/* The input ended after n bytes of an incomplete object: 1 and a message in
 * msg when an open container declared more elements than the bytes that
 * followed its header, else 0 (a plain truncation). */
int dl_mpscan_eof_msg(const dl_mpscan *s, size_t n, char *msg, size_t len);

#endif
