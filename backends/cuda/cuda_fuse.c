/* backends/cuda/cuda_fuse.c -- which kernels of the kernel program run
 * inside another one (the CUDA printer's cross-kernel fusions): a
 * LayerNorm inside the kernel that produces its input (the 25-tap fusion,
 * the cpe convs), fc2 inside fc1 (the on-chip MLP), x_proj inside the SSM
 * conv, a downsample's depthwise conv and projection inside its expansion.
 * Each has a shape test (the kernels, their views; independent of the
 * precision, so the memory plan, mc_cuda_memplan, is the same in every
 * mode) and a test under the printing context (precision, storage, the
 * planned slots).  The printers: cuda_print.c, cuda_gemm.c. */
#include "cuda_internal.h"
#include "../../passes/lower.h"

static int
same_view(const View *a, const View *b)
{
    if (a->buf != b->buf || a->rank != b->rank || a->offset != b->offset) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d] || a->stride[d] != b->stride[d]) return 0;
    return 1;
}

/* buffers a and b may share bytes: the same buffer, or scratch buffers
 * whose planned slots overlap (the memory plan reuses the slot of a buffer
 * after its last reader) */
static int
bufs_overlap(const KProgram *p, int a, int b)
{
    const Buffer *x = &p->bufs[a], *y = &p->bufs[b];
    if (a == b) return 1;
    if (x->kind != BUF_SCRATCH || y->kind != BUF_SCRATCH) return 0;
    return x->offset < y->offset + y->bytes && y->offset < x->offset + x->bytes;
}

/* A LayerNorm runs inside the kernel before it when that kernel keeps a
 * position's channels in the registers of an aligned group of threads:
 * the wide 25-tap fusion (4 channels per thread) and the 8-channel form of
 * a depthwise conv (8).  Returns those channels per thread (0: neither),
 * the G threads of a position in *g. */
static int
ln_producer(const Kernel *k, long long *g)
{
    long long P;
    if (k->kind == KK_FUSION25 && k->out.rank == 4 && mc_cu_fusion25_wide(k)) {
        *g = k->out.shape[3] / 4;
        return 4;
    }
    if (k->kind == KK_DWCONV && mc_cu_dwconv8_form(k, &P)) {
        *g = k->out.shape[3] / 8;
        return 8;
    }
    return 0;
}

/* kernel i + 1 (its first operand) is the only reader of kernel i's output */
static int
sole_reader(const KProgram *p, int i)
{
    const int buf = p->k[i].out.buf;
    for (int j = 0; j < p->nk; j++) {
        const Kernel *o = &p->k[j];
        for (int a = 0; a < o->nin; a++)
            if (o->in[a].buf == buf && !(j == i + 1 && a == 0)) return 0;
        for (int a = 0; a < o->nargs; a++)
            if (o->args[a].buf == buf) return 0;
    }
    return 1;
}

/* kernel i is the only kernel that reads buffer buf (a weight rounded in
 * place at start-up must not change what another kernel reads) */
static int
only_reader(const KProgram *p, int buf, int i)
{
    for (int j = 0; j < p->nk; j++) {
        const Kernel *o = &p->k[j];
        for (int a = 0; a < o->nin; a++)
            if (o->in[a].buf == buf && j != i) return 0;
        for (int a = 0; a < o->nargs; a++)
            if (o->args[a].buf == buf && j != i) return 0;
    }
    return 1;
}

/* The shape of the pair: kernel i + 1 is the LayerNorm of exactly kernel
 * i's output over its D channels (the out_norm of the SSM after the 25-tap
 * fusion: LN(y) * SiLU(z); the ln_1 / ln_2 after the cpe depthwise convs),
 * and the G threads of a position make a power of two of at most 256: the
 * sums then run across those threads (shuffles, and shared memory across
 * warps).  The fusion's y never goes to memory, so no other kernel may read
 * it; a depthwise conv still stores its output (the residual stream). */
static int
fuse_ln_shape(const KProgram *p, int i)
{
    if (i + 1 >= p->nk) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    long long G;
    int V = ln_producer(k, &G);
    if (!V || l->kind != KK_LAYERNORM) return 0;
    long long D = k->out.shape[3];
    if (G > 256 || (G & (G - 1)) || l->nin != 3 || !same_view(&l->in[0], &k->out)) return 0;
    if (p->bufs[k->out.buf].kind != BUF_SCRATCH || !mc_cu_vecn_view(&l->out, D, V)) return 0;
    if (l->out.rank != 4 || l->out.shape[3] != D) return 0;
    if (k->kind != KK_FUSION25) return 1;
    return sole_reader(p, i);
}

