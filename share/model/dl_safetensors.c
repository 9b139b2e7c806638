/* dl_safetensors.c — safetensors reader (mmap, validating) and writer
 * (implements dl_safetensors.h), plus the f16 / bf16 <-> f32 conversions.
 *
 * Reader: the file is mapped read-only once; the 8-byte header length is
 * checked against the 100 MB limit (the reference implementation's
 * MAX_HEADER_SIZE, 100,000,000 bytes) and against the file size before the
 * JSON is parsed (jansson, duplicate keys refused).  Each tensor entry must
 * be {"dtype": known, "shape": [n >= 0, ...] (<= 8 dims), "data_offsets":
 * [begin, end]} with end - begin == prod(shape) * sizeof(dtype) (overflow
 * checked) and end inside the data section; sorted by begin, the tensors must
 * tile the data section exactly (no overlap, no gap, nothing after the last
 * one), as the reference implementation demands.  Messages name the file and
 * the tensor.  Data is read with memcpy (no alignment assumption); values are
 * little-endian, as on every machine dllm targets (x86-64, aarch64).  The
 * map is the only copy of the file: dl_st_data hands out pointers into it,
 * dl_st_release drops a tensor's pages once a loader has copied it.
 *
 * Writer: each dl_st_writer_add converts its tensor at once into a spool
 * file (created beside the output and unlinked immediately, so nothing is
 * left behind on a crash, and the caller's buffer may be reused); close
 * writes the header (insertion order, "__metadata__" first, padded with
 * spaces to a multiple of 8 bytes as the reference writer does) and copies
 * the spool after it through dl_out (temp file + rename).  The writer
 * stores F32, BF16 or F16 (round to nearest even); the integer dtypes are
 * read-only here.
 *
 * Not here: sharded checkpoints (dl_ckpt.c), torch/numpy pickles, big-endian
 * hosts, dtypes other than F32 F16 BF16 I32 I64 U8 (F64, I8, BOOL, F8_* ...
 * are refused as unknown).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <jansson.h>
#include "dl_io.h"
#include "dl_safetensors.h"

#define ST_MAX_HEADER 100000000ull   /* bytes, as the reference implementation */
#define ST_MAX_DIMS 8

static const struct { const char *name; int size; } DTYPES[] = {
    [DL_ST_F32] = { "F32", 4 }, [DL_ST_F16] = { "F16", 2 }, [DL_ST_BF16] = { "BF16", 2 },
    [DL_ST_I32] = { "I32", 4 }, [DL_ST_I64] = { "I64", 8 }, [DL_ST_U8] = { "U8", 1 },
};
#define N_DTYPES ((int)(sizeof DTYPES / sizeof DTYPES[0]))

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* ================================================================ conversions */
static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float dl_bf16_to_f32(uint16_t h) { return u2f((uint32_t)h << 16); }

uint16_t dl_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x0040u);  /* NaN: keep sign, quiet */
    x += 0x7fffu + ((x >> 16) & 1u);                                               /* round to nearest even */
    return (uint16_t)(x >> 16);
}

float dl_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    if (e == 0) {                       /* zero or subnormal: mant * 2^-24 (exact in f32) */
        float v = (float)mant * (1.0f / 16777216.0f);
        return u2f(f2u(v) | sign);
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (mant << 13));   /* inf / NaN (payload kept) */
    return u2f(sign | ((e + 112) << 23) | (mant << 13));
}

uint16_t dl_f32_to_f16(float f) {
    uint32_t x = f2u(f), sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((x >> 13) & 0x3ffu));  /* NaN */
    if (x >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);   /* >= 65520 (and inf) -> inf */
    if (x < 0x38800000u) {              /* below 2^-14: half subnormal or zero */
        int shift = 126 - (int)(x >> 23);
        if (shift > 24) return (uint16_t)sign;
        uint32_t m = (x & 0x7fffffu) | 0x800000u, r = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t h = ((((x >> 23) - 112) << 10) | ((x >> 13) & 0x3ffu)), rem = x & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1))) h++;
    return (uint16_t)(sign | h);
}

