/* tests/cuda/emu/cu_emu.cpp — the execution model and runtime of cu_emu.h.
 * A block's threads are fibers on the calling thread.  A fiber runs until
 * it waits at a barrier (__syncthreads: the block's; __syncwarp and
 * shuffles: its warp's) or returns, then hands over to the next runnable
 * fiber in lane order.  A barrier opens when every thread still in it has
 * arrived; a returned thread leaves its barriers.  When no fiber can run
 * and some have not returned, the block is deadlocked: reported, abort.
 * cuBLASLt's heuristic finds nothing with DLLM_CU_EMU_LT_NONE=1 (so that
 * gemm.cu's GemmEx fallback runs too).
 * Lane order: first to last, or last to first with DLLM_CU_EMU_ORDER=reverse
 * (make test-cuda-emu runs the op tests both ways: a missing barrier between
 * one lane's write and another's read shows in one of the two orders).
 * Context switch: a few lines of x86-64 assembly (callee-saved registers
 * and the stack pointer), elsewhere ucontext (slower).
 */
#include <atomic>
#include <cmath>
#include <mutex>
#include <deque>
#include <map>
#include <memory>
#include <vector>
#include <cu_emu.h>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif
/* Under AddressSanitizer: a fiber that returns never pops its frames, so the
 * redzones they poisoned stay marked in its stack's shadow; the next block's
 * fiber on the same stack would then trip over them (a false "stack-buffer
 * underflow").  Each stack is unpoisoned when its fiber is set up. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define STACK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#include <sanitizer/asan_interface.h>
#define STACK_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#endif
#endif
#ifndef STACK_UNPOISON
#define STACK_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
unsigned char *cu_emu_smem_base;
size_t cu_emu_smem_bytes;

/* ---------------------------------------------------------------- fibers */
#if defined(__x86_64__)
extern "C" void cu_emu_swap(void **save_sp, void *load_sp);
asm(".text\n.globl cu_emu_swap\n.type cu_emu_swap,@function\ncu_emu_swap:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n  ret\n"
    ".size cu_emu_swap,.-cu_emu_swap\n");
#endif

enum { STACK = 256 * 1024 };
struct fiber {
    std::unique_ptr<unsigned char[]> stack;   /* STACK bytes, untouched until used */
#if defined(__x86_64__)
    void *sp;
#else
    ucontext_t ctx;
#endif
    int state;            /* 0 runnable, 1 waiting, 2 returned */
    int wait_bar;         /* the barrier it waits at: 0 = block, 1 + w = warp w */
};
struct barrier_s {
    int expected, arrived;
};
static std::vector<fiber> fibers;
static std::vector<barrier_s> bars;   /* [0] block, [1 + w] warp w */
static unsigned nthreads, cur;
static const std::function<void()> *cur_kernel;
#if defined(__x86_64__)
static void *sched_sp;
#else
static ucontext_t sched_ctx;
#endif
static std::vector<unsigned char> shfl[2];   /* per warp and lane, 8 bytes, double-buffered */
static std::vector<unsigned char> shfl_parity;
static cudaError_t last_error = cudaSuccess;
static std::vector<std::deque<cu_emu_coll>> coll;   /* per warp */
static std::vector<size_t> coll_n;                  /* per lane: its collective calls so far */

cu_emu_coll *cu_emu_collective(int kind, const void *p, unsigned ldm, int *first) {
    unsigned w = threadIdx.x / 32;
    size_t n = coll_n[threadIdx.x]++;
    std::deque<cu_emu_coll> &q = coll[w];
    if (n == q.size()) {
        q.push_back(cu_emu_coll{ kind, p, ldm, {} });
        *first = 1;
        return &q.back();
    }
    cu_emu_coll *e = &q[n];
    if (e->kind != kind || e->p != p || e->ldm != ldm) {
        fprintf(stderr, "cu_emu: block (%u,%u,%u) warp %u: lane %u's WMMA call %zu (kind %d, %p, ldm %u) differs from "
                "the warp's (kind %d, %p, ldm %u): a warp-collective call must be the same on every lane\n",
                blockIdx.x, blockIdx.y, blockIdx.z, w, threadIdx.x % 32, n, kind, p, ldm, e->kind, e->p, e->ldm);
        abort();
    }
    *first = 0;
    return e;
}

