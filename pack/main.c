/* pack/main.c — dllm-pack: tokens -> fixed-length rows.
 *
 *   dllm-tok -t tok.json corpus.txt | dllm-pack -L 256 -o rows.msgpack.zst
 *   dllm-pack --mode sft -L 1024 --split valid=0.01 --shuffle --seed 1 sft.tok -o sft.msgpack.zst
 *
 * Reads a `tokens` stream, writes a `rows` stream (header kind rows, seq_len
 * L).  Row building: pack/rows.c; shuffle and split: pack/sink.c.
 *
 * Held-out stream (--split NAME=P): written beside the training output:
 *   -o out.msgpack.zst            -> out.NAME.msgpack.zst  (".NAME" goes before
 *                                    ".msgpack"; else before a final ".zst";
 *                                    else appended)
 *   -o PREFIX --shards N          -> PREFIX.NAME.msgpack.zst (one file; PREFIX
 *                                    read as dl_shard_name does, without a
 *                                    .msgpack[.zst] or .zst ending)
 * It needs -o (not stdout).
 *
 * --shard I/N (files only): this run packs the contiguous slice
 * [I*n/N, (I+1)*n/N) of the n input documents (global index over all input
 * files).  sft: example i's row and split are the same as in a single run,
 * so the slices together hold the single run's rows.  pretrain: rows are
 * built from the slice's documents only (each slice starts a fresh row and
 * drops its own tail), so the slices' rows differ from a single run's near
 * the slice boundaries; split keys are (row number in this run, I).
 * stdin: an explicit --shard is refused; a SLURM_ARRAY_* slice is ignored
 * (slice upstream).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "dl_log.h"
#include "dl_open.h"
#include "dl_opts.h"
#include "dl_stream.h"
#include "pack.h"

static dl_common common;
static uint64_t opt_L;
static const char *opt_mode, *opt_truncate, *opt_split;
static long long opt_eos = -1, opt_pad = -1, opt_seed;
static uint64_t opt_window;
static int opt_keep_tail, opt_shuffle;

static const dl_opt OPTS[] = {
    { "Packing", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "seq-len", 'L', DL_OPT_SIZE, &opt_L, "1024", "L", "row length in tokens", NULL },
    { "mode", 'm', DL_OPT_STR, &opt_mode, "pretrain", "pretrain|sft", "pretrain: concatenate + chunk; sft: one example per row", NULL },
    { "eos-id", 0, DL_OPT_INT, &opt_eos, NULL, "ID", "EOS id (default: the header's tokenizer.eos_id)", NULL },
    { "pad-id", 0, DL_OPT_INT, &opt_pad, NULL, "ID", "padding id (default: sft EOS; --keep-tail tokenizer.pad_id, else EOS)", NULL },
    { "keep-tail", 0, DL_OPT_FLAG, &opt_keep_tail, NULL, NULL, "pretrain: pad the last partial row (tagged n_pad) instead of dropping it", NULL },
    { "truncate", 0, DL_OPT_STR, &opt_truncate, "right", "right|drop", "sft: examples longer than L lose the end of the response, or are dropped", NULL },
    { "Order and split", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "shuffle", 0, DL_OPT_FLAG, &opt_shuffle, NULL, NULL, "shuffle rows through a bounded random window", NULL },
    { "shuffle-window", 0, DL_OPT_SIZE, &opt_window, "10000", "N", "rows held by --shuffle (memory: N rows)", NULL },
    { "seed", 's', DL_OPT_INT, &opt_seed, "0", "S", "seed for --shuffle and --split (recorded in the header)", NULL },
    { "split", 0, DL_OPT_STR, &opt_split, NULL, "NAME=P", "send each row with probability P to a held-out stream (e.g. valid=0.01)", NULL },
    DL_COMMON_OPTS(&common),
    DL_OPTS_END
};

static const char SYNOPSIS[] = "dllm-pack [options] [TOKENS...]   (no file or '-': stdin)";
static const char DESCRIPTION[] =
    "Packs a `tokens` stream into rows of exactly L tokens.\n"
    "pretrain: documents joined, each followed by EOS, cut into rows; `docs` lists where\n"
    "  documents start inside a row; the tail is dropped (--keep-tail: padded, n_pad).\n"
    "  Per-document keys (id, n_prompt, ...) are dropped since rows mix documents.\n"
    "sft: one example per row, EOS appended, padded with EOS (LLaDA: padding is part of\n"
    "  the response; dllm-mask --no-pad-loss excludes it); n_prompt and n_pad recorded,\n"
    "  other keys carried.  Prompt >= L: dropped.  Too long: --truncate right|drop.\n"
    "--split NAME=P: held-out rows go to OUT.NAME.msgpack[.zst] beside -o OUT.msgpack[.zst]\n"
    "  (with --shards: PREFIX.NAME.msgpack.zst).\n"
    "--shard I/N: the contiguous slice [I*n/N, (I+1)*n/N) of the n input documents\n"
    "  (files only); in pretrain mode slice outputs differ from a single run at the\n"
    "  slice boundaries (rows never span slices).";

/* out.msgpack.zst -> out.NAME.msgpack.zst (see the file comment) */
static char *heldout_path(const char *out, int shards, const char *name) {
    size_t n = strlen(out) + strlen(name) + 32;
    char *p = malloc(n);
    if (!p) return NULL;
    if (shards > 0) {   /* the prefix as dl_shard_name reads it: without .msgpack[.zst] / .zst */
        static const char *const sufs[] = { ".msgpack.zst", ".msgpack", ".zst", NULL };
        size_t pl = strlen(out);
        for (int k = 0; sufs[k]; k++) {
            size_t sl = strlen(sufs[k]);
            if (pl > sl && !strcmp(out + pl - sl, sufs[k])) { pl -= sl; break; }
        }
        snprintf(p, n, "%.*s.%s.msgpack.zst", (int)pl, out, name);
        return p;
    }
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    const char *at = NULL;
    for (const char *q = base; (q = strstr(q, ".msgpack")); q++) at = q;
    size_t ol = strlen(out);
    if (!at && ol > 4 && !strcmp(out + ol - 4, ".zst") && out + ol - 4 > base) at = out + ol - 4;
    if (!at) at = out + ol;
    snprintf(p, n, "%.*s.%s%s", (int)(at - out), out, name, at);
    return p;
}

