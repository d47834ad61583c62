/* passes/lower.h -- graph IR -> kernel IR (fusion decided here, once) and
 * the memory planner. */
#ifndef MC_LOWER_H
#define MC_LOWER_H
#include "../ir/kernel.h"
#include "../ir/weights.h"

/* Lowers a verified graph (normally after mc_passes_run: batchnorm folded,
 * constants folded, state fusion folded) with one input and one output.
 * Fusion rules (docs/kernel-ir.md):
 *   - slice and permute become strided views, never copies;
 *   - an elementwise op with one user that is elementwise of the same shape
 *     is inlined into that user's expression;
 *   - softplus feeding only a scan's dt is computed inside the scan;
 *   - an elementwise chain whose operand is a conv2d / linear / layernorm /
 *     state_fusion25 / mean_hw result used only by that chain becomes the
 *     epilogue of that kernel (bias, activations, residual adds, gates,
 *     hf*Cv + u*Ds, ...).
 * Weight buffers get offsets in a graph-layout blob (ir/weights_blob.h).
 * Legalization: a state_fusion left unfolded (--disable-pass=fold-state-fusion)
 * is lowered to the 25-tap kernel with its tap table computed here and added
 * to ws as "<node>.taps", so every pass stays optional.
 * Returns 0, or -1 with err (an op the kernel IR cannot express). */
int mc_lower(const Graph *g, WeightStore *ws, KProgram *p, McErr *err);

/* Assigns scratch offsets: buffers whose lifetimes (first..last kernel) do
 * not overlap share memory; greedy by size, 64-byte aligned.  Fills
 * scratch_bytes and unplanned_bytes. */
void mc_memplan(KProgram *p);
/* Per-image schedule of a batched program (B = the input's dim 0 > 1):
 * the kernels [0, cut) become one Segment run once per image (ir/kernel.h):
 * their views and GEMM M shrink to one image, buffers living only inside
 * the segment shrink to one image (reused by every image), the others it
 * touches (input, the segment's results) get image_bytes and a lifetime
 * over the whole segment.  cut < 0: the rule of docs/kernel-ir.md (per
 * image up to the first kernel whose weights outweigh one image's bytes it
 * reads and writes); a cut beyond the longest prefix of kernels that can run
 * per image is clamped to it.  Call before mc_memplan; no-op on a program
 * that has segments or a batch of 1.  Returns the segment's kernel count
 * (0: none made). */
int mc_kprogram_schedule_images(KProgram *p, int cut);
/* The same, and the segment may run up to `groups` images side by side
 * (clamped to 1..B): the buffers living only inside the segment get that
 * many copies, one per image group (Buffer.group_bytes, Segment.groups);
 * groups 1 is mc_kprogram_schedule_images. */
int mc_kprogram_schedule_images_groups(KProgram *p, int cut, int64_t groups);

/* "memplan: 118.3 MB -> 21.7 MB, 412 buffers -> 1 arena" */
void mc_memplan_report(const KProgram *p, FILE *f);

#endif
