/* dl_lora.c — LoRA adapters of dl_lora.h: layout, init, PEFT files, the
 * forward / backward hooks, folding into the weights.
 *
 * Layout: for layer l, target t (when enabled) A (r, in) then B (out, r),
 * each 64-float aligned, in layer-major order, in ONE parameter block (and
 * the same offsets in grads, m, v).  Forward hook (kernels only):
 *   us = A x            dl_k_linear_fwd        (N, r)   kept for backward
 *   us *= s             dl_k_scale
 *   tmp = us B^T        dl_k_linear_fwd        (N, out)
 *   y += tmp            dl_k_add_inplace
 * Backward hook, dy the linear's output gradient:
 *   dus = dy B, dB += dy^T us    dl_k_linear_bwd  (s is in us: dB = s dy^T (A x))
 *   dus *= s                     (= d(A x))
 *   tmp = dus A, dA += dus^T x   dl_k_linear_bwd
 *   dx += tmp
 * PEFT scales after B (lora_B(lora_A(x)) * scaling); the order differs
 * only by float rounding.
 * Does not: touch parameter memory on the host except through dl_dev
 * copies (save, load, fold, init).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "dl_io.h"
#include "dl_json.h"
#include "dl_lora.h"
#include "dl_rng.h"
#include "dl_safetensors.h"

#define ALIGN_F 64

static const char *const SHORT[DL_LORA_NT] = { "q", "k", "v", "o", "gate", "up", "down" };
static const char *const MODULE[DL_LORA_NT] = { "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                                "down_proj" };
static const char *const PARENT[DL_LORA_NT] = { "self_attn", "self_attn", "self_attn", "self_attn", "mlp", "mlp",
                                                "mlp" };

struct dl_lora {
    dl_lora_cfg cfg;
    float scale;                 /* alpha / r */
    dl_dev *dev;
    int n_layers;
    int in[DL_LORA_NT], out[DL_LORA_NT];
    size_t *off;                 /* (n_layers * NT * 2) host: A then B offset of (l, t); unused when t is off */
    size_t n_params;             /* floats */
    float *params, *grads, *adam_m, *adam_v;   /* (n_params) device each; grads / moments after attach */
    /* activations (dl_lora_reserve) */
    float *acts; int N_cap, train;
    float *us0;                  /* first (N_cap, r) buffer; (l, t) at us0 + slot(l, t) * N_cap * r */
    float *tmp;                  /* (N_cap, max(in, out)) */
    float *dus;                  /* (N_cap, r) */
};

const char *dl_lora_target_name(int t) { return t >= 0 && t < DL_LORA_NT ? SHORT[t] : "?"; }
const char *dl_lora_module_name(int t) { return t >= 0 && t < DL_LORA_NT ? MODULE[t] : "?"; }
const dl_lora_cfg *dl_lora_config(const dl_lora *lo) { return &lo->cfg; }
size_t dl_lora_n_params(const dl_lora *lo) { return lo->n_params; }

static int target_of(const char *s, size_t n) {
    for (int t = 0; t < DL_LORA_NT; t++)
        if ((strlen(SHORT[t]) == n && !strncmp(s, SHORT[t], n)) || (strlen(MODULE[t]) == n && !strncmp(s, MODULE[t], n)))
            return t;
    return -1;
}

int dl_lora_parse_targets(const char *s, unsigned *mask, char *err, size_t errlen) {
    *mask = 0;
    for (const char *p = s; *p;) {
        size_t n = strcspn(p, ",");
        int t = target_of(p, n);
        if (t < 0)
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "LoRA target '%.*s': known targets are q, k, v, o, gate, "
                             "up, down (or q_proj ... down_proj)", (int)n, p);
        *mask |= 1u << t;
        p += n;
        if (*p == ',') p++;
    }
    if (!*mask) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "no LoRA target given");
    return 0;
}

