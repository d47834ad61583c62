/* tests/unit/test_consts.c -- constants in the IR.
 *
 * The 25-tap table of the folded state fusion (ir/fusion25_taps.def, read
 * through ir/fusion25.h) against its definition written out here: tap 0
 * the centre, then the 8 non-centre positions of the 3x3 pattern,
 * row-major, at dilations 1, 3, 5; and the pass's tap table
 * (mc_state_fusion_taps) against alpha_r * k_r computed here from that
 * definition.
 *
 * The weights blob writer (ir/weights_blob.h) on a small lowered program
 * (a conv, a depthwise conv, the 25-tap fusion, a LayerNorm, a linear):
 * the graph layout against the tensors at their buffers' offsets, zeros
 * elsewhere; a backend layout (buffers moved or left out, a packing hook)
 * against the same layout computed here; missing or mis-sized tensors
 * refused with the tensor's name; and the CUDA and LLVM blobs hold the
 * graph-layout bytes and the re-packed tap tables ([25][D] rows) that
 * their kernels read.
 */
#define _GNU_SOURCE
#include <CUnit/Basic.h>
#include "unit.h"
#include "ir/fusion25.h"
#include "ir/weights_blob.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "backends/cuda/cuda.h"
#include "backends/llvm/llvm.h"
#include <stdlib.h>
#include <string.h>

/* the 8 non-centre positions of a 3x3 pattern, row-major: (ky, kx) - 1 */
static const int ring[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};

static void
test_taps_table(void)
{
    CU_ASSERT_EQUAL(MC_F25_NTAPS, 25);
    CU_ASSERT_EQUAL(mc_f25_dy(0), 0);
    CU_ASSERT_EQUAL(mc_f25_dx(0), 0);
    int reach = 0;
    for (int r = 0; r < 3; r++)
        for (int j = 0; j < 8; j++) {
            int t = 1 + 8 * r + j;
            CU_ASSERT_EQUAL(mc_f25_dy(t), ring[j][0] * (2 * r + 1));
            CU_ASSERT_EQUAL(mc_f25_dx(t), ring[j][1] * (2 * r + 1));
            reach = abs(mc_f25_dy(t)) > reach ? abs(mc_f25_dy(t)) : reach;
        }
    CU_ASSERT_EQUAL(MC_F25_REACH, reach);
    /* 25 distinct offsets */
    for (int a = 0; a < MC_F25_NTAPS; a++)
        for (int b = 0; b < a; b++)
            CU_ASSERT_FALSE(mc_f25_dy(a) == mc_f25_dy(b) && mc_f25_dx(a) == mc_f25_dx(b));
}

static void
test_fold_taps(void)
{
    rng_seed(25);
    const int64_t D = 5;
    float *k[3] = {rand_vec(D * 9, -1, 1), rand_vec(D * 9, -1, 1), rand_vec(D * 9, -1, 1)};
    float *al = rand_vec(3, 0.3, 1.2);
    float *taps = mc_state_fusion_taps(k[0], k[1], k[2], al, D);
    CU_ASSERT_PTR_NOT_NULL_FATAL(taps);
    for (int64_t d = 0; d < D; d++) {
        double c = 0;
        for (int r = 0; r < 3; r++) c += (double)al[r] * k[r][d * 9 + 4];
        CU_ASSERT_EQUAL(taps[d * 25], (float)c);
        for (int r = 0; r < 3; r++)
            for (int j = 0; j < 8; j++) {
                int p = (ring[j][0] + 1) * 3 + ring[j][1] + 1;
                CU_ASSERT_EQUAL(taps[d * 25 + 1 + 8 * r + j], (float)((double)al[r] * k[r][d * 9 + p]));
            }
    }
    free(taps);
    free(k[0]);
    free(k[1]);
    free(k[2]);
    free(al);
}

/* ------------------------------------------------------------ weights blob */

