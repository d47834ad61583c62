/* runtime/labels.c -- class names from a labels file, and a classifier's
 * best classes printed with names and softmax probabilities (mc_labels.h).
 *
 * Takes: a labels file (one name a line), logits [rows, classes].
 * Produces: McLabels; "  1. tabby 43.1%" lines or JSON on a FILE.
 */
#include "mc_labels.h"
#include "mc_file.h"
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define MC_LABEL_MAX 255

void
mc_labels_free(McLabels *l)
{
    if (!l)
        return;
    for (int i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    l->names = NULL;
    l->n = 0;
}

/* One line of the file (without its newline) as a name: blanks trimmed;
 * 0, or -1 with the reason in msg. */
static int
take_name(const char *path, int line, char *s, size_t len, char **out, char *msg, size_t msglen)
{
    while (len && (s[len - 1] == '\r' || s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    if (!len) {
        snprintf(msg, msglen, "%s:%d: an empty line (one class name a line, no blank lines)", path, line);
        return -1;
    }
    if (len > MC_LABEL_MAX) {
        snprintf(msg, msglen, "%s:%d: a class name of %zu bytes (at most %d)", path, line, len, MC_LABEL_MAX);
        return -1;
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
            snprintf(msg, msglen, "%s:%d: a control character (byte 0x%02x) in a class name (is it a text file?)",
                     path, line, (unsigned char)s[i]);
            return -1;
        }
    *out = malloc(len + 1);
    if (!*out) {
        snprintf(msg, msglen, "%s: out of memory", path);
        return -1;
    }
    memcpy(*out, s, len);
    (*out)[len] = 0;
    return 0;
}

/* Labels files are read whole, up to 64 MiB: a list of class names is
 * far smaller (ImageNet-1k's: 10 kB). */
#define MC_LABELS_MAX_BYTES (64u << 20)
#define MC_LABEL_LINE_MAX (4 * MC_LABEL_MAX - 2)

int
mc_labels_read(const char *path, int nclasses, McLabels *l, char *msg, size_t msglen)
{
    memset(l, 0, sizeof *l);
    /* a regular file only (a FIFO would block), read whole so that each
     * line's length, NUL bytes and all, is known */
    size_t size;
    char *text = mc_file_read_all(path, "labels file", MC_LABELS_MAX_BYTES, &size, msg, msglen);
    if (!text)
        return -1;
    int cap = 0, line = 0, rc = 0;
    for (char *buf = text, *end = text + size, *nl; !rc && buf < end; buf = nl ? nl + 1 : end) {
        nl = memchr(buf, '\n', (size_t)(end - buf));
        size_t len = (size_t)((nl ? nl : end) - buf);
        line++;
        if (len > MC_LABEL_LINE_MAX) {
            snprintf(msg, msglen, "%s:%d: a line of more than %d bytes (one class name a line)", path, line,
                     MC_LABEL_LINE_MAX);
            rc = -1;
            break;
        }
        if (memchr(buf, 0, len)) {
            snprintf(msg, msglen, "%s:%d: a NUL byte (is it a text file?)", path, line);
            rc = -1;
            break;
        }
        if (nclasses > 0 && l->n == nclasses) {
            snprintf(msg, msglen, "%s: more than the model's %d class names (line %d)", path, nclasses, line);
            rc = -1;
            break;
        }
        if (l->n == cap) {
            int nc = cap ? 2 * cap : 64;
            char **p = nc < (1 << 24) ? realloc(l->names, (size_t)nc * sizeof *p) : NULL;
            if (!p) {
                snprintf(msg, msglen, "%s: out of memory (or over 16M lines)", path);
                rc = -1;
                break;
            }
            l->names = p;
            cap = nc;
        }
        if (take_name(path, line, buf, len, &l->names[l->n], msg, msglen))
            rc = -1;
        else
            l->n++;
    }
    free(text);
    if (!rc && nclasses > 0 && l->n != nclasses) {
        snprintf(msg, msglen, "%s has %d class name%s, the model has %d classes", path, l->n, l->n == 1 ? "" : "s",
                 nclasses);
        rc = -1;
    }
    if (!rc && l->n == 0) {
        snprintf(msg, msglen, "%s has no class names", path);
        rc = -1;
    }
    if (rc)
        mc_labels_free(l);
    return rc;
}

/* ------------------------------------------------------------ printing */

void
mc_labels_json_string(FILE *f, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    fputc('"', f);
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        int ok = n > 0 && (n == 1 || c >= 0xc2) && (n < 4 || c <= 0xf4);
        for (int i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (!ok) { /* not UTF-8: one replacement character for the byte */
            fputs("\\ufffd", f);
            p++;
            continue;
        }
        if (n > 1) {
            fwrite(p, 1, (size_t)n, f);
        } else if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(f, "\\u%04x", c);
        } else {
            fputc((int)c, f);
        }
        p += n;
    }
    fputc('"', f);
}

void
mc_labels_json_begin(FILE *f)
{
    fputs("{\"images\": [", f);
}

void
mc_labels_json_end(FILE *f, double time_ms)
{
    fputs("\n]", f);
    if (time_ms >= 0)
        fprintf(f, ", \"time_ms\": %.3f", time_ms);
    fputs("}\n", f);
}

/* Does index a come before b in the top-k order of x? */
static int
topk_before(const float *x, int64_t a, int64_t b)
{
    int na = isnan(x[a]), nb = isnan(x[b]);
    if (na != nb)
        return nb;
    if (!na && x[a] != x[b])
        return x[a] > x[b];
    return a < b;
}

int64_t
mc_labels_topk(const float *x, int64_t n, int64_t k, int64_t *out)
{
    if (n <= 0 || k <= 0)
        return 0;
    if (k > n)
        k = n;
    if ((uint64_t)n > SIZE_MAX / 2 / sizeof(int64_t))
        return -1;
    int64_t *a = malloc(2 * (size_t)n * sizeof *a);
    if (!a)
        return -1;
    int64_t *b = a + n;
    for (int64_t i = 0; i < n; i++)
        a[i] = i;
    /* bottom-up merge sort of the indices */
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi)
                b[o++] = topk_before(x, a[j], a[i]) ? a[j++] : a[i++];
            while (i < mid)
                b[o++] = a[i++];
            while (j < hi)
                b[o++] = a[j++];
        }
        int64_t *t = a;
        a = b;
        b = t;
    }
    memcpy(out, a, (size_t)k * sizeof *out);
    free(a < b ? a : b);
    return k;
}

