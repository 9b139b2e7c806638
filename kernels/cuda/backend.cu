/* kernels/cuda/backend.cu — the CUDA backend (DL_DEV_CUDA): open / close,
 * supports(), device memory on one stream, and the ops table.
 * Memory: cudaMalloc (256-byte aligned, zero-filled on the stream);
 * h2d / d2h are synchronous with respect to the stream (d2h returns with
 * the data on the host), d2d is asynchronous.
 * supports(): every op in F32 and BF16 storage with wdt == dt (no mixed
 * f32-activation x bf16-weight GEMM), the fp32-only ops
 * in F32 (select_tokens too: its logits are f32).  An op that is not
 * done answers 0 here, and the model then refuses the device at init
 * rather than ever giving a wrong answer.
 * Does not: multi-GPU, memory pools, CUDA graphs.
 */
#include <dlfcn.h>
#include "cuda.h"

#ifndef DL_CUDA_LIBDIR
#define DL_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

cu_cublas_api cu_blas;
cu_cublaslt_api cu_lt;

int cu_cublas_load(char *why, size_t n) {
#ifdef DL_CU_EMU   /* tests/cuda/emu: its GemmEx and cuBLASLt on the CPU */
    (void)why; (void)n;
    cu_blas = { cublasCreate_v2, cublasDestroy_v2, cublasSetStream_v2, cublasSetMathMode, cublasGemmEx };
    cu_lt = { cublasLtCreate, cublasLtDestroy, cublasLtMatmulDescCreate, cublasLtMatmulDescDestroy,
              cublasLtMatmulDescSetAttribute, cublasLtMatrixLayoutCreate, cublasLtMatrixLayoutDestroy,
              cublasLtMatmulPreferenceCreate, cublasLtMatmulPreferenceDestroy, cublasLtMatmulPreferenceSetAttribute,
              cublasLtMatmulAlgoGetHeuristic, cublasLtMatmul };
    return 0;
#endif
    static void *lib, *liblt;   /* loaded once per process, never closed (cuBLAS keeps state in them) */
    if (lib && liblt) return 0;
    char name[64], path[512], ltname[64], ltpath[512];
    snprintf(name, sizeof name, "libcublas.so.%d", CUBLAS_VER_MAJOR);
    snprintf(path, sizeof path, "%s/%s", DL_CUDA_LIBDIR, name);
    snprintf(ltname, sizeof ltname, "libcublasLt.so.%d", CUBLAS_VER_MAJOR);
    snprintf(ltpath, sizeof ltpath, "%s/%s", DL_CUDA_LIBDIR, ltname);
    const char *names[] = { name, path }, *ltnames[] = { ltname, ltpath };
    const dl_k_sym want[] = {
        { (void **)&cu_blas.create, "cublasCreate_v2" },   { (void **)&cu_blas.destroy, "cublasDestroy_v2" },
        { (void **)&cu_blas.set_stream, "cublasSetStream_v2" }, { (void **)&cu_blas.set_math_mode, "cublasSetMathMode" },
        { (void **)&cu_blas.gemm_ex, "cublasGemmEx" },
    };
    const dl_k_sym want_lt[] = {
        { (void **)&cu_lt.create, "cublasLtCreate" }, { (void **)&cu_lt.destroy, "cublasLtDestroy" },
        { (void **)&cu_lt.desc_create, "cublasLtMatmulDescCreate" },
        { (void **)&cu_lt.desc_destroy, "cublasLtMatmulDescDestroy" },
        { (void **)&cu_lt.desc_set, "cublasLtMatmulDescSetAttribute" },
        { (void **)&cu_lt.layout_create, "cublasLtMatrixLayoutCreate" },
        { (void **)&cu_lt.layout_destroy, "cublasLtMatrixLayoutDestroy" },
        { (void **)&cu_lt.pref_create, "cublasLtMatmulPreferenceCreate" },
        { (void **)&cu_lt.pref_destroy, "cublasLtMatmulPreferenceDestroy" },
        { (void **)&cu_lt.pref_set, "cublasLtMatmulPreferenceSetAttribute" },
        { (void **)&cu_lt.heuristic, "cublasLtMatmulAlgoGetHeuristic" }, { (void **)&cu_lt.matmul, "cublasLtMatmul" },
    };
    /* libcublasLt first: libcublas needs it, and the run path finds both beside each other */
    if (!liblt) liblt = dl_k_dlopen(ltnames, 2, RTLD_NOW, want_lt, (int)(sizeof want_lt / sizeof *want_lt),
                                    why, n);
    if (!liblt) return -1;
    if (!lib) lib = dl_k_dlopen(names, 2, RTLD_NOW, want, (int)(sizeof want / sizeof *want), why, n);
    return lib ? 0 : -1;
}

