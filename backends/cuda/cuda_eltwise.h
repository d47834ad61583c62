/* backends/cuda/cuda_eltwise.h -- the per-position printers
 * (cuda_eltwise.c): depthwise convs and the 25-tap fusion (with the kernel
 * that runs inside them, if any), LayerNorms, the spatial mean,
 * elementwise kernels.  Each prints kernel ki of p as __global__ `id` and
 * its launch grid into *ln. */
#ifndef MC_CUDA_ELTWISE_H
#define MC_CUDA_ELTWISE_H
#include "cuda_emit.h"

/* repacked: the taps re-packed [kh][kw][C] (CudaLayout.repack) */
void mc_cu_print_dwconv(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln,
                        int repacked);
void mc_cu_print_fusion25(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_layernorm(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_mean(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_eltwise(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);

#endif
