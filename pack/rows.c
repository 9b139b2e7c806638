/* pack/rows.c — dllm-pack's row builders.
 *
 * pretrain: documents are concatenated, each followed by EOS (not added when
 *   the document already ends with EOS; empty documents are skipped), and the
 *   stream is cut into rows of exactly L tokens.  A row records `docs`: the
 *   offsets inside the row where a document starts (a row that begins in the
 *   middle of a document has no 0 entry).  The tail (< L tokens) is dropped,
 *   or with keep_tail padded with `pad` and tagged `n_pad`.  Rows mix
 *   documents, so per-document keys (id, source, n_prompt, ...) are dropped.
 *   Row k of this run has split key (k, split_copy).
 * sft: one example per row: ids, EOS appended unless the example ends with
 *   one (part of the response), padded with `pad` to L; `n_prompt` and
 *   `n_pad` (the padding added) recorded, unknown keys carried.  Prompt >= L:
 *   dropped (no response position left).  Longer than L: cut to L (the
 *   response only, as the prompt is < L) or dropped (drop_long).  Empty:
 *   dropped.
 */
#include <stdlib.h>
#include <string.h>
#include "pack.h"

static void scratch_init(msgpack_sbuffer *sb, msgpack_packer *pk) {
    msgpack_sbuffer_init(sb);
    msgpack_packer_init(pk, sb, msgpack_sbuffer_write);
}

/* ------------------------------------------------------------- pretrain */
int pack_pretrain_init(pack_pretrain *p, uint32_t L, uint32_t eos, uint32_t pad, int keep_tail) {
    memset(p, 0, sizeof *p);
    p->L = L;
    p->eos = eos;
    p->pad = pad;
    p->keep_tail = keep_tail;
    scratch_init(&p->sb, &p->pk);
    p->le = malloc((size_t)L * sizeof *p->le);
    if (!p->le || dl_u32buf_reserve(&p->buf, 2 * (size_t)L)) return -DL_EXIT_IO;
    return 0;
}

static int push_start(pack_pretrain *p, uint64_t pos) {
    if (p->n_starts == p->cap_starts) {
        size_t cap = p->cap_starts ? 2 * p->cap_starts : 64;
        uint64_t *s = realloc(p->starts, cap * sizeof *s);
        if (!s) return -DL_EXIT_IO;
        p->starts = s;
        p->cap_starts = cap;
    }
    p->starts[p->n_starts++] = pos;
    return 0;
}

/* Serialize the row buf[head, head+L) (n_real real tokens, the rest pad). */
static int pretrain_row(pack_pretrain *p, uint32_t n_pad, pack_sink *s, uint32_t split_copy,
                        char *err, size_t errlen) {
    uint32_t L = p->L, nd = 0;
    uint64_t end = p->head + L - n_pad;
    while (p->shead < p->n_starts && p->starts[p->shead] < end)
        p->le[nd++] = (uint32_t)(p->starts[p->shead++] - p->head);
    p->sb.size = 0;
    int e = msgpack_pack_map(&p->pk, 2 + (n_pad > 0));
    e |= dl_pack_str(&p->pk, "ids");
    e |= dl_pack_ids(&p->pk, p->buf.p + p->head, L);
    e |= dl_pack_str(&p->pk, "docs");
    e |= dl_pack_ids(&p->pk, p->le, nd);
    if (n_pad) {
        e |= dl_pack_str(&p->pk, "n_pad");
        e |= msgpack_pack_uint32(&p->pk, n_pad);
    }
    if (e) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = pack_sink_put(s, p->rows, split_copy, p->sb.data, p->sb.size, err, errlen);
    p->rows++;
    p->head += L;
    return rc;
}

/* Move the pending tokens (< L after a flush) to the front of the buffer. */
static void compact(pack_pretrain *p) {
    if (!p->head) return;
    size_t n = p->buf.n - p->head;
    memmove(p->buf.p, p->buf.p + p->head, n * sizeof *p->buf.p);
    size_t k = 0;
    for (size_t i = p->shead; i < p->n_starts; i++) p->starts[k++] = p->starts[i] - p->head;
    p->n_starts = k;
    p->shead = 0;
    p->buf.n = n;
    p->head = 0;
}

