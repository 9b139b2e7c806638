/* dl_ckpt.c — checkpoint directories: atomic save, validated load, trainer
 * state, and the weight-file set shared with dl_convert.c (implements the
 * save/load half of dl_ckpt.h).
 *
 * Save (the durability contract, dl_sync.h):
 *   1. stale DIR.tmp.<pid> directories beside DIR whose process is gone
 *      (kill(pid, 0) fails with ESRCH: a dllm-train killed inside a save)
 *      are removed; only names that are exactly DIR's name + ".tmp." +
 *      digits, and only their plain files, are touched;
 *   2. every file is written into DIR.tmp.<pid> through dl_out (its own temp
 *      + rename inside that directory), each file fsynced before its rename;
 *   3. the temporary directory is fsynced;
 *   4. it is swapped in: renameat2(RENAME_EXCHANGE) when DIR exists (one
 *      atomic step on Linux; where the filesystem refuses it with EINVAL or
 *      the kernel lacks it (ENOSYS), DIR is renamed to DIR.old.<pid> and the
 *      new one renamed in), rename otherwise;
 *   5. the parent directory is fsynced;
 *   6. the previous checkpoint, now under the temporary name, is removed
 *      file by file.
 * An error before step 5 removes the temporary directory and leaves DIR
 * untouched; a failed parent fsync (step 5) swaps the previous checkpoint
 * back (or removes a new DIR that had none) and is an I/O error.  A kill at
 * any point leaves DIR holding the previous or the new complete checkpoint
 * (after a power loss too, given a filesystem that honours fsync), plus at
 * most a DIR.tmp.<pid> that the next save removes.  Not covered: a kill
 * between the two renames of the no-RENAME_EXCHANGE fallback leaves the
 * complete checkpoints as DIR.old.<pid> and DIR.tmp.<pid> with no DIR
 * (never removed automatically: rename one back by hand); a DIR.tmp.<pid>
 * of a trainer in another PID namespace on a shared filesystem looks dead
 * here and would be removed (run one trainer per output directory).
 *
 * Files: config.json (dl_config_save, torch_dtype "float32"/"bfloat16"),
 * model.safetensors (HF names, __metadata__ {"format": "pt"} as transformers
 * requires; tied models have no lm_head.weight), tokenizer.json copied from
 * the given path (and tokenizer_config.json from beside it when present),
 * optimizer.safetensors ("m.<name>", "v.<name>", F32; plus "master.<name>",
 * the fp32 weights, when model.safetensors is stored as BF16 / F16, so a
 * resume is exact) and trainer_state.json:
 *   {"format": "dllm-trainer-state", "version": 1, "step": N, "seed": N,
 *    "data_epoch": N, "data_record": N, "tokens_seen": X, "lr_last": X,
 *    "args": {...}}
 * (uint64 values above 2^63-1 are written as decimal strings; reals with 17
 * significant digits, so a resume sees the same doubles bit for bit; "args"
 * comes back as compact JSON text in the order written).
 *
 * Load: config.json first (dl_config_load), the model is initialised from
 * it, then every tensor the config implies must be in the weights with its
 * exact shape; a tensor the config does not imply is refused too (except
 * rotary caches "*.rotary_emb.inv_freq" and a tied model's lm_head.weight,
 * which HF sometimes writes), so a config that disagrees with its weights
 * never loads half-right.  F32, F16 and BF16 weights are accepted.  Tensors
 * are copied out of the read-only map one by one and each one's pages are
 * dropped after it (dl_st_release).  dl_ckpt_load_infer keeps a BF16
 * checkpoint's matrices bf16 (dl_model wdtype DL_BF16): never an f32 copy.
 * A family's own directory (LLaDA, Dream, dLLM's a2d-*, Qwen3) loads as it
 * is: dl_config_load reads its config.json, dl_family_tensor_name its
 * tensor names.
 *
 * Not here: conversion of foreign checkpoints (dl_convert.c), config.json
 * parsing (dl_config.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "dl_ckpt.h"
#include "dl_io.h"
#include "dl_json.h"
#include "dl_sync.h"


/* ================================================================ weights set */
void dl_ckpt_weights_close(dl_ckpt_weights *w) {
    for (int i = 0; i < w->n; i++) dl_st_close(&w->f[i]);
    free(w->f);
    free(w->where);
    memset(w, 0, sizeof *w);
}