static size_t align_up(size_t n) { return (n + ALIGN_F - 1) / ALIGN_F * ALIGN_F; }
static int has(const dl_lora *lo, int t) { return (lo->cfg.targets >> t) & 1u; }
static size_t offA(const dl_lora *lo, int l, int t) { return lo->off[((size_t)l * DL_LORA_NT + t) * 2]; }
static size_t offB(const dl_lora *lo, int l, int t) { return lo->off[((size_t)l * DL_LORA_NT + t) * 2 + 1]; }

static void peft_name(char *buf, size_t n, int l, int t, char ab) {
    snprintf(buf, n, "base_model.model.model.layers.%d.%s.%s.lora_%c.weight", l, PARENT[t], MODULE[t], ab);
}

/* shapes + offsets + the parameter block (zeroed) */
static int make(dl_lora **out, const dl_model *m, const dl_lora_cfg *c, char *err, size_t errlen) {
    *out = NULL;
    const dl_config *mc = &m->cfg;
    if (c->r <= 0 || !(c->alpha > 0) || !c->targets)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "LoRA: rank and alpha must be positive, targets non-empty");
    dl_lora *lo = calloc(1, sizeof *lo);
    if (!lo) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    lo->cfg = *c;
    lo->scale = (float)(c->alpha / c->r);
    lo->dev = m->dev;
    lo->n_layers = mc->n_layers;
    int D = mc->dim, QD = mc->n_heads * mc->head_dim, KD = mc->n_kv_heads * mc->head_dim, F = mc->hidden_dim;
    const int in[DL_LORA_NT] = { D, D, D, QD, D, D, F }, outd[DL_LORA_NT] = { QD, KD, KD, D, F, F, D };
    memcpy(lo->in, in, sizeof in);
    memcpy(lo->out, outd, sizeof outd);
    lo->off = calloc((size_t)mc->n_layers * DL_LORA_NT * 2, sizeof *lo->off);
    if (!lo->off) { dl_lora_free(lo); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    size_t off = 0;
    for (int l = 0; l < mc->n_layers; l++)
        for (int t = 0; t < DL_LORA_NT; t++) {
            if (!has(lo, t)) continue;
            lo->off[((size_t)l * DL_LORA_NT + t) * 2] = off;
            off = align_up(off + (size_t)c->r * in[t]);
            lo->off[((size_t)l * DL_LORA_NT + t) * 2 + 1] = off;
            off = align_up(off + (size_t)outd[t] * c->r);
        }
    lo->n_params = off;
    lo->params = dl_dev_alloc(m->dev, off * sizeof(float));
    if (!lo->params) {
        dl_lora_free(lo);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "LoRA: cannot allocate %zu parameters", off);
    }
    *out = lo;
    return 0;
}

static uint64_t name_key(const char *s) {   /* FNV-1a-64, as dl_model_init_weights */
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ull; }
    return h;
}

