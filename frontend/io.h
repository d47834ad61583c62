/* frontend/io.h -- what a compiled model tells its users' tools
 * (runtime/mc_labels.h McModelIO): the kind of model, the evaluation
 * transform from the config (TEST.CROP, DATA.INTERPOLATION), and the class
 * names and colours, from a labels file, the checkpoint's
 * meta.dataset_meta, or the built-in ImageNet-1k list (docs/images.md).
 * Shared by `mambac run` and `mambac compile`. */
#ifndef MC_FRONTEND_IO_H
#define MC_FRONTEND_IO_H
#include "ir/graph.h"
#include "ir/weights.h"
#include "runtime/mc_labels.h"

typedef struct McIoSource {
    McModelIO io;
    McLabels labels;                    /* --labels, when given (io.classes points into it) */
    char from[64];
} McIoSource;

/* Fills s for the model at path (kind: mc_frontend_kind; 1 = a public
 * config, whose keys decide the kind and the transform; otherwise one
 * output [B, N] is a classifier and one [B, C, H, W] a segmentor) with
 * input shape in (NCHW), outputs out[0..nout) and weights ws (its classes
 * and palette, or NULL).  labels: a labels file, or NULL.  Class names: the
 * labels file, else the checkpoint's (when their number is the model's;
 * else a note on stderr and none), else ImageNet-1k's for a 1000-class
 * classifier.  0, or -1 with err (an unreadable or wrong labels file, a
 * bad config).  s points into ws: keep ws until s is no longer used. */
int mc_io_source(McIoSource *s, const char *path, int kind, const Shape *in, const Shape *out, int nout,
                 const WeightStore *ws, const char *labels, McErr *err);
void mc_io_source_free(McIoSource *s);

#endif