static const char blob_graph[] =
    "graph blob {\n"
    "  %x = input : f32[1,6,6,3]\n"
    "  %conv.weight = weight : f32[8,3,3,3]\n"
    "  %conv.bias = weight : f32[8]\n"
    "  %conv = conv2d %x, %conv.weight, %conv.bias stride=[1,1] pad=[1,1] dilation=[1,1] groups=1 : f32[1,6,6,8]\n"
    "  %dw.weight = weight : f32[8,1,3,3]\n"
    "  %dw = conv2d %conv, %dw.weight stride=[1,1] pad=[1,1] dilation=[1,1] groups=8 : f32[1,6,6,8]\n"
    "  %taps = weight : f32[8,25]\n"
    "  %f = state_fusion25 %dw, %taps : f32[1,6,6,8]\n"
    "  %ln.weight = weight : f32[8]\n"
    "  %ln.bias = weight : f32[8]\n"
    "  %ln = layernorm %f, %ln.weight, %ln.bias eps=1e-05 : f32[1,6,6,8]\n"
    "  %fc.weight = weight : f32[5,8]\n"
    "  %fc.bias = weight : f32[5]\n"
    "  %fc = linear %ln, %fc.weight, %fc.bias : f32[1,6,6,5]\n"
    "  return %fc\n"
    "}\n";

typedef struct BlobProg {
    Graph g;
    WeightStore ws;
    KProgram p;
} BlobProg;

/* the program of blob_graph, lowered and planned, random weights */
static void
blob_prog(BlobProg *b)
{
    McErr err = {{0}};
    memset(b, 0, sizeof *b);
    CU_ASSERT_FATAL(mc_graph_parse(&b->g, blob_graph, sizeof blob_graph - 1, "blob.mir", &err) == 0);
    mc_weights_init(&b->ws);
    rng_seed(7);
    for (int i = 0; i < b->g.nnodes; i++) {
        const Node *n = &b->g.nodes[i];
        if (n->op == OP_WEIGHT)
            mc_weights_put(&b->ws, n->name, DT_F32, DT_F32, &n->shape, rand_vec(mc_shape_numel(&n->shape), -1, 1));
    }
    CU_ASSERT_FATAL(mc_lower(&b->g, &b->ws, &b->p, &err) == 0);
    mc_memplan(&b->p);
}

static void
blob_prog_free(BlobProg *b)
{
    mc_kprogram_free(&b->p);
    mc_weights_free(&b->ws);
    mc_graph_free(&b->g);
}

static const WTensor *
tensor_of(const BlobProg *b, int buf)
{
    return mc_weights_find(&b->ws, b->p.bufs[buf].name);
}

/* the number of bytes of blob[0, len) outside [at[i], at[i] + n[i]) that are not zero */
static int64_t
nonzero_outside(const uint8_t *blob, int64_t len, const int64_t *at, const int64_t *n, int cnt)
{
    int64_t bad = 0;
    for (int64_t j = 0; j < len; j++) {
        int in = 0;
        for (int i = 0; i < cnt && !in; i++) in = at[i] >= 0 && j >= at[i] && j < at[i] + n[i];
        bad += !in && blob[j];
    }
    return bad;
}