/* The summary line(s) at -v: what was packed (sf or pre, the other NULL),
 * and where the held-out rows went (vpath NULL: no --split). */
static void report(const pack_sft *sf, const pack_pretrain *pre, const pack_sink *sink, uint32_t L,
                   const char *vpath) {
    if (sf)
        dl_info("%llu examples, %llu rows, %llu dropped (%llu prompt >= L, %llu too long, %llu empty), %llu truncated",
                (unsigned long long)sf->examples, (unsigned long long)sf->rows,
                (unsigned long long)(sf->dropped_prompt + sf->dropped_long + sf->dropped_empty),
                (unsigned long long)sf->dropped_prompt, (unsigned long long)sf->dropped_long,
                (unsigned long long)sf->dropped_empty, (unsigned long long)sf->truncated);
    else
        dl_info("%llu documents, %llu tokens with EOS, %llu rows of %u, tail %s",
                (unsigned long long)pre->docs, (unsigned long long)pre->tokens, (unsigned long long)pre->rows, L,
                opt_keep_tail ? (pre->n_pad_rows ? "padded" : "empty") : "dropped");
    if (pre && !opt_keep_tail && pre->tail_tokens)
        dl_verbose("dropped a tail of %llu tokens", (unsigned long long)pre->tail_tokens);
    if (vpath)
        dl_info("split: %llu rows to %s, %llu held out to %s", (unsigned long long)sink->n_rows[0],
                common.output, (unsigned long long)sink->n_rows[1], vpath);
}

