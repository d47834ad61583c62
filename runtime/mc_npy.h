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
/* The class map of segmentation logits y [B, C, H, W] as an int32 ('<i4')
 * .npy [B, H, W] into o: each pixel's c of the largest y[b, c, h, w], the
 * first of equal ones; NaN loses to every number (class 0 when all are).
 * Commits o, or discards it on error (out of memory, a write). */
int mc_npy_write_argmax_out(McOut *o, const float *y, const int64_t *shape, char *errmsg, size_t errlen);
void mc_npy_free(McNpy *a);

/* .npz: several float32 arrays in one file, as numpy.savez writes it (an
 * uncompressed zip whose members are NAME.npy; numpy.load(PATH)[NAME]). */
#define MC_NPZ_MAX_ARRAYS 64
typedef struct McNpzArray {
    const char *name;        /* the array's name (mc_npz_member_name makes the member's) */
    const float *data;
    int rank;
    const int64_t *shape;
} McNpzArray;
/* Writes a[0..n) into an output opened with mc_out_open: commits it, or
 * discards it on error ("cannot write PATH: <reason>").  Distinct names:
 * check them with mc_npz_output_kind before the work. */
int mc_npz_write_f32_out(McOut *o, const McNpzArray *a, int n, char *errmsg, size_t errlen);
/* An .npz (npz != 0) or, for one array, a .npy. */
int mc_npy_write_arrays_out(McOut *o, int npz, const McNpzArray *a, int n, char *errmsg, size_t errlen);
/* What --output PATH gets for n outputs named names[] (before the work):
 * 1 an .npz (PATH ends in .npz), 0 a .npy (one output, any other name), or
 * -1 with the message: several outputs and not an .npz name, or two names
 * that make the same member. */
int mc_npz_output_kind(const char *path, int n, const char *const *names, char *errmsg, size_t errlen);
/* The name an array `name` gets in an .npz: characters outside
 * [A-Za-z0-9_.-] become '_', "" becomes "array" (at most n-1 bytes). */
void mc_npz_member_name(const char *name, char *buf, size_t n);
/* Sizes and offsets from this on are written with zip64 records (default
 * 2^32-1, as the format needs; tests lower it). */
extern uint64_t mc_npz_zip64_from;
/* CRC-32 of zip (also frontend/zip.c's check of torch.save archives). */
uint32_t mc_crc32(uint32_t crc, const uint8_t *p, size_t n);

#endif