static void
test_blob_graph_layout(void)
{
    BlobProg b;
    blob_prog(&b);
    const KProgram *p = &b.p;
    McErr err = {{0}};
    int64_t len = -1;
    uint8_t *blob = mc_weights_blob(p, &b.ws, NULL, &len, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
    CU_ASSERT_EQUAL(len, p->weights_bytes);
    CU_ASSERT_EQUAL((uintptr_t)blob % 64, 0);
    int64_t at[64], n[64];
    int cnt = 0, nw = 0;
    for (int i = 0; i < p->nbufs; i++) {
        if (p->bufs[i].kind != BUF_WEIGHT) continue;
        const WTensor *t = tensor_of(&b, i);
        CU_ASSERT_PTR_NOT_NULL_FATAL(t);
        CU_ASSERT_TRUE(p->bufs[i].offset + (int64_t)t->nbytes <= len);
        CU_ASSERT_EQUAL(memcmp(blob + p->bufs[i].offset, t->data, t->nbytes), 0);
        at[cnt] = p->bufs[i].offset;
        n[cnt++] = (int64_t)t->nbytes;
        nw++;
    }
    int ng = 0;
    for (int i = 0; i < b.g.nnodes; i++) ng += b.g.nodes[i].op == OP_WEIGHT;
    CU_ASSERT_EQUAL(nw, ng); /* every weight of the graph */
    CU_ASSERT_EQUAL(ng, 8);
    CU_ASSERT_EQUAL(nonzero_outside(blob, len, at, n, cnt), 0);
    free(blob);
    blob_prog_free(&b);
}

/* a backend layout: weight buffers in reverse id order, every third left
 * out, each kernel's in[1] (when a weight) written negated after them */
typedef struct TestLayout {
    int64_t place[64], packed[64];
    int calls;
} TestLayout;

static void
test_pack(void *ctx, const KProgram *p, int ki, const McBlobSrc *s, uint8_t *blob)
{
    TestLayout *tl = ctx;
    tl->calls++;
    const Kernel *k = &p->k[ki];
    if (tl->packed[ki] < 0) return;
    const View *w = &k->in[1];
    int64_t cnt = p->bufs[w->buf].bytes / 4 - w->offset;
    const float *src = mc_blob_src_view(s, w);
    for (int64_t i = 0; i < cnt; i++) ((float *)(blob + tl->packed[ki]))[i] = -src[i];
}

static void
test_blob_backend_layout(void)
{
    BlobProg b;
    blob_prog(&b);
    const KProgram *p = &b.p;
    CU_ASSERT_FATAL(p->nbufs <= 64 && p->nk <= 64);
    TestLayout tl;
    memset(&tl, 0, sizeof tl);
    int64_t off = 0, at[128], n[128];
    int cnt = 0;
    for (int i = p->nbufs - 1; i >= 0; i--) {
        tl.place[i] = -1;
        if (p->bufs[i].kind != BUF_WEIGHT || i % 3 == 0) continue;
        tl.place[i] = off;
        at[cnt] = off;
        n[cnt++] = p->bufs[i].bytes;
        off += (p->bufs[i].bytes + 63) & ~63;
    }
    int npacked = 0;
    for (int k = 0; k < p->nk; k++) {
        tl.packed[k] = -1;
        if (p->k[k].nin < 2 || p->bufs[p->k[k].in[1].buf].kind != BUF_WEIGHT) continue;
        tl.packed[k] = off;
        at[cnt] = off;
        n[cnt++] = p->bufs[p->k[k].in[1].buf].bytes;
        off += (p->bufs[p->k[k].in[1].buf].bytes + 63) & ~63;
        npacked++;
    }
    CU_ASSERT_TRUE(npacked >= 3); /* the conv, the depthwise conv, the taps, the linear */
    McBlobLayout lay = {.bytes = off + 100, .place = tl.place, .pack = test_pack, .ctx = &tl};
    McErr err = {{0}};
    int64_t len = -1;
    uint8_t *blob = mc_weights_blob(p, &b.ws, &lay, &len, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
    CU_ASSERT_EQUAL(len, off + 100);
    CU_ASSERT_EQUAL(tl.calls, p->nk);
    for (int i = 0; i < p->nbufs; i++)
        if (tl.place[i] >= 0) CU_ASSERT_EQUAL(memcmp(blob + tl.place[i], tensor_of(&b, i)->data, p->bufs[i].bytes), 0);
    for (int k = 0; k < p->nk; k++) {
        if (tl.packed[k] < 0) continue;
        const WTensor *t = tensor_of(&b, p->k[k].in[1].buf);
        const float *got = (const float *)(blob + tl.packed[k]), *want = t->data;
        int bad = 0;
        for (size_t i = 0; i < t->nbytes / 4; i++) bad += got[i] != -want[i];
        CU_ASSERT_EQUAL(bad, 0);
    }
    CU_ASSERT_EQUAL(nonzero_outside(blob, len, at, n, cnt), 0);
    free(blob);
    blob_prog_free(&b);
}

static void
test_blob_errors(void)
{
    BlobProg b;
    blob_prog(&b);
    McErr err = {{0}};
    /* a tensor of another size */
    Shape s = {1, {3}};
    mc_weights_put(&b.ws, "ln.bias", DT_F32, DT_F32, &s, calloc(3, sizeof(float)));
    int64_t len = 7;
    CU_ASSERT_PTR_NULL(mc_weights_blob(&b.p, &b.ws, NULL, &len, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ln.bias"));
    CU_ASSERT_EQUAL(len, 7);
    /* no such tensor */
    WeightStore empty;
    mc_weights_init(&empty);
    memset(&err, 0, sizeof err);
    CU_ASSERT_PTR_NULL(mc_weights_blob(&b.p, &empty, NULL, &len, &err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "weights: no f32 tensor"));
    mc_weights_free(&empty);
    blob_prog_free(&b);
}

/* the position of the n floats f in blob[0, len), or -1 */
static int64_t
find_floats(const uint8_t *blob, int64_t len, const float *f, int64_t n)
{
    const uint8_t *q = memmem(blob, (size_t)len, f, (size_t)n * 4);
    return q ? q - blob : -1;
}

/* blob (len bytes) begins with p's graph layout, or holds each weight
 * buffer read through a view somewhere (graph_prefix 0); and it holds the
 * 25-tap table as [25][D] rows, each tap's D values in a row */
static void
check_backend_blob(const BlobProg *b, const uint8_t *blob, int64_t len, int graph_prefix)
{
    McErr err = {{0}};
    uint8_t *g = mc_weights_blob(&b->p, &b->ws, NULL, NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(g);
    if (graph_prefix) {
        CU_ASSERT_TRUE(len >= b->p.weights_bytes);
        CU_ASSERT_EQUAL(memcmp(blob, g, (size_t)b->p.weights_bytes), 0);
    }
    const WTensor *t = mc_weights_find(&b->ws, "taps"), *lw = mc_weights_find(&b->ws, "ln.weight");
    CU_ASSERT_PTR_NOT_NULL_FATAL(t);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lw);
    CU_ASSERT_TRUE(find_floats(blob, len, lw->data, 8) >= 0); /* LayerNorm's gamma, read as it is */
    int64_t D = t->shape.d[0], prev = -1;
    for (int tap = 0; tap < MC_F25_NTAPS; tap++) {
        float row[8];
        for (int64_t d = 0; d < D; d++) row[d] = ((const float *)t->data)[d * MC_F25_NTAPS + tap];
        int64_t at = find_floats(blob, len, row, D);
        CU_ASSERT_TRUE(at >= (graph_prefix ? b->p.weights_bytes : 0) && at > prev);
        prev = at;
    }
    free(g);
}

static void
test_blob_cuda(void)
{
    BlobProg b;
    blob_prog(&b);
    McErr err = {{0}};
    int64_t len = 0;
    uint8_t *blob = mc_cuda_weights_blob(&b.p, &b.ws, &len, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(blob);
    check_backend_blob(&b, blob, len, 1);
    free(blob);
    blob_prog_free(&b);
}

static void
test_blob_llvm(void)
{
    BlobProg b;
    blob_prog(&b);
    McErr err = {{0}};
    McLlvmTarget *tg = mc_llvm_target_create("x86_64-linux-gnu", "x86-64-v3", NULL, &err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(tg);
    uint8_t *blob = NULL;
    int64_t len = 0;
    CU_ASSERT_FATAL(mc_llvm_pack_weights(&b.p, &b.ws, tg, &blob, &len, &err) == 0);
    CU_ASSERT_EQUAL(len, mc_llvm_weights_size(&b.p, tg));
    check_backend_blob(&b, blob, len, 0);
    free(blob);
    mc_llvm_target_free(tg);
    blob_prog_free(&b);
}

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"the 25-tap table: centre, then 3x3 rings at dilations 1, 3, 5", test_taps_table},
    {"fold-state-fusion's taps in the table's order", test_fold_taps},
    {"weights blob: graph layout at the buffers' offsets, zeros elsewhere", test_blob_graph_layout},
    {"weights blob: a backend's placement and packing hook", test_blob_backend_layout},
    {"weights blob: a missing or mis-sized tensor is named", test_blob_errors},
    {"weights blob: CUDA's holds the graph layout and the [25][D] taps", test_blob_cuda},
    {"weights blob: LLVM's holds the view-read weights and the [25][Dp] taps", test_blob_llvm},
};

MC_UNIT_MAIN("consts", tests)
