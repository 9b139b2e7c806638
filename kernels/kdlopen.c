/* kernels/kdlopen.c — kbase.h's dl_k_dlopen: one library of entry points,
 * opened at run time (OpenBLAS for the CPU backend, cuBLAS for CUDA).
 * Does not: close what it opened (the callers keep their library for the
 * process's life), or search paths of its own (the callers list them).
 */
#include <dlfcn.h>
#include <stdio.h>
#include "kbase.h"

void *dl_k_dlopen(const char *const *names, int n_names, int flags, const dl_k_sym *want, int n_want, char *why,
                  size_t whylen) {
    void *h = NULL;
    int used = -1;
    for (int i = 0; i < n_names && !h; i++) {
        h = dlopen(names[i], flags | RTLD_LOCAL);
        if (h) used = i;
        else if (i == 0) {
            const char *e = dlerror();
            dl_k_seterr(why, whylen, 0, "%s", e ? e : names[0]);
        }
    }
    for (int i = 0; h && i < n_want; i++)
        if (!(*want[i].slot = dlsym(h, want[i].sym))) {
            dl_k_seterr(why, whylen, 0, "%s has no %s", names[used], want[i].sym);
            dlclose(h);
            h = NULL;
        }
    if (!h)
        for (int i = 0; i < n_want; i++) *want[i].slot = NULL;
    return h;
}
