/* tests/unit/test_image.c -- the parts of the image library
 * (runtime/image.c) that tests/e2e/test_image_preproc.py does not compare
 * with PIL: class maps (hand-computed, ties, NaN, and against a plain
 * [C, H0, W0] upsampling), the default palette, PNG writing (images,
 * masks, overlays) read back by mc_image_read, write errors, and the
 * paths that must fail without a crash or a leak: missing, empty,
 * directory, garbage, every truncation of a small JPEG and PNG, damaged
 * EXIF, bad transform parameters.
 *
 * Takes nothing: the JPEG files are made here with libjpeg.  Built twice
 * (tests/CMakeLists.txt): with the library as configured, and as
 * test_image_nolibs from the runtime's sources without MC_HAVE_IMAGE,
 * where every reader and writer must say that the build has no image
 * support.  Scratch files go under $TMPDIR (or /tmp) and are removed.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/mc_image.h"
#ifdef MC_HAVE_IMAGE
#include <jpeglib.h>
#endif

/* The largest block malloc was asked for while watch_malloc is set: this
 * program's malloc, so libpng's calls come here too (glibc builds without
 * AddressSanitizer, which has its own malloc). */
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MC_NO_MALLOC_WATCH 1
#endif
#endif
#if defined(__GLIBC__) && !defined(__SANITIZE_ADDRESS__) && !defined(MC_NO_MALLOC_WATCH)
#define MC_MALLOC_WATCH 1
extern void *__libc_malloc(size_t n);
static int watch_malloc;
static size_t biggest_malloc;
void *malloc(size_t n);
void *
malloc(size_t n)
{
    if (watch_malloc && n > biggest_malloc) biggest_malloc = n;
    return __libc_malloc(n);
}
#endif

static void
check_contains(const char *msg, const char *want)
{
    if (!strstr(msg, want)) fprintf(stderr, "\n  message: %s\n  missing: %s\n", msg, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, want));
}

static char *
tmp_path(char *buf, size_t n, const char *leaf)
{
    const char *d = getenv("TMPDIR");
    snprintf(buf, n, "%s/unit_image_%d_%s", d && *d ? d : "/tmp", (int)getpid(), leaf);
    return buf;
}

static void
write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_EQUAL(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* A w x h test picture: r = 11x + 3y, g = 7y + x*y, b = 255 - 5x (mod 256). */
static McImage
picture(int w, int h)
{
    McImage im = {w, h, malloc((size_t)w * h * 3)};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            unsigned char *p = im.rgb + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)(11 * x + 3 * y), p[1] = (unsigned char)(7 * y + x * y), p[2] = (unsigned char)(255 - 5 * x);
        }
    return im;
}

static int
png_out(McOut *o, const char *path, char *em, size_t el)
{
    return mc_out_open(o, path, 0666, em, el);
}

/* ------------------------------------------------------------ class maps */