int dl_lora_new(dl_lora **out, const dl_model *m, const dl_lora_cfg *c, uint64_t seed, char *err, size_t errlen) {
    int rc = make(out, m, c, err, errlen);
    if (rc) return rc;
    dl_lora *lo = *out;
    size_t maxn = 0;
    for (int t = 0; t < DL_LORA_NT; t++)
        if ((size_t)c->r * lo->in[t] > maxn) maxn = (size_t)c->r * lo->in[t];
    float *buf = malloc(maxn * sizeof *buf);
    if (!buf) { dl_lora_free(lo); *out = NULL; return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    char nm[160];
    for (int l = 0; l < lo->n_layers; l++)
        for (int t = 0; t < DL_LORA_NT; t++) {
            if (!has(lo, t)) continue;
            /* kaiming_uniform_(a = sqrt(5)) on (r, in): gain sqrt(2 / (1 + 5)),
             * bound = gain * sqrt(3 / fan_in) = 1 / sqrt(in) */
            double bound = 1.0 / sqrt((double)lo->in[t]);
            size_t n = (size_t)c->r * lo->in[t];
            dl_rng g;
            peft_name(nm, sizeof nm, l, t, 'A');
            dl_rng_init(&g, seed, name_key(nm), 0, DL_RNG_INIT);
            for (size_t j = 0; j < n; j++) buf[j] = (float)((2.0 * dl_rng_double(&g) - 1.0) * bound);
            dl_dev_h2d(lo->dev, lo->params + offA(lo, l, t), buf, n * sizeof(float));
        }
    free(buf);
    return 0;
}

void dl_lora_free(dl_lora *lo) {
    if (!lo) return;
    float *blocks[5] = { lo->params, lo->grads, lo->adam_m, lo->adam_v, lo->acts };
    for (int i = 0; i < 5; i++)
        if (blocks[i]) dl_dev_free(lo->dev, blocks[i]);
    free(lo->off);
    free(lo);
}

/* ---------------------------------------------------------------- files */
static int bad_cfg(const char *path, const char *key, const char *why, char *err, size_t errlen) {
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %s %s", path, key, why);
}

/* a JSON value that asks for something: not absent, null, false, {} or [] */
static int is_set(const json_t *j) {
    if (!j || json_is_null(j) || json_is_false(j)) return 0;
    if (json_is_object(j)) return json_object_size(j) > 0;
    if (json_is_array(j)) return json_array_size(j) > 0;
    return 1;
}

/* adapter_config.json -> c (+ base_model_name_or_path); options we do not
 * implement are refused by name, never ignored. */
static int read_config(const char *path, dl_lora_cfg *c, char *base, size_t base_len, char *err, size_t errlen) {
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!o) {
        if (!dl_is_file(path)) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: no such file", path);
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s:%d: %s", path, je.line, je.text);
    }
    int rc = 0;
    json_t *j = NULL;
    memset(c, 0, sizeof *c);
    c->alpha = 8;
    if (!json_is_object(o)) rc = bad_cfg(path, "", "is not a JSON object", err, errlen);
    else if (!(j = json_object_get(o, "peft_type")) || !json_is_string(j) || strcmp(json_string_value(j), "LORA"))
        rc = bad_cfg(path, "peft_type", "must be \"LORA\"", err, errlen);
    else if (!(j = json_object_get(o, "r")) || !json_is_integer(j) || json_integer_value(j) <= 0 ||
             json_integer_value(j) > 65536)
        rc = bad_cfg(path, "r", "must be a positive integer", err, errlen);
    if (!rc) c->r = (int)json_integer_value(j);
    if (!rc && (j = json_object_get(o, "lora_alpha")) && !json_is_null(j)) {
        if (!json_is_number(j) || !(json_number_value(j) > 0)) rc = bad_cfg(path, "lora_alpha", "must be > 0", err, errlen);
        else c->alpha = json_number_value(j);
    }
    if (!rc) {   /* target_modules: a list of module names (a regex string is not supported) */
        j = json_object_get(o, "target_modules");
        size_t i;
        json_t *v;
        if (!json_is_array(j)) rc = bad_cfg(path, "target_modules", "must be a list of module names", err, errlen);
        else json_array_foreach(j, i, v) {
            int t = json_is_string(v) ? target_of(json_string_value(v), strlen(json_string_value(v))) : -1;
            if (t < 0 || strcmp(json_string_value(v), MODULE[t])) {
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: target_modules: '%s' is not supported (known: q_proj, "
                               "k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj)", path,
                               json_is_string(v) ? json_string_value(v) : "?");
                break;
            }
            c->targets |= 1u << t;
        }
        if (!rc && !c->targets) rc = bad_cfg(path, "target_modules", "is empty", err, errlen);
    }
    /* refused features: true / non-empty values we would silently get wrong */
    static const char *const flags[] = { "use_dora", "use_rslora", "fan_in_fan_out" };
    for (size_t i = 0; !rc && i < sizeof flags / sizeof *flags; i++)
        if ((j = json_object_get(o, flags[i])) && json_is_true(j))
            rc = bad_cfg(path, flags[i], "is true: not supported", err, errlen);
    static const char *const empties[] = { "layers_to_transform", "rank_pattern", "alpha_pattern", "modules_to_save" };
    for (size_t i = 0; !rc && i < sizeof empties / sizeof *empties; i++)
        if (is_set(json_object_get(o, empties[i])))
            rc = bad_cfg(path, empties[i], "is set: not supported", err, errlen);
    if (!rc && (j = json_object_get(o, "bias")) && (!json_is_string(j) || strcmp(json_string_value(j), "none")))
        rc = bad_cfg(path, "bias", "must be \"none\"", err, errlen);
    if (!rc && base) {
        j = json_object_get(o, "base_model_name_or_path");
        snprintf(base, base_len, "%s", json_is_string(j) ? json_string_value(j) : "");
    }
    json_decref(o);
    return rc;
}

