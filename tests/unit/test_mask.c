/* test_mask.c — statistics and invariants of dl_mask_row (share/model/dl_mask.h).
 * Statistical checks use 3 standard errors over thousands of rows with fixed
 * seeds, so they are deterministic (they either always pass or always fail). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "dl_mask.h"
#include "dl_rng.h"
#include "dl_test.h"

#define MASK 1000u
enum { L = 64, ROWS = 20000 };

static uint32_t x0[L], xt[L];
static float tb[L];

static void fill_x0(void) { for (int i = 0; i < L; i++) x0[i] = (uint32_t)i + 1; }

static uint32_t count_mask(uint32_t from, uint32_t to) {
    uint32_t n = 0;
    for (uint32_t i = from; i < to; i++) n += xt[i] == MASK;
    return n;
}

/* mean and standard error of a running sum */
typedef struct { double s, s2; long n; } acc;
static void add(acc *a, double v) { a->s += v; a->s2 += v * v; a->n++; }
static double mean(const acc *a) { return a->s / a->n; }
static double se(const acc *a) {
    double m = mean(a);
    return sqrt((a->s2 / a->n - m * m) / (a->n - 1));
}

static void test_bernoulli_stats(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    acc diff = { 0 }, t = { 0 };
    int range_ok = 1, xt_ok = 1, info_ok = 1;
    for (uint64_t i = 0; i < ROWS; i++) {
        dl_mask_info in;
        if (dl_mask_row(&c, i, 0, x0, L, 0, 0, xt, tb, &in, NULL, 0)) { range_ok = 0; break; }
        uint32_t m = count_mask(0, L);
        if (tb[0] < c.eps || tb[0] > 1) range_ok = 0;
        for (int k = 0; k < L; k++) if (xt[k] != MASK && xt[k] != x0[k]) xt_ok = 0;
        if (m != in.n_masked || in.n_eligible != L || in.len != L || in.n_blocks != 1) info_ok = 0;
        add(&diff, (double)m / L - tb[0]);
        add(&t, tb[0]);
    }
    DL_CHECK(range_ok, "t in [eps, 1]");
    DL_CHECK(xt_ok, "xt is x0 or mask_id");
    DL_CHECK(info_ok, "info counts agree with xt");
    DL_CHECK(fabs(mean(&diff)) < 3 * se(&diff), "masked fraction - t: mean %.5f within 3 se %.5f",
             mean(&diff), se(&diff));
    double want = (1 + c.eps) / 2;
    DL_CHECK(fabs(mean(&t) - want) < 3 * se(&t), "mean t %.4f ~ %.4f", mean(&t), want);
}

