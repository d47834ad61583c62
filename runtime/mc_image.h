/* runtime/mc_image.h -- images in and out: JPEG/PNG decoding, the public
 * evaluation transform (resize, centre crop, normalize) as PIL computes it,
 * a segmentation class map back at the image's own size, coloured masks
 * and overlays as PNG.
 *
 * Decoding uses libjpeg-turbo and libpng (docs/images.md says why): the
 * same decoder as PIL on Debian, so decoded pixels are bit-identical to
 * PIL's.  Compiled only where those libraries exist for the target
 * (MC_HAVE_IMAGE defined); without them every function here that reads or
 * writes an image fails with a message saying so.
 *
 * Part of the runtime: mambac, the executables (CPU and CUDA) and the
 * shared libraries compile image.c; no allocation survives a call except
 * the McImage it fills.  Every failure returns -1 with one sentence in msg
 * naming the file; nothing aborts.
 */
#ifndef MC_IMAGE_H
#define MC_IMAGE_H
#include "mc_out.h"
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The resampling filters, numbered as PIL numbers them. */
typedef enum McInterp {
    MC_INTERP_NEAREST = 0,
    MC_INTERP_BILINEAR = 2,
    MC_INTERP_BICUBIC = 3,
} McInterp;

/* An 8-bit RGB image, rows top to bottom, pixels r,g,b (w * h * 3 bytes). */
typedef struct McImage {
    int w, h;
    unsigned char *rgb;
} McImage;

/* The largest image accepted (pixels), so a hostile header cannot ask for
 * more memory than a real photo needs: PIL's own limit (twice its
 * Image.MAX_IMAGE_PIXELS, where it raises DecompressionBombError), so the
 * same files are refused.  A few hundred bytes of arithmetic-coded
 * progressive JPEG can declare this many pixels: decoding one takes about
 * 1.1 GB (libjpeg's coefficients) plus 0.5 GB (the RGB image). */
#define MC_IMAGE_MAX_PIXELS 178956970LL

/* The largest PNG chunk other than IDAT read (bytes, as declared or
 * inflated; a longer one is skipped, as libpng skips a chunk it has no
 * memory for): PIL keeps at most 64 MiB of text in all. */
#define MC_PNG_CHUNK_MAX (64u << 20)

/* Reads a JPEG or PNG file (told apart by content, not by name) into RGB8,
 * as PIL's Image.open(path).convert("RGB") does: EXIF orientation applied
 * (then as ImageOps.exif_transpose); grayscale replicated; alpha dropped;
 * palette expanded; CMYK/YCCK JPEG converted as PIL converts them; 16-bit
 * PNG reduced to 8 bits (the high byte, as PIL for 16-bit colour; for
 * 16-bit grayscale too, where PIL's "I" -> "RGB" clips at 255).  Anything
 * else (another format, a truncated or corrupt file, an image over
 * MC_IMAGE_MAX_PIXELS, checked from the header before any allocation) is
 * refused with a sentence naming the file.  0 or -1 (im empty). */
int mc_image_read(const char *path, McImage *im, char *msg, size_t msglen);
void mc_image_free(McImage *im);

/* 1 when this build can read and write images (MC_HAVE_IMAGE). */
int mc_image_available(void);

/* The evaluation transform of the public code:
 *   crop:  resize the shorter side to S = floor(min(H, W) / crop_pct)
 *          (torchvision Resize(S): the longer side int(S * long / short)),
 *          then centre-crop H x W (torchvision CenterCrop's rounding);
 *   else:  resize to exactly H x W;
 * the resize is PIL's Image.resize with the filter (antialiased when it
 * shrinks; bicubic a = -0.5), computed as PIL does (fixed point, the
 * horizontal pass first, 8-bit between the passes) so that the result
 * matches PIL to within one level; then x / 255, minus mean, over std,
 * channel by channel. */
typedef struct McPreproc {
    int H, W;           /* the model's input size */
    int crop;           /* TEST.CROP */
    double crop_pct;    /* 0.875 */
    McInterp interp;    /* DATA.INTERPOLATION */
    float mean[3], std[3];
} McPreproc;

/* The ImageNet defaults: crop, 0.875, bicubic, mean (0.485, 0.456, 0.406),
 * std (0.229, 0.224, 0.225); H, W as given. */
McPreproc mc_preproc_default(int H, int W);

/* The resized (and cropped) RGB8 image, H x W: the step the tests compare
 * with PIL.  Where the resized image is narrower or lower than the crop
 * (a non-square H x W), the crop is padded with black as CenterCrop pads;
 * only the cropped window is computed.  out is allocated here
 * (mc_image_free).  0 or -1 (bad parameters, an image so elongated that
 * its resize would pass MC_IMAGE_MAX_PIXELS, out of memory). */
int mc_image_resize_crop(const McImage *im, const McPreproc *p, McImage *out, char *msg, size_t msglen);

/* im (already H x W) normalized into dst, float [3, H, W]. */
void mc_image_normalize(const McImage *im, const McPreproc *p, float *dst);

/* Both steps: im into dst, float [3, p->H, p->W].  0 or -1. */
int mc_image_preprocess(const McImage *im, const McPreproc *p, float *dst, char *msg, size_t msglen);

/* Reads path and preprocesses it into dst [3, H, W]; *w0, *h0 (may be
 * NULL) get the image's size after EXIF orientation.  0 or -1. */
int mc_image_load(const char *path, const McPreproc *p, float *dst, int *w0, int *h0, char *msg, size_t msglen);

/* One image's class map at its own size: logits [C, h, w] (the model's
 * output for the image, resized to h x w) upsampled bilinearly to H0 x W0
 * (align_corners as the model's, the way mmseg resizes seg_logits to the
 * original shape) and the best class of each pixel, computed row by row
 * (no [C, H0, W0] buffer: two rows of W0 values for every class).
 * Equal values go to the lower class, as numpy.argmax; NaN loses to every
 * number.  out: int32 [H0 * W0].  0, or -1 when out of memory for those
 * rows. */
int mc_image_classmap(const float *logits, int C, int h, int w, int align_corners, int H0, int W0, int32_t *out);

/* The colours for n classes when the checkpoint gives none: a fixed,
 * documented palette (distinct neighbouring colours; class 0 not black). */
void mc_image_default_palette(int n, unsigned char (*pal)[3]);

/* Writes the class map map [h * w] coloured with pal (nclasses colours) as
 * an RGB PNG into the open o; a class outside 0..nclasses-1 is black.
 * 0, or -1 with the message (o discarded). */
int mc_image_write_mask(McOut *o, const int32_t *map, int w, int h, const unsigned char (*pal)[3], int nclasses,
                        char *msg, size_t msglen);

/* As mc_image_write_mask, blended over im (w x h, the original image):
 * out = round((1 - alpha) * image + alpha * colour); alpha outside [0, 1]
 * (or NaN) means the default 0.5; a pixel whose class is outside
 * 0..nclasses-1 keeps the image's colour. */
int mc_image_write_overlay(McOut *o, const McImage *im, const int32_t *map, const unsigned char (*pal)[3],
                           int nclasses, double alpha, char *msg, size_t msglen);

/* Writes an RGB8 image as PNG into the open o (commits it). 0 or -1. */
int mc_image_write_png(McOut *o, const McImage *im, char *msg, size_t msglen);

#ifdef __cplusplus
}
#endif
#endif
