/* runtime/image.c -- images in and out (see mc_image.h, docs/images.md).
 *
 * Takes JPEG and PNG files (told apart by their first bytes; decoded with
 * libjpeg-turbo and libpng, the libraries Debian's PIL decodes with), RGB8
 * images and segmentation logits.  Produces RGB8 images equal to PIL 9.4's
 * ImageOps.exif_transpose(Image.open(p)).convert("RGB"), the evaluation
 * transform (PIL's Image.resize: separable, antialiased, 22-bit fixed point,
 * horizontal pass first; torchvision's Resize(int) and CenterCrop
 * geometry) and its normalized float tensor, class maps at an image's own
 * size, and PNG files written through McOut.
 *
 * Without MC_HAVE_IMAGE (no libjpeg/libpng where it is compiled) the
 * arithmetic still works and every function that reads or writes a file
 * fails with a sentence saying so.  Every failure returns -1 with one
 * sentence naming the file; no allocation outlives a failed call; libjpeg's
 * and libpng's errors come back through setjmp/longjmp with every buffer
 * that may be live at that point kept in a volatile local and freed.
 */
#include "mc_image.h"
#include "mc_file.h"
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MC_HAVE_IMAGE
#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#endif

#define NO_SUPPORT "this build has no image support (libjpeg/libpng were not found when it was compiled)"

/* The name of an output in messages. */
static const char *
out_name(const McOut *o)
{
    return o->path ? o->path : "standard output";
}

int
mc_image_available(void)
{
#ifdef MC_HAVE_IMAGE
    return 1;
#else
    return 0;
#endif
}

void
mc_image_free(McImage *im)
{
    if (!im) return;
    free(im->rgb);
    im->rgb = NULL;
    im->w = im->h = 0;
}

/* w x h RGB8 pixels, or NULL when over MC_IMAGE_MAX_PIXELS or out of memory. */
static unsigned char *
rgb_alloc(int w, int h)
{
    if (w <= 0 || h <= 0 || (long long)w * h > MC_IMAGE_MAX_PIXELS) return NULL;
    return malloc((size_t)w * (size_t)h * 3);
}

#ifdef MC_HAVE_IMAGE
/* ------------------------------------------------------------ EXIF orientation
 * PIL's exif_transpose reads tag 0x0112 of IFD0 of the TIFF structure in a
 * JPEG's first APP1 "Exif" marker or a PNG's eXIf chunk (or its "Raw
 * profile type exif" text; failing a tag there, a PNG's XMP
 * tiff:Orientation) and transposes by its value 2..8. */

static unsigned
rd16(const unsigned char *p, int le)
{
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | p[1];
}

static uint32_t
rd32(const unsigned char *p, int le)
{
    return le ? rd16(p, 1) | (uint32_t)rd16(p + 2, 1) << 16 : (uint32_t)rd16(p, 0) << 16 | rd16(p + 2, 0);
}

/* The orientation tag of a TIFF structure t[0..n) ("Exif\0\0" before it is
 * skipped): its value, or 0 when there is no such tag (or t is not TIFF). */
static int
exif_orientation(const unsigned char *t, size_t n)
{
    if (n >= 6 && !memcmp(t, "Exif\0\0", 6)) t += 6, n -= 6;
    if (n < 8) return 0;
    int le = t[0] == 'I' && t[1] == 'I';
    if (!le && !(t[0] == 'M' && t[1] == 'M')) return 0;
    if (rd16(t + 2, le) != 42) return 0;
    size_t off = rd32(t + 4, le);
    if (off > n || n - off < 2) return 0;
    unsigned count = rd16(t + off, le);
    for (size_t i = 0; i < count; i++) {
        size_t e = off + 2 + 12 * i;
        if (e + 12 > n) break;
        if (rd16(t + e, le) != 0x0112) continue;
        unsigned type = rd16(t + e + 2, le);
        if (rd32(t + e + 4, le) != 1) return 0;
        uint32_t v = type == 3 ? rd16(t + e + 8, le) : type == 4 ? rd32(t + e + 8, le) : 0;
        return v <= 8 ? (int)v : 0;
    }
    return 0;
}

/* The image transposed as PIL's Image.transpose for EXIF orientation o
 * (2 mirror, 3 rotate 180, 4 flip, 5 transpose, 6 rotate 90 clockwise,
 * 7 transverse, 8 rotate 90 counter-clockwise); other values leave it.
 * -1 when out of memory (im unchanged). */
static int
orient(McImage *im, int o)
{
    if (o < 2 || o > 8) return 0;
    ptrdiff_t w = im->w, h = im->h, base, dx, dy; /* source pixel = base + x*dx + y*dy */
    switch (o) {
    case 2: base = w - 1, dx = -1, dy = w; break;
    case 3: base = (h - 1) * w + w - 1, dx = -1, dy = -w; break;
    case 4: base = (h - 1) * w, dx = 1, dy = -w; break;
    case 5: base = 0, dx = w, dy = 1; break;
    case 6: base = (h - 1) * w, dx = -w, dy = 1; break;
    case 7: base = (h - 1) * w + w - 1, dx = -w, dy = -1; break;
    default: base = w - 1, dx = w, dy = -1; break;
    }
    int ow = o >= 5 ? im->h : im->w, oh = o >= 5 ? im->w : im->h;
    unsigned char *d = rgb_alloc(ow, oh);
    if (!d) return -1;
    for (ptrdiff_t y = 0; y < oh; y++) {
        unsigned char *q = d + (size_t)y * ow * 3;
        for (ptrdiff_t x = 0; x < ow; x++, q += 3) {
            const unsigned char *s = im->rgb + (base + x * dx + y * dy) * 3;
            q[0] = s[0], q[1] = s[1], q[2] = s[2];
        }
    }
    free(im->rgb);
    im->rgb = d;
    im->w = ow;
    im->h = oh;
    return 0;
}