static void
test_classmap_hand(void)
{
    /* class 0: 0.5 everywhere; class 1: 0 in column 0, 1 in column 1 */
    const float lg[2 * 2 * 2] = {0.5f, 0.5f, 0.5f, 0.5f, 0, 1, 0, 1};
    int32_t m[4 * 4];
    /* align_corners false, 2 -> 4: source x = (i + 0.5) / 2 - 0.5 clamped
     * to [0, 1]: 0, 0.25, 0.75, 1 -> class 1 there: 0, 0.25, 0.75, 1 */
    CU_ASSERT_EQUAL(mc_image_classmap(lg, 2, 2, 2, 0, 4, 4, m), 0);
    for (int y = 0; y < 4; y++) {
        CU_ASSERT_EQUAL(m[y * 4 + 0], 0);
        CU_ASSERT_EQUAL(m[y * 4 + 1], 0);
        CU_ASSERT_EQUAL(m[y * 4 + 2], 1);
        CU_ASSERT_EQUAL(m[y * 4 + 3], 1);
    }
    /* align_corners true, 2 -> 3: x = 0, 0.5, 1: the middle column ties
     * (0.5 = 0.5) and goes to the lower class, as numpy.argmax */
    CU_ASSERT_EQUAL(mc_image_classmap(lg, 2, 2, 2, 1, 2, 3, m), 0);
    for (int y = 0; y < 2; y++) {
        CU_ASSERT_EQUAL(m[y * 3 + 0], 0);
        CU_ASSERT_EQUAL(m[y * 3 + 1], 0);
        CU_ASSERT_EQUAL(m[y * 3 + 2], 1);
    }
    /* rows: class 1 is 0 in row 0 and 1 in row 1; 2 -> 5 rows, align
     * true: y = 0, .25, .5, .75, 1 -> 0 0 0(tie) 1 1 */
    const float lr[2 * 2 * 1] = {0.5f, 0.5f, 0, 1};
    CU_ASSERT_EQUAL(mc_image_classmap(lr, 2, 2, 1, 1, 5, 1, m), 0);
    const int want_r[5] = {0, 0, 0, 1, 1};
    for (int y = 0; y < 5; y++) CU_ASSERT_EQUAL(m[y], want_r[y]);
    /* a 1x1 map to 3x2: every pixel class 2 */
    const float one[3] = {-1, 0.25f, 3};
    CU_ASSERT_EQUAL(mc_image_classmap(one, 3, 1, 1, 0, 2, 3, m), 0);
    for (int i = 0; i < 6; i++) CU_ASSERT_EQUAL(m[i], 2);
    /* NaN loses to every number; all NaN: class 0 */
    const float nan3[3] = {NAN, 1, 2}, alln[2] = {NAN, NAN}, mid[3] = {1, NAN, 0};
    CU_ASSERT_EQUAL(mc_image_classmap(nan3, 3, 1, 1, 0, 1, 1, m), 0);
    CU_ASSERT_EQUAL(m[0], 2);
    CU_ASSERT_EQUAL(mc_image_classmap(alln, 2, 1, 1, 0, 1, 1, m), 0);
    CU_ASSERT_EQUAL(m[0], 0);
    CU_ASSERT_EQUAL(mc_image_classmap(mid, 3, 1, 1, 0, 1, 1, m), 0);
    CU_ASSERT_EQUAL(m[0], 0);
    /* bad sizes */
    CU_ASSERT_EQUAL(mc_image_classmap(one, 0, 1, 1, 0, 1, 1, m), -1);
    CU_ASSERT_EQUAL(mc_image_classmap(one, 3, 1, 1, 0, 0, 1, m), -1);
}

/* PyTorch's bilinear source index in double, for the plain upsampling. */
static void
src_index(int in, int out, int align, int i, int *a, int *b, double *l)
{
    double s = align ? (out > 1 ? (double)(in - 1) / (out - 1) : 0) * i : ((double)in / out) * (i + 0.5) - 0.5;
    if (s < 0) s = 0;
    int k = (int)floor(s);
    if (k > in - 1) k = in - 1;
    *a = k;
    *b = k + (k < in - 1);
    *l = s - k > 1 ? 1 : s - k;
}

static void
test_classmap_random(void)
{
    /* the row-by-row class map equals the argmax of the whole upsampled
     * [C, H0, W0] tensor (double) wherever the best two differ by > 1e-4 */
    static const int cases[][6] = {{5, 7, 9, 23, 31, 0}, {5, 7, 9, 23, 31, 1}, {3, 4, 4, 4, 4, 0},
                                   {4, 13, 6, 40, 17, 0}, {4, 13, 6, 40, 17, 1}, {2, 1, 5, 3, 11, 1}};
    rng_seed(99);
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        int C = cases[t][0], h = cases[t][1], w = cases[t][2], H0 = cases[t][3], W0 = cases[t][4], al = cases[t][5];
        float *lg = rand_vec((int64_t)C * h * w, -3, 3);
        int32_t *m = malloc((size_t)H0 * W0 * sizeof *m);
        CU_ASSERT_EQUAL_FATAL(mc_image_classmap(lg, C, h, w, al, H0, W0, m), 0);
        int bad = 0, compared = 0;
        for (int y = 0; y < H0; y++)
            for (int x = 0; x < W0; x++) {
                int ya, yb, xa, xb;
                double ly, lx, best = -1e30, second = -1e30;
                int arg = 0;
                src_index(h, H0, al, y, &ya, &yb, &ly);
                src_index(w, W0, al, x, &xa, &xb, &lx);
                for (int c = 0; c < C; c++) {
                    const float *p = lg + (size_t)c * h * w;
                    double v = (1 - ly) * ((1 - lx) * p[ya * w + xa] + lx * p[ya * w + xb]) +
                               ly * ((1 - lx) * p[yb * w + xa] + lx * p[yb * w + xb]);
                    if (v > best) second = best, best = v, arg = c;
                    else if (v > second) second = v;
                }
                if (best - second > 1e-4) compared++, bad += m[y * W0 + x] != arg;
            }
        CU_ASSERT_EQUAL(bad, 0);
        CU_ASSERT(compared > H0 * W0 / 2);
        free(lg);
        free(m);
    }
}