extern "C" int dl_backend_cuda_open(dl_dev *d, int index, char *err, size_t errlen) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || n == 0) {
        cudaGetLastError();   /* clear the sticky "no device" error */
        return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "no CUDA device visible (%s)",
                           e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    }
    if (index < 0 || index >= n)
        return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "CUDA device %d does not exist (%d visible)", index, n);
    cuda_state *st = (cuda_state *)calloc(1, sizeof *st);
    if (!st) return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "out of memory");
    st->device = index;
    cudaDeviceProp prop;
    if ((e = cudaSetDevice(index)) != cudaSuccess || (e = cudaGetDeviceProperties(&prop, index)) != cudaSuccess ||
        (e = cudaStreamCreateWithFlags(&st->s, cudaStreamNonBlocking)) != cudaSuccess ||
        (e = cudaMalloc((void **)&st->red, sizeof(double) * (CU_RED_BLOCKS + 1))) != cudaSuccess ||
        (e = cudaMallocHost((void **)&st->red_host, sizeof(double))) != cudaSuccess) {
        if (st->red) cudaFree(st->red);
        if (st->s) cudaStreamDestroy(st->s);
        free(st);
        return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "CUDA device %d: %s", index, cudaGetErrorString(e));
    }
    char why[256];
    if (cu_cublas_load(why, sizeof why)) {
        cudaFreeHost(st->red_host); cudaFree(st->red); cudaStreamDestroy(st->s); free(st);
        return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "CUDA device %d: cannot load cuBLAS (%s)", index, why);
    }
    if (cu_blas.create(&st->blas) != CUBLAS_STATUS_SUCCESS ||
        cu_blas.set_stream(st->blas, st->s) != CUBLAS_STATUS_SUCCESS || cu_gemm_open(st)) {
        if (st->blas) cu_blas.destroy(st->blas);
        cudaFreeHost(st->red_host); cudaFree(st->red); cudaStreamDestroy(st->s); free(st);
        return dl_k_seterr(err, errlen, -DL_K_EDEVICE, "CUDA device %d: cuBLAS could not start", index);
    }
    /* cuBLASLt, or (it does not start, or no room for its workspace) every GEMM through cublasGemmEx */
    if (cu_lt.create(&st->lt) != CUBLAS_STATUS_SUCCESS) st->lt = NULL;
    else if (cudaMalloc(&st->lt_ws, CU_LT_WS) != cudaSuccess) {
        cudaGetLastError();
        st->lt_ws = NULL;
    }
    /* pure fp32 GEMMs for f32 storage (no TF32): f32 results stay within the
     * reference's float tolerances */
    CUBLAS_CHECK(cu_blas.set_math_mode(st->blas, CUBLAS_DEFAULT_MATH));
    st->cc = 10 * prop.major + prop.minor;
    st->smem_optin = prop.sharedMemPerBlockOptin;
    const char *ak = getenv("DLLM_CUDA_ATTN");
    st->attn_fma = ak && !strcmp(ak, "fma");
    const char *gk = getenv("DLLM_CUDA_GEMM");
    st->gemm_ex = (gk && !strcmp(gk, "ex")) || !st->lt || !st->lt_ws;
    d->be = st;
    d->threads = 1;
    snprintf(d->desc, sizeof d->desc, "cuda:%d (%.96s, sm_%d%d, %.0f GiB)", index, prop.name, prop.major, prop.minor,
             prop.totalGlobalMem / 1073741824.0);
    return 0;
}

void *cu_scratch(dl_dev *d, size_t bytes) {
    cuda_state *st = cu_state(d);
    if (bytes <= st->scratch_bytes) return st->scratch;
    CUDA_CHECK(cudaStreamSynchronize(st->s));   /* queued work may still read the old buffer */
    if (st->scratch) CUDA_CHECK(cudaFree(st->scratch));
    st->scratch = NULL;
    st->scratch_bytes = 0;
    size_t want = bytes + bytes / 4;   /* room for a little growth */
    if (cudaMalloc(&st->scratch, want) != cudaSuccess) { cudaGetLastError(); st->scratch = NULL; return NULL; }
    st->scratch_bytes = want;
    return st->scratch;
}

static void cu_close(dl_dev *d) {
    cuda_state *st = cu_state(d);
    if (!st) return;
    cudaStreamSynchronize(st->s);
    if (st->scratch) cudaFree(st->scratch);
    cu_gemm_close(st);
    if (st->lt_ws) cudaFree(st->lt_ws);
    if (st->lt) cu_lt.destroy(st->lt);
    cu_blas.destroy(st->blas);
    cudaFreeHost(st->red_host);
    cudaFree(st->red);
    cudaStreamDestroy(st->s);
    free(st);
    d->be = NULL;
}

