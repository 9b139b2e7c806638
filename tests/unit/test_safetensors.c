/* test_safetensors.c — dl_safetensors: f16/bf16 conversions, writer/reader
 * round trip, and the validating reader refusing every malformed file we
 * can think of, each with a message naming the file (and the tensor).
 * (The conversions were also checked against torch / numpy on 2M random
 * bit patterns while writing them; the cases here are the edge ones.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "dl_test.h"
#include "dl_safetensors.h"

static char dir[] = "/tmp/dllm-st-XXXXXX";

static uint32_t bits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float fbits(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

static void test_conversions(void) {
    DL_CHECK(dl_f32_to_bf16(1.0f) == 0x3f80 && dl_f32_to_bf16(-2.0f) == 0xc000 && dl_f32_to_bf16(-0.0f) == 0x8000,
             "bf16: exact values");
    DL_CHECK(dl_f32_to_bf16(fbits(0x3f808000)) == 0x3f80 && dl_f32_to_bf16(fbits(0x3f818000)) == 0x3f82 &&
             dl_f32_to_bf16(fbits(0x3f808001)) == 0x3f81 && dl_f32_to_bf16(fbits(0x3f807fff)) == 0x3f80,
             "bf16: round to nearest, ties to even");
    DL_CHECK(dl_f32_to_bf16(fbits(0x7f7fffff)) == 0x7f80 && dl_f32_to_bf16(INFINITY) == 0x7f80 &&
             dl_f32_to_bf16(-INFINITY) == 0xff80, "bf16: overflow rounds to inf, inf kept");
    uint16_t n1 = dl_f32_to_bf16(fbits(0x7f800001)), n2 = dl_f32_to_bf16(fbits(0xffc00000));
    DL_CHECK(isnan(dl_bf16_to_f32(n1)) && isnan(dl_bf16_to_f32(n2)) && (n2 & 0x8000),
             "bf16: NaN stays NaN (even with a payload only in the low bits), sign kept");
    DL_CHECK(dl_bf16_to_f32(0x3f80) == 1.0f && bits(dl_bf16_to_f32(0x0001)) == 0x00010000, "bf16 -> f32");
    DL_CHECK(dl_f16_to_f32(0x3c00) == 1.0f && dl_f16_to_f32(0xc000) == -2.0f && dl_f16_to_f32(0x7bff) == 65504.0f &&
             dl_f16_to_f32(0x0001) == ldexpf(1, -24) && dl_f16_to_f32(0x03ff) == ldexpf(1023, -24) &&
             dl_f16_to_f32(0x0400) == ldexpf(1, -14) && bits(dl_f16_to_f32(0x8000)) == 0x80000000u,
             "f16 -> f32: normals, subnormals, -0");
    DL_CHECK(isinf(dl_f16_to_f32(0x7c00)) && dl_f16_to_f32(0xfc00) < 0 && isnan(dl_f16_to_f32(0x7e00)) &&
             isnan(dl_f16_to_f32(0x7c01)), "f16 -> f32: inf, NaN");
    DL_CHECK(dl_f32_to_f16(65504.0f) == 0x7bff && dl_f32_to_f16(65519.0f) == 0x7bff && dl_f32_to_f16(65520.0f) == 0x7c00 &&
             dl_f32_to_f16(ldexpf(1, -24)) == 0x0001 && dl_f32_to_f16(ldexpf(1, -25)) == 0x0000 &&
             dl_f32_to_f16(ldexpf(3, -26)) == 0x0001 && dl_f32_to_f16(ldexpf(3, -25)) == 0x0002 &&
             dl_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00 && dl_f32_to_f16(1.0f + ldexpf(3, -11)) == 0x3c02 &&
             isnan(dl_f16_to_f32(dl_f32_to_f16(NAN))),
             "f32 -> f16: rounding at the top, in subnormals, ties to even, NaN");
}

static void path_of(char *p, size_t n, const char *name) { snprintf(p, n, "%s/%s", dir, name); }

static void test_roundtrip(void) {
    char p[256], err[512];
    path_of(p, sizeof p, "ok.safetensors");
    dl_st_writer *w;
    float a[6] = { 1.5f, -2.25f, 3.0e-3f, 1e20f, -0.0f, 7.0f }, b[4] = { 1.00390625f, 3.14159f, -1e-3f, 65504.0f };
    float c[3] = { 0.1f, -0.2f, 1e-6f }, s = 42.0f;
    int64_t sa[2] = { 2, 3 }, sb[1] = { 4 }, sc[1] = { 3 }, sz[2] = { 0, 4 };
    int rc = dl_st_writer_open(&w, p, err, sizeof err);
    rc = rc ? rc : dl_st_writer_set_metadata(w, "format", "pt");
    rc = rc ? rc : dl_st_writer_add(w, "a.weight", DL_ST_F32, 2, sa, a, err, sizeof err);
    rc = rc ? rc : dl_st_writer_add(w, "b", DL_ST_BF16, 1, sb, b, err, sizeof err);
    rc = rc ? rc : dl_st_writer_add(w, "c", DL_ST_F16, 1, sc, c, err, sizeof err);
    rc = rc ? rc : dl_st_writer_add(w, "scalar", DL_ST_F32, 0, NULL, &s, err, sizeof err);
    rc = rc ? rc : dl_st_writer_add(w, "empty", DL_ST_F32, 2, sz, NULL, err, sizeof err);
    int dup = rc ? 0 : dl_st_writer_add(w, "b", DL_ST_F32, 1, sb, b, err, sizeof err);
    int bad = rc ? 0 : dl_st_writer_add(w, "i", DL_ST_I32, 1, sb, b, err, sizeof err);
    DL_CHECK(rc == 0 && dup == -DL_EXIT_USAGE && bad == -DL_EXIT_USAGE, "writer: add; duplicate name and I32 refused (%s)",
             rc ? err : "");
    rc = dl_st_writer_close(w, err, sizeof err);
    DL_CHECK(rc == 0, "writer: close (%s)", rc ? err : "");
    FILE *f = fopen(p, "rb");
    unsigned char len8[8] = { 0 };
    if (f) { if (fread(len8, 1, 8, f) != 8) memset(len8, 0, 8); fclose(f); }
    DL_CHECK(len8[0] % 8 == 0 && len8[0] > 0, "writer: header padded to a multiple of 8 bytes (%u)", len8[0]);
    dl_st_file sf;
    rc = dl_st_open(&sf, p, err, sizeof err);
    DL_CHECK(rc == 0 && sf.n == 5, "reader: opens what the writer wrote (%s)", rc ? err : "");
    if (rc) return;
    const dl_st_tensor *ta = dl_st_find(&sf, "a.weight"), *tb = dl_st_find(&sf, "b"), *tc = dl_st_find(&sf, "c"),
                       *ts = dl_st_find(&sf, "scalar"), *te = dl_st_find(&sf, "empty");
    DL_CHECK(ta && tb && tc && ts && te && ta->dtype == DL_ST_F32 && ta->ndim == 2 && ta->shape[0] == 2 &&
             ta->shape[1] == 3 && tb->dtype == DL_ST_BF16 && tc->dtype == DL_ST_F16 && ts->ndim == 0 &&
             dl_st_numel(ts) == 1 && dl_st_numel(te) == 0 && !dl_st_find(&sf, "zz"),
             "reader: names, dtypes, shapes (incl. scalar and empty)");
    float ga[6], gb[4], gc[3], gs, wb[4], wc[3];
    rc = dl_st_read_f32(&sf, ta, ga, 6, err, sizeof err) | dl_st_read_f32(&sf, tb, gb, 4, err, sizeof err) |
         dl_st_read_f32(&sf, tc, gc, 3, err, sizeof err) | dl_st_read_f32(&sf, ts, &gs, 1, err, sizeof err);
    for (int i = 0; i < 4; i++) wb[i] = dl_bf16_to_f32(dl_f32_to_bf16(b[i]));
    for (int i = 0; i < 3; i++) wc[i] = dl_f16_to_f32(dl_f32_to_f16(c[i]));
    DL_CHECK(rc == 0 && !memcmp(ga, a, sizeof a) && !memcmp(gb, wb, sizeof wb) && !memcmp(gc, wc, sizeof wc) && gs == 42.0f,
             "round trip: F32 exact, BF16 / F16 = the rounded values");
    DL_CHECK(gb[0] == 1.0f && gb[3] == 65536.0f, "bf16 rounding visible: 1.00390625 -> 1, 65504 -> 65536");
    DL_CHECK(sf.metadata_json && strstr(sf.metadata_json, "\"format\"") && strstr(sf.metadata_json, "\"pt\""),
             "metadata kept (%s)", sf.metadata_json ? sf.metadata_json : "null");
    rc = dl_st_read_f32(&sf, ta, ga, 5, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, "a.weight"), "read_f32 with the wrong count refused (%s)", err);
    dl_st_close(&sf);

    /* abort leaves nothing */
    path_of(p, sizeof p, "aborted.safetensors");
    if (!dl_st_writer_open(&w, p, err, sizeof err)) {
        dl_st_writer_add(w, "a", DL_ST_F32, 2, sa, a, err, sizeof err);
        dl_st_writer_abort(w);
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls %s | grep aborted)\"", dir);
    DL_CHECK(access(p, F_OK) != 0 && system(cmd) == 0, "writer abort leaves no file (no spool, no temp)");
}

