/* test_sample.c — bin/dllm-sample against the PyTorch reference sampler of
 * tests/ref/gen_sample_fixture.py (fixture: tests/data/sample/fixture.json,
 * checkpoint: tests/data/sample/ckpt, the hash-weight model of test_model).
 *
 * For every configuration: write its prompts as a `tokens` stream and its
 * uniforms (u[i] = ((splitmix64(noise_seed + i) >> 11) + 0.5) / 2^53,
 * exactly noise_count of them) as the --noise file, run dllm-sample with the
 * configuration's arguments and --trace, and compare every trace line
 * (row, step, nfe, block, committed positions and tokens exactly,
 * confidences within 1e-4) and every output record (ids, n_prompt, nfe).
 * On a mismatch the reference's decision margins of that step are printed
 * (a tiny margin means an fp32-vs-float64 near tie, not a sampler bug).
 * Runs from the repository root (tests/run.sh does); skips when
 * bin/dllm-sample has not been built.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "dl_stream.h"
#include "dl_test.h"

#define DIR "tests/data/sample/"
static char tmp[256], PROG[512];   /* PROG: $DLLM_BIN/dllm-sample (make test-asan), else bin/dllm-sample */

static uint64_t splitmix(uint64_t x) {
    uint64_t z = x + 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int write_noise(const char *path, uint64_t seed, uint64_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    for (uint64_t i = 0; i < n; i++) {
        double u = ((double)(splitmix(seed + i) >> 11) + 0.5) * 0x1.0p-53;
        unsigned char b[8];
        uint64_t x;
        memcpy(&x, &u, 8);
        for (int k = 0; k < 8; k++) b[k] = (unsigned char)(x >> (8 * k));
        fwrite(b, 1, 8, f);
    }
    return fclose(f);
}

static int write_prompts(const char *path, json_t *prompts, int mask_id, int eos_id) {
    char err[512];
    dl_out_opts oo;
    memset(&oo, 0, sizeof oo);
    oo.binary = 1;
    oo.force = 1;
    dl_writer *w;
    if (dl_writer_open(&w, path, &oo, err, sizeof err)) { printf("  # %s\n", err); return -1; }
    dl_header h;
    dl_header_init(&h, DL_KIND_TOKENS);
    h.has_tok = 1;
    dl_tokinfo_clear(&h.tok);
    h.tok.vocab_size = 300;
    h.tok.mask_id = mask_id;
    h.tok.eos_id = eos_id;
    dl_writer_header(w, &h);
    dl_header_free(&h);
    size_t i;
    json_t *p;
    json_array_foreach(prompts, i, p) {
        size_t n = json_array_size(p);
        uint32_t ids[256];
        for (size_t j = 0; j < n && j < 256; j++) ids[j] = (uint32_t)json_integer_value(json_array_get(p, j));
        msgpack_packer *pk = dl_writer_packer(w);
        msgpack_pack_map(pk, 2);
        dl_pack_str(pk, "ids");
        dl_pack_ids(pk, ids, n);
        dl_pack_str(pk, "id");   /* a user key: must be carried */
        msgpack_pack_uint64(pk, 1000 + i);
        dl_writer_count(w);
    }
    if (dl_writer_close(w, err, sizeof err)) { printf("  # %s\n", err); return -1; }
    return 0;
}

static void show_margin(json_t *cfg, long row, long step) {
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(cfg, "margins"), i, m) {
        if (json_integer_value(json_object_get(m, "row")) != row || json_integer_value(json_object_get(m, "step")) != step)
            continue;
        char *s = json_dumps(m, JSON_COMPACT);
        printf("  # reference margins at row %ld step %ld: %s\n", row, step, s);
        free(s);
    }
}