const char *dl_st_dtype_name(dl_st_dtype d) {
    return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].name : "?";
}
int dl_st_dtype_size(dl_st_dtype d) { return (int)d >= 0 && (int)d < N_DTYPES ? DTYPES[d].size : 0; }

int64_t dl_st_numel(const dl_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* ================================================================ reader */
static int parse_u64(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int parse_tensor(dl_st_file *f, dl_st_tensor *t, const char *name, json_t *o, uint64_t data_size,
                        char *err, size_t errlen) {
#define BAD(...) dl_seterr(err, errlen, -DL_EXIT_DATA, __VA_ARGS__)
    if (!json_is_object(o)) return BAD("%s: tensor \"%s\": header entry is not an object", f->path, name);
    json_t *jd = json_object_get(o, "dtype"), *js = json_object_get(o, "shape"), *jo = json_object_get(o, "data_offsets");
    if (!json_is_string(jd)) return BAD("%s: tensor \"%s\": no \"dtype\" string", f->path, name);
    int d = -1;
    for (int i = 0; i < N_DTYPES; i++)
        if (!strcmp(json_string_value(jd), DTYPES[i].name)) d = i;
    if (d < 0)
        return BAD("%s: tensor \"%s\": unknown dtype \"%.16s\" (known: F32 F16 BF16 I32 I64 U8)", f->path, name,
                   json_string_value(jd));
    t->dtype = (dl_st_dtype)d;
    if (!json_is_array(js)) return BAD("%s: tensor \"%s\": no \"shape\" array", f->path, name);
    if (json_array_size(js) > ST_MAX_DIMS)
        return BAD("%s: tensor \"%s\": %zu dimensions (at most %d)", f->path, name, json_array_size(js), ST_MAX_DIMS);
    t->ndim = (int)json_array_size(js);
    uint64_t bytes = (uint64_t)DTYPES[d].size;
    for (int i = 0; i < t->ndim; i++) {
        uint64_t s;
        if (parse_u64(json_array_get(js, (size_t)i), &s))
            return BAD("%s: tensor \"%s\": shape[%d] is not a non-negative integer", f->path, name, i);
        if (s && bytes > UINT64_MAX / s) return BAD("%s: tensor \"%s\": shape overflows", f->path, name);
        bytes *= s;
        t->shape[i] = (int64_t)s;
    }
    if (!json_is_array(jo) || json_array_size(jo) != 2 || parse_u64(json_array_get(jo, 0), &t->begin) ||
        parse_u64(json_array_get(jo, 1), &t->end))
        return BAD("%s: tensor \"%s\": \"data_offsets\" is not [begin, end]", f->path, name);
    if (t->begin > t->end || t->end > data_size)
        return BAD("%s: tensor \"%s\": data_offsets [%llu, %llu] out of range (data section is %llu bytes)",
                   f->path, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                   (unsigned long long)data_size);
    if (t->end - t->begin != bytes)
        return BAD("%s: tensor \"%s\": data_offsets span %llu bytes but dtype %s and shape need %llu", f->path, name,
                   (unsigned long long)(t->end - t->begin), DTYPES[d].name, (unsigned long long)bytes);
    return 0;
#undef BAD
}

typedef struct { uint64_t begin, end; int i; } span;

static int by_begin(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

/* Sorted by begin, the tensors must tile [0, data_size) exactly. */
static int check_tiling(dl_st_file *f, uint64_t data_size, char *err, size_t errlen) {
    span *sp = malloc(sizeof *sp * (size_t)(f->n ? f->n : 1));
    if (!sp) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: out of memory", f->path);
    for (int i = 0; i < f->n; i++) sp[i] = (span){ f->t[i].begin, f->t[i].end, i };
    qsort(sp, (size_t)f->n, sizeof *sp, by_begin);
    uint64_t pos = 0;
    int rc = 0;
    for (int k = 0; k < f->n && !rc; k++) {
        const dl_st_tensor *t = &f->t[sp[k].i];
        if (t->begin < pos)
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": bytes [%llu, %llu) overlap tensor \"%s\"",
                           f->path, t->name, (unsigned long long)t->begin, (unsigned long long)t->end,
                           f->t[sp[k - 1].i].name);
        else if (t->begin > pos)
            rc = dl_seterr(err, errlen, -DL_EXIT_DATA,
                           "%s: tensor \"%s\": starts at byte %llu, leaving bytes [%llu, %llu) of the data section unused",
                           f->path, t->name, (unsigned long long)t->begin, (unsigned long long)pos,
                           (unsigned long long)t->begin);
        pos = t->end;
    }
    if (!rc && pos != data_size)
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA,
                       "%s: tensors end at byte %llu of a %llu-byte data section (trailing bytes or a truncated header)",
                       f->path, (unsigned long long)pos, (unsigned long long)data_size);
    free(sp);
    return rc;
}

static int parse_header(dl_st_file *f, const char *text, size_t len, uint64_t data_size, char *err, size_t errlen) {
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header is not valid JSON: %s (byte %d)", f->path,
                                je.text, je.position);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header is not a JSON object", f->path);
        goto out;
    }
    f->t = calloc(json_object_size(root) + 1, sizeof *f->t);
    if (!f->t) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: out of memory", f->path); goto out; }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(val)) { rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: __metadata__ is not an object", f->path); goto out; }
            json_object_foreach(val, mk, mv) if (!json_is_string(mv)) {
                rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: __metadata__ \"%s\" is not a string", f->path, mk);
                goto out;
            }
            if (!(f->metadata_json = json_dumps(val, JSON_COMPACT))) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto out; }
            continue;
        }
        dl_st_tensor *t = &f->t[f->n];
        if (!(t->name = xstrdup(key))) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); goto out; }
        f->n++;
        if ((rc = parse_tensor(f, t, key, val, data_size, err, errlen))) goto out;
    }
    rc = check_tiling(f, data_size, err, errlen);