/* leaves the running fiber (waiting or returned) for the next runnable one
 * in lane order after it, or for the scheduler when there is none (then
 * every fiber is waiting or returned: done, or a deadlock) */
static int reverse_order() {   /* DLLM_CU_EMU_ORDER=reverse: lanes run last to first */
    static int r = -1;
    if (r < 0) { const char *e = getenv("DLLM_CU_EMU_ORDER"); r = e && !strcmp(e, "reverse"); }
    return r;
}
static void switch_away() {
    unsigned from = cur, to = nthreads;
    for (unsigned k = 1; k < nthreads; k++) {
        unsigned t = reverse_order() ? (from + nthreads - k) % nthreads : (from + k) % nthreads;
        if (fibers[t].state == 0) { to = t; break; }
    }
#if defined(__x86_64__)
    if (to == nthreads) { cu_emu_swap(&fibers[from].sp, sched_sp); return; }
    cur = to;
    threadIdx = { to, 0, 0 };
    cu_emu_swap(&fibers[from].sp, fibers[to].sp);
#else
    if (to == nthreads) { swapcontext(&fibers[from].ctx, &sched_ctx); return; }
    cur = to;
    threadIdx = { to, 0, 0 };
    swapcontext(&fibers[from].ctx, &fibers[to].ctx);
#endif
}

/* wakes the fibers waiting at barrier b (a warp barrier: only that warp's) */
static void open_bar(int b) {
    bars[b].arrived = 0;
    unsigned lo = b ? (unsigned)(b - 1) * 32 : 0, hi = b ? lo + 32 : nthreads;
    if (hi > nthreads) hi = nthreads;
    for (unsigned t = lo; t < hi; t++)
        if (fibers[t].state == 1 && fibers[t].wait_bar == b) fibers[t].state = 0;
}
/* arrive at barrier b; returns when it has opened */
static void arrive(int b) {
    barrier_s &r = bars[b];
    if (++r.arrived == r.expected) {   /* the last one in: open it */
        open_bar(b);
        return;
    }
    fibers[cur].state = 1;
    fibers[cur].wait_bar = b;
    switch_away();   /* back here once the barrier has opened and a fiber switches to us */
}
/* a returned thread leaves barrier b; it opens if the others were all waiting */
static void leave(int b) {
    barrier_s &r = bars[b];
    r.expected--;
    if (r.arrived > 0 && r.arrived == r.expected) open_bar(b);
}

static void fiber_main() {
    (*cur_kernel)();
    fibers[cur].state = 2;
    leave(0);
    leave(1 + (int)(cur / 32));
    switch_away();
    abort();   /* never resumed */
}
#if !defined(__x86_64__)
static void fiber_entry() { fiber_main(); }
#endif

void __syncthreads() { arrive(0); }
void __syncwarp(unsigned) { arrive(1 + (int)(threadIdx.x / 32)); }
void cu_emu_shuffle(void *v, size_t bytes, int arg, int xor_mode) {
    unsigned w = threadIdx.x / 32, l = threadIdx.x % 32;
    if (bytes != 4 && bytes != 8) abort();
    int p = shfl_parity[threadIdx.x];
    shfl_parity[threadIdx.x] ^= 1;
    uint64_t x = 0;
    if (bytes == 8) memcpy(&x, v, 8); else memcpy(&x, v, 4);
    ((uint64_t *)shfl[p].data())[w * 32 + l] = x;
    __syncwarp();
    unsigned src = xor_mode ? (l ^ (unsigned)arg) : (unsigned)arg & 31u;
    x = ((uint64_t *)shfl[p].data())[w * 32 + src];
    if (bytes == 8) memcpy(v, &x, 8); else memcpy(v, &x, 4);
}