/* ... and the memory plan lets it: the fused kernel writes l's output while
 * it still reads k's inputs at neighbouring positions, so l's output may
 * share no bytes with them (mc_cuda_memplan plans it so).  Allowed under
 * an older plan: an operand of the fusion read element for element where
 * the output is written (u of u * Ds: the same slot, the same layout), by
 * the thread that writes it, before it does. */
/* buffer b shares no bytes with kernel k's inputs or its output */
static int
clear_of(const KProgram *p, const Kernel *k, int b)
{
    for (int a = 0; a < k->nin; a++)
        if (bufs_overlap(p, k->in[a].buf, b)) return 0;
    return !bufs_overlap(p, k->out.buf, b);
}

static int
fuse_ln(const KProgram *p, int i)
{
    if (!fuse_ln_shape(p, i)) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    if (!clear_of(p, k, l->out.buf)) return 0;
    for (int a = 0; a < k->nargs; a++) {
        const View *v = &k->args[a];
        if (!bufs_overlap(p, v->buf, l->out.buf)) continue;
        View w = *v;
        w.buf = l->out.buf;
        if (k->kind != KK_FUSION25 || p->bufs[v->buf].offset != p->bufs[l->out.buf].offset || !same_view(&w, &l->out))
            return 0;
    }
    return 1;
}

/* The MLP pair: kernel i (fc1) and i + 1 (fc2) are GEMMs over many rows,
 * fc2 reads exactly fc1's output and nothing else does, both dense: fc2
 * then runs inside fc1 with the hidden activations on chip (mc_mlp; C <=
 * 128 channels in, a multiple of 16, CO <= 128 out, a multiple of 32, the
 * hidden width a multiple of 8).  The
 * shape only; fuse_mlp adds what the printing context decides. */
int mc_cu_fill_rows = MC_CUDA_FILL_DEFAULT;

void
mc_cuda_set_fill(int rows)
{
    mc_cu_fill_rows = rows > 0 ? rows : MC_CUDA_FILL_DEFAULT;
}

static int
fuse_mlp_shape(const KProgram *p, int i)
{
    if (i + 1 >= p->nk) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    if (k->kind != KK_GEMM || l->kind != KK_GEMM) return 0;
    int64_t M, N, K, M2, N2, K2;
    mc_cu_gemm_dims(k, &M, &N, &K);
    mc_cu_gemm_dims(l, &M2, &N2, &K2);
    if (M2 != M || K2 != N || M < MC_CUDA_FILL || K % 16 || K > 128 || N % 8 || N2 % 32 || N2 > 128) return 0;
    if (!mc_cu_is_contig(&k->in[0], M, K) || k->in[0].offset % 8 || !mc_cu_is_contig_rows(&k->out, N))
        return 0;
    /* fc2 reads fc1's output as the same dense [M, N] rows */
    if (l->in[0].buf != k->out.buf || l->in[0].offset != k->out.offset || !mc_cu_is_contig(&l->in[0], M, N)) return 0;
    if (!mc_cu_is_contig_rows(&l->out, N2) || l->out.offset % 2 || !mc_cu_is_contig(&k->in[1], N, K) || !mc_cu_is_contig(&l->in[1], N2, K2))
        return 0;
    if (p->bufs[k->out.buf].kind != BUF_SCRATCH) return 0;
    return sole_reader(p, i);
}

/* ... in bf16 mode (bf16 rows and weight copies; mc_mlp) or tf32 mode
 * (float rows, float weights 16-byte aligned for cp.async; mc_mlp32), and
 * where fc2's output shares no bytes with fc1's input (blocks write their
 * rows while others still read theirs) */
