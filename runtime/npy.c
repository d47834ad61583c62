/* runtime/npy.c -- .npy read/write (see mc_npy.h).
 *
 * Takes .npy bytes (format 1.0/2.0/3.0); produces an McNpy whose data are
 * malloc'd, C order, native little-endian.  The header dict is parsed
 * strictly: exactly 'descr', 'fortran_order' and 'shape', each once.
 * Big-endian data of a supported type are byte-swapped; fortran_order True
 * is rejected.  Writes float32 arrays with a 1.0 header padded to 64 bytes,
 * alone (.npy) or several as the stored members NAME.npy of a zip (.npz,
 * what numpy.savez writes; zip64 records where sizes or offsets need them).
 * Part of the runtime: standard C only, nothing from the compiler.
 */
#include "mc_npy.h"
#include "mc_file.h"
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
mc_file_fail(char *msg, size_t n, const char *fmt, ...)
{
    if (msg && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* ------------------------------------------------------------ user files
 * (mc_file.h: shared with the compiler's readers) */

static const char *
file_kind(mode_t m)
{
    if (S_ISFIFO(m)) return "a FIFO";
    if (S_ISDIR(m)) return "a directory";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a plain file";
}

static void
size_fmt(uint64_t b, char *buf, size_t n)
{
    if (b >= (1u << 30) && b % (1u << 30) == 0)
        snprintf(buf, n, "%llu GiB", (unsigned long long)(b >> 30));
    else if (b >= (1u << 20) && b % (1u << 20) == 0)
        snprintf(buf, n, "%llu MiB", (unsigned long long)(b >> 20));
    else
        snprintf(buf, n, "%llu bytes", (unsigned long long)b);
}

int
mc_file_open(const char *path, const char *what, uint64_t max_bytes, uint64_t *size, char *msg,
             size_t msglen)
{
    /* O_NONBLOCK: opening a FIFO must not wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return mc_file_fail(msg, msglen, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return mc_file_fail(msg, msglen, "%s: cannot read: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return mc_file_fail(msg, msglen, "%s: not a regular file (%s); give the path of a %s", path,
                    file_kind(st.st_mode), what);
    }
    if (max_bytes && (uint64_t)st.st_size > max_bytes) {
        char lim[32];
        size_fmt(max_bytes, lim, sizeof lim);
        close(fd);
        return mc_file_fail(msg, msglen, "%s: the file is %llu bytes, more than the %s limit for a %s", path,
                    (unsigned long long)st.st_size, lim, what);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return mc_file_fail(msg, msglen, "%s: cannot read: %s", path, strerror(e));
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

int
mc_file_read_at(int fd, void *buf, size_t n, uint64_t off)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = pread(fd, p, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        p += r;
        off += (uint64_t)r;
        n -= (size_t)r;
    }
    return 0;
}

char *
mc_file_read_all(const char *path, const char *what, uint64_t max_bytes, size_t *len, char *msg,
                 size_t msglen)
{
    uint64_t size;
    int fd = mc_file_open(path, what, max_bytes, &size, msg, msglen);
    if (fd < 0)
        return NULL;
    char *buf = size < SIZE_MAX ? malloc((size_t)size + 1) : NULL;
    if (!buf) {
        close(fd);
        mc_file_fail(msg, msglen, "%s: out of memory for a %llu-byte file", path, (unsigned long long)size);
        return NULL;
    }
    if (mc_file_read_at(fd, buf, (size_t)size, 0)) {
        int e = errno;
        close(fd);
        free(buf);
        mc_file_fail(msg, msglen, "%s: cannot read: %s", path, e == EIO ? "the file shrank while read" : strerror(e));
        return NULL;
    }
    close(fd);
    buf[size] = 0;
    *len = (size_t)size;
    return buf;
}

/* Length of the valid UTF-8 sequence at s (2..4 bytes, no overlongs, no
 * surrogates, <= U+10FFFF, not a C1 control), or 0. */
static size_t
utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (!k || c > 0xF4 || n < k)
        return 0;
    for (size_t i = 1; i < k; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F) || (c == 0xC2 && s[1] < 0xA0))
        return 0;
    return k;
}

const char *
mc_str_escape(char *out, size_t outlen, const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t o = 0, i = 0;
    while (i < len) {
        size_t k = p[i] >= 0x20 && p[i] < 0x7f ? 1 : utf8_seq(p + i, len - i);
        size_t need = k ? k : 4;
        if (o + need + 4 > outlen) { /* room for "..." and the NUL */
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        if (k) {
            memcpy(out + o, p + i, k);
            o += k;
            i += k;
        } else {
            snprintf(out + o, 5, "\\x%02X", p[i++]);
            o += 4;
        }
    }
    out[o] = 0;
    return out;
}

typedef struct Hdr {
    const char *p, *end;
} Hdr;

static void
ws(Hdr *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t'))
        h->p++;
}

/* Python string literal '...' or "..." (no escapes needed in npy headers). */
static int
str_lit(Hdr *h, const char **s, size_t *n)
{
    if (h->p >= h->end || (*h->p != '\'' && *h->p != '"'))
        return -1;
    char q = *h->p++;
    const char *b = h->p;
    while (h->p < h->end && *h->p != q) {
        if (*h->p == '\\' || *h->p == '\n')
            return -1;
        h->p++;
    }
    if (h->p >= h->end)
        return -1;
    *s = b;
    *n = (size_t)(h->p - b);
    h->p++;
    return 0;
}

static int
word(Hdr *h, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(h->end - h->p) >= n && memcmp(h->p, w, n) == 0) {
        h->p += n;
        return 1;
    }
    return 0;
}

static int
shape_lit(Hdr *h, int *rank, int64_t *shape)
{
    if (h->p >= h->end || *h->p != '(')
        return -1;
    h->p++;
    int r = 0, need_comma_for_one = 1;
    for (;;) {
        ws(h);
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            break;
        }
        if (h->p >= h->end || *h->p < '0' || *h->p > '9')
            return -1;
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            if (v > (INT64_MAX - 9) / 10)
                return -2;
            v = v * 10 + (*h->p++ - '0');
        }
        if (h->p < h->end && *h->p == 'L') /* Python 2 long */
            h->p++;
        if (r == MC_NPY_MAX_RANK)
            return -3;
        shape[r++] = v;
        ws(h);
        if (h->p < h->end && *h->p == ',') {
            h->p++;
            if (r == 1)
                need_comma_for_one = 0;
            continue;
        }
        if (h->p < h->end && *h->p == ')') {
            h->p++;
            if (r == 1 && need_comma_for_one)
                return -1; /* "(5)" is not a tuple */
            break;
        }
        return -1;
    }
    *rank = r;
    return 0;
}

