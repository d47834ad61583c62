/* tests/fuzz/fuzz_image.c -- libFuzzer harness for the image reader
 * (runtime/image.c).  The input is a file: written to a scratch file
 * (fuzz_file.h) and read by mc_image_read (a PNG with wrong chunk CRCs a
 * second time with them right), which must return 0 with an image of
 * 1..MC_IMAGE_MAX_PIXELS pixels, or -1 with a message and an empty image;
 * never crash, hang or leak.  A decoded image (up to FUZZ_MAX_PIXELS) then
 * goes through the evaluation transform to 17x23 (crop and no crop, every
 * McInterp: mc_image_resize_crop, and mc_image_preprocess, which must
 * equal the resize normalized) and a class map of tiny logits (3 classes,
 * 2x3, a NaN; both align_corners) back at its own size, every class in
 * range.  Seeds (tests/fuzz/image_seeds.py) and kept crashers:
 * tests/fuzz/corpus/image/.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/mc_image.h"
#include "runtime/mc_npy.h" /* mc_crc32 */
#include "fuzz_file.h"

/* Transforms and class maps take time in proportion to the image: a few
 * hundred bytes of arithmetic-coded JPEG (which reads as zeros past its
 * data) can declare MC_IMAGE_MAX_PIXELS, and this harness's six
 * transforms and two class maps of such an image took 12.8 s in a release
 * build.  Only images up to this size go on from the decoder. */
#define FUZZ_MAX_PIXELS (1LL << 22)

/* The transforms of im; aborts on a wrong result. */
static void
transforms(const McImage *im)
{
    static const McInterp interps[] = {MC_INTERP_NEAREST, MC_INTERP_BILINEAR, MC_INTERP_BICUBIC};
    char msg[512];
    float dst[3 * 17 * 23], ref[3 * 17 * 23];
    for (int crop = 0; crop < 2; crop++)
        for (int i = 0; i < 3; i++) {
            McPreproc p = mc_preproc_default(17, 23);
            p.crop = crop;
            p.interp = interps[i];
            McImage r;
            msg[0] = 0;
            if (mc_image_resize_crop(im, &p, &r, msg, sizeof msg)) {
                /* only an image too elongated for the crop's resize */
                if (!crop || !strstr(msg, "too elongated") || r.rgb)
                    abort();
                continue;
            }
            if (r.w != 23 || r.h != 17 || !r.rgb)
                abort();
            mc_image_normalize(&r, &p, ref);
            mc_image_free(&r);
            if (mc_image_preprocess(im, &p, dst, msg, sizeof msg) || memcmp(dst, ref, sizeof dst))
                abort();
        }
}

/* A class map of tiny logits at im's size; aborts on a class out of range. */
static void
classmap(const McImage *im)
{
    static const float logits[3 * 2 * 3] = {0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0, 2.5f, 2.5f, NAN, -1, 9, 2.5f};
    size_t n = (size_t)im->w * im->h;
    int32_t *map = malloc(n * sizeof *map);
    if (!map)
        return;
    for (int align = 0; align < 2; align++) {
        if (mc_image_classmap(logits, 3, 2, 3, align, im->h, im->w, map))
            abort();
        for (size_t i = 0; i < n; i++)
            if (map[i] < 0 || map[i] > 2)
                abort();
    }
    free(map);
}

/* The PNG data[0..size) with every whole chunk's CRC made right, or NULL
 * when data is no PNG or every CRC is right already: libpng refuses a
 * critical chunk with a wrong CRC, so without this almost no mutation of
 * a PNG would reach the parsing behind the check. */
static uint8_t *
png_fix_crcs(const uint8_t *data, size_t size)
{
    if (size < 8 || memcmp(data, "\x89PNG\r\n\x1a\n", 8))
        return NULL;
    uint8_t *b = malloc(size);
    if (!b)
        return NULL;
    memcpy(b, data, size);
    int changed = 0;
    for (size_t p = 8; size - p >= 12;) {
        uint32_t len = (uint32_t)b[p] << 24 | (uint32_t)b[p + 1] << 16 | (uint32_t)b[p + 2] << 8 | b[p + 3];
        if (len > size - p - 12)
            break;
        uint32_t crc = mc_crc32(0, b + p + 4, (size_t)len + 4);
        uint8_t *c = b + p + 8 + len;
        uint8_t want[4] = {(uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc};
        if (memcmp(c, want, 4)) {
            memcpy(c, want, 4);
            changed = 1;
        }
        p += 12 + (size_t)len;
    }
    if (!changed) {
        free(b);
        return NULL;
    }
    return b;
}

/* Reads the file data[0..size) and transforms what it decodes. */
static void
read_one(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_write(data, size);
    McImage im;
    char msg[512];
    msg[0] = 0;
    int rc = mc_image_read(path, &im, msg, sizeof msg);
    if (rc != 0) {
        if (rc != -1 || !msg[0] || im.rgb || im.w || im.h)
            abort();
        return;
    }
    if (im.w < 1 || im.h < 1 || !im.rgb || (long long)im.w * im.h > MC_IMAGE_MAX_PIXELS)
        abort();
    if ((long long)im.w * im.h <= FUZZ_MAX_PIXELS) {
        transforms(&im);
        classmap(&im);
    }
    mc_image_free(&im);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A progressive (or multi-scan) JPEG is held whole as coefficients by
     * libjpeg: 6 bytes a pixel at 4:4:4, 1.1 GB at MC_IMAGE_MAX_PIXELS for
     * a few hundred bytes of arithmetic coding, past libFuzzer's
     * -rss_limit_mb.  libjpeg-turbo's own cap (JPEGMEM) turns that into
     * an error ("Backing store not supported") here. */
    setenv("JPEGMEM", "512M", 0);
    read_one(data, size);
    uint8_t *fixed = png_fix_crcs(data, size);
    if (fixed) { /* and a PNG once more with its CRCs right */
        read_one(fixed, size);
        free(fixed);
    }
    return 0;
}