/* ------------------------------------------------------------ palette */

static void
test_palette(void)
{
    unsigned char p[400][3], q[5][3];
    mc_image_default_palette(400, p);
    mc_image_default_palette(5, q);
    CU_ASSERT_EQUAL(memcmp(p, q, sizeof q), 0); /* fixed: a prefix of a longer one */
    /* the documented first colours (docs/images.md) */
    static const unsigned char first[4][3] = {{255, 0, 0}, {85, 255, 133}, {115, 0, 205}, {205, 184, 68}};
    for (int i = 0; i < 4; i++)
        for (int c = 0; c < 3; c++) {
            if (p[i][c] != first[i][c]) fprintf(stderr, "\n  class %d: %d %d %d\n", i, p[i][0], p[i][1], p[i][2]);
            CU_ASSERT_EQUAL(p[i][c], first[i][c]);
        }
    for (int i = 0; i < 400; i++) {
        int s = p[i][0] + p[i][1] + p[i][2];
        CU_ASSERT(s > 0 && s < 3 * 255); /* never black, never white */
        for (int d = 1; d <= 3 && i + d < 400; d++) { /* neighbours far apart */
            int dist = abs(p[i][0] - p[i + d][0]) + abs(p[i][1] - p[i + d][1]) + abs(p[i][2] - p[i + d][2]);
            if (dist < 100) fprintf(stderr, "\n  classes %d and %d: distance %d\n", i, i + d, dist);
            CU_ASSERT(dist >= 100);
        }
    }
    for (int i = 0; i < 360; i++) /* distinct over the first 360 */
        for (int j = 0; j < i; j++) CU_ASSERT(memcmp(p[i], p[j], 3) != 0);
}

/* ------------------------------------------------------------ PNG out and back */

static void
test_png_roundtrip(void)
{
    char path[512], em[512];
    tmp_path(path, sizeof path, "rt.png");
    static const int sizes[][2] = {{1, 1}, {13, 7}, {7, 13}, {300, 2}};
    for (size_t s = 0; s < 4; s++) {
        McImage im = picture(sizes[s][0], sizes[s][1]), back;
        McOut o;
        CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
        int rc = mc_image_write_png(&o, &im, em, sizeof em);
        if (!mc_image_available()) {
            CU_ASSERT_EQUAL(rc, -1);
            check_contains(em, "no image support");
            CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0); /* discarded */
            mc_image_free(&im);
            continue;
        }
        CU_ASSERT_EQUAL_FATAL(rc, 0);
        CU_ASSERT_EQUAL_FATAL(mc_image_read(path, &back, em, sizeof em), 0);
        CU_ASSERT_EQUAL(back.w, im.w);
        CU_ASSERT_EQUAL(back.h, im.h);
        CU_ASSERT_EQUAL(memcmp(back.rgb, im.rgb, (size_t)im.w * im.h * 3), 0);
        mc_image_free(&back);
        mc_image_free(&im);
    }
    unlink(path);
}

