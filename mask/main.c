/* mask/main.c — dllm-mask: rows -> masked rows tagged with their mask ratio t.
 *
 *   dllm-pack -L 256 corpus.tok | dllm-mask --seed 1 -o train.msgpack.zst
 *
 * Reads a `rows` stream, writes a `masked` stream.  Each output record:
 *   x0 (clean ids), xt (mask_id where masked), t (float32; with --block the
 *   mean of t_blocks), t_blocks (LE float32 bin, --block only), len (only when
 *   the random-length cut happened: positions >= len are not masked and are
 *   excluded from attention and loss), and n_prompt, n_pad, docs when the row
 *   had them; other keys are carried through unchanged.
 * Header: kind masked, seed, tokenizer.mask_id (from --mask-id or the input),
 * block (when --block).  The masking rules are share/model/dl_mask.h's.
 *
 * Determinism: record i (global index over all inputs, 0-based) and copy c
 * get randomness keyed by (seed, i, c) only, so --shard I/N runs (contiguous
 * slices of the global index, see mask/input.c) concatenated equal a single
 * run.  --copies K writes copy 0 of every row, then copy 1, ... (a sharded
 * run does that within its slice).
 *
 * Does not: shuffle (dllm-pack does), compute losses (dllm-train).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"
#include "dl_open.h"
#include "dl_mask.h"
#include "dl_opts.h"
#include "dl_stream.h"
#include "mask.h"

static dl_common common;
static long long opt_seed, opt_group, opt_block, opt_copies, opt_mask_id = -1;
static double opt_eps, opt_rlen, opt_tmin = 0.0, opt_tmax = 1.0;
static const char *opt_tsampling;
static uint64_t index_base;   /* header "index_base" of a sliced upstream stage (dl_stream.h) */
static int opt_exact, opt_no_pad_loss;

static int parse_range(const char *arg, void *dst, char *err, size_t errlen) {
    char a[64], *comma;
    snprintf(a, sizeof a, "%s", arg);
    if (!(comma = strchr(a, ',')))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "'%s' is not A,B", arg);
    *comma = 0;
    if (dl_parse_float(a, &opt_tmin, err, errlen) || dl_parse_float(comma + 1, &opt_tmax, err, errlen))
        return -DL_EXIT_USAGE;
    (void)dst;
    return 0;
}

static const dl_opt OPTS[] = {
    { "Masking", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "seed", 's', DL_OPT_INT, &opt_seed, "0", "S", "random seed (recorded in the header)", NULL },
    { "mask-id", 0, DL_OPT_INT, &opt_mask_id, NULL, "ID", "mask token id (default: the header's tokenizer.mask_id)", NULL },
    { "eps", 0, DL_OPT_FLOAT, &opt_eps, "0.001", "X", "t = eps + (1-eps)*u, u ~ U(0,1)", NULL },
    { "eps-range", 0, DL_OPT_FUNC, NULL, NULL, "A,B", "clamp t to [A, B] (Open-dLLM: 0.002,0.998)", parse_range },
    { "t-sampling", 0, DL_OPT_STR, &opt_tsampling, "uniform", "uniform|antithetic", "how u is drawn; antithetic: u = v/n + (i mod n)/n, one v per group of n rows", NULL },
    { "antithetic-group", 0, DL_OPT_INT, &opt_group, "64", "N", "rows per antithetic group (consecutive global indices)", NULL },
    { "exact", 0, DL_OPT_FLAG, &opt_exact, NULL, NULL, "mask exactly round(t * eligible) positions instead of Bernoulli(t) each", NULL },
    { "no-pad-loss", 0, DL_OPT_FLAG, &opt_no_pad_loss, NULL, NULL, "never mask the n_pad trailing pad positions (dllm-pack --mode sft records n_pad)", NULL },
    { "block", 0, DL_OPT_INT, &opt_block, "0", "B", "one t per block of B positions (BD3LM); 0 = one t per row", NULL },
    { "random-length", 0, DL_OPT_FLOAT, &opt_rlen, "0.01", "P", "probability of cutting a row to a random length U[1, L] (tagged `len`)", NULL },
    { "copies", 0, DL_OPT_INT, &opt_copies, "1", "K", "K independent maskings of every row, copy-major order", NULL },
    DL_COMMON_OPTS(&common),
    DL_OPTS_END
};