int dl_lora_read_config(const char *dir, dl_lora_cfg *c, char *base, size_t base_len, char *err, size_t errlen) {
    char p[DL_PATH_MAX];
    int rc = dl_path_join(p, dir, "adapter_config.json", err, errlen);
    return rc ? rc : read_config(p, c, base, base_len, err, errlen);
}

static int shape_is(const dl_st_tensor *s, int a, int b) {
    return s->ndim == 2 && s->shape[0] == a && s->shape[1] == b;
}

/* tensors of f named prefix + PEFT name into block (device), each present
 * with its shape; *count = how many were read. */
static int read_block(const dl_lora *lo, float *block, const dl_st_file *f, const char *prefix, int *count,
                      char *err, size_t errlen) {
    char nm[160], full[200];
    int expected = 0, rc = 0;
    size_t maxn = 0;
    for (int t = 0; t < DL_LORA_NT; t++) {
        size_t a = (size_t)lo->cfg.r * lo->in[t], b = (size_t)lo->cfg.r * lo->out[t];
        if (a > maxn) maxn = a;
        if (b > maxn) maxn = b;
    }
    float *host = malloc(maxn * sizeof *host);
    if (!host) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    for (int l = 0; l < lo->n_layers && !rc; l++)
        for (int t = 0; t < DL_LORA_NT && !rc; t++) {
            if (!has(lo, t)) continue;
            for (int ab = 0; ab < 2 && !rc; ab++) {
                int s0 = ab ? lo->out[t] : lo->cfg.r, s1 = ab ? lo->cfg.r : lo->in[t];
                peft_name(nm, sizeof nm, l, t, ab ? 'B' : 'A');
                snprintf(full, sizeof full, "%s%s", prefix, nm);
                const dl_st_tensor *s = dl_st_find(f, full);
                if (!s) { rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" missing", f->path, full); break; }
                if (!shape_is(s, s0, s1)) {
                    rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\" has shape [%lld, %lld] but the base "
                                   "model and r = %d imply [%d, %d] (an adapter for another model?)", f->path, full,
                                   (long long)s->shape[0], (long long)(s->ndim > 1 ? s->shape[1] : 0), lo->cfg.r, s0, s1);
                    break;
                }
                if ((rc = dl_st_read_f32(f, s, host, (size_t)s0 * s1, err, errlen))) break;
                dl_dev_h2d(lo->dev, block + (ab ? offB(lo, l, t) : offA(lo, l, t)), host, (size_t)s0 * s1 * sizeof(float));
                expected++;
            }
        }
    free(host);
    *count = expected;
    return rc;
}

/* rc 0 when every tensor of f was read (n of them), else the first one
 * that is not a LoRA A/B of the configured targets and layers, named. */
static int no_extras(const dl_lora *lo, const dl_st_file *f, int n, char *err, size_t errlen) {
    if (f->n == n) return 0;
    for (int i = 0; i < f->n; i++) {
        const char *nm = f->t[i].name;
        size_t pl = !strncmp(nm, "m.", 2) || !strncmp(nm, "v.", 2) ? 2 : 0;
        int l, k = 0, known = 0;
        char par[16], mod[16], ab;
        if (sscanf(nm + pl, "base_model.model.model.layers.%d.%15[a-z_].%15[a-z_].lora_%c.weight%n", &l, par, mod, &ab,
                   &k) == 4 && k && !nm[pl + k]) {
            int t = target_of(mod, strlen(mod));
            known = t >= 0 && has(lo, t) && l >= 0 && l < lo->n_layers && (ab == 'A' || ab == 'B');
        }
        if (!known)
            return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: unexpected tensor \"%s\" (not a LoRA A/B of the "
                             "configured targets and layers)", f->path, nm);
    }
    return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: %d tensors, expected %d", f->path, f->n, n);
}

