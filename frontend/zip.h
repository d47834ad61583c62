/* frontend/zip.h -- read-only view of a ZIP archive held in memory.
 *
 * Takes a buffer (mmap'd file or fuzzer input); produces the list of entries
 * from the central directory (zip64 records understood).  Only stored
 * (method 0) entries can be read; every read verifies the entry's CRC-32.
 * Owns only the entry table; entry data point into the caller's buffer.
 */
#ifndef MC_ZIP_H
#define MC_ZIP_H
#include <stddef.h>
#include <stdint.h>
#include "../ir/diag.h"
#include "../ir/graph.h"
#include "weights.h"
#include "../runtime/mc_npy.h" /* mc_crc32 */

typedef struct ZipEntry {
    char *name;          /* malloc'd, NUL-terminated */
    uint64_t off;        /* offset of the local header */
    uint64_t data_off;   /* offset of the data (after the local header) */
    uint64_t csize, usize;
    uint32_t crc;
    uint16_t method;
    int checked;         /* CRC already verified */
} ZipEntry;

typedef struct ZipArchive {
    const uint8_t *buf;
    size_t len;
    ZipEntry *e;
    int n;
    const char *name;    /* file name for messages (not owned) */
} ZipArchive;

/* Parses the central directory. -1 with err ("NAME: ...") on bad input. */
int mc_zip_open(ZipArchive *z, const uint8_t *buf, size_t len, const char *name, McErr *err);
void mc_zip_close(ZipArchive *z);
ZipEntry *mc_zip_find(const ZipArchive *z, const char *name);
/* Data of a stored entry after bounds and CRC checks. */
int mc_zip_data(ZipArchive *z, ZipEntry *e, const uint8_t **data, size_t *len, McErr *err);

/* Maps a whole file read-only (for all the checkpoint readers).  -1 with
 * err naming the file when it cannot be opened or is empty. */
int mc_file_map(const char *path, const uint8_t **buf, size_t *len, McErr *err);
void mc_file_unmap(const uint8_t *buf, size_t len);

/* Shared by the checkpoint readers (implemented in weights.c): gathers the
 * strided view (element offset, shape, element strides, all already bounds
 * checked) of little-endian data of file type dt into a new contiguous
 * buffer of the store's type (f32 for every float type, else unchanged).
 * Returns malloc'd data (nbytes set) or NULL when out of memory. */
void *mc_weights_gather(DType dt, const uint8_t *src, int64_t offset, const Shape *shape,
                        const int64_t *stride, size_t *nbytes);
/* Store type for a file type: DT_F32 for floats, else dt. */
DType mc_weights_store_type(DType dt);
/* mc_weights_append, mc_weights_skip, mc_weights_truncate: ir/weights.h */

#endif
