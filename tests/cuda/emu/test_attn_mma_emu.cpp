/* tests/cuda/emu/test_attn_mma_emu.cpp — kernels/cuda/attention_mma.cu (the
 * bf16 tensor-core attention) run on the CPU and compared with the
 * reference backend (kernels/ref), so its indexing, masks, shared-memory
 * carve, WMMA layouts / alignment and synchronisation are checked by `make
 * test` on a machine without a GPU (issue 11: "test every kernel's
 * indexing on the CPU reference path first").  What only a GPU shows
 * (real fragment distribution, timing, launch limits) stays for
 * tests/cuda/check.sh.
 * The kernels are the file itself, compiled with DL_CU_EMU (cu_emu.h,
 * mma.h); this driver does what cu_attn_mma_fwd / _bwd and k_attn_dsum do
 * on the GPU: the grids, the shared-memory sizes, D_i = dO_i . O_i.
 * Cases: head dims 16, 64, 128; bidirectional, causal, block and BD3
 * masks; GQA; lens (a row of length 0 among them); ragged last tiles.
 * Tolerances: test_backend_ops' bf16 ones (nmse <= 1e-4, max|d| <= 3e-2
 * (1 + max|ref|)); lse within 1e-3 (1 + |ref|), -inf where ref has -inf.
 */
#include <cmath>
#include <vector>
#define DL_CU_EMU 1
/* the file's headers first (their guards keep them out of the namespace),
 * then the kernels in a namespace of their own: libdllm.a, linked for the
 * reference backend, holds the real (nvcc) attention_mma.o, and the
 * emulated backend's objects hold the same functions once more */
#include <math.h>
#include <type_traits>
#include <mma.h>
#include "attention.h"
namespace emu {
#include "../../../kernels/cuda/attention_mma.cu"
}
using namespace emu;

static int n_ok, n_bad;
static uint64_t rs = 0x9e3779b97f4a7c15ull;
static float urand() { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return (float)((rs >> 40) / 8388608.0 - 1.0); }
static uint16_t to_bits(float f) { return __float2bfloat16_rn(f).x; }
static float of_bits(uint16_t b) { bf16 x; x.x = b; return __bfloat162float(x); }

static void report(bool ok, const char *what) {
    printf("%s - %s\n", ok ? "ok" : "not ok", what);
    ok ? n_ok++ : n_bad++;
}

/* a against r (both bf16 bits) with the bf16 tolerances */
static void compare(const char *lab, const char *name, const std::vector<uint16_t> &a, const std::vector<uint16_t> &r) {
    double num = 0, den = 0, mad = 0, mref = 0;
    int nonfinite = 0;
    for (size_t i = 0; i < r.size(); i++) {
        double x = of_bits(a[i]), y = of_bits(r[i]);
        if (!std::isfinite(x)) nonfinite++;
        num += (x - y) * (x - y); den += y * y;
        mad = std::max(mad, std::fabs(x - y)); mref = std::max(mref, std::fabs(y));
    }
    double nmse = den > 0 ? num / den : num, tol = 3e-2 * (1 + mref);
    char w[400];
    snprintf(w, sizeof w, "emu attention_mma %s %s: nmse %.2e (tol 1e-04) max|d| %.2e (tol %.2e)%s", lab, name, nmse,
             mad, tol, nonfinite ? " NON-FINITE VALUES" : "");
    report(!nonfinite && nmse <= 1e-4 && mad <= tol, w);
}

