/* backends/ref/ref_kexec.h -- the reference executor of the kernel IR.
 *
 * Runs a KProgram (ir/kernel.h) kernel by kernel in plain C, with the ref
 * kernels (ref_kernels.h) for the anchors: the oracle the kernel program of
 * any backend is compared with (`mambac verify`).
 *
 * Takes a verified program, the weights blob in graph layout
 * (mc_weights_blob, ir/weights_blob.h: weight b at Buffer.offset) and the input.
 * Every buffer but the weights gets an allocation of its own, so the result
 * does not depend on the memory plan (scratch offsets are ignored).
 * Honoured: views (strides, offsets, stride-0 broadcast), the epilogue
 * (EInstr, evaluated in float with the graph interpreter's formulas),
 * softplus_dt, every kind of kernels.def, and segments (a segment's kernels
 * run once per image, in order; a buffer with image_bytes is addressed
 * image*image_bytes further in them).  A fused kernel (Kernel.host) runs
 * as its own kernel, in index order: the same values.
 * Owns: the buffers, during mc_ref_kexec_run only.
 */
#ifndef MC_REF_KEXEC_H
#define MC_REF_KEXEC_H
#include <stdint.h>
#include "../../ir/kernel.h"

typedef enum McKexecPhase { MC_KEXEC_BEFORE, MC_KEXEC_AFTER } McKexecPhase;

/* Called before and after every run of a kernel: kernel index k, image (its
 * image in a segment, else 0), and the buffers (bufs[b]: buffer b's data,
 * Buffer.bytes of it; a weight points into the blob).  A positive return
 * stops the run, which returns it. */
typedef int (*McKexecHook)(void *user, int k, int64_t image, McKexecPhase phase, float *const *bufs);

/* Runs p (verified: mc_kprogram_verify) on input (the input buffer's
 * bytes) into outputs[j] (output buffer j's bytes, j < p->noutputs).  hook
 * may be NULL.  Returns 0, -1 with err (out of memory), or the hook's
 * positive value. */
int mc_ref_kexec_run(const KProgram *p, const uint8_t *weights, const float *input, float *const *outputs,
                     McKexecHook hook, void *user, McErr *err);

/* Runs kernel k of p once (image: its image in a segment) over bufs, as
 * mc_ref_kexec_run does.  0, or -1 with err. */
int mc_ref_kexec_kernel(const KProgram *p, int k, int64_t image, float *const *bufs, McErr *err);

/* Elements [f0, f0+n) of view v (row-major over its shape) as kernel k
 * sees it at image `image`: buf is the start of v's buffer (shifted here by
 * image*image_bytes when k is in a segment); copied into vals, or with
 * store from vals into the buffer. */
void mc_ref_view_copy(const KProgram *p, int k, int64_t image, const View *v, float *buf, int64_t f0, int64_t n,
                      float *vals, int store);

#endif