/* Softmax over row [N] in double: log of the sum of exp(x - max). */
static double
log_sum_exp(const float *row, int64_t N, double *mx)
{
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < N; i++)
        if (row[i] > m)
            m = row[i];
    for (int64_t i = 0; i < N; i++)
        s += exp((double)row[i] - m);
    *mx = m;
    return log(s);
}

int
mc_labels_print_top(FILE *f, const float *y, int64_t nrows, int64_t N, int64_t k, const char *const *names,
                    const char *const *files, int json, int64_t *printed)
{
    int64_t *best = malloc((size_t)(k < N ? k : N > 0 ? N : 1) * sizeof *best);
    if (!best)
        return -1;
    for (int64_t r = 0; r < nrows; r++) {
        const float *row = y + r * N;
        int64_t n = mc_labels_topk(row, N, k, best);
        if (n < 0) {
            free(best);
            return -1;
        }
        double mx, lse = log_sum_exp(row, N, &mx);
        const char *file = files ? files[r] : NULL;
        if (json) {
            fputs(*printed ? ",\n  {\"file\": " : "\n  {\"file\": ", f);
            if (file)
                mc_labels_json_string(f, file);
            else
                fputs("null", f);
            fputs(", \"top\": [", f);
        } else if (file) {
            fprintf(f, "%s:\n", file);
        } else {
            fprintf(f, "image %lld:\n", (long long)*printed);
        }
        for (int64_t j = 0; j < n; j++) {
            int64_t c = best[j];
            double p = isfinite(lse) ? exp((double)row[c] - mx - lse) : NAN;
            if (json) {
                fprintf(f, "%s{\"rank\": %lld, \"class\": %lld, \"name\": ", j ? ", " : "", (long long)j + 1,
                        (long long)c);
                if (names)
                    mc_labels_json_string(f, names[c]);
                else
                    fputs("null", f);
                /* JSON has no NaN: a row with one is null */
                if (isfinite(p) && isfinite(row[c]))
                    fprintf(f, ", \"prob\": %.6g, \"logit\": %.6g}", p, (double)row[c]);
                else
                    fputs(", \"prob\": null, \"logit\": null}", f);
            } else if (names) {
                fprintf(f, "  %lld. %s %.1f%%\n", (long long)j + 1, names[c], 100.0 * p);
            } else {
                fprintf(f, "  %lld. class %lld %.1f%%\n", (long long)j + 1, (long long)c, 100.0 * p);
            }
        }
        if (json)
            fputs("]}", f);
        (*printed)++;
    }
    free(best);
    return 0;
}

/* ------------------------------------------------------------ image lists */

/* The image files: the arguments in order, a directory's JPEG/PNG files
 * (by extension, sorted by name, not recursive) in its place. */
void
mc_image_list_free(McImageList *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->path[i]);
    free(l->path);
    memset(l, 0, sizeof *l);
}

static int
list_add(McImageList *l, const char *dir, const char *name)
{
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 64;
        char **p = realloc(l->path, (size_t)nc * sizeof *p);
        if (!p)
            return -1;
        l->path = p;
        l->cap = nc;
    }
    size_t n = (dir ? strlen(dir) + 1 : 0) + strlen(name) + 1;
    char *s = malloc(n);
    if (!s)
        return -1;
    if (dir)
        snprintf(s, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
    else
        snprintf(s, n, "%s", name);
    l->path[l->n++] = s;
    return 0;
}