static void
bswap(uint8_t *p, size_t n, int es)
{
    for (size_t i = 0; i < n; i++, p += es)
        for (int a = 0, b = es - 1; a < b; a++, b--) {
            uint8_t t = p[a];
            p[a] = p[b];
            p[b] = t;
        }
}

typedef struct NpyHead {
    McNpyType type;
    int es, big, rank;
    int64_t shape[MC_NPY_MAX_RANK];
    uint64_t numel, nbytes;
} NpyHead;

/* The fixed prefix: magic, version and header length.  buf holds the
 * first len bytes of the file (len >= 12 or the whole file). */
static int
npy_prefix(const uint8_t *buf, size_t len, const char *name, size_t *off, size_t *hl, char *em, size_t el)
{
    if (memcmp(buf, "\x93NUMPY", len < 6 ? len : 6) != 0 || len == 0)
        return mc_file_fail(em, el, "%s: not a .npy file (no \\x93NUMPY magic)", name);
    if (len < 10)
        return mc_file_fail(em, el, "%s: truncated .npy file: the header is incomplete (%zu bytes)", name, len);
    int major = buf[6];
    if (major == 1) {
        *hl = (size_t)buf[8] | (size_t)buf[9] << 8;
        *off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return mc_file_fail(em, el, "%s: truncated .npy file: the header is incomplete (%zu bytes)", name, len);
        *hl = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        *off = 12;
    } else
        return mc_file_fail(em, el, "%s: unsupported .npy format version %d.%d", name, major, buf[7]);
    if (*hl > MC_NPY_MAX_HEADER)
        return mc_file_fail(em, el, "%s: .npy header of %zu bytes is longer than the %d-byte limit", name, *hl,
                    MC_NPY_MAX_HEADER);
    return 0;
}

