/* tests/unit/image_dump.c -- the image library's steps written out as .npy,
 * for tests/e2e/test_image_preproc.py to compare with PIL + numpy.
 *
 *   image_dump [--size H[xW]] [--no-crop] [--crop-pct P]
 *              [--interp nearest|bilinear|bicubic] IMAGE PREFIX
 *   image_dump --encode ycck|arith|huffman IMAGE OUT.jpg
 *
 * Takes a JPEG or PNG file; writes PREFIX.dec.npy (the decoded image as
 * mc_image_read gives it, [h, w, 3]), PREFIX.u8.npy (resized and cropped,
 * [H, W, 3]) and PREFIX.f32.npy (normalized, [3, H, W]), all float32 (the
 * 8-bit values exactly).  Defaults: 224, crop 0.875, bicubic.  Exit status
 * 0, 1 with one line "image_dump: error: MESSAGE" when the library refuses,
 * 2 on bad usage.
 *
 * --encode writes IMAGE as a JPEG that PIL cannot write, so that the test
 * can check how those are read: ycck, a YCCK JPEG (Adobe transform 2: what
 * Photoshop writes for CMYK; c, m, y = 255 - r, g, b less k = min of
 * those); arith, an arithmetic-coded YCbCr JPEG, and huffman, the same
 * JPEG Huffman-coded (the same pixels once decoded).  Quality 90.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/mc_image.h"
#include "runtime/mc_npy.h"
#ifdef MC_HAVE_IMAGE
#include <jpeglib.h>
#endif

static int
usage(void)
{
    fprintf(stderr, "usage: image_dump [--size H[xW]] [--no-crop] [--crop-pct P] "
                    "[--interp nearest|bilinear|bicubic] IMAGE PREFIX\n");
    return 2;
}

/* The 8-bit image as float32 [h, w, 3] into PREFIX.SUFFIX.npy. */
static int
dump_u8(const McImage *im, const char *prefix, const char *suffix, char *em, size_t el)
{
    size_t n = (size_t)im->w * im->h * 3;
    float *f = malloc(n * sizeof *f + 1);
    if (!f) {
        snprintf(em, el, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) f[i] = im->rgb[i];
    char path[4096];
    snprintf(path, sizeof path, "%s.%s.npy", prefix, suffix);
    int64_t shape[3] = {im->h, im->w, 3};
    int rc = mc_npy_write_f32(path, f, 3, shape, em, el);
    free(f);
    return rc;
}

static int
encode(const char *kind, const char *in, const char *out)
{
    int ycck = !strcmp(kind, "ycck");
    char em[512];
    McImage im;
    if (mc_image_read(in, &im, em, sizeof em)) {
        fprintf(stderr, "image_dump: error: %s\n", em);
        return 1;
    }
#ifdef MC_HAVE_IMAGE
    FILE *f = fopen(out, "wb");
    unsigned char *row = malloc((size_t)im.w * 4);
    if (!f || !row) {
        fprintf(stderr, "image_dump: error: cannot write %s\n", out);
        return 1;
    }
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr jerr;
    ci.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&ci);
    jpeg_stdio_dest(&ci, f);
    ci.image_width = (JDIMENSION)im.w;
    ci.image_height = (JDIMENSION)im.h;
    ci.input_components = ycck ? 4 : 3;
    ci.in_color_space = ycck ? JCS_CMYK : JCS_RGB;
    jpeg_set_defaults(&ci);
    if (ycck) jpeg_set_colorspace(&ci, JCS_YCCK);
    ci.arith_code = !strcmp(kind, "arith");
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        const unsigned char *s = im.rgb + (size_t)ci.next_scanline * im.w * 3;
        for (int x = 0; x < im.w && !ycck; x++) memcpy(row + 3 * x, s + 3 * x, 3);
        for (int x = 0; x < im.w && ycck; x++) {
            int c = 255 - s[3 * x], m = 255 - s[3 * x + 1], y = 255 - s[3 * x + 2];
            int k = c < m ? (c < y ? c : y) : (m < y ? m : y);
            row[4 * x] = (unsigned char)(c - k), row[4 * x + 1] = (unsigned char)(m - k);
            row[4 * x + 2] = (unsigned char)(y - k), row[4 * x + 3] = (unsigned char)k;
        }
        JSAMPROW rp = row;
        jpeg_write_scanlines(&ci, &rp, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    mc_image_free(&im);
    return fclose(f) ? 1 : 0;
#else
    (void)out;
    mc_image_free(&im);
    return 1;
#endif
}

int
main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "--encode") && (!strcmp(argv[2], "ycck") || !strcmp(argv[2], "arith") || !strcmp(argv[2], "huffman")))
        return encode(argv[2], argv[3], argv[4]);
    McPreproc p = mc_preproc_default(224, 224);
    int i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--no-crop"))
            p.crop = 0;
        else if (i + 1 >= argc)
            return usage();
        else if (!strcmp(a, "--size")) {
            char *e;
            p.H = p.W = (int)strtol(argv[++i], &e, 10);
            if (*e == 'x') p.W = (int)strtol(e + 1, &e, 10);
            if (*e) return usage();
        } else if (!strcmp(a, "--crop-pct"))
            p.crop_pct = atof(argv[++i]);
        else if (!strcmp(a, "--interp")) {
            const char *v = argv[++i];
            if (!strcmp(v, "nearest")) p.interp = MC_INTERP_NEAREST;
            else if (!strcmp(v, "bilinear")) p.interp = MC_INTERP_BILINEAR;
            else if (!strcmp(v, "bicubic")) p.interp = MC_INTERP_BICUBIC;
            else return usage();
        } else
            return usage();
    }
    if (argc - i != 2) return usage();
    const char *path = argv[i], *prefix = argv[i + 1];
    char em[512];
    McImage im, r;
    if (mc_image_read(path, &im, em, sizeof em)) {
        fprintf(stderr, "image_dump: error: %s\n", em);
        return 1;
    }
    int rc = dump_u8(&im, prefix, "dec", em, sizeof em);
    if (!rc) rc = mc_image_resize_crop(&im, &p, &r, em, sizeof em);
    if (!rc) {
        rc = dump_u8(&r, prefix, "u8", em, sizeof em);
        float *x = rc ? NULL : malloc((size_t)3 * p.H * p.W * sizeof *x);
        if (!rc && x) {
            mc_image_normalize(&r, &p, x);
            int64_t shape[3] = {3, p.H, p.W};
            char path2[4096];
            snprintf(path2, sizeof path2, "%s.f32.npy", prefix);
            rc = mc_npy_write_f32(path2, x, 3, shape, em, sizeof em);
        } else if (!rc) {
            rc = -1;
            snprintf(em, sizeof em, "out of memory");
        }
        free(x);
        mc_image_free(&r);
    }
    mc_image_free(&im);
    if (rc) {
        fprintf(stderr, "image_dump: error: %s\n", em);
        return 1;
    }
    return 0;
}