/* Compare one trace line; returns 1 when equal. */
static int same_line(json_t *cfg, json_t *want, json_t *got, double *worst) {
    const char *keys[] = { "row", "step", "nfe", "block" };
    for (int k = 0; k < 4; k++)
        if (json_integer_value(json_object_get(want, keys[k])) != json_integer_value(json_object_get(got, keys[k]))) {
            printf("  # %s: want %lld got %lld\n", keys[k], (long long)json_integer_value(json_object_get(want, keys[k])),
                   (long long)json_integer_value(json_object_get(got, keys[k])));
            return 0;
        }
    json_t *wc = json_object_get(want, "committed"), *gc = json_object_get(got, "committed");
    int ok = json_array_size(wc) == json_array_size(gc);
    for (size_t j = 0; ok && j < json_array_size(wc); j++) {
        json_t *a = json_array_get(wc, j), *b = json_array_get(gc, j);
        if (json_integer_value(json_array_get(a, 0)) != json_integer_value(json_array_get(b, 0)) ||
            json_integer_value(json_array_get(a, 1)) != json_integer_value(json_array_get(b, 1))) ok = 0;
        double d = fabs(json_number_value(json_array_get(a, 2)) - json_number_value(json_array_get(b, 2)));
        if (!(d <= 1e-4)) ok = 0;
        if (d > *worst) *worst = d;
    }
    if (!ok) {
        char *s1 = json_dumps(want, JSON_COMPACT), *s2 = json_dumps(got, JSON_COMPACT);
        printf("  # want %s\n  # got  %s\n", s1, s2);
        free(s1); free(s2);
        show_margin(cfg, (long)json_integer_value(json_object_get(want, "row")),
                    (long)json_integer_value(json_object_get(want, "step")));
    }
    return ok;
}