out:
    json_decref(root);
    return rc;
}

int dl_st_open(dl_st_file *f, const char *path, char *err, size_t errlen) {
    memset(f, 0, sizeof *f);
    if (!(f->path = xstrdup(path))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) { rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: %s", path, strerror(errno)); goto fail; }
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: not a regular file", path);
        goto fail;
    }
    if (st.st_size < 8) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: truncated: %lld bytes, shorter than the 8-byte header length",
                       path, (long long)st.st_size);
        goto fail;
    }
    f->size = (size_t)st.st_size;
    f->map = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: mmap: %s", path, strerror(errno));
        goto fail;
    }
    close(fd);
    fd = -1;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | f->map[i];
    if (hlen > ST_MAX_HEADER) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header length %llu exceeds the 100 MB limit (corrupt file?)",
                       path, (unsigned long long)hlen);
        goto fail;
    }
    if (hlen > f->size - 8) {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header length %llu is larger than the file (%zu bytes): truncated?",
                       path, (unsigned long long)hlen, f->size);
        goto fail;
    }
    if (hlen < 2 || f->map[8] != '{') {
        rc = dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: header does not start with '{': not a safetensors file", path);
        goto fail;
    }
    f->data = f->map + 8 + hlen;
    if ((rc = parse_header(f, (const char *)f->map + 8, (size_t)hlen, f->size - 8 - hlen, err, errlen))) goto fail;
    return 0;
fail:
    if (fd >= 0) close(fd);
    dl_st_close(f);
    return rc;
}

void dl_st_close(dl_st_file *f) {
    if (f->map) munmap(f->map, f->size);
    for (int i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    free(f->path);
    free(f->metadata_json);
    memset(f, 0, sizeof *f);
}

const dl_st_tensor *dl_st_find(const dl_st_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name)) return &f->t[i];
    return NULL;
}

const void *dl_st_data(const dl_st_file *f, const dl_st_tensor *t) { return f->data + t->begin; }

