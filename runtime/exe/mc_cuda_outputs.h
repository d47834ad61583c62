/* runtime/exe/mc_cuda_outputs.h -- what the CUDA executable's main
 * (cuda_main.c) knows of a model with several outputs.
 *
 * The .cu of such a model defines mc_cuda_outputs
 * (backends/cuda/device/mc_outputs.cuh, with this header's declarations
 * pasted before it): every output's name, shape and where its run copies
 * it.  The .cu of a one-output model does not (it is the .cu it always
 * was; its output is mc_cuda_glue's), so cuda_main.c declares the table
 * weak and reads it only when it is there.
 */
#ifndef MC_CUDA_OUTPUTS_H
#define MC_CUDA_OUTPUTS_H
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MC_CUDA_MAX_OUTPUTS 8

typedef struct McCudaOutputs {
    int n;                                      /* the graph's outputs, in order */
    const char *name[MC_CUDA_MAX_OUTPUTS];      /* its output nodes' names */
    int rank[MC_CUDA_MAX_OUTPUTS];
    int64_t shape[MC_CUDA_MAX_OUTPUTS][8];
    /* One run of the graph (as mc_cuda_run): output j into outputs[j]. */
    void (*run)(float *const *outputs);
} McCudaOutputs;

#ifdef __cplusplus
}
#endif
#endif