static int
fuse_mlp(const KProgram *p, int i)
{
    if (!(mc_cu_bf16_mode() || mc_cu_tf32_mode()) || !fuse_mlp_shape(p, i)) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    if (mc_cu_bf16_mode() && (!mc_cu_buf_bf16(k->in[0].buf) || !mc_cu_gemm_w16(p, i, MC_CUDA_BF16) || !mc_cu_gemm_w16(p, i + 1, MC_CUDA_BF16)))
        return 0;
    /* tf32: C, CO <= 64 (at 128 its A fragments and accumulators leave one
     * block per SM: measured slower than the unfused pair); weights that no
     * other kernel reads (mc_prepare rounds them to tf32 in place) */
    int64_t M, N, K, M2, N2, K2;
    mc_cu_gemm_dims(k, &M, &N, &K);
    mc_cu_gemm_dims(l, &M2, &N2, &K2);
    if (mc_cu_tf32_mode() && (k->in[1].offset % 4 || l->in[1].offset % 4 || K > 64 || N2 > 64 || !only_reader(p, k->in[1].buf, i) ||
                     !only_reader(p, l->in[1].buf, i + 1)))
        return 0;
    return !bufs_overlap(p, k->in[0].buf, l->out.buf);
}

/* The SSM's x_proj (a thin product of the depthwise conv's output u,
 * N = R + 2 columns) inside that conv when it runs its 8-channel form with
 * the D / 8 threads of a position inside one warp: each thread's 8
 * channels give partial sums, summed across the position's threads
 * through shared memory; u is still stored (the scan reads it).  The
 * product sums the channels in another order than the GEMM (float
 * rounding apart, the same values); at most 48 partial sums per thread. */
#define XP_MAX 48
static int
fuse_xproj_shape(const KProgram *p, int i)
{
    if (i + 1 >= p->nk) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    long long P;
    if (k->kind != KK_DWCONV || l->kind != KK_GEMM || !mc_cu_dwconv8_form(k, &P)) return 0;
    int64_t M, N, K;
    mc_cu_gemm_dims(l, &M, &N, &K);
    long long D = k->out.shape[3], G = D / 8;
    if (K != D || M * D != mc_cuda_numel(&k->out) || G > 32 || (G & (G - 1)) || N * P > XP_MAX) return 0;
    if (l->nin != 2 || l->nexpr != 0 || l->nargs != 0 || l->in[1].offset % 4) return 0;
    /* a kernel runs inside at most one other: the product may not also be
     * the fc1 of an MLP pair */
    if (fuse_mlp_shape(p, i + 1)) return 0;
    if (l->in[0].buf != k->out.buf || l->in[0].offset != k->out.offset || !mc_cu_is_contig(&l->in[0], M, K)) return 0;
    return mc_cu_is_contig_rows(&k->out, D) && mc_cu_is_contig(&l->in[1], N, K) && mc_cu_is_contig_rows(&l->out, N);
}

/* ... where the product's output shares no bytes with what the conv reads
 * or writes */
static int
fuse_xproj(const KProgram *p, int i)
{
    if (!fuse_xproj_shape(p, i)) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    for (int a = 0; a < k->nargs; a++)
        if (bufs_overlap(p, k->args[a].buf, l->out.buf)) return 0;
    return clear_of(p, k, l->out.buf);
}

/* A dense NHWC [B, H, W, C] view (64-byte aligned rows of 8-element vectors) */
static int
nhwc_view(const View *v)
{
    if (v->rank != 4) return 0;
    const int64_t C = v->shape[3];
    return v->stride[3] == 1 && v->stride[2] == C && v->stride[1] == v->shape[2] * C &&
           v->stride[0] == v->shape[1] * v->shape[2] * C && v->offset % 8 == 0;
}

/* The downsample triple: kernel i a 1x1 conv as a GEMM (C -> HID), i + 1
 * the 3x3 stride-2 pad-1 depthwise conv of exactly its output (dense
 * NHWC), i + 2 a 1x1 conv as a GEMM (HID -> CO) of exactly that; each
 * output read by the next kernel only, no epilogue operands in the first
 * two, and a tile of mc_down that pays (mc_cu_down_tile).  Then the
 * depthwise conv and the projection run inside the expansion (mc_down),
 * the hidden activations never in memory.  The shape only. */