/* The header dict (hl bytes at hp) into h. */
static int
npy_dict(const uint8_t *hp, size_t hl, const char *name, NpyHead *out, char *em, size_t el)
{
    Hdr h = {(const char *)hp, (const char *)hp + hl};
    const char *descr = NULL;
    size_t dlen = 0;
    int fortran = -1, rank = -1;
    int64_t shape[MC_NPY_MAX_RANK];
    char esc[96];
    ws(&h);
    if (!word(&h, "{"))
        return mc_file_fail(em, el, "%s: .npy header is not a dict", name);
    for (;;) {
        ws(&h);
        if (word(&h, "}"))
            break;
        const char *k;
        size_t kn;
        if (str_lit(&h, &k, &kn))
            return mc_file_fail(em, el, "%s: .npy header: expected a quoted key", name);
        ws(&h);
        if (!word(&h, ":"))
            return mc_file_fail(em, el, "%s: .npy header: expected ':'", name);
        ws(&h);
        if (kn == 5 && memcmp(k, "descr", 5) == 0 && !descr) {
            if (str_lit(&h, &descr, &dlen))
                return mc_file_fail(em, el, "%s: .npy header: 'descr' must be a string (structured dtypes are not "
                            "supported)", name);
        } else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0 && fortran < 0) {
            if (word(&h, "True"))
                fortran = 1;
            else if (word(&h, "False"))
                fortran = 0;
            else
                return mc_file_fail(em, el, "%s: .npy header: 'fortran_order' must be True or False", name);
        } else if (kn == 5 && memcmp(k, "shape", 5) == 0 && rank < 0) {
            int r = shape_lit(&h, &rank, shape);
            if (r == -2)
                return mc_file_fail(em, el, "%s: .npy header: shape entry too large", name);
            if (r == -3)
                return mc_file_fail(em, el, "%s: .npy header: rank above %d", name, MC_NPY_MAX_RANK);
            if (r)
                return mc_file_fail(em, el, "%s: .npy header: 'shape' must be a tuple of integers", name);
        } else
            return mc_file_fail(em, el, "%s: .npy header: unexpected or repeated key '%s'", name,
                        mc_str_escape(esc, sizeof esc, k, kn > 40 ? 40 : kn));
        ws(&h);
        if (word(&h, ","))
            continue;
        ws(&h);
        if (word(&h, "}"))
            break;
        return mc_file_fail(em, el, "%s: .npy header: expected ',' or '}'", name);
    }
    while (h.p < h.end && (*h.p == ' ' || *h.p == '\n' || *h.p == '\0'))
        h.p++;
    if (h.p != h.end)
        return mc_file_fail(em, el, "%s: .npy header: trailing characters after the dict", name);
    if (!descr || fortran < 0 || rank < 0)
        return mc_file_fail(em, el, "%s: .npy header lacks 'descr', 'fortran_order' or 'shape'", name);
    if (fortran == 1)
        return mc_file_fail(em, el, "%s: fortran_order arrays are not supported (save with np.ascontiguousarray)", name);
    static const struct { const char *c; McNpyType t; int es; } types[] = {
        {"f4", MC_NPY_F32, 4}, {"f8", MC_NPY_F64, 8}, {"i8", MC_NPY_I64, 8}, {"i4", MC_NPY_I32, 4},
        {"u1", MC_NPY_U8, 1},
    };
    int es = 0, big = 0;
    McNpyType t = MC_NPY_OTHER;
    if (dlen == 3 && (descr[0] == '<' || descr[0] == '>' || descr[0] == '|' || descr[0] == '='))
        for (size_t i = 0; i < sizeof types / sizeof *types; i++)
            if (memcmp(descr + 1, types[i].c, 2) == 0) {
                t = types[i].t;
                es = types[i].es;
            }
    if (t != MC_NPY_OTHER) {
        big = descr[0] == '>' && es > 1;
        if (descr[0] == '|' && es > 1)
            t = MC_NPY_OTHER;
    }
    if (t == MC_NPY_OTHER)
        return mc_file_fail(em, el, "%s: unsupported dtype '%s' (supported: <f4 <f8 <i8 <i4 |u1, also big-endian)",
                    name, mc_str_escape(esc, sizeof esc, descr, dlen > 20 ? 20 : dlen));
    if (mc_dims_numel(shape, rank, (uint64_t)es, &out->numel, &out->nbytes))
        return mc_file_fail(em, el, "%s: .npy shape is too large (its dimensions multiply past 2^63 bytes)", name);
    out->type = t;
    out->es = es;
    out->big = big;
    out->rank = rank;
    memcpy(out->shape, shape, sizeof(int64_t) * (size_t)rank);
    return 0;
}