/* A file: 8-byte length (len_claim, or the header's real length when < 0), header text, data_len bytes of 0x3f. */
static void write_raw(const char *path, const char *header, long long len_claim, size_t data_len) {
    FILE *f = fopen(path, "wb");
    unsigned long long n = len_claim >= 0 ? (unsigned long long)len_claim : strlen(header);
    for (int i = 0; i < 8; i++) fputc((int)(n >> (8 * i)) & 0xff, f);
    fputs(header, f);
    for (size_t i = 0; i < data_len; i++) fputc(0x3f, f);
    fclose(f);
}

static void expect_bad(const char *label, const char *header, long long claim, size_t data_len, const char *tensor,
                       const char *needle) {
    char p[256], err[512] = "";
    path_of(p, sizeof p, "bad.safetensors");
    write_raw(p, header, claim, data_len);
    dl_st_file f;
    int rc = dl_st_open(&f, p, err, sizeof err);
    int ok = rc == -DL_EXIT_DATA && strstr(err, p) && (!tensor || strstr(err, tensor)) && (!needle || strstr(err, needle));
    DL_CHECK(ok, "refused: %s (%s)", label, err);
    if (!rc) dl_st_close(&f);
}

static void test_bad(void) {
    char p[256], err[512];
    /* a valid file cut short */
    path_of(p, sizeof p, "ok.safetensors");
    struct stat st;
    stat(p, &st);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "head -c %lld %s > %s/cut.safetensors", (long long)st.st_size - 3, p, dir);
    if (system(cmd)) printf("# head failed\n");
    path_of(p, sizeof p, "cut.safetensors");
    dl_st_file f;
    int rc = dl_st_open(&f, p, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, p) && strstr(err, "\"scalar\"") && strstr(err, "out of range"),
             "refused: truncated file, names the tensor cut (%s)", err);
    if (!rc) dl_st_close(&f);
    /* shorter than the length field */
    path_of(p, sizeof p, "tiny.safetensors");
    FILE *t = fopen(p, "wb");
    fputs("abc", t);
    fclose(t);
    rc = dl_st_open(&f, p, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_DATA && strstr(err, p) && strstr(err, "truncated"), "refused: 3-byte file (%s)", err);
    path_of(p, sizeof p, "missing.safetensors");
    rc = dl_st_open(&f, p, err, sizeof err);
    DL_CHECK(rc == -DL_EXIT_IO && strstr(err, p), "missing file: I/O error naming it (%s)", err);

    const char *one = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    expect_bad("header length larger than the file", one, 1000, 8, NULL, "larger than the file");
    expect_bad("header length claims 200 MB", one, 200000000, 8, NULL, "100 MB");
    expect_bad("header not JSON", "{\"x\": {\"dtype\": ", -1, 0, NULL, "JSON");
    expect_bad("header is not an object", "[1, 2, 3]", -1, 0, NULL, NULL);
    expect_bad("offsets beyond the data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 8, "\"w\"",
               "out of range");
    expect_bad("offsets reversed", "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", -1, 8, "\"w\"",
               "out of range");
    expect_bad("overlapping tensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, "\"b\"", "overlap");
    expect_bad("gap between tensors",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", -1, 12, "\"b\"", "unused");
    expect_bad("trailing data bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", -1, 8, NULL,
               "trailing");
    expect_bad("unknown dtype", "{\"q\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", -1, 4, "\"q\"",
               "unknown dtype");
    expect_bad("byte span disagrees with shape", "{\"s\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8,
               "\"s\"", "need");
    expect_bad("negative shape", "{\"s\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8, "\"s\"", "shape");
    expect_bad("missing dtype", "{\"s\":{\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, "\"s\"", "dtype");
    expect_bad("missing data_offsets", "{\"s\":{\"dtype\":\"F32\",\"shape\":[2]}}", -1, 8, "\"s\"", "data_offsets");
    expect_bad("duplicate tensor name",
               "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
               "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, NULL, "JSON");
    expect_bad("__metadata__ value not a string", "{\"__metadata__\":{\"k\":1}}", -1, 0, NULL, "__metadata__");
    expect_bad("shape overflow",
               "{\"o\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", -1, 8, "\"o\"", NULL);
    /* an integer tensor is fine to open, not to read as float */
    path_of(p, sizeof p, "int.safetensors");
    write_raw(p, "{\"i\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", -1, 8);
    rc = dl_st_open(&f, p, err, sizeof err);
    float x;
    int rr = rc ? 0 : dl_st_read_f32(&f, &f.t[0], &x, 1, err, sizeof err);
    DL_CHECK(rc == 0 && rr == -DL_EXIT_DATA && strstr(err, "\"i\""), "I64 tensor opens, read_f32 refuses it (%s)", err);
    if (!rc) dl_st_close(&f);
}

int main(void) {
    if (!mkdtemp(dir)) { printf("not ok - mkdtemp\n"); return 1; }
    test_conversions();
    test_roundtrip();
    test_bad();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd)) printf("# could not remove %s\n", dir);
    return dl_test_end();
}