/* ------------------------------------------------------------ JPEG */

typedef struct JpegErr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    const char *path;
    char *msg;
    size_t msglen;
} JpegErr;

static void
jpegin_error(j_common_ptr ci)
{
    JpegErr *e = (JpegErr *)ci->err;
    char text[JMSG_LENGTH_MAX];
    ci->err->format_message(ci, text);
    mc_file_fail(e->msg, e->msglen, "%s: not a JPEG image that can be read (libjpeg: %s)", e->path, text);
    longjmp(e->jb, 1);
}

/* Warnings: running out of data (libjpeg would fill the rest with grey) or
 * entropy data cut by a marker are errors, as PIL refuses truncated files;
 * the others (extraneous bytes between markers, ...) are ignored, as PIL
 * ignores them. */
static void
jpegin_message(j_common_ptr ci, int level)
{
    if (level >= 0) return;
    int code = ci->err->msg_code;
    if (code != JWRN_JPEG_EOF && code != JWRN_HIT_MARKER && code != JWRN_MUST_RESYNC) return;
    JpegErr *e = (JpegErr *)ci->err;
    char text[JMSG_LENGTH_MAX];
    ci->err->format_message(ci, text);
    mc_file_fail(e->msg, e->msglen, "%s: the JPEG file is truncated or corrupt (libjpeg: %s)", e->path, text);
    longjmp(e->jb, 1);
}

/* A progressive file with thousands of tiny scans takes minutes to decode:
 * more scans than any encoder writes are refused. */
#define JPEG_MAX_SCANS 1000

static void
jpegin_progress(j_common_ptr ci)
{
    j_decompress_ptr d = (j_decompress_ptr)ci;
    if (d->input_scan_number <= JPEG_MAX_SCANS) return;
    JpegErr *e = (JpegErr *)ci->err;
    mc_file_fail(e->msg, e->msglen, "%s: the JPEG file has more than %d scans (a real image has at most a few dozen)",
                 e->path, JPEG_MAX_SCANS);
    longjmp(e->jb, 1);
}

/* CMYK (Adobe's inverted convention, which PIL assumes for every
 * 4-component JPEG) to RGB as PIL 9.4 converts CMYK: with nk = 255 - k,
 * r = nk - round(c * nk / 255), computed as (t + (t >> 8)) >> 8 with
 * t = c * nk + 128 (checked against PIL on every (c, k)). */
static unsigned char
cmyk_channel(unsigned c, unsigned k)
{
    unsigned nk = 255 - k, t = c * nk + 128;
    return (unsigned char)(nk - ((t + (t >> 8)) >> 8));
}

static int
read_jpeg(FILE *f, const char *path, McImage *im, char *msg, size_t msglen)
{
    struct jpeg_decompress_struct ci;
    struct jpeg_progress_mgr pm;
    JpegErr je;
    unsigned char *volatile rgb = NULL;
    unsigned char *volatile row = NULL;
    memset(&ci, 0, sizeof ci);
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpegin_error;
    je.pub.emit_message = jpegin_message;
    je.path = path;
    je.msg = msg;
    je.msglen = msglen;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        free(rgb);
        free(row);
        return -1;
    }
    jpeg_create_decompress(&ci);
    pm.progress_monitor = jpegin_progress;
    ci.progress = &pm;
    jpeg_stdio_src(&ci, f);
    jpeg_save_markers(&ci, JPEG_APP0 + 1, 0xffff);
    jpeg_read_header(&ci, TRUE);
    int w = (int)ci.image_width, h = (int)ci.image_height, nc = ci.num_components;
    if ((long long)w * h > MC_IMAGE_MAX_PIXELS) {
        mc_file_fail(msg, msglen, "%s: the JPEG image is %dx%d, more than the %lld pixels accepted", path, w, h,
                     (long long)MC_IMAGE_MAX_PIXELS);
        longjmp(je.jb, 1);
    }
    if (nc == 1)
        ci.out_color_space = JCS_GRAYSCALE;
    else if (nc == 3 && (ci.jpeg_color_space == JCS_YCbCr || ci.jpeg_color_space == JCS_RGB))
        ci.out_color_space = JCS_RGB;
    else if (nc == 4 && (ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK))
        ci.out_color_space = JCS_CMYK;
    else {
        mc_file_fail(msg, msglen, "%s: a JPEG image with %d colour components in colour space %d is not supported", path,
                     nc, (int)ci.jpeg_color_space);
        longjmp(je.jb, 1);
    }
    int o = 0;
    for (jpeg_saved_marker_ptr m = ci.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && m->data_length >= 5 && !memcmp(m->data, "Exif", 5)) {
            o = exif_orientation(m->data, m->data_length); /* the first Exif marker, as PIL */
            break;
        }
    rgb = malloc((size_t)w * (size_t)h * 3);
    row = malloc((size_t)w * 4);
    if (!rgb || !row) {
        mc_file_fail(msg, msglen, "%s: out of memory for a %dx%d image", path, w, h);
        longjmp(je.jb, 1);
    }
    jpeg_start_decompress(&ci);
    while (ci.output_scanline < ci.output_height) {
        unsigned char *d = rgb + (size_t)ci.output_scanline * w * 3;
        JSAMPROW rp = ci.out_color_space == JCS_RGB ? d : row;
        if (jpeg_read_scanlines(&ci, &rp, 1) != 1) continue;
        if (ci.out_color_space == JCS_GRAYSCALE)
            for (int x = 0; x < w; x++) d[3 * x] = d[3 * x + 1] = d[3 * x + 2] = row[x];
        else if (ci.out_color_space == JCS_CMYK)
            for (int x = 0; x < w; x++) {
                const unsigned char *s = row + 4 * x;
                unsigned k = 255u - s[3];
                for (int c = 0; c < 3; c++) d[3 * x + c] = cmyk_channel(255u - s[c], k);
            }
    }
    jpeg_finish_decompress(&ci); /* reads up to EOI: a file without one is truncated */
    jpeg_destroy_decompress(&ci);
    free(row);
    im->w = w;
    im->h = h;
    im->rgb = rgb;
    if (orient(im, o)) {
        mc_image_free(im);
        return mc_file_fail(msg, msglen, "%s: out of memory for a %dx%d image", path, w, h);
    }
    return 0;
}

