/* runtime/mc_npy.h -- .npy read/write (NumPy format 1.0/2.0/3.0).
 * Part of the runtime: generated executables link it; no compiler types. */
#ifndef MC_NPY_H
#define MC_NPY_H
#include <stddef.h>
#include <stdint.h>
#include "mc_out.h"

#define MC_NPY_MAX_RANK 8
/* Longest header dict accepted (numpy writes < 200 bytes; its own reader
 * refuses > 10000 by default). */
#define MC_NPY_MAX_HEADER (1 << 20)
typedef enum { MC_NPY_F32 = 0, MC_NPY_F64, MC_NPY_I64, MC_NPY_I32, MC_NPY_U8, MC_NPY_OTHER } McNpyType;

typedef struct McNpy {
    McNpyType type;
    int rank;
    int64_t shape[MC_NPY_MAX_RANK];
    void *data;       /* malloc'd, contiguous C order, native little-endian */
    size_t nbytes;
} McNpy;

/* Reads a .npy. Accepts '<f4', '<f8', '<i8', '<i4', '|u1', C order only
 * (fortran_order True is converted or rejected with a message).  On error
 * returns -1 and writes a message (<= errlen bytes) naming the file.
 * mc_npy_read opens with mc_file_open (no FIFOs or devices) and reads the
 * header first: the data are read only when the file's size is exactly
 * what the header's shape and dtype need. */
int mc_npy_read(const char *path, McNpy *out, char *errmsg, size_t errlen);
int mc_npy_read_mem(const uint8_t *buf, size_t len, const char *name, McNpy *out,
                    char *errmsg, size_t errlen);
/* Writes float32 data as '<f4', atomically (mc_out.h): on error the message
 * is "cannot write PATH: <reason>" and an existing PATH is left as it was. */
int mc_npy_write_f32(const char *path, const float *data, int rank, const int64_t *shape,
                     char *errmsg, size_t errlen);
/* The same into an output opened with mc_out_open (so that a path that
 * cannot be written is refused before the work): commits it, or discards
 * it on error. */
int mc_npy_write_f32_out(McOut *o, const float *data, int rank, const int64_t *shape,
                         char *errmsg, size_t errlen);
void mc_npy_free(McNpy *a);

#endif
