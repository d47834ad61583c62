/* backends/cuda/cuda_scan.h -- the selective scan's printers
 * (cuda_scan.c): its kernels (one pass, or three) and their launches. */
#ifndef MC_CUDA_SCAN_H
#define MC_CUDA_SCAN_H
#include "cuda_emit.h"

void mc_cu_print_scan(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_scan_launch(McBuf *b, const KProgram *p, const CudaLayout *lay, int ki, const char *id, const Params *ps,
                             const CudaLaunch *ln);

#endif