static int
fuse_down_shape(const KProgram *p, int i)
{
    if (i + 2 >= p->nk) return 0;
    const Kernel *k = &p->k[i], *d = &p->k[i + 1], *l = &p->k[i + 2];
    if (k->kind != KK_GEMM || d->kind != KK_DWCONV || l->kind != KK_GEMM || k->nargs || d->nargs) return 0;
    const View *x = &d->in[0], *w = &d->in[1];
    if (!nhwc_view(x) || !nhwc_view(&d->out) || w->rank != 4 || w->shape[2] != 3 || w->shape[3] != 3) return 0;
    const Attrs *at = &d->attrs;
    if (at->stride[0] != 2 || at->stride[1] != 2 || at->pad[0] != 1 || at->pad[1] != 1 || at->dil[0] != 1 || at->dil[1] != 1)
        return 0;
    int64_t M, N, K, M2, N2, K2, B = x->shape[0], H = x->shape[1], W = x->shape[2], HID = x->shape[3];
    mc_cu_gemm_dims(k, &M, &N, &K);
    mc_cu_gemm_dims(l, &M2, &N2, &K2);
    if (N != HID || M != B * H * W || d->out.shape[3] != HID || d->out.shape[1] != (H - 1) / 2 + 1 ||
        d->out.shape[2] != (W - 1) / 2 + 1 || K2 != HID || M2 != B * d->out.shape[1] * d->out.shape[2])
        return 0;
    if (!mc_cu_is_contig(&k->in[0], M, K) || k->in[0].offset % 8 || !mc_cu_is_contig_rows(&k->out, N) ||
        x->buf != k->out.buf || x->offset != k->out.offset)
        return 0;
    if (!mc_cu_is_contig(&l->in[0], M2, K2) || l->in[0].buf != d->out.buf || l->in[0].offset != d->out.offset ||
        !mc_cu_is_contig_rows(&l->out, N2) || l->out.offset % 2)
        return 0;
    if (!mc_cu_is_contig(&k->in[1], N, K) || !mc_cu_is_contig(&l->in[1], N2, K2)) return 0;
    if (p->bufs[k->out.buf].kind != BUF_SCRATCH || p->bufs[d->out.buf].kind != BUF_SCRATCH) return 0;
    return sole_reader(p, i) && sole_reader(p, i + 1) && mc_cu_down_tile(B, H, W, K, HID, N2, NULL, NULL, NULL);
}

/* ... in bf16 mode (bf16 activations and weight copies), where the
 * projection's output shares no bytes with the expansion's input */
static int
fuse_down(const KProgram *p, int i)
{
    if (!mc_cu_bf16_mode() || !fuse_down_shape(p, i)) return 0;
    const Kernel *k = &p->k[i], *l = &p->k[i + 2];
    if (!mc_cu_buf_bf16(k->in[0].buf) || !mc_cu_gemm_w16(p, i, MC_CUDA_BF16) || !mc_cu_gemm_w16(p, i + 2, MC_CUDA_BF16))
        return 0;
    return !bufs_overlap(p, k->in[0].buf, l->out.buf);
}

int
mc_cu_down_fused(const KProgram *p, int i)
{
    return i >= 0 && fuse_down(p, i);
}

int
mc_cuda_fused_into(const KProgram *p, int i)
{
    if (i > 1 && fuse_down(p, i - 2)) return i - 2;
    if (i > 0 && fuse_down(p, i - 1)) return i - 1;
    /* a kernel runs inside at most one other */
    if (fuse_down_shape(p, i) || (i > 0 && fuse_down_shape(p, i - 1)) || (i > 1 && fuse_down_shape(p, i - 2)))
        return -1;
    return i > 0 && (fuse_ln(p, i - 1) || fuse_mlp(p, i - 1) || fuse_xproj(p, i - 1)) ? i - 1 : -1;
}

void
mc_cuda_memplan(KProgram *p)
{
    /* the output of a LayerNorm (or an fc2) that runs inside kernel i is
     * written by kernel i: live from there, it gets no slot of kernel i's
     * inputs (in every precision: the plan does not depend on it) */
    for (int i = 0; i + 1 < p->nk; i++)
        if (fuse_ln_shape(p, i) || fuse_mlp_shape(p, i) || fuse_xproj_shape(p, i) || fuse_down_shape(p, i)) {
            Buffer *o = &p->bufs[p->k[i + (fuse_down_shape(p, i) ? 2 : 1)].out.buf];
            if (o->kind == BUF_SCRATCH && o->first > i) o->first = i;
        }
    mc_memplan(p);
}
