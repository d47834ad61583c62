/* runtime/npy.c -- .npy read/write (see mc_npy.h).
 *
 * Takes .npy bytes (format 1.0/2.0/3.0); produces an McNpy whose data are
 * malloc'd, C order, native little-endian.  The header dict is parsed
 * strictly: exactly 'descr', 'fortran_order' and 'shape', each once.
 * Big-endian data of a supported type are byte-swapped; fortran_order True
 * is rejected.  Writes float32 arrays with a 1.0 header padded to 64 bytes.
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

int
mc_npy_write_f32_out(McOut *o, const float *data, int rank, const int64_t *shape, char *em, size_t el)
{
    const char *path = o->path ? o->path : "standard output";
    if (rank < 0 || rank > MC_NPY_MAX_RANK) {
        mc_out_discard(o);
        return mc_file_fail(em, el, "%s: rank %d out of range", path, rank);
    }
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel)) {
            mc_out_discard(o);
            return mc_file_fail(em, el, "%s: bad shape", path);
        }
        n += snprintf(h + n, sizeof h - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    n += snprintf(h + n, sizeof h - (size_t)n, "%s), }", rank == 1 ? "," : "");
    int total = 10 + n + 1; /* magic+version+len, dict, '\n' */
    int pad = (64 - total % 64) % 64;
    memset(h + n, ' ', (size_t)pad);
    n += pad;
    h[n++] = '\n';
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    /* a failed fwrite leaves the stream's error flag set: commit reports it */
    if (fwrite(pre, 1, 10, o->f) == 10 && fwrite(h, 1, (size_t)n, o->f) == (size_t)n && numel)
        fwrite(data, sizeof(float), (size_t)numel, o->f);
    return mc_out_commit(o, em, el);
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
