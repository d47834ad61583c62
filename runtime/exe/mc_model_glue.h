/* runtime/exe/mc_model_glue.h -- what exe_main.c knows of the model.
 *
 * `mambac compile --emit exe` generates one small C file (mc_glue.c) that
 * defines `mc_model_glue` below, and one assembler file that embeds the
 * packed weights with .incbin (64-byte aligned, symbol mc_glue_weights).
 * exe_main.c, the runtime and the model object are linked with them.
 */
#ifndef MC_MODEL_GLUE_H
#define MC_MODEL_GLUE_H
#include <stdint.h>
#include "../mc_cpu.h"
#include "../mc_labels.h"

#define MC_GLUE_MAX_RANK 8
#define MC_GLUE_MAX_OUTPUTS 8

/* The model's entry point with its outputs' pointers from an array
 * (mc_glue.c wraps <name>_run, which takes one pointer per output). */
typedef int (*McModelRun)(const void *weights, const float *input, float *const *outputs, void *scratch);

typedef struct McGlueOutput {
    const char *name;                 /* the graph output's name (.npz array names) */
    int rank;
    int64_t shape[MC_GLUE_MAX_RANK];  /* e.g. [B,classes] */
} McGlueOutput;

typedef struct McModelGlue {
    const char *name;                 /* model name (symbol prefix) */
    const char *target;               /* target triple it was compiled for */
    int in_rank;
    int64_t in_shape[MC_GLUE_MAX_RANK];   /* e.g. [B,3,H,W] */
    int noutputs;                     /* the graph's outputs, in order */
    McGlueOutput out[MC_GLUE_MAX_OUTPUTS];
    const unsigned char *weights;     /* embedded blob */
    uint64_t weights_len;             /* its length in bytes */
    const int64_t *obj_weights_size;  /* the model object's <name>_weights_size */
    const int64_t *obj_scratch_size;  /* the model object's <name>_scratch_size */
    McModelRun run;                   /* <name>_run, outputs from an array */
    int nkernels;                     /* for --profile */
    const char *const *kernel_names;  /* [nkernels] or NULL */
    const double *kernel_flops;       /* [nkernels] useful FLOPs per run, or NULL */
    McCpuDispatch *cpu;               /* the compiled CPU variants (start-up check), or NULL */
} McModelGlue;

extern const McModelGlue mc_model_glue;
/* the model's users' metadata: kind, transform, class names, colours */
extern const McModelIO mc_model_io;
extern const unsigned char mc_glue_weights[];

#endif
