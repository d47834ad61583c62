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
    int64_t flags_off, flags_bytes; /* the one-pass scans' chunk flags (int, zeroed at the start of each run) */
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

/* the opening of every kernel's body: mc_pdl_begin() first (programmatic
 * dependent launch: wait until the kernel before has completed) */
#define KERNEL_BODY ")\n{\n    mc_pdl_begin();\n"

/* Threads the scan passes and split-K GEMMs aim for: two blocks of 256 per
 * SM of an H100 (132 SMs).  Below it a kernel is latency-bound.  Also the
 * row count from which kernels take their many-row forms.  Tests lower it
 * (mc_cuda_set_fill) to run those forms on small models. */
#define MC_CUDA_FILL_DEFAULT (132 * 256 * 2)
extern int mc_cu_fill_rows;
#define MC_CUDA_FILL mc_cu_fill_rows

/* the buffers of a kernel's parameter list (cuda_print.c) */
typedef struct Params {
    int buf[8 + 2 * MC_MAX_ARGS];
    int n;
    int out, out2; /* the buffers written (out2: -1 or a second one) */
} Params;

/* shared by the printer files (cuda_print.c, cuda_gemm.c) */
int mc_cu_bf16_mode(void);
int mc_cu_tf32_mode(void);
int mc_cu_buf_bf16(int buf);
void mc_cu_header(McBuf *b, const KProgram *p, const Kernel *k, int ki);
void mc_cu_ref(McBuf *b, const View *v, const char *lin);
void mc_cu_load(McBuf *b, const View *v, const char *lin);
void mc_cu_store(McBuf *b, const Kernel *k, const char *indent, const char *lin, const char *val);
void mc_cu_print_params(McBuf *b, const Params *ps, const char *extra);
void mc_cu_collect_params(const Kernel *k, Params *ps);
void mc_cu_collect_launch_params(const KProgram *p, int i, Params *ps);
void mc_cu_idx_typedef(McBuf *b, const Kernel *k);
void mc_cu_kernel_open(McBuf *b, const Kernel *k, const char *id, const char *extra);
void mc_cu_vec8_finish(McBuf *b, const Kernel *k, const char *indent);
int mc_cu_is_contig(const View *v, int64_t rows, int64_t cols);
int mc_cu_is_contig_rows(const View *v, int64_t C);
int mc_cu_vecn_view(const View *v, int64_t C, int n);
#define vec8_view(v, C) mc_cu_vecn_view((v), (C), 8)
#define vec4_view(v, C) mc_cu_vecn_view((v), (C), 4)
void mc_cu_gemm_dims(const Kernel *k, int64_t *M, int64_t *N, int64_t *K);
/* cuda_gemm.c */
int mc_cu_conv_direct(const KProgram *p, int i);
int mc_cu_conv3_tc(const KProgram *p, int i);
int mc_cu_gemm_w16(const KProgram *p, int i, McCudaPrecision prec);
void mc_cu_gemm_smem(const Kernel *k, int ki, const CudaOpts *o, const CudaLayout *lay, char *s, size_t n);
int mc_cu_print_gemm(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, const CudaOpts *o,
                     const CudaLayout *lay, CudaLaunch *ln, McErr *err);
void mc_cu_print_mlp(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
int mc_cu_down_tile(int64_t B, int64_t H, int64_t W, int64_t C, int64_t HID, int64_t CO, int *R, int *TW, int *MT3);
void mc_cu_print_down(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
/* kernel i is a downsample's expansion with its depthwise conv and
 * projection (i + 1, i + 2) inside it (cuda_fuse.c) */
int mc_cu_down_fused(const KProgram *p, int i);
/* cuda_print.c: the threads of the 4-channel form of the 25-tap fusion and
 * of the 8-channel form of a depthwise conv (*pp positions a thread), 0
 * where the form does not apply */
long long mc_cu_fusion25_wide(const Kernel *k);
long long mc_cu_dwconv8_form(const Kernel *k, long long *pp);
void mc_cu_print_conv_direct(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
/* cuda_print.c, for the other printer files */
void mc_cu_print_args(McBuf *b, const KProgram *p, const CudaLayout *lay, const Params *ps, const char *extra);
void mc_cu_store_view(McBuf *b, const View *v, const char *indent, const char *lin, const char *val);
void mc_cu_thread_head(McBuf *b, const Kernel *k, const char *id, const char *extra, const char *var, int64_t n,
                       CudaLaunch *ln);
/* cuda_scan.c: the selective scan */
void mc_cu_scan_carry_bytes(const Kernel *k, int64_t *carry, int64_t *flags);
int mc_cu_scan1(const Kernel *k, int *G, int64_t *T, int64_t *NC);
void mc_cu_print_scan(McBuf *b, const KProgram *p, const Kernel *k, int ki, const char *id, CudaLaunch *ln);
void mc_cu_print_scan_launch(McBuf *b, const KProgram *p, const CudaLayout *lay, int ki, const char *id, const Params *ps,
                             const CudaLaunch *ln);

#endif