const dl_st_tensor *dl_ckpt_weights_find(const dl_ckpt_weights *w, const char *name, const dl_st_file **file) {
    for (int i = 0; i < w->n; i++) {
        const dl_st_tensor *t = dl_st_find(&w->f[i], name);
        if (t) {
            if (file) *file = &w->f[i];
            return t;
        }
    }
    return NULL;
}

static int open_index(dl_ckpt_weights *w, const char *dir, const char *index, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_load_file(index, JSON_REJECT_DUPLICATES, &je), *map;
    if (!root) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: line %d: %s", index, je.line, je.text);
    int rc = 0;
    map = json_object_get(root, "weight_map");
    if (!json_is_object(map) || json_object_size(map) == 0) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: no \"weight_map\" object", index);
        goto out;
    }
    w->f = calloc(json_object_size(map), sizeof *w->f);
    if (!w->f) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto out; }
    const char *name;
    json_t *v;
    json_object_foreach(map, name, v) {       /* open each distinct shard once */
        const char *shard = json_string_value(v);
        if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, "..") || !strcmp(shard, ".")) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": shard must be a file name in %s", index,
                           name, dir);
            goto out;
        }
        int seen = 0;
        for (int i = 0; i < w->n && !seen; i++) {
            const char *b = strrchr(w->f[i].path, '/');
            seen = !strcmp(b ? b + 1 : w->f[i].path, shard);
        }
        if (seen) continue;
        char p[DL_PATH_MAX];
        if ((rc = dl_path_join(p, dir, shard, err, errlen)) || (rc = dl_st_open(&w->f[w->n], p, err, errlen))) goto out;
        w->n++;
    }
    json_object_foreach(map, name, v) {       /* every mapped tensor in its shard */
        const dl_st_file *in = NULL;
        if (!dl_ckpt_weights_find(w, name, &in) || strcmp(strrchr(in->path, '/') + 1, json_string_value(v))) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" is not in its shard %s", index, name,
                           json_string_value(v));
            goto out;
        }
    }
    for (int i = 0; i < w->n; i++)            /* no name in two shards */
        for (int j = 0; j < w->f[i].n; j++)
            for (int k = i + 1; k < w->n; k++)
                if (dl_st_find(&w->f[k], w->f[i].t[j].name)) {
                    rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" is in both %s and %s", index,
                                   w->f[i].t[j].name, w->f[i].path, w->f[k].path);
                    goto out;
                }
out:
    json_decref(root);
    return rc;
}

int dl_ckpt_weights_open(dl_ckpt_weights *w, const char *path, char *err, size_t errlen) {
    memset(w, 0, sizeof *w);
    char p[DL_PATH_MAX];
    int rc = 0;
    if (!(w->where = strdup(path))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    if (!dl_is_dir(path)) {
        if (!(w->f = calloc(1, sizeof *w->f))) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        else if (!(rc = dl_st_open(&w->f[0], path, err, errlen))) w->n = 1;
    } else if ((rc = dl_path_join(p, path, "model.safetensors", err, errlen)) == 0 && dl_is_file(p)) {
        if (!(w->f = calloc(1, sizeof *w->f))) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        else if (!(rc = dl_st_open(&w->f[0], p, err, errlen))) w->n = 1;
    } else if (!rc && (rc = dl_path_join(p, path, "model.safetensors.index.json", err, errlen)) == 0) {
        if (dl_is_file(p)) rc = open_index(w, path, p, err, errlen);
        else rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: no model.safetensors or model.safetensors.index.json",
                            path);
    }
    if (rc) dl_ckpt_weights_close(w);
    return rc;
}

/* ================================================================ trainer state */
static json_t *u64_json(uint64_t v) {
    if (v <= (uint64_t)INT64_MAX) return json_integer((json_int_t)v);
    char s[24];
    snprintf(s, sizeof s, "%llu", (unsigned long long)v);
    return json_string(s);
}