void dl_st_release(const dl_st_file *f, const dl_st_tensor *t) {
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t base = (uintptr_t)f->map, lo = (uintptr_t)(f->data + t->begin), hi = (uintptr_t)(f->data + t->end);
    if (pg <= 0) return;
    lo = base + (lo - base + (uintptr_t)pg - 1) / (uintptr_t)pg * (uintptr_t)pg;   /* whole pages inside t only */
    hi = base + (hi - base) / (uintptr_t)pg * (uintptr_t)pg;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

int dl_st_read_f32(const dl_st_file *f, const dl_st_tensor *t, float *dst, size_t n, char *err, size_t errlen) {
    int64_t numel = dl_st_numel(t);
    if ((uint64_t)numel != n)
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": has %lld elements, expected %zu", f->path,
                         t->name, (long long)numel, n);
    const uint8_t *p = f->data + t->begin;
    switch (t->dtype) {
    case DL_ST_F32: memcpy(dst, p, n * 4); return 0;
    case DL_ST_BF16:
    case DL_ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            dst[i] = t->dtype == DL_ST_BF16 ? dl_bf16_to_f32(h) : dl_f16_to_f32(h);
        }
        return 0;
    default:
        return dl_seterr(err, errlen, -DL_EXIT_DATA, "%s: tensor \"%s\": dtype %s is not a float type", f->path,
                         t->name, DTYPES[t->dtype].name);
    }
}

/* ================================================================ writer */
typedef struct {
    char *name;
    dl_st_dtype dtype;
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    uint64_t begin, end;
} wtensor;

struct dl_st_writer {
    char *path;
    int spool;                 /* unlinked temp file holding the data section */
    uint64_t data_len;
    wtensor *t; int n, cap;
    json_t *meta;              /* "__metadata__" (string values) */
};

int dl_st_writer_open(dl_st_writer **wp, const char *path, char *err, size_t errlen) {
    *wp = NULL;
    dl_st_writer *w = calloc(1, sizeof *w);
    size_t pn = strlen(path);
    char *spool = malloc(pn + 32);
    if (w) w->spool = -1;
    if (!w || !spool || !(w->path = xstrdup(path)) || !(w->meta = json_object())) {
        free(spool);
        dl_st_writer_abort(w);
        return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    }
    snprintf(spool, pn + 32, "%s.spool.XXXXXX", path);
    w->spool = mkstemp(spool);
    if (w->spool < 0) {
        int rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: cannot create a spool file: %s", spool, strerror(errno));
        free(spool);
        dl_st_writer_abort(w);
        return rc;
    }
    unlink(spool);
    free(spool);
    *wp = w;
    return 0;
}

static int spool_write(dl_st_writer *w, const void *buf, size_t n, char *err, size_t errlen) {
    const char *p = buf;
    while (n) {
        ssize_t k = write(w->spool, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return dl_seterr(err, errlen, -DL_EXIT_IO, "%s: writing tensor data: %s", w->path, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int dl_st_writer_add(dl_st_writer *w, const char *name, dl_st_dtype dtype, int ndim, const int64_t *shape,
                     const float *data, char *err, size_t errlen) {
    if (dtype != DL_ST_F32 && dtype != DL_ST_BF16 && dtype != DL_ST_F16)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: tensor \"%s\": the writer stores F32, BF16 or F16 only",
                         w->path, name);
    if (!*name || !strcmp(name, "__metadata__") || ndim < 0 || ndim > ST_MAX_DIMS)
        return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: tensor \"%s\": bad name or %d dimensions", w->path, name, ndim);
    for (int i = 0; i < w->n; i++)
        if (!strcmp(w->t[i].name, name))
            return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: tensor \"%s\" added twice", w->path, name);
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 64;
        wtensor *t = realloc(w->t, sizeof *t * (size_t)cap);
        if (!t) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
        w->t = t;
        w->cap = cap;
    }
    wtensor *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) return dl_seterr(err, errlen, -DL_EXIT_USAGE, "%s: tensor \"%s\": negative shape", w->path, name);
        t->shape[i] = shape[i];
        n *= (size_t)shape[i];
    }
    if (!(t->name = xstrdup(name))) return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    t->dtype = dtype;
    t->ndim = ndim;
    t->begin = w->data_len;
    w->n++;
    enum { CHUNK = 1 << 16 };
    static _Thread_local uint16_t half[CHUNK];
    int rc = 0;
    if (dtype == DL_ST_F32) rc = spool_write(w, data, n * 4, err, errlen);
    else
        for (size_t i = 0; i < n && !rc; i += CHUNK) {
            size_t k = n - i < CHUNK ? n - i : CHUNK;
            for (size_t j = 0; j < k; j++) {
                uint16_t h = dtype == DL_ST_BF16 ? dl_f32_to_bf16(data[i + j]) : dl_f32_to_f16(data[i + j]);
                uint8_t *b = (uint8_t *)&half[j];
                b[0] = (uint8_t)h; b[1] = (uint8_t)(h >> 8);
            }
            rc = spool_write(w, half, k * 2, err, errlen);
        }
    w->data_len += (uint64_t)n * (uint64_t)DTYPES[dtype].size;
    t->end = w->data_len;
    return rc;
}

