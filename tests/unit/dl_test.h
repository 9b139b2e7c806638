/* dl_test.h — tiny unit-test helpers: TAP-like lines that tests/run.sh counts.
 *   DL_CHECK(cond, "name fmt", ...)  -> "ok - name" or "not ok - name (file:line)"
 *   dl_tcheck(name, got, ref, n, atol, rtol, max_nmse)  float tensors
 *   return dl_test_end();             exit status 1 if anything failed
 */
#ifndef DL_TEST_H
#define DL_TEST_H
#include <stdio.h>
#include <math.h>
#include <stddef.h>

static int dl_test_failed_, dl_test_passed_;
#define DL_CHECK(cond, ...) do { \
    if (cond) { dl_test_passed_++; printf("ok - "); printf(__VA_ARGS__); printf("\n"); } \
    else { dl_test_failed_++; printf("not ok - "); printf(__VA_ARGS__); \
           printf(" (%s:%d: %s)\n", __FILE__, __LINE__, #cond); } \
    fflush(stdout); } while (0)

/* |a-b| <= atol + rtol*|ref| per element, and NMSE = sum (a-b)^2 / sum ref^2 <= max_nmse */
static inline int dl_tcheck(const char *name, const float *got, const float *ref, size_t n,
                            float atol, float rtol, double max_nmse) {
    size_t bad = 0, worst = 0; double num = 0, den = 0, wd = -1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - ref[i]);
        num += d * d; den += (double)ref[i] * ref[i];
        if (!(d <= atol + rtol * fabs(ref[i]))) { if (bad < 3) printf("  # %s[%zu]: got %.8g ref %.8g\n", name, i, got[i], ref[i]); bad++; }
        if (d > wd) { wd = d; worst = i; }
    }
    double nmse = den > 0 ? num / den : num;
    int okv = bad == 0 && nmse <= max_nmse;
    DL_CHECK(okv, "%s (n=%zu, bad=%zu, worst [%zu] |d|=%.3g, nmse=%.3g)", name, n, bad, worst, wd, nmse);
    return okv;
}
static inline int dl_test_end(void) { return dl_test_failed_ ? 1 : 0; }
#endif