int dl_train_state_save(const dl_train_state *st, const char *path, char *err, size_t errlen) {
    json_t *args = NULL;
    if (st->args_json[0]) {
        json_error_t je;
        args = json_loads(st->args_json, 0, &je);
        if (!json_is_object(args)) {
            json_decref(args);
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: trainer args are not a JSON object: %s", path,
                             je.text);
        }
    } else args = json_object();
    json_t *o = json_object();
    if (!o || !args || json_object_set_new(o, "format", json_string("dllm-trainer-state")) ||
        json_object_set_new(o, "version", json_integer(1)) || json_object_set_new(o, "step", json_integer(st->step)) ||
        json_object_set_new(o, "seed", u64_json(st->seed)) ||
        json_object_set_new(o, "data_epoch", u64_json(st->data_epoch)) ||
        json_object_set_new(o, "data_record", u64_json(st->data_record)) ||
        json_object_set_new(o, "tokens_seen", json_real(st->tokens_seen)) ||
        json_object_set_new(o, "lr_last", json_real(st->lr_last)) || json_object_set(o, "args", args)) {
        json_decref(o);
        json_decref(args);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    json_decref(args);
    int rc = dl_json_write(path, o, JSON_INDENT(2) | JSON_REAL_PRECISION(17), err, errlen);
    json_decref(o);
    return rc;
}

static int get_u64(json_t *o, const char *key, uint64_t *v, const char *path, char *err, size_t errlen) {
    json_t *j = json_object_get(o, key);
    char *end;
    if (json_is_integer(j) && json_integer_value(j) >= 0) { *v = (uint64_t)json_integer_value(j); return 0; }
    if (json_is_string(j) && *json_string_value(j)) {
        errno = 0;
        *v = strtoull(json_string_value(j), &end, 10);
        if (!*end && !errno && json_string_value(j)[0] != '-') return 0;
    }
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: field %s: missing or not a non-negative integer", path, key);
}

/* The fields of a parsed trainer state `o` (consumed: decref'd here). */
static int train_state_from_json(dl_train_state *st, json_t *o, const char *path, char *err, size_t errlen) {
    int rc = 0;
    uint64_t step = 0;
    json_t *fmt = json_object_get(o, "format"), *args = json_object_get(o, "args"), *tk = json_object_get(o, "tokens_seen"),
           *lr = json_object_get(o, "lr_last");
    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), "dllm-trainer-state"))
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: not a dllm trainer state (\"format\")", path);
    else if (json_integer_value(json_object_get(o, "version")) != 1)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: unsupported version (expected 1)", path);
    else if ((rc = get_u64(o, "step", &step, path, err, errlen)) || (rc = get_u64(o, "seed", &st->seed, path, err, errlen)) ||
             (rc = get_u64(o, "data_epoch", &st->data_epoch, path, err, errlen)) ||
             (rc = get_u64(o, "data_record", &st->data_record, path, err, errlen)))
        ;
    else if (!json_is_number(tk) || !json_is_number(lr))
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tokens_seen / lr_last missing or not numbers", path);
    else if (args && !json_is_object(args))
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: \"args\" is not an object", path);
    else {
        st->step = (int64_t)step;
        st->tokens_seen = json_number_value(tk);
        st->lr_last = json_number_value(lr);
        if (args) {
            char *text = json_dumps(args, JSON_COMPACT | JSON_REAL_PRECISION(17));
            if (!text) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
            else if (strlen(text) >= sizeof st->args_json)
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: \"args\" longer than %zu bytes", path,
                               sizeof st->args_json - 1);
            else memcpy(st->args_json, text, strlen(text) + 1);
            free(text);
        }
    }
    json_decref(o);
    return rc;
}

int dl_train_state_load(dl_train_state *st, const char *path, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    json_error_t je;
    json_t *o = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
        int code = dl_is_file(path) ? -DL_EXIT_DATA : -DL_EXIT_IO;
        return dl_seterr(err, errlen, code, "%s: %s", path, code == -DL_EXIT_IO ? "cannot read (no trainer state to resume from)" : je.text);
    }
    return train_state_from_json(st, o, path, err, errlen);
}

int dl_train_state_parse(dl_train_state *st, const char *text, size_t len, const char *name, char *err, size_t errlen) {
    memset(st, 0, sizeof *st);
    json_error_t je;
    json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %s", name, je.text);
    return train_state_from_json(st, o, name, err, errlen);
}

