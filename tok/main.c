/* tok/main.c — dllm-tok: text -> `tokens` stream (encode), token streams ->
 * text (-d), and `dllm-tok train` (BPE training, tok/train.c).
 *
 * main = parse options -> load the tokenizer and settle its special ids ->
 * encode.c or decode.c.  Exit codes are the shared table (dl_base.h).
 * What the input formats, chat templates and outputs are: input.c, chat.c,
 * encode.c, decode.c (each file's header), summarised in --help.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include "dl_log.h"
#include "tok.h"
#include "tok_train.h"
#include "dl_omp_env.h"

DL_OMP_ENV_EARLY;   /* settles libgomp's waiting policy before it starts (dl_omp_env.h) */

static tk_cfg cfg;

static dl_opt OPTS[] = {
    { "tokenizer", 't', DL_OPT_STR, &cfg.tk_path, NULL, "TOK", "tokenizer.json, or a checkpoint directory holding one (required)", NULL },
    { "decode", 'd', DL_OPT_FLAG, &cfg.decode, NULL, NULL, "decode token streams to text instead of encoding", NULL },
    { "Encoding", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "bos", 0, DL_OPT_FLAG, &cfg.bos, NULL, NULL, "add the BOS token at the start of every document", NULL },
    { "eos", 0, DL_OPT_FLAG, &cfg.eos, NULL, NULL, "add the EOS token at the end of every document", NULL },
    { "lines", 0, DL_OPT_FLAG, &cfg.lines, NULL, NULL, "plain text: one document per line (empty lines skipped)", NULL },
    { "split", 0, DL_OPT_STR, &cfg.split, NULL, "STR", "plain text: documents separated by STR, e.g. '<|endoftext|>' (-d: write STR after each)", NULL },
    { "jsonl", 0, DL_OPT_FLAG, &cfg.jsonl, NULL, NULL, "inputs are JSONL even without a .jsonl name (-d: write JSONL)", NULL },
    { "chat-template", 0, DL_OPT_STR, &cfg.chat_template, "auto", "NAME", "template for \"messages\": auto, plain, chatml, llama3, llada", NULL },
    { "threads", 'j', DL_OPT_THREADS, &cfg.threads, "1", "N", "encoding threads (0 = all cores)", NULL },
    { "Tokenizer", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "add-mask-token", 0, DL_OPT_FLAG, &cfg.add_mask, NULL, NULL, "add a mask token when the tokenizer has none: --add-mask-token=STR or --mask-token STR names it [<|mdm_mask|>]", NULL },
    { "save-tokenizer", 'T', DL_OPT_STR, &cfg.save_tok, NULL, "OUT.json", "write the tokenizer used (extended by --add-mask-token) to OUT.json", NULL },
    { "mask-token", 0, DL_OPT_STR, &cfg.mask_token, NULL, "STR", "the mask token is the token with this text", NULL },
    { "eos-token", 0, DL_OPT_STR, &cfg.eos_token, NULL, "STR", "the EOS token is the token with this text", NULL },
    { "bos-token", 0, DL_OPT_STR, &cfg.bos_token, NULL, "STR", "the BOS token is the token with this text", NULL },
    { "pad-token", 0, DL_OPT_STR, &cfg.pad_token, NULL, "STR", "the padding token is the token with this text", NULL },
    { "Decoding (-d)", 0, DL_OPT_HEADING, NULL, NULL, NULL, NULL, NULL },
    { "key", 0, DL_OPT_STR, &cfg.key, NULL, "KEY", "ids to decode (default: x0 for masked streams, else ids; xt = noisy)", NULL },
    { "skip-special", 0, DL_OPT_FLAG, &cfg.skip_special, NULL, NULL, "drop special tokens (BOS, EOS, mask, ...) from the text", NULL },
    { "ids", 0, DL_OPT_FLAG, &cfg.ids_out, NULL, NULL, "write the ids as numbers, one record per line", NULL },
    { "strict", 0, DL_OPT_FLAG, &cfg.strict, NULL, NULL, "refuse a stream made with another tokenizer (default: warn)", NULL },
    DL_COMMON_OPTS(&cfg.common),
    DL_OPTS_END
};

static const char SYNOPSIS[] =
    "dllm-tok -t TOK [options] [FILE...]          text -> tokens stream\n"
    "       dllm-tok -d -t TOK [options] [STREAM...]     tokens/rows/masked/samples -> text\n"
    "       dllm-tok train [options] FILE...             train a BPE tokenizer (train --help)";