/* The data size the header announces against what the file holds. */
static int
npy_size_check(const NpyHead *h, uint64_t have, const char *name, char *em, size_t el)
{
    if (h->nbytes != have)
        return mc_file_fail(em, el, "%s: .npy data is %llu bytes but the shape needs %llu (%s)", name,
                    (unsigned long long)have, (unsigned long long)h->nbytes,
                    h->nbytes > have ? "truncated?" : "trailing bytes");
    return 0;
}

static void
npy_fill(McNpy *out, const NpyHead *h, void *d)
{
    if (h->big)
        bswap(d, (size_t)h->numel, h->es);
    out->type = h->type;
    out->rank = h->rank;
    memcpy(out->shape, h->shape, sizeof(int64_t) * (size_t)h->rank);
    out->data = d;
    out->nbytes = (size_t)h->nbytes;
}

int
mc_npy_read_mem(const uint8_t *buf, size_t len, const char *name, McNpy *out, char *em, size_t el)
{
    memset(out, 0, sizeof *out);
    size_t off, hl;
    NpyHead h;
    if (npy_prefix(buf, len, name, &off, &hl, em, el))
        return -1;
    if (hl > len - off)
        return mc_file_fail(em, el, "%s: truncated .npy header (%zu bytes announced, %zu present)", name, hl, len - off);
    if (npy_dict(buf + off, hl, name, &h, em, el) || npy_size_check(&h, len - off - hl, name, em, el))
        return -1;
    void *d = malloc(h.nbytes ? (size_t)h.nbytes : 1);
    if (!d)
        return mc_file_fail(em, el, "%s: out of memory", name);
    memcpy(d, buf + off + hl, (size_t)h.nbytes);
    npy_fill(out, &h, d);
    return 0;
}

