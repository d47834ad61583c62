/* backends/cuda/cuda_print.h -- the device half of OUT.cu (cuda_print.c):
 * the arena layout of a program and its kernels, launches and start-up
 * work.  Called by cuda_host.c; calls the per-family printers. */
#ifndef MC_CUDA_PRINT_H
#define MC_CUDA_PRINT_H
#include "cuda_emit.h"

void mc_cuda_layout(const KProgram *p, McCudaPrecision prec, CudaLayout *lay);
void mc_cuda_layout_free(CudaLayout *lay);
/* -1 with err where p holds a fusion this precision cannot print */
int mc_cuda_print_device(const KProgram *p, const CudaOpts *o, const CudaLayout *lay, McBuf *b, McErr *err);

#endif