int dl_st_writer_set_metadata(dl_st_writer *w, const char *key, const char *value) {
    return json_object_set_new(w->meta, key, json_string(value)) ? -DL_EXIT_IO : 0;
}

static char *build_header(dl_st_writer *w, size_t *len) {
    json_t *root = json_object();
    if (!root) return NULL;
    int bad = json_object_size(w->meta) && json_object_set(root, "__metadata__", w->meta);
    for (int i = 0; i < w->n && !bad; i++) {
        wtensor *t = &w->t[i];
        json_t *o = json_object(), *s = json_array(), *off = json_array();
        bad = !o || !s || !off;
        for (int k = 0; k < t->ndim && !bad; k++) bad = json_array_append_new(s, json_integer(t->shape[k]));
        bad = bad || json_array_append_new(off, json_integer((json_int_t)t->begin)) ||
              json_array_append_new(off, json_integer((json_int_t)t->end)) ||
              json_object_set_new(o, "dtype", json_string(DTYPES[t->dtype].name)) ||
              json_object_set_new(o, "shape", s) || json_object_set_new(o, "data_offsets", off);
        if (!bad) bad = json_object_set_new(root, t->name, o);
        else { json_decref(o); json_decref(s); json_decref(off); }
    }
    char *text = bad ? NULL : json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!text) return NULL;
    size_t n = strlen(text), padded = (n + 7) & ~(size_t)7;
    char *p = realloc(text, padded + 1);
    if (!p) { free(text); return NULL; }
    memset(p + n, ' ', padded - n);
    p[padded] = 0;
    *len = padded;
    return p;
}

int dl_st_writer_close(dl_st_writer *w, char *err, size_t errlen) {
    size_t hlen = 0;
    char *header = build_header(w, &hlen);
    if (!header) { dl_st_writer_abort(w); return dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory"); }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    dl_out *out = NULL;
    dl_out_opts opts = { 0, 0, 0, 0 };
    int rc = dl_out_open(&out, w->path, &opts, err, errlen);
    if (!rc) rc = dl_out_write(out, len8, 8, err, errlen);
    if (!rc) rc = dl_out_write(out, header, hlen, err, errlen);
    free(header);
    enum { BUF = 1 << 20 };
    char *buf = rc ? NULL : malloc(BUF);
    if (!rc && !buf) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "out of memory");
    for (uint64_t off = 0; !rc && off < w->data_len;) {
        size_t want = w->data_len - off < BUF ? (size_t)(w->data_len - off) : BUF;
        ssize_t k = pread(w->spool, buf, want, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) rc = dl_seterr(err, errlen, -DL_EXIT_IO, "%s: reading the spool file: %s", w->path,
                                   k < 0 ? strerror(errno) : "short read");
        else { rc = dl_out_write(out, buf, (size_t)k, err, errlen); off += (uint64_t)k; }
    }
    free(buf);
    if (!rc) { rc = dl_out_close(out, err, errlen); out = NULL; }
    if (out) dl_out_abort(out);
    dl_st_writer_abort(w);   /* frees; the output is already renamed or removed */
    return rc;
}

void dl_st_writer_abort(dl_st_writer *w) {
    if (!w) return;
    if (w->spool >= 0) close(w->spool);
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    free(w->t);
    free(w->path);
    json_decref(w->meta);
    free(w);
}
