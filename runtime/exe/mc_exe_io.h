/* runtime/exe/mc_exe_io.h -- the executables' users' I/O, shared by the CPU
 * one (exe_main.c) and the CUDA one (cuda_main.c): `--image FILE|DIR...`
 * through the model's evaluation transform in batches of the compiled
 * size, `--top K` with class names and probabilities (`--json`,
 * `--labels`), a segmentor's `--mask` / `--overlay` PNGs at each image's
 * own size (docs/images.md).
 *
 * Header-only (static functions), as mc_exe_cli.h.  The model runs
 * through a callback, so the CPU and the GPU share every line of this.
 */
#ifndef MC_EXE_IO_H
#define MC_EXE_IO_H
#include "../mc_image.h"
#include "../mc_labels.h"
#include "../mc_out.h"
#include "mc_exe_cli.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* The model's users' metadata: kind, transform, class names, colours
 * (written by mambac into the executable's generated glue). */
extern const McModelIO mc_model_io;

static double
mc_io_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static const char *
mc_io_interp_name(int i)
{
    return i == MC_INTERP_NEAREST ? "nearest" : i == MC_INTERP_BILINEAR ? "bilinear" : "bicubic";
}

/* --help's lines for --image (and --save-input). */
static void
mc_cli_io_usage(FILE *f, const McModelIO *io, int rank, const int64_t *shape, int images)
{
    if (!images) {
        fprintf(f, "  --image         not in this build (libjpeg/libpng for its target were missing)\n");
        return;
    }
    int B = rank > 0 ? (int)shape[0] : 1, H = rank == 4 ? (int)shape[2] : 0, W = rank == 4 ? (int)shape[3] : 0;
    fprintf(f, "  --image FILE|DIR...  JPEG/PNG files (a directory: its .jpg/.jpeg/.png files),\n"
               "                  %d a run (the compiled batch; more are run in turn); each is\n",
            B);
    if (io->pre.crop)
        fprintf(f, "                  resized (%s) to shorter side %d, centre-cropped to %dx%d,\n",
                mc_io_interp_name(io->pre.interp), (int)((H < W ? H : W) / io->pre.crop_pct), H, W);
    else
        fprintf(f, "                  resized (%s) to %dx%d,\n", mc_io_interp_name(io->pre.interp), H, W);
    fprintf(f, "                  normalized with mean (%.3f, %.3f, %.3f), std (%.3f, %.3f, %.3f)\n"
               "  --save-input X.npy  writes the preprocessed batch (float32 NCHW)\n",
            io->pre.mean[0], io->pre.mean[1], io->pre.mean[2], io->pre.std[0], io->pre.std[1], io->pre.std[2]);
}

static void
mc_cli_top_usage(FILE *f, const McModelIO *io)
{
    fprintf(f, "  --top K         prints each image's K best classes with their softmax\n"
               "                  probabilities and the time (%s)\n"
               "  --json          prints them as one JSON object instead\n"
               "  --labels FILE   class names, one a line, instead of the built-in ones\n",
            !io->classes || !io->classes_from          ? "class numbers: no names were compiled in"
            : !strcmp(io->classes_from, "imagenet-1k") ? "ImageNet-1k names"
            : !strcmp(io->classes_from, "checkpoint")  ? "names from the checkpoint"
                                                       : "names compiled in from a labels file");
}

static void
mc_cli_seg_usage(FILE *f)
{
    fprintf(f, "  --argmax M.npy  writes the class map: int32 [B, H, W], each pixel's best class\n"
               "  --mask M.png    with --image: each image's class map at its own size, coloured\n"
               "                  (several images: M is a directory, one PNG per image)\n"
               "  --overlay O.png as --mask, blended over the image\n");
}

/* What the user asked of the images. */
typedef struct McIoOpts {
    int nimage;             /* --image's arguments (files and directories) */
    char **image;
    const char *labels;     /* --labels FILE */
    const char *mask, *overlay; /* --mask / --overlay: a file (one image) or a directory */
    const char *save_input; /* --save-input X.npy: the preprocessed batch */
    int json;               /* --json */
} McIoOpts;

/* argv[*i] if it is one of the I/O options: stored in o, *i past its
 * values; 1, 0 when it is none of them, 2 on a usage error (printed).
 * --image takes every following argument up to the next one that starts
 * with '-'. */
static int
mc_io_option(const char *prog, int argc, char **argv, int *i, McIoOpts *o)
{
    const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
    if (!strcmp(a, "--json")) {
        o->json = 1;
        return 1;
    }
    if (!strcmp(a, "--image")) {
        int j = *i + 1;
        while (j < argc && (argv[j][0] != '-' || !argv[j][1]))
            j++;
        if (j == *i + 1) {
            fprintf(stderr, "%s: error: --image needs one or more JPEG/PNG files or directories\n", prog);
            return 2;
        }
        o->image = argv + *i + 1;
        o->nimage = j - *i - 1;
        *i = j - 1;
        return 1;
    }
    const char **p = !strcmp(a, "--labels")       ? &o->labels
                     : !strcmp(a, "--mask")       ? &o->mask
                     : !strcmp(a, "--overlay")    ? &o->overlay
                     : !strcmp(a, "--save-input") ? &o->save_input
                                                  : NULL;
    if (!p)
        return 0;
    if (!v) {
        fprintf(stderr, "%s: error: %s needs a %s\n", prog, a, p == &o->labels ? "file name" : "file or directory name");
        return 2;
    }
    *p = v;
    (*i)++;
    return 1;
}

/* The I/O options against each other (in_path: --input; top: --top):
 * 0, or 2 with the usage error printed. */
static int
mc_io_usage_check(const char *prog, const McIoOpts *io, const char *in_path, long top)
{
    const char *e = in_path && io->nimage           ? "give --image or --input, not both"
                    : io->save_input && !io->nimage ? "--save-input writes the preprocessed images: it needs --image"
                    : io->json && !top              ? "--json applies to --top K"
                    : io->labels && !top            ? "--labels applies to --top K"
                                                    : NULL;
    if (!e)
        return 0;
    fprintf(stderr, "%s: error: %s\n", prog, e);
    return 2;
}

/* The image options against the model, before any work: 0, or -1 with a
 * message.  many: more than one image (then --mask/--overlay name
 * directories). */
static int
mc_io_check(const char *prog, const McModelIO *io, const McIoOpts *o, int nimages, int batch, int has_output)
{
    int seg = io->kind == MC_IO_SEGMENTOR;
    if (o->nimage && !mc_image_available()) {
        fprintf(stderr, "%s: error: --image: this executable was built without image support (libjpeg and libpng "
                        "for its target were not found when it was compiled); give a float32 .npy with --input\n",
                prog);
        return -1;
    }
    if ((o->mask || o->overlay) && !seg) {
        fprintf(stderr, "%s: error: --mask and --overlay colour a segmentation model's class map; this model is a %s\n",
                prog, io->kind == MC_IO_CLASSIFIER ? "classifier (use --top)" : "model without one");
        return -1;
    }
    if ((o->mask || o->overlay) && !o->nimage) {
        fprintf(stderr, "%s: error: --mask and --overlay need the images (--image FILE...)\n", prog);
        return -1;
    }
    if (o->overlay && o->mask && nimages > 1 && !strcmp(o->mask, o->overlay)) {
        fprintf(stderr, "%s: error: --mask and --overlay name the same directory %s: each image's two PNGs would "
                        "have one name\n", prog, o->mask);
        return -1;
    }
    const char *dirs[2] = {o->mask, o->overlay};
    for (int i = 0; i < 2 && nimages > 1; i++) {
        struct stat st;
        if (dirs[i] && (stat(dirs[i], &st) || !S_ISDIR(st.st_mode))) {
            fprintf(stderr, "%s: error: %s %s: with %d images this must be an existing directory (each image's PNG "
                            "is written there under its own name)\n",
                    prog, i ? "--overlay" : "--mask", dirs[i], nimages);
            return -1;
        }
    }
    if (has_output && nimages > batch) {
        fprintf(stderr, "%s: error: --output/--argmax/--save-input with %d images: this model was compiled for batches "
                        "of %d (recompile with mambac compile --batch %d, or use --top, --json, --mask DIR)\n",
                prog, nimages, batch, nimages);
        return -1;
    }
    if (o->json && io->kind != MC_IO_CLASSIFIER) {
        fprintf(stderr, "%s: error: --json prints a classifier's best classes (--top); this model is not one\n", prog);
        return -1;
    }
    return 0;
}

/* The class names --top and the Python module print: --labels, else the
 * compiled-in ones.  -1 with a message for a bad labels file. */
static int
mc_io_names(const char *prog, const McModelIO *io, const McIoOpts *o, int nclasses, McLabels *lab,
            const char *const **names)
{
    char msg[1024];
    *names = io->classes && io->nclasses == nclasses ? io->classes : NULL;
    if (!o->labels)
        return 0;
    if (mc_labels_read(o->labels, nclasses, lab, msg, sizeof msg)) {
        fprintf(stderr, "%s: error: %s\n", prog, msg);
        return -1;
    }
    *names = (const char *const *)lab->names;
    return 0;
}

/* The model, one batch: input in, outputs out (CPU or GPU). 0 or -1. */
typedef int (*McIoRun)(void *ctx, const float *in, float *const *out);

/* The whole --image run: the images in batches of the compiled size (the
 * last padded with zeros), each batch run, then --top / --json printed
 * and --mask / --overlay written per image; on return out[] holds the
 * last batch (for --output, --argmax: one batch only, mc_io_check) and
 * *nlast its images.  An image that cannot be read is reported and
 * skipped.  0 all well, 1 some image failed (the others done), -1 a
 * failed run. */
static int
mc_io_run_images(const char *prog, const McModelIO *io, const McIoOpts *o, const McImageList *l,
                 const int64_t *in_shape, float *in, float *const *out, int nout, const int *ranks,
                 const int64_t *const *shapes, long top, McIoRun run, void *ctx, int *nlast, double *ms)
{
    int B = (int)in_shape[0], H = (int)in_shape[2], W = (int)in_shape[3];
    size_t per = (size_t)3 * H * W;
    int *w0 = calloc((size_t)B, sizeof *w0), *h0 = calloc((size_t)B, sizeof *h0), bad = 0;
    const char **files = calloc((size_t)B, sizeof *files);
    McLabels lab = {0, NULL};
    const char *const *names = NULL;
    int classifier = io->kind == MC_IO_CLASSIFIER && nout == 1 && ranks[0] == 2;
    int seg = io->kind == MC_IO_SEGMENTOR && nout == 1 && ranks[0] == 4;
    int64_t printed = 0;
    int rc = -1;
    McPreproc pre = io->pre;
    pre.H = H, pre.W = W;
    *ms = 0;
    if (!w0 || !h0 || !files) {
        fprintf(stderr, "%s: error: out of memory\n", prog);
        goto done;
    }
    if (classifier && top && mc_io_names(prog, io, o, (int)shapes[0][1], &lab, &names))
        goto done;
    if (classifier && top && o->json)
        mc_labels_json_begin(stdout);
    for (int first = 0; first < l->n; first += B) {
        int n = 0;
        for (int i = first; i < l->n && i < first + B; i++) {
            char msg[1024];
            if (mc_image_load(l->path[i], &pre, in + per * n, &w0[n], &h0[n], msg, sizeof msg)) {
                fprintf(stderr, "%s: error: %s\n", prog, msg);
                bad++;
                continue;
            }
            files[n++] = l->path[i];
        }
        *nlast = n;
        if (!n)
            continue;
        memset(in + per * n, 0, per * (size_t)(B - n) * sizeof *in);
        double t0 = mc_io_now_ms();
        if (run(ctx, in, out))
            goto done;
        *ms += mc_io_now_ms() - t0;
        if (classifier && top &&
            mc_labels_print_top(stdout, out[0], n, shapes[0][1], top, names, files, o->json, &printed)) {
            fprintf(stderr, "%s: error: out of memory for --top\n", prog);
            goto done;
        }
        for (int r = 0; seg && (o->mask || o->overlay) && r < n; r++) {
            char msg[1024];
            if (mc_seg_write(io, o->mask, o->overlay, files[r], l->n > 1, out[0], shapes[0], r, w0[r], h0[r], msg,
                             sizeof msg)) {
                fprintf(stderr, "%s: error: %s\n", prog, msg);
                goto done;
            }
            mc_seg_print(stdout, files[r], l->n > 1, o->mask, o->overlay, w0[r], h0[r]);
        }
    }
    if (classifier && top && o->json)
        mc_labels_json_end(stdout, *ms);
    if (bad)
        fprintf(stderr, "%s: error: %d of %d images could not be read (the others were done)\n", prog, bad, l->n);
    rc = bad ? 1 : 0;
done:
    mc_labels_free(&lab);
    free(w0);
    free(h0);
    free(files);
    return rc;
}

/* The outputs mc_io_images has open: discarded by an exit before they
 * are complete (the CUDA executable exits on a CUDA error). */
static McOut mc_io_outs[3];
static int mc_io_open[3];

static void
mc_io_discard_at_exit(void)
{
    for (int k = 0; k < 3; k++)
        if (mc_io_open[k])
            mc_out_discard(&mc_io_outs[k]);
    memset(mc_io_open, 0, sizeof mc_io_open);
}

/* --image in an executable: the images through the model
 * (mc_io_run_images), the time line for --top (how: "2 threads", the
 * GPU), then --save-input, --output, --argmax for the one batch they may
 * have (mc_io_check).  0 all done, 1 some image unreadable (the rest
 * done), -1 failed (printed). */
static int
mc_io_images(const char *prog, const McModelIO *mio, const McIoOpts *io, const McCliOpts *c, const McImageList *imgs,
             int in_rank, const int64_t *in_shape, float *in, float *const *out, int nout, const char *const *names,
             const int *ranks, const int64_t *const *shapes, int npz, long top, McIoRun run, void *ctx,
             const char *how)
{
    const char *paths[3] = {io->save_input, c->out_path, c->argmax_path};
    McOut *o = mc_io_outs;
    int n = 0;
    char msg[1024];
    double ms;
    static int registered;
    if (!registered)
        registered = !atexit(mc_io_discard_at_exit);
    mc_cleanup_install();
    for (int k = 0; k < 3; k++) { /* the outputs' temporaries first: a bad path fails before any work */
        if (paths[k] && mc_out_open(&o[k], paths[k], 0666, msg, sizeof msg)) {
            fprintf(stderr, "%s: error: %s\n", prog, msg);
            goto fail;
        }
        mc_io_open[k] = paths[k] != NULL;
    }
    int rc = mc_io_run_images(prog, mio, io, imgs, in_shape, in, out, nout, ranks, shapes, top, run, ctx,
                              &n, &ms);
    if (rc < 0 || !n) {
        if (!n && rc >= 0)
            fprintf(stderr, "%s: error: no image could be read\n", prog);
        goto fail;
    }
    if (top && !io->json)
        printf("time: %.1f ms for %d image%s (batches of %lld, %s)\n", ms, imgs->n, imgs->n == 1 ? "" : "s",
               (long long)in_shape[0], how);
    /* the batch's first n images: the shapes with n rows (the input's last) */
    int64_t sh[MC_NPZ_MAX_ARRAYS + 1][8];
    const int64_t *shp[MC_NPZ_MAX_ARRAYS + 1];
    int rk[MC_NPZ_MAX_ARRAYS + 1];
    for (int j = 0; j <= nout && j <= MC_NPZ_MAX_ARRAYS; j++) {
        rk[j] = j < nout ? ranks[j] : in_rank;
        memcpy(sh[j], j < nout ? shapes[j] : in_shape, (size_t)rk[j] * sizeof(int64_t));
        sh[j][0] = n;
        shp[j] = sh[j];
    }
    static const char *const xname[1] = {"x"};
    mc_io_open[0] = 0;
    if (paths[0] && mc_cli_write_outputs(prog, &o[0], 0, 1, xname, &in, &rk[nout], &shp[nout]))
        goto fail;
    mc_io_open[1] = 0;
    if (paths[1] && mc_cli_write_outputs(prog, &o[1], npz, nout, names, out, rk, shp))
        goto fail;
    mc_io_open[2] = 0;
    if (paths[2] && mc_cli_write_argmax(prog, &o[2], out[0], shp[0]))
        goto fail;
    return rc;
fail:
    mc_io_discard_at_exit();
    return -1;
}

#endif
