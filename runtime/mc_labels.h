/* runtime/mc_labels.h -- what a compiled model knows of its users' data:
 * the evaluation transform, the class names and colours (McModelIO), the
 * class names' sources (the built-in ImageNet-1k list, a labels file), and
 * the printing of a classifier's best classes for people and for programs.
 *
 * Part of the runtime: mambac and the executables (CPU and CUDA) compile
 * labels.c; mambac also links imagenet1k.c (the executables get the names
 * they need written into their glue).  Every failure returns -1 with one
 * sentence in msg; nothing aborts.
 */
#ifndef MC_LABELS_H
#define MC_LABELS_H
#include "mc_image.h"
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_IMAGENET1K_CLASSES 1000
extern const char *const mc_imagenet1k_names[MC_IMAGENET1K_CLASSES];

/* What the model's one output means. */
typedef enum McIoKind {
    MC_IO_OTHER = 0,      /* anything else: --output only */
    MC_IO_CLASSIFIER = 1, /* [B, classes]: --top */
    MC_IO_SEGMENTOR = 2,  /* [B, classes, H, W]: --argmax, --mask, --overlay */
    MC_IO_BACKBONE = 3,   /* feature maps: --output (an .npz) */
} McIoKind;

typedef struct McModelIO {
    int kind;                           /* McIoKind */
    McPreproc pre;                      /* the evaluation transform (H, W: the compiled size) */
    int align_corners;                  /* a segmentor's: the class map's way back */
    int nclasses;                       /* names and colours given for this many classes */
    const char *const *classes;         /* [nclasses], or NULL: none known */
    const char *classes_from;           /* "checkpoint", "imagenet-1k", "labels file", or NULL */
    const unsigned char (*palette)[3];  /* [nclasses], or NULL: mc_image_default_palette */
} McModelIO;

/* Class names read from a file, one a line (a trailing newline, "\r\n"
 * and surrounding blanks ignored). */
typedef struct McLabels {
    int n;
    char **names;
} McLabels;

/* Reads path: exactly nclasses names (nclasses <= 0: any number), each
 * 1..255 bytes of text without control characters.  0, or -1 with
 * "PATH:LINE: ..." in msg. */
int mc_labels_read(const char *path, int nclasses, McLabels *l, char *msg, size_t msglen);
void mc_labels_free(McLabels *l);

/* The indices of the k largest of x[0..n) into out[0..min(k, n)), best
 * first: by value descending, NaN after every number, ties by ascending
 * index; each index once.  O(n log n) time, 16n bytes of temporary memory.
 * Returns the count written, or -1 when out of memory. */
int64_t mc_labels_topk(const float *x, int64_t n, int64_t k, int64_t *out);

/* The k best classes of each of nrows rows of logits y [nrows, N] with
 * their softmax probabilities (over all N, in double), printed to f:
 *   for people (json 0):   "cat.jpg:" (files[r], else "image I:") then
 *                          "  1. tabby 43.1%" (names NULL: "class 281")
 *   for programs (json 1): one JSON object a row, {"file": ..., "top":
 *                          [{"rank": 1, "class": 281, "name": "tabby",
 *                          "prob": 0.431, "logit": 9.87}, ...]} (file and
 *                          name null when unknown), a comma before each but
 *                          the first; mc_labels_json_begin/_end wrap them:
 *                          {"images": [ ... ], "time_ms": T}.
 * *printed counts the rows printed so far (over several calls: the image
 * numbers, the commas) and is advanced.  0, or -1 when out of memory. */
int mc_labels_print_top(FILE *f, const float *y, int64_t nrows, int64_t N, int64_t k, const char *const *names,
                        const char *const *files, int json, int64_t *printed);
void mc_labels_json_begin(FILE *f);
/* time_ms < 0: omitted */
void mc_labels_json_end(FILE *f, double time_ms);

/* The image files of --image's arguments: each in order, a directory's
 * .jpg/.jpeg/.png files (by extension, sorted by name, not recursive) in
 * its place.  0, or -1 with "PROG: error: ..." printed (a missing file,
 * an empty directory). */
typedef struct McImageList {
    int n, cap;
    char **path;
} McImageList;
int mc_image_list(const char *prog, int nargs, char **args, McImageList *l);
void mc_image_list_free(McImageList *l);

/* A segmentor's output y [B, C, h, w], row r, for the image at path
 * (w0 x h0 after EXIF orientation): its class map at that size
 * (mc_image_classmap), coloured with io's palette (else the default) into
 * mask and blended over the image into overlay (either may be NULL).
 * many: mask and overlay are directories, the file there is the image's
 * name with .png; else they are the files.  0, or -1 with msg. */
int mc_seg_write(const McModelIO *io, const char *mask, const char *overlay, const char *path, int many, const float *y,
                 const int64_t *yshape, int r, int w0, int h0, char *msg, size_t msglen);

/* Where image path's mask or overlay goes: dst itself (many 0), else
 * dst/<the image's name without its extension>.png. */
void mc_seg_out_name(const char *dst, const char *path, int many, char *buf, size_t n);
/* "cat.jpg: 640x480 class map -> masks/cat.png, overlays/cat.png" to f. */
void mc_seg_print(FILE *f, const char *path, int many, const char *mask, const char *overlay, int w0, int h0);

/* A JSON string literal of s (quotes, escapes; invalid UTF-8 bytes as
 * U+FFFD) to f. */
void mc_labels_json_string(FILE *f, const char *s);

#ifdef __cplusplus
}
#endif
#endif
