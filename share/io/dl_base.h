/* dl_base.h — exit codes, error convention, growable buffers.
 *
 * Error convention (whole library): functions return 0 on success and a
 * NEGATIVE exit code on failure (-DL_EXIT_DATA, -DL_EXIT_IO, ...), after
 * writing a one-line message (no program name, no newline) into the
 * caller's `err` buffer of `errlen` bytes.  Only main() turns that into a
 * message and an exit status (dl_die).  Library code never exits.
 *
 * Ownership: dl_*_init allocates, dl_*_free releases and is safe on a
 * zeroed struct; no function takes ownership of its arguments.
 */
#ifndef DL_BASE_H
#define DL_BASE_H
#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

/* ---------------------------------------------------------------- exit codes
 * The one table every program documents in --help and README. */
enum {
    DL_EXIT_OK = 0,
    DL_EXIT_DATA = 1,        /* bad record, incompatible header, truncated stream, bad token id */
    DL_EXIT_USAGE = 2,       /* bad flags or arguments */
    DL_EXIT_IO = 3,          /* cannot open/read/write/rename, disk full, closed pipe */
    DL_EXIT_DEVICE = 4,      /* CUDA / NCCL / MPI runtime error */
    DL_EXIT_INTERRUPTED = 130 /* SIGINT or SIGTERM; temporary outputs removed */
};
/* Multi-line text for --help: "exit codes: 0 ok, 1 data error, ..." */
extern const char DL_EXIT_HELP[];

/* printf into err (errlen may be 0); returns `code` (a negative DL_EXIT_*) so
 * library code can write `return dl_seterr(err, errlen, -DL_EXIT_DATA, "...")`. */
int dl_seterr(char *err, size_t errlen, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Prefix an existing message: err = "<prefix>: <err>". */
void dl_err_prefix(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---------------------------------------------------------------- buffers */
typedef struct { uint32_t *p; size_t n, cap; } dl_u32buf;  /* token ids */
typedef struct { char *p; size_t n, cap; } dl_strbuf;      /* bytes, always NUL-terminated when p != NULL */

int dl_u32buf_reserve(dl_u32buf *b, size_t cap);           /* 0 or -DL_EXIT_IO (out of memory) */
int dl_u32buf_push(dl_u32buf *b, uint32_t v);
int dl_u32buf_append(dl_u32buf *b, const uint32_t *v, size_t n);
void dl_u32buf_free(dl_u32buf *b);

int dl_strbuf_reserve(dl_strbuf *b, size_t cap);
int dl_strbuf_append(dl_strbuf *b, const void *s, size_t n);
int dl_strbuf_puts(dl_strbuf *b, const char *s);
int dl_strbuf_printf(dl_strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dl_strbuf_free(dl_strbuf *b);

/* Little-endian uint32 <-> bytes (ids travel as LE uint32 bin blobs). */
void dl_u32_to_le(void *dst, const uint32_t *src, size_t n);
void dl_u32_from_le(uint32_t *dst, const void *src, size_t n);

/* Always-on internal invariant check (a bug, not bad input): prints and aborts. */
#define DL_ASSERT(c) ((c) ? (void)0 : dl_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void dl_assert_fail(const char *expr, const char *file, int line);

/* sha256 of a byte range, as 64 lowercase hex chars + NUL. */
void dl_sha256_hex(const void *data, size_t n, char out[65]);

#endif