static void
test_mask_overlay(void)
{
    if (!mc_image_available()) return;
    char path[512], em[512];
    tmp_path(path, sizeof path, "mask.png");
    enum { W = 9, H = 4 };
    int32_t map[W * H];
    for (int i = 0; i < W * H; i++) map[i] = i % 7 - 1; /* -1 and 5 are outside 0..4 */
    unsigned char pal[5][3];
    mc_image_default_palette(5, pal);
    McOut o;
    McImage back, im = picture(W, H);
    CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
    CU_ASSERT_EQUAL_FATAL(mc_image_write_mask(&o, map, W, H, (const unsigned char(*)[3])pal, 5, em, sizeof em), 0);
    CU_ASSERT_EQUAL_FATAL(mc_image_read(path, &back, em, sizeof em), 0);
    CU_ASSERT(back.w == W && back.h == H);
    for (int i = 0; i < W * H; i++) {
        int k = map[i];
        for (int c = 0; c < 3; c++) CU_ASSERT_EQUAL(back.rgb[3 * i + c], k >= 0 && k < 5 ? pal[k][c] : 0);
    }
    mc_image_free(&back);
    /* overlay: round((1 - a) * pixel + a * colour); unknown classes keep
     * the pixel; an alpha outside [0, 1] means 0.5 */
    static const double alphas[] = {0.5, 0.25, 1.0, -1.0, NAN};
    for (size_t a = 0; a < sizeof alphas / sizeof alphas[0]; a++) {
        double al = alphas[a] >= 0 && alphas[a] <= 1 ? alphas[a] : 0.5;
        CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
        CU_ASSERT_EQUAL_FATAL(
            mc_image_write_overlay(&o, &im, map, (const unsigned char(*)[3])pal, 5, alphas[a], em, sizeof em), 0);
        CU_ASSERT_EQUAL_FATAL(mc_image_read(path, &back, em, sizeof em), 0);
        for (int i = 0; i < W * H; i++)
            for (int c = 0; c < 3; c++) {
                int k = map[i], px = im.rgb[3 * i + c];
                int want = k >= 0 && k < 5 ? (int)floor((1 - al) * px + al * pal[k][c] + 0.5) : px;
                CU_ASSERT_EQUAL(back.rgb[3 * i + c], want);
            }
        mc_image_free(&back);
    }
    mc_image_free(&im);
    unlink(path);
}

static void
test_write_errors(void)
{
    char em[512] = "";
    McOut o;
    McImage im = picture(40, 30);
    /* /dev/full is written in place and every write fails */
    if (access("/dev/full", W_OK) == 0 && mc_image_available()) {
        CU_ASSERT_EQUAL_FATAL(png_out(&o, "/dev/full", em, sizeof em), 0);
        CU_ASSERT_EQUAL(mc_image_write_png(&o, &im, em, sizeof em), -1);
        check_contains(em, "/dev/full");
    }
    /* an empty image: refused, the output discarded (nothing created) */
    char path[512];
    tmp_path(path, sizeof path, "empty.png");
    McImage none = {0, 0, NULL};
    CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
    CU_ASSERT_EQUAL(mc_image_write_png(&o, &none, em, sizeof em), -1);
    check_contains(em, path);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    int32_t map[1] = {0};
    CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
    CU_ASSERT_EQUAL(mc_image_write_mask(&o, map, 0, 1, NULL, 0, em, sizeof em), -1);
    CU_ASSERT_NOT_EQUAL(access(path, F_OK), 0);
    mc_image_free(&im);
}

/* ------------------------------------------------------------ reading failures */

static void
expect_read_fail(const char *path, const char *want)
{
    char em[512] = "";
    McImage im = {7, 7, (unsigned char *)em};
    CU_ASSERT_EQUAL(mc_image_read(path, &im, em, sizeof em), -1);
    CU_ASSERT_PTR_NULL(im.rgb);
    CU_ASSERT(im.w == 0 && im.h == 0);
    check_contains(em, path);
    if (want) check_contains(em, want);
    CU_ASSERT_PTR_NULL(strchr(em, '\n'));
}

#ifdef MC_HAVE_IMAGE
/* A JPEG of im (quality 90; progressive; an APP1 marker of exif_len bytes
 * when exif) into a malloc'd buffer. */
