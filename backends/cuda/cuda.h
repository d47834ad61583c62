/* backends/cuda/cuda.h -- the CUDA backend: kernel IR -> readable CUDA C.
 *
 * Takes a KProgram (fusion decided by lowering and by this backend's
 * fusion passes, scratch planned by memplan) and its weights; produces
 * OUT.cu (one __global__ per fused kernel, shapes as constants, plus host
 * code: one device arena, weights uploaded once, pinned host buffers, a
 * CUDA graph captured at start-up, --input/--output, --bench, --profile
 * through CUDA events) and, for --emit exe, the executable OUT built with
 * nvcc (static cudart).  docs/gpu.md describes the
 * generated code and the measurements.
 */
#ifndef MC_CUDA_H
#define MC_CUDA_H
#include <stdio.h>
#include "../../ir/kernel.h"
#include "../../passes/pipeline.h"
#include "../../ir/weights.h"
#include "../cemit/cemit.h"

typedef enum McCudaPrecision {
    MC_CUDA_FP32,   /* float32 accuracy: dense layers as split tf32/bf16 products on tensor cores, the rest FFMA */
    MC_CUDA_TF32,   /* dense layers and convolutions on tensor cores, TF32 operands */
    MC_CUDA_BF16,   /* dense layers on tensor cores, bf16 operands, fp32 accumulation */
} McCudaPrecision;

typedef enum McCudaEmit { MC_CUDA_EMIT_CU, MC_CUDA_EMIT_EXE } McCudaEmit;

typedef struct McCudaOptions {
    const char *out;            /* OUT: writes OUT.cu (and OUT for exe) */
    int sm;                     /* compute capability x10, default 90 */
    McCudaPrecision precision;
    McCudaEmit emit;
    int external_weights;       /* 1: write OUT.weights, read at start-up, instead of embedding */
    const char *nvcc;           /* NULL: $NVCC, else /usr/local/cuda/bin/nvcc, else nvcc on PATH */
    int verbose;
    int instrument;             /* 1: the executable takes --kernel-outputs DIR (mambac verify --backend cuda) */
    const struct McModelIO *io; /* users' metadata for --image, --top, --mask (frontend/io.h), or NULL */
} McCudaOptions;

/* Parses "fp32" | "tf32" | "bf16"; -1 on anything else. */
int mc_cuda_precision_parse(const char *s);
const char *mc_cuda_precision_name(McCudaPrecision p);

/* Tests only: the row and thread count from which kernels take their
 * many-row forms (the on-chip MLP, the one-pass scan, split-K, ...; 0: the
 * default, 132 * 256 * 2, what fills an H100).  Lower, small test models
 * run those forms.  Call before the fusion passes. */
void mc_cuda_set_fill(int rows);

/* The kernel passes (cuda_fuse.c), run in this order before the memory
 * plan: concat-in-place (passes/concat_in_place.c, with the printers'
 * mc_cu_strided_out_ok), the fusion passes cuda-fuse-down, cuda-fuse-ln,
 * cuda-fuse-mlp, cuda-fuse-xproj, then cuda-tile.  Each fusion pass sets Kernel.host/fuse
 * of the kernels that run inside another in precision ctx->t->precision
 * (an McCudaPrecision), and makes their outputs live from their host on in
 * every precision (the same memory plan whatever the precision).
 * cuda-tile records the printers' tiles in Kernel.sched. */
#define MC_CUDA_NKPASSES 6
extern const KPassInfo mc_cuda_kpasses[];
extern const int mc_cuda_nkpasses;

/* Prints the whole .cu for p.  `blob_bytes` receives the size of the device
 * weights blob it expects (graph layout plus re-packed weights); NULL ok. */
int mc_cuda_print(const KProgram *p, const McCudaOptions *o, McBuf *out, int64_t *blob_bytes,
                  McErr *err);
/* The device weights blob for p (malloc'd, *len bytes). */
uint8_t *mc_cuda_weights_blob(const KProgram *p, const WeightStore *ws, int64_t *len, McErr *err);

/* The cuda target row for the pipeline (cuda_backend.c): its kernel
 * passes, desc.precision / desc.sm set by the caller. */
extern const McTarget mc_cuda_target_row;
/* Its supports(): 1 where the backend prints kernel k's kind, else 0 and
 * why (one clause; the pipeline names the kernel). */
int mc_cuda_supports(const KProgram *p, const Kernel *k, char *why, size_t n);

/* Writes OUT.cu (and builds OUT with nvcc for MC_CUDA_EMIT_EXE). */
int mc_cuda_compile(const KProgram *p, const WeightStore *ws, const McCudaOptions *o, McErr *err);

#endif