int pack_pretrain_add(pack_pretrain *p, const uint32_t *ids, size_t n, pack_sink *s, uint32_t split_copy,
                      char *err, size_t errlen) {
    if (n == 0) return 0;
    p->docs++;
    int eos = ids[n - 1] != p->eos;
    if (push_start(p, p->buf.n) || dl_u32buf_append(&p->buf, ids, n) ||
        (eos && dl_u32buf_push(&p->buf, p->eos)))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    p->tokens += n + eos;
    while (p->buf.n - p->head >= p->L) {
        int rc = pretrain_row(p, 0, s, split_copy, err, errlen);
        if (rc) return rc;
    }
    compact(p);
    return 0;
}

int pack_pretrain_finish(pack_pretrain *p, pack_sink *s, uint32_t split_copy, char *err, size_t errlen) {
    uint32_t n = (uint32_t)(p->buf.n - p->head);
    if (n == 0) return 0;
    if (!p->keep_tail) { p->tail_tokens = n; p->buf.n = p->head; return 0; }
    for (uint32_t i = n; i < p->L; i++)
        if (dl_u32buf_push(&p->buf, p->pad)) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    p->n_pad_rows++;
    return pretrain_row(p, p->L - n, s, split_copy, err, errlen);
}

void pack_pretrain_free(pack_pretrain *p) {
    dl_u32buf_free(&p->buf);
    free(p->starts);
    free(p->le);
    msgpack_sbuffer_destroy(&p->sb);
    memset(p, 0, sizeof *p);
}

/* ------------------------------------------------------------------ sft */
int pack_sft_init(pack_sft *p, uint32_t L, uint32_t eos, uint32_t pad, int drop_long) {
    memset(p, 0, sizeof *p);
    p->L = L;
    p->eos = eos;
    p->pad = pad;
    p->drop_long = drop_long;
    scratch_init(&p->sb, &p->pk);
    if (dl_u32buf_reserve(&p->row, L)) return -DL_EXIT_IO;
    return 0;
}

int pack_sft_add(pack_sft *p, const msgpack_object *rec, const uint32_t *ids, size_t n, uint64_t n_prompt,
                 uint64_t key, pack_sink *s, char *err, size_t errlen) {
    static const char *const known[] = { "ids", "n_prompt", "n_pad", "docs", NULL };
    uint32_t L = p->L;
    p->examples++;
    if (n_prompt > n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %llu > %zu ids", (unsigned long long)n_prompt, n);
    if (n == 0) { p->dropped_empty++; return 0; }
    if (n_prompt >= L) { p->dropped_prompt++; return 0; }
    size_t len = n + (ids[n - 1] != p->eos);
    if (len > L) {
        if (p->drop_long) { p->dropped_long++; return 0; }
        p->truncated++;
    }
    size_t take = n < L ? n : L;
    memcpy(p->row.p, ids, take * sizeof *ids);
    size_t used = take;
    if (used < L && len > n) p->row.p[used++] = p->eos;
    uint32_t n_pad = (uint32_t)(L - used);
    for (size_t i = used; i < L; i++) p->row.p[i] = p->pad;

    p->sb.size = 0;
    int e = msgpack_pack_map(&p->pk, 3 + dl_rec_n_extra(rec, known));
    e |= dl_pack_str(&p->pk, "ids");
    e |= dl_pack_ids(&p->pk, p->row.p, L);
    e |= dl_pack_str(&p->pk, "n_prompt");
    e |= msgpack_pack_uint64(&p->pk, n_prompt);
    e |= dl_pack_str(&p->pk, "n_pad");
    e |= msgpack_pack_uint32(&p->pk, n_pad);
    e |= dl_pack_extra(&p->pk, rec, known);
    if (e) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    p->rows++;
    return pack_sink_put(s, key, 0, p->sb.data, p->sb.size, err, errlen);
}

void pack_sft_free(pack_sft *p) {
    dl_u32buf_free(&p->row);
    msgpack_sbuffer_destroy(&p->sb);
    memset(p, 0, sizeof *p);
}