/* ------------------------------------------------------------ PNG */

typedef struct PngErr {
    const char *path;
    char *msg;
    size_t msglen;
    int quiet;      /* errors after the pixels (png_read_end) only end the reading */
    char warn[128]; /* libpng's first warning, told with an error that follows it */
    size_t alloc_max; /* the largest block libpng may have (pngin_malloc) */
} PngErr;

/* libpng reads a chunk other than IDAT whole, into a block as long as the
 * chunk says, before it finds the file too short: a 200-byte file that
 * declares a 2 GiB text chunk would cost 2 GiB.  Its blocks are capped:
 * MC_PNG_CHUNK_MAX, and a row's buffers (8 bytes a pixel at most) while
 * the rows are set up.  A refused block is libpng's "out of memory" for
 * that chunk (a warning: the chunk is skipped, and the file ends early). */
static png_voidp
pngin_malloc(png_structp png, png_alloc_size_t n)
{
    const PngErr *e = png_get_mem_ptr(png);
    return e && n > e->alloc_max ? NULL : malloc(n);
}

static void
pngin_free(png_structp png, png_voidp p)
{
    (void)png;
    free(p);
}

static void
pngin_error(png_structp png, png_const_charp text)
{
    PngErr *e = png_get_error_ptr(png);
    if (!e->quiet)
        mc_file_fail(e->msg, e->msglen, "%s: the PNG file is truncated or corrupt (libpng: %s%s%s)", e->path, text,
                     e->warn[0] ? ", after " : "", e->warn);
    png_longjmp(png, 1);
}

static void
pngin_warning(png_structp png, png_const_charp text)
{
    /* as PIL: a damaged ancillary chunk does not stop the image */
    PngErr *e = png_get_error_ptr(png);
    if (e && !e->warn[0]) snprintf(e->warn, sizeof e->warn, "%s", text);
}

/* PIL's getexif for PNG: the tag in the eXIf chunk, else in a "Raw
 * profile type exif" text (hex after three lines); 0 when neither has
 * one. */
static int
pngin_exif(png_structp png, png_infop info)
{
    png_bytep exif;
    png_uint_32 n;
    png_textp text;
    int nt = 0, o = 0;
    if (png_get_eXIf_1(png, info, &n, &exif) && exif && n) return exif_orientation(exif, n);
    png_get_text(png, info, &text, &nt);
    for (int i = 0; i < nt && !o; i++) {
        const char *s = text[i].text;
        size_t len = text[i].text_length ? text[i].text_length : text[i].itxt_length, p = 0, nb = 0;
        if (!s || strcmp(text[i].key, "Raw profile type exif")) continue;
        unsigned char *b = malloc(len / 2 + 1);
        if (!b) continue;
        for (int lines = 0; p < len && lines < 3; p++) lines += s[p] == '\n';
        for (int hi = -1; p < len; p++) {
            int c = (unsigned char)s[p];
            int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
            if (v < 0) continue;
            if (hi < 0) hi = v;
            else b[nb++] = (unsigned char)(hi << 4 | v), hi = -1;
        }
        o = exif_orientation(b, nb);
        free(b);
    }
    return o;
}

/* Failing that, PIL reads an XMP packet's tiff:Orientation="N" or
 * <tiff:Orientation>N (the first). */
static int
pngin_xmp(png_structp png, png_infop info)
{
    static const char tag[] = "tiff:Orientation";
    png_textp text;
    int nt = 0;
    png_get_text(png, info, &text, &nt);
    for (int i = 0; i < nt; i++) {
        if (!text[i].text || strcmp(text[i].key, "XML:com.adobe.xmp")) continue;
        for (const char *q = text[i].text; (q = strstr(q, tag)); q++) {
            const char *v = q + sizeof tag - 1;
            if (v[0] == '=' && v[1] == '"') v += 2;
            else if (v[0] == '>') v += 1;
            else continue;
            if (*v >= '0' && *v <= '9') return *v - '0';
        }
    }
    return 0;
}