int dl_lora_load(dl_lora **out, const dl_model *m, const char *dir, char *base_out, size_t base_len, char *err,
                 size_t errlen) {
    char p[DL_PATH_MAX];
    dl_lora_cfg c;
    *out = NULL;
    int rc = dl_lora_read_config(dir, &c, base_out, base_len, err, errlen);
    if (!rc) rc = make(out, m, &c, err, errlen);
    if (rc) return rc;
    dl_st_file f;
    if ((rc = dl_path_join(p, dir, "adapter_model.safetensors", err, errlen)) || (rc = dl_st_open(&f, p, err, errlen))) {
        dl_lora_free(*out); *out = NULL;
        return rc;
    }
    int n = 0;
    rc = read_block(*out, (*out)->params, &f, "", &n, err, errlen);
    if (!rc) rc = no_extras(*out, &f, n, err, errlen);
    dl_st_close(&f);
    if (rc) { dl_lora_free(*out); *out = NULL; }
    return rc;
}

int dl_lora_load_moments(dl_lora *lo, const char *dir, char *err, size_t errlen) {
    char p[DL_PATH_MAX];
    dl_st_file f;
    int rc = dl_path_join(p, dir, "optimizer.safetensors", err, errlen);
    if (!rc && !dl_is_file(p)) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: missing (not a training checkpoint)", p);
    if (!lo->adam_m) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "LoRA moments: attach the adapter first");
    if (rc || (rc = dl_st_open(&f, p, err, errlen))) return rc;
    int nm = 0, nv = 0;
    rc = read_block(lo, lo->adam_m, &f, "m.", &nm, err, errlen);
    if (!rc) rc = read_block(lo, lo->adam_v, &f, "v.", &nv, err, errlen);
    if (!rc) rc = no_extras(lo, &f, nm + nv, err, errlen);
    dl_st_close(&f);
    return rc;
}

static int write_block(const dl_lora *lo, dl_st_writer *w, const float *block, const char *prefix, char *err,
                       size_t errlen) {
    char nm[160], full[200];
    size_t maxn = 0;
    for (int t = 0; t < DL_LORA_NT; t++) {
        size_t a = (size_t)lo->cfg.r * lo->in[t], b = (size_t)lo->cfg.r * lo->out[t];
        if (a > maxn) maxn = a;
        if (b > maxn) maxn = b;
    }
    float *host = malloc(maxn * sizeof *host);
    if (!host) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = 0;
    for (int l = 0; l < lo->n_layers && !rc; l++)
        for (int t = 0; t < DL_LORA_NT && !rc; t++) {
            if (!has(lo, t)) continue;
            for (int ab = 0; ab < 2 && !rc; ab++) {
                int64_t shape[2] = { ab ? lo->out[t] : lo->cfg.r, ab ? lo->cfg.r : lo->in[t] };
                peft_name(nm, sizeof nm, l, t, ab ? 'B' : 'A');
                snprintf(full, sizeof full, "%s%s", prefix, nm);
                dl_dev_d2h(lo->dev, host, block + (ab ? offB(lo, l, t) : offA(lo, l, t)),
                           (size_t)(shape[0] * shape[1]) * sizeof(float));
                rc = dl_st_writer_add(w, full, DL_ST_F32, 2, shape, host, err, errlen);
            }
        }
    free(host);
    return rc;
}