static void run_block(unsigned threads) {
    for (unsigned t = 0; t < threads; t++) {
        fiber &f = fibers[t];
        f.state = 0;
        STACK_UNPOISON(f.stack.get(), STACK);
#if defined(__x86_64__)
        uintptr_t top = ((uintptr_t)f.stack.get() + STACK) & ~(uintptr_t)15;
        void **sp = (void **)top;
        *--sp = 0;                              /* fiber_main's "return address" (never used) */
        *--sp = (void *)fiber_main;             /* cu_emu_swap's ret lands here */
        for (int i = 0; i < 6; i++) *--sp = 0;  /* rbp rbx r12 r13 r14 r15 */
        f.sp = sp;
#else
        getcontext(&f.ctx);
        f.ctx.uc_stack.ss_sp = f.stack.get();
        f.ctx.uc_stack.ss_size = STACK;
        f.ctx.uc_link = NULL;
        makecontext(&f.ctx, fiber_entry, 0);
#endif
    }
    bars.assign(1 + (threads + 31) / 32, barrier_s{ 0, 0 });
    bars[0].expected = (int)threads;
    for (unsigned w = 0; w < (threads + 31) / 32; w++) bars[1 + w].expected = (int)(threads - w * 32 < 32 ? threads - w * 32 : 32);
    shfl_parity.assign(threads, 0);
    coll.assign((threads + 31) / 32, std::deque<cu_emu_coll>());
    coll_n.assign(threads, 0);
    /* the first lane starts (the last one in reverse order); fibers hand over
     * to each other (switch_away) and come back here only when none can run */
    cur = reverse_order() ? threads - 1 : 0;
    threadIdx = { cur, 0, 0 };
#if defined(__x86_64__)
    cu_emu_swap(&sched_sp, fibers[cur].sp);
#else
    swapcontext(&sched_ctx, &fibers[cur].ctx);
#endif
    int left = 0;
    for (unsigned t = 0; t < threads; t++) left |= fibers[t].state != 2;
    if (!left) return;
    fprintf(stderr, "cu_emu: deadlock in block (%u,%u,%u):", blockIdx.x, blockIdx.y, blockIdx.z);
    for (unsigned t = 0; t < threads; t++)
        if (fibers[t].state == 1)
            fprintf(stderr, " t%u@%s%d", t, fibers[t].wait_bar ? "warp" : "block",
                    fibers[t].wait_bar ? fibers[t].wait_bar - 1 : 0);
    fprintf(stderr, " (a thread skipped a barrier or shuffle the others wait at)\n");
    abort();
}

static std::map<const void *, size_t> smem_optin;   /* kernel -> its cudaFuncSetAttribute bytes */

void cu_emu_launch(dim3 grid, dim3 block, size_t smem_bytes, const void *kernel, const std::function<void()> &body) {
    unsigned threads = block.x * block.y * block.z;
    if (smem_bytes > 48 * 1024 && (!smem_optin.count(kernel) || smem_optin[kernel] < smem_bytes)) {
        fprintf(stderr, "cu_emu: launch with %zu bytes of dynamic shared memory (over 48 KiB) without "
                "cudaFuncSetAttribute(kernel, MaxDynamicSharedMemorySize) for that much\n", smem_bytes);
        last_error = cudaErrorInvalidValue;
        return;
    }
    if (block.y != 1 || block.z != 1 || threads == 0 || threads > 1024 || grid.x == 0 || grid.y == 0 || grid.z == 0 ||
        grid.y > 65535 || grid.z > 65535 || smem_bytes > CU_EMU_SMEM_MAX) {
        fprintf(stderr, "cu_emu: bad launch: grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", grid.x, grid.y, grid.z,
                block.x, block.y, block.z, smem_bytes);
        last_error = cudaErrorInvalidValue;
        return;
    }
    if (fibers.size() < threads) {
        fibers.resize(threads);
        for (auto &f : fibers)
            if (!f.stack) f.stack.reset(new unsigned char[STACK]);
    }
    for (auto &b : shfl) b.assign(threads * 8, 0);
    std::vector<unsigned char> buf(smem_bytes + 256);
    cu_emu_smem_base = (unsigned char *)(((uintptr_t)buf.data() + 127) & ~(uintptr_t)127);
    cu_emu_smem_bytes = smem_bytes;
    blockDim = dim3(threads);
    gridDim = grid;
    nthreads = threads;
    cur_kernel = &body;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                memset(cu_emu_smem_base, 0xff, smem_bytes);   /* NaN in bf16 and in float */
                blockIdx = { x, y, z };
                run_block(threads);
            }
    cu_emu_smem_base = NULL;
    cu_emu_smem_bytes = 0;
}