static int
read_png(FILE *f, const char *path, McImage *im, char *msg, size_t msglen)
{
    PngErr pe = {path, msg, msglen, 0, {0}, MC_PNG_CHUNK_MAX};
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &pe, pngin_error, pngin_warning, &pe, pngin_malloc,
                                               pngin_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    png_infop end = info ? png_create_info_struct(png) : NULL;
    unsigned char *volatile rgb = NULL;
    volatile int rows_done = 0;
    if (!end) {
        png_destroy_read_struct(png ? &png : NULL, info ? &info : NULL, NULL);
        return mc_file_fail(msg, msglen, "%s: out of memory for the PNG reader", path);
    }
    png_uint_32 w = 0, h = 0;
    int depth = 0, type = 0, interlace = 0;
    unsigned char pal[256][3];
    if (setjmp(png_jmpbuf(png))) {
        if (!rows_done) {
            png_destroy_read_struct(&png, &info, &end);
            free(rgb);
            return -1;
        }
        goto done; /* the pixels are all there (in im): what follows them is PIL's to skip too */
    }
    png_init_io(png, f);
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_set_chunk_malloc_max(png, MC_PNG_CHUNK_MAX); /* compressed text: at most this much inflated */
    png_read_info(png, info);
    png_get_IHDR(png, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
    if ((long long)w * h > MC_IMAGE_MAX_PIXELS) {
        mc_file_fail(msg, msglen, "%s: the PNG image is %ux%u, more than the %lld pixels accepted", path, (unsigned)w,
                     (unsigned)h, (long long)MC_IMAGE_MAX_PIXELS);
        png_longjmp(png, 1);
    }
    if (type == PNG_COLOR_TYPE_PALETTE) {
        /* PIL's palette: the PLTE entries, then grey i for an index i past them */
        png_colorp plte = NULL;
        int np = 0;
        png_get_PLTE(png, info, &plte, &np);
        for (int i = 0; i < 256; i++) {
            pal[i][0] = pal[i][1] = pal[i][2] = (unsigned char)i;
            if (i < np) pal[i][0] = plte[i].red, pal[i][1] = plte[i].green, pal[i][2] = plte[i].blue;
        }
        png_set_packing(png);
    }
    if (depth == 16) png_set_strip_16(png); /* the high byte, as PIL's ;16B unpackers */
    if (type & PNG_COLOR_MASK_ALPHA) png_set_strip_alpha(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png); /* x 255, 85, 17 as PIL */
    int passes = png_set_interlace_handling(png);
    if ((size_t)w * 8 + 256 > pe.alloc_max) pe.alloc_max = (size_t)w * 8 + 256; /* the row buffers (padded) */
    png_read_update_info(png, info);
    pe.alloc_max = MC_PNG_CHUNK_MAX;
    int ch = png_get_channels(png, info);
    if ((ch != 1 && ch != 3) || png_get_rowbytes(png, info) != (size_t)w * ch) {
        mc_file_fail(msg, msglen, "%s: unexpected PNG layout (%d channels)", path, ch);
        png_longjmp(png, 1);
    }
    rgb = malloc((size_t)w * h * 3);
    if (!rgb) {
        mc_file_fail(msg, msglen, "%s: out of memory for a %ux%u image", path, (unsigned)w, (unsigned)h);
        png_longjmp(png, 1);
    }
    /* rows land at the start of their RGB row; one channel is spread to
     * three after the last pass */
    for (int p = 0; p < passes; p++)
        for (png_uint_32 y = 0; y < h; y++) png_read_row(png, rgb + (size_t)y * w * 3, NULL);
    if (ch == 1)
        for (png_uint_32 y = 0; y < h; y++) {
            unsigned char *r = rgb + (size_t)y * w * 3;
            for (png_uint_32 x = w; x-- > 0;) {
                const unsigned char *c = type == PNG_COLOR_TYPE_PALETTE ? pal[r[x]] : NULL;
                unsigned char g = r[x];
                r[3 * x] = c ? c[0] : g, r[3 * x + 1] = c ? c[1] : g, r[3 * x + 2] = c ? c[2] : g;
            }
        }
    im->w = (int)w;
    im->h = (int)h;
    im->rgb = rgb;
    rows_done = 1;
    pe.quiet = 1;
    png_read_end(png, end); /* chunks after the pixels: eXIf or text may be there */
done:;
    int o = pngin_exif(png, info);
    if (!o && rows_done) o = pngin_exif(png, end);
    if (!o) o = pngin_xmp(png, info);
    if (!o && rows_done) o = pngin_xmp(png, end);
    png_destroy_read_struct(&png, &info, &end);
    if (orient(im, o)) {
        mc_file_fail(msg, msglen, "%s: out of memory for a %dx%d image", path, im->w, im->h);
        mc_image_free(im);
        return -1;
    }
    return 0;
}
#endif /* MC_HAVE_IMAGE */

/* What a file that is neither JPEG nor PNG seems to be, for the message. */
static const char *
other_format(const unsigned char *b, size_t n)
{
    static const struct {
        const char *magic;
        size_t len;
        const char *what;
    } k[] = {
        {"GIF8", 4, "a GIF image"},     {"BM", 2, "a BMP image"},        {"II*\0", 4, "a TIFF image"},
        {"MM\0*", 4, "a TIFF image"},   {"\x93NUMPY", 6, "a .npy array"}, {"\0\0\0\fjP  ", 8, "a JPEG 2000 image"},
        {"qoif", 4, "a QOI image"},     {"\xff\x0a", 2, "a JPEG XL image"},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++)
        if (n >= k[i].len && !memcmp(b, k[i].magic, k[i].len)) return k[i].what;
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "a WebP image";
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) return "an ISO media file (HEIF/AVIF or video)";
    return NULL;
}

int
mc_image_read(const char *path, McImage *im, char *msg, size_t msglen)
{
    im->w = im->h = 0;
    im->rgb = NULL;
    uint64_t size;
    int fd = mc_file_open(path, "JPEG or PNG image", 0, &size, msg, msglen);
    if (fd < 0) return -1;
    if (size == 0) {
        close(fd);
        return mc_file_fail(msg, msglen, "%s: the file is empty (0 bytes), not a JPEG or PNG image", path);
    }
    unsigned char head[16];
    size_t n = size < sizeof head ? (size_t)size : sizeof head;
    if (mc_file_read_at(fd, head, n, 0)) {
        int e = errno;
        close(fd);
        return mc_file_fail(msg, msglen, "%s: cannot read: %s", path, strerror(e));
    }
    int jpeg = n >= 3 && head[0] == 0xff && head[1] == 0xd8 && head[2] == 0xff;
    int png = n >= 8 && !memcmp(head, "\x89PNG\r\n\x1a\n", 8);
    if (!jpeg && !png) {
        close(fd);
        char esc[64];
        mc_str_escape(esc, sizeof esc, (const char *)head, n < 6 ? n : 6);
        const char *what = other_format(head, n);
        return mc_file_fail(msg, msglen, "%s: %s%snot a JPEG or PNG file (it starts with \"%s\"%s)", path,
                            what ? what : "", what ? ", " : "", esc, n > 6 ? "..." : "");
    }
#ifdef MC_HAVE_IMAGE
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return mc_file_fail(msg, msglen, "%s: cannot read: %s", path, strerror(e));
    }
    int rc = jpeg ? read_jpeg(f, path, im, msg, msglen) : read_png(f, path, im, msg, msglen);
    fclose(f);
    return rc;
