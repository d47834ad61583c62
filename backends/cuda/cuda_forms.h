/* backends/cuda/cuda_forms.h -- the bottom layer of the CUDA backend: which
 * form a kernel, and a fusion of adjacent kernels, takes (cuda_forms.c).
 * Pure functions of the kernel program and the precision; they call
 * nothing else of the backend.  The layers above, each calling only
 * downwards (tests/check_layers.py checks that no file calls back up):
 *
 *   cuda_host.c      the whole .cu, the weights blob, nvcc
 *   cuda_print.c     the arena layout and the program: dispatch, launches
 *   cuda_gemm.c, cuda_scan.c, cuda_eltwise.c   the per-family printers
 *   cuda_emit.c      the printing utilities shared by the printers
 *   cuda_forms.c     (this)
 *
 * and beside them the fusion passes (cuda_fuse.c), which use the forms
 * only. */
#ifndef MC_CUDA_FORMS_H
#define MC_CUDA_FORMS_H
/* the shared memory one block may have on sm_90 (227 KB, opt-in) */
#define MC_CU_SMEM_BLOCK_MAX (227LL * 1024)
#include "cuda.h"

/* Threads the scan passes and split-K GEMMs aim for: two blocks of 256 per
 * SM of an H100 (132 SMs).  Below it a kernel is latency-bound.  Also the
 * row count from which kernels take their many-row forms.  Tests lower it
 * (mc_cuda_set_fill) to run those forms on small models. */
#define MC_CUDA_FILL_DEFAULT (132 * 256 * 2)
extern int mc_cu_fill_rows;
#define MC_CUDA_FILL mc_cu_fill_rows

/* views and sizes */
int64_t mc_cuda_numel(const View *v);
void mc_cu_gemm_dims(const Kernel *k, int64_t *M, int64_t *N, int64_t *K);
int mc_cu_is_contig(const View *v, int64_t rows, int64_t cols);
int mc_cu_is_contig_rows(const View *v, int64_t C);
int mc_cu_vecn_view(const View *v, int64_t C, int n);
#define vec8_view(v, C) mc_cu_vecn_view((v), (C), 8)
#define vec4_view(v, C) mc_cu_vecn_view((v), (C), 4)
/* buffer buf holds bf16 activations in precision prec */
int mc_cu_stores_bf16(const KProgram *p, McCudaPrecision prec, int buf);

/* kernels: the threads of the 4-channel form of the 25-tap fusion (of
 * MC_CU_F25_P positions each) and of the 8-channel form of a depthwise conv
 * (*pp positions a thread), 0 where the form does not apply */
#define MC_CU_F25_P 4
long long mc_cu_fusion25_wide(const Kernel *k);
long long mc_cu_dwconv8_form(const Kernel *k, long long *pp);
int mc_cu_conv_direct(const KProgram *p, int i);
int mc_cu_gemm_w16(const KProgram *p, int i, McCudaPrecision prec);
/* bm x bn tiles, sk split-K slices of kc: the schedule's (Kernel.sched)
 * where set, else the backend's choice */
void mc_cuda_gemm_tiles(const Kernel *k, int *bm, int *bn, int *sk, int64_t *kc);
int mc_cu_gemm_va(const Kernel *k);
int mc_cu_gemm_thin(const Kernel *k);
int mc_cu_gemm_tiled(const KProgram *p, int i, McCudaPrecision prec);
int mc_cu_conv3_tc(const KProgram *p, int i, McCudaPrecision prec);
int mc_cu_down_tile(int64_t B, int64_t H, int64_t W, int64_t C, int64_t HID, int64_t CO, int *R, int *TW, int *MT3);
/* resize and avgpool: the channels a thread (8, 4, 2, 1: the largest
 * dividing C); 8 read with 16-byte loads (x's view 8-aligned); a pool's
 * lanes per output unit (1, or a power of two up to 32 for large bins) */
int mc_cu_dense_width(const Kernel *k);
int mc_cu_dense_vec8(const Kernel *k);
int mc_cu_pool_lanes(const Kernel *k);

/* the selective scan: chunking, the 8-channel threads, the one-pass form
 * (MC_CU_SCAN1_PT positions a thread), the arena it needs */
#define MC_CU_SCAN1_PT 4
void mc_cuda_scan_chunks(const Kernel *k, int v, int64_t *T, int64_t *NC);
int mc_cu_scan_8wide(const Kernel *k);
int mc_cu_scan_vec(const Kernel *k, int bf16);
int mc_cu_scan1(const Kernel *k, int *G, int64_t *T, int64_t *NC);
void mc_cu_scan_carry_bytes(const Kernel *k, int64_t *carry, int64_t *flags);

/* Schedules (Kernel.sched, ir/sched.def; the cuda-tile pass): s = kernel
 * i's schedule with every field the printer reads in precision prec filled
 * as it prints it (the set ones kept); and 1 where the printer can honour
 * the kernel's schedule, else 0 and why (one clause, naming the field).
 * mc_gemm kernels: tile_m, tile_n (bm x bn), split, tile_k (split-K),
 * threads; scans: tile_k (positions a chunk), vec (channels a thread), and
 * in the one-pass form tile_n (channels a block), threads. */
void mc_cu_sched_fill(const KProgram *p, int i, McCudaPrecision prec, Sched *s);
int mc_cu_sched_check(const KProgram *p, int i, McCudaPrecision prec, char *why, size_t n);

/* Fusions (ir/fusions.def) with host kernel i: kernel i + 1 (FUSE_DOWN:
 * i + 1 and i + 2) inside it.  The shape (any precision), and the form: the
 * shape, what precision prec needs, and a guest output that is none of the
 * host's operands.  Whether it is taken is the fusion passes' decision. */
int mc_cu_fuse_shape(const KProgram *p, int i, FuseKind f);
int mc_cu_fuse_form(const KProgram *p, int i, FuseKind f, McCudaPrecision prec);
/* how kernel i + 1 runs inside kernel i (Kernel.host/fuse), else FUSE_NONE */
FuseKind mc_cu_guest_kind(const KProgram *p, int i);

/* Kernel k writes its output through whatever strides its out view has (a
 * channel slice of a concat buffer): every form the printers may choose
 * for k's kind does, or falls back to one that does where the view is not
 * dense (passes/concat_in_place.c asks before giving k such a view).  Run
 * before the fusion passes: a kernel in a fusion is refused. */
bool mc_cu_strided_out_ok(const KProgram *p, const Kernel *k);

#endif
