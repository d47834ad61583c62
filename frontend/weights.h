/* frontend/weights.h -- the checkpoint readers, the model check and random
 * weights, over the weights store of ir/weights.h.
 *
 * Readers (pth.c, safetensors.c) fill a WeightStore from a file or a memory
 * buffer.  Every tensor is stored contiguous (row-major), its data owned by
 * the store.  Floating tensors (f16, bf16, f32, f64) are converted to f32 on
 * load (dtype DT_F32, `orig` keeps the file's type); integer tensors keep
 * DT_I64/DT_I32.  Readers never execute anything and never crash on bad
 * input: they return -1 with a clear message in err.
 */
#ifndef MC_WEIGHTS_H
#define MC_WEIGHTS_H
#include <stddef.h>
#include <stdint.h>
#include "../ir/graph.h"
#include "../ir/weights.h"

/* .pth (torch.save zip+pickle). Tensors are taken from the top-level dict's
 * "model" entry, else "state_dict", else the top level itself; a leading
 * "module." on keys is stripped, then a leading "backbone." (mmseg/mmdet
 * checkpoints); keys under auxiliary_head., neck., rpn_head. and roi_head.
 * are skipped with one note.  Non-tensor entries and unknown classes are
 * skipped.  An mmengine checkpoint's meta.dataset_meta.classes and .palette
 * go to ws->classes / ws->palette (-1 when the palette does not give one
 * [r, g, b] of 0..255 per class).  CRC-32 of every zip entry read is
 * verified. */
int mc_pth_load(const char *path, WeightStore *ws, McErr *err);
int mc_pth_load_mem(const uint8_t *buf, size_t len, const char *name, WeightStore *ws, McErr *err);

/* .safetensors */
int mc_safetensors_load(const char *path, WeightStore *ws, McErr *err);
int mc_safetensors_load_mem(const uint8_t *buf, size_t len, const char *name, WeightStore *ws, McErr *err);

/* Picks the reader by content (zip magic "PK\3\4" -> pth, else safetensors). */
int mc_weights_load(const char *path, WeightStore *ws, McErr *err);

/* Checks every WEIGHT node of g against ws: all missing keys, tensors of an
 * unsupported dtype and shape mismatches are reported in one message
 * ("missing: k [expected shape]", "unsupported dtype: tensor 'k' has dtype
 * U8, ...", "shape mismatch: k expected [..] got [..]"), then returns -1; when
 * the missing keys show a classification checkpoint used for a backbone (only
 * outnorm{i}) or a detection/segmentation one for a classifier (only norm/
 * head), the message says so.  On success
 * prints one note line listing unused tensors (if any) and returns 0. */
int mc_weights_check(const Graph *g, WeightStore *ws, McErr *err);

/* Deterministic random weights of sensible scale for every WEIGHT node of g
 * (norm scales near 1, running_var positive, dt biases and A_logs in the
 * public init ranges).  Same graph + seed -> same bytes. */
void mc_weights_random(const Graph *g, WeightStore *ws, uint64_t seed);
/* One tensor of it: what mc_weights_random puts for a weight named key
 * (a kernel-IR program's weight buffers get theirs this way). */
void mc_weights_random_one(WeightStore *ws, const char *key, DType dtype, const Shape *shape, uint64_t seed);

#endif