static const char DESCRIPTION[] =
    "Encodes every input document into one `tokens` record {ids, [n_prompt], carried keys}\n"
    "(no FILE or '-' = stdin; zstd inputs are detected).  Inputs:\n"
    "  plain text  the whole file is one document, or --lines / --split STR.  One newline at\n"
    "              the end of the input and one on each side of a --split separator are\n"
    "              removed; empty documents are skipped\n"
    "  JSONL       (.jsonl, .jsonl.zst or --jsonl) one object per line with \"text\", or\n"
    "              \"prompt\" + \"response\" (encoded separately; n_prompt = prompt ids), or\n"
    "              \"messages\" [{role, content}] rendered by --chat-template; other keys\n"
    "              (id, source, ...) are carried into the record\n"
    "  msgpack     a `text` dllm stream with the same record keys\n"
    "No special tokens are added unless --bos / --eos.  Special-token text in the input\n"
    "(\"<|endoftext|>\", the mask token) encodes to its id.  Invalid UTF-8 in text is\n"
    "replaced by U+FFFD.  No documents at all in the input is a data error (exit 1).\n"
    "--shard I/N keeps documents I, I+N, I+2N, ... (counted over all inputs in order).\n"
    "\n"
    "Decoding (-d) writes each record's text and a newline; --jsonl writes {\"text\"} or\n"
    "{\"prompt\", \"response\"} (when n_prompt is present) plus the record's other keys.\n"
    "A stream made with another tokenizer (header sha256) is decoded with a warning.";

/* Resolve an override "--X-token STR" to an id; usage error when absent. */
static void set_override(dl_tok *tok, dl_tok_special which, const char *opt, const char *text) {
    if (!text) return;
    int64_t id = dl_tok_token_id(tok, text);
    if (id < 0) dl_die(DL_EXIT_USAGE, "--%s '%s': no such token in %s", opt, text, cfg.tk_path);
    dl_tok_set_special(tok, which, id);
}

/* sha256 of the extended tokenizer when it is not saved: save it to a
 * scratch file (dl_tok_save updates the hash to the bytes written). */