static unsigned char *
jpeg_bytes(const McImage *im, int progressive, const unsigned char *exif, unsigned exif_len, size_t *n)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr err;
    unsigned char *buf = NULL;
    unsigned long len = 0;
    ci.err = jpeg_std_error(&err);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &buf, &len);
    ci.image_width = (JDIMENSION)im->w;
    ci.image_height = (JDIMENSION)im->h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    if (progressive) jpeg_simple_progression(&ci);
    jpeg_start_compress(&ci, TRUE);
    if (exif) jpeg_write_marker(&ci, JPEG_APP0 + 1, exif, exif_len);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW r = im->rgb + (size_t)ci.next_scanline * im->w * 3;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *n = len;
    return buf;
}
#endif

static void
test_read_failures(void)
{
    char path[512], dir[512];
    expect_read_fail(tmp_path(path, sizeof path, "missing.jpg"), "cannot open");
    tmp_path(dir, sizeof dir, "dir.jpg");
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    expect_read_fail(dir, "directory");
    rmdir(dir);
    write_bytes(tmp_path(path, sizeof path, "empty.jpg"), "", 0);
    expect_read_fail(path, "empty");
    write_bytes(path, "GIF89a\x01\0\x01\0", 10);
    expect_read_fail(path, "GIF");
    write_bytes(path, "\xff\xd8", 2); /* too short for the signature */
    expect_read_fail(path, "not a JPEG or PNG");
    write_bytes(path, "\xff\xd8\xff\xe0\0\x10JFIF", 10);
    expect_read_fail(path, mc_image_available() ? "truncated" : "no image support");
    /* a 5x3 PNG whose second chunk declares 2 GiB (0x7a545874) of iTXt in a
     * 200-byte file: refused from the length, before any allocation (a
     * fuzzer's find: libpng asked for the 2 GiB first) */
    static const unsigned char huge[] = "\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x05\0\0\0\x03\x08\x02\0\0\0\xd4TR\xaf"
                                        "zTXtiTXtXML:com.adobe.xmp\0\0\0\0\0<x:xmpmeta>";
    write_bytes(path, huge, sizeof huge - 1);
#ifdef MC_MALLOC_WATCH
    biggest_malloc = 0, watch_malloc = 1;
#endif
    expect_read_fail(path, mc_image_available() ? "too large" : "no image support");
#ifdef MC_MALLOC_WATCH
    watch_malloc = 0;
    if (biggest_malloc > MC_PNG_CHUNK_MAX) fprintf(stderr, "\n  malloc(%zu) for a 200-byte file\n", biggest_malloc);
    CU_ASSERT(biggest_malloc <= MC_PNG_CHUNK_MAX);
#endif
    unlink(path);
}

/* Every prefix of a small JPEG (progressive and not) and PNG fails
 * cleanly; the whole files read. */
static void
test_truncations(void)
{
#ifdef MC_HAVE_IMAGE
    char path[512], em[512];
    tmp_path(path, sizeof path, "trunc.img");
    McImage im = picture(21, 11), back;
    for (int kind = 0; kind < 3; kind++) {
        size_t n = 0;
        unsigned char *b = NULL;
        if (kind < 2)
            b = jpeg_bytes(&im, kind, NULL, 0, &n);
        else {
            McOut o;
            CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
            CU_ASSERT_EQUAL_FATAL(mc_image_write_png(&o, &im, em, sizeof em), 0);
            b = (unsigned char *)unit_slurp(path, &n);
        }
        CU_ASSERT_PTR_NOT_NULL_FATAL(b);
        int refused = 0;
        for (size_t cut = 0; cut < n; cut++) {
            write_bytes(path, b, cut);
            em[0] = 0;
            int rc = mc_image_read(path, &back, em, sizeof em);
            if (rc == 0) { /* a PNG without its IEND chunk still has every pixel */
                CU_ASSERT(kind == 2 && cut >= n - 12);
                CU_ASSERT_EQUAL(memcmp(back.rgb, im.rgb, sizeof(unsigned char) * 21 * 11 * 3), 0);
                mc_image_free(&back);
            } else {
                refused++;
                CU_ASSERT_PTR_NULL(back.rgb);
                check_contains(em, path);
            }
        }
        CU_ASSERT(refused >= (int)n - 12);
        write_bytes(path, b, n);
        CU_ASSERT_EQUAL(mc_image_read(path, &back, em, sizeof em), 0);
        if (kind == 2) CU_ASSERT_EQUAL(memcmp(back.rgb, im.rgb, 21 * 11 * 3), 0);
        mc_image_free(&back);
        free(b);
    }
    mc_image_free(&im);
    unlink(path);
#endif
}

