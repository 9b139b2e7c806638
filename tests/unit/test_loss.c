/* test_loss.c — dl_loss_eval on hand-made cases whose values are worked out
 * in the comments (ALGORITHMS.md §2 / dl_loss.h formulas), gradient
 * accumulation across micro-batches, and the norm names.
 *
 * The batch: L = 4, two rows.
 *   row 0: t = 0.5,  n_prompt 0, eligible 4, masked positions with ce 1, 2
 *   row 1: t = 0.25, n_prompt 2, eligible 2, masked position with ce 3
 *   totals: rows 2, eligible 6, masked 3
 */
#include <math.h>
#include <string.h>
#include "dl_test.h"
#include "dl_loss.h"

static const int32_t ROW[3] = { 0, 0, 1 };
static const float T_[3] = { 0.5f, 0.5f, 0.25f };
static const float CE[3] = { 1.0f, 2.0f, 3.0f };
static const int32_t NP[2] = { 0, 2 };

static dl_loss_batch batch(void) {
    dl_loss_batch b = { 0 };
    b.M = 3; b.row = ROW; b.t = T_; b.n_rows = 2; b.n_prompt = NP; b.row_weight = NULL; b.L = 4;
    b.total_rows = 2; b.total_eligible = 6; b.total_masked = 3;
    return b;
}

static int near(double a, double b) { return fabs(a - b) <= 1e-6 * (1 + fabs(b)); }

static void check(const char *name, dl_loss_cfg c, const dl_loss_batch *b, double want, const double *dwant) {
    float dce[3];
    double elbo = -1;
    double got = dl_loss_eval(&c, b, CE, dce, &elbo);
    int ok = near(got, want);
    for (int i = 0; i < 3; i++) ok = ok && near(dce[i], dwant[i]);
    DL_CHECK(ok, "%s: loss %.6f (want %.6f), dce %.4f %.4f %.4f (want %.4f %.4f %.4f)", name, got, want, dce[0],
             dce[1], dce[2], dwant[0], dwant[1], dwant[2]);
}