/* ================================================================ save */
static const char *const KNOWN[] = {
    "config.json", "model.safetensors", "tokenizer.json", "optimizer.safetensors", "trainer_state.json",
    "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "tokenizer.model",
    "model.safetensors.index.json", "model-*.safetensors", "README.md",
    "adapter_config.json", "adapter_model.safetensors",   /* LoRA adapter directories (dl_lora.h) */
};

static int known_name(const char *n) {
    for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
        if (!fnmatch(KNOWN[i], n, FNM_PERIOD)) return 1;
    return 0;
}

/* 0 when dir may be replaced (empty, or only checkpoint files). */
static int check_replaceable(const char *dir, char *err, size_t errlen) {
    DIR *d = opendir(dir);
    if (!d) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", dir, strerror(errno));
    struct dirent *e;
    int rc = 0;
    char p[DL_PATH_MAX];
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        struct stat st;
        if (!known_name(e->d_name) || dl_path_join(p, dir, e->d_name, err, errlen) || lstat(p, &st) || !S_ISREG(st.st_mode))
            rc = dl_seterr(err, errlen, -DL_EXIT_USAGE,
                           "%s exists and holds \"%s\", which is not a checkpoint file: refusing to replace it", dir,
                           e->d_name);
    }
    closedir(d);
    return rc;
}

/* Remove the plain files of dir, then dir (best effort). */
static void remove_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[DL_PATH_MAX];
    while ((e = readdir(d))) {
        struct stat st;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < DL_PATH_MAX && !lstat(p, &st) && !S_ISDIR(st.st_mode)) unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

/* Is name exactly base + ".tmp." + a pid (1-10 digits)?  The pid, or 0. */
static long tmp_pid(const char *name, const char *base) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) || strncmp(name + bl, ".tmp.", 5)) return 0;
    const char *d = name + bl + 5;
    size_t nd = strspn(d, "0123456789");
    if (nd == 0 || nd > 10 || d[nd]) return 0;
    long pid = strtol(d, NULL, 10);
    return pid > 0 && pid <= INT_MAX ? pid : 0;
}

/* Step 1 of the save: remove the DIR.tmp.<pid> directories beside dir whose
 * process no longer exists (best effort; a live pid, EPERM, or anything that
 * is not a directory is left alone). */
static void remove_stale_tmps(const char *dir) {
    char parent[DL_PATH_MAX], p[DL_PATH_MAX];
    const char *slash = strrchr(dir, '/'), *base = slash ? slash + 1 : dir;
    if (!slash) snprintf(parent, sizeof parent, ".");
    else snprintf(parent, sizeof parent, "%.*s", slash == dir ? 1 : (int)(slash - dir), dir);
    DIR *d = opendir(parent);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        long pid = tmp_pid(e->d_name, base);
        struct stat st;
        if (!pid || pid == (long)getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
        if (snprintf(p, sizeof p, "%s/%s", parent, e->d_name) < DL_PATH_MAX && !lstat(p, &st) && S_ISDIR(st.st_mode))
            remove_dir(p);
    }
    closedir(d);
}

/* Steps 4-6 of the save: put the complete, fsynced tmp in place of dir. */
static int swap_in(const char *tmp, const char *dir, int exists, char *err, size_t errlen) {
    int rc;
    if (!exists) {
        if (rename(tmp, dir)) {
            rc = dl_seterr(err, errlen, -DL_EXIT_IO, "rename %s -> %s: %s", tmp, dir, strerror(errno));
            remove_dir(tmp);
            return rc;
        }
        if ((rc = dl_sync_parent(dir, err, errlen))) remove_dir(dir);   /* not durable: no checkpoint */
        return rc;
    }
    if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) == 0) {
        if ((rc = dl_sync_parent(dir, err, errlen)))                     /* previous one back */
            (void)renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE);
        remove_dir(tmp);                  /* the previous checkpoint, or the new one after a failure */
        return rc;
    }
    if (errno != EINVAL && errno != ENOSYS) {   /* a real error, not "this filesystem cannot exchange" */
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "rename %s <-> %s: %s", tmp, dir, strerror(errno));
        remove_dir(tmp);
        return rc;
    }
    /* no RENAME_EXCHANGE here (EINVAL, ENOSYS): old aside, new in, old removed */
    char old[DL_PATH_MAX + 32];
    snprintf(old, sizeof old, "%s.old.%ld", dir, (long)getpid());
    if (rename(dir, old)) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "rename %s -> %s: %s", dir, old, strerror(errno));
        remove_dir(tmp);
        return rc;
    }
    if (rename(tmp, dir)) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "rename %s -> %s: %s", tmp, dir, strerror(errno));
        rename(old, dir);
        remove_dir(tmp);
        return rc;
    }
    if ((rc = dl_sync_parent(dir, err, errlen))) {
        remove_dir(dir);
        rename(old, dir);
        return rc;
    }
    remove_dir(old);
    return 0;
}