/* Damaged EXIF (offsets past the end, huge counts, wrong types, random
 * bytes): the image reads, unrotated; orientation 6 in a good one turns
 * it. */
static void
test_exif(void)
{
#ifdef MC_HAVE_IMAGE
    char path[512], em[512];
    tmp_path(path, sizeof path, "exif.jpg");
    McImage im = picture(12, 5), back;
    unsigned char ex[64] = "Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0\x06\0\0\0\0\0\0\0";
    const unsigned len = 6 + 8 + 2 + 12 + 4;
    size_t n;
    unsigned char *b = jpeg_bytes(&im, 0, ex, len, &n);
    write_bytes(path, b, n);
    free(b);
    CU_ASSERT_EQUAL_FATAL(mc_image_read(path, &back, em, sizeof em), 0);
    CU_ASSERT(back.w == 5 && back.h == 12); /* rotated a quarter turn */
    mc_image_free(&back);
    rng_seed(5);
    for (int trial = 0; trial < 300; trial++) {
        unsigned char d[64];
        memcpy(d, ex, sizeof d);
        int flips = 1 + trial % 4;
        for (int f = 0; f < flips; f++) d[6 + (int)rng_uniform(0, len - 6)] = (unsigned char)rng_uniform(0, 256);
        unsigned dl = trial % 5 ? len : 6 + (unsigned)rng_uniform(0, len - 6); /* cut short too */
        b = jpeg_bytes(&im, 0, d, dl, &n);
        write_bytes(path, b, n);
        free(b);
        CU_ASSERT_EQUAL_FATAL(mc_image_read(path, &back, em, sizeof em), 0);
        CU_ASSERT((back.w == 12 && back.h == 5) || (back.w == 5 && back.h == 12));
        mc_image_free(&back);
    }
    mc_image_free(&im);
    unlink(path);
#endif
}

/* ------------------------------------------------------------ the transform */