/* ---------------------------------------------------------------- runtime */
const char *cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "cu_emu error"; }
cudaError_t cudaGetLastError() { cudaError_t e = last_error; last_error = cudaSuccess; return e; }
cudaError_t cudaGetDeviceCount(int *n) { *n = 1; return cudaSuccess; }
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "emulated on the CPU (tests/cuda/emu)");
    p->major = 9;
    p->minor = 0;
    p->totalGlobalMem = (size_t)80 << 30;
    p->sharedMemPerBlockOptin = CU_EMU_SMEM_MAX;
    return cudaSuccess;
}
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) { *s = (void *)1; return cudaSuccess; }
cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
/* DLLM_CU_EMU_MALLOC_COUNT=1: the number of device allocations goes to
 * stderr at exit ("cu_emu: N device allocations"), so a test can show that
 * a longer run allocates no more than a shorter one (nothing per step) */
static std::atomic<long> n_mallocs;
static void print_mallocs() { fprintf(stderr, "cu_emu: %ld device allocations\n", n_mallocs.load()); }
cudaError_t cudaMalloc(void **p, size_t n) {
    static std::once_flag once;
    std::call_once(once, [] {
        const char *e = getenv("DLLM_CU_EMU_MALLOC_COUNT");
        if (e && *e == '1') atexit(print_mallocs);
    });
    n_mallocs++;
    *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (*p) memset(*p, 0xff, n);   /* NaN in f32 and bf16: the backend must write (or zero) what it reads */
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) { free(p); return cudaSuccess; }
cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
cudaError_t cudaMallocAsync(void **p, size_t n, cudaStream_t) { return cudaMalloc(p, n); }
cudaError_t cudaFreeAsync(void *p, cudaStream_t) { return cudaFree(p); }
cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t) { memset(p, v, n); return cudaSuccess; }
cudaError_t cudaMemcpy(void *dst, const void *src, size_t n, cudaMemcpyKind) { memmove(dst, src, n); return cudaSuccess; }
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, cudaMemcpyKind, cudaStream_t) {
    memmove(dst, src, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width, size_t height,
                              cudaMemcpyKind, cudaStream_t) {
    if (width > dpitch || width > spitch) return cudaErrorInvalidValue;
    for (size_t r = 0; r < height; r++) memmove((char *)dst + r * dpitch, (const char *)src + r * spitch, width);
    return cudaSuccess;
}
cudaError_t cu_emu_set_smem_attr(const void *kernel, int bytes) {
    if (bytes < 0 || bytes > CU_EMU_SMEM_MAX) return cudaErrorInvalidValue;
    smem_optin[kernel] = (size_t)bytes;
    return cudaSuccess;
}

/* ---------------------------------------------------------------- cuBLAS */
struct cu_emu_blas { int unused; };
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) { *h = new cu_emu_blas(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetStream_v2(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

static float ld(const void *p, cudaDataType t, size_t i) {
    if (t == CUDA_R_32F) return ((const float *)p)[i];
    __nv_bfloat16 b;
    b.x = ((const uint16_t *)p)[i];
    return __bfloat162float(b);
}
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                           const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                           const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t ctype,
                           const void *bias);
cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                            const void *alpha, const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt,
                            int ldb, const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t ctype,
                            cublasGemmAlgo_t) {
    return gemm(ta, tb, m, n, k, alpha, A, at, lda, B, bt, ldb, beta, C, ct, ldc, ctype, NULL);
}
/* the GEMM of both APIs; bias (m, type ct, or NULL): added to every column before the one rounding */
static cublasStatus_t gemm(cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const void *alpha,
                           const void *A, cudaDataType at, int lda, const void *B, cudaDataType bt, int ldb,
                           const void *beta, void *C, cudaDataType ct, int ldc, cublasComputeType_t ctype,
                           const void *bias) {
    /* cuBLAS's argument rules (a violation is an error there too) */
    if (m < 0 || n < 0 || k < 0 || lda < (ta == CUBLAS_OP_N ? m : k) || lda < 1 || ldb < (tb == CUBLAS_OP_N ? k : n) ||
        ldb < 1 || ldc < m || ldc < 1 || ctype != CUBLAS_COMPUTE_32F)
        return CUBLAS_STATUS_INVALID_VALUE;
    if ((at != CUDA_R_32F && at != CUDA_R_16BF) || bt != at || (ct != CUDA_R_32F && ct != CUDA_R_16BF))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    float a = *(const float *)alpha, b = *(const float *)beta;
    /* op(A) as (m x k) row-major, op(B)^T as (n x k) row-major: every dot is two contiguous rows */
    std::vector<float> Ar((size_t)m * k), Br((size_t)n * k);
    for (int i = 0; i < m; i++)
        for (int l = 0; l < k; l++)
            Ar[(size_t)i * k + l] = ld(A, at, ta == CUBLAS_OP_N ? (size_t)i + (size_t)l * lda : (size_t)l + (size_t)i * lda);
    for (int j = 0; j < n; j++)
        for (int l = 0; l < k; l++)
            Br[(size_t)j * k + l] = ld(B, bt, tb == CUBLAS_OP_N ? (size_t)l + (size_t)j * ldb : (size_t)j + (size_t)l * ldb);
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            const float *x = &Ar[(size_t)i * k], *y = &Br[(size_t)j * k];
            double s = 0;
            for (int l = 0; l < k; l++) s += (double)x[l] * y[l];
            size_t ci = (size_t)i + (size_t)j * ldc;
            double r = a * s + (b != 0 ? b * ld(C, ct, ci) : 0.0);   /* beta 0: C is not read (may be garbage) */
            if (bias) r += ld(bias, ct, (size_t)i);
            if (ct == CUDA_R_32F) ((float *)C)[ci] = (float)r;
            else ((uint16_t *)C)[ci] = __float2bfloat16_rn((float)r).x;
        }
    return CUBLAS_STATUS_SUCCESS;
}