static void run(int B, int T, int Hq, int Hk, int E, dl_attn_mask mask, int block, int use_lens) {
    char lab[160];
    const char *mn[] = { "bidir", "causal", "block", "bd3" };
    snprintf(lab, sizeof lab, "[B=%d T=%d Hq=%d Hk=%d E=%d %s block=%d lens=%d]", B, T, Hq, Hk, E, mn[mask], block,
             use_lens);
    size_t nq = (size_t)B * T * Hq * E, nk = (size_t)B * T * Hk * E, nl = (size_t)B * Hq * T;
    std::vector<uint16_t> q(nq), k(nk), v(nk), dout(nq);
    for (auto &x : q) x = to_bits(2 * urand());
    for (auto &x : k) x = to_bits(2 * urand());
    for (auto &x : v) x = to_bits(urand());
    for (auto &x : dout) x = to_bits(urand());
    std::vector<int32_t> lens(B);
    int cut = mask == DL_ATTN_BD3 ? T / 2 : T;   /* BD3: lens cut each half */
    for (int b = 0; b < B; b++) lens[b] = b == 1 ? 0 : b == 0 ? cut / 2 + 1 : cut - b;
    const int32_t *lp = use_lens ? lens.data() : NULL;

    /* the reference backend (host memory: its pointers are ours) */
    char err[200];
    dl_dev *ref = NULL;
    if (dl_dev_open(&ref, DL_DEV_REF, 0, err, sizeof err)) { report(false, err); return; }
    std::vector<uint16_t> ro(nq), rdq(nq), rdk(nk), rdv(nk);
    std::vector<float> rl(nl);
    std::vector<unsigned char> scr(dl_k_attention_bwd_scratch_bytes(ref, B, T, Hq, Hk, E, 0) + 64);
    dl_k_attention_fwd(ref, DL_BF16, ro.data(), rl.data(), NULL, q.data(), k.data(), v.data(), lp, B, T, Hq, Hk, E,
                       mask, block);
    dl_k_attention_bwd(ref, DL_BF16, rdq.data(), rdk.data(), rdv.data(), scr.data(), dout.data(), ro.data(), rl.data(),
                       NULL, q.data(), k.data(), v.data(), lp, B, T, Hq, Hk, E, mask, block);
    dl_dev_close(ref);

    /* the kernels, launched as cu_attn_mma_fwd / _bwd launch them */
    std::vector<uint16_t> out(nq, 0x7fc0), dq(nq, 0x7fc0), dk(nk, 0x7fc0), dv(nk, 0x7fc0);
    std::vector<float> lse(nl, NAN), Dd(nl);
    attn_args<bf16> a = { (const bf16 *)q.data(), (const bf16 *)k.data(), (const bf16 *)v.data(), (bf16 *)out.data(),
                          lse.data(), NULL, T, T, Hq, Hk, E, MODE_FULL, (int)mask, block, lp, NULL };
    unsigned tq = (unsigned)((T + MT - 1) / MT);
    optin(k_mma_fwd, fwd_bytes(E));   /* as cu_attn_mma_fwd / _bwd do */
    optin(k_mma_dq, dq_bytes(E));
    optin(k_mma_dkdv, kv_bytes(E));
    cu_emu_launch(dim3(tq, Hq, B), dim3(MW * 32), fwd_bytes(E), (const void *)&k_mma_fwd, [&] { k_mma_fwd(a); });
    for (int b = 0; b < B; b++)   /* k_attn_dsum */
        for (int i = 0; i < T; i++)
            for (int h = 0; h < Hq; h++) {
                size_t off = (((size_t)b * T + i) * Hq + h) * E;
                float s = 0;
                for (int e = 0; e < E; e++) s += of_bits(dout[off + e]) * of_bits(out[off + e]);
                Dd[((size_t)b * Hq + h) * T + i] = s;
            }
    a.out = NULL;
    a.lse = NULL;
    cu_emu_launch(dim3(tq, Hq, B), dim3(MW * 32), dq_bytes(E), (const void *)&k_mma_dq,
                  [&] { k_mma_dq(a, (bf16 *)dq.data(), (const bf16 *)dout.data(), lse.data(), Dd.data()); });
    cu_emu_launch(dim3(tq, Hk, B), dim3(MW * 32), kv_bytes(E), (const void *)&k_mma_dkdv, [&] {
        k_mma_dkdv(a, (bf16 *)dk.data(), (bf16 *)dv.data(), (const bf16 *)dout.data(), lse.data(), Dd.data());
    });

    compare(lab, "out", out, ro);
    double mad = 0;
    int inf_bad = 0;
    for (size_t i = 0; i < nl; i++) {
        if (std::isinf(rl[i]) && rl[i] < 0) inf_bad += !(std::isinf(lse[i]) && lse[i] < 0);
        else if (!std::isfinite(lse[i])) inf_bad++;
        else mad = std::max(mad, std::fabs((double)lse[i] - rl[i]) / (1 + std::fabs(rl[i])));
    }
    char w[300];
    snprintf(w, sizeof w, "emu attention_mma %s lse: max rel |d| %.2e (tol 1e-03), %d -inf / non-finite mismatches", lab,
             mad, inf_bad);
    report(!inf_bad && mad <= 1e-3, w);
    compare(lab, "dq", dq, rdq);
    compare(lab, "dk", dk, rdk);
    compare(lab, "dv", dv, rdv);
}

int main() {
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("# kernels/cuda/attention_mma.cu on the CPU (tests/cuda/emu) against the reference backend\n");
    static const int sh[][6] = { { 2, 130, 2, 2, 16, 48 }, { 2, 150, 4, 2, 64, 40 }, { 1, 70, 2, 1, 128, 32 },
                                 { 1, 1, 1, 1, 16, 1 } };
    for (auto &s : sh)
        for (int mask = 0; mask < 3; mask++)
            for (int ln = 0; ln < 2; ln++) run(s[0], s[1], s[2], s[3], s[4], (dl_attn_mask)mask, s[5], ln);
    for (int ln = 0; ln < 2; ln++) {
        run(2, 140, 4, 2, 64, DL_ATTN_BD3, 24, ln);
        run(2, 130, 2, 2, 16, DL_ATTN_BD3, 16, ln);
    }
    printf("# %d passed, %d failed\n", n_ok, n_bad);
    return n_bad ? 1 : 0;
}
