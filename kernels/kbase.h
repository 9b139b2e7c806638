/* kernels/kbase.h — the few basics every backend under kernels/ shares:
 * error codes, an always-on assertion, the err-buffer helper, bf16 <-> f32.
 *
 * kernels/ depends on nothing in share/ (it is the bottom layer), so these
 * are its own copies.  The error numbers are the SAME as share's DL_EXIT_*
 * where they overlap (dl_base.h: 2 usage, 3 io, 4 device), so a negative
 * code from dl_dev_open can be returned by a program unchanged.
 * Does not: logging, printing on success, exiting (only DL_K_ASSERT aborts,
 * and only on a bug in the caller, never on input data).
 */
#ifndef DL_KBASE_H
#define DL_KBASE_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { DL_K_EUSAGE = 2, DL_K_EIO = 3, DL_K_EDEVICE = 4 };   /* == DL_EXIT_USAGE / _IO / _DEVICE */

/* printf into err (errlen may be 0); returns `code` */
int dl_k_seterr(char *err, size_t errlen, int code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Internal invariant (bad shapes from the caller: a bug): prints and aborts. */
#define DL_K_ASSERT(c) ((c) ? (void)0 : dl_k_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void dl_k_assert_fail(const char *expr, const char *file, int line);

/* A library the backends open at run time instead of linking (start-up
 * cost: kernels/cpu/openblas.c, kernels/cuda/cuda.h).  dl_k_dlopen opens
 * the first of names[0 .. n_names) that loads (dlopen `flags`, plus
 * RTLD_LOCAL) and fills *want[i].slot = dlsym(lib, want[i].sym).  Returns
 * the handle, or NULL with every slot zeroed and why set: the FIRST name's
 * dlopen error when none loads (the fallbacks are usually absent and say
 * less), or "NAME has no SYM". */
typedef struct { void **slot; const char *sym; } dl_k_sym;
void *dl_k_dlopen(const char *const *names, int n_names, int flags, const dl_k_sym *want, int n_want, char *why,
                  size_t whylen);

/* bf16 = the top 16 bits of an IEEE float32.  Load is exact; store rounds
 * to nearest, ties to even; NaN stays NaN (quiet bit forced), inf stays inf. */
static inline float dl_bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline uint16_t dl_f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);   /* NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

#endif
