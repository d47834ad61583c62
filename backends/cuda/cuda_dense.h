/* backends/cuda/cuda_dense.h -- the printers of the dense-prediction
 * kernels (cuda_dense.c): bilinear resize and adaptive average pooling,
 * NHWC, with their epilogues.  Each prints kernel ki of p as __global__
 * `id` and its launch grid into *ln. */
#ifndef MC_CUDA_DENSE_H
#define MC_CUDA_DENSE_H
#include "cuda_emit.h"

void mc_cu_print_resize(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_avgpool(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);

#endif
