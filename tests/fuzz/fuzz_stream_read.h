/* tests/fuzz/fuzz_stream_read.h — read a whole msgpack stream file the way the
 * programs do (fuzz_stream.c, fuzz_stream_zstd.c).
 *
 * Counts the records (dl_reader_count, which rewinds), then reads them all,
 * taking the usual keys out of each record with the dl_rec_* accessors
 * (ids / x0 / xt checked against the header's vocab, len, t, text) and
 * formatting dl_reader_where, as dllm-mask / dllm-train do.  A failing call
 * is fine (a data error); the sanitizers and the counts are the checks:
 * both passes must see the same number of records.
 * Not here: writing streams, headers spread over several files.
 */
#ifndef FUZZ_STREAM_READ_H
#define FUZZ_STREAM_READ_H
#include "dl_stream.h"
#include "fuzz_common.h"

static inline void fz_read_stream(const char *path) {
    char err[512];
    char *paths[1] = { (char *)path };
    dl_reader *r = NULL;
    if (dl_reader_open(&r, paths, 1, err, sizeof err)) return;
    uint64_t counted = 0;
    int counted_ok = dl_reader_count(r, &counted, err, sizeof err) == 0;
    if (!counted_ok && dl_reader_rewind(r, err, sizeof err)) { dl_reader_close(r); return; }
    dl_u32buf ids = {0};
    const msgpack_object *rec;
    uint64_t n = 0;
    int rc;
    while ((rc = dl_reader_next(r, &rec, err, sizeof err)) == 1) {
        const dl_header *h = dl_reader_header(r);
        int64_t vocab = h ? h->tok.vocab_size : -1;
        static const char *const ID_KEYS[] = { "ids", "x0", "xt", "docs" };
        for (size_t k = 0; k < sizeof ID_KEYS / sizeof ID_KEYS[0]; k++)
            (void)dl_rec_ids(rec, ID_KEYS[k], &ids, 1, vocab, err, sizeof err);
        uint64_t u;
        double f;
        const char *s;
        size_t sn;
        (void)dl_rec_uint(rec, "len", &u, 1, err, sizeof err);
        (void)dl_rec_float(rec, "t", &f, 1, err, sizeof err);
        (void)dl_rec_str(rec, "text", &s, &sn, 1, err, sizeof err);
        (void)dl_reader_where(r);
        n++;
    }
    if (rc == 0 && counted_ok && n != counted) fz_fail("dl_reader_count and a full read disagree");
    const dl_header *h = dl_reader_header(r);
    if (h) {
        dl_header copy;
        uint64_t v;
        if (!dl_header_copy(&copy, h)) {
            char why[256];
            if (dl_header_compatible(h, &copy, why, sizeof why)) fz_fail("a header is incompatible with its copy");
            (void)dl_header_get_extra_uint(&copy, "index_base", &v);
            dl_header_free(&copy);
        }
    }
    dl_u32buf_free(&ids);
    dl_reader_close(r);
}

#endif