static void
test_transform(void)
{
    char em[512];
    McImage im = picture(30, 20), out;
    McPreproc p = mc_preproc_default(16, 16);
    CU_ASSERT_EQUAL(p.crop, 1);
    CU_ASSERT_EQUAL(p.interp, MC_INTERP_BICUBIC);
    CU_ASSERT(p.crop_pct == 0.875 && p.mean[0] == 0.485f && p.std[2] == 0.225f);
    /* same size, no crop: every filter is the identity */
    static const McInterp f[] = {MC_INTERP_NEAREST, MC_INTERP_BILINEAR, MC_INTERP_BICUBIC};
    for (int i = 0; i < 3; i++) {
        McPreproc q = mc_preproc_default(20, 30);
        q.crop = 0, q.interp = f[i];
        CU_ASSERT_EQUAL_FATAL(mc_image_resize_crop(&im, &q, &out, em, sizeof em), 0);
        CU_ASSERT_EQUAL(memcmp(out.rgb, im.rgb, 30 * 20 * 3), 0);
        mc_image_free(&out);
    }
    /* a constant image stays constant through every filter and size */
    McImage flat = {17, 9, malloc(17 * 9 * 3)};
    memset(flat.rgb, 200, 17 * 9 * 3);
    for (int i = 0; i < 3; i++)
        for (int s = 1; s < 40; s += 7) {
            McPreproc q = mc_preproc_default(s, s + 3 * (s % 2)); /* crop: square, no black padding */
            q.interp = f[i], q.crop = s % 2 == 0;
            CU_ASSERT_EQUAL_FATAL(mc_image_resize_crop(&flat, &q, &out, em, sizeof em), 0);
            for (int k = 0; k < q.H * q.W * 3; k++) CU_ASSERT_EQUAL(out.rgb[k], 200);
            mc_image_free(&out);
        }
    mc_image_free(&flat);
    /* normalized: (v / 255 - mean) / std in float */
    float *x = malloc(3 * 16 * 16 * sizeof *x);
    CU_ASSERT_EQUAL_FATAL(mc_image_preprocess(&im, &p, x, em, sizeof em), 0);
    CU_ASSERT_EQUAL_FATAL(mc_image_resize_crop(&im, &p, &out, em, sizeof em), 0);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 256; i++) CU_ASSERT_EQUAL(x[c * 256 + i], ((float)out.rgb[3 * i + c] / 255.0f - p.mean[c]) / p.std[c]);
    mc_image_free(&out);
    /* refused parameters */
    McPreproc bad[5];
    for (int i = 0; i < 5; i++) bad[i] = p;
    bad[0].H = 0, bad[1].W = -3, bad[2].crop_pct = 0, bad[3].crop_pct = NAN, bad[4].interp = (McInterp)1;
    for (int i = 0; i < 5; i++) {
        out.rgb = (unsigned char *)em;
        CU_ASSERT_EQUAL(mc_image_resize_crop(&im, &bad[i], &out, em, sizeof em), -1);
        CU_ASSERT_PTR_NULL(out.rgb);
        CU_ASSERT_EQUAL(mc_image_preprocess(&im, &bad[i], x, em, sizeof em), -1);
    }
    /* an image so elongated that its resize would pass the pixel limit */
    McImage thin = {1, 1 << 22, malloc((size_t)3 << 22)};
    memset(thin.rgb, 9, (size_t)3 << 22);
    CU_ASSERT_EQUAL(mc_image_resize_crop(&thin, &p, &out, em, sizeof em), -1);
    check_contains(em, "elongated");
    mc_image_free(&thin);
    /* mc_image_load: a file's size before the transform, and its errors
     * with the file's name */
    char path[512];
    tmp_path(path, sizeof path, "load.png");
    McOut o;
    if (mc_image_available()) {
        CU_ASSERT_EQUAL_FATAL(png_out(&o, path, em, sizeof em), 0);
        CU_ASSERT_EQUAL_FATAL(mc_image_write_png(&o, &im, em, sizeof em), 0);
        int w0 = 0, h0 = 0;
        float *y = malloc(3 * 16 * 16 * sizeof *y);
        CU_ASSERT_EQUAL(mc_image_load(path, &p, y, &w0, &h0, em, sizeof em), 0);
        CU_ASSERT(w0 == 30 && h0 == 20);
        CU_ASSERT_EQUAL(memcmp(x, y, 3 * 16 * 16 * sizeof *y), 0);
        CU_ASSERT_EQUAL(mc_image_load(path, &bad[2], y, NULL, NULL, em, sizeof em), -1);
        check_contains(em, path);
        free(y);
        unlink(path);
    }
    CU_ASSERT_EQUAL(mc_image_load(path, &p, x, NULL, NULL, em, sizeof em), -1);
    check_contains(em, path);
    free(x);
    mc_image_free(&im);
}

static void
test_available(void)
{
#ifdef MC_HAVE_IMAGE
    CU_ASSERT_EQUAL(mc_image_available(), 1);
#else
    CU_ASSERT_EQUAL(mc_image_available(), 0);
    char path[512], em[512];
    McImage im;
    write_bytes(tmp_path(path, sizeof path, "a.png"), "\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR", 16);
    CU_ASSERT_EQUAL(mc_image_read(path, &im, em, sizeof em), -1);
    check_contains(em, path);
    check_contains(em, "this build has no image support (libjpeg/libpng were not found when it was compiled)");
    unlink(path);
#endif
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"image support as built", test_available},
    {"class map: hand-computed, ties, NaN", test_classmap_hand},
    {"class map: row by row = argmax of the whole upsampling", test_classmap_random},
    {"default palette", test_palette},
    {"PNG written and read back", test_png_roundtrip},
    {"mask and overlay PNGs", test_mask_overlay},
    {"write errors discard the output", test_write_errors},
    {"unreadable files refused", test_read_failures},
    {"every truncation refused", test_truncations},
    {"damaged EXIF", test_exif},
    {"transform: identities, constants, normalize, refusals", test_transform},
};

MC_UNIT_MAIN("image", tests)