static size_t numel(const dl_tensor *t) { return (size_t)t->shape[0] * (size_t)(t->ndim == 2 ? t->shape[1] : 1); }

static size_t max_numel(const dl_model *m) {
    size_t mx = 1;
    for (int i = 0; i < m->n_tensors; i++)
        if (numel(&m->tensors[i]) > mx) mx = numel(&m->tensors[i]);
    return mx;
}

/* Write the tensors of block (params, adam_m or adam_v; device) to w under prefix + name. */
static int write_block(dl_st_writer *w, const dl_model *m, const float *block, const char *prefix, dl_st_dtype dt,
                       float *host, char *err, size_t errlen) {
    char name[128];
    for (int i = 0; i < m->n_tensors; i++) {
        const dl_tensor *t = &m->tensors[i];
        int64_t shape[2] = { t->shape[0], t->shape[1] };
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        dl_dev_d2h(m->dev, host, block + t->offset, numel(t) * sizeof(float));
        int rc = dl_st_writer_add(w, name, dt, t->ndim, shape, host, err, errlen);
        if (rc) return rc;
    }
    return 0;
}

/* model.safetensors in wdtype, or (optimizer) optimizer.safetensors: m., v.
 * and, when the weights were stored below f32, the fp32 masters "master."
 * so that --resume continues from exactly the weights the run had. */
static int save_weights(const dl_model *m, const char *path, dl_st_dtype wdtype, int optimizer, float *host,
                        char *err, size_t errlen) {
    dl_st_writer *w;
    int rc = dl_st_writer_open(&w, path, err, errlen);
    if (rc) return rc;
    if (optimizer) {
        rc = dl_st_writer_set_metadata(w, "format", "dllm-adamw");
        if (!rc) rc = write_block(w, m, m->adam_m, "m.", DL_ST_F32, host, err, errlen);
        if (!rc) rc = write_block(w, m, m->adam_v, "v.", DL_ST_F32, host, err, errlen);
        if (!rc && wdtype != DL_ST_F32) rc = write_block(w, m, m->params, "master.", DL_ST_F32, host, err, errlen);
    } else {
        rc = dl_st_writer_set_metadata(w, "format", "pt");
        if (!rc) rc = write_block(w, m, m->params, "", wdtype, host, err, errlen);
    }
    if (rc) {
        dl_st_writer_abort(w);
        return rc;
    }
    return dl_st_writer_close(w, err, errlen);
}

