/* dl_io.c — byte streams for dllm (implements dl_io.h).
 *
 * dl_in: raw read(2) on a file or stdin.  The first 4 bytes are peeked into
 * the reader's own small buffer (works on pipes: nothing is pushed back into
 * the fd); with the zstd magic the rest goes through a ZSTD_DStream that
 * decompresses straight into the caller's buffer, from a 1 MiB compressed
 * input buffer.  Plain input is read straight into the caller's buffer.
 *
 * dl_out: a 1 MiB staging buffer (small writes from msgpack's packer are
 * memcpy'd there), flushed with write(2) or through a ZSTD_CStream (level
 * from the options, content checksum on, compressing in 1-2 worker threads
 * so it overlaps the producer: zstd makes the same bytes for any worker
 * count >= 1, so outputs stay reproducible across machines).  Writes bigger than the buffer go
 * out directly.  The first write error is latched and returned by every
 * later call, and again by dl_out_finish/dl_out_close, so an EPIPE/ENOSPC
 * is never lost.  Named outputs live under "<path>.tmp.<pid>" until
 * dl_out_close renames them; dl_log's signal handler removes them on
 * SIGINT/SIGTERM.  Durability (dl_sync.h): dl_out_finish fsyncs the temp
 * file before closing it, dl_out_close renames it and fsyncs the directory;
 * a failure of either removes the output (the temp file, or the final name
 * when only the directory fsync failed) and is an I/O error, exit 3.
 *
 * An existing output that is not a regular file (/dev/null, a FIFO) is
 * written in place: there is nothing to rename and nothing to remove.
 *
 * Pipes: both ends ask for a 1 MiB pipe buffer (F_SETPIPE_SZ, best effort)
 * to cut context switches in `dllm-pack | dllm-mask` pipelines.
 * Not here: msgpack (dl_stream.c), SIGPIPE policy (dl_prog_init ignores
 * SIGPIPE, so a closed pipe is an EPIPE write error reported here).
 */
#include "dl_io.h"
#include "dl_log.h"
#include "dl_sync.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define IN_RAW_CAP (1u << 20)     /* compressed input buffer (zstd only) */
#define OUT_STAGE_CAP (1u << 20)  /* uncompressed staging buffer */
#define PIPE_WANT (1 << 20)
#define ZSTD_WORKERS 2            /* compression threads per output (see dl_out_open) */

static void pipe_grow(int fd) {
#ifdef F_SETPIPE_SZ
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode)) {
        int cur = fcntl(fd, F_GETPIPE_SZ);
        if (cur >= 0 && cur < PIPE_WANT) (void)fcntl(fd, F_SETPIPE_SZ, PIPE_WANT);
    }
#else
    (void)fd;
#endif
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ================================================================== input */
struct dl_in {
    int fd, is_std;
    char *name;
    int64_t size;
    unsigned char peek[4];
    size_t peek_len, peek_pos;    /* bytes peeked, bytes already handed out (plain) */
    int eof;                      /* read(2) returned 0 */
    int is_zstd;
    ZSTD_DStream *ds;
    unsigned char *raw;           /* zstd: compressed bytes [raw_pos, raw_len) pending */
    size_t raw_pos, raw_len, raw_cap;
    int in_frame;                 /* zstd: inside a frame (EOF now = truncated) */
    uint64_t raw_consumed;        /* bytes taken from the fd and consumed */
    uint64_t offset;              /* decompressed bytes delivered */
};

static ssize_t read_some(dl_in *in, void *buf, size_t n, char *err, size_t errlen) {
    for (;;) {
        ssize_t k = read(in->fd, buf, n);
        if (k >= 0) {
            if (k == 0) in->eof = 1;
            return k;
        }
        if (errno == EINTR) continue;
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: read error: %s", in->name, strerror(errno));
    }
}