static int write_config(const dl_lora *lo, const dl_config *mc, const char *path, const char *base, char *err,
                        size_t errlen) {
    json_t *o = json_object(), *tm = json_array();
    for (int t = 0; t < DL_LORA_NT; t++)
        if (has(lo, t)) json_array_append_new(tm, json_string(MODULE[t]));
    json_object_set_new(o, "peft_type", json_string("LORA"));
    json_object_set_new(o, "task_type", json_string("CAUSAL_LM"));
    json_object_set_new(o, "base_model_name_or_path", json_string(base ? base : ""));
    json_object_set_new(o, "r", json_integer(lo->cfg.r));
    json_object_set_new(o, "lora_alpha", lo->cfg.alpha == floor(lo->cfg.alpha) && lo->cfg.alpha < 1e9
                                             ? json_integer((json_int_t)lo->cfg.alpha) : json_real(lo->cfg.alpha));
    json_object_set_new(o, "lora_dropout", json_real(0.0));
    json_object_set_new(o, "target_modules", tm);
    json_object_set_new(o, "bias", json_string("none"));
    json_object_set_new(o, "fan_in_fan_out", json_false());
    json_object_set_new(o, "use_rslora", json_false());
    json_object_set_new(o, "use_dora", json_false());
    json_object_set_new(o, "init_lora_weights", json_true());
    json_object_set_new(o, "inference_mode", json_true());
    json_object_set_new(o, "modules_to_save", json_null());
    json_object_set_new(o, "layers_to_transform", json_null());
    json_object_set_new(o, "rank_pattern", json_object());
    json_object_set_new(o, "alpha_pattern", json_object());
    json_object_set_new(o, "revision", json_null());
    (void)mc;
    int rc = dl_json_write(path, o, JSON_INDENT(2), err, errlen);
    json_decref(o);
    return rc;
}

typedef struct {
    const dl_lora *lo; const dl_config *mc; const char *base; const dl_train_state *st;
} save_ctx;

static int write_st(const dl_lora *lo, const char *path, int moments, char *err, size_t errlen) {
    dl_st_writer *w;
    int rc = dl_st_writer_open(&w, path, err, errlen);
    if (rc) return rc;
    if (moments) {
        rc = dl_st_writer_set_metadata(w, "format", "dllm-adamw");
        if (!rc) rc = write_block(lo, w, lo->adam_m, "m.", err, errlen);
        if (!rc) rc = write_block(lo, w, lo->adam_v, "v.", err, errlen);
    } else {
        rc = dl_st_writer_set_metadata(w, "format", "pt");
        if (!rc) rc = write_block(lo, w, lo->params, "", err, errlen);
    }
    if (rc) { dl_st_writer_abort(w); return rc; }
    return dl_st_writer_close(w, err, errlen);
}

static int write_dir(void *ctx, const char *tmp, char *err, size_t errlen) {
    const save_ctx *s = ctx;
    char p[DL_PATH_MAX];
    int rc;
    if ((rc = dl_path_join(p, tmp, "adapter_config.json", err, errlen)) ||
        (rc = write_config(s->lo, s->mc, p, s->base, err, errlen)))
        return rc;
    if ((rc = dl_path_join(p, tmp, "adapter_model.safetensors", err, errlen)) || (rc = write_st(s->lo, p, 0, err, errlen)))
        return rc;
    if (!s->st) return 0;
    if (!s->lo->adam_m) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "saving LoRA trainer state: no optimizer state");
    if ((rc = dl_path_join(p, tmp, "optimizer.safetensors", err, errlen)) || (rc = write_st(s->lo, p, 1, err, errlen)))
        return rc;
    if ((rc = dl_path_join(p, tmp, "trainer_state.json", err, errlen))) return rc;
    return dl_train_state_save(s->st, p, err, errlen);
}

int dl_lora_save(const dl_lora *lo, const dl_config *mc, const char *dir, const char *base, const dl_train_state *st,
                 char *err, size_t errlen) {
    save_ctx s = { lo, mc, base, st };
    return dl_ckpt_save_with(dir, write_dir, &s, err, errlen);
}

/* ---------------------------------------------------------------- attach, fold */
static const dl_lora_ops OPS = { dl_lora_reserve, dl_lora_fwd, dl_lora_bwd, dl_lora_zero_grads, dl_lora_free };

