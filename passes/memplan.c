/* passes/memplan.c -- the memory planner: every scratch buffer gets an
 * offset in one arena; buffers whose lifetimes [first, last] (kernel indices)
 * are disjoint may share bytes.  Greedy: largest first, lowest fitting
 * offset.  Weights, input and output are not planned (caller-owned). */
#include "lower.h"
#include <stdlib.h>
#include <string.h>

static const KProgram *sort_p;

static int
by_size(const void *a, const void *b)
{
    const Buffer *x = &sort_p->bufs[*(const int *)a], *y = &sort_p->bufs[*(const int *)b];
    if (x->bytes != y->bytes) return x->bytes < y->bytes ? 1 : -1;
    return x->id - y->id; /* deterministic */
}

void
mc_memplan(KProgram *p)
{
    int *ids = malloc(sizeof(int) * (size_t)(p->nbufs + 1)), n = 0;
    p->unplanned_bytes = 0;
    for (int i = 0; i < p->nbufs; i++)
        if (p->bufs[i].kind == BUF_SCRATCH) {
            ids[n++] = i;
            p->unplanned_bytes += (p->bufs[i].bytes + 63) & ~(int64_t)63;
        }
    sort_p = p;
    qsort(ids, (size_t)n, sizeof(int), by_size);
    int64_t top = 0;
    for (int j = 0; j < n; j++) {
        Buffer *b = &p->bufs[ids[j]];
        int64_t size = (b->bytes + 63) & ~(int64_t)63, off = 0;
        /* retry until no placed, time-overlapping buffer overlaps [off, off+size) */
        for (int moved = 1; moved;) {
            moved = 0;
            for (int q = 0; q < j; q++) {
                const Buffer *o = &p->bufs[ids[q]];
                if (o->last < b->first || b->last < o->first) continue;
                int64_t osz = (o->bytes + 63) & ~(int64_t)63;
                if (off < o->offset + osz && o->offset < off + size) {
                    off = o->offset + osz;
                    moved = 1;
                }
            }
        }
        b->offset = off;
        if (off + size > top) top = off + size;
    }
    p->scratch_bytes = top;
    free(ids);
}

void
mc_memplan_report(const KProgram *p, FILE *f)
{
    int n = 0;
    for (int i = 0; i < p->nbufs; i++) n += p->bufs[i].kind == BUF_SCRATCH;
    fprintf(f, "memplan: %.1f MB -> %.1f MB, %d buffers -> 1 arena\n", p->unplanned_bytes / 1e6,
            p->scratch_bytes / 1e6, n);
}

uint8_t *
mc_kprogram_weights_blob(const KProgram *p, const WeightStore *ws, McErr *err)
{
    uint8_t *blob = calloc(1, (size_t)(p->weights_bytes ? p->weights_bytes : 1));
    for (int i = 0; i < p->nbufs; i++) {
        const Buffer *b = &p->bufs[i];
        if (b->kind != BUF_WEIGHT) continue;
        WTensor *t = mc_weights_find(ws, b->name);
        if (!t || t->dtype != DT_F32 || (int64_t)t->nbytes != b->bytes) {
            free(blob);
            mc_err(err, "weights: no f32 tensor %s of %lld bytes", b->name, (long long)b->bytes);
            return NULL;
        }
        memcpy(blob + b->offset, t->data, (size_t)b->bytes);
    }
    return blob;
}
