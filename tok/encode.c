/* tok/encode.c — documents -> one `tokens` record each.
 *
 * Record: {"ids": bin (LE uint32), ["n_prompt": uint], carried keys...}.
 * ids = [BOS] + encode(prompt) [+ encode(response)] [+ EOS]; prompt and
 * response are encoded separately (so no BPE merge crosses the boundary) and
 * n_prompt counts the BOS and prompt ids.  Plain documents have no n_prompt.
 *
 * Documents are read in batches (BATCH_DOCS or BATCH_BYTES of text), encoded
 * by --threads OpenMP threads (each with its own dl_tok: the engine keeps
 * scratch state), and written in input order, so the output does not depend
 * on the thread count.  --shard I/N keeps documents whose global
 * index (over all inputs, in order) is I mod N.
 *
 * The header is written before the first record (or at the end when this
 * slice is empty): kind tokens, the tokenizer info, and the history and other
 * header keys of a `text` input stream when the inputs start with one.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <omp.h>
#include "dl_log.h"
#include "tok.h"

#define BATCH_DOCS 512
#define BATCH_BYTES (4u << 20)

typedef struct {
    const tk_cfg *cfg;
    dl_tok *tok;       /* toks[0] */
    dl_tok **toks;
    int ntok;
    int64_t bos, eos;
    dl_outset *out;
    dl_header hdr;
    int hdr_written;
    int hdr_from_input;
    tk_doc *docs;     /* the batch: docs[0..n) */
    size_t n, cap, batch_bytes;
    uint64_t seen;     /* documents read (all slices) */
    uint64_t written, tokens, text_bytes;
} enc;

static void encode_doc(const enc *e, dl_tok *tok, tk_doc *d) {
    int rc = 0;
    d->ids.n = 0;
    if (e->bos >= 0) rc = dl_u32buf_push(&d->ids, (uint32_t)e->bos);
    if (!rc) rc = dl_tok_encode(tok, d->prompt.p ? d->prompt.p : "", d->prompt.n, &d->ids, d->err, sizeof d->err);
    if (!rc && d->sft) {
        d->n_prompt = d->ids.n;
        rc = dl_tok_encode(tok, d->response.p ? d->response.p : "", d->response.n, &d->ids, d->err, sizeof d->err);
    }
    if (!rc && e->eos >= 0) rc = dl_u32buf_push(&d->ids, (uint32_t)e->eos);
    if (rc && !d->err[0]) snprintf(d->err, sizeof d->err, "out of memory");
    d->rc = rc;
}

static int write_header(enc *e, char *err, size_t errlen) {
    if (e->hdr_written) return 0;
    e->hdr_written = 1;
    if (dl_outset_header(e->out, &e->hdr))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "cannot write the header");
    return 0;
}

static int write_doc(enc *e, const tk_doc *d, char *err, size_t errlen) {
    dl_writer *w = dl_outset_next(e->out);
    msgpack_packer *pk = dl_writer_packer(w);
    int bad = msgpack_pack_map(pk, 1 + (uint32_t)d->sft + d->n_extra);
    bad |= dl_pack_str(pk, "ids") | dl_pack_ids(pk, d->ids.p, d->ids.n);
    if (d->sft) bad |= dl_pack_str(pk, "n_prompt") | msgpack_pack_uint64(pk, d->n_prompt);
    /* the carried pairs are already msgpack: copy their bytes as they are */
    if (d->n_extra) bad |= msgpack_pack_str_body(pk, d->extra.p, d->extra.n);
    int rc = dl_writer_error(w, err, errlen);
    if (rc) return rc;
    if (bad) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: write failed", dl_writer_name(w));
    dl_writer_count(w);
    e->written++;
    e->tokens += d->ids.n;
    return 0;
}

static int flush(enc *e, char *err, size_t errlen) {
    #pragma omp parallel num_threads(e->ntok) if (e->ntok > 1 && e->n > 1)
    {
        dl_tok *tok = e->toks[omp_get_thread_num()];
        #pragma omp for schedule(dynamic, 1)
        for (size_t i = 0; i < e->n; i++) encode_doc(e, tok, &e->docs[i]);
    }
    for (size_t i = 0; i < e->n; i++) {
        tk_doc *d = &e->docs[i];
        if (d->rc) return dl_seterr(err, errlen, d->rc, "%s: %s", d->where, d->err);
        int rc = write_header(e, err, errlen);
        if (!rc) rc = write_doc(e, d, err, errlen);
        if (rc) return rc;
    }
    e->n = 0;
    e->batch_bytes = 0;
    return 0;
}

static uint64_t file_size(const char *path) {
    struct stat st;
    if (!path || !strcmp(path, "-") || stat(path, &st) || !S_ISREG(st.st_mode)) return 0;
    return (uint64_t)st.st_size;
}

