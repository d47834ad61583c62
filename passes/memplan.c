/* passes/memplan.c -- the memory planner: every scratch buffer gets an
 * offset in one arena; buffers whose lifetimes [first, last] (kernel indices)
 * are disjoint may share bytes.  Greedy: largest first, lowest fitting
 * offset.  Weights, input and output are not planned (caller-owned).
 * Also the per-image schedule of batched programs
 * (mc_kprogram_schedule_images: one Segment, run before the plan). */
#include "lower.h"
#include <stdlib.h>

/* what the greedy planner places: a buffer, or the block of a segment's
 * image-group copies */
typedef struct Item {
    int64_t size, off;
    int first, last, id;
} Item;

static int
by_size(const void *a, const void *b)
{
    const Item *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    return x->id - y->id; /* deterministic */
}

/* largest first, lowest offset that overlaps no placed item alive at the
 * same time; returns the top */
static int64_t
plan_items(Item *it, int n)
{
    qsort(it, (size_t)n, sizeof *it, by_size);
    int64_t top = 0;
    for (int j = 0; j < n; j++) {
        Item *b = &it[j];
        int64_t off = 0;
        /* retry until no placed, time-overlapping item overlaps [off, off+size) */
        for (int moved = 1; moved;) {
            moved = 0;
            for (int q = 0; q < j; q++) {
                const Item *o = &it[q];
                if (o->last < b->first || b->last < o->first) continue;
                if (off < o->off + o->size && o->off < off + b->size) {
                    off = o->off + o->size;
                    moved = 1;
                }
            }
        }
        b->off = off;
        if (off + b->size > top) top = off + b->size;
    }
    return top;
}

static Item
item_of(const Buffer *b)
{
    Item it = {(b->bytes + 63) & ~(int64_t)63, 0, b->first, b->last, b->id};
    return it;
}

void
mc_memplan(KProgram *p)
{
    Item *it = malloc(sizeof(Item) * (size_t)(p->nbufs + 1));
    int n = 0, ng = 0;
    int64_t groups = p->nsegs && p->segs[0].groups > 1 ? p->segs[0].groups : 1;
    p->unplanned_bytes = 0;
    /* a segment's per-image scratch with copies per image group: planned as
     * one group's sub-arena of S bytes, then copies at a stride of S in one
     * block alive over the whole segment (so two groups at different kernels
     * of different images never share bytes) */
    if (groups > 1) {
        for (int i = 0; i < p->nbufs; i++)
            if (p->bufs[i].kind == BUF_SCRATCH && p->bufs[i].group_bytes > 0) it[ng++] = item_of(&p->bufs[i]);
        int64_t S = plan_items(it, ng);
        for (int j = 0; j < ng; j++) {
            Buffer *b = &p->bufs[it[j].id];
            b->offset = it[j].off; /* within the sub-arena, for now */
            b->group_bytes = S;
            p->unplanned_bytes += it[j].size;
        }
        if (ng) {
            Item blk = {S * groups, 0, p->segs[0].k0, p->segs[0].k1 - 1, p->nbufs};
            it[n++] = blk;
        }
    }
    for (int i = 0; i < p->nbufs; i++)
        if (p->bufs[i].kind == BUF_SCRATCH && !(groups > 1 && p->bufs[i].group_bytes > 0)) {
            it[n++] = item_of(&p->bufs[i]);
            p->unplanned_bytes += it[n - 1].size;
        }
    p->scratch_bytes = plan_items(it, n);
    for (int j = 0; j < n; j++) {
        if (it[j].id < p->nbufs) {
            p->bufs[it[j].id].offset = it[j].off;
            continue;
        }
        for (int i = 0; i < p->nbufs; i++) /* the block: its buffers move into it */
            if (p->bufs[i].kind == BUF_SCRATCH && p->bufs[i].group_bytes > 0) p->bufs[i].offset += it[j].off;
    }
    p->planned = 1;
    free(it);
}

void
mc_memplan_report(const KProgram *p, FILE *f)
{
    int n = 0;
    for (int i = 0; i < p->nbufs; i++) n += p->bufs[i].kind == BUF_SCRATCH;
    fprintf(f, "memplan: %.1f MB -> %.1f MB, %d buffers -> 1 arena\n", p->unplanned_bytes / 1e6,
            p->scratch_bytes / 1e6, n);
}

/* ------------------------------------------------------------ per-image schedule */

static int64_t
view_numel_bytes(const View *v)
{
    int64_t n = 4;
    for (int i = 0; i < v->rank; i++) n *= v->shape[i];
    return n;
}

/* Can view v (of a batched buffer of B images, img elements each) be cut to
 * image 0's part: dim 0 steps through the images in order and the rest of
 * one image's view stays inside that image. */
static int
view_splits(const View *v, int64_t B, int64_t img)
{
    if (v->rank < 1 || v->shape[0] % B) return 0;
    int64_t r = v->shape[0] / B;
    if (v->stride[0] * r != img || v->offset < 0) return 0;
    int64_t ext = v->offset;
    for (int i = 0; i < v->rank; i++) {
        int64_t d = i == 0 ? r : v->shape[i];
        if (v->stride[i] < 0) return 0;
        ext += (d - 1) * v->stride[i];
    }
    return ext < img;
}

/* Kernel k can run per image: every view of a batched buffer splits, every
 * epilogue operand of an unbatched one broadcasts over dim 0. */
