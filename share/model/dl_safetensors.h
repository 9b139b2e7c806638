/* dl_safetensors.h — read and write the safetensors format
 * (8-byte LE header length, JSON header {name: {dtype, shape, data_offsets}},
 * optional "__metadata__", then the raw little-endian data).
 *
 * The reader validates before trusting: the header length must fit in the
 * file and be < 100 MB; the JSON must parse; every tensor's dtype must be
 * known, its byte length must equal prod(shape) * dtype size, its offsets
 * must lie inside the data section, tensors must not overlap, and the data
 * section must be fully covered (as the reference implementation requires).
 * Anything else is a data error naming the file and tensor.
 * The writer writes to a temporary name and renames (dl_out).
 */
#ifndef DL_SAFETENSORS_H
#define DL_SAFETENSORS_H
#include <stddef.h>
#include <stdint.h>
#include "dl_base.h"

typedef enum { DL_ST_F32, DL_ST_F16, DL_ST_BF16, DL_ST_I32, DL_ST_I64, DL_ST_U8 } dl_st_dtype;

typedef struct {
    char *name;
    dl_st_dtype dtype;
    int ndim;
    int64_t shape[8];
    uint64_t begin, end;      /* byte offsets inside the data section */
} dl_st_tensor;

typedef struct {
    char *path;
    uint8_t *map; size_t size;   /* the whole file (mmap) */
    const uint8_t *data;         /* data section */
    dl_st_tensor *t; int n;
    char *metadata_json;         /* "__metadata__" as JSON text or NULL */
} dl_st_file;

int dl_st_open(dl_st_file *f, const char *path, char *err, size_t errlen);
void dl_st_close(dl_st_file *f);
const dl_st_tensor *dl_st_find(const dl_st_file *f, const char *name);
/* The tensor's raw little-endian bytes inside the read-only map (t->end -
 * t->begin of them; any alignment): weights are handed out from the map,
 * never read into a heap copy of the file. */
const void *dl_st_data(const dl_st_file *f, const dl_st_tensor *t);
/* Done with t's bytes: drop the whole pages inside them from this process
 * (madvise MADV_DONTNEED; the file's page cache stays), so loading a model
 * tensor by tensor keeps the resident map near one tensor.  Reading t again
 * afterwards is still valid (the pages fault back in). */
void dl_st_release(const dl_st_file *f, const dl_st_tensor *t);
/* Convert a tensor to float32 into dst (n floats, must equal its element
 * count; f32/f16/bf16 accepted). */
int dl_st_read_f32(const dl_st_file *f, const dl_st_tensor *t, float *dst, size_t n, char *err, size_t errlen);

/* Writer: add tensors (host float32 data, stored as dtype F32, BF16 or F16
 * with round-to-nearest-even), then finish.  Each add converts and spools its
 * data at once (the caller's buffer may be reused); close writes the file
 * (temp + rename); on any error call abort (close frees in every case). */
typedef struct dl_st_writer dl_st_writer;
int dl_st_writer_open(dl_st_writer **w, const char *path, char *err, size_t errlen);
int dl_st_writer_add(dl_st_writer *w, const char *name, dl_st_dtype dtype, int ndim, const int64_t *shape,
                     const float *data, char *err, size_t errlen);
int dl_st_writer_set_metadata(dl_st_writer *w, const char *key, const char *value);
int dl_st_writer_close(dl_st_writer *w, char *err, size_t errlen);   /* writes, renames, frees */
void dl_st_writer_abort(dl_st_writer *w);

float dl_bf16_to_f32(uint16_t h);
uint16_t dl_f32_to_bf16(float f);        /* round to nearest even, NaN kept */
float dl_f16_to_f32(uint16_t h);
uint16_t dl_f32_to_f16(float f);         /* round to nearest even, overflow -> inf, NaN kept */

const char *dl_st_dtype_name(dl_st_dtype d);   /* "F32", "BF16", ... */
int dl_st_dtype_size(dl_st_dtype d);            /* bytes per element */
int64_t dl_st_numel(const dl_st_tensor *t);     /* prod(shape), 1 for a scalar */

#endif