int
mc_npy_read(const char *path, McNpy *out, char *em, size_t el)
{
    memset(out, 0, sizeof *out);
    uint64_t size;
    int fd = mc_file_open(path, ".npy file", 0, &size, em, el);
    if (fd < 0)
        return -1;
    /* the header first: a file that is not a .npy, or whose size does not
     * match its header, is refused before its data are read */
    uint8_t pre[12], *hdr = NULL, *d = NULL;
    size_t np = size < sizeof pre ? (size_t)size : sizeof pre, off, hl;
    NpyHead h;
    int rc = -1;
    if (mc_file_read_at(fd, pre, np, 0)) {
        mc_file_fail(em, el, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (npy_prefix(pre, np, path, &off, &hl, em, el))
        goto out;
    if (hl > size - off) {
        mc_file_fail(em, el, "%s: truncated .npy header (%zu bytes announced, %llu present)", path, hl,
             (unsigned long long)(size - off));
        goto out;
    }
    if (!(hdr = malloc(hl ? hl : 1))) {
        mc_file_fail(em, el, "%s: out of memory", path);
        goto out;
    }
    if (mc_file_read_at(fd, hdr, hl, off)) {
        mc_file_fail(em, el, "%s: cannot read: %s", path, strerror(errno));
        goto out;
    }
    if (npy_dict(hdr, hl, path, &h, em, el) || npy_size_check(&h, size - off - hl, path, em, el))
        goto out;
    if (!(d = malloc(h.nbytes ? (size_t)h.nbytes : 1))) {
        mc_file_fail(em, el, "%s: out of memory for %llu bytes of data", path, (unsigned long long)h.nbytes);
        goto out;
    }
    if (mc_file_read_at(fd, d, (size_t)h.nbytes, off + hl)) {
        mc_file_fail(em, el, "%s: cannot read: %s", path, strerror(errno));
        free(d);
        goto out;
    }
    npy_fill(out, &h, d);
    rc = 0;
out:
    free(hdr);
    close(fd);
    return rc;
}

/* The .npy header of a float32 array into h (64-byte padded), its length
 * in *hn and the element count in *numel; -1 with a message for a bad rank
 * or shape. */
static int
npy_header(const char *path, const char *descr, int rank, const int64_t *shape, uint8_t h[576], size_t *hn,
           uint64_t *numel, char *em, size_t el)
{
    if (rank < 0 || rank > MC_NPY_MAX_RANK)
        return mc_file_fail(em, el, "%s: rank %d out of range", path, rank);
    char *d = (char *)h + 10;
    int n = snprintf(d, 512, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    *numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(*numel, (uint64_t)shape[i], numel))
            return mc_file_fail(em, el, "%s: bad shape", path);
        n += snprintf(d + n, 512 - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    n += snprintf(d + n, 512 - (size_t)n, "%s), }", rank == 1 ? "," : "");
    int total = 10 + n + 1; /* magic+version+len, dict, '\n' */
    int pad = (64 - total % 64) % 64;
    memset(d + n, ' ', (size_t)pad);
    n += pad;
    d[n++] = '\n';
    const uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    memcpy(h, pre, 10);
    *hn = 10 + (size_t)n;
    return 0;
}

/* 4-byte elements of type descr into o, committed (or discarded on error) */
static int
write4_out(McOut *o, const char *descr, const void *data, int rank, const int64_t *shape, char *em, size_t el)
{
    uint8_t h[576];
    size_t hn;
    uint64_t numel;
    if (npy_header(o->path ? o->path : "standard output", descr, rank, shape, h, &hn, &numel, em, el)) {
        mc_out_discard(o);
        return -1;
    }
    /* a failed fwrite leaves the stream's error flag set: commit reports it */
    if (fwrite(h, 1, hn, o->f) == hn && numel)
        fwrite(data, 4, (size_t)numel, o->f);
    return mc_out_commit(o, em, el);
}

int
mc_npy_write_f32_out(McOut *o, const float *data, int rank, const int64_t *shape, char *em, size_t el)
{
    return write4_out(o, "<f4", data, rank, shape, em, el);
}

int
mc_npy_write_argmax_out(McOut *o, const float *y, const int64_t *shape, char *em, size_t el)
{
    int64_t B = shape[0], C = shape[1], HW = shape[2] * shape[3], s3[3] = {shape[0], shape[2], shape[3]};
    int32_t *m = malloc((size_t)(B * HW) * sizeof *m + 4);
    if (!m) {
        mc_out_discard(o);
        return mc_file_fail(em, el, "out of memory for the class map of %s", o->path ? o->path : "standard output");
    }
    for (int64_t b = 0; b < B; b++)
        for (int64_t p = 0; p < HW; p++) {
            const float *v = y + b * C * HW + p;
            int64_t best = 0;
            for (int64_t c = 1; c < C; c++)
                if (v[c * HW] > v[best * HW] || (v[best * HW] != v[best * HW] && v[c * HW] == v[c * HW])) best = c;
            m[b * HW + p] = (int32_t)best;
        }
    int rc = write4_out(o, "<i4", m, 3, s3, em, el);
    free(m);
    return rc;
}

/* ------------------------------------------------------------ .npz */

uint32_t
mc_crc32(uint32_t crc, const uint8_t *p, size_t n)
{
    /* slice-by-4 over a table built on the stack (cheap, reentrant) */
    uint32_t t[4][256];
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int s = 1; s < 4; s++)
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    crc = ~crc;
    while (n >= 4) {
        crc ^= (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        crc = t[3][crc & 0xff] ^ t[2][(crc >> 8) & 0xff] ^ t[1][(crc >> 16) & 0xff] ^ t[0][crc >> 24];
        p += 4;
        n -= 4;
    }
    while (n--)
        crc = t[0][(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint64_t mc_npz_zip64_from = 0xffffffffu;

void
mc_npz_member_name(const char *name, char *buf, size_t n)
{
    size_t k = 0;
    if (!n)
        return;
    for (const char *c = name ? name : ""; *c && k + 1 < n; c++) {
        int ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                 *c == '.' || *c == '-';
        buf[k++] = ok ? *c : '_';
    }
    buf[k] = 0;
    if (!k)
        snprintf(buf, n, "array");
}

int
mc_npz_output_kind(const char *path, int n, const char *const *names, char *em, size_t el)
{
    size_t len = path ? strlen(path) : 0;
    int npz = len > 4 && !strcmp(path + len - 4, ".npz");
    if (!npz && n > 1) {
        char list[256];
        size_t k = 0;
        list[0] = 0;
        for (int i = 0; i < n && k < sizeof list; i++)
            k += (size_t)snprintf(list + k, sizeof list - k, "%s%s", i ? ", " : "", names[i] ? names[i] : "?");
        return mc_file_fail(em, el,
                            "%s: the model has %d outputs (%s) and a .npy holds one array: name the file "
                            "FILE.npz to get them all, one array each",
                            path ? path : "standard output", n, list);
    }
    for (int i = 0; npz && i < n; i++)
        for (int j = 0; j < i; j++) {
            char a[256], b[256];
            mc_npz_member_name(names[i], a, sizeof a);
            mc_npz_member_name(names[j], b, sizeof b);
            if (!strcmp(a, b))
                return mc_file_fail(em, el,
                                    "%s: outputs %d and %d would both be the array '%s' (an .npz needs distinct "
                                    "names; outputs are named after their graph nodes)",
                                    path, j, i, a);
        }
    return npz;
}

static void
put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void
put32(uint8_t *p, uint32_t v)
{
    put16(p, v);
    put16(p + 2, v >> 16);
}

static void
put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

/* One member's zip record: the local header (central = 0) or its central
 * directory entry, with a zip64 extra field for what passes
 * mc_npz_zip64_from.  Returns its length in r (at most 46 + 28 + 260). */
static size_t
zip_record(uint8_t *r, int central, const char *name, uint32_t crc, uint64_t size, uint64_t off)
{
    size_t nl = strlen(name), k = central ? 46 : 30;
    int big = size >= mc_npz_zip64_from, far = central && off >= mc_npz_zip64_from;
    uint8_t *x = r + k + nl; /* the extra field */
    size_t xl = big || far ? 4 : 0;
    if (big) { /* uncompressed and compressed size (stored: the same) */
        put64(x + xl, size);
        put64(x + xl + 8, size);
        xl += 16;
    }
    if (far) {
        put64(x + xl, off);
        xl += 8;
    }
    if (xl) {
        put16(x, 1);
        put16(x + 2, (uint32_t)xl - 4);
    }
    memset(r, 0, k);
    put32(r, central ? 0x02014b50u : 0x04034b50u);
    uint8_t *v = central ? r + 6 : r + 4; /* version needed .. */
    if (central)
        put16(r + 4, xl ? 45 : 20); /* version made by */
    put16(v, xl ? 45 : 20);
    put16(v + 8, 0x21); /* DOS date 1980-01-01, time 0: the same bytes every time */
    put32(v + 10, crc);
    put32(v + 14, big ? 0xffffffffu : (uint32_t)size);
    put32(v + 18, big ? 0xffffffffu : (uint32_t)size);
    put16(v + 22, (uint32_t)nl);
    put16(v + 24, (uint32_t)xl);
    if (central)
        put32(r + 42, far ? 0xffffffffu : (uint32_t)off);
    memcpy(r + k, name, nl);
    return k + nl + xl;
}

int
mc_npz_write_f32_out(McOut *o, const McNpzArray *a, int n, char *em, size_t el)
{
    const char *path = o->path ? o->path : "standard output";
    uint8_t h[576], r[46 + 28 + 260];
    char names[MC_NPZ_MAX_ARRAYS][256];
    uint32_t crc[MC_NPZ_MAX_ARRAYS];
    uint64_t size[MC_NPZ_MAX_ARRAYS], off[MC_NPZ_MAX_ARRAYS], at = 0;
    if (n < 1 || n > MC_NPZ_MAX_ARRAYS) {
        mc_out_discard(o);
        return mc_file_fail(em, el, "%s: %d arrays (an .npz of 1 to %d)", path, n, MC_NPZ_MAX_ARRAYS);
    }
    for (int i = 0; i < n; i++) { /* the members: local header, .npy header, data */
        size_t hn;
        uint64_t numel;
        if (npy_header(path, "<f4", a[i].rank, a[i].shape, h, &hn, &numel, em, el)) {
            mc_out_discard(o);
            return -1;
        }
        mc_npz_member_name(a[i].name, names[i], sizeof names[i] - 4);
        strcat(names[i], ".npy");
        crc[i] = mc_crc32(mc_crc32(0, h, hn), (const uint8_t *)a[i].data, (size_t)numel * 4);
        size[i] = hn + numel * 4;
        off[i] = at;
        size_t rn = zip_record(r, 0, names[i], crc[i], size[i], off[i]);
        if (fwrite(r, 1, rn, o->f) != rn || fwrite(h, 1, hn, o->f) != hn ||
            (numel && fwrite(a[i].data, 4, (size_t)numel, o->f) != numel))
            return mc_out_commit(o, em, el); /* reports the stream's error */
        at += rn + size[i];
    }
    uint64_t cd = at;
    for (int i = 0; i < n; i++) { /* the central directory */
        size_t rn = zip_record(r, 1, names[i], crc[i], size[i], off[i]);
        if (fwrite(r, 1, rn, o->f) != rn)
            return mc_out_commit(o, em, el);
        at += rn;
    }
    uint8_t e[56 + 20 + 22];
    size_t en = 0;
    int z64 = cd >= mc_npz_zip64_from || at - cd >= mc_npz_zip64_from;
    if (z64) { /* zip64 end of central directory record and locator */
        memset(e, 0, 76);
        put32(e, 0x06064b50u);
        put64(e + 4, 44);
        put16(e + 12, 45);
        put16(e + 14, 45);
        put64(e + 24, (uint64_t)n);
        put64(e + 32, (uint64_t)n);
        put64(e + 40, at - cd);
        put64(e + 48, cd);
        put32(e + 56, 0x07064b50u);
        put64(e + 64, at);
        put32(e + 72, 1);
        en = 76;
    }
    memset(e + en, 0, 22);
    put32(e + en, 0x06054b50u);
    put16(e + en + 8, (uint32_t)n);
    put16(e + en + 10, (uint32_t)n);
    put32(e + en + 12, z64 ? 0xffffffffu : (uint32_t)(at - cd));
    put32(e + en + 16, z64 ? 0xffffffffu : (uint32_t)cd);
    en += 22;
    if (fwrite(e, 1, en, o->f) != en) {} /* the commit reports a failed write */
    return mc_out_commit(o, em, el);
}

int
mc_npy_write_arrays_out(McOut *o, int npz, const McNpzArray *a, int n, char *em, size_t el)
{
    if (npz)
        return mc_npz_write_f32_out(o, a, n, em, el);
    if (n != 1) {
        mc_out_discard(o);
        return mc_file_fail(em, el, "%s: %d arrays and a .npy holds one", o->path ? o->path : "standard output", n);
    }
    return mc_npy_write_f32_out(o, a[0].data, a[0].rank, a[0].shape, em, el);
}

int
mc_npy_write_f32(const char *path, const float *data, int rank, const int64_t *shape, char *em, size_t el)
{
    McOut o;
    if (mc_out_open(&o, path, 0666, em, el))
        return -1;
    return mc_npy_write_f32_out(&o, data, rank, shape, em, el);
}

void
mc_npy_free(McNpy *a)
{
    free(a->data);
    a->data = NULL;
    a->nbytes = 0;
}
