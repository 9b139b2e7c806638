/* dl_model_open.c — opening a model with its device (dl_model_open.h).
 * Does not: keep any state of its own: the device is m->dev, and whoever
 * opened the model through here owns it.
 */
#include <stdio.h>
#include <string.h>
#include "dl_ckpt.h"
#include "dl_io.h"
#include "dl_log.h"
#include "dl_lora.h"
#include "dl_model_open.h"

static int open_device(dl_dev **d, const char *name, int threads, char *err, size_t errlen) {
    *d = NULL;
    dl_dev_kind k;
    if (!strcmp(name, "cpu")) k = DL_DEV_CPU;
    else if (!strcmp(name, "cuda")) k = DL_DEV_CUDA;
    else if (!strcmp(name, "ref")) k = DL_DEV_REF;   /* the readable reference twin: slow, for checks */
    else return dl_seterr(err, errlen, -DL_EXIT_USAGE, "device '%s': expected cpu, cuda or ref", name);
    int rc = dl_dev_open(d, k, threads, err, errlen);
    if (rc) dl_err_prefix(err, errlen, "device %s", name);
    const char *why = rc || k != DL_DEV_CPU ? NULL : dl_k_openblas_missing();
    if (why) dl_warn("OpenBLAS could not be loaded (%s): the CPU matrix products run in plain C, about half as fast", why);
    return rc;
}

/* After a builder: on failure close the device it was given. */
static int built(dl_model *m, dl_dev *d, int rc) {
    if (rc) {
        dl_model_free(m);
        dl_dev_close(d);
    }
    return rc;
}

int dl_model_open_ckpt(dl_model *m, const char *dir, const char *device, int threads, char *err, size_t errlen) {
    dl_dev *d;
    memset(m, 0, sizeof *m);
    int rc = open_device(&d, device, threads, err, errlen);
    if (rc) return rc;
    return built(m, d, dl_ckpt_load(m, dir, d, err, errlen));
}

int dl_model_open_convert(dl_model *m, const char *src, const char *tokenizer_bin, const char *scratch_dir,
                          char *tokenizer_json_out, size_t tj_len, const char *device, int threads, char *err,
                          size_t errlen) {
    dl_dev *d;
    memset(m, 0, sizeof *m);
    int rc = open_device(&d, device, threads, err, errlen);
    if (rc) return rc;
    return built(m, d, dl_convert_load(m, src, tokenizer_bin, scratch_dir, tokenizer_json_out, tj_len, d, err,
                                       errlen));
}

int dl_model_open_config(dl_model *m, const dl_config *c, uint64_t seed, const char *device, int threads, char *err,
                         size_t errlen) {
    dl_dev *d;
    memset(m, 0, sizeof *m);
    int rc = open_device(&d, device, threads, err, errlen);
    if (rc) return rc;
    if ((rc = dl_model_init(m, c, d, err, errlen))) return built(m, d, rc);
    dl_model_init_weights(m, seed);
    return 0;
}

void dl_model_close(dl_model *m) {
    if (!m) return;
    dl_dev *d = m->dev;
    dl_model_free(m);
    if (d) dl_dev_close(d);
}

const char *dl_model_device_describe(const dl_model *m) { return dl_dev_describe(m->dev); }
int dl_model_threads(const dl_model *m) { return dl_dev_threads(m->dev); }

/* sample / score: a bf16 checkpoint keeps its matrices bf16 (dl_ckpt_load_infer) */
static int open_ckpt_infer(dl_model *m, const char *dir, const char *device, int threads, int bf16, char *err,
                           size_t errlen) {
    dl_dev *d;
    memset(m, 0, sizeof *m);
    int rc = open_device(&d, device, threads, err, errlen);
    if (rc) return rc;
    /* bf16 compute rounds its own copy from fp32 masters (a bf16 checkpoint widens exactly) */
    return built(m, d, bf16 ? dl_ckpt_load(m, dir, d, err, errlen) : dl_ckpt_load_infer(m, dir, d, err, errlen));
}

int dl_model_open_infer(dl_model *m, dl_infer_info *info, const dl_infer_opts *o, char *err, size_t errlen) {
    memset(info, 0, sizeof *info);
    int rc = open_ckpt_infer(m, o->dir, o->device, o->threads, o->bf16, err, errlen);
    if (rc) return rc;
    const dl_config *c = &m->cfg;
    info->causal = o->force_causal || !strcmp(c->objective, "causal");
    snprintf(info->tok_path, sizeof info->tok_path, "%s/tokenizer.json", o->dir);
    if (dl_is_file(info->tok_path) && (rc = dl_tok_load(&info->tok, info->tok_path, err, errlen))) {
        dl_model_close(m);
        return rc;
    }
    /* dLLM's a2d-* checkpoints keep their mask token in the tokenizer only */
    int64_t mid = o->mask_id >= 0 ? o->mask_id : c->mask_token_id;
    if (mid < 0 && info->tok && !strncmp(c->family, "a2d-", 4) && (mid = dl_tok_special_id(info->tok, DL_TOK_MASK)) >= 0)
        m->cfg.mask_token_id = mid;   /* the opened model's config names it, as if config.json had */
    if (!info->causal && mid < 0)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: config.json has no mask_token_id: diffusion %s needs a mask "
                       "token (--causal for an autoregressive model)", o->dir, o->what);
    else if (mid >= c->vocab_size)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: mask id %lld >= vocab size %d", o->dir, (long long)mid,
                       c->vocab_size);
    info->mask_id = mid >= 0 ? (uint32_t)mid : UINT32_MAX;
    if (!rc && o->adapter && (rc = dl_lora_fold_dir(m, o->adapter, err, errlen)))
        dl_err_prefix(err, errlen, "--adapter %s (on %s)", o->adapter, o->dir);
    if (!rc && o->bf16 && (rc = dl_model_set_compute(m, DL_BF16, err, errlen)))
        dl_err_prefix(err, errlen, "--precision bf16");
    if (!rc && o->profile && dl_model_profile(m, 1))
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "--profile: out of memory");
    if (rc) {
        dl_tok_free(info->tok);
        info->tok = NULL;
        dl_model_close(m);
    }
    return rc;
}
