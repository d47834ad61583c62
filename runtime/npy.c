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
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int
fail(char *msg, size_t n, const char *fmt, ...)
{
    if (msg && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, n, fmt, ap);
        va_end(ap);
    }
    return -1;
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

int
mc_npy_read_mem(const uint8_t *buf, size_t len, const char *name, McNpy *out, char *em, size_t el)
{
    memset(out, 0, sizeof *out);
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
        return fail(em, el, "%s: not a .npy file (no \\x93NUMPY magic)", name);
    int major = buf[6];
    size_t hl, off;
    if (major == 1) {
        hl = (size_t)buf[8] | (size_t)buf[9] << 8;
        off = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12)
            return fail(em, el, "%s: truncated .npy header", name);
        hl = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        off = 12;
    } else
        return fail(em, el, "%s: unsupported .npy format version %d.%d", name, major, buf[7]);
    if (hl > len - off)
        return fail(em, el, "%s: truncated .npy header (%zu bytes announced, %zu present)", name, hl, len - off);
    Hdr h = {(const char *)buf + off, (const char *)buf + off + hl};
    const char *descr = NULL;
    size_t dlen = 0;
    int fortran = -1, rank = -1;
    int64_t shape[MC_NPY_MAX_RANK];
    ws(&h);
    if (!word(&h, "{"))
        return fail(em, el, "%s: .npy header is not a dict", name);
    for (;;) {
        ws(&h);
        if (word(&h, "}"))
            break;
        const char *k;
        size_t kn;
        if (str_lit(&h, &k, &kn))
            return fail(em, el, "%s: .npy header: expected a quoted key", name);
        ws(&h);
        if (!word(&h, ":"))
            return fail(em, el, "%s: .npy header: expected ':'", name);
        ws(&h);
        if (kn == 5 && memcmp(k, "descr", 5) == 0 && !descr) {
            if (str_lit(&h, &descr, &dlen))
                return fail(em, el, "%s: .npy header: 'descr' must be a string (structured dtypes are not "
                            "supported)", name);
        } else if (kn == 13 && memcmp(k, "fortran_order", 13) == 0 && fortran < 0) {
            if (word(&h, "True"))
                fortran = 1;
            else if (word(&h, "False"))
                fortran = 0;
            else
                return fail(em, el, "%s: .npy header: 'fortran_order' must be True or False", name);
        } else if (kn == 5 && memcmp(k, "shape", 5) == 0 && rank < 0) {
            int r = shape_lit(&h, &rank, shape);
            if (r == -2)
                return fail(em, el, "%s: .npy header: shape entry too large", name);
            if (r == -3)
                return fail(em, el, "%s: .npy header: rank above %d", name, MC_NPY_MAX_RANK);
            if (r)
                return fail(em, el, "%s: .npy header: 'shape' must be a tuple of integers", name);
        } else
            return fail(em, el, "%s: .npy header: unexpected or repeated key '%.*s'", name,
                        (int)(kn > 40 ? 40 : kn), k);
        ws(&h);
        if (word(&h, ","))
            continue;
        ws(&h);
        if (word(&h, "}"))
            break;
        return fail(em, el, "%s: .npy header: expected ',' or '}'", name);
    }
    while (h.p < h.end && (*h.p == ' ' || *h.p == '\n' || *h.p == '\0'))
        h.p++;
    if (h.p != h.end)
        return fail(em, el, "%s: .npy header: trailing characters after the dict", name);
    if (!descr || fortran < 0 || rank < 0)
        return fail(em, el, "%s: .npy header lacks 'descr', 'fortran_order' or 'shape'", name);
    if (fortran == 1)
        return fail(em, el, "%s: fortran_order arrays are not supported (save with np.ascontiguousarray)", name);
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
        return fail(em, el, "%s: unsupported dtype '%.*s' (supported: <f4 <f8 <i8 <i4 |u1, also big-endian)",
                    name, (int)(dlen > 20 ? 20 : dlen), descr);
    uint64_t numel = 1, nb;
    for (int i = 0; i < rank; i++)
        if (__builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
            return fail(em, el, "%s: .npy shape overflows", name);
    if (__builtin_mul_overflow(numel, (uint64_t)es, &nb))
        return fail(em, el, "%s: .npy shape overflows", name);
    size_t have = len - off - hl;
    if (nb != have)
        return fail(em, el, "%s: .npy data is %zu bytes but the shape needs %llu (%s)", name, have,
                    (unsigned long long)nb, nb > have ? "truncated?" : "trailing bytes");
    void *d = malloc(nb ? (size_t)nb : 1);
    if (!d)
        return fail(em, el, "%s: out of memory", name);
    memcpy(d, buf + off + hl, (size_t)nb);
    if (big)
        bswap(d, (size_t)numel, es);
    out->type = t;
    out->rank = rank;
    memcpy(out->shape, shape, sizeof(int64_t) * (size_t)rank);
    out->data = d;
    out->nbytes = (size_t)nb;
    return 0;
}

int
mc_npy_read(const char *path, McNpy *out, char *em, size_t el)
{
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(em, el, "%s: cannot open", path);
    struct stat st;
    long n = -1;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return fail(em, el, "%s: cannot read (not a regular file?)", path);
    }
    uint8_t *buf = malloc(n ? (size_t)n : 1);
    if (!buf) {
        fclose(f);
        return fail(em, el, "%s: out of memory", path);
    }
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    if (got != (size_t)n) {
        free(buf);
        return fail(em, el, "%s: read error", path);
    }
    int rc = mc_npy_read_mem(buf, got, path, out, em, el);
    free(buf);
    return rc;
}

int
mc_npy_write_f32(const char *path, const float *data, int rank, const int64_t *shape, char *em, size_t el)
{
    if (rank < 0 || rank > MC_NPY_MAX_RANK)
        return fail(em, el, "%s: rank %d out of range", path, rank);
    char h[512];
    int n = snprintf(h, sizeof h, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    uint64_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
            return fail(em, el, "%s: bad shape", path);
        n += snprintf(h + n, sizeof h - (size_t)n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    n += snprintf(h + n, sizeof h - (size_t)n, "%s), }", rank == 1 ? "," : "");
    int total = 10 + n + 1; /* magic+version+len, dict, '\n' */
    int pad = (64 - total % 64) % 64;
    memset(h + n, ' ', (size_t)pad);
    n += pad;
    h[n++] = '\n';
    uint8_t pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (uint8_t)(n & 0xff), (uint8_t)(n >> 8)};
    FILE *f = fopen(path, "wb");
    if (!f)
        return fail(em, el, "%s: cannot create", path);
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(h, 1, (size_t)n, f) == (size_t)n &&
             (numel == 0 || fwrite(data, sizeof(float), (size_t)numel, f) == numel);
    if (fclose(f) != 0)
        ok = 0;
    if (!ok)
        return fail(em, el, "%s: write error", path);
    return 0;
}

void
mc_npy_free(McNpy *a)
{
    free(a->data);
    a->data = NULL;
    a->nbytes = 0;
}
