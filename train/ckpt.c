/* train/ckpt.c — dllm-train's model sources and bookkeeping around the
 * steps: where the model comes from (--config / --init / --resume), saves,
 * the options recorded for --resume, SIGINT/SIGTERM, metrics JSON Lines, the
 * progress line, a scratch directory.  (Checkpoint files themselves are
 * share/model/dl_ckpt.c's: atomic directory saves; conversion is dl_convert_load.)
 *
 * Model sources: --resume DIR loads weights, AdamW moments and
 * trainer_state.json (a checkpoint without it — --steps 0, a conversion — is
 * refused: start from it with --init); --init SRC loads a dllm checkpoint
 * (a dir whose config.json has the dllm field "objective") or converts
 * anything else (HF dir, llama2.c .bin); --config FILE builds a fresh model
 * (dl_model_init_weights with --seed), taking vocab_size and the token ids
 * the file leaves out from the training data's header.  The tokenizer.json
 * to store with every save is copied to the scratch dir first, so -o may
 * name the directory it came from.
 *
 * Signals: dl_prog_init installed dl_log's handler (remove temporary files,
 * exit 130 at once).  train_signals_install replaces it for SIGINT/SIGTERM
 * with one that only sets a flag, so the current step finishes and main()
 * saves a checkpoint and exits 130; a second signal calls dl_log's handler
 * (a save in progress loses only its temporary directory).  SA_RESTART: a
 * read from a pipe is not turned into an error by the signal.
 *
 * Metrics: one JSON object per line, flushed each time, numbers with 17
 * significant digits (losses compare bit for bit across runs):
 *   {"step":N,"loss":..,"elbo":..,"lr":..,"grad_norm":..,"tokens":..,
 *    "tokens_per_s":..,"elapsed":..}
 *   {"step":N,"valid_elbo":..,"valid_ppl_bound":..,"valid_rows":..,"elapsed":..}
 *   (causal: also "valid_nll" and "valid_ppl", exact)
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "dl_io.h"
#include "dl_log.h"
#include "train.h"

/* ---------------------------------------------------------------- signals */
static volatile sig_atomic_t pending;
static struct sigaction prev_int, prev_term;

static void on_signal(int sig) {
    if (!pending) { pending = sig; return; }
    const struct sigaction *p = sig == SIGINT ? &prev_int : &prev_term;
    if (p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN && p->sa_handler) p->sa_handler(sig);
    _exit(DL_EXIT_INTERRUPTED);
}

void train_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &prev_int);
    sigaction(SIGTERM, &sa, &prev_term);
}

int train_signal_pending(void) { return pending != 0; }

/* ---------------------------------------------------------------- metrics */
int train_metrics_open(train_metrics *mt, const char *path, int append, char *err, size_t errlen) {
    memset(mt, 0, sizeof *mt);
    if (!path) return 0;
    mt->path = path;
    if (!(mt->f = fopen(path, append ? "a" : "w")))
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", path, strerror(errno));
    return 0;
}

void train_metrics_step(train_metrics *mt, int64_t step, const train_step_out *o, double lr, double tokens,
                        double tokens_per_s, double elapsed) {
    if (!mt->f) return;
    fprintf(mt->f, "{\"step\":%lld,\"loss\":%.17g,\"elbo\":%.17g,\"lr\":%.17g,\"grad_norm\":%.17g,"
            "\"tokens\":%.0f,\"tokens_per_s\":%.1f,\"elapsed\":%.3f}\n",
            (long long)step, o->loss, o->elbo, lr, o->grad_norm, tokens, tokens_per_s, elapsed);
    fflush(mt->f);
}

void train_metrics_eval(train_metrics *mt, int64_t step, const train_eval_out *e, int causal, double elapsed) {
    if (!mt->f) return;
    double p = exp(e->elbo);
    fprintf(mt->f, "{\"step\":%lld,\"valid_elbo\":%.17g,\"valid_ppl_bound\":%.17g,", (long long)step, e->elbo, p);
    if (causal) fprintf(mt->f, "\"valid_nll\":%.17g,\"valid_ppl\":%.17g,", e->elbo, p);
    fprintf(mt->f, "\"valid_rows\":%llu,\"valid_targets\":%llu,\"elapsed\":%.3f}\n", (unsigned long long)e->rows,
            (unsigned long long)e->targets, elapsed);
    fflush(mt->f);
}

int train_metrics_close(train_metrics *mt, char *err, size_t errlen) {
    if (!mt->f) return 0;
    int bad = ferror(mt->f);
    if (fclose(mt->f) || bad) {
        mt->f = NULL;
        return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: write error", mt->path);
    }
    mt->f = NULL;
    return 0;
}

/* ---------------------------------------------------------------- progress */
void train_progress_init(train_progress *p, int force) {
    memset(p, 0, sizeof *p);
    p->enabled = dl_verbosity > 0 && (force || isatty(2));
}