/* Take history and unknown header keys from the first `text` input stream. */
static void adopt_header(enc *e, const dl_header *in) {
    if (e->hdr_from_input || e->hdr_written || !in) return;
    dl_header h;
    if (dl_header_copy(&h, in)) return;
    h.kind = DL_KIND_TOKENS;
    h.has_tok = 1;
    h.tok = e->hdr.tok;
    dl_header_free(&e->hdr);
    e->hdr = h;
    e->hdr_from_input = 1;
}

static int run(enc *e, char **paths, int npaths, char *err, size_t errlen) {
    const tk_cfg *cfg = e->cfg;
    uint64_t total = 0, raw_done = 0;
    for (int i = 0; i < npaths; i++) total += file_size(paths[i]);
    dl_progress prog;
    dl_progress_init(&prog, cfg->common.progress, total);
    const dl_chat *chat = dl_chat_find(cfg->chat_template, e->tok);
    int nin = npaths ? npaths : 1, rc = 0;
    for (int f = 0; f < nin && !rc; f++) {
        tk_input *in;
        if ((rc = tk_input_open(&in, npaths ? paths[f] : NULL, cfg, chat, err, errlen))) break;
        adopt_header(e, tk_input_header(in));
        for (;;) {
            if (e->n == e->cap) {
                size_t cap = e->cap ? 2 * e->cap : 64;
                tk_doc *d = realloc(e->docs, cap * sizeof *d);
                if (!d) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); break; }
                memset(d + e->cap, 0, (cap - e->cap) * sizeof *d);
                e->docs = d;
                e->cap = cap;
            }
            tk_doc *d = &e->docs[e->n];
            rc = tk_input_next(in, d, err, errlen);
            if (rc <= 0) break;
            rc = 0;
            d->index = e->seen++;
            if (d->index % (uint64_t)cfg->common.shard_n != (uint64_t)cfg->common.shard_i) continue;
            e->n++;
            e->batch_bytes += d->prompt.n + d->response.n;
            e->text_bytes += d->prompt.n + d->response.n;
            if (e->n >= BATCH_DOCS || e->batch_bytes >= BATCH_BYTES) {
                if ((rc = flush(e, err, errlen))) break;
                dl_progress_update(&prog, e->written, e->tokens, raw_done + tk_input_raw_bytes(in));
            }
        }
        raw_done += tk_input_raw_bytes(in);
        tk_input_close(in);
    }
    if (!rc) rc = flush(e, err, errlen);
    dl_progress_update(&prog, e->written, e->tokens, raw_done);
    dl_progress_end(&prog);
    if (!rc && e->seen == 0) rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "no documents in input");
    if (!rc) rc = write_header(e, err, errlen);
    return rc;
}

int tk_encode_run(const tk_cfg *cfg, dl_tok **toks, int ntok, char **paths, int npaths) {
    char err[1024] = "";
    dl_tok *tok = toks[0];
    enc e = { .cfg = cfg, .tok = tok, .toks = toks, .ntok = ntok };
    e.bos = cfg->bos ? dl_tok_special_id(tok, DL_TOK_BOS) : -1;
    e.eos = cfg->eos ? dl_tok_special_id(tok, DL_TOK_EOS) : -1;
    dl_header_init(&e.hdr, DL_KIND_TOKENS);
    e.hdr.has_tok = 1;
    dl_tokinfo_clear(&e.hdr.tok);
    snprintf(e.hdr.tok.sha256, sizeof e.hdr.tok.sha256, "%s", dl_tok_sha256(tok));
    e.hdr.tok.vocab_size = dl_tok_vocab_size(tok);
    e.hdr.tok.mask_id = dl_tok_special_id(tok, DL_TOK_MASK);
    e.hdr.tok.eos_id = dl_tok_special_id(tok, DL_TOK_EOS);
    e.hdr.tok.pad_id = dl_tok_special_id(tok, DL_TOK_PAD);
    e.hdr.tok.bos_id = dl_tok_special_id(tok, DL_TOK_BOS);

    dl_out_opts oo;
    dl_common_out_opts(&cfg->common, &oo);
    double t0 = dl_now();
    int rc = dl_outset_open(&e.out, cfg->common.output, (int)cfg->common.shards, &oo, err, sizeof err);
    if (!rc) rc = run(&e, paths, npaths, err, sizeof err);
    if (rc) {
        if (e.out) dl_outset_abort(e.out);
    } else {
        rc = dl_outset_close(e.out, err, sizeof err);
    }
    for (size_t i = 0; i < e.cap; i++) tk_doc_free(&e.docs[i]);
    free(e.docs);
    dl_header_free(&e.hdr);
    if (rc) {
        dl_error("%s", err);
        return -rc;
    }
    double dt = dl_now() - t0;
    dl_info("%llu documents, %llu tokens, %.1f MB of text in %.2fs (%.1f MB/s)",
            (unsigned long long)e.written, (unsigned long long)e.tokens, e.text_bytes / 1e6, dt,
            dt > 0 ? e.text_bytes / 1e6 / dt : 0.0);
    return 0;
}
