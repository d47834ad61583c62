/* runtime/exe/mc_cuda_glue.h -- what the CUDA executable's main
 * (cuda_main.c, C, compiled with the host C compiler) knows of the model's
 * .cu (C++, compiled by nvcc), and the GPU work the .cu does for it.
 *
 * The .cu defines mc_cuda_glue (the model's constants) and the mc_cuda_*
 * functions (backends/cuda/device/mc_main.cuh); everything on the host that
 * touches no GPU -- options, files, messages, timings' statistics -- is
 * cuda_main.c with the runtime's npy.c and out.c.  mambac pastes this
 * header's declarations (everything after this comment) into every .cu, so
 * a .cu compiles alone (nvcc -c) and links with those three C files.
 * A CUDA error inside an mc_cuda_* call prints one line and exits with
 * status 1 (the outputs' temporaries are removed by cuda_main.c's atexit).
 */
#ifndef MC_CUDA_GLUE_H
#define MC_CUDA_GLUE_H
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_CUDA_GLUE_MAX_RANK 8

typedef struct McCudaGlue {
    const char *name;                 /* the model's name */
    const char *precision;            /* "fp32", "tf32", "bf16" */
    int batch, sm, nk;                /* batch, compute capability x10, kernels */
    int64_t weights_bytes;            /* the device weights blob */
    int in_rank;
    int64_t in_shape[MC_CUDA_GLUE_MAX_RANK];
    int out_rank;
    int64_t out_shape[MC_CUDA_GLUE_MAX_RANK];
    const unsigned char *weights;     /* embedded blob, or NULL: OUT.weights */
    const char *const *kernel_names;  /* [nk]: a fused kernel's name also names its host */
    const double *kernel_flops;       /* [nk]: a host counts its guests' FLOPs */
    int instrument;                   /* built with --instrument: mc_cuda_kernel_outputs works */
} McCudaGlue;

extern const McCudaGlue mc_cuda_glue;

/* The GPU, before any other CUDA call: 0 with its name in dev, or -1 with
 * one sentence in msg (no usable GPU, another compute capability). */
int mc_cuda_open(char *dev, size_t devlen, char *msg, size_t msglen);
/* Allocates the arena, uploads the weights (weights_bytes), runs the
 * start-up work, captures the forward pass as a CUDA graph, and copies
 * the input (in_shape) to pinned memory. */
void mc_cuda_setup(const void *weights, const float *input);
/* A new input (in_shape) for the runs that follow. */
void mc_cuda_set_input(const float *input);
/* One run of the graph; the output (out_shape) into output. */
void mc_cuda_run(float *output);
/* One warm-up, then n timed graph runs: ms[0..n) (CUDA events). */
void mc_cuda_bench(int n, float *ms);
/* n runs of the kernels with an event between each two (no graph):
 * ms[k] += kernel k's mean time over the runs. */
void mc_cuda_profile(int n, double *ms);
/* --instrument only: one run of the kernels one by one (no graph), the
 * stream synchronized after each; fn gets each kernel k's output buffer
 * (float32, its whole buffer, shape shape[0..rank)) in kernel order.  A
 * kernel whose output stays on chip inside its host is not passed.
 * Stops at fn's first non-zero return and returns it; -1 when the
 * executable was built without --instrument. */
typedef int (*McCudaKernelOutput)(void *user, int k, const float *data, int rank, const int64_t *shape);
int mc_cuda_kernel_outputs(McCudaKernelOutput fn, void *user);
/* Frees the graph and the arena. */
void mc_cuda_close(void);

#ifdef __cplusplus
}
#endif
#endif
