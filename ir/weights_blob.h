/* ir/weights_blob.h -- the one writer of a weights blob: the bytes a
 * compiled program reads its constants from (the .weights file, the
 * embedded weights, the JIT's copy).
 *
 * Graph layout (lay NULL): every weight buffer (BUF_WEIGHT) at its
 * Buffer.offset as lowering assigned it, p->weights_bytes in all.  A
 * backend whose kernels read weights in another layout describes its blob
 * with an McBlobLayout: the blob's size, where each weight buffer's graph-
 * layout bytes go (or that they are not stored), and a packing hook that
 * writes each kernel's re-packed copy.  Every tensor is checked against the
 * store (f32, the buffer's size) before anything is written.
 */
#ifndef MC_IR_WEIGHTS_BLOB_H
#define MC_IR_WEIGHTS_BLOB_H
#include "kernel.h"
#include "weights.h"

/* The f32 data of each weight buffer of the program, by buffer id (NULL:
 * not a weight buffer). */
typedef struct McBlobSrc {
    const float *const *buf;
} McBlobSrc;

/* The data a weight view reads: its buffer's tensor + the view's offset. */
static inline const float *
mc_blob_src_view(const McBlobSrc *s, const View *v)
{
    return s->buf[v->buf] + v->offset;
}

typedef struct McBlobLayout {
    int64_t bytes;          /* the blob's size */
    const int64_t *place;   /* per buffer: the offset of its graph-layout bytes, < 0: not
                               stored; NULL: every weight buffer at its Buffer.offset */
    /* writes kernel ki's re-packed weights (if it has any) into blob, which
     * holds the placed buffers and zeros; NULL: nothing is re-packed */
    void (*pack)(void *ctx, const KProgram *p, int ki, const McBlobSrc *src, uint8_t *blob);
    void *ctx;
} McBlobLayout;

/* The blob of p's weights from ws in layout lay (NULL: graph layout):
 * malloc'd, 64-byte aligned, zero where nothing is written; *len its size
 * (len may be NULL).  NULL with err when a weight is missing from ws or is
 * not an f32 tensor of its buffer's size, or when out of memory. */
uint8_t *mc_weights_blob(const KProgram *p, const WeightStore *ws, const McBlobLayout *lay, int64_t *len,
                         McErr *err);

#endif