int main(int argc, char **argv) {
    char err[1024];
    char **paths = NULL;
    int npaths = 0, rc;
    dl_prog_init("dllm-pack", argc, argv);
    if ((rc = dl_opts_parse(OPTS, argc, argv, &paths, &npaths, err, sizeof err)) < 0) dl_die(DL_EXIT_USAGE, "%s", err);
    if (common.help || common.version) free(paths);   /* the only allocation so far */
    if (common.help) return dl_opts_help(OPTS, SYNOPSIS, DESCRIPTION);
    if (common.version) { printf("dllm-pack %s\n", DL_VERSION); return 0; }
    if (dl_common_finish(&common, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);

    int sft;
    if (!strcmp(opt_mode, "pretrain")) sft = 0;
    else if (!strcmp(opt_mode, "sft")) sft = 1;
    else dl_die(DL_EXIT_USAGE, "--mode '%s': expected pretrain or sft", opt_mode);
    int drop_long;
    if (!strcmp(opt_truncate, "right")) drop_long = 0;
    else if (!strcmp(opt_truncate, "drop")) drop_long = 1;
    else dl_die(DL_EXIT_USAGE, "--truncate '%s': expected right or drop", opt_truncate);
    if (opt_L < 1 || opt_L > (1u << 30)) dl_die(DL_EXIT_USAGE, "-L %llu out of range [1, 2^30]", (unsigned long long)opt_L);
    if (opt_seed < 0) dl_die(DL_EXIT_USAGE, "--seed must be >= 0");
    if (opt_shuffle && (opt_window < 1 || opt_window > UINT32_MAX)) dl_die(DL_EXIT_USAGE, "--shuffle-window out of range");
    uint32_t L = (uint32_t)opt_L;
    char split_name[64] = "";
    double split_p = 0;
    if (opt_split) {
        const char *eq = strchr(opt_split, '=');
        size_t nl = eq ? (size_t)(eq - opt_split) : 0;
        if (!eq || nl == 0 || nl >= sizeof split_name || strspn(opt_split, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") != nl)
            dl_die(DL_EXIT_USAGE, "--split '%s': expected NAME=P (NAME of letters, digits, _ -)", opt_split);
        memcpy(split_name, opt_split, nl);
        if (dl_parse_float(eq + 1, &split_p, err, sizeof err) || !(split_p >= 0 && split_p <= 1))
            dl_die(DL_EXIT_USAGE, "--split '%s': P must be a number in [0, 1]", opt_split);
        if (!common.output || !strcmp(common.output, "-"))
            dl_die(DL_EXIT_USAGE, "--split needs -o (the held-out stream is written beside it)");
    }

    /* input */
    dl_reader *r = NULL;
    if ((rc = dl_open_input(&r, paths, npaths, 1u << DL_KIND_TOKENS, err, sizeof err))) dl_die(-rc, "%s", err);
    const dl_header *ih = dl_reader_header(r);
    int64_t vocab = ih->has_tok ? ih->tok.vocab_size : -1;
    int64_t eos = opt_eos >= 0 ? opt_eos : (ih->has_tok ? ih->tok.eos_id : -1);
    if (eos < 0 || eos > UINT32_MAX)
        dl_die(DL_EXIT_DATA, "no EOS id: the input header's tokenizer has no eos_id; give --eos-id");
    int64_t pad = opt_pad >= 0 ? opt_pad
                : (!sft && ih->has_tok && ih->tok.pad_id >= 0) ? ih->tok.pad_id : eos;
    if (pad > UINT32_MAX) dl_die(DL_EXIT_USAGE, "--pad-id out of range");
    uint64_t lo, hi;
    if ((rc = dl_open_slice(r, paths, npaths, &common, &lo, &hi, err, sizeof err))) dl_die(-rc, "%s", err);

    /* outputs */
    dl_header oh;
    if (dl_header_copy(&oh, ih)) dl_die(DL_EXIT_IO, "out of memory");
    oh.kind = DL_KIND_ROWS;
    oh.seq_len = L;
    if (opt_shuffle || opt_split) { oh.has_seed = 1; oh.seed = (uint64_t)opt_seed; }
    if (!oh.has_tok) { dl_tokinfo_clear(&oh.tok); oh.has_tok = 1; }
    oh.tok.eos_id = eos;
    if (opt_pad >= 0) oh.tok.pad_id = opt_pad;
    /* pretrain rows of slice I cannot be numbered globally: give the slice
     * its own randomness namespace downstream (dl_stream.h, index_base) */
    if (!sft && common.shard_n > 1 && hi != UINT64_MAX &&
        dl_header_set_extra_uint(&oh, "index_base", (uint64_t)common.shard_i << DL_INDEX_BASE_SHIFT, err, sizeof err))
        dl_die(DL_EXIT_IO, "%s", err);
    dl_outset *train = NULL, *valid = NULL;
    char *vpath = NULL;
    if ((rc = dl_open_output(&train, common.output, (int)common.shards, &common, &oh, err, sizeof err))) dl_die(-rc, "%s", err);
    if (opt_split) {
        if (!(vpath = heldout_path(common.output, (int)common.shards, split_name))) dl_die(DL_EXIT_IO, "out of memory");
        if ((rc = dl_open_output(&valid, vpath, 0, &common, &oh, err, sizeof err))) { dl_outset_abort(train); dl_die(-rc, "%s", err); }
    }
    dl_header_free(&oh);

    pack_sink sink;
    pack_pretrain pre;
    pack_sft sf;
    uint32_t scopy = (uint32_t)common.shard_i;
    memset(&pre, 0, sizeof pre);
    memset(&sf, 0, sizeof sf);
    if ((rc = pack_sink_init(&sink, train, valid, (uint64_t)opt_seed, split_p, opt_shuffle ? opt_window : 0,
                             scopy, err, sizeof err)) ||
        (sft ? pack_sft_init(&sf, L, (uint32_t)eos, (uint32_t)pad, drop_long)
             : pack_pretrain_init(&pre, L, (uint32_t)eos, (uint32_t)pad, opt_keep_tail))) {
        dl_outset_abort(train);
        if (valid) dl_outset_abort(valid);
        dl_die(DL_EXIT_IO, "out of memory");
    }

    dl_u32buf ids = { 0 };
    dl_progress prog;
    dl_progress_init(&prog, common.progress, dl_reader_total_bytes(r));
    uint64_t docs = 0, tokens = 0;
    int code = 0, warned_prompt = 0;
    for (;;) {
        const msgpack_object *rec;
        rc = dl_reader_next(r, &rec, err, sizeof err);
        if (rc == 0) break;
        if (rc < 0) { code = -rc; break; }
        uint64_t idx = dl_reader_index(r);
        if (idx < lo) continue;
        if (idx >= hi) break;
        uint64_t n_prompt = 0;
        if ((rc = dl_rec_ids(rec, "ids", &ids, 0, vocab, err, sizeof err)) >= 0)
            rc = dl_rec_uint(rec, "n_prompt", &n_prompt, 1, err, sizeof err);
        if (rc >= 0) {
            if (sft) {
                rc = pack_sft_add(&sf, rec, ids.p, ids.n, n_prompt, idx, &sink, err, sizeof err);
            } else {
                if (n_prompt > 0 && !warned_prompt++)
                    dl_warn("%s: n_prompt ignored in pretrain mode (use --mode sft)", dl_reader_where(r));
                rc = pack_pretrain_add(&pre, ids.p, ids.n, &sink, scopy, err, sizeof err);
            }
        }
        if (rc < 0) {
            dl_err_prefix(err, sizeof err, "%s", dl_reader_where(r));
            code = -rc;
            break;
        }
        docs++;
        tokens += ids.n;
        if ((docs & 63) == 0) dl_progress_update(&prog, docs, tokens, dl_reader_raw_bytes(r));
    }
    if (!code && !sft && (rc = pack_pretrain_finish(&pre, &sink, scopy, err, sizeof err))) code = -rc;
    if (!code && (rc = pack_sink_flush(&sink, err, sizeof err))) code = -rc;
    dl_progress_end(&prog);
    /* held-out first: if the training output then fails, nothing is left behind */
    if (!code && valid) { rc = dl_outset_close(valid, err, sizeof err); valid = NULL; if (rc) code = -rc; }
    if (!code) { rc = dl_outset_close(train, err, sizeof err); train = NULL; if (rc) code = -rc; }
    if (code) {
        if (train) dl_outset_abort(train);
        if (valid) dl_outset_abort(valid);
        if (vpath && !train) remove(vpath);   /* held-out renamed but the training output failed */
        dl_reader_close(r);
        dl_die(code, "%s", err);
    }
    report(sft ? &sf : NULL, sft ? NULL : &pre, &sink, L, vpath);
    pack_sink_free(&sink);
    pack_pretrain_free(&pre);
    pack_sft_free(&sf);
    dl_u32buf_free(&ids);
    dl_reader_close(r);
    free(vpath);
    free(paths);
    return 0;
}