static int write_all(const dl_model *m, const char *tmp, const char *tokenizer_json, const dl_train_state *st,
                     dl_st_dtype wdtype, char *err, size_t errlen) {
    char p[DL_PATH_MAX], q[DL_PATH_MAX];
    int rc;
    if (wdtype != DL_ST_F32 && wdtype != DL_ST_BF16 && wdtype != DL_ST_F16)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "checkpoint weights are stored as F32, BF16 or F16, not %s",
                         dl_st_dtype_name(wdtype));
    if (m->wdtype != DL_F32)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "saving a checkpoint needs the fp32 weights (this model holds "
                         "%s matrices for inference only)", dl_dtype_name(m->wdtype));
    const char *torch = wdtype == DL_ST_BF16 ? "bfloat16" : wdtype == DL_ST_F16 ? "float16" : "float32";
    if ((rc = dl_path_join(p, tmp, "config.json", err, errlen)) || (rc = dl_config_save(&m->cfg, p, torch, err, errlen)))
        return rc;
    float *host = malloc(max_numel(m) * sizeof(float));
    if (!host) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    rc = dl_path_join(p, tmp, "model.safetensors", err, errlen);
    if (!rc) rc = save_weights(m, p, wdtype, 0, host, err, errlen);
    if (!rc && st) {
        if (!m->adam_m || !m->adam_v)
            rc = dl_seterr(err, errlen, -DL_EXIT_USAGE, "saving trainer state: the model has no optimizer state");
        else if (!(rc = dl_path_join(p, tmp, "optimizer.safetensors", err, errlen)))
            rc = save_weights(m, p, wdtype, 1, host, err, errlen);
        if (!rc && !(rc = dl_path_join(p, tmp, "trainer_state.json", err, errlen))) rc = dl_train_state_save(st, p, err, errlen);
    }
    free(host);
    if (rc || !tokenizer_json) return rc;
    /* tokenizer.json (a directory names the one inside it) + tokenizer_config.json beside it */
    char src[DL_PATH_MAX], srcdir[DL_PATH_MAX];
    if (dl_is_dir(tokenizer_json)) {
        if ((rc = dl_path_join(src, tokenizer_json, "tokenizer.json", err, errlen))) return rc;
        snprintf(srcdir, sizeof srcdir, "%s", tokenizer_json);
    } else {
        snprintf(src, sizeof src, "%s", tokenizer_json);
        snprintf(srcdir, sizeof srcdir, "%s", tokenizer_json);
        char *slash = strrchr(srcdir, '/');
        if (slash) *slash = 0;
        else snprintf(srcdir, sizeof srcdir, ".");
    }
    if ((rc = dl_path_join(p, tmp, "tokenizer.json", err, errlen)) || (rc = dl_copy_file(src, p, err, errlen))) return rc;
    if ((rc = dl_path_join(q, srcdir, "tokenizer_config.json", err, errlen))) return rc;
    if (dl_is_file(q) && (!(rc = dl_path_join(p, tmp, "tokenizer_config.json", err, errlen))))
        rc = dl_copy_file(q, p, err, errlen);
    return rc;
}

typedef struct {
    const dl_model *m; const char *tokenizer_json; const dl_train_state *st; dl_st_dtype wdtype;
} save_args;

static int write_ckpt(void *ctx, const char *tmp, char *err, size_t errlen) {
    const save_args *a = ctx;
    return write_all(a->m, tmp, a->tokenizer_json, a->st, a->wdtype, err, errlen);
}

int dl_ckpt_save(const dl_model *m, const char *dir_in, const char *tokenizer_json, const dl_train_state *st,
                 dl_st_dtype wdtype, char *err, size_t errlen) {
    save_args a = { m, tokenizer_json, st, wdtype };
    return dl_ckpt_save_with(dir_in, write_ckpt, &a, err, errlen);
}

int dl_ckpt_save_with(const char *dir_in, dl_ckpt_writer write, void *ctx, char *err, size_t errlen) {
    char dir[DL_PATH_MAX], tmp[DL_PATH_MAX + 32];
    size_t n = strlen(dir_in);
    while (n > 1 && dir_in[n - 1] == '/') n--;
    if (n == 0 || n >= DL_PATH_MAX - 32) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "bad checkpoint directory name \"%s\"", dir_in);
    memcpy(dir, dir_in, n);
    dir[n] = 0;
    if (!strcmp(dir, "/") || !strcmp(dir, ".") || !strcmp(dir, ".."))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "refusing to use \"%s\" as a checkpoint directory", dir);
    struct stat sb;
    int exists = lstat(dir, &sb) == 0, rc;
    if (exists && !S_ISDIR(sb.st_mode))
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s exists and is not a directory", dir);
    if (exists && (rc = check_replaceable(dir, err, errlen))) return rc;
    remove_stale_tmps(dir);
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", dir, (long)getpid());
    if (dl_is_dir(tmp)) remove_dir(tmp);   /* stale, from this very pid */
    if (mkdir(tmp, 0755)) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot create: %s", tmp, strerror(errno));
    if ((rc = write(ctx, tmp, err, errlen)) || (rc = dl_sync_dir(tmp, err, errlen))) {
        remove_dir(tmp);
        return rc;
    }
    return swap_in(tmp, dir, exists, err, errlen);
}

/* ================================================================ load */
static int allowed_extra(const char *name, int tied) {
    size_t n = strlen(name), k = strlen("rotary_emb.inv_freq");
    if (n >= k && !strcmp(name + n - k, "rotary_emb.inv_freq")) return 1;
    return tied && !strcmp(name, "lm_head.weight");
}

