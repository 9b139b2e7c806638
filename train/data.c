/* train/data.c — dllm-train's batch loader: rows of masked (or `rows`)
 * shards, one row at a time into a train_batch.
 *
 * Inputs: files in order as one stream (dl_reader), stdin when none or "-".
 * An argument that names no file but holds * ? or [ is expanded with glob(3)
 * (sorted), so quoted globs work as in a shell and in slurm scripts.
 * Epochs: at the end of the input the files are re-read (epoch + 1); stdin
 * cannot be re-read, so training ends with the input.  (epoch, record) is
 * what trainer_state.json stores for --resume.
 *
 * Kinds: `masked` records give x0, xt, t (t_blocks with header "block"),
 * len, n_prompt.  `rows` (ids, n_prompt, n_pad) are masked here with
 * dl_mask_row when --mask-on-the-fly (randomness keyed by index_base + the
 * record's index in the pass, copy = epoch: every epoch a new masking, the
 * same as `dllm-mask --copies`), or taken as clean rows for --causal.
 *
 * Checks: the header against the model (seq_len, tokenizer, mask id), and
 * every id < the model's vocab (-DL_EXIT_DATA naming file and record).
 * Does not: shuffle (dllm-pack does), build loss positions (step.c).
 */
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "dl_log.h"
#include "train.h"

int train_batch_init(train_batch *b, int cap, int T) {
    memset(b, 0, sizeof *b);
    size_t n = (size_t)cap * T;
    b->cap = cap;
    b->T = T;
    b->x0 = malloc(n * sizeof *b->x0);
    b->xt = malloc(n * sizeof *b->xt);
    b->t = malloc(n * sizeof *b->t);
    b->len = malloc(cap * sizeof *b->len);
    b->n_prompt = malloc(cap * sizeof *b->n_prompt);
    if (!b->x0 || !b->xt || !b->t || !b->len || !b->n_prompt) { train_batch_free(b); return -DL_EXIT_IO; }
    return 0;
}

void train_batch_free(train_batch *b) {
    free(b->x0); free(b->xt); free(b->t); free(b->len); free(b->n_prompt);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- open */
static int has_glob(const char *s) { return strpbrk(s, "*?[") != NULL; }

static int add_path(train_data *d, const char *p) {
    char **np = realloc(d->paths, (d->n_paths + 1) * sizeof *np);
    if (!np) return -1;
    d->paths = np;
    if (!(d->paths[d->n_paths] = strdup(p))) return -1;
    d->n_paths++;
    return 0;
}

int train_data_open(train_data *d, char *const *args, int n, const train_data_cfg *c, char *err, size_t errlen) {
    memset(d, 0, sizeof *d);
    d->c = *c;
    d->is_stdin = n == 0 || (n == 1 && !strcmp(args[0], "-"));
    for (int i = 0; i < n && !d->is_stdin; i++) {
        struct stat sb;
        if (!strcmp(args[i], "-"))
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "\"-\" (stdin) must be the only input");
        if (stat(args[i], &sb) == 0 || !has_glob(args[i])) {
            if (add_path(d, args[i])) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            continue;
        }
        glob_t g;
        int gr = glob(args[i], 0, NULL, &g);
        if (gr == GLOB_NOMATCH)
            return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: no file matches", args[i]);
        if (gr) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: glob failed", args[i]);
        for (size_t k = 0; k < g.gl_pathc; k++)
            if (add_path(d, g.gl_pathv[k])) { globfree(&g); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
        globfree(&g);
    }
    for (int i = 0; i < d->n_paths; i++) {   /* missing input: an I/O error before any work */
        struct stat sb;
        if (stat(d->paths[i], &sb))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", d->paths[i], strerror(errno));
    }
    int rc = dl_reader_open(&d->r, d->paths, d->n_paths, err, errlen);
    if (!rc) rc = dl_reader_peek_header(d->r, err, errlen);
    if (rc) return rc;
    const dl_header *h = dl_reader_header(d->r);
    d->kind = h->kind;
    dl_header_get_extra_uint(h, "index_base", &d->index_base);
    uint64_t blk = 0;
    dl_header_get_extra_uint(h, "block", &blk);
    d->block = (uint32_t)blk;
    return 0;
}

static const char *name0(const train_data *d) { return d->is_stdin ? "<stdin>" : d->paths[0]; }

int train_data_check(train_data *d, const dl_config *mc, const char *tok_sha, long long want_L,
                     char *err, size_t errlen) {
    const dl_header *h = dl_reader_header(d->r);
    const char *f = name0(d);
    if (d->kind == DL_KIND_ROWS && !d->c.otf && !d->c.causal)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: a `rows` stream: mask it with dllm-mask, or give "
                         "--mask-on-the-fly (or --causal)", f);
    if (d->kind == DL_KIND_MASKED && d->c.otf)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: --mask-on-the-fly wants a `rows` stream, this one is "
                         "already masked", f);
    if (d->kind != DL_KIND_ROWS && d->kind != DL_KIND_MASKED)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: a `%s` stream: dllm-train reads `masked` (or `rows`) "
                         "streams", f, dl_kind_name(d->kind));
    if (h->seq_len <= 0 || h->seq_len > (1 << 24))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header has no valid seq_len", f);
    if (want_L > 0 && h->seq_len != want_L)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: seq_len %lld differs from --seq-len %lld", f,
                         (long long)h->seq_len, want_L);
    if (h->seq_len > mc->max_seq_len)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: seq_len %lld exceeds the model's "
                         "max_position_embeddings %d", f, (long long)h->seq_len, mc->max_seq_len);
    d->L = (uint32_t)h->seq_len;
    if (d->kind == DL_KIND_MASKED && d->block && d->block > d->L)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header block %u > seq_len %u", f, d->block, d->L);
    if (h->has_tok) {
        const dl_tokinfo *t = &h->tok;
        int same_sha = tok_sha && t->sha256[0] && !strcmp(tok_sha, t->sha256);
        if (tok_sha && t->sha256[0] && !same_sha)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tokenizer sha256 %.12s... differs from the "
                             "model's tokenizer.json (%.12s...): tokenize with the checkpoint's tokenizer.json",
                             f, t->sha256, tok_sha);
        if (t->vocab_size > mc->vocab_size || (t->vocab_size >= 0 && t->vocab_size != mc->vocab_size && !same_sha))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tokenizer vocab_size %lld differs from the "
                             "model's vocab_size %d", f, (long long)t->vocab_size, mc->vocab_size);
        if (!d->c.causal && t->mask_id >= 0 && mc->mask_token_id >= 0 && t->mask_id != mc->mask_token_id)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tokenizer mask_id %lld differs from the model's "
                             "mask_token_id %lld", f, (long long)t->mask_id, (long long)mc->mask_token_id);
    }
    if (d->c.otf) {
        int64_t mid = mc->mask_token_id >= 0 ? mc->mask_token_id : (h->has_tok ? h->tok.mask_id : -1);
        if (mid < 0)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: --mask-on-the-fly: no mask id (neither the model's "
                             "config nor the header's tokenizer has one)", f);
        d->c.mcfg.mask_id = (uint32_t)mid;
    }
    free(d->tb);
    if (!(d->tb = malloc(d->L * sizeof *d->tb)))   /* >= the number of blocks of any row */
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    return 0;
}