#else
    close(fd);
    return mc_file_fail(msg, msglen, "%s: " NO_SUPPORT, path);
#endif
}

/* ------------------------------------------------------------ resampling
 * PIL's Image.resize((ow, oh), filter) of an RGB image, as Pillow computes
 * it (each fact below checked against python3-pil 9.4 by
 * tests/e2e/test_image_preproc.py):
 *  - each axis separately, the horizontal pass first, its result rounded
 *    and clipped to 8 bits before the vertical pass; an axis whose size
 *    does not change is not resampled;
 *  - output i of n from an input of m: scale = m / n, centre (i + 0.5) *
 *    scale; the filter stretched by fs = max(scale, 1) (antialiasing when
 *    shrinking): support s = fs * support(filter), inputs from
 *    xmin = max((int)(centre - s + 0.5), 0) to min((int)(centre + s + 0.5), m),
 *    weight of input xmin + j: filter((xmin + j - centre + 0.5) / fs),
 *    the weights divided by their sum, then to fixed point with 22
 *    fractional bits (rounded half away from zero);
 *  - a pixel: 2^21 + sum of weight * value, shifted right by 22, clipped;
 *  - NEAREST: input (int)(x_i) with x_0 = scale / 2 and x_{i+1} = x_i +
 *    scale accumulated in double (PIL's affine scaling loop).
 * Only a window [x0, x0 + cw) x [y0, y0 + ch) of the ow x oh result is
 * computed (the centre crop); outside the result it is black (the crop's
 * zero padding). */

#define PREC 22

static double
filter_eval(McInterp f, double x)
{
    if (x < 0) x = -x;
    if (f == MC_INTERP_BILINEAR) return x < 1 ? 1 - x : 0;
    const double a = -0.5; /* bicubic */
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
}

/* The weights of outputs i0..i0+n-1 (of out) along an axis of in samples:
 * first[i], cnt[i] and k[i * ksize ..]. */
typedef struct Coeffs {
    int ksize;
    int *first, *cnt;
    int32_t *k;
} Coeffs;

static void
coeffs_free(Coeffs *c)
{
    free(c->first);
    free(c->cnt);
    free(c->k);
}

static int
coeffs_make(McInterp f, int in, int out, int i0, int n, Coeffs *c)
{
    double scale = (double)in / out, fs = scale < 1 ? 1 : scale;
    double support = (f == MC_INTERP_BILINEAR ? 1.0 : 2.0) * fs;
    c->ksize = (int)ceil(support) * 2 + 1;
    c->first = malloc((size_t)n * sizeof(int) + 1);
    c->cnt = malloc((size_t)n * sizeof(int) + 1);
    c->k = malloc((size_t)n * c->ksize * sizeof(int32_t) + 1);
    double *w = malloc((size_t)c->ksize * sizeof(double));
    if (!c->first || !c->cnt || !c->k || !w) {
        coeffs_free(c);
        free(w);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        double center = (i0 + i + 0.5) * scale, sum = 0, ss = 1.0 / fs;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in) xmax = in;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = filter_eval(f, (x + xmin - center + 0.5) * ss);
            sum += w[x];
        }
        int32_t *k = c->k + (size_t)i * c->ksize;
        for (int x = 0; x < xmax; x++) {
            double v = sum != 0.0 ? w[x] / sum : w[x];
            k[x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PREC) : 0.5 + v * (1 << PREC));
        }
        c->first[i] = xmin;
        c->cnt[i] = xmax;
    }
    free(w);
    return 0;
}

static inline unsigned char
clip8(int32_t v)
{
    v >>= PREC;
    return (unsigned char)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* NEAREST's input index of outputs 0..i0+n-1 (PIL's accumulation). */
static int *
nearest_index(int in, int out, int i0, int n)
{
    int *t = malloc((size_t)n * sizeof(int) + 1);
    if (!t) return NULL;
    double a = (double)in / out, v = a * 0.5;
    for (int i = 0; i < i0 + n; i++, v += a)
        if (i >= i0) {
            int s = v < 0 ? 0 : (int)v;
            t[i - i0] = s < in ? s : in - 1;
        }
    return t;
}

/* The window [x0, x0+cw) x [y0, y0+ch) of im resized to ow x oh into dst
 * (cw x ch RGB8, black outside 0..ow x 0..oh).  -1 when out of memory. */