int dl_in_open(dl_in **inp, const char *path, char *err, size_t errlen) {
    *inp = NULL;
    dl_in *in = calloc(1, sizeof *in);
    if (!in) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    in->size = -1;
    if (!path || strcmp(path, "-") == 0) {
        in->fd = 0; in->is_std = 1;
        in->name = xstrdup("<stdin>");
    } else {
        in->name = xstrdup(path);
        in->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (in->fd < 0) {
            int e = errno;
            free(in->name); free(in);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot open: %s", path, strerror(e));
        }
    }
    if (!in->name) { dl_in_close(in); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    struct stat st;
    if (fstat(in->fd, &st) == 0) {
        if (S_ISREG(st.st_mode)) in->size = (int64_t)st.st_size;
        if (S_ISDIR(st.st_mode)) {
            dl_in_close(in);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: is a directory", path);
        }
#ifdef POSIX_FADV_SEQUENTIAL
        if (S_ISREG(st.st_mode)) (void)posix_fadvise(in->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
    }
    pipe_grow(in->fd);
    /* peek the magic number: loop, a pipe may deliver it in pieces */
    while (in->peek_len < 4 && !in->eof) {
        ssize_t k = read_some(in, in->peek + in->peek_len, 4 - in->peek_len, err, errlen);
        if (k < 0) { dl_in_close(in); return (int)k; }
        in->peek_len += (size_t)k;
    }
    in->raw_consumed = in->peek_len;
    uint32_t magic = 0;
    if (in->peek_len == 4)
        magic = (uint32_t)in->peek[0] | (uint32_t)in->peek[1] << 8 |
                (uint32_t)in->peek[2] << 16 | (uint32_t)in->peek[3] << 24;
    /* zstd frame, or a skippable frame (0x184D2A50..5F) */
    if (magic == 0xFD2FB528u || (magic & 0xFFFFFFF0u) == 0x184D2A50u) {
        in->is_zstd = 1;
        in->ds = ZSTD_createDStream();
        /* a file known to be shorter needs no more (a short fuzz input
         * then costs no 1 MiB allocation); pipes and big files: IN_RAW_CAP */
        in->raw_cap = in->size >= 4 && in->size < (int64_t)IN_RAW_CAP ? (size_t)in->size : IN_RAW_CAP;
        in->raw = malloc(in->raw_cap);
        if (!in->ds || !in->raw) { dl_in_close(in); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        ZSTD_initDStream(in->ds);
        memcpy(in->raw, in->peek, 4);
        in->raw_len = 4;
        in->peek_pos = in->peek_len;
        in->raw_consumed = 0;   /* counted when the decoder consumes them */
    }
    *inp = in;
    return 0;
}

static ssize_t read_plain(dl_in *in, unsigned char *buf, size_t n, char *err, size_t errlen) {
    size_t got = 0;
    if (in->peek_pos < in->peek_len) {
        size_t k = in->peek_len - in->peek_pos;
        if (k > n) k = n;
        memcpy(buf, in->peek + in->peek_pos, k);
        in->peek_pos += k;
        got = k;
    }
    if (got < n && !in->eof) {
        ssize_t k = read_some(in, buf + got, n - got, err, errlen);
        if (k < 0) return k;
        got += (size_t)k;
        in->raw_consumed += (uint64_t)k;
    }
    in->offset += got;
    return (ssize_t)got;
}

static ssize_t read_zstd(dl_in *in, unsigned char *buf, size_t n, char *err, size_t errlen) {
    for (;;) {
        if (in->raw_pos == in->raw_len && !in->eof) {
            in->raw_pos = in->raw_len = 0;
            ssize_t k = read_some(in, in->raw, in->raw_cap, err, errlen);
            if (k < 0) return k;
            in->raw_len = (size_t)k;
        }
        ZSTD_inBuffer ib = {in->raw + in->raw_pos, in->raw_len - in->raw_pos, 0};
        ZSTD_outBuffer ob = {buf, n, 0};
        size_t r = ZSTD_decompressStream(in->ds, &ob, &ib);
        if (ZSTD_isError(r))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: corrupt zstd data near compressed byte %llu: %s",
                             in->name, (unsigned long long)(in->raw_consumed + ib.pos), ZSTD_getErrorName(r));
        in->raw_pos += ib.pos;
        in->raw_consumed += ib.pos;
        if (ib.pos || ob.pos) in->in_frame = r != 0;
        if (ob.pos) {
            in->offset += ob.pos;
            return (ssize_t)ob.pos;
        }
        if (in->raw_pos == in->raw_len && in->eof) {
            if (in->in_frame)
                return dl_seterr(err, errlen, -DL_EXIT_DATA,
                                 "%s: truncated zstd frame (input ends at compressed byte %llu, "
                                 "decompressed byte %llu)", in->name,
                                 (unsigned long long)in->raw_consumed, (unsigned long long)in->offset);
            return 0;
        }
    }
}

ssize_t dl_in_read(dl_in *in, void *buf, size_t n, char *err, size_t errlen) {
    if (n == 0) return 0;
    return in->is_zstd ? read_zstd(in, buf, n, err, errlen) : read_plain(in, buf, n, err, errlen);
}

const char *dl_in_name(const dl_in *in) { return in->name; }
int64_t dl_in_size(const dl_in *in) { return in->size; }
uint64_t dl_in_raw_consumed(const dl_in *in) { return in->raw_consumed; }
uint64_t dl_in_offset(const dl_in *in) { return in->offset; }
int dl_in_is_zstd(const dl_in *in) { return in->is_zstd; }

void dl_in_close(dl_in *in) {
    if (!in) return;
    if (!in->is_std && in->fd >= 0) close(in->fd);
    ZSTD_freeDStream(in->ds);
    free(in->raw);
    free(in->name);
    free(in);
}

int dl_read_file(const char *path, char **data, size_t *len, char *err, size_t errlen) {
    *data = NULL; *len = 0;
    dl_in *in;
    int rc = dl_in_open(&in, path, err, errlen);
    if (rc) return rc;
    size_t cap = in->size > 0 && !in->is_zstd ? (size_t)in->size + 1 : 1 << 16, n = 0;
    char *p = malloc(cap);
    if (!p) { dl_in_close(in); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    for (;;) {
        if (cap - n < 2) {
            char *q = realloc(p, cap * 2);
            if (!q) { free(p); dl_in_close(in); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
            p = q; cap *= 2;
        }
        ssize_t k = dl_in_read(in, p + n, cap - n - 1, err, errlen);
        if (k < 0) { free(p); dl_in_close(in); return (int)k; }
        if (k == 0) break;
        n += (size_t)k;
    }
    p[n] = '\0';
    dl_in_close(in);
    *data = p; *len = n;
    return 0;
}

/* ================================================================= output */
struct dl_out {
    int fd, is_std;
    char *path, *tmp;         /* final name and temporary name (files only) */
    int slot;                 /* dl_tmp_register slot, -1 none */
    ZSTD_CCtx *cs;
    unsigned char *buf; size_t len, cap;    /* staging, uncompressed */
    unsigned char *zbuf; size_t zcap;       /* compressed output chunk */
    uint64_t bytes;
    int err; char msg[320];                 /* latched first error */
    int finished;                           /* frame ended, flushed, fd closed */
    int in_place;                           /* device/FIFO: no temp file, no rename */
};

static int out_fail(dl_out *o, int code, const char *what, int e) {
    if (!o->err) {
        o->err = code;
        snprintf(o->msg, sizeof o->msg, "%s: %s%s%s", o->is_std ? "<stdout>" : o->path, what,
                 e ? ": " : "", e ? strerror(e) : "");
    }
    return o->err;
}

static int latched(const dl_out *o, char *err, size_t errlen) {
    return dl_seterr(err, errlen, o->err, "%s", o->msg);
}

static int write_all(dl_out *o, const unsigned char *p, size_t n) {
    while (n) {
        ssize_t k = write(o->fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return out_fail(o, -DL_EXIT_IO, "write error", errno);
        }
        p += k; n -= (size_t)k;
    }
    return 0;
}

/* Compress src (ZSTD_e_continue) or end the frame (ZSTD_e_end, src may be empty). */
static int zwrite(dl_out *o, const void *src, size_t n, ZSTD_EndDirective mode) {
    ZSTD_inBuffer ib = {src, n, 0};
    for (;;) {
        ZSTD_outBuffer ob = {o->zbuf, o->zcap, 0};
        size_t r = ZSTD_compressStream2(o->cs, &ob, &ib, mode);
        if (ZSTD_isError(r)) {
            char w[128];
            snprintf(w, sizeof w, "zstd compression error: %s", ZSTD_getErrorName(r));
            return out_fail(o, -DL_EXIT_IO, w, 0);
        }
        if (ob.pos && write_all(o, o->zbuf, ob.pos)) return o->err;
        if (mode == ZSTD_e_end ? r == 0 : ib.pos == ib.size) return 0;
    }
}

static int emit(dl_out *o, const void *p, size_t n) {
    if (!n) return 0;
    return o->cs ? zwrite(o, p, n, ZSTD_e_continue) : write_all(o, p, n);
}

static int flush_stage(dl_out *o) {
    if (!o->len) return 0;
    int rc = emit(o, o->buf, o->len);
    o->len = 0;
    return rc;
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && memcmp(s + a - b, suf, b) == 0;
}

int dl_out_open(dl_out **outp, const char *path, const dl_out_opts *opts, char *err, size_t errlen) {
    *outp = NULL;
    dl_out_opts def = DL_OUT_OPTS_DEFAULT;
    if (!opts) opts = &def;
    int is_std = !path || strcmp(path, "-") == 0;
    if (is_std && opts->binary && !opts->force && isatty(1))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE,
                         "refusing to write binary output to a terminal (use -o FILE, a pipe, or -f to force)");
    dl_out *o = calloc(1, sizeof *o);
    if (!o) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    o->slot = -1;
    o->fd = -1;
    o->is_std = is_std;
    o->cap = OUT_STAGE_CAP;
    o->buf = malloc(o->cap);
    o->path = xstrdup(is_std ? "<stdout>" : path);
    if (!o->buf || !o->path) { dl_out_abort(o); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    int zstd = opts->zstd > 0 || (opts->zstd < 0 && !is_std && ends_with(path, ".zst"));
    if (zstd) {
        o->cs = ZSTD_createCCtx();
        o->zcap = ZSTD_CStreamOutSize() > OUT_STAGE_CAP ? ZSTD_CStreamOutSize() : OUT_STAGE_CAP;
        o->zbuf = malloc(o->zcap);
        if (!o->cs || !o->zbuf) { dl_out_abort(o); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        int level = opts->level ? opts->level : 3;
        size_t r = ZSTD_CCtx_setParameter(o->cs, ZSTD_c_compressionLevel, level);
        if (!ZSTD_isError(r)) r = ZSTD_CCtx_setParameter(o->cs, ZSTD_c_checksumFlag, 1);
        if (ZSTD_isError(r)) {
            dl_out_abort(o);
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "zstd level %d: %s", level, ZSTD_getErrorName(r));
        }
        /* compress in background worker(s); bytes do not depend on the count.
         * A libzstd built without threads refuses: stay single-threaded. */
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        (void)ZSTD_CCtx_setParameter(o->cs, ZSTD_c_nbWorkers, ncpu >= 2 ? ZSTD_WORKERS : 1);
    }
    struct stat st;
    if (is_std) {
        o->fd = 1;
    } else if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        dl_out_abort(o);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: is a directory (give a file name)", path);
    } else if (stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
        /* /dev/null, a FIFO, a terminal: write in place (no temp + rename) */
        if (opts->binary && !opts->force && S_ISCHR(st.st_mode)) {
            int fd = open(path, O_WRONLY | O_CLOEXEC);
            int tty = fd >= 0 && isatty(fd);
            if (fd >= 0) close(fd);
            if (tty) {
                dl_out_abort(o);
                return dl_seterr(err, errlen, -DL_EXIT_USAGE,
                                 "%s: refusing to write binary output to a terminal (use -f to force)", path);
            }
        }
        o->fd = open(path, O_WRONLY | O_CLOEXEC);
        if (o->fd < 0) {
            int e = errno;
            dl_out_abort(o);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot open for writing: %s", path, strerror(e));
        }
        o->in_place = 1;
    } else {
        size_t tl = strlen(path) + 32;
        o->tmp = malloc(tl);
        if (!o->tmp) { dl_out_abort(o); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        snprintf(o->tmp, tl, "%s.tmp.%ld", path, (long)getpid());
        o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
        if (o->fd < 0) {
            int e = errno;
            free(o->tmp); o->tmp = NULL;    /* nothing to remove */
            dl_out_abort(o);
            return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot create: %s", path, strerror(e));
        }
        o->slot = dl_tmp_register(o->tmp);
    }
    pipe_grow(o->fd);
    *outp = o;
    return 0;
}

int dl_out_write(dl_out *o, const void *buf, size_t n, char *err, size_t errlen) {
    if (o->err) return latched(o, err, errlen);
    o->bytes += n;
    if (n <= o->cap - o->len) {
        memcpy(o->buf + o->len, buf, n);
        o->len += n;
        return 0;
    }
    if (flush_stage(o)) return latched(o, err, errlen);
    if (n >= o->cap) {
        if (emit(o, buf, n)) return latched(o, err, errlen);
    } else {
        memcpy(o->buf, buf, n);
        o->len = n;
    }
    return 0;
}

int dl_out_finish(dl_out *o, char *err, size_t errlen) {
    if (o->finished) return o->err ? latched(o, err, errlen) : 0;
    o->finished = 1;
    if (!o->err && !flush_stage(o) && o->cs) zwrite(o, NULL, 0, ZSTD_e_end);
    if (!o->is_std && o->fd >= 0) {
        if (o->tmp && !o->err && fsync(o->fd) != 0) out_fail(o, -DL_EXIT_IO, "fsync error", errno);
        if (close(o->fd) != 0) out_fail(o, -DL_EXIT_IO, "close error", errno);
        o->fd = -1;
    }
    return o->err ? latched(o, err, errlen) : 0;
}

int dl_out_close(dl_out *o, char *err, size_t errlen) {
    int rc = dl_out_finish(o, err, errlen);
    if (rc) { dl_out_abort(o); return rc; }
    if (!o->is_std && !o->in_place) {
        if (rename(o->tmp, o->path) != 0) {
            int e = errno;
            rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot rename %s into place: %s",
                           o->path, o->tmp, strerror(e));
            dl_out_abort(o);
            return rc;
        }
        free(o->tmp); o->tmp = NULL;   /* renamed: abort must not unlink */
        if ((rc = dl_sync_parent(o->path, err, errlen))) {
            unlink(o->path);           /* not known to be durable: not an output */
            dl_out_abort(o);
            return rc;
        }
    }
    dl_out_abort(o);   /* frees; nothing left to remove */
    return 0;
}

void dl_out_abort(dl_out *o) {
    if (!o) return;
    if (!o->is_std) {
        if (o->fd >= 0) close(o->fd);
        if (o->tmp) unlink(o->tmp);
    }
    if (o->slot >= 0) dl_tmp_unregister(o->slot);
    ZSTD_freeCCtx(o->cs);
    free(o->zbuf); free(o->buf); free(o->tmp); free(o->path);
    free(o);
}

const char *dl_out_name(const dl_out *o) { return o->path; }
uint64_t dl_out_bytes(const dl_out *o) { return o->bytes; }

void dl_shard_name(char *dst, size_t dstlen, const char *prefix, int i, int n) {
    /* "out/train.msgpack.zst" as a prefix means "out/train" */
    static const char *const sufs[] = {".msgpack.zst", ".msgpack", ".zst", NULL};
    size_t pl = strlen(prefix);
    for (int k = 0; sufs[k]; k++)
        if (ends_with(prefix, sufs[k]) && pl > strlen(sufs[k])) { pl -= strlen(sufs[k]); break; }
    snprintf(dst, dstlen, "%.*s-%05d-of-%05d.msgpack.zst", (int)pl, prefix, i, n);
}

/* ------------------------------------------------------------ paths */
int dl_path_join(char *dst, const char *dir, const char *name, char *err, size_t errlen) {
    int n = snprintf(dst, DL_PATH_MAX, "%s/%s", dir, name);
    if (n < 0 || n >= DL_PATH_MAX) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s/%s: path too long", dir, name);
    return 0;
}

int dl_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int dl_is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int dl_copy_file(const char *src, const char *dst, char *err, size_t errlen) {
    char *data;
    size_t len;
    int rc = dl_read_file(src, &data, &len, err, errlen);
    if (rc) return rc;
    dl_out *out;
    dl_out_opts opts = { 0, 0, 0, 0 };   /* plain bytes, no terminal check */
    if (!(rc = dl_out_open(&out, dst, &opts, err, errlen))) {
        if ((rc = dl_out_write(out, data, len, err, errlen))) dl_out_abort(out);
        else rc = dl_out_close(out, err, errlen);
    }
    free(data);
    return rc;
}