/* the Bernoulli words are dl_rng's MASK_POS stream word by position */
static void test_rng_stream(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    c.seed = 0x123456789abcULL;
    int ok = 1;
    for (uint64_t i = 0; i < 50; i++) {
        uint64_t index = i * 7919 + (1ull << 33);
        dl_mask_row(&c, index, 3, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
        dl_rng r;
        dl_rng_init(&r, c.seed, index, 3, DL_RNG_MASK_POS);
        uint64_t thr = (uint64_t)((double)tb[0] * 4294967296.0);
        for (int k = 0; k < L; k++) if ((dl_rng_u32(&r) < thr) != (xt[k] == MASK)) ok = 0;
    }
    DL_CHECK(ok, "position k masked iff word k of (seed, index, copy, MASK_POS) < t*2^32");
}

static void test_determinism(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0.5;
    c.seed = 7;
    uint32_t a[L];
    float ta;
    dl_mask_row(&c, 42, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    memcpy(a, xt, sizeof a);
    ta = tb[0];
    dl_mask_row(&c, 41, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);   /* another row in between */
    dl_mask_row(&c, 42, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    DL_CHECK(!memcmp(a, xt, sizeof a) && ta == tb[0], "same (seed, index, copy) -> same masking");
    dl_mask_row(&c, 42, 1, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    DL_CHECK(memcmp(a, xt, sizeof a) || ta != tb[0], "another copy -> another masking");
    c.seed = 8;
    dl_mask_row(&c, 42, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    DL_CHECK(memcmp(a, xt, sizeof a) || ta != tb[0], "another seed -> another masking");
}

static void test_eps_range(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    c.t_min = 0.2; c.t_max = 0.3;
    int ok = 1, hit_lo = 0, hit_hi = 0;
    for (uint64_t i = 0; i < 2000; i++) {
        dl_mask_row(&c, i, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
        if (tb[0] < 0.2f || tb[0] > 0.3f) ok = 0;
        hit_lo += tb[0] == 0.2f;
        hit_hi += tb[0] == 0.3f;
    }
    DL_CHECK(ok && hit_lo && hit_hi, "--eps-range 0.2,0.3 clamps t (%d at 0.2, %d at 0.3)", hit_lo, hit_hi);
    c.t_min = c.t_max = 1.0;
    dl_mask_row(&c, 5, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    DL_CHECK(count_mask(0, L) == L, "t = 1 masks every position");
    c.t_min = c.t_max = 0.0;
    dl_mask_row(&c, 5, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    DL_CHECK(count_mask(0, L) == 0, "t = 0 masks nothing");
    char err[128];
    c.t_min = 0.5; c.t_max = 0.4;
    DL_CHECK(dl_mask_cfg_check(&c, err, sizeof err) == -DL_EXIT_USAGE, "a > b rejected: %s", err);
}

static void test_prompt_and_pad(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    c.t_min = 0.9;   /* mask almost everything so violations would show */
    int prompt_ok = 1, pad_ok = 1, pad_masked = 0, elig_ok = 1;
    for (uint64_t i = 0; i < 500; i++) {
        dl_mask_info in;
        c.no_pad_loss = 1;
        dl_mask_row(&c, i, 0, x0, L, 10, 5, xt, tb, &in, NULL, 0);
        if (count_mask(0, 10)) prompt_ok = 0;
        if (count_mask(L - 5, L)) pad_ok = 0;
        if (in.n_eligible != L - 15) elig_ok = 0;
        c.no_pad_loss = 0;
        dl_mask_row(&c, i, 0, x0, L, 10, 5, xt, tb, &in, NULL, 0);
        if (count_mask(0, 10)) prompt_ok = 0;
        pad_masked += count_mask(L - 5, L);
    }
    DL_CHECK(prompt_ok, "no masked position before n_prompt");
    DL_CHECK(pad_ok && elig_ok, "--no-pad-loss never masks the n_pad trailing positions");
    DL_CHECK(pad_masked > 0, "without --no-pad-loss pads are eligible (%d masked)", pad_masked);
    /* prompt positions do not shift the randomness of the others */
    uint32_t a[L];
    dl_mask_row(&c, 9, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
    memcpy(a, xt, sizeof a);
    dl_mask_row(&c, 9, 0, x0, L, 10, 0, xt, tb, NULL, NULL, 0);
    DL_CHECK(!memcmp(a + 10, xt + 10, (L - 10) * sizeof *a), "position decisions do not depend on n_prompt");
    char err[128];
    DL_CHECK(dl_mask_row(&c, 0, 0, x0, L, L + 1, 0, xt, tb, NULL, err, sizeof err) == -DL_EXIT_DATA,
             "n_prompt > L is a data error: %s", err);
    DL_CHECK(dl_mask_row(&c, 0, 0, x0, L, L, 0, xt, tb, NULL, err, sizeof err) == 0 && count_mask(0, L) == 0,
             "n_prompt == L: nothing eligible");
}

static void test_exact(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    c.exact = 1;
    int ok = 1, pos_ok = 1;
    long hits[L] = { 0 };
    for (uint64_t i = 0; i < 4000; i++) {
        dl_mask_info in;
        dl_mask_row(&c, i, 0, x0, L, 7, 0, xt, tb, &in, NULL, 0);
        uint32_t want = (uint32_t)lround((double)tb[0] * (L - 7));
        if (count_mask(0, L) != want || in.n_masked != want) ok = 0;
        if (count_mask(0, 7)) pos_ok = 0;
        for (int k = 0; k < L; k++) hits[k] += xt[k] == MASK;
    }
    DL_CHECK(ok, "--exact masks exactly round(t * n_eligible)");
    DL_CHECK(pos_ok, "--exact never masks the prompt");
    /* every eligible position equally likely: first vs last eligible within 15% */
    double a = hits[7], b = hits[L - 1];
    DL_CHECK(fabs(a - b) < 0.15 * (a + b) / 2, "--exact positions uniform (%ld vs %ld)", hits[7], hits[L - 1]);
}

static void test_block(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    c.block = 10;   /* L = 64 -> 7 blocks, the last of 4 */
    acc diff = { 0 };
    int nb_ok = 1, differ = 0, range_ok = 1;
    for (uint64_t i = 0; i < 5000; i++) {
        dl_mask_info in;
        dl_mask_row(&c, i, 0, x0, L, 0, 0, xt, tb, &in, NULL, 0);
        if (in.n_blocks != 7 || dl_mask_n_blocks(&c, L) != 7) nb_ok = 0;
        for (int b = 0; b < 7; b++) {
            uint32_t a = b * 10, e = b == 6 ? L : a + 10;
            if (tb[b] < c.eps || tb[b] > 1) range_ok = 0;
            add(&diff, (double)count_mask(a, e) - tb[b] * (e - a));
        }
        differ += tb[0] != tb[1];
    }
    DL_CHECK(nb_ok, "--block 10 on L=64: 7 t values");
    DL_CHECK(range_ok && differ > 4900, "block t's in range and independent (%d rows differ)", differ);
    DL_CHECK(fabs(mean(&diff)) < 3 * se(&diff), "per-block masked count ~ t_b * size: %.4f within 3 se %.4f",
             mean(&diff), se(&diff));
    c.exact = 1;
    int ok = 1;
    for (uint64_t i = 0; i < 500; i++) {
        dl_mask_row(&c, i, 0, x0, L, 15, 0, xt, tb, NULL, NULL, 0);
        if (count_mask(0, 15)) ok = 0;
        if (count_mask(15, 20) != (uint32_t)lround(tb[1] * 5.0)) ok = 0;
        for (int b = 2; b < 7; b++) {
            uint32_t a = b * 10, e = b == 6 ? L : a + 10;
            if (count_mask(a, e) != (uint32_t)lround((double)tb[b] * (e - a))) ok = 0;
        }
    }
    DL_CHECK(ok, "--block --exact: exact count per block (prompt cuts block 1)");
}

static void test_random_length(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0.1;
    c.t_min = 0.5;
    long cut = 0;
    int ok = 1, len_ok = 1;
    long len_hist_lo = 0, len_hist_hi = 0;
    for (uint64_t i = 0; i < ROWS; i++) {
        dl_mask_info in;
        dl_mask_row(&c, i, 0, x0, L, 0, 0, xt, tb, &in, NULL, 0);
        if (in.len < 1 || in.len > L || (!in.truncated && in.len != L)) len_ok = 0;
        if (count_mask(in.len, L)) ok = 0;
        for (uint32_t k = in.len; k < L; k++) if (xt[k] != x0[k]) ok = 0;
        cut += in.truncated;
        if (in.truncated) { len_hist_lo += in.len <= L / 2; len_hist_hi += in.len > L / 2; }
    }
    double p = 0.1, f = (double)cut / ROWS, s = sqrt(p * (1 - p) / ROWS);
    DL_CHECK(fabs(f - p) < 3 * s, "random-length fraction %.4f ~ 0.1 within 3 se %.4f", f, s);
    DL_CHECK(len_ok, "len in [1, L], L when not cut");
    DL_CHECK(ok, "positions >= len never masked, keep x0");
    DL_CHECK(labs(len_hist_lo - len_hist_hi) < 0.2 * cut, "cut lengths spread over [1, L] (%ld/%ld)",
             len_hist_lo, len_hist_hi);
    c.random_length_p = 0;
    int none = 1;
    for (uint64_t i = 0; i < 2000; i++) {
        dl_mask_info in;
        dl_mask_row(&c, i, 0, x0, L, 0, 0, xt, tb, &in, NULL, 0);
        if (in.truncated) none = 0;
    }
    DL_CHECK(none, "--random-length 0 never cuts");
}

static void test_antithetic(void) {
    dl_mask_cfg c;
    dl_mask_cfg_default(&c);
    c.mask_id = MASK;
    c.random_length_p = 0;
    c.eps = 0;
    c.t_sampling = DL_T_ANTITHETIC;
    c.group_size = 8;
    int ok = 1;
    acc t = { 0 };
    for (uint64_t g = 0; g < 50; g++) {
        double v0 = -1;
        for (uint64_t k = 0; k < 8; k++) {
            dl_mask_row(&c, g * 8 + k, 0, x0, L, 0, 0, xt, tb, NULL, NULL, 0);
            double v = tb[0] * 8 - (double)k;   /* u = v/n + k/n */
            if (v0 < 0) v0 = v;
            if (fabs(v - v0) > 1e-4 || v < -1e-4 || v > 1 + 1e-4) ok = 0;
            add(&t, tb[0]);
        }
    }
    DL_CHECK(ok, "antithetic: group of 8 has u = v/8 + k/8 with one v");
    DL_CHECK(fabs(mean(&t) - 0.5) < 0.01, "antithetic mean t %.4f ~ 0.5", mean(&t));
}

int main(void) {
    fill_x0();
    test_bernoulli_stats();
    test_rng_stream();
    test_determinism();
    test_eps_range();
    test_prompt_and_pad();
    test_exact();
    test_block();
    test_random_length();
    test_antithetic();
    return dl_test_end();
}