/* ---------------------------------------------------------------- records */
static int rec_floats(const msgpack_object *rec, const char *key, float *out, uint32_t n, char *err, size_t errlen) {
    const msgpack_object *o = dl_rec_get(rec, key);
    if (!o) return dl_seterr(err, errlen, -DL_EXIT_DATA, "missing key \"%s\" (header block is set)", key);
    if (o->type != MSGPACK_OBJECT_BIN || o->via.bin.size != 4 * n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "key \"%s\": expected a bin of %u float32", key, n);
    const uint8_t *p = (const uint8_t *)o->via.bin.ptr;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 | (uint32_t)p[4 * i + 2] << 16 |
                     (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &u, 4);
    }
    return 0;
}

static int check_t(double t, char *err, size_t errlen) {
    if (!(t > 0 && t <= 1))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "mask ratio t = %g is not in (0, 1]", t);
    return 0;
}

/* Decode record `rec` into row i.  0 or <0. */
static int fill_row(train_data *d, const msgpack_object *rec, train_batch *bt, int i, char *err, size_t errlen) {
    const uint32_t L = d->L;
    const int64_t V = d->c.vocab;
    uint32_t *x0 = bt->x0 + (size_t)i * L, *xt = bt->xt + (size_t)i * L;
    float *tp = bt->t + (size_t)i * L;
    uint64_t n_prompt = 0, n_pad = 0, len = L;
    int rc;
    if ((rc = dl_rec_uint(rec, "n_prompt", &n_prompt, 1, err, errlen)) < 0) return rc;
    if (n_prompt > L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %llu > seq_len %u", (unsigned long long)n_prompt, L);

    if (d->kind == DL_KIND_ROWS) {
        if ((rc = dl_rec_ids(rec, "ids", &d->a, 0, V, err, errlen)) < 0) return rc;
        if (d->a.n != L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "row has %zu ids, seq_len is %u", d->a.n, L);
        memcpy(x0, d->a.p, L * sizeof *x0);
        if ((rc = dl_rec_uint(rec, "n_pad", &n_pad, 1, err, errlen)) < 0) return rc;
        if (n_pad > L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_pad %llu > seq_len %u", (unsigned long long)n_pad, L);
        if (d->c.otf) {
            dl_mask_info info;
            rc = dl_mask_row(&d->c.mcfg, d->index_base + d->record, (uint32_t)d->epoch, x0, L, (uint32_t)n_prompt,
                             (uint32_t)n_pad, xt, d->tb, &info, err, errlen);
            if (rc < 0) return rc;
            len = info.len;
            uint32_t blk = d->c.mcfg.block;
            for (uint32_t p = 0; p < L; p++) tp[p] = d->tb[blk ? p / blk : 0];
        } else {   /* causal on clean rows */
            memcpy(xt, x0, L * sizeof *xt);
            for (uint32_t p = 0; p < L; p++) tp[p] = 1.0f;
        }
    } else {
        if ((rc = dl_rec_ids(rec, "x0", &d->a, 0, V, err, errlen)) < 0) return rc;
        if (d->a.n != L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "x0 has %zu ids, seq_len is %u", d->a.n, L);
        if ((rc = dl_rec_ids(rec, "xt", &d->b, 0, V, err, errlen)) < 0) return rc;
        if (d->b.n != L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "xt has %zu ids, seq_len is %u", d->b.n, L);
        memcpy(x0, d->a.p, L * sizeof *x0);
        memcpy(xt, d->b.p, L * sizeof *xt);
        if ((rc = dl_rec_uint(rec, "len", &len, 1, err, errlen)) < 0) return rc;
        if (len < 1 || len > L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "len %llu not in [1, %u]", (unsigned long long)len, L);
        if (d->block) {
            uint32_t nb = (L + d->block - 1) / d->block;
            float *tb = d->tb;
            if ((rc = rec_floats(rec, "t_blocks", tb, nb, err, errlen)) < 0) return rc;
            for (uint32_t k = 0; k < nb; k++)
                if ((rc = check_t(tb[k], err, errlen))) return rc;
            for (uint32_t p = 0; p < L; p++) tp[p] = tb[p / d->block];
        } else {
            double t = 0;
            if ((rc = dl_rec_float(rec, "t", &t, 0, err, errlen)) < 0) return rc;
            if (!d->c.causal && (rc = check_t(t, err, errlen))) return rc;
            for (uint32_t p = 0; p < L; p++) tp[p] = (float)t;
        }
    }
    bt->len[i] = (int32_t)len;
    bt->n_prompt[i] = (int32_t)n_prompt;
    return 0;
}

int train_data_rewind(train_data *d, char *err, size_t errlen) {
    int rc = dl_reader_rewind(d->r, err, errlen);
    if (rc) return rc;
    d->record = 0;
    return 0;
}

int train_data_skip(train_data *d, char *err, size_t errlen) { return train_data_next(d, NULL, 0, 1, err, errlen); }

/* bt == NULL: the record is consumed, not decoded (train_data_skip). */
int train_data_next(train_data *d, train_batch *bt, int i, int cycle, char *err, size_t errlen) {
    for (int tries = 0;; tries++) {
        const msgpack_object *rec;
        int rc = dl_reader_next(d->r, &rec, err, errlen);
        if (rc < 0) return rc;
        if (rc == 1) {
            rc = bt ? fill_row(d, rec, bt, i, err, errlen) : 0;
            if (rc < 0) { dl_err_prefix(err, errlen, "%s", dl_reader_where(d->r)); return rc; }
            d->record++;
            return 1;
        }
        /* end of the input */
        if (d->record == 0 && d->epoch == 0)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no records in the %s", name0(d), d->c.what);
        if (!cycle || d->is_stdin || tries) return 0;
        d->pass_records = d->record;
        d->epoch++;
        if ((rc = train_data_rewind(d, err, errlen))) return rc;
    }
}

int train_data_seek(train_data *d, uint64_t epoch, uint64_t record, char *err, size_t errlen) {
    if (d->is_stdin) {
        if (epoch || record)
            dl_warn("resuming on stdin: the input is taken to continue where the run stopped (nothing skipped)");
        d->epoch = epoch;
        return 0;
    }
    d->epoch = epoch;
    d->record = 0;
    const msgpack_object *rec;
    while (d->record < record) {
        int rc = dl_reader_next(d->r, &rec, err, errlen);
        if (rc < 0) return rc;
        if (rc == 0)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "--resume: the checkpoint stopped at record %llu of "
                             "epoch %llu, but the input has only %llu records (different inputs?)",
                             (unsigned long long)record, (unsigned long long)epoch, (unsigned long long)d->record);
        d->record++;
    }
    return 0;
}

void train_data_close(train_data *d) {
    if (d->r) dl_reader_close(d->r);
    for (int i = 0; i < d->n_paths; i++) free(d->paths[i]);
    free(d->paths);
    dl_u32buf_free(&d->a);
    dl_u32buf_free(&d->b);
    free(d->tb);
    memset(d, 0, sizeof *d);
}