static int
resample_window(const McImage *im, McInterp f, int ow, int oh, int x0, int y0, int cw, int ch, unsigned char *dst)
{
    memset(dst, 0, (size_t)cw * ch * 3);
    /* the part of the window inside the result */
    int ax = x0 < 0 ? 0 : x0, bx = x0 + cw > ow ? ow : x0 + cw;
    int ay = y0 < 0 ? 0 : y0, by = y0 + ch > oh ? oh : y0 + ch;
    if (ax >= bx || ay >= by) return 0;
    int nx = bx - ax, ny = by - ay, iw = im->w, ih = im->h;
    size_t dstride = (size_t)cw * 3;
    unsigned char *d0 = dst + (size_t)(ay - y0) * dstride + (size_t)(ax - x0) * 3;
    if (f == MC_INTERP_NEAREST) {
        int *tx = nearest_index(iw, ow, ax, nx), *ty = nearest_index(ih, oh, ay, ny);
        if (!tx || !ty) {
            free(tx);
            free(ty);
            return -1;
        }
        for (int y = 0; y < ny; y++)
            for (int x = 0; x < nx; x++)
                memcpy(d0 + y * dstride + x * 3, im->rgb + ((size_t)ty[y] * iw + tx[x]) * 3, 3);
        free(tx);
        free(ty);
        return 0;
    }
    int hpass = ow != iw, vpass = oh != ih;
    Coeffs cx = {0}, cy = {0};
    if ((hpass && coeffs_make(f, iw, ow, ax, nx, &cx)) || (vpass && coeffs_make(f, ih, oh, ay, ny, &cy))) {
        coeffs_free(&cx);
        return -1;
    }
    /* input rows the vertical pass reads (all of the window's when none) */
    int r0 = vpass ? cy.first[0] : ay, r1 = vpass ? cy.first[ny - 1] + cy.cnt[ny - 1] : by;
    if (vpass)
        for (int y = 0; y < ny; y++) {
            if (cy.first[y] < r0) r0 = cy.first[y];
            if (cy.first[y] + cy.cnt[y] > r1) r1 = cy.first[y] + cy.cnt[y];
        }
    /* horizontal pass: rows r0..r1 of the input, columns ax..bx of the
     * result, into tmp (nx wide) */
    unsigned char *tmp = malloc((size_t)(r1 - r0) * nx * 3 + 1);
    if (!tmp) {
        coeffs_free(&cx);
        coeffs_free(&cy);
        return -1;
    }
    for (int r = r0; r < r1; r++) {
        const unsigned char *s = im->rgb + (size_t)r * iw * 3;
        unsigned char *t = tmp + (size_t)(r - r0) * nx * 3;
        for (int x = 0; x < nx; x++) {
            if (!hpass) {
                memcpy(t + 3 * x, s + (size_t)(ax + x) * 3, 3);
                continue;
            }
            const int32_t *k = cx.k + (size_t)x * cx.ksize;
            const unsigned char *p = s + (size_t)cx.first[x] * 3;
            int32_t a0 = 1 << (PREC - 1), a1 = a0, a2 = a0;
            for (int j = 0; j < cx.cnt[x]; j++, p += 3) {
                a0 += p[0] * k[j];
                a1 += p[1] * k[j];
                a2 += p[2] * k[j];
            }
            t[3 * x] = clip8(a0), t[3 * x + 1] = clip8(a1), t[3 * x + 2] = clip8(a2);
        }
    }
    /* vertical pass */
    size_t ts = (size_t)nx * 3;
    for (int y = 0; y < ny; y++) {
        unsigned char *d = d0 + y * dstride;
        if (!vpass) {
            memcpy(d, tmp + (size_t)y * ts, ts);
            continue;
        }
        const int32_t *k = cy.k + (size_t)y * cy.ksize;
        const unsigned char *col = tmp + (size_t)(cy.first[y] - r0) * ts;
        for (size_t x = 0; x < ts; x++) {
            int32_t a = 1 << (PREC - 1);
            const unsigned char *p = col + x;
            for (int j = 0; j < cy.cnt[y]; j++, p += ts) a += *p * k[j];
            d[x] = clip8(a);
        }
    }
    free(tmp);
    coeffs_free(&cx);
    coeffs_free(&cy);
    return 0;
}

/* ------------------------------------------------------------ the transform */

