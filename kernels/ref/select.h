/* kernels/ref/select.h — the plain reference of dl_k_select_tokens
 * (kernels/ref/select.c), for tests: same arguments, same results bit for
 * bit, no threads, no device (every pointer is host memory).
 */
#ifndef DL_KERNELS_REF_SELECT_H
#define DL_KERNELS_REF_SELECT_H
#include "kernels.h"

int ref_select_tokens(dl_dev *d, const dl_select_args *a);

#endif
