/* backends/cuda/cuda_internal.h -- shared between the CUDA printer files. */
#ifndef MC_CUDA_INTERNAL_H
#define MC_CUDA_INTERNAL_H
#include "cuda.h"

typedef struct CudaOpts {
    McCudaPrecision precision;
    int sm;
} CudaOpts;

/* Byte offsets in the one device arena (cuda_print.c, top comment). */
typedef struct CudaLayout {
    int64_t *repack;        /* [nk]: blob offset of a KK_CONV / KK_FUSION25 / KK_DWCONV (C % 8 == 0) kernel's re-packed weights, else -1 */
    int64_t blob_bytes;
    int64_t scratch_off, input_off, output_off, carry_off, arena_bytes;
    int64_t splitk_off, counter_off; /* split-K partial tiles (float), tile counters (unsigned, zero between kernels) */
    int64_t *w16;           /* [nk]: bf16 mode: arena offset of a tensor-core GEMM's weights as bf16 (converted at start-up), else -1 */
} CudaLayout;

typedef struct CudaLaunch {
    int64_t gx, gy;
} CudaLaunch;

void mc_cuda_layout(const KProgram *p, McCudaPrecision prec, CudaLayout *lay);
void mc_cuda_layout_free(CudaLayout *lay);
int64_t mc_cuda_buf_offset(const KProgram *p, const CudaLayout *lay, int buf);
int64_t mc_cuda_numel(const View *v);
void mc_cuda_scan_chunks(const Kernel *k, int v, int64_t *T, int64_t *NC);
void mc_cuda_gemm_tiles(const Kernel *k, int *bm, int *bn, int *sk, int64_t *kc);
/* the kernel that runs kernel i inside itself (i - 1: out_norm inside the
 * 25-tap fusion before it), or -1 */
int mc_cuda_fused_into(const KProgram *p, int i);
int mc_cuda_print_device(const KProgram *p, const CudaOpts *o, const CudaLayout *lay, McBuf *b, McErr *err);

#endif
