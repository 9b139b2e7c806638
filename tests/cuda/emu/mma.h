/* tests/cuda/emu/mma.h — nvcuda::wmma for tests/cuda/emu: the 16x16x16 __nv_bfloat16
 * fragments with fp32 accumulators that kernels/cuda/attention_mma.cu uses,
 * with CUDA's memory layouts (matrix_a row-major: A[r][k] at p[r*ldm + k];
 * matrix_b row_major: B[k][n] at p[k*ldm + n], col_major: at p[n*ldm + k];
 * accumulators row-major) and its rules checked on every call: the pointer
 * 256-bit aligned, ldm a multiple of 8 (16-bit types) or 4 (float), the
 * whole 16 x 16 tile inside the block's shared memory (the kernels only
 * use WMMA on shared memory).  A fragment is held whole by every lane (all
 * lanes compute the same); a store writes each element from one lane, so a
 * missing __syncwarp before another lane reads it is a real race here too.
 */
#ifndef DL_CU_EMU_MMA_H
#define DL_CU_EMU_MMA_H
#include <cu_emu.h>

namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K, class T, class L = void> struct fragment { float v[16][16]; };

inline void check(const void *p, const void *last, unsigned ldm, unsigned mult, const char *what, int kind = 1) {
    int first;
    cu_emu_collective(kind, p, ldm, &first);   /* the same call on every lane */
    const unsigned char *b = cu_emu_smem_base, *e = b + cu_emu_smem_bytes;
    if ((uintptr_t)p % 32 || ldm % mult || (const unsigned char *)p < b || (const unsigned char *)last >= e) {
        fprintf(stderr, "cu_emu: %s: pointer %p (smem offset %td, %s), ldm %u (%s a multiple of %u), tile end offset %td of %zu\n",
                what, p, (const unsigned char *)p - b, (uintptr_t)p % 32 ? "NOT 32-byte aligned" : "aligned", ldm,
                ldm % mult ? "NOT" : "is", mult, (const unsigned char *)last - b, cu_emu_smem_bytes);
        abort();
    }
}

/* a bf16 tile into v (v[x][y] at p[x*ldm + y], or at p[y*ldm + x] when transposed), the rules checked */
inline void load_bf16_tile(float (*v)[16], const __nv_bfloat16 *p, unsigned ldm, bool transposed, const char *what) {
    check(p, p + 15 * ldm + 15, ldm, 8, what);
    for (int x = 0; x < 16; x++)
        for (int y = 0; y < 16; y++) v[x][y] = __bfloat162float(transposed ? p[y * ldm + x] : p[x * ldm + y]);
}
template <int M, int N, int K>
void load_matrix_sync(fragment<matrix_a, M, N, K, __nv_bfloat16, row_major> &f, const __nv_bfloat16 *p, unsigned ldm) {
    load_bf16_tile(f.v, p, ldm, false, "load matrix_a");
}
template <int M, int N, int K>
void load_matrix_sync(fragment<matrix_b, M, N, K, __nv_bfloat16, row_major> &f, const __nv_bfloat16 *p, unsigned ldm) {
    load_bf16_tile(f.v, p, ldm, false, "load matrix_b row_major");
}
template <int M, int N, int K>
void load_matrix_sync(fragment<matrix_b, M, N, K, __nv_bfloat16, col_major> &f, const __nv_bfloat16 *p, unsigned ldm) {
    load_bf16_tile(f.v, p, ldm, true, "load matrix_b col_major");
}
template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm, layout_t l) {
    if (l != mem_row_major) abort();
    check(p, p + 15 * ldm + 15, ldm, 4, "load accumulator");
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r][c] = p[r * ldm + c];
}
template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm, layout_t l) {
    if (l != mem_row_major) abort();
    check(p, p + 15 * ldm + 15, ldm, 4, "store accumulator", 2);
    unsigned lane = threadIdx.x & 31;
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++)
            if ((unsigned)(r * 16 + c) % 32 == lane) p[r * ldm + c] = f.v[r][c];
}
template <int M, int N, int K> void fill_fragment(fragment<accumulator, M, N, K, float> &f, float x) {
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) f.v[r][c] = x;
}
/* d = a b + c, fp32 accumulation (the hardware's order within a 16-long dot
 * differs: rounding only); computed by the warp's first lane, the others
 * take its result (cu_emu_collective) */
template <int M, int N, int K, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, __nv_bfloat16, LA> &a,
              const fragment<matrix_b, M, N, K, __nv_bfloat16, LB> &b, const fragment<accumulator, M, N, K, float> &c) {
    int first;
    cu_emu_coll *e = cu_emu_collective(3, NULL, 0, &first);
    if (first)
        for (int r = 0; r < 16; r++)
            for (int n = 0; n < 16; n++) {
                float s = c.v[r][n];
                for (int k = 0; k < 16; k++) s += a.v[r][k] * b.v[k][n];
                e->frag[r][n] = s;
            }
    memcpy(d.v, e->frag, sizeof d.v);
}
}  // namespace wmma
}  // namespace nvcuda

#endif