/* One model weight from the map into where the model keeps it: a bf16
 * tensor into a bf16 matrix is copied as it is (no f32 on the way), any
 * other pair goes through f32 (dl_st_read_f32, then dl_model_set_tensor
 * rounds to bf16 if the model stores bf16). */
static int put_weight(dl_model *m, const dl_tensor *t, const dl_st_file *f, const dl_st_tensor *s, float *host,
                      char *err, size_t errlen) {
    dl_dtype dt;
    dl_model_tensor_data(m, t, &dt);
    if (dt == DL_BF16 && s->dtype == DL_ST_BF16) return dl_model_set_tensor(m, t, dl_st_data(f, s), DL_BF16, err, errlen);
    int rc = dl_st_read_f32(f, s, host, numel(t), err, errlen);
    return rc ? rc : dl_model_set_tensor(m, t, host, DL_F32, err, errlen);
}

/* Copy the tensors of m (named prefix + name; weights (prefix ""): the name
 * in the checkpoint's family, dl_family_tensor_name) from w into block
 * (device).  Every expected tensor must be there with its shape. */
static int load_block(dl_model *m, float *block, const dl_ckpt_weights *w, const char *prefix, char *err, size_t errlen) {
    if (block == m->params) dl_model_weights_changed(m);
    float *host = malloc(max_numel(m) * sizeof(float));
    if (!host) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    char name[128];
    int rc = 0;
    for (int i = 0; i < m->n_tensors && !rc; i++) {
        const dl_tensor *t = &m->tensors[i];
        const dl_st_file *f;
        if (*prefix) snprintf(name, sizeof name, "%s%s", prefix, t->name);
        else if ((rc = dl_family_tensor_name(&m->cfg, t->name, name, sizeof name, err, errlen))) break;
        const dl_st_tensor *s = dl_ckpt_weights_find(w, name, &f);
        if (!s) {
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" missing (the config implies it)", w->where, name);
            break;
        }
        int same = s->ndim == t->ndim;
        for (int k = 0; k < t->ndim && same; k++) same = s->shape[k] == t->shape[k];
        if (!same) {
            char want[48], got[96] = "";
            if (t->ndim == 2) snprintf(want, sizeof want, "[%d, %d]", t->shape[0], t->shape[1]);
            else snprintf(want, sizeof want, "[%d]", t->shape[0]);
            for (int k = 0; k < s->ndim; k++)
                snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", k ? ", " : "", (long long)s->shape[k]);
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": shape [%s] but the config implies %s",
                           f->path, name, got, want);
            break;
        }
        if (block == m->params && !prefix[0]) rc = put_weight(m, t, f, s, host, err, errlen);
        else if (!(rc = dl_st_read_f32(f, s, host, numel(t), err, errlen)))
            dl_dev_h2d(m->dev, block + t->offset, host, numel(t) * sizeof(float));
        dl_st_release(f, s);   /* copied: drop its pages of the map */
    }
    free(host);
    return rc;
}

/* Every tensor of w must be prefix + a model tensor (prefixes: n of them). */
static int check_extras(const dl_model *m, const dl_ckpt_weights *w, const char *const *prefixes, int n, char *err,
                        size_t errlen) {
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->f[i].n; j++) {
            const char *nm = w->f[i].t[j].name;
            int ok = 0;
            for (int k = 0; k < n && !ok; k++) {
                size_t pn = strlen(prefixes[k]);
                /* weights (no prefix) are named as the checkpoint's family names them */
                ok = !strncmp(nm, prefixes[k], pn) &&
                     (allowed_extra(nm + pn, m->cfg.tied) ||
                      (pn ? dl_model_tensor(m, nm + pn) != NULL : dl_family_has_tensor(m, nm)));
            }
            if (!ok)
                return dl_seterr(err, errlen, -DL_EXIT_DATA,
                                 "%s: tensor \"%s\" is not part of the model the config describes", w->f[i].path, nm);
        }
    return 0;
}

/* The weight dtype an inference model of w gets: DL_BF16 when every matrix
 * (2-D tensor) in the files is BF16 and dev computes with bf16 weights,
 * else DL_F32 (f32 / f16 / mixed checkpoints: today's path). */
