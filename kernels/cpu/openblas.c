/* kernels/cpu/openblas.c — OpenBLAS, opened with dlopen when a CPU device
 * opens (not linked).
 *
 * Why: a linked OpenBLAS costs every process about 2.7 ms before main()
 * (relocating libopenblas + libgfortran, starting its thread pool), on
 * 2-core x86 with OpenBLAS 0.3.21: `dllm-sample --help` 4.7 ms linked,
 * 2.0 ms without.  The programs re-execute themselves once at start to set
 * libgomp's spin count (share/io/dl_omp_env.c), so a linked library was
 * paid twice, and short runs (a 60 ms AR sample) lost 6% (issue 15).
 * Opened here, it is loaded once, after the re-exec, by the processes that
 * open a CPU device.
 *
 * The library's name comes from DLLM_OPENBLAS when set (a path or a name:
 * another OpenBLAS build, say; no fallback then), else from the build
 * (DL_OPENBLAS_SONAME, the soname -lopenblas resolved to at build time),
 * with "libopenblas.so" as the fallback.
 * When neither opens, the backend runs the plain-C GEMM and says why in the
 * device's description and in dl_k_openblas_missing (the programs warn).
 * Not here: how GEMMs use it (gemm.c), threads (backend.c).
 */
#ifdef DL_HAVE_OPENBLAS
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>
#include "cpu.h"

#ifndef DL_OPENBLAS_SONAME
#define DL_OPENBLAS_SONAME "libopenblas.so.0"
#endif

cpu_openblas_api cpu_openblas;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc = -1;
static char load_why[256];

static void load(void) {
    const char *named = getenv("DLLM_OPENBLAS");
    int own = named && *named;
    /* the user's choice has no fallback; the build's soname falls back to
     * the unversioned name */
    const char *names[] = { own ? named : DL_OPENBLAS_SONAME, "libopenblas.so" };
    const dl_k_sym want[] = {
        { (void **)&cpu_openblas.sgemm, "cblas_sgemm" },
        { (void **)&cpu_openblas.set_num_threads, "openblas_set_num_threads" },
        { (void **)&cpu_openblas.get_config, "openblas_get_config" },
        { (void **)&cpu_openblas.get_corename, "openblas_get_corename" },
    };
    /* never closed: its thread pool and buffers live until exit */
    if (!dl_k_dlopen(names, own ? 1 : 2, RTLD_LAZY, want, (int)(sizeof want / sizeof *want), load_why, sizeof load_why))
        return;
    /* one thread: our pool owns the cores (backend.c, pool.c) */
    cpu_openblas.set_num_threads(1);
    load_rc = 0;
}

int cpu_openblas_load(const char **why) {
    pthread_once(&load_once, load);
    *why = load_rc ? load_why : "";
    return load_rc;
}

const char *dl_k_openblas_missing(void) {
    const char *why;
    return cpu_openblas_load(&why) ? why : NULL;
}
#else
#include "cpu.h"
const char *dl_k_openblas_missing(void) { return NULL; }
#endif
