/* backends/cuda/cuda_emit.h -- what the CUDA printers share (cuda_emit.c):
 * the options and arena layout they print for, a kernel's launch shape and
 * parameters, and the printing utilities.  Above the forms
 * (cuda_forms.h, which also shows the layers), below the printers. */
#ifndef MC_CUDA_EMIT_H
#define MC_CUDA_EMIT_H
#include "cuda_forms.h"

typedef struct CudaOpts {
    McCudaPrecision precision;
    int sm;
} CudaOpts;

/* Byte offsets in the one device arena (cuda_print.c, top comment). */
typedef struct CudaLayout {
    int64_t *repack;        /* [nk]: blob offset of a KK_CONV / KK_FUSION25 / KK_DWCONV (C % 8 == 0) kernel's re-packed weights, else -1 */
    int64_t blob_bytes;
    int64_t scratch_off, input_off, carry_off, arena_bytes;
    int64_t output_off[MC_MAX_OUTPUTS]; /* output j's (KProgram.output_bufs order) */
    int64_t flags_off, flags_bytes; /* the one-pass scans' chunk flags (int, zeroed at the start of each run) */
    int64_t splitk_off, counter_off; /* split-K partial tiles (float), tile counters (unsigned, zero between kernels) */
    int64_t *w16;           /* [nk]: bf16 mode: arena offset of a tensor-core GEMM's weights as bf16 (converted at start-up), else -1 */
} CudaLayout;

typedef struct CudaLaunch {
    int64_t gx, gy;
} CudaLaunch;

/* the opening of every kernel's body: mc_pdl_begin() first (programmatic
 * dependent launch: wait until the kernel before has completed) */
#define KERNEL_BODY ")\n{\n    mc_pdl_begin();\n"

/* the buffers of a kernel's parameter list */
typedef struct Params {
    int buf[8 + 2 * MC_MAX_ARGS];
    int n;
    int out, out2; /* the buffers written (out2: -1 or a second one) */
} Params;

/* The printing context: the program and precision the printers print
 * (set once per program by mc_cuda_print_device).  mc_cu_buf_bf16: buffer
 * buf holds bf16 (mc_cu_stores_bf16 in that precision). */
void mc_cu_emit_begin(const KProgram *p, McCudaPrecision prec);
McCudaPrecision mc_cu_emit_precision(void);
int mc_cu_buf_bf16(int buf);

int64_t mc_cuda_buf_offset(const KProgram *p, const CudaLayout *lay, int buf);
void mc_cu_collect_params(const Kernel *k, Params *ps);
void mc_cu_collect_launch_params(const KProgram *p, int i, Params *ps);
void mc_cu_print_params(McBuf *b, const Params *ps, const char *extra);
void mc_cu_print_args(McBuf *b, const KProgram *p, const CudaLayout *lay, const Params *ps, const char *extra);
void mc_cu_header(McBuf *b, const KProgram *p, const Kernel *k, int ki);
void mc_cu_ref(McBuf *b, const View *v, const char *lin);
void mc_cu_load(McBuf *b, const View *v, const char *lin);
void mc_cu_store_view(McBuf *b, const View *v, const char *indent, const char *lin, const char *val);
void mc_cu_store(McBuf *b, const Kernel *k, const char *indent, const char *lin, const char *val);
void mc_cu_idx_typedef(McBuf *b, const Kernel *k);
void mc_cu_kernel_open(McBuf *b, const Kernel *k, const char *id, const char *extra);
void mc_cu_thread_head(McBuf *b, const Kernel *k, const char *id, const char *extra, const char *var, int64_t n,
                       CudaLaunch *ln);
void mc_cu_vec_args(McBuf *b, const Kernel *k, int W, const char *lin0, const char *indent, char names[][24],
                    const char **ax);
void mc_cu_vec8_finish_ex(McBuf *b, const Kernel *k, const char *indent, const char *guard, const char *keep);
void mc_cu_vec8_finish(McBuf *b, const Kernel *k, const char *indent);

#endif