int dl_lora_attach(dl_model *m, dl_lora *lo, char *err, size_t errlen) {
    if (m->wdtype != DL_F32)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "LoRA training needs fp32 base weights (this model holds %s "
                         "matrices for inference only)", dl_dtype_name(m->wdtype));
    if (m->lora) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "the model has an adapter attached already");
    if (m->dtype != DL_F32)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "LoRA with %s compute is not supported (f32 only)",
                         dl_dtype_name(m->dtype));
    size_t b = lo->n_params * sizeof(float);
    if (!lo->grads) lo->grads = dl_dev_alloc(lo->dev, b);
    if (!lo->adam_m) lo->adam_m = dl_dev_alloc(lo->dev, b);
    if (!lo->adam_v) lo->adam_v = dl_dev_alloc(lo->dev, b);
    if (!lo->grads || !lo->adam_m || !lo->adam_v)
        return dl_seterr(err, errlen, -DL_EXIT_IO, "LoRA: cannot allocate gradients and optimizer state (%.1f MB)",
                         3.0 * b / 1e6);
    m->lora = lo;
    m->lora_ops = &OPS;
    return 0;
}

int dl_lora_fold(dl_model *m, const dl_lora *lo, char *err, size_t errlen) {
    if (m->lora) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "LoRA fold: the model has an adapter attached");
    dl_model_weights_changed(m);   /* it writes the masters */
    int r = lo->cfg.r;
    size_t maxw = 0, maxa = 0, maxb = 0;
    for (int t = 0; t < DL_LORA_NT; t++) {
        if ((size_t)lo->in[t] * lo->out[t] > maxw) maxw = (size_t)lo->in[t] * lo->out[t];
        if ((size_t)r * lo->in[t] > maxa) maxa = (size_t)r * lo->in[t];
        if ((size_t)r * lo->out[t] > maxb) maxb = (size_t)r * lo->out[t];
    }
    float *w = malloc(maxw * sizeof *w), *A = malloc(maxa * sizeof *A), *B = malloc(maxb * sizeof *B);
    uint16_t *wl = malloc(maxw * sizeof *wl);
    double *row = malloc(sizeof(double) * (size_t)(maxw ? maxw : 1));
    int rc = 0;
    if (!w || !A || !B || !wl || !row) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    char nm[128];
    for (int l = 0; l < lo->n_layers && !rc; l++)
        for (int t = 0; t < DL_LORA_NT && !rc; t++) {
            if (!has(lo, t)) continue;
            snprintf(nm, sizeof nm, "model.layers.%d.%s.%s.weight", l, PARENT[t], MODULE[t]);
            const dl_tensor *tt = dl_model_tensor(m, nm);
            int O = lo->out[t], C = lo->in[t];
            if (!tt || tt->shape[0] != O || tt->shape[1] != C) {
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "LoRA fold: %s has another shape than the adapter", nm);
                break;
            }
            dl_dtype dt;
            const void *src = dl_model_tensor_data(m, tt, &dt);
            size_t n = (size_t)O * C;
            if (dt == DL_BF16) {
                dl_dev_d2h(m->dev, wl, src, n * sizeof *wl);
                for (size_t i = 0; i < n; i++) w[i] = dl_bf16_to_f32(wl[i]);
            } else dl_dev_d2h(m->dev, w, src, n * sizeof *w);
            dl_dev_d2h(lo->dev, A, lo->params + offA(lo, l, t), (size_t)r * C * sizeof *A);
            dl_dev_d2h(lo->dev, B, lo->params + offB(lo, l, t), (size_t)O * r * sizeof *B);
            /* W[o, c] += s * sum_k B[o, k] A[k, c], float64 sums, one rounding */
            for (int o = 0; o < O; o++) {
                double *acc = row;
                for (int c = 0; c < C; c++) acc[c] = 0;
                for (int k = 0; k < r; k++) {
                    double bk = B[(size_t)o * r + k];
                    const float *ak = A + (size_t)k * C;
                    for (int c = 0; c < C; c++) acc[c] += bk * ak[c];
                }
                for (int c = 0; c < C; c++) w[(size_t)o * C + c] = (float)(w[(size_t)o * C + c] + (double)lo->scale * acc[c]);
            }
            rc = dl_model_set_tensor(m, tt, w, DL_F32, err, errlen);
        }
    free(w); free(A); free(B); free(wl); free(row);
    return rc;
}

