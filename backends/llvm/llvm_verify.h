/* backends/llvm/llvm_verify.h -- the kernels of a JIT-compiled program, one
 * at a time (for `mambac verify`).
 *
 * The program is generated for the host exactly as mc_llvm_codegen does
 * (same kernels, same plan, same packed weights), then given an entry point
 * that hands out the address of every kernel function instead of running
 * them all, so a caller can run kernel k alone over memory it filled: the
 * reference executor's inputs of that kernel, so that errors do not add up
 * from kernel to kernel.  The module of a normal compile is not changed.
 * No LLVM types here.
 */
#ifndef MC_LLVM_VERIFY_H
#define MC_LLVM_VERIFY_H
#include <stdint.h>
#include "../../ir/kernel.h"
#include "../../ir/weights.h"
#include "llvm.h"

typedef struct McLlvmKernels McLlvmKernels;

/* Generates, optimizes and JIT-compiles p (planned) for the host, and packs
 * its weights from ws.  NULL + err on failure. */
McLlvmKernels *mc_llvm_kernels_create(const KProgram *p, const WeightStore *ws, McErr *err);
/* Runs kernel k (image: its image in a segment, else 0) with the packed
 * weights over scratch (an arena of p->scratch_bytes, buffers at their
 * planned offsets), input and outputs[0..noutputs) (the caller's buffers,
 * p->output_bufs' order). */
void mc_llvm_kernels_run(McLlvmKernels *x, int k, int64_t image, void *scratch, const float *input, float *const *outputs,
                         int noutputs);
void mc_llvm_kernels_free(McLlvmKernels *x);

/* The optimized module mc_llvm_kernels_create compiles: mc_llvm_codegen's,
 * <name>_run(table, ...) storing the kernel functions into table[0..nk).
 * Its kernel functions are those of mc_llvm_codegen (tests/unit/test_kexec.c
 * compares their IR). */
McLlvmModule *mc_llvm_kernels_module(const KProgram *p, const McLlvmTarget *t, McErr *err);

#endif