static void run_config(json_t *fx, json_t *cfg) {
    const char *name = json_string_value(json_object_get(cfg, "name"));
    char in[512], nz[512], tr[512], out[512], errf[512], cmd[4096];
    snprintf(in, sizeof in, "%s/%s.in.msgpack", tmp, name);
    snprintf(nz, sizeof nz, "%s/%s.noise", tmp, name);
    snprintf(tr, sizeof tr, "%s/%s.trace", tmp, name);
    snprintf(out, sizeof out, "%s/%s.out.msgpack", tmp, name);
    snprintf(errf, sizeof errf, "%s/%s.err", tmp, name);
    int mask_id = (int)json_integer_value(json_object_get(fx, "mask_id"));
    int eos_id = (int)json_integer_value(json_object_get(fx, "eos_id"));
    json_t *prompts = json_object_get(cfg, "prompts");
    if (write_prompts(in, prompts, mask_id, eos_id) ||
        write_noise(nz, (uint64_t)json_integer_value(json_object_get(fx, "noise_seed")),
                    (uint64_t)json_integer_value(json_object_get(cfg, "noise_count")))) {
        DL_CHECK(0, "%s: write inputs", name);
        return;
    }
    int len = snprintf(cmd, sizeof cmd, "%s -q -m " DIR "ckpt", PROG);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(cfg, "args"), i, a)
        len += snprintf(cmd + len, sizeof cmd - len, " '%s'", json_string_value(a));
    snprintf(cmd + len, sizeof cmd - len, " --noise %s --trace %s -o %s %s 2> %s", nz, tr, out, in, errf);
    int st = system(cmd);
    if (st != 0) {
        DL_CHECK(0, "%s: dllm-sample exit status %d", name, st);
        printf("  # %s\n", cmd);
        FILE *f = fopen(errf, "r");
        char line[512];
        while (f && fgets(line, sizeof line, f)) printf("  # %s", line);
        if (f) fclose(f);
        return;
    }
    /* trace */
    json_t *want = json_object_get(cfg, "trace");
    FILE *f = fopen(tr, "r");
    char line[65536];
    size_t n = 0;
    int ok = f != NULL;
    double worst = 0;
    while (ok && fgets(line, sizeof line, f)) {
        json_error_t je;
        json_t *got = json_loads(line, 0, &je);
        if (!got || n >= json_array_size(want)) {
            printf("  # extra or bad trace line %zu: %s", n, line);
            ok = 0;
        } else if (!same_line(cfg, json_array_get(want, n), got, &worst)) {
            printf("  # first difference at trace line %zu\n", n);
            ok = 0;
        }
        json_decref(got);
        n++;
    }
    if (f) fclose(f);
    if (ok && n != json_array_size(want)) {
        printf("  # %zu trace lines, want %zu\n", n, json_array_size(want));
        ok = 0;
    }
    DL_CHECK(ok, "%s: trace matches the reference (%zu steps, worst confidence diff %.2g)", name, n, worst);

    /* output records */
    char err[512];
    dl_reader *r;
    char *paths[1] = { out };
    json_t *fin = json_object_get(cfg, "final");
    ok = dl_reader_open(&r, paths, 1, err, sizeof err) == 0;
    size_t k = 0;
    dl_u32buf ids = { 0 };
    while (ok) {
        const msgpack_object *rec;
        int rc = dl_reader_next(r, &rec, err, sizeof err);
        if (rc == 0) break;
        if (rc < 0 || k >= json_array_size(fin)) { ok = 0; break; }
        json_t *w = json_array_get(fin, k);
        json_t *wids = json_object_get(w, "ids");
        uint64_t np = 0, nfe = 0, id = 0;
        ok = dl_rec_ids(rec, "ids", &ids, 0, -1, err, sizeof err) == 0 &&
             dl_rec_uint(rec, "n_prompt", &np, 0, err, sizeof err) == 0 &&
             dl_rec_uint(rec, "nfe", &nfe, 0, err, sizeof err) == 0 &&
             dl_rec_uint(rec, "id", &id, 0, err, sizeof err) == 0;
        if (!ok) { printf("  # record %zu: %s\n", k, err); break; }
        ok = ids.n == json_array_size(wids) && np == (uint64_t)json_integer_value(json_object_get(w, "n_prompt")) &&
             nfe == (uint64_t)json_integer_value(json_object_get(w, "nfe")) && id == 1000 + k;
        for (size_t j = 0; ok && j < ids.n; j++) ok = ids.p[j] == (uint32_t)json_integer_value(json_array_get(wids, j));
        if (!ok) printf("  # record %zu: %zu ids (want %zu), n_prompt %llu, nfe %llu, id %llu\n", k, ids.n,
                        json_array_size(wids), (unsigned long long)np, (unsigned long long)nfe, (unsigned long long)id);
        k++;
    }
    if (ok && k != json_array_size(fin)) { printf("  # %zu records, want %zu\n", k, json_array_size(fin)); ok = 0; }
    if (r) dl_reader_close(r);
    dl_u32buf_free(&ids);
    DL_CHECK(ok, "%s: samples (ids, n_prompt, nfe, carried id) match the reference", name);
}

int main(void) {
    snprintf(PROG, sizeof PROG, "%s/dllm-sample", getenv("DLLM_BIN") ? getenv("DLLM_BIN") : "bin");
    if (access(PROG, X_OK)) {
        printf("skip - sample fixtures: %s not built (run from the repository root after make)\n", PROG);
        return 0;
    }
    json_error_t je;
    json_t *fx = json_load_file(DIR "fixture.json", 0, &je);
    if (!fx) { DL_CHECK(0, "load " DIR "fixture.json: %s", je.text); return dl_test_end(); }
    snprintf(tmp, sizeof tmp, "%s/dllm-test-sample.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmp)) { DL_CHECK(0, "mkdtemp"); return dl_test_end(); }
    size_t i;
    json_t *cfg;
    json_array_foreach(json_object_get(fx, "configs"), i, cfg) run_config(fx, cfg);
    json_decref(fx);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    if (system(cmd)) printf("  # could not remove %s\n", tmp);
    return dl_test_end();
}