static void hms(char *dst, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) { snprintf(dst, n, "?"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(dst, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(dst, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(dst, n, "%lds", t);
}

void train_progress_draw(train_progress *p, int64_t step, int64_t total, double loss, double lr, double tok_s,
                         double elapsed, double eta) {
    if (!p->enabled) return;
    double now = dl_now();
    if (step != total && now - p->t_last < 0.2) return;
    p->t_last = now;
    char el[32], et[32];
    hms(el, sizeof el, elapsed);
    hms(et, sizeof et, eta);
    fprintf(stderr, "\r%s: step %lld/%lld, loss %.4f, lr %.2e, %.0f tokens/s, %s, ETA %s\033[K", dl_prog_name(),
            (long long)step, (long long)total, loss, lr, tok_s, el, et);
    p->drawn = 1;
}

void train_progress_end(train_progress *p) {
    if (p->enabled && p->drawn) fputc('\n', stderr);
    p->drawn = 0;
}

/* ---------------------------------------------------------------- resume args */
static int is_unset(const train_arg *a) {
    switch (a->type) {
    case 'i': return *(long long *)a->p == LLONG_MIN;
    case 'd': return isnan(*(double *)a->p);
    case 's': return *(const char **)a->p == NULL;
    default: return *(int *)a->p == 0;
    }
}

static json_t *arg_json(const train_arg *a) {
    switch (a->type) {
    case 'i': return json_integer(*(long long *)a->p);
    case 'd': return json_real(*(double *)a->p);
    case 's': return json_string(*(const char **)a->p);
    default: return json_boolean(*(int *)a->p);
    }
}

int train_args_json(const train_arg *a, int n, char *out, size_t len) {
    json_t *o = json_object();
    for (int i = 0; i < n; i++)
        if (!is_unset(&a[i]) || a[i].type == 'f') json_object_set_new(o, a[i].key, arg_json(&a[i]));
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(o);
    if (!s || strlen(s) >= len) { free(s); return -1; }
    snprintf(out, len, "%s", s);
    free(s);
    return 0;
}

/* The saved strings must outlive the run: they are kept in a static json. */
static json_t *saved_root;

int train_args_resume(const train_arg *a, int n, const char *saved_json, const char *dir, char *err, size_t errlen) {
    json_error_t je;
    json_t *o = json_loads(saved_json, 0, &je);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s/trainer_state.json: args_json is not a JSON object", dir);
    }
    for (int i = 0; i < n; i++) {
        json_t *j = json_object_get(o, a[i].key);
        if (!j) continue;   /* an option added since: the current value stands */
        if (is_unset(&a[i])) {   /* not given now: take the run's value */
            switch (a[i].type) {
            case 'i': *(long long *)a[i].p = json_integer_value(j); break;
            case 'd': *(double *)a[i].p = json_number_value(j); break;
            case 's': *(const char **)a[i].p = json_string_value(j); break;
            default: *(int *)a[i].p = json_is_true(j); break;
            }
            continue;
        }
        if (!a[i].must_match) continue;   /* given: the new value is used (lr, schedule, ...) */
        json_t *now = arg_json(&a[i]);
        int same = json_equal(now, j);
        if (a[i].type == 'd') same = json_number_value(j) == *(double *)a[i].p;
        json_decref(now);
        if (!same) {
            char *was = json_dumps(j, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
            json_t *nj = arg_json(&a[i]);
            char *is = json_dumps(nj, JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
            json_decref(nj);
            dl_seterr(err, errlen, -DL_EXIT_DATA, "--resume %s: that run used %s = %s, this one %s: "
                      "a checkpoint continues only with the same training options", dir, a[i].key,
                      was ? was : "?", is ? is : "?");
            free(was); free(is);
            json_decref(o);
            return -DL_EXIT_DATA;
        }
    }
    json_decref(saved_root);
    saved_root = o;
    return 0;
}

/* ---------------------------------------------------------------- scratch */
static char scratch_dir[512];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    remove(p);
    return 0;
}

static void scratch_cleanup(void) {
    if (scratch_dir[0]) nftw(scratch_dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    scratch_dir[0] = 0;
}

const char *train_scratch(char *err, size_t errlen) {
    if (scratch_dir[0]) return scratch_dir;
    const char *t = getenv("TMPDIR");
    snprintf(scratch_dir, sizeof scratch_dir, "%s/dllm-train.XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(scratch_dir)) {
        dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", scratch_dir, strerror(errno));
        scratch_dir[0] = 0;
        return NULL;
    }
    atexit(scratch_cleanup);
    return scratch_dir;
}

/* ---------------------------------------------------------------- model */
/* A dllm checkpoint: a directory whose config.json carries the dllm field
 * "objective" (dl_config_save writes it); any other HF dir is converted. */
static int is_dllm_dir(const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    if (!dl_is_file(p)) return 0;
    json_t *o = json_load_file(p, 0, NULL);
    int yes = o && json_object_get(o, "objective") != NULL;
    json_decref(o);
    return yes;
}

/* --config FILE with the tokenizer facts the file leaves out taken from the
 * data header (a model trained from scratch has no tokenizer of its own):
 * vocab_size, mask/bos/eos/pad ids.  Written to the scratch dir, then loaded. */
static int load_config(dl_config *c, const char *path, const dl_header *h, char *err, size_t errlen) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        if (!dl_is_file(path)) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", path, strerror(ENOENT));
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s:%d: %s", path, je.line, je.text);
    }
    if (!json_is_object(o)) { json_decref(o); return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: not a JSON object", path); }
    if (h && h->has_tok) {
        const dl_tokinfo *t = &h->tok;
        static const char *const keys[5] = { "vocab_size", "mask_token_id", "bos_token_id", "eos_token_id", "pad_token_id" };
        int64_t v[5] = { t->vocab_size, t->mask_id, t->bos_id, t->eos_id, t->pad_id };
        for (int i = 0; i < 5; i++)
            if (!json_object_get(o, keys[i]) && v[i] >= 0) json_object_set_new(o, keys[i], json_integer(v[i]));
    }
    char *scr = (char *)train_scratch(err, errlen);
    if (!scr) { json_decref(o); return -DL_EXIT_IO; }
    char tmp[1024];
    snprintf(tmp, sizeof tmp, "%s/config-in.json", scr);
    int w = json_dump_file(o, tmp, JSON_INDENT(1));
    json_decref(o);
    if (w) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot write", tmp);
    int rc = dl_config_load(c, tmp, err, errlen);
    if (rc) {   /* name the user's file, not the scratch copy */
        char *p = strstr(err, tmp);
        if (p) {
            char rest[1024];
            snprintf(rest, sizeof rest, "%s", p + strlen(tmp));
            snprintf(p, errlen - (size_t)(p - err), "%s%s", path, rest);
        }
    }
    return rc;
}

/* Copy DIR/tokenizer.json (and tokenizer_config.json, which names the special
 * tokens, when present) into the scratch dir; tok_path = the scratch copy, or
 * "" when DIR has no tokenizer.json. */
static int copy_tokenizer_of(const char *dir, const char *scr, char *tok_path, size_t tl, char *err, size_t errlen) {
    char p[1024], q[1024];
    snprintf(p, sizeof p, "%s/tokenizer.json", dir);
    if (!dl_is_file(p)) return 0;
    snprintf(tok_path, tl, "%s/tokenizer.json", scr);
    int rc = dl_copy_file(p, tok_path, err, errlen);
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    snprintf(q, sizeof q, "%s/tokenizer_config.json", scr);
    if (!rc && dl_is_file(p)) rc = dl_copy_file(p, q, err, errlen);
    return rc;
}

/* base_model_name_or_path of the adapter this run trains ("" = none) */
static char lora_base[4096];

/* --resume of an adapter directory: its base, the adapter, its moments, the trainer state */
static int open_lora_resume(dl_model *m, const char *device, int threads, const char *dir, char *tok_path, size_t tl,
                            dl_train_state *st, char *err, size_t errlen) {
    dl_lora_cfg c;
    dl_lora *lo = NULL;
    char p[1024];
    int rc = dl_lora_read_config(dir, &c, lora_base, sizeof lora_base, err, errlen);
    if (rc) return rc;
    if (!lora_base[0] || !is_dllm_dir(lora_base))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "--resume %s: base_model_name_or_path \"%s\" is not a dllm "
                         "checkpoint directory", dir, lora_base);
    snprintf(p, sizeof p, "%s/trainer_state.json", dir);
    if (!dl_is_file(p))
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "--resume %s: no trainer_state.json (an adapter without "
                         "training state)", dir);
    if ((rc = dl_model_open_ckpt(m, lora_base, device, threads, err, errlen))) return rc;
    if ((rc = dl_lora_load(&lo, m, dir, NULL, 0, err, errlen))) return rc;
    if ((rc = dl_lora_attach(m, lo, err, errlen))) { dl_lora_free(lo); return rc; }
    if ((rc = dl_lora_load_moments(lo, dir, err, errlen))) return rc;
    if ((rc = dl_train_state_load(st, p, err, errlen))) return rc;
    const char *scr = train_scratch(err, errlen);
    return scr ? copy_tokenizer_of(lora_base, scr, tok_path, tl, err, errlen) : -DL_EXIT_IO;
}

int train_model_open(dl_model *m, const char *device, int threads, const train_model_src *src, char *tok_path, size_t tl,
                     dl_train_state *st, char *err, size_t errlen) {
    int rc;
    tok_path[0] = 0;
    lora_base[0] = 0;
    const char *scr = train_scratch(err, errlen);
    if (!scr) return -DL_EXIT_IO;
    char ac[1024];
    snprintf(ac, sizeof ac, "%s/adapter_config.json", src->resume ? src->resume : "");
    if (src->resume && dl_is_file(ac)) return open_lora_resume(m, device, threads, src->resume, tok_path, tl, st, err, errlen);
    if ((src->lora.r > 0 || src->merge) && !(src->init && is_dllm_dir(src->init)))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s needs --init with a dllm checkpoint directory (convert "
                         "others first: dllm-train --init SRC --steps 0 -o BASE)", src->merge ? "--merge" : "--lora");
    if (src->resume) {
        if (!is_dllm_dir(src->resume))
            return dl_seterr(err, errlen, access(src->resume, F_OK) ? -DL_EXIT_IO : -DL_EXIT_DATA,
                             "--resume %s: not a dllm checkpoint directory (config.json with dllm fields)", src->resume);
        if ((rc = dl_model_open_ckpt(m, src->resume, device, threads, err, errlen))) return rc;
        if ((rc = dl_model_alloc_grads(m, err, errlen)) || (rc = dl_model_alloc_optimizer(m, err, errlen))) return rc;
        char p[1024];
        snprintf(p, sizeof p, "%s/trainer_state.json", src->resume);
        if (!dl_is_file(p))
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "--resume %s: no trainer_state.json (a --steps 0 or "
                             "converted checkpoint: start from it with --init)", src->resume);
        if ((rc = dl_ckpt_load_train_state(m, st, src->resume, err, errlen))) return rc;
        if (src->config) {
            dl_config want;
            if ((rc = load_config(&want, src->config, src->hdr, err, errlen))) return rc;
            if ((rc = dl_config_same_shapes(&want, &m->cfg, err, errlen))) {
                dl_err_prefix(err, errlen, "--resume %s was trained with another config than %s", src->resume,
                              src->config);
                return rc;
            }
        }
        return copy_tokenizer_of(src->resume, scr, tok_path, tl, err, errlen);
    }
    if (src->init && is_dllm_dir(src->init)) {
        if ((rc = dl_model_open_ckpt(m, src->init, device, threads, err, errlen))) return rc;
        if ((rc = copy_tokenizer_of(src->init, scr, tok_path, tl, err, errlen))) return rc;
    } else if (src->init) {
        if (access(src->init, F_OK))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "--init %s: %s", src->init, strerror(errno));
        if ((rc = dl_model_open_convert(m, src->init, src->init_tok, scr, tok_path, tl, device, threads, err, errlen)))
            return rc;
    } else {
        dl_config c;
        if ((rc = load_config(&c, src->config, src->hdr, err, errlen))) return rc;
        if ((rc = dl_model_open_config(m, &c, (uint64_t)src->seed, device, threads, err, errlen))) return rc;
    }
    if (src->tokenizer) {
        snprintf(tok_path, tl, "%s/tokenizer.json", scr);
        if ((rc = dl_copy_file(src->tokenizer, tok_path, err, errlen))) return rc;
    }
    if (src->merge && (rc = dl_lora_fold_dir(m, src->merge, err, errlen))) {
        dl_err_prefix(err, errlen, "--merge %s", src->merge);
        return rc;
    }
    if (src->lora.r > 0) {   /* a new adapter on the --init model, which stays as it is on disk */
        dl_lora *lo;
        if (!realpath(src->init, lora_base))
            return dl_seterr(err, errlen, -DL_EXIT_IO, "--init %s: %s", src->init, strerror(errno));
        if ((rc = dl_lora_new(&lo, m, &src->lora, (uint64_t)src->seed, err, errlen))) return rc;
        if ((rc = dl_lora_attach(m, lo, err, errlen))) { dl_lora_free(lo); return rc; }
    }
    return 0;
}

int train_save(const dl_model *m, const char *dir, const char *tok_path, const dl_train_state *st, dl_st_dtype wdtype,
               int keep, char *err, size_t errlen) {
    char kd[1024];
    snprintf(kd, sizeof kd, "%s-step%lld", dir, st ? (long long)st->step : 0LL);
    if (m->lora) {
        int rc = dl_lora_save(m->lora, &m->cfg, dir, lora_base, st, err, errlen);
        return rc || !keep || !st ? rc : dl_lora_save(m->lora, &m->cfg, kd, lora_base, st, err, errlen);
    }
    int rc = dl_ckpt_save(m, dir, tok_path && tok_path[0] ? tok_path : NULL, st, wdtype, err, errlen);
    if (rc || !keep || !st) return rc;
    return dl_ckpt_save(m, kd, tok_path && tok_path[0] ? tok_path : NULL, st, wdtype, err, errlen);
}