int dl_lora_fold_dir(dl_model *m, const char *dir, char *err, size_t errlen) {
    dl_lora *lo;
    int rc = dl_lora_load(&lo, m, dir, NULL, 0, err, errlen);
    if (rc) return rc;
    rc = dl_lora_fold(m, lo, err, errlen);
    dl_lora_free(lo);
    return rc;
}

dl_lora_block dl_lora_block_of(dl_lora *lo) {
    return (dl_lora_block){ lo->params, lo->grads, lo->adam_m, lo->adam_v, lo->n_params };
}

/* ---------------------------------------------------------------- hooks */
int dl_lora_reserve(dl_lora *lo, int N, int train, char *err, size_t errlen) {
    if (lo->acts && lo->N_cap >= N && (lo->train || !train)) return 0;
    int r = lo->cfg.r, maxio = 0, nt = 0;
    for (int t = 0; t < DL_LORA_NT; t++) {
        if (lo->in[t] > maxio) maxio = lo->in[t];
        if (lo->out[t] > maxio) maxio = lo->out[t];
        nt++;
    }
    size_t slots = train ? (size_t)lo->n_layers * nt : (size_t)nt;
    size_t us = align_up((size_t)N * r), n = slots * us + align_up((size_t)N * maxio) + us;
    if (lo->acts) dl_dev_free(lo->dev, lo->acts);
    lo->acts = dl_dev_alloc(lo->dev, n * sizeof(float));
    if (!lo->acts) {
        lo->N_cap = 0;
        return dl_seterr(err, errlen, -DL_EXIT_IO, "LoRA: cannot allocate activations (%.1f MB)", n * 4.0 / 1e6);
    }
    lo->N_cap = N;
    lo->train = train;
    lo->us0 = lo->acts;
    lo->tmp = lo->acts + slots * us;
    lo->dus = lo->tmp + align_up((size_t)N * maxio);
    return 0;
}

static float *us_of(dl_lora *lo, int l, int t) {
    size_t slot = lo->train ? (size_t)l * DL_LORA_NT + t : (size_t)t;
    return lo->us0 + slot * align_up((size_t)lo->N_cap * lo->cfg.r);
}

void dl_lora_fwd(dl_lora *lo, int l, int t, void *y, const void *x, int N) {
    if (!has(lo, t)) return;
    DL_ASSERT(lo->acts && N <= lo->N_cap);
    dl_dev *d = lo->dev;
    int r = lo->cfg.r, C = lo->in[t], O = lo->out[t];
    float *us = us_of(lo, l, t);
    dl_k_linear_fwd(d, DL_F32, DL_F32, us, x, lo->params + offA(lo, l, t), NULL, N, C, r);
    dl_k_scale(d, us, lo->scale, (size_t)N * r);
    dl_k_linear_fwd(d, DL_F32, DL_F32, lo->tmp, us, lo->params + offB(lo, l, t), NULL, N, r, O);
    dl_k_add_inplace(d, DL_F32, y, lo->tmp, (size_t)N * O);
}

void dl_lora_bwd(dl_lora *lo, int l, int t, void *dx, const void *dy, const void *x, int N) {
    if (!has(lo, t)) return;
    DL_ASSERT(lo->acts && lo->train && lo->grads && N <= lo->N_cap);
    dl_dev *d = lo->dev;
    int r = lo->cfg.r, C = lo->in[t], O = lo->out[t];
    const float *us = us_of(lo, l, t);
    dl_k_linear_bwd(d, DL_F32, lo->dus, lo->grads + offB(lo, l, t), NULL, dy, us, lo->params + offB(lo, l, t), N, r, O);
    dl_k_scale(d, lo->dus, lo->scale, (size_t)N * r);
    dl_k_linear_bwd(d, DL_F32, lo->tmp, lo->grads + offA(lo, l, t), NULL, lo->dus, x, lo->params + offA(lo, l, t), N,
                    C, r);
    dl_k_add_inplace(d, DL_F32, dx, lo->tmp, (size_t)N * C);
}

void dl_lora_zero_grads(dl_lora *lo) {
    if (lo->grads) dl_dev_memset0(lo->dev, lo->grads, lo->n_params * sizeof(float));
}
