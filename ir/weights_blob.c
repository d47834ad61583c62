/* ir/weights_blob.c -- the weights blob writer (ir/weights_blob.h).
 *
 * Takes a kernel program (its weight buffers and kernels), the weights
 * store and a backend's layout; looks every weight buffer's tensor up
 * once, places the graph-layout bytes, then lets the backend's hook write
 * each kernel's re-packed copy from the tensors.  Owns nothing after it
 * returns: the blob is the caller's (free()).
 */
#include "weights_blob.h"
#include <stdlib.h>
#include <string.h>

uint8_t *
mc_weights_blob(const KProgram *p, const WeightStore *ws, const McBlobLayout *lay, int64_t *len, McErr *err)
{
    int64_t bytes = lay ? lay->bytes : p->weights_bytes;
    const float **src = calloc((size_t)(p->nbufs ? p->nbufs : 1), sizeof *src);
    uint8_t *blob = NULL;
    if (!src) goto oom;
    for (int i = 0; i < p->nbufs; i++) {
        const Buffer *b = &p->bufs[i];
        if (b->kind != BUF_WEIGHT) continue;
        const WTensor *t = mc_weights_find(ws, b->name);
        if (!t || t->dtype != DT_F32 || (int64_t)t->nbytes != b->bytes) {
            free(src);
            mc_err(err, "weights: no f32 tensor %s of %lld bytes", b->name, (long long)b->bytes);
            return NULL;
        }
        src[i] = t->data;
    }
    /* rounded up to 64 bytes, and 64 bytes of zeros more (slack past *len) */
    size_t size = (size_t)((bytes + 63) & ~(int64_t)63) + 64;
    if (posix_memalign((void **)&blob, 64, size)) goto oom;
    memset(blob, 0, size);
    for (int i = 0; i < p->nbufs; i++) {
        int64_t at = !src[i] ? -1 : lay && lay->place ? lay->place[i] : p->bufs[i].offset;
        if (at >= 0) memcpy(blob + at, src[i], (size_t)p->bufs[i].bytes);
    }
    McBlobSrc s = {src};
    for (int k = 0; lay && lay->pack && k < p->nk; k++) lay->pack(lay->ctx, p, k, &s, blob);
    free(src);
    if (len) *len = bytes;
    return blob;
oom:
    free(src);
    mc_err(err, "weights: out of memory for a %lld-byte blob", (long long)bytes);
    return NULL;
}
