/* runtime/mc_file.h -- reading a user's file safely, and the checked size
 * arithmetic and message escaping that every reader shares.
 *
 * mc_file_open() is the one way a reader (the .npy reader here; the
 * compiler's YAML, IR and checkpoint readers) opens a file named by the
 * user: it opens without blocking, refuses anything but a regular file (a
 * FIFO, a device, a directory, a socket) before a single byte is read, and
 * refuses files above the reader's size cap.  mc_mul_u64/mc_add_u64 and
 * mc_dims_numel() are the overflow-checked size arithmetic of every reader.
 * mc_str_escape() makes a name or string taken from a user's file safe to
 * print (control characters, C1 codes and invalid UTF-8 become \xNN).
 * mc_hash_bytes() is the hash of the readers' tables.
 *
 * Part of the runtime (standard C and POSIX only): implemented in npy.c,
 * which every artifact compiles, so artifacts need no other file.
 */
#ifndef MC_FILE_H
#define MC_FILE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Opens path read-only.  what names the kind of file in messages ("config",
 * ".npy input"); max_bytes is the size cap (0: none).  Returns a blocking
 * file descriptor and sets *size, or returns -1 with one line in msg:
 * "PATH: not a regular file (a FIFO)", "PATH: cannot open:
 * <reason>", "PATH: the file is N bytes, more than the 64 MiB limit
 * for a config". */
int mc_file_open(const char *path, const char *what, uint64_t max_bytes, uint64_t *size,
                 char *msg, size_t msglen);

/* Reads exactly n bytes at offset off.  0, or -1 (errno set; EIO when the
 * file ended early). */
int mc_file_read_at(int fd, void *buf, size_t n, uint64_t off);

/* mc_file_open + the whole file into a malloc'd buffer with a NUL after the
 * data (*len excludes it).  NULL with msg on error. */
char *mc_file_read_all(const char *path, const char *what, uint64_t max_bytes, size_t *len,
                       char *msg, size_t msglen);

/* Writes s[0..len) into out (outlen >= 8) for a message: printable ASCII
 * and valid UTF-8 as is, every other byte (C0/C1 controls, DEL, invalid or
 * overlong UTF-8) as \xNN; when it does not fit, as much as fits then
 * "...".  Returns out. */
const char *mc_str_escape(char *out, size_t outlen, const char *s, size_t len);
/* The same for a NUL-terminated s into a char array buf. */
#define MC_ESC(buf, s) mc_str_escape((buf), sizeof(buf), (s), strlen(s))

/* Checked arithmetic: 0 and *r = a*b (a+b), or -1 when it overflows. */
static inline int
mc_mul_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return __builtin_mul_overflow(a, b, r) ? -1 : 0;
}

static inline int
mc_add_u64(uint64_t a, uint64_t b, uint64_t *r)
{
    return __builtin_add_overflow(a, b, r) ? -1 : 0;
}

/* A tensor shape read from a file: every dim >= 0 and the product of the
 * dims, each counted as at least 1, times es below 2^63, so that element
 * counts, byte sizes and row-major strides of the shape never overflow in
 * any order (a zero-size dim does not excuse [0, 2^62, 2^62]).  Sets the
 * element count and the byte size; -1 when the shape is not acceptable. */
static inline int
mc_dims_numel(const int64_t *d, int rank, uint64_t es, uint64_t *numel, uint64_t *bytes)
{
    uint64_t n = 1, extent = es ? es : 1;
    for (int i = 0; i < rank; i++) {
        if (d[i] < 0 || mc_mul_u64(extent, d[i] ? (uint64_t)d[i] : 1, &extent) || extent > (uint64_t)INT64_MAX)
            return -1;
        n *= (uint64_t)d[i]; /* <= extent: cannot overflow */
    }
    *numel = n;
    *bytes = n * es;
    return 0;
}

/* The readers' string hash (their tables: YAML anchors and keys, tensor
 * names): FNV-1a, then a final mix so that the low bits used as a table
 * index depend on every byte. */
static inline uint64_t
mc_hash_bytes(const void *p, size_t n)
{
    const uint8_t *s = (const uint8_t *)p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ s[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

/* Formats a message into msg (when msg and n) and returns -1: the error
 * return of the runtime's readers and writers (npy.c, out.c). */
int mc_file_fail(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