McPreproc
mc_preproc_default(int H, int W)
{
    McPreproc p = {H, W, 1, 0.875, MC_INTERP_BICUBIC, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
    return p;
}

/* Python's int(round(d / 2.0)) for d >= 0: halves to the even neighbour. */
static int
half_even(int d)
{
    int q = d / 2;
    return d % 2 && q % 2 ? q + 1 : q;
}

int
mc_image_resize_crop(const McImage *im, const McPreproc *p, McImage *out, char *msg, size_t msglen)
{
    out->w = out->h = 0;
    out->rgb = NULL;
    if (p->H < 1 || p->W < 1 || (long long)p->H * p->W > MC_IMAGE_MAX_PIXELS)
        return mc_file_fail(msg, msglen, "the model's input size %dx%d cannot be made from an image", p->H, p->W);
    if (p->interp != MC_INTERP_NEAREST && p->interp != MC_INTERP_BILINEAR && p->interp != MC_INTERP_BICUBIC)
        return mc_file_fail(msg, msglen, "unknown interpolation %d (nearest 0, bilinear 2, bicubic 3)", (int)p->interp);
    if (im->w < 1 || im->h < 1 || !im->rgb) return mc_file_fail(msg, msglen, "the image is empty");
    int ow = p->W, oh = p->H, x0 = 0, y0 = 0;
    if (p->crop) {
        if (!(p->crop_pct > 0 && p->crop_pct <= 1))
            return mc_file_fail(msg, msglen, "crop fraction %g is not in (0, 1]", p->crop_pct);
        /* torchvision Resize(S): the shorter side S, the longer int(S * long / short) */
        double sd = floor((p->H < p->W ? p->H : p->W) / p->crop_pct);
        int sh = im->w <= im->h, shortside = sh ? im->w : im->h, longside = sh ? im->h : im->w;
        double ld = floor(sd * longside / shortside);
        if (sd * ld > (double)MC_IMAGE_MAX_PIXELS)
            return mc_file_fail(msg, msglen,
                                "the image (%dx%d) resized to a shorter side of %.0f would be %.0fx%.0f pixels: "
                                "too elongated",
                                im->w, im->h, sd, sh ? sd : ld, sh ? ld : sd);
        ow = (int)(sh ? sd : ld);
        oh = (int)(sh ? ld : sd);
        /* torchvision CenterCrop: pad a side shorter than the crop with
         * black ((d+1)/2 before... as its padding splits it), then
         * offset int(round((size - crop) / 2.0)) */
        x0 = ow >= p->W ? half_even(ow - p->W) : -((p->W - ow) / 2);
        y0 = oh >= p->H ? half_even(oh - p->H) : -((p->H - oh) / 2);
    }
    out->rgb = rgb_alloc(p->W, p->H);
    if (!out->rgb || resample_window(im, p->interp, ow, oh, x0, y0, p->W, p->H, out->rgb)) {
        mc_image_free(out);
        return mc_file_fail(msg, msglen, "out of memory resizing a %dx%d image to %dx%d", im->w, im->h, ow, oh);
    }
    out->w = p->W;
    out->h = p->H;
    return 0;
}

void
mc_image_normalize(const McImage *im, const McPreproc *p, float *dst)
{
    /* float32 throughout, as ToTensor (x / 255) then Normalize ((x - m) / s) */
    size_t n = (size_t)im->w * im->h;
    for (int c = 0; c < 3; c++) {
        float lut[256];
        for (int v = 0; v < 256; v++) lut[v] = ((float)v / 255.0f - p->mean[c]) / p->std[c];
        float *d = dst + (size_t)c * n;
        for (size_t i = 0; i < n; i++) d[i] = lut[im->rgb[3 * i + c]];
    }
}

int
mc_image_preprocess(const McImage *im, const McPreproc *p, float *dst, char *msg, size_t msglen)
{
    McImage r;
    if (mc_image_resize_crop(im, p, &r, msg, msglen)) return -1;
    mc_image_normalize(&r, p, dst);
    mc_image_free(&r);
    return 0;
}

int
mc_image_load(const char *path, const McPreproc *p, float *dst, int *w0, int *h0, char *msg, size_t msglen)
{
    McImage im;
    if (mc_image_read(path, &im, msg, msglen)) return -1;
    if (w0) *w0 = im.w;
    if (h0) *h0 = im.h;
    char m[256];
    int rc = mc_image_preprocess(&im, p, dst, m, sizeof m);
    if (rc) mc_file_fail(msg, msglen, "%s: %s", path, m);
    mc_image_free(&im);
    return rc;
}

/* ------------------------------------------------------------ class maps */

/* PyTorch's bilinear source index of output i (float arithmetic, as its CPU
 * kernel for float tensors): i0, i1 and the weight of i1. */
static void
lin_index(int in, int out, int align, int i, int *a, int *b, float *l)
{
    float scale = align ? (out > 1 ? (float)(in - 1) / (float)(out - 1) : 0.f) : (float)in / (float)out;
    float src = align ? scale * (float)i : scale * ((float)i + 0.5f) - 0.5f;
    if (src < 0) src = 0;
    int k = (int)floorf(src);
    if (k > in - 1) k = in - 1;
    float lam = src - (float)k;
    lam = lam < 0 ? 0 : lam > 1 ? 1 : lam;
    *a = k;
    *b = k + (k < in - 1);
    *l = lam;
}

/* Row r of every class interpolated along x to W0 values: dst[c * W0 + x]
 * (the inner, horizontal step of PyTorch's bilinear formula). */
static void
classmap_hrow(const float *logits, int C, int h, int w, int r, int W0, const int *xa, const int *xb,
              const float *xl, float *dst)
{
    for (int c = 0; c < C; c++) {
        const float *s = logits + ((size_t)c * h + r) * w;
        float *d = dst + (size_t)c * W0;
        for (int x = 0; x < W0; x++) d[x] = (1 - xl[x]) * s[xa[x]] + xl[x] * s[xb[x]];
    }
}

/* Class c's row (1 - ly) * a + ly * b against the best so far: the first
 * of equal values stays; NaN loses to every number.  Branch-free, so that
 * it vectorizes. */
static void
classmap_take(const float *restrict a, const float *restrict b, float ly, int c, int n, float *restrict best,
              int32_t *restrict o)
{
#ifdef _OPENMP
#pragma omp simd
#endif
    for (int x = 0; x < n; x++) {
        float v = (1 - ly) * a[x] + ly * b[x], m = best[x];
        int take = (v > m) | ((m != m) & (v == v));
        best[x] = take ? v : m;
        o[x] = take ? c : o[x];
    }
}

int
mc_image_classmap(const float *logits, int C, int h, int w, int align_corners, int H0, int W0, int32_t *out)
{
    if (C < 1 || h < 1 || w < 1 || H0 < 1 || W0 < 1) return -1;
    int *xa = malloc((size_t)W0 * sizeof(int)), *xb = malloc((size_t)W0 * sizeof(int));
    float *xl = malloc((size_t)W0 * sizeof(float)), *best = malloc((size_t)W0 * sizeof(float));
    /* the two source rows of the current output row, along x, every class:
     * consecutive output rows mostly share them */
    float *ha = malloc((size_t)C * W0 * sizeof(float)), *hb = malloc((size_t)C * W0 * sizeof(float));
    if (!xa || !xb || !xl || !best || !ha || !hb) {
        free(xa), free(xb), free(xl), free(best), free(ha), free(hb);
        return -1;
    }
    for (int x = 0; x < W0; x++) lin_index(w, W0, align_corners, x, &xa[x], &xb[x], &xl[x]);
    int ra = -1, rb = -1; /* the rows in ha and hb */
    for (int y = 0; y < H0; y++) {
        int ya, yb;
        float ly;
        lin_index(h, H0, align_corners, y, &ya, &yb, &ly);
        if (ya != ra && ya == rb) {
            float *t = ha;
            ha = hb, hb = t, ra = rb, rb = -1;
        }
        if (ya != ra) classmap_hrow(logits, C, h, w, ra = ya, W0, xa, xb, xl, ha);
        if (yb != rb) classmap_hrow(logits, C, h, w, rb = yb, W0, xa, xb, xl, hb);
        int32_t *o = out + (size_t)y * W0;
        for (int x = 0; x < W0; x++) best[x] = (1 - ly) * ha[x] + ly * hb[x], o[x] = 0;
        for (int c = 1; c < C; c++) classmap_take(ha + (size_t)c * W0, hb + (size_t)c * W0, ly, c, W0, best, o);
    }
    free(xa), free(xb), free(xl), free(best), free(ha), free(hb);
    return 0;
}

void
mc_image_default_palette(int n, unsigned char (*pal)[3])
{
    /* class i: hue 137 i degrees (mod 360; the golden angle, so neighbours
     * and near neighbours differ widely), saturation 255 for even i and 170
     * for odd, value 255, 205, 155 as (i / 2) mod 3 is 0, 1, 2; integer
     * HSV to RGB.  Never black or white; repeats after 360 classes. */
    for (int i = 0; i < n; i++) {
        int hue = (int)((137L * i) % 360), s = i % 2 ? 170 : 255, v = 255 - 50 * ((i / 2) % 3);
        int sector = hue / 60, f = (hue % 60) * 255 / 60;
        int p = v * (255 - s) / 255, q = v * (255 - s * f / 255) / 255, t = v * (255 - s * (255 - f) / 255) / 255;
        int r, g, b;
        switch (sector) {
        case 0: r = v, g = t, b = p; break;
        case 1: r = q, g = v, b = p; break;
        case 2: r = p, g = v, b = t; break;
        case 3: r = p, g = q, b = v; break;
        case 4: r = t, g = p, b = v; break;
        default: r = v, g = p, b = q; break;
        }
        pal[i][0] = (unsigned char)r, pal[i][1] = (unsigned char)g, pal[i][2] = (unsigned char)b;
    }
}

/* ------------------------------------------------------------ PNG out */

/* A source of rows: fills row y (w RGB8 pixels) of the picture. */
typedef void (*RowFn)(void *ctx, int y, unsigned char *row);

#ifdef MC_HAVE_IMAGE
typedef struct PngOutErr {
    const char *name;
    char *msg;
    size_t msglen;
} PngOutErr;

static void
pngout_error(png_structp png, png_const_charp text)
{
    PngOutErr *e = png_get_error_ptr(png);
    mc_file_fail(e->msg, e->msglen, "cannot write %s: %s", e->name, text);
    png_longjmp(png, 1);
}

static void
pngout_warning(png_structp png, png_const_charp text)
{
    (void)png, (void)text; /* the writer's warnings are about options this file does not use */
}
#endif

/* Writes a w x h RGB PNG whose rows come from fn into o and commits it; on
 * error discards o.  0 or -1. */
static int
write_png_rows(McOut *o, int w, int h, RowFn fn, void *ctx, char *msg, size_t msglen)
{
#ifdef MC_HAVE_IMAGE
    PngOutErr pe = {out_name(o), msg, msglen};
    if (w < 1 || h < 1) {
        mc_out_discard(o);
        return mc_file_fail(msg, msglen, "cannot write %s: the image is empty (%dx%d)", pe.name, w, h);
    }
    unsigned char *volatile row = malloc((size_t)w * 3);
    png_structp png = row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &pe, pngout_error, pngout_warning) : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(row);
        mc_out_discard(o);
        return mc_file_fail(msg, msglen, "cannot write %s: out of memory", pe.name);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        mc_out_discard(o);
        return -1;
    }
    png_init_io(png, o->f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        fn(ctx, y, row);
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    return mc_out_commit(o, msg, msglen);
#else
    (void)w, (void)h, (void)fn, (void)ctx;
    mc_out_discard(o);
    return mc_file_fail(msg, msglen, "%s: " NO_SUPPORT, out_name(o));
#endif
}