static dl_dtype infer_wdtype(const dl_ckpt_weights *w, dl_dev *dev) {
    int n2 = 0;
    for (int i = 0; i < w->n; i++)
        for (int j = 0; j < w->f[i].n; j++)
            if (w->f[i].t[j].ndim == 2) {
                if (w->f[i].t[j].dtype != DL_ST_BF16) return DL_F32;
                n2++;
            }
    return n2 && dl_dev_supports_w(dev, DL_OP_LINEAR_FWD, DL_F32, DL_BF16) &&
           dl_dev_supports_w(dev, DL_OP_LINEAR_FWD_SPLIT, DL_F32, DL_BF16) &&
           dl_dev_supports_w(dev, DL_OP_EMBEDDING_FWD, DL_F32, DL_BF16) ? DL_BF16 : DL_F32;
}

static int load_ckpt(dl_model *m, const char *dir, dl_dev *dev, int infer, char *err, size_t errlen);

int dl_ckpt_load(dl_model *m, const char *dir, dl_dev *dev, char *err, size_t errlen) {
    return load_ckpt(m, dir, dev, 0, err, errlen);
}

int dl_ckpt_load_infer(dl_model *m, const char *dir, dl_dev *dev, char *err, size_t errlen) {
    return load_ckpt(m, dir, dev, 1, err, errlen);
}

static int load_ckpt(dl_model *m, const char *dir, dl_dev *dev, int infer, char *err, size_t errlen) {
    char cfgpath[DL_PATH_MAX];
    int rc;
    memset(m, 0, sizeof *m);
    if (dl_is_dir(dir)) rc = dl_path_join(cfgpath, dir, "config.json", err, errlen);
    else {
        const char *slash = strrchr(dir, '/');
        int dn = slash ? (int)(slash - dir) : 1;
        rc = snprintf(cfgpath, sizeof cfgpath, "%.*s/config.json", dn, slash ? dir : ".") >= DL_PATH_MAX
                 ? dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: path too long", dir) : 0;
    }
    if (rc) return rc;
    dl_config c;
    if ((rc = dl_config_load(&c, cfgpath, err, errlen))) return rc;
    dl_ckpt_weights w;
    if ((rc = dl_ckpt_weights_open(&w, dir, err, errlen))) return rc;
    if (!(rc = dl_model_init_w(m, &c, dev, infer ? infer_wdtype(&w, dev) : DL_F32, err, errlen))) {
        static const char *const none[] = { "" };
        rc = load_block(m, m->params, &w, "", err, errlen);
        if (!rc) rc = check_extras(m, &w, none, 1, err, errlen);
        if (rc) dl_model_free(m);
    } else dl_err_prefix(err, errlen, "%s", cfgpath);
    dl_ckpt_weights_close(&w);
    return rc;
}

int dl_ckpt_load_train_state(dl_model *m, dl_train_state *st, const char *dir, char *err, size_t errlen) {
    char p[DL_PATH_MAX];
    int rc;
    if ((rc = dl_path_join(p, dir, "trainer_state.json", err, errlen)) || (rc = dl_train_state_load(st, p, err, errlen)))
        return rc;
    if ((rc = dl_path_join(p, dir, "optimizer.safetensors", err, errlen))) return rc;
    dl_ckpt_weights w;
    if ((rc = dl_ckpt_weights_open(&w, p, err, errlen))) return rc;
    static const char *const mv[] = { "m.", "v.", "master." };
    /* fp32 masters of a run whose model.safetensors is bf16 / f16: they,
     * not the rounded weights, are what training continues from */
    int masters = 0;
    for (int i = 0; i < w.n; i++)
        for (int j = 0; j < w.f[i].n; j++) masters |= !strncmp(w.f[i].t[j].name, "master.", 7);
    if (!(rc = dl_model_alloc_optimizer(m, err, errlen)) && !(rc = load_block(m, m->adam_m, &w, "m.", err, errlen)) &&
        !(rc = load_block(m, m->adam_v, &w, "v.", err, errlen)) &&
        !(rc = masters ? load_block(m, m->params, &w, "master.", err, errlen) : 0))
        rc = check_extras(m, &w, mv, 3, err, errlen);
    dl_ckpt_weights_close(&w);
    return rc;
}