/* ---------------------------------------------------------------- cuBLASLt */
struct cu_emu_lt { int unused; };
struct cu_emu_lt_desc { cublasComputeType_t ct; int ta, tb; uint32_t epi; const void *bias; };
struct cu_emu_lt_layout { cudaDataType t; uint64_t rows, cols; int64_t ld; };
struct cu_emu_lt_pref { uint64_t ws; uint32_t align[4]; };   /* A B C D, bytes (cuBLASLt's default 256) */
cublasStatus_t cublasLtCreate(cublasLtHandle_t *h) { *h = new cu_emu_lt(); return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtDestroy(cublasLtHandle_t h) { delete h; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *d, cublasComputeType_t ct, cudaDataType_t scale) {
    if (scale != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    *d = new cu_emu_lt_desc{ ct, CUBLAS_OP_N, CUBLAS_OP_N, CUBLASLT_EPILOGUE_DEFAULT, NULL };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t d) { delete d; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t a, const void *buf,
                                              size_t n) {
    switch (a) {   /* the real sizes: int32_t, int32_t, uint32_t, a pointer */
    case CUBLASLT_MATMUL_DESC_TRANSA: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; d->ta = *(const int32_t *)buf; break;
    case CUBLASLT_MATMUL_DESC_TRANSB: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; d->tb = *(const int32_t *)buf; break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: if (n != 4) return CUBLAS_STATUS_INVALID_VALUE; d->epi = *(const uint32_t *)buf; break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (n != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        d->bias = *(const void *const *)buf;
        break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *l, cudaDataType t, uint64_t rows, uint64_t cols,
                                          int64_t ld) {
    if (ld < (int64_t)rows || ld < 1) return CUBLAS_STATUS_INVALID_VALUE;
    *l = new cu_emu_lt_layout{ t, rows, cols, ld };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l) { delete l; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p) {
    *p = new cu_emu_lt_pref{ 0, { 256, 256, 256, 256 } };
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p) { delete p; return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p,
                                                    cublasLtMatmulPreferenceAttributes_t a, const void *buf, size_t n) {
    if (a == CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) {
        if (n != 8) return CUBLAS_STATUS_INVALID_VALUE;
        p->ws = *(const uint64_t *)buf;
        return CUBLAS_STATUS_SUCCESS;
    }
    if (a < CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES || a > CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES || n != 4)
        return CUBLAS_STATUS_INVALID_VALUE;
    p->align[a - CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES] = *(const uint32_t *)buf;
    return CUBLAS_STATUS_SUCCESS;
}
static uint32_t align_of(const void *p) {   /* capped at 256 before narrowing, as gemm.cu's */
    uintptr_t a = (uintptr_t)p, al = a & (~a + 1);
    return !a || al >= 256u ? 256u : (uint32_t)al;
}
/* the algorithm remembers the alignments it may assume (data[0..3]) and the bias alignment (data[4]) */
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t a,
                                              cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c,
                                              cublasLtMatrixLayout_t d, cublasLtMatmulPreference_t pref, int want,
                                              cublasLtMatmulHeuristicResult_t *res, int *got) {
    if (want < 1) return CUBLAS_STATUS_INVALID_VALUE;
    *got = 0;
    const char *none = getenv("DLLM_CU_EMU_LT_NONE");   /* no algorithm for anything: gemm.cu's fallback path */
    if (none && *none == '1') return CUBLAS_STATUS_SUCCESS;
    if (op->ct != CUBLAS_COMPUTE_32F || a->t != b->t || c->t != d->t || c->rows != d->rows || c->cols != d->cols)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (op->epi != CUBLASLT_EPILOGUE_DEFAULT && op->epi != CUBLASLT_EPILOGUE_BIAS) return CUBLAS_STATUS_NOT_SUPPORTED;
    memset(res, 0, sizeof *res);
    for (int i = 0; i < 4; i++) res->algo.data[i] = pref->align[i];
    res->algo.data[4] = op->epi == CUBLASLT_EPILOGUE_BIAS ? align_of(op->bias) : 0;
    res->state = CUBLAS_STATUS_SUCCESS;
    *got = 1;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t op, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t a, const void *B, cublasLtMatrixLayout_t b, const void *beta,
                              const void *C, cublasLtMatrixLayout_t c, void *D, cublasLtMatrixLayout_t d,
                              const cublasLtMatmulAlgo_t *algo, void *, size_t, cudaStream_t) {
    if (!algo || C != D || c->t != d->t || c->ld != d->ld) return CUBLAS_STATUS_INVALID_VALUE;
    const void *ptr[4] = { A, B, C, D };
    for (int i = 0; i < 4; i++)
        if (align_of(ptr[i]) < algo->data[i]) return CUBLAS_STATUS_INVALID_VALUE;   /* less aligned than planned */
    int bias = op->epi == CUBLASLT_EPILOGUE_BIAS;
    if (bias && (!op->bias || align_of(op->bias) < algo->data[4])) return CUBLAS_STATUS_INVALID_VALUE;
    int m = (int)d->rows, n = (int)d->cols, k = (int)(op->ta == CUBLAS_OP_N ? a->cols : a->rows);
    if ((op->ta == CUBLAS_OP_N ? a->rows : a->cols) != (uint64_t)m || (op->tb == CUBLAS_OP_N ? b->rows : b->cols) != (uint64_t)k ||
        (op->tb == CUBLAS_OP_N ? b->cols : b->rows) != (uint64_t)n)
        return CUBLAS_STATUS_INVALID_VALUE;
    return gemm((cublasOperation_t)op->ta, (cublasOperation_t)op->tb, m, n, k, alpha, A, a->t, (int)a->ld, B, b->t,
                (int)b->ld, beta, D, d->t, (int)d->ld, op->ct, bias ? op->bias : NULL);
}