static int cu_supports(const dl_dev *d, dl_op op, dl_dtype dt, dl_dtype wdt) {
    (void)d;
    if (wdt != dt) return 0;
    if (op == DL_OP_SUMSQ || op == DL_OP_GRAD_CLIP || op == DL_OP_SELECT_TOKENS || op == DL_OP_ADAMW || op == DL_OP_SCALE) return dt == DL_F32;
    return dt == DL_F32 || dt == DL_BF16;
}

static void *cu_alloc(dl_dev *d, size_t bytes) {
    void *p = NULL;
    if (cudaMalloc(&p, bytes ? bytes : 256) != cudaSuccess) { cudaGetLastError(); return NULL; }
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes ? bytes : 256, cu_stream(d)));
    return p;
}
static void cu_free(dl_dev *d, void *p) {
    if (!p) return;
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(d)));   /* nothing queued may still use it */
    CUDA_CHECK(cudaFree(p));
}
static void cu_memset0(dl_dev *d, void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cu_stream(d)));
}
static void cu_h2d(dl_dev *d, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, cu_stream(d)));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(d)));   /* the caller may reuse src at once */
}
static void cu_d2h(dl_dev *d, void *dst, const void *src, size_t bytes) {
    if (!bytes) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cu_stream(d)));
    CUDA_CHECK(cudaStreamSynchronize(cu_stream(d)));
}
/* may overlap (kernels.h): cudaMemcpy is undefined on overlap, so go
 * through a temporary when the ranges do */
static void cu_d2d(dl_dev *d, void *dst, const void *src, size_t bytes) {
    if (!bytes || dst == src) return;
    const char *a = (const char *)dst, *b = (const char *)src;
    if (a < b + bytes && b < a + bytes) {
        void *tmp = cu_scratch(d, bytes);
        if (!tmp) { fprintf(stderr, "dllm: CUDA: no memory for an overlapping copy of %zu bytes\n", bytes); abort(); }
        CUDA_CHECK(cudaMemcpyAsync(tmp, src, bytes, cudaMemcpyDeviceToDevice, cu_stream(d)));
        CUDA_CHECK(cudaMemcpyAsync(dst, tmp, bytes, cudaMemcpyDeviceToDevice, cu_stream(d)));
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, cu_stream(d)));
}
static void cu_sync(dl_dev *d) { CUDA_CHECK(cudaStreamSynchronize(cu_stream(d))); }

static dl_backend_ops make_ops(void) {
    dl_backend_ops o;
    memset(&o, 0, sizeof o);
    o.name = "cuda"; o.close = cu_close; o.supports = cu_supports;
    o.alloc = cu_alloc; o.free = cu_free; o.memset0 = cu_memset0; o.h2d = cu_h2d; o.d2h = cu_d2h; o.d2d = cu_d2d;
    o.sync = cu_sync;
    o.embedding_fwd = cu_embedding_fwd; o.embedding_bwd = cu_embedding_bwd;
    o.rmsnorm_fwd = cu_rmsnorm_fwd; o.rmsnorm_bwd = cu_rmsnorm_bwd; o.add_rmsnorm_fwd = cu_add_rmsnorm_fwd;
    o.linear_fwd = cu_linear_fwd; o.linear_fwd_split = NULL; o.linear_bwd = cu_linear_bwd; o.rope = cu_rope;
    o.attention_fwd = cu_attention_fwd; o.attention_bwd = cu_attention_bwd;
    o.attention_bwd_scratch_bytes = cu_attention_bwd_scratch_bytes;
    o.attention_kv_fwd = cu_attention_kv_fwd; o.attention_cached_fwd = cu_attention_cached_fwd;
    o.swiglu_fwd = cu_swiglu_fwd; o.swiglu_bwd = cu_swiglu_bwd; o.add = cu_add; o.add_inplace = cu_add_inplace;
    o.gather_rows = cu_gather_rows; o.scatter_add_rows = cu_scatter_add_rows; o.copy_2d = cu_copy_2d;
    o.convert = cu_convert; o.xent_fwd = cu_xent_fwd; o.xent_bwd = cu_xent_bwd;
    o.xent_chunk_fwd = cu_xent_chunk_fwd; o.xent_chunk_bwd = cu_xent_chunk_bwd; o.sumsq = cu_sumsq;
    o.grad_clip = cu_grad_clip;    o.adamw = cu_adamw; o.scale = cu_scale; o.select_tokens = cu_select_tokens;
    return o;
}
/* C++ dynamic initialisation: the table is complete before main() */
extern "C" const dl_backend_ops dl_backend_cuda_ops = make_ops();