int main(void) {
    dl_loss_batch b = batch();
    /* all: (1/.5 + 2/.5 + 3/.25) / (2 rows * 4) = 18 / 8 */
    check("all", (dl_loss_cfg){ DL_NORM_ALL, 0, 0 }, &b, 2.25, (double[]){ 0.25, 0.25, 0.5 });
    /* uniform: (1 + 2 + 3) / 8 */
    check("all uniform", (dl_loss_cfg){ DL_NORM_ALL, 1, 0 }, &b, 0.75, (double[]){ 0.125, 0.125, 0.125 });
    /* response: [ (2 + 4) / (4 - 0) + 12 / (4 - 2) ] / 2 rows = (1.5 + 6) / 2 */
    check("response", (dl_loss_cfg){ DL_NORM_RESPONSE, 0, 0 }, &b, 3.75, (double[]){ 0.25, 0.25, 1.0 });
    /* response uniform: [ 3/4 + 3/2 ] / 2 */
    check("response uniform", (dl_loss_cfg){ DL_NORM_RESPONSE, 1, 0 }, &b, 1.125, (double[]){ 0.125, 0.125, 0.25 });
    /* maskable: 18 / 6 eligible */
    check("maskable", (dl_loss_cfg){ DL_NORM_MASKABLE, 0, 0 }, &b, 3.0, (double[]){ 2 / 6.0, 2 / 6.0, 4 / 6.0 });
    /* masked: (1 + 2 + 3) / 3, no 1/t, uniform changes nothing */
    check("masked", (dl_loss_cfg){ DL_NORM_MASKED, 0, 0 }, &b, 2.0, (double[]){ 1 / 3.0, 1 / 3.0, 1 / 3.0 });
    check("masked uniform", (dl_loss_cfg){ DL_NORM_MASKED, 1, 0 }, &b, 2.0, (double[]){ 1 / 3.0, 1 / 3.0, 1 / 3.0 });
    /* causal: Σ ce / targets (total_masked), t ignored */
    check("causal", (dl_loss_cfg){ DL_NORM_CAUSAL, 0, 0 }, &b, 2.0, (double[]){ 1 / 3.0, 1 / 3.0, 1 / 3.0 });
    check("causal ignores path/uniform", (dl_loss_cfg){ DL_NORM_CAUSAL, 1, 1 }, &b, 2.0,
          (double[]){ 1 / 3.0, 1 / 3.0, 1 / 3.0 });

    /* path loss: + Σ p ce / t / 3 masked with p = exp(-ce) a constant, so
     * d/dce of the extra term is p / t / 3 (not p (1 - ce) / t / 3). */
    {
        double p[3] = { exp(-1.0), exp(-2.0), exp(-3.0) }, s[3] = { 2, 2, 4 };
        double extra = 0, d[3], du[3], ex_u = 0;
        for (int i = 0; i < 3; i++) {
            extra += p[i] * CE[i] * s[i] / 3;
            ex_u += p[i] * CE[i] / 3;
        }
        double base[3] = { 0.25, 0.25, 0.5 };
        for (int i = 0; i < 3; i++) d[i] = base[i] + p[i] * s[i] / 3;
        check("all + path", (dl_loss_cfg){ DL_NORM_ALL, 0, 1 }, &b, 2.25 + extra, d);
        for (int i = 0; i < 3; i++) du[i] = 1 / 3.0 + p[i] / 3;
        check("masked uniform + path (no 1/t anywhere)", (dl_loss_cfg){ DL_NORM_MASKED, 1, 1 }, &b, 2.0 + ex_u, du);
        double dm[3];
        for (int i = 0; i < 3; i++) dm[i] = 1 / 3.0 + p[i] * s[i] / 3;
        check("masked + path (path keeps 1/t)", (dl_loss_cfg){ DL_NORM_MASKED, 0, 1 }, &b, 2.0 + extra, dm);
    }

    /* row weights (2, 1): all = (2*2 + 2*4 + 12) / 8 = 3 */
    {
        float w[2] = { 2, 1 };
        dl_loss_batch bw = b;
        bw.row_weight = w;
        check("all, row weights", (dl_loss_cfg){ DL_NORM_ALL, 0, 0 }, &bw, 3.0, (double[]){ 0.5, 0.5, 0.5 });
        /* elbo ignores weights and norm */
        double elbo = 0;
        dl_loss_cfg c = { DL_NORM_MASKED, 1, 1 };
        dl_loss_eval(&c, &bw, CE, NULL, &elbo);
        DL_CHECK(near(elbo, 2.25), "elbo is the `all` form whatever the norm / weights (%.6f)", elbo);
    }

    /* response with n_prompt >= L: divisor clamped to 1, no inf */
    {
        int32_t np[2] = { 0, 4 };
        dl_loss_batch br = b;
        br.n_prompt = np;
        float dce[3];
        double l = dl_loss_eval(&(dl_loss_cfg){ DL_NORM_RESPONSE, 0, 0 }, &br, CE, dce, NULL);
        DL_CHECK(isfinite(l) && near(dce[2], 4.0 / 1 / 2), "response: n_prompt >= L stays finite");
    }

    /* loss is linear in ce (without path): finite difference = dce */
    {
        dl_loss_cfg c = { DL_NORM_RESPONSE, 0, 0 };
        float dce[3], ce2[3];
        double l0 = dl_loss_eval(&c, &b, CE, dce, NULL), worst = 0;
        for (int i = 0; i < 3; i++) {
            memcpy(ce2, CE, sizeof ce2);
            ce2[i] += 0.5f;
            double fd = (dl_loss_eval(&c, &b, ce2, NULL, NULL) - l0) / 0.5;
            worst = fmax(worst, fabs(fd - dce[i]));
        }
        DL_CHECK(worst < 1e-9, "finite difference equals dce (worst %.2g)", worst);
    }

    /* gradient accumulation: the two micro-batches {pos 0,1} and {pos 2},
     * with the whole-batch totals, give the same total loss, dce and elbo */
    for (int norm = DL_NORM_ALL; norm <= DL_NORM_CAUSAL; norm++)
        for (int pl = 0; pl < 2; pl++) {
            dl_loss_cfg c = { (dl_loss_norm)norm, 0, pl };
            float d1[3], d2[3];
            double e1, e2a, e2b;
            double l1 = dl_loss_eval(&c, &b, CE, d1, &e1);
            dl_loss_batch ba = b, bb = b;
            ba.M = 2;
            bb.M = 1; bb.row = ROW + 2; bb.t = T_ + 2;
            double l2 = dl_loss_eval(&c, &ba, CE, d2, &e2a) + dl_loss_eval(&c, &bb, CE + 2, d2 + 2, &e2b);
            DL_CHECK(near(l1, l2) && !memcmp(d1, d2, sizeof d1) && near(e1, e2a + e2b),
                     "accumulation %s%s: %.6f = %.6f, same dce", dl_loss_norm_name(c.norm), pl ? "+path" : "", l1, l2);
        }

    /* names */
    int ok = 1;
    for (int n = DL_NORM_ALL; n <= DL_NORM_CAUSAL; n++) {
        dl_loss_norm back;
        ok = ok && dl_loss_norm_parse(dl_loss_norm_name((dl_loss_norm)n), &back) == 0 && back == (dl_loss_norm)n;
    }
    dl_loss_norm x;
    DL_CHECK(ok && !strcmp(dl_loss_norm_name(DL_NORM_MASKABLE), "maskable") && dl_loss_norm_parse("mean", &x) == -1,
             "norm names round-trip, unknown refused");
    DL_CHECK(dl_loss_eval(&(dl_loss_cfg){ DL_NORM_ALL, 0, 0 }, &(dl_loss_batch){ .M = 0, .L = 4, .total_rows = 0 },
                          CE, NULL, NULL) == 0.0, "empty micro-batch: 0");
    return dl_test_end();
}
