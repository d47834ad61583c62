/* backends/cuda/cuda_gemm.h -- the printers of the dense products
 * (cuda_gemm.c): tiled GEMMs and implicit-GEMM convs, the direct stem
 * conv, the on-chip MLP (fc1 ki with fc2 inside it), the downsample in one
 * kernel (the expansion ki with the depthwise conv and projection inside
 * it).  Each prints kernel ki of p as __global__ `id` and its launch grid
 * into *ln. */
#ifndef MC_CUDA_GEMM_H
#define MC_CUDA_GEMM_H
#include "cuda_emit.h"

/* the dynamic shared memory a GEMM kernel is launched with ("0": none) */
void mc_cu_gemm_smem(const Kernel *k, int ki, const CudaOpts *o, const CudaLayout *lay, char *s, size_t n);
int mc_cu_print_gemm(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, const CudaOpts *o,
                     const CudaLayout *lay, CudaLaunch *ln, McErr *err);
void mc_cu_print_conv_direct(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_mlp(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_down(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);

#endif