static int
kernel_splits(const KProgram *p, const Kernel *k, const int *batched, int64_t B)
{
    int reads = 0;
    for (int i = 0; i < k->nin; i++) reads |= batched[k->in[i].buf];
    for (int i = 0; i < k->nargs; i++) reads |= batched[k->args[i].buf];
    if (!reads) return 1; /* weights only: runs once per image, same result */
    const View *vs[4 + MC_MAX_ARGS + 1];
    int nv = 0;
    for (int i = 0; i < k->nin; i++) vs[nv++] = &k->in[i];
    for (int i = 0; i < k->nargs; i++) vs[nv++] = &k->args[i];
    vs[nv++] = &k->out;
    for (int i = 0; i < nv; i++) {
        const View *v = vs[i];
        const Buffer *b = &p->bufs[v->buf];
        int is_in = i < k->nin;
        if (batched[v->buf] || v == &k->out) {
            if (!view_splits(v, B, b->bytes / 4 / B) || b->bytes % (4 * B)) return 0;
        } else if (!is_in && (v->rank < 1 || v->stride[0] != 0 || v->shape[0] % B)) {
            return 0;
        }
    }
    if (k->kind == KK_GEMM && k->M % B) return 0;
    return 1;
}

/* bytes of the weights kernel k reads through in[] */
static int64_t
kernel_weight_bytes(const KProgram *p, const Kernel *k)
{
    int64_t w = 0;
    for (int j = 0; j < k->nin; j++)
        if (p->bufs[k->in[j].buf].kind == BUF_WEIGHT) w += p->bufs[k->in[j].buf].bytes;
    return w;
}

/* bytes of one image that kernel k reads through in[] and writes */
static int64_t
kernel_image_bytes(const KProgram *p, const Kernel *k, const int *batched, int64_t B)
{
    int64_t a = view_numel_bytes(&k->out) / B;
    for (int j = 0; j < k->nin; j++)
        if (batched[k->in[j].buf]) a += view_numel_bytes(&k->in[j]) / B;
    (void)p;
    return a;
}

static void
split_view(View *v, int64_t B)
{
    v->shape[0] /= B;
}

int
mc_kprogram_schedule_images(KProgram *p, int cut)
{
    return mc_kprogram_schedule_images_groups(p, cut, 1);
}

int
mc_kprogram_schedule_images_groups(KProgram *p, int cut, int64_t groups)
{
    if (p->nsegs || p->input_buf < 0 || p->bufs[p->input_buf].shape.rank < 1) return 0;
    int64_t B = p->bufs[p->input_buf].shape.d[0];
    if (B <= 1) return 0;
    if (groups < 1) groups = 1;
    if (groups > B) groups = B;
    int *batched = calloc((size_t)p->nbufs, sizeof(int));
    batched[p->input_buf] = 1;
    /* batched buffers: the input and whatever a kernel computes from one */
    for (int i = 0; i < p->nk; i++) {
        const Kernel *k = &p->k[i];
        int r = 0;
        for (int j = 0; j < k->nin; j++) r |= batched[k->in[j].buf];
        for (int j = 0; j < k->nargs; j++) r |= batched[k->args[j].buf];
        if (r) batched[k->out.buf] = 1;
    }
    int n = 0;
    while (n < p->nk && kernel_splits(p, &p->k[n], batched, B)) n++;
    if (cut < 0) {
        /* the rule: per image up to the first kernel whose weights outweigh
         * the bytes of one image it reads and writes (from there on the
         * weights, streamed once per batch, are the traffic to amortize) */
        cut = 0;
        while (cut < n && kernel_weight_bytes(p, &p->k[cut]) <= kernel_image_bytes(p, &p->k[cut], batched, B)) cut++;
    }
    if (cut > n) cut = n;
    if (cut <= 0) {
        free(batched);
        return 0;
    }
    for (int i = 0; i < cut; i++) {
        Kernel *k = &p->k[i];
        int r = 0;
        for (int j = 0; j < k->nin; j++) r |= batched[k->in[j].buf];
        for (int j = 0; j < k->nargs; j++) r |= batched[k->args[j].buf];
        if (!r) continue;
        for (int j = 0; j < k->nin; j++)
            if (batched[k->in[j].buf]) split_view(&k->in[j], B);
        for (int j = 0; j < k->nargs; j++) split_view(&k->args[j], B);
        split_view(&k->out, B);
        if (k->kind == KK_GEMM) k->M /= B;
    }
    /* buffers touched in the segment: image strides, per-image scratch,
     * lifetimes widened over the whole segment for the boundary ones */
    for (int i = 0; i < p->nbufs; i++) {
        Buffer *b = &p->bufs[i];
        if (!batched[i]) continue;
        int in_seg = i == p->input_buf || (b->first >= 0 && b->first < cut);
        if (!in_seg) continue;
        if (b->kind == BUF_SCRATCH && b->last < cut) { /* lives inside one image's pass */
            b->bytes /= B;
            if (b->shape.d[0] % B == 0) b->shape.d[0] /= B;
            if (groups > 1) /* copies per image group: mc_memplan sets the stride */
                b->group_bytes = (b->bytes + 63) & ~(int64_t)63;
        } else {
            b->image_bytes = b->bytes / B;
            if (b->kind == BUF_SCRATCH && b->first > 0) b->first = 0;
            if (b->kind == BUF_SCRATCH && b->last < cut - 1) b->last = cut - 1;
        }
    }
    p->segs = malloc(sizeof(Segment));
    p->segs[0].k0 = 0;
    p->segs[0].k1 = cut;
    p->segs[0].images = B;
    p->segs[0].groups = groups;
    p->nsegs = 1;
    free(batched);
    return cut;
}