static const char SYNOPSIS[] = "dllm-mask [options] [ROWS...]   (no file or '-': stdin)";
static const char DESCRIPTION[] =
    "Masks every row of a `rows` stream for masked-diffusion training (ALGORITHMS.md 1):\n"
    "per row t = eps + (1-eps)u, each eligible position masked with probability t.\n"
    "Eligible: positions >= n_prompt, < len, and (--no-pad-loss) not in the n_pad padding.\n"
    "Output records: x0, xt, t (float32; with --block the mean of t_blocks), t_blocks\n"
    "(--block, LE float32 bin), len (random-length cut: positions >= len are neither\n"
    "masked nor attended), n_prompt, n_pad, docs and any other key of the row.\n"
    "Record i, copy c uses randomness keyed by (seed, i, c) only: --shard I/N takes the\n"
    "contiguous slice [I*n/N, (I+1)*n/N) of the n input records (files only), so the\n"
    "slices' outputs concatenated equal a single run.  With stdin, --shard is refused\n"
    "(SLURM_ARRAY_* slices are ignored: slice upstream).  --copies K with stdin spools\n"
    "it to $TMPDIR.";

typedef struct {
    uint64_t rows, tokens, masked, eligible, truncated;
    double t_sum;
} stats;

/* One record: read, check, mask, write.  0 or <0 with err set. */
static int mask_one(dl_reader *r, const msgpack_object *rec, const dl_mask_cfg *cfg, uint32_t copy,
                    uint32_t L, int64_t vocab, dl_u32buf *x0, dl_u32buf *xt, float *tb,
                    msgpack_packer *pk, stats *st, char *err, size_t errlen) {
    static const char *const known[] = { "ids", "n_prompt", "n_pad", "docs",
                                         "x0", "xt", "t", "t_blocks", "len", NULL };
    int rc = dl_rec_ids(rec, "ids", x0, 0, vocab, err, errlen);
    if (rc < 0) return rc;
    if (x0->n != L)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "row has %zu ids, header seq_len is %u", x0->n, L);
    uint64_t n_prompt = 0, n_pad = 0;
    int has_prompt = 0, has_pad = 0;
    if ((rc = dl_rec_uint(rec, "n_prompt", &n_prompt, 1, err, errlen)) < 0) return rc;
    has_prompt = rc == 0;
    if ((rc = dl_rec_uint(rec, "n_pad", &n_pad, 1, err, errlen)) < 0) return rc;
    has_pad = rc == 0;
    if (n_prompt > L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_prompt %llu > seq_len %u", (unsigned long long)n_prompt, L);
    if (n_pad > L) return dl_seterr(err, errlen, -DL_EXIT_DATA, "n_pad %llu > seq_len %u", (unsigned long long)n_pad, L);
    const msgpack_object *docs = dl_rec_get(rec, "docs");

    dl_mask_info info;
    rc = dl_mask_row(cfg, index_base + dl_reader_index(r), copy, x0->p, L, (uint32_t)n_prompt, (uint32_t)n_pad,
                     xt->p, tb, &info, err, errlen);
    if (rc < 0) return rc;
    double t = 0;
    for (uint32_t b = 0; b < info.n_blocks; b++) t += tb[b];
    t /= info.n_blocks;

    uint32_t n = 3 + has_prompt + has_pad + (docs != NULL) + info.truncated + (cfg->block > 0) +
                 dl_rec_n_extra(rec, known);
    int e = msgpack_pack_map(pk, n);
    e |= dl_pack_str(pk, "x0");
    e |= dl_pack_ids(pk, x0->p, L);
    e |= dl_pack_str(pk, "xt");
    e |= dl_pack_ids(pk, xt->p, L);
    e |= dl_pack_str(pk, "t");
    e |= dl_pack_f32(pk, (float)t);
    if (cfg->block) {
        e |= dl_pack_str(pk, "t_blocks");
        e |= dl_pack_floats(pk, tb, info.n_blocks);
    }
    if (info.truncated) {
        e |= dl_pack_str(pk, "len");
        e |= msgpack_pack_uint32(pk, info.len);
    }
    if (has_prompt) { e |= dl_pack_str(pk, "n_prompt"); e |= msgpack_pack_uint64(pk, n_prompt); }
    if (has_pad) { e |= dl_pack_str(pk, "n_pad"); e |= msgpack_pack_uint64(pk, n_pad); }
    if (docs) { e |= dl_pack_str(pk, "docs"); e |= msgpack_pack_object(pk, *docs); }
    e |= dl_pack_extra(pk, rec, known);
    if (e) return 1;   /* write error: caller asks the writer for the message */

    st->rows++;
    st->tokens += L;
    st->masked += info.n_masked;
    st->eligible += info.n_eligible;
    st->truncated += info.truncated;
    st->t_sum += t;
    return 0;
}