static int
is_image_name(const char *s)
{
    const char *e = strrchr(s, '.');
    return e && (!strcasecmp(e, ".jpg") || !strcasecmp(e, ".jpeg") || !strcasecmp(e, ".png"));
}

static int
cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* 0, or -1 with a message (a missing file, an empty directory). */
int
mc_image_list(const char *prog, int nargs, char **args, McImageList *l)
{
    memset(l, 0, sizeof *l);
    for (int i = 0; i < nargs; i++) {
        struct stat st;
        if (stat(args[i], &st)) {
            fprintf(stderr, "%s: error: --image %s: %s\n", prog, args[i], strerror(errno));
            goto fail;
        }
        if (!S_ISDIR(st.st_mode)) {
            if (list_add(l, NULL, args[i]))
                goto oom;
            continue;
        }
        DIR *d = opendir(args[i]);
        if (!d) {
            fprintf(stderr, "%s: error: --image %s: %s\n", prog, args[i], strerror(errno));
            goto fail;
        }
        int first = l->n;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.' && is_image_name(e->d_name) && list_add(l, args[i], e->d_name)) {
                closedir(d);
                goto oom;
            }
        closedir(d);
        if (l->n == first) {
            fprintf(stderr, "%s: error: --image %s: no .jpg, .jpeg or .png files in this directory\n", prog, args[i]);
            goto fail;
        }
        qsort(l->path + first, (size_t)(l->n - first), sizeof *l->path, cmp_str);
    }
    return 0;
oom:
    fprintf(stderr, "%s: error: out of memory for the image list\n", prog);
fail:
    mc_image_list_free(l);
    return -1;
}


/* ------------------------------------------------------------ masks */

/* Where image `path`'s mask goes: dst itself for one image, else
 * dst/<its name without extension>.png (dst a directory). */
void
mc_seg_out_name(const char *dst, const char *path, int many, char *buf, size_t n)
{
    if (!many) {
        snprintf(buf, n, "%s", dst);
        return;
    }
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    const char *e = strrchr(b, '.');
    int len = e ? (int)(e - b) : (int)strlen(b);
    snprintf(buf, n, "%s%s%.*s.png", dst, dst[strlen(dst) - 1] == '/' ? "" : "/", len, b);
}

int
mc_seg_write(const McModelIO *io, const char *mask, const char *overlay, const char *path, int many, const float *y,
             const int64_t *yshape, int r, int w0, int h0, char *msg, size_t msglen)
{
    int C = (int)yshape[1], h = (int)yshape[2], w = (int)yshape[3];
    int32_t *map = malloc((size_t)w0 * (size_t)h0 * sizeof *map);
    unsigned char (*pal)[3] = malloc((size_t)C * sizeof *pal);
    char dst[MC_OUT_PATH];
    int rc = -1;
    McImage im = {0, 0, NULL};
    if (!map || !pal || mc_image_classmap(y + (size_t)r * C * h * w, C, h, w, io->align_corners, h0, w0, map)) {
        snprintf(msg, msglen, "out of memory for the class map of %s (%dx%d)", path, w0, h0);
        goto done;
    }
    if (io->palette && io->nclasses == C)
        memcpy(pal, io->palette, (size_t)C * sizeof *pal);
    else
        mc_image_default_palette(C, pal);
    for (int which = 0; which < 2; which++) {
        const char *d = which ? overlay : mask;
        if (!d)
            continue;
        McOut out;
        mc_seg_out_name(d, path, many, dst, sizeof dst);
        if (mc_out_open(&out, dst, 0666, msg, msglen))
            goto done;
        if (which && !im.rgb && mc_image_read(path, &im, msg, msglen)) {
            mc_out_discard(&out);
            goto done;
        }
        if (which ? mc_image_write_overlay(&out, &im, map, (const unsigned char (*)[3])pal, C, 0.5, msg, msglen)
                  : mc_image_write_mask(&out, map, w0, h0, (const unsigned char (*)[3])pal, C, msg, msglen))
            goto done;
    }
    rc = 0;
done:
    mc_image_free(&im);
    free(map);
    free(pal);
    return rc;
}

void
mc_seg_print(FILE *f, const char *path, int many, const char *mask, const char *overlay, int w0, int h0)
{
    char m[MC_OUT_PATH], o[MC_OUT_PATH];
    if (mask)
        mc_seg_out_name(mask, path, many, m, sizeof m);
    if (overlay)
        mc_seg_out_name(overlay, path, many, o, sizeof o);
    fprintf(f, "%s: %dx%d class map -> %s%s%s\n", path, w0, h0, mask ? m : "", mask && overlay ? ", " : "",
            overlay ? o : "");
}
