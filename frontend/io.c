/* frontend/io.c -- a model's users' metadata (frontend/io.h): kind,
 * evaluation transform, class names and colours. */
#include "frontend/io.h"
#include "frontend/frontend.h"
#include <stdio.h>
#include <string.h>

/* The number of classes the model's output has (0: none that names fit). */
static int
output_classes(const McModelIO *io, const Shape *out)
{
    if (out && (io->kind == MC_IO_CLASSIFIER || io->kind == MC_IO_SEGMENTOR) && out[0].rank >= 2)
        return (int)out[0].d[1];
    return 0;
}

int
mc_io_source(McIoSource *s, const char *path, int kind, const Shape *in, const Shape *out, int nout,
             const WeightStore *ws, const char *labels, McErr *err)
{
    memset(s, 0, sizeof *s);
    McModelIO *io = &s->io;
    int H = in->rank == 4 ? (int)in->d[2] : 0, W = in->rank == 4 ? (int)in->d[3] : 0;
    io->pre = mc_preproc_default(H, W);
    if (nout == 1 && out[0].rank == 2)
        io->kind = MC_IO_CLASSIFIER;
    else if (nout == 1 && out[0].rank == 4)
        io->kind = MC_IO_SEGMENTOR;
    if (kind == 1) {
        ModelConfig cfg;
        if (mc_config_load(path, &cfg, err)) return -1;
        io->kind = cfg.head ? MC_IO_SEGMENTOR : cfg.nout ? MC_IO_BACKBONE : MC_IO_CLASSIFIER;
        io->pre.crop = cfg.test_crop;
        io->pre.interp = (McInterp)cfg.interp;
        io->align_corners = cfg.align_corners;
    }
    if (io->kind == MC_IO_SEGMENTOR) { /* mmseg's test pipeline: the whole image, resized */
        io->pre.crop = 0;
        io->pre.interp = MC_INTERP_BILINEAR;
    }
    int n = output_classes(io, out);
    char msg[1024];
    if (labels) {
        if (!n)
            return mc_err(err, "mambac: error: --labels names the classes of a classifier or a segmentation "
                               "model; %s is neither", path);
        if (mc_labels_read(labels, n, &s->labels, msg, sizeof msg))
            return mc_err(err, "mambac: error: --labels: %s", msg);
        io->classes = (const char *const *)s->labels.names;
        io->nclasses = n;
        io->classes_from = "labels file";
    } else if (n && ws && ws->classes) {
        if (ws->nclasses == n) {
            io->classes = (const char *const *)ws->classes;
            io->nclasses = n;
            io->classes_from = "checkpoint";
        } else {
            fprintf(stderr, "mambac: note: the checkpoint names %d classes, the model has %d: its class names are "
                            "not used (give --labels FILE)\n", ws->nclasses, n);
        }
    } else if (n == MC_IMAGENET1K_CLASSES && io->kind == MC_IO_CLASSIFIER) {
        io->classes = mc_imagenet1k_names;
        io->nclasses = n;
        io->classes_from = "imagenet-1k";
    }
    if (n && io->kind == MC_IO_SEGMENTOR && ws && ws->palette && ws->nclasses == n) {
        io->palette = (const unsigned char (*)[3])ws->palette;
        io->nclasses = n;
    }
    return 0;
}

void
mc_io_source_free(McIoSource *s)
{
    mc_labels_free(&s->labels);
    memset(s, 0, sizeof *s);
}