int main(int argc, char **argv) {
    char err[1024];
    char **paths = NULL;
    int npaths = 0;
    dl_prog_init("dllm-mask", argc, argv);
    int rc = dl_opts_parse(OPTS, argc, argv, &paths, &npaths, err, sizeof err);
    if (rc < 0) dl_die(DL_EXIT_USAGE, "%s", err);
    if (common.help || common.version) free(paths);   /* the only allocation so far */
    if (common.help) return dl_opts_help(OPTS, SYNOPSIS, DESCRIPTION);
    if (common.version) { printf("dllm-mask %s\n", DL_VERSION); return 0; }
    if (dl_common_finish(&common, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);

    dl_mask_cfg cfg;
    dl_mask_cfg_default(&cfg);
    if (opt_seed < 0) dl_die(DL_EXIT_USAGE, "--seed must be >= 0");
    if (opt_group < 1 || opt_group > UINT32_MAX) dl_die(DL_EXIT_USAGE, "--antithetic-group must be >= 1");
    if (opt_block < 0 || opt_block > UINT32_MAX) dl_die(DL_EXIT_USAGE, "--block must be >= 0");
    if (opt_copies < 1 || opt_copies > (1 << 24)) dl_die(DL_EXIT_USAGE, "--copies must be in [1, 2^24]");
    if (!strcmp(opt_tsampling, "uniform")) cfg.t_sampling = DL_T_UNIFORM;
    else if (!strcmp(opt_tsampling, "antithetic")) cfg.t_sampling = DL_T_ANTITHETIC;
    else dl_die(DL_EXIT_USAGE, "--t-sampling '%s': expected uniform or antithetic", opt_tsampling);
    cfg.seed = (uint64_t)opt_seed;
    cfg.eps = opt_eps;
    cfg.t_min = opt_tmin;
    cfg.t_max = opt_tmax;
    cfg.group_size = (uint32_t)opt_group;
    cfg.exact = opt_exact;
    cfg.no_pad_loss = opt_no_pad_loss;
    cfg.block = (uint32_t)opt_block;
    cfg.random_length_p = opt_rlen;
    if (dl_mask_cfg_check(&cfg, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);

    mask_input in;
    rc = mask_input_open(&in, paths, npaths, (int)opt_copies, err, sizeof err);
    if (!rc) rc = dl_reader_peek_header(in.r, err, sizeof err);
    if (!rc) rc = dl_reader_expect(in.r, 1u << DL_KIND_ROWS, err, sizeof err);
    if (rc) { mask_input_fix_msg(&in, err, sizeof err); mask_input_close(&in); dl_die(-rc, "%s", err); }
    const dl_header *ih = dl_reader_header(in.r);
    dl_header_get_extra_uint(ih, "index_base", &index_base);
    if (ih->seq_len <= 0 || ih->seq_len > UINT32_MAX) {
        mask_input_close(&in);
        dl_die(DL_EXIT_DATA, "%s: header has no valid seq_len", in.is_stdin ? "<stdin>" : paths[0]);
    }
    uint32_t L = (uint32_t)ih->seq_len;
    int64_t vocab = ih->has_tok ? ih->tok.vocab_size : -1;
    if (opt_mask_id >= 0) {
        if (opt_mask_id > UINT32_MAX) dl_die(DL_EXIT_USAGE, "--mask-id %lld out of range", opt_mask_id);
        cfg.mask_id = (uint32_t)opt_mask_id;
    } else if (ih->has_tok && ih->tok.mask_id >= 0) {
        cfg.mask_id = (uint32_t)ih->tok.mask_id;
    } else {
        mask_input_close(&in);
        dl_die(DL_EXIT_DATA, "no mask id: the input header's tokenizer has no mask_id; give --mask-id");
    }
    uint64_t lo, hi;
    if ((rc = dl_reader_slice(in.r, in.is_stdin, common.shard_i, common.shard_n, common.shard_given, &lo, &hi,
                              err, sizeof err))) {
        mask_input_close(&in);
        dl_die(-rc, "%s", err);
    }

    /* output header */
    dl_header oh;
    if (dl_header_copy(&oh, ih)) dl_die(DL_EXIT_IO, "out of memory");
    oh.kind = DL_KIND_MASKED;
    oh.has_seed = 1;
    oh.seed = cfg.seed;
    if (!oh.has_tok) { dl_tokinfo_clear(&oh.tok); oh.has_tok = 1; }
    oh.tok.mask_id = cfg.mask_id;
    if (cfg.block && dl_header_set_extra_uint(&oh, "block", cfg.block, err, sizeof err)) dl_die(DL_EXIT_DATA, "%s", err);

    dl_outset *os = NULL;
    if ((rc = dl_open_output(&os, common.output, (int)common.shards, &common, &oh, err, sizeof err))) {
        mask_input_close(&in);
        dl_die(-rc, "%s", err);
    }
    dl_header_free(&oh);

    dl_u32buf x0 = { 0 }, xt = { 0 };
    uint32_t nb = dl_mask_n_blocks(&cfg, L);
    float *tb = malloc(nb * sizeof *tb);
    if (!tb || dl_u32buf_reserve(&xt, L)) dl_die(DL_EXIT_IO, "out of memory");
    xt.n = L;

    dl_progress prog;
    dl_progress_init(&prog, common.progress, dl_reader_total_bytes(in.r) * (uint64_t)opt_copies);
    stats st = { 0 };
    uint64_t bytes_done = 0;
    int code = 0;
    for (uint32_t copy = 0; copy < (uint32_t)opt_copies && !code; copy++) {
        if (copy > 0) {
            bytes_done += dl_reader_raw_bytes(in.r);
            if ((rc = dl_reader_rewind(in.r, err, sizeof err))) { code = -rc; break; }
        }
        for (;;) {
            const msgpack_object *rec;
            rc = dl_reader_next(in.r, &rec, err, sizeof err);
            if (rc == 0) break;
            if (rc < 0) { code = -rc; break; }
            uint64_t idx = dl_reader_index(in.r);
            if (idx < lo) continue;
            if (idx >= hi) break;
            dl_writer *w = dl_outset_next(os);
            rc = mask_one(in.r, rec, &cfg, copy, L, vocab, &x0, &xt, tb, dl_writer_packer(w), &st,
                          err, sizeof err);
            if (rc > 0) { code = -dl_writer_error(w, err, sizeof err); if (!code) code = DL_EXIT_IO; break; }
            if (rc < 0) {
                dl_err_prefix(err, sizeof err, "%s", dl_reader_where(in.r));
                code = -rc;
                break;
            }
            dl_writer_count(w);
            if ((st.rows & 63) == 0)
                dl_progress_update(&prog, st.rows, st.tokens, bytes_done + dl_reader_raw_bytes(in.r));
        }
    }
    dl_progress_end(&prog);
    if (!code && (rc = dl_outset_close(os, err, sizeof err))) code = -rc;
    else if (code) dl_outset_abort(os);
    if (code) {
        mask_input_fix_msg(&in, err, sizeof err);
        mask_input_close(&in);
        dl_die(code, "%s", err);
    }
    mask_input_close(&in);
    dl_info("%llu rows x %lld cop%s, %llu tokens, mean t %.4f, masked %.4f of %llu eligible, %llu cut by --random-length",
            (unsigned long long)(st.rows / (uint64_t)opt_copies), opt_copies, opt_copies == 1 ? "y" : "ies",
            (unsigned long long)st.tokens, st.rows ? st.t_sum / st.rows : 0.0,
            st.eligible ? (double)st.masked / st.eligible : 0.0, (unsigned long long)st.eligible,
            (unsigned long long)st.truncated);
    free(tb);
    dl_u32buf_free(&x0);
    dl_u32buf_free(&xt);
    free(paths);
    return 0;
}