static void hash_extended(dl_tok *tok) {
    const char *dir = getenv("TMPDIR");
    char path[4096], err[1024];
    snprintf(path, sizeof path, "%s/dllm-tok-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0) { dl_warn("cannot hash the extended tokenizer: no scratch file"); return; }
    close(fd);
    if (dl_tok_save(tok, path, err, sizeof err)) dl_warn("cannot hash the extended tokenizer: %s", err);
    unlink(path);
}

/* Load the tokenizer and apply the special-token options.  primary: also
 * save it (-T) or hash the extended one, and report problems by dying;
 * a copy (one per extra encoding thread) returns NULL on failure. */
static dl_tok *setup_tokenizer(int primary) {
    char err[1024];
    dl_tok *tok;
    int rc = dl_tok_load(&tok, cfg.tk_path, err, sizeof err);
    if (rc) {
        if (!primary) return NULL;
        if (!strstr(err, cfg.tk_path)) dl_err_prefix(err, sizeof err, "%s", cfg.tk_path);
        dl_die(-rc, "%s", err);
    }
    set_override(tok, DL_TOK_EOS, "eos-token", cfg.eos_token);
    set_override(tok, DL_TOK_BOS, "bos-token", cfg.bos_token);
    set_override(tok, DL_TOK_PAD, "pad-token", cfg.pad_token);
    int extended = 0;
    if (cfg.add_mask) {
        const char *text = cfg.mask_token ? cfg.mask_token : "<|mdm_mask|>";
        int64_t have = cfg.mask_token ? dl_tok_token_id(tok, text) : dl_tok_special_id(tok, DL_TOK_MASK);
        if (have < 0) {
            int64_t id = dl_tok_add_special(tok, text, err, sizeof err);
            if (id < 0 && !primary) { dl_tok_free(tok); return NULL; }
            if (id < 0) dl_die((int)-id, "--add-mask-token: %s", err);
            dl_tok_set_special(tok, DL_TOK_MASK, id);
            if (primary) dl_verbose("added mask token %s as id %lld", text, (long long)id);
            extended = 1;
        } else {
            dl_tok_set_special(tok, DL_TOK_MASK, have);
        }
    } else {
        set_override(tok, DL_TOK_MASK, "mask-token", cfg.mask_token);
    }
    if (!primary) return tok;
    if (cfg.save_tok) {
        rc = dl_tok_save(tok, cfg.save_tok, err, sizeof err);
        if (rc) dl_die(-rc, "-T %s: %s", cfg.save_tok, err);
    } else if (extended) {
        if (!cfg.decode)
            dl_warn("the mask token was added but the tokenizer is not saved (-T OUT.json): "
                    "decoding this stream will need the extended tokenizer");
        hash_extended(tok);
    }
    if (cfg.bos && dl_tok_special_id(tok, DL_TOK_BOS) < 0)
        dl_die(DL_EXIT_USAGE, "--bos: %s has no BOS token (name one with --bos-token STR)", cfg.tk_path);
    if (cfg.eos && dl_tok_special_id(tok, DL_TOK_EOS) < 0)
        dl_die(DL_EXIT_USAGE, "--eos: %s has no EOS token (name one with --eos-token STR)", cfg.tk_path);
    return tok;
}

int main(int argc, char **argv) {
    dl_prog_init("dllm-tok", argc, argv);
    if (argc > 1 && !strcmp(argv[1], "train")) return tok_train_main(argc - 1, argv + 1);

    /* "--add-mask-token=STR" is "--add-mask-token --mask-token STR" (a bare
     * optional value would swallow a FILE operand, so only the = form) */
    static char mask_opt[] = "--mask-token";
    char **av = calloc((size_t)argc + 2, sizeof *av);
    if (!av) dl_die(DL_EXIT_IO, "out of memory");
    int ac = 0;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--")) { while (i < argc) av[ac++] = argv[i++]; break; }
        if (!strncmp(argv[i], "--add-mask-token=", 17)) {
            cfg.add_mask = 1;
            av[ac++] = mask_opt;
            av[ac++] = argv[i] + 17;
            continue;
        }
        av[ac++] = argv[i];
    }
    char err[1024];
    char **pos = NULL;
    int npos = 0;
    if (dl_opts_parse(OPTS, ac, av, &pos, &npos, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);
    if (cfg.common.help || cfg.common.version) { free(pos); free(av); }   /* the only allocations so far */
    if (cfg.common.help) return dl_opts_help_epilog(OPTS, SYNOPSIS, DESCRIPTION, DL_CHAT_HELP);
    if (cfg.common.version) { printf("dllm-tok %s\n", DL_VERSION); return fclose(stdout) ? DL_EXIT_IO : 0; }
    if (dl_common_finish(&cfg.common, err, sizeof err)) dl_die(DL_EXIT_USAGE, "%s", err);
    if (!cfg.tk_path) dl_die(DL_EXIT_USAGE, "-t TOK is required (a tokenizer.json or a checkpoint directory)");
    if (cfg.lines && cfg.split) dl_die(DL_EXIT_USAGE, "--lines and --split exclude each other");
    if (cfg.split && !*cfg.split) dl_die(DL_EXIT_USAGE, "--split needs a non-empty separator");
    if (cfg.decode && (cfg.bos || cfg.eos || cfg.lines))
        dl_die(DL_EXIT_USAGE, "--bos, --eos and --lines are for encoding, not -d");
    if (!cfg.decode && (cfg.key || cfg.skip_special || cfg.ids_out || cfg.strict))
        dl_die(DL_EXIT_USAGE, "--key, --skip-special, --ids and --strict are for -d");
    if (cfg.decode && cfg.common.shards) dl_die(DL_EXIT_USAGE, "-d writes one text output; --shards is for encoding");
    if (cfg.ids_out && cfg.jsonl) dl_die(DL_EXIT_USAGE, "--ids and --jsonl exclude each other");
    if (cfg.threads == 0) {
#ifdef _OPENMP
        cfg.threads = omp_get_max_threads();
#else
        cfg.threads = 1;
#endif
    }
    if (!cfg.decode && !dl_chat_find(cfg.chat_template, NULL))
        dl_die(DL_EXIT_USAGE, "--chat-template '%s': unknown (auto, plain, chatml, llama3, llada)", cfg.chat_template);

    /* a dl_tok is single-threaded: one per encoding thread, [0] is primary */
    int ntok = cfg.decode ? 1 : (int)cfg.threads;
    dl_tok **toks = calloc((size_t)ntok, sizeof *toks);
    if (!toks) dl_die(DL_EXIT_IO, "out of memory");
    toks[0] = setup_tokenizer(1);
    int failed = 0;
    #pragma omp parallel for num_threads(ntok) if (ntok > 1) reduction(|:failed)
    for (int i = 1; i < ntok; i++) failed |= (toks[i] = setup_tokenizer(0)) == NULL;
    if (failed) dl_die(DL_EXIT_IO, "%s: cannot load a copy of the tokenizer per thread", cfg.tk_path);
    int rc = cfg.decode ? tk_decode_run(&cfg, toks[0], pos, npos) : tk_encode_run(&cfg, toks, ntok, pos, npos);
    for (int i = 0; i < ntok; i++) dl_tok_free(toks[i]);
    free(toks);
    free(pos);
    free(av);
    return rc;
}