typedef struct MaskRows {
    const McImage *im; /* the picture under the overlay, or NULL */
    const int32_t *map;
    int w;
    const unsigned char (*pal)[3];
    int n;
    double alpha;
} MaskRows;

static void
image_row(void *ctx, int y, unsigned char *row)
{
    const McImage *im = ctx;
    memcpy(row, im->rgb + (size_t)y * im->w * 3, (size_t)im->w * 3);
}

static void
mask_row(void *ctx, int y, unsigned char *row)
{
    const MaskRows *m = ctx;
    const int32_t *c = m->map + (size_t)y * m->w;
    const unsigned char *px = m->im ? m->im->rgb + (size_t)y * m->w * 3 : NULL;
    for (int x = 0; x < m->w; x++) {
        int k = c[x];
        int known = k >= 0 && k < m->n && m->pal;
        for (int j = 0; j < 3; j++) {
            int col = known ? m->pal[k][j] : 0;
            if (!px)
                row[3 * x + j] = (unsigned char)col;
            else /* an unknown class leaves the picture as it is */
                row[3 * x + j] = known ? (unsigned char)((1 - m->alpha) * px[3 * x + j] + m->alpha * col + 0.5)
                                       : px[3 * x + j];
        }
    }
}

int
mc_image_write_png(McOut *o, const McImage *im, char *msg, size_t msglen)
{
    return write_png_rows(o, im->w, im->h, image_row, (void *)im, msg, msglen);
}

int
mc_image_write_mask(McOut *o, const int32_t *map, int w, int h, const unsigned char (*pal)[3], int nclasses,
                    char *msg, size_t msglen)
{
    MaskRows m = {NULL, map, w, pal, nclasses, 1.0};
    return write_png_rows(o, w, h, mask_row, &m, msg, msglen);
}

int
mc_image_write_overlay(McOut *o, const McImage *im, const int32_t *map, const unsigned char (*pal)[3],
                       int nclasses, double alpha, char *msg, size_t msglen)
{
    MaskRows m = {im, map, im->w, pal, nclasses, alpha >= 0 && alpha <= 1 ? alpha : 0.5};
    return write_png_rows(o, im->w, im->h, mask_row, &m, msg, msglen);
}
