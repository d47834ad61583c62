/* backends/cuda/cuda_forms.c -- which form each kernel, and each pair or
 * triple of adjacent kernels, takes on the GPU: pure functions of the
 * kernel program (kinds, views, buffer kinds) and the precision, with no
 * printing state.  The per-kernel forms (the 8-channel depthwise conv, the
 * wide 25-tap fusion, the direct stem conv, bf16 weight copies, GEMM tiles
 * and split-K, mc_conv3, mc_down's tile, the scan's chunking and one-pass
 * form) and the fusions' forms (a LayerNorm, fc2, x_proj inside the kernel
 * before it; a downsample in one kernel): their shapes, which the fusion
 * passes extend lifetimes for in every precision, and what the precision
 * adds.  The bottom layer of the backend (cuda_forms.h): the fusion passes
 * (cuda_fuse.c), the layout and the printers call it; it calls none of
 * them.  Also the precisions' names.  Owns nothing.
 */
#include "cuda_forms.h"
#include <string.h>

int
mc_cuda_precision_parse(const char *s)
{
    if (!s) return -1;
    if (!strcmp(s, "fp32")) return MC_CUDA_FP32;
    if (!strcmp(s, "tf32")) return MC_CUDA_TF32;
    if (!strcmp(s, "bf16")) return MC_CUDA_BF16;
    return -1;
}

const char *
mc_cuda_precision_name(McCudaPrecision p)
{
    return p == MC_CUDA_TF32 ? "tf32" : p == MC_CUDA_BF16 ? "bf16" : "fp32";
}

/* Tests lower it (mc_cuda_set_fill) to run the many-row forms on small
 * models. */
int mc_cu_fill_rows = MC_CUDA_FILL_DEFAULT;

void
mc_cuda_set_fill(int rows)
{
    mc_cu_fill_rows = rows > 0 ? rows : MC_CUDA_FILL_DEFAULT;
}

int64_t
mc_cuda_numel(const View *v)
{
    int64_t n = 1;
    for (int i = 0; i < v->rank; i++) n *= v->shape[i];
    return n;
}

/* M, N, K of a GEMM or implicit-GEMM convolution */
void
mc_cu_gemm_dims(const Kernel *k, int64_t *M, int64_t *N, int64_t *K)
{
    if (k->kind == KK_CONV) {
        *M = k->out.shape[0] * k->out.shape[1] * k->out.shape[2];
        *N = k->in[1].shape[0];
        *K = k->in[1].shape[1] * k->in[1].shape[2] * k->in[1].shape[3];
    } else {
        *M = k->M; *N = k->N; *K = k->K;
    }
}

int
mc_cu_is_contig(const View *v, int64_t rows, int64_t cols)
{
    return v->rank == 2 && v->shape[0] == rows && v->shape[1] == cols && (v->stride[0] == cols || rows == 1) &&
           v->stride[1] == 1;
}

/* the view is a dense [rows, C] array (row * C + c) */
int
mc_cu_is_contig_rows(const View *v, int64_t C)
{
    int64_t st = 1;
    for (int d = v->rank - 1; d >= 0; d--) {
        if (v->shape[d] != 1 && v->stride[d] != st) return 0;
        st *= v->shape[d];
    }
    return v->shape[v->rank - 1] == C;
}

/* Vector loads of n elements along the last (channel) axis (n = 4: 16
 * bytes of float; n = 8: 16 bytes of bf16 or two float4): it is contiguous,
 * and every other stride and the offset are multiples of n (buffers are
 * 64-byte aligned) */
int
mc_cu_vecn_view(const View *v, int64_t C, int n)
{
    if (C % n || v->rank < 1 || v->stride[v->rank - 1] != 1 || v->offset % n) return 0;
    for (int i = 0; i < v->rank - 1; i++)
        if (v->stride[i] % n) return 0;
    return 1;
}

/* bf16 activation storage (bf16 precision): every scratch buffer holds
 * __nv_bfloat16 (in its planned slot, of which it uses half); the input,
 * output, weights and scan carries stay float.  Loads convert to float
 * (mc_ld, mc_ldv4), stores round once (__float2bfloat16_rn): the
 * arithmetic, the scan state and every reduction stay fp32. */
int
mc_cu_stores_bf16(const KProgram *p, McCudaPrecision prec, int buf)
{
    return prec == MC_CUDA_BF16 && p->bufs[buf].kind == BUF_SCRATCH;
}

/* ------------------------------------------------------------ kernels */

/* the 8-channel x P-position form of a depthwise conv (print_dwconv8):
 * its thread count, P in *pp; 0 where it does not apply */
long long
mc_cu_dwconv8_form(const Kernel *k, long long *pp)
{
    if (k->kind != KK_DWCONV || k->out.rank != 4 || k->out.shape[3] % 8) return 0;
    long long Ho = k->out.shape[1], Wo = k->out.shape[2], C = k->out.shape[3];
    int64_t n = mc_cuda_numel(&k->out);
    /* fewer than ~4 blocks of 256 threads per SM (batch 1): one channel per
     * thread keeps more loads in flight (measured: 8-wide made batch 1 slower) */
    if (n / 8 < 4 * 132 * 256) return 0;
    if (!vec8_view(&k->in[0], C) || !vec8_view(&k->out, C)) return 0;
    /* P = 4 output positions along x per thread where that still leaves
     * ~4 blocks per SM: each tap's weights (two float4: twice the L1 bytes
     * of the 16-byte load of x) loaded once for the 4 */
    long long P = n / 32 >= 4 * 132 * 256 ? 4 : 1, WG = (Wo + P - 1) / P;
    *pp = P;
    return k->out.shape[0] * Ho * WG * (C / 8);
}

/* the threads of the 4-channels x MC_CU_F25_P-positions form of the
 * 25-tap fusion, 0 where that form does not apply */
long long
mc_cu_fusion25_wide(const Kernel *k)
{
    long long H = k->out.shape[1], W = k->out.shape[2], D = k->out.shape[3];
    long long NT = k->out.shape[0] * H * ((W + MC_CU_F25_P - 1) / MC_CU_F25_P) * D / 4;
    return vec4_view(&k->in[0], D) && vec4_view(&k->out, D) && NT >= MC_CUDA_FILL ? NT : 0;
}

/* A dense conv with few taps x input channels (K = Ci * KH * KW < 32: the
 * RGB stem conv, K = 27), Co % 8 == 0, Co <= 64 output channels and
 * enough output positions to fill the GPU: as a GEMM it ran on FFMA tiles,
 * mostly padding.  Direct form: a thread per
 * output position, its K inputs loaded once into registers, the K x Co
 * weights (at most 8 KB) in constant memory, copied there at start-up:
 * every lane of a warp reads the same weight, an FFMA operand straight
 * from the constant cache.  At most MC_DIRECT_MAX such kernels (48 KB of
 * the 64 KB of constant memory). */
#define MC_DIRECT_MAX 6
static int
conv_direct1(const Kernel *k)
{
    if (k->kind != KK_CONV || k->out.rank != 4 || k->in[0].rank != 4) return 0;
    const View *w = &k->in[1];
    long long Co = k->out.shape[3], K = w->shape[1] * w->shape[2] * w->shape[3];
    /* few positions (batch 1: 12544 threads of ~900 FMAs each, 49 blocks)
     * measured slower than the GEMM's tiles: 1.369 -> 1.416 ms */
    if (k->out.shape[0] * k->out.shape[1] * k->out.shape[2] < MC_CUDA_FILL) return 0;
    return K < 32 && Co % 8 == 0 && Co <= 64 && vec8_view(&k->out, Co);
}

int
mc_cu_conv_direct(const KProgram *p, int i)
{
    if (!conv_direct1(&p->k[i])) return 0;
    int n = 0;
    for (int j = 0; j < i; j++) n += conv_direct1(&p->k[j]);
    return n < MC_DIRECT_MAX;
}

/* bf16 mode: the tensor-core GEMMs read their weights as bf16 from a copy
 * made at start-up (half the bytes, no conversion per tile); needs K % 8
 * == 0 (16-byte rows) */
int
mc_cu_gemm_w16(const KProgram *p, int i, McCudaPrecision prec)
{
    const Kernel *k = &p->k[i];
    if (prec != MC_CUDA_BF16 || (k->kind != KK_GEMM && k->kind != KK_CONV) || mc_cu_conv_direct(p, i)) return 0;
    int64_t M, N, K;
    mc_cu_gemm_dims(k, &M, &N, &K);
    return N >= 32 && K >= 32 && K % 8 == 0;
}

/* Tile shape and split-K of a tensor-core GEMM (skinny products, N or K <
 * 32, run FFMA and never split).  Large M: 128-row tiles.  When the tiles
 * alone would leave most SMs idle (batch 1: stage-3 fc2 has 4 tiles of
 * 64 x 128), 64-column tiles and K split into SK slices of KC (a multiple
 * of 32, at least 128): each slice's block writes its partial tile to a
 * float workspace, the last block of a tile (an atomic counter) sums the
 * slices in slice order -- deterministic -- and runs the epilogue. */
static void
gemm_tiles_default(const Kernel *k, int *bm, int *bn, int *sk, int64_t *kc)
{
    int64_t M, N, K;
    mc_cu_gemm_dims(k, &M, &N, &K);
    *bm = M >= 128 * 132 ? 128 : 64;
    /* 32-column tiles for the 32-channel stem convolutions (64 would
     * compute half zeros) */
    *bn = N >= 96 ? 128 : N == 32 && K >= 32 ? 32 : 64;
    *sk = 1;
    *kc = K;
    if (N < 32 || K < 32) return;
    int64_t tiles = ((M + *bm - 1) / *bm) * ((N + *bn - 1) / *bn);
    if (tiles * 256 >= MC_CUDA_FILL / 2) return;
    if (*bn == 128) *bn = 64;
    tiles = ((M + *bm - 1) / *bm) * ((N + *bn - 1) / *bn);
    int64_t s = (132 + tiles - 1) / tiles;
    if (s > K / 128) s = K / 128;
    if (s < 2) return;
    int64_t c = ((K + s - 1) / s + 31) / 32 * 32;
    *kc = c;
    *sk = (int)((K + c - 1) / c);
}

/* ... as printed: the schedule's tile_m, tile_n, split and tile_k where
 * set (the cuda-tile pass records the defaults above; a hand-edited one is
 * checked by mc_cu_sched_check before anything is printed).  split alone:
 * K in split slices of a multiple of 32; tile_k alone: ceil(K / tile_k)
 * slices. */
void
mc_cuda_gemm_tiles(const Kernel *k, int *bm, int *bn, int *sk, int64_t *kc)
{
    const Sched *s = &k->sched;
    int64_t M, N, K;
    gemm_tiles_default(k, bm, bn, sk, kc);
    mc_cu_gemm_dims(k, &M, &N, &K);
    if (s->tile_m) *bm = (int)s->tile_m;
    if (s->tile_n) *bn = (int)s->tile_n;
    if (s->split > 0) {
        *sk = (int)s->split;
        *kc = s->tile_k > 0 ? s->tile_k : s->split > 1 ? ((K + s->split - 1) / s->split + 31) / 32 * 32 : K;
    } else if (s->tile_k > 0) {
        *kc = s->tile_k;
        *sk = (int)((K + *kc - 1) / *kc);
    }
}

/* A 3x3 stride-1 pad-1 conv in bf16 mode with C % 16 == 0 input channels
 * (<= 64) and CO % 16 == 0 outputs (<= 64), dense NHWC bf16 input, over
 * many positions (the stem's 32 -> 32 convs): mc_conv3, its A fragments
 * straight from the input rows in shared memory (no im2col copies through
 * the cp.async k-loop) */
int
mc_cu_conv3_tc(const KProgram *p, int i, McCudaPrecision prec)
{
    const Kernel *k = &p->k[i];
    const View *x = &k->in[0];
    const int bf = prec == MC_CUDA_BF16;
    if (!(bf || prec == MC_CUDA_TF32) || k->kind != KK_CONV || k->out.rank != 4 || x->rank != 4) return 0;
    const View *w = &k->in[1];
    long long C = x->shape[3], CO = k->out.shape[3], H = x->shape[1], W = x->shape[2];
    if (w->shape[2] != 3 || w->shape[3] != 3 || w->shape[1] != C || k->attrs.stride[0] != 1 || k->attrs.stride[1] != 1)
        return 0;
    if (k->attrs.pad[0] != 1 || k->attrs.pad[1] != 1 || k->attrs.dil[0] != 1 || k->attrs.dil[1] != 1) return 0;
    if (C % 16 || C > 64 || CO % 16 || CO > 64 || k->out.shape[1] != H || k->out.shape[2] != W || H * W < 256) return 0;
    /* its shared memory (mc_conv3_dsm / mc_conv3t_dsm: the input rows 256
     * positions read, whole rows of W pixels, and the weights) within the
     * 227 KB a block may have: wide images (a 1333-pixel input's 667-wide
     * stem) take the implicit GEMM */
    long long nr = (256 + W - 1) / W + 4, dsm = ((nr * W + 1) * (C + 8) + CO * (9 * C + 8)) * (bf ? 2 : 4);
    if (dsm > MC_CU_SMEM_BLOCK_MAX) return 0;
    if (mc_cu_stores_bf16(p, prec, x->buf) != bf || x->offset % 8 || x->stride[3] != 1 || x->stride[2] != C || x->stride[1] != W * C ||
        x->stride[0] != H * W * C)
        return 0;
    /* bf16: the bf16 weight copy; tf32: the re-packed float weights (every
     * dense conv has them) */
    if (bf && !mc_cu_gemm_w16(p, i, MC_CUDA_BF16)) return 0;
    return mc_cuda_numel(&k->out) / CO >= MC_CUDA_FILL && mc_cu_is_contig_rows(&k->out, CO);
}

/* mc_down's tile for a downsample of [B, H, W, C] -> HID hidden -> CO
 * outputs: TW output columns (at most 32) x R output rows, as many rows as
 * keep the outputs within 64 (MT3 fragments of 16, a power of two) and
 * shared memory within 110 KB (two blocks per SM); 0 where none fits or the
 * tile's recomputed input pixels and padded outputs would cost more than
 * 1.3x the unfused products' FLOPs (the weights are re-read per block: a
 * few outputs per block do not pay) or there would be fewer blocks than
 * SMs. */
int
mc_cu_down_tile(int64_t B, int64_t H, int64_t W, int64_t C, int64_t HID, int64_t CO, int *R, int *TW, int *MT3)
{
    const int64_t HO = (H - 1) / 2 + 1, WO = (W - 1) / 2 + 1, HC = 32;
    if (C % 16 || C > 128 || HID % HC || CO % 16) return 0;
    int64_t tw = WO < 32 ? WO : 32;
    for (int64_t r = HO < 64 / tw ? HO : 64 / tw; r >= 1; r--) {
        int64_t m2 = r * tw, mt = 1;
        while (16 * mt < m2) mt *= 2;
        int64_t nw = CO * mt / 8, p = ((2 * r + 1) * (2 * tw + 1) + 15) / 16 * 16;
        if (nw % 16 || nw > 128) continue;
        int64_t dsm = (p * (C + 8 + HC + 8) + HC * (C + 8) + CO * (HC + 8) + 16 * mt * (HC + 8)) * 2 + 2 * 9 * HC * 4;
        if (dsm > 110 * 1024) continue;
        double blocks = (double)B * ((HO + r - 1) / r) * ((WO + tw - 1) / tw);
        double fused = blocks * ((double)p * C * HID + 16.0 * mt * HID * CO);
        double unfused = (double)B * H * W * C * HID + (double)B * HO * WO * HID * CO;
        /* ... nor where the blocks would not fill the GPU (batch 1: its
         * chunks run one after another in a few blocks) */
        if (fused > 1.3 * unfused || blocks < 132) return 0;
        if (R) *R = (int)r;
        if (TW) *TW = (int)tw;
        if (MT3) *MT3 = (int)mt;
        return 1;
    }
    return 0;
}

/* resize / avgpool: the channels a thread, 8, 4, 2 or 1, the largest
 * dividing C (each thread computes the coordinates once for them) */
int
mc_cu_dense_width(const Kernel *k)
{
    const int64_t C = k->out.shape[k->out.rank - 1];
    return C % 8 == 0 ? 8 : C % 4 == 0 ? 4 : C % 2 == 0 ? 2 : 1;
}

/* ... 8 of them read with one 16-byte mc_ldv8 per source pixel, where x's
 * view allows (the output: any view, cuda_emit.c's 8-wide store where it
 * is 8-aligned too, else per element) */
int
mc_cu_dense_vec8(const Kernel *k)
{
    const View *x = &k->in[0];
    return (k->kind == KK_RESIZE || k->kind == KK_AVGPOOL) && x->rank == 4 && k->out.rank == 4 &&
           mc_cu_dense_width(k) == 8 && vec8_view(x, x->shape[3]);
}

/* avgpool: S lanes per output unit (a position's V channels), a power of
 * two up to a warp, each summing every S-th pixel of the bin, while each
 * lane keeps at least 8 pixels of the smallest bin and the threads stay
 * within MC_CUDA_FILL (the PPM's 1x1 pool of a 16x16 map: 64 units of 8
 * channels, 256 pixels each; one lane a unit measured 34 us on the H100) */
int
mc_cu_pool_lanes(const Kernel *k)
{
    if (k->kind != KK_AVGPOOL || k->in[0].rank != 4 || k->out.rank != 4) return 1;
    const int64_t U = mc_cuda_numel(&k->out) / mc_cu_dense_width(k);
    const int64_t bin = (k->in[0].shape[1] / k->out.shape[1]) * (k->in[0].shape[2] / k->out.shape[2]);
    int S = 1;
    while (S < 32 && S * 2 * 8 <= bin && U * S * 2 <= MC_CUDA_FILL) S *= 2;
    return S;
}

/* ------------------------------------------------------------ the selective scan */

/* The scan's chunking: NC chunks of T positions per (b, d), V channels per
 * thread.  64 positions per chunk while B * NC * D / V threads fill the GPU;
 * else shorter chunks (down to 8) so that more threads share the sequential
 * work; then
 * T evened out so that the last chunk is not a stub (196 positions: 4 x 49,
 * not 3 x 64 + 4). */
static void
scan_chunks_default(const Kernel *k, int v, int64_t *T, int64_t *NC)
{
    int64_t B = k->out.shape[0], L = k->out.shape[1] * k->out.shape[2], D = k->out.shape[3];
    int64_t t = 64;
    while (t > 8 && B * ((L + t - 1) / t) * D / v < MC_CUDA_FILL) t /= 2;
    *NC = (L + t - 1) / t;
    *T = (L + *NC - 1) / *NC;
}

/* ... as printed: T = the schedule's tile_k where set (NC = ceil(L / T)) */
void
mc_cuda_scan_chunks(const Kernel *k, int v, int64_t *T, int64_t *NC)
{
    const int64_t L = k->out.shape[1] * k->out.shape[2];
    scan_chunks_default(k, v, T, NC);
    if (k->sched.tile_k <= 0) return;
    *T = k->sched.tile_k;
    *NC = (L + *T - 1) / *T;
}

/* 8 channels a thread fit: u, dt and the states are 8-aligned [B, H, W,
 * D] views, and threads of 8 channels x 8 positions would fill the GPU */
static int
scan_views8(const Kernel *k)
{
    const int64_t D = k->out.shape[k->out.rank - 1];
    return k->out.rank == 4 && vec8_view(&k->in[0], D) && vec8_view(&k->in[1], D) && vec8_view(&k->out, D);
}

int
mc_cu_scan_8wide(const Kernel *k)
{
    int64_t B = k->out.shape[0], L = k->out.shape[1] * k->out.shape[2], D = k->out.shape[3];
    return scan_views8(k) && B * ((L + 7) / 8) * D / 8 >= MC_CUDA_FILL;
}

/* channels per thread of the three-pass form's passes 1 and 3: the
 * schedule's vec where set, else 8 where they fit and the activations are
 * bf16 (bf16: u is stored as bf16; float storage: measured no faster, tiny
 * fp32's stage 2 slower), else 1 */
int
mc_cu_scan_vec(const Kernel *k, int bf16)
{
    if (k->sched.vec > 0) return (int)k->sched.vec;
    return bf16 && mc_cu_scan_8wide(k) ? 8 : 1;
}

/* The one-pass form's shape (shapes only: the arena layout sizes its
 * records whatever the precision): G channel groups of 8 per block (16
 * where D % 128 == 0, else 8 where D % 64 == 0), S = 256 / G sub-chunks of
 * SCAN1_PT positions a thread: chunks of T = S * SCAN1_PT positions. */
static int
scan1_shape(const Kernel *k, int64_t tile_n, int *G, int64_t *T, int64_t *NC)
{
    if (k->out.rank != 4) return 0;
    int64_t L = k->out.shape[1] * k->out.shape[2], D = k->out.shape[3];
    int g = D % 128 == 0 ? 16 : D % 64 == 0 ? 8 : 0;
    /* a schedule's tile_n: 8G channels a block (mc_cu_sched_check: 64 or 128 dividing D) */
    if (g && tile_n > 0) g = tile_n % 8 == 0 && D % tile_n == 0 && 256 % (tile_n / 8) == 0 ? (int)(tile_n / 8) : 0;
    if (!g) return 0;
    int64_t t = (256 / g) * MC_CU_SCAN1_PT;
    if (G) *G = g;
    if (T) *T = t;
    if (NC) *NC = (L + t - 1) / t;
    return 1;
}

/* ... where the views are 8-aligned (bf16 or float activations) and 8
 * channels a thread would fill the GPU (as for the three-pass form's
 * 8-channel threads): a block waiting on its predecessor chunk costs
 * little when the GPU is full */
int
mc_cu_scan1(const Kernel *k, int *G, int64_t *T, int64_t *NC)
{
    return mc_cu_scan_8wide(k) && scan1_shape(k, 0, NULL, NULL, NULL) && scan1_shape(k, k->sched.tile_n, G, T, NC);
}

/* the bytes of the carries region (the larger of either form's, by default
 * and as the schedule has it: the layout is the same in every precision
 * while the schedule is the cuda-tile pass's) and of the one-pass flags,
 * for scan kernel k */
void
mc_cu_scan_carry_bytes(const Kernel *k, int64_t *carry, int64_t *flags)
{
    int64_t B = k->out.shape[0], D = k->out.shape[3], T, NC;
    int G;
    *carry = *flags = 0;
    /* three passes: per (b, chunk, d) the chunk's S, P and carry-in, for
     * either channels per thread */
    for (int v = 1; v <= 8; v += 7) {
        scan_chunks_default(k, v, &T, &NC);
        if (3 * B * NC * D * 4 > *carry) *carry = 3 * B * NC * D * 4;
    }
    mc_cuda_scan_chunks(k, 1, &T, &NC);
    if (3 * B * NC * D * 4 > *carry) *carry = 3 * B * NC * D * 4;
    /* one pass: per (b, chunk, d) the chunk's P, S and inclusive state; a
     * flag per (b, chunk, 8 channels) */
    for (int s = 0; s < 2; s++)
        if (scan1_shape(k, s ? k->sched.tile_n : 0, &G, &T, &NC)) {
            if (3 * B * NC * D * 4 > *carry) *carry = 3 * B * NC * D * 4;
            if (B * NC * (D / 8) * 4 > *flags) *flags = B * NC * (D / 8) * 4;
        }
}

/* ------------------------------------------------------------ schedules */

/* A GEMM's rows as 16-byte loads of four consecutive k (va) */
int
mc_cu_gemm_va(const Kernel *k)
{
    const View *a = &k->in[0];
    int64_t M, N, K;
    mc_cu_gemm_dims(k, &M, &N, &K);
    if (k->kind == KK_CONV)
        return a->shape[3] % 4 == 0 && a->stride[3] == 1 && a->offset % 4 == 0 && a->stride[0] % 4 == 0 &&
               a->stride[1] % 4 == 0 && a->stride[2] % 4 == 0;
    return K % 4 == 0 && a->stride[1] == 1 && a->offset % 4 == 0 && (a->shape[0] == 1 || a->stride[0] % 4 == 0);
}

/* skinny products (N or K < 32: FFMA) with 16-byte rows and few columns
 * run a thread (or a warp) per row: mc_gemm_thin, no tiles */
int
mc_cu_gemm_thin(const Kernel *k)
{
    int64_t M, N, K;
    mc_cu_gemm_dims(k, &M, &N, &K);
    return (N < 32 || K < 32) && mc_cu_gemm_va(k) && N <= 24 && N * K <= 9216;
}

/* kernel i is printed as mc_gemm in precision prec (its tiles and split-K:
 * mc_cuda_gemm_tiles), not as the direct conv, mc_conv3, a thin product,
 * a fused MLP or downsample, or inside another kernel */
int
mc_cu_gemm_tiled(const KProgram *p, int i, McCudaPrecision prec)
{
    const Kernel *k = &p->k[i];
    const FuseKind f = mc_cu_guest_kind(p, i);
    if (k->host >= 0 || f == FUSE_MLP || f == FUSE_DOWN) return 0;
    if (k->kind == KK_GEMM) return !mc_cu_gemm_thin(k);
    return k->kind == KK_CONV && !mc_cu_conv_direct(p, i) && !mc_cu_conv3_tc(p, i, prec) && !mc_cu_gemm_thin(k);
}

/* The schedule fields the printer reads of kernel i in precision prec
 * (bits by field, ir/sched.def order), 0: it takes no schedule */
#define SCHED(field, nm, doc) SB_##field,
enum { /* NOLINT */
#include "../../ir/sched.def"
};
#undef SCHED
#define SBIT(field) (1 << SB_##field)
static int
sched_fields(const KProgram *p, int i, McCudaPrecision prec)
{
    const Kernel *k = &p->k[i];
    if (mc_cu_gemm_tiled(p, i, prec)) return SBIT(tile_m) | SBIT(tile_n) | SBIT(split) | SBIT(tile_k) | SBIT(threads);
    if (k->kind != KK_SCAN || k->host >= 0) return 0;
    if (mc_cu_scan_8wide(k) && scan1_shape(k, 0, NULL, NULL, NULL)) /* the one-pass form */
        return SBIT(tile_n) | SBIT(tile_k) | SBIT(vec) | SBIT(threads);
    return SBIT(tile_k) | SBIT(vec);
}

void
mc_cu_sched_fill(const KProgram *p, int i, McCudaPrecision prec, Sched *s)
{
    const Kernel *k = &p->k[i];
    *s = k->sched;
    const int f = sched_fields(p, i, prec);
    if (f & SBIT(split)) {
        int bm, bn, sk;
        int64_t kc;
        mc_cuda_gemm_tiles(k, &bm, &bn, &sk, &kc);
        s->tile_m = bm;
        s->tile_n = bn;
        s->split = sk;
        if (sk > 1) s->tile_k = kc;
        s->threads = 256;
    } else if (f & SBIT(threads)) {
        int G = 0;
        int64_t T = 0, NC = 0;
        mc_cu_scan1(k, &G, &T, &NC);
        s->tile_n = 8 * G;
        s->tile_k = T;
        s->vec = 8;
        s->threads = 256;
    } else if (f) {
        int64_t T, NC;
        s->vec = mc_cu_scan_vec(k, mc_cu_stores_bf16(p, prec, k->in[0].buf));
        mc_cuda_scan_chunks(k, (int)s->vec, &T, &NC);
        s->tile_k = T;
    }
}

/* why is the reason a set field cannot be honoured */
#define REFUSE(...) (snprintf(why, n, __VA_ARGS__), 0)

int
mc_cu_sched_check(const KProgram *p, int i, McCudaPrecision prec, char *why, size_t n)
{
    const Kernel *k = &p->k[i];
    const Sched *s = &k->sched;
    const int f = sched_fields(p, i, prec);
    const int64_t v[] = {
#define SCHED(field, nm, doc) s->field,
#include "../../ir/sched.def"
#undef SCHED
    };
    static const char *const names[] = {
#define SCHED(field, nm, doc) nm,
#include "../../ir/sched.def"
#undef SCHED
    };
    for (int b = 0; b < (int)(sizeof v / sizeof v[0]); b++) {
        if (!v[b]) continue;
        if (v[b] < 0) return REFUSE("schedule %s=%lld: not a positive number", names[b], (long long)v[b]);
        if (!(f & (1 << b)))
            return REFUSE("schedule %s=%lld: the CUDA printer %s", names[b], (long long)v[b],
                          f ? "has no such choice for this kernel" : "takes no schedule for this kernel (a form with fixed tiles)");
    }
    if (s->threads && s->threads != 256)
        return REFUSE("schedule threads=%lld: the CUDA kernels run 256 threads a block", (long long)s->threads);
    if (f & SBIT(split)) {
        int bm, bn, sk;
        int64_t kc, M, N, K;
        mc_cuda_gemm_tiles(k, &bm, &bn, &sk, &kc);
        mc_cu_gemm_dims(k, &M, &N, &K);
        if (bm != 64 && bm != 128) return REFUSE("schedule tile_m=%d: mc_gemm tiles have 64 or 128 rows", bm);
        if (bn != 32 && bn != 64 && bn != 128) return REFUSE("schedule tile_n=%d: mc_gemm tiles have 32, 64 or 128 columns", bn);
        if (sk > 1 && (N < 32 || K < 32))
            return REFUSE("schedule split=%d: a product with N or K < 32 runs FFMA, which has no split-K", sk);
        if (sk > 1 && kc % 32) return REFUSE("schedule tile_k=%lld: split-K slices are multiples of 32 of K", (long long)kc);
        if (sk == 1 && kc != K) return REFUSE("schedule tile_k=%lld: without split-K the slice is all of K=%lld", (long long)kc, (long long)K);
        if ((int64_t)sk * kc < K || (int64_t)(sk - 1) * kc >= K)
            return REFUSE("schedule split=%d tile_k=%lld: %d slices of %lld do not cover K=%lld with none empty", sk,
                          (long long)kc, sk, (long long)kc, (long long)K);
    } else if (f & SBIT(threads)) {
        const int64_t D = k->out.shape[3];
        int G = 0;
        int64_t T = 0, NC = 0;
        if (s->tile_n && ((s->tile_n != 64 && s->tile_n != 128) || D % s->tile_n))
            return REFUSE("schedule tile_n=%lld: the one-pass scan takes 64 or 128 of the %lld channels a block", (long long)s->tile_n,
                          (long long)D);
        mc_cu_scan1(k, &G, &T, &NC);
        if (s->tile_k && s->tile_k != T)
            return REFUSE("schedule tile_k=%lld: the one-pass scan's chunks are %lld positions (256 / (tile_n / 8) threads of %d)",
                          (long long)s->tile_k, (long long)T, MC_CU_SCAN1_PT);
        if (s->vec && s->vec != 8) return REFUSE("schedule vec=%lld: the one-pass scan runs 8 channels a thread", (long long)s->vec);
    } else if (f) {
        const int64_t L = k->out.shape[1] * k->out.shape[2];
        if (s->vec && s->vec != 1 && !(s->vec == 8 && scan_views8(k)))
            return REFUSE("schedule vec=%lld: the scan runs 1 or 8 channels a thread (8: 8-aligned [B,H,W,D] views)", (long long)s->vec);
        if (s->tile_k > L) return REFUSE("schedule tile_k=%lld: more than the %lld positions of the scan", (long long)s->tile_k, (long long)L);
    }
    return 1;
}

/* ------------------------------------------------------------ fusions */

static int
same_view(const View *a, const View *b)
{
    if (a->buf != b->buf || a->rank != b->rank || a->offset != b->offset) return 0;
    for (int d = 0; d < a->rank; d++)
        if (a->shape[d] != b->shape[d] || a->stride[d] != b->stride[d]) return 0;
    return 1;
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

/* The MLP pair: kernel i (fc1) and i + 1 (fc2) are GEMMs over many rows,
 * fc2 reads exactly fc1's output and nothing else does, both dense: fc2
 * then runs inside fc1 with the hidden activations on chip (mc_mlp; C <=
 * 128 channels in, a multiple of 16, CO <= 128 out, a multiple of 32, the
 * hidden width a multiple of 8). */
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

int
mc_cu_fuse_shape(const KProgram *p, int i, FuseKind f)
{
    if (i < 0) return 0;
    switch (f) {
    case FUSE_LN: return fuse_ln_shape(p, i);
    case FUSE_MLP: return fuse_mlp_shape(p, i);
    case FUSE_XPROJ: return fuse_xproj_shape(p, i);
    case FUSE_DOWN: return fuse_down_shape(p, i);
    default: return 0;
    }
}

/* The guest's output (kernel g's) is none of the buffers the host (kernel
 * i) reads or writes: it is written while they are still read.  Distinct
 * scratch buffers never share bytes here: the fusion passes make the
 * guest's output live from the host on. */
static int
guest_clear(const KProgram *p, int i, int g)
{
    const Kernel *k = &p->k[i];
    const int o = p->k[g].out.buf;
    for (int a = 0; a < k->nin; a++)
        if (k->in[a].buf == o) return 0;
    for (int a = 0; a < k->nargs; a++)
        if (k->args[a].buf == o) return 0;
    return k->out.buf != o;
}

/* ... in bf16 precision (bf16 rows and weight copies; mc_mlp) or tf32
 * (float rows, float weights 16-byte aligned for cp.async; mc_mlp32) */
static int
fuse_mlp(const KProgram *p, int i, McCudaPrecision prec)
{
    const Kernel *k = &p->k[i], *l = &p->k[i + 1];
    if (prec == MC_CUDA_BF16)
        return mc_cu_stores_bf16(p, prec, k->in[0].buf) && mc_cu_gemm_w16(p, i, prec) && mc_cu_gemm_w16(p, i + 1, prec);
    if (prec != MC_CUDA_TF32) return 0;
    /* tf32: C, CO <= 64 (at 128 its A fragments and accumulators leave one
     * block per SM: measured slower than the unfused pair); weights that no
     * other kernel reads (mc_prepare rounds them to tf32 in place) */
    int64_t M, N, K, M2, N2, K2;
    mc_cu_gemm_dims(k, &M, &N, &K);
    mc_cu_gemm_dims(l, &M2, &N2, &K2);
    return k->in[1].offset % 4 == 0 && l->in[1].offset % 4 == 0 && K <= 64 && N2 <= 64 && only_reader(p, k->in[1].buf, i) &&
           only_reader(p, l->in[1].buf, i + 1);
}

/* ... in bf16 precision (bf16 activations and weight copies) */
static int
fuse_down(const KProgram *p, int i, McCudaPrecision prec)
{
    return prec == MC_CUDA_BF16 && mc_cu_stores_bf16(p, prec, p->k[i].in[0].buf) && mc_cu_gemm_w16(p, i, prec) &&
           mc_cu_gemm_w16(p, i + 2, prec);
}

int
mc_cu_fuse_form(const KProgram *p, int i, FuseKind f, McCudaPrecision prec)
{
    if (!mc_cu_fuse_shape(p, i, f) || !guest_clear(p, i, i + (f == FUSE_DOWN ? 2 : 1))) return 0;
    switch (f) {
    case FUSE_MLP: return fuse_mlp(p, i, prec);
    case FUSE_DOWN: return fuse_down(p, i, prec);
    default: return 1; /* LN, XPROJ: in every precision */
    }
}

FuseKind
mc_cu_guest_kind(const KProgram *p, int i)
{
    return i + 1 < p->nk && p->k[i + 1].host == i ? p->k[i + 1].fuse : FUSE_NONE;
}

/* ------------------------------------------------------------ what the backend prints */

/* Every kind has a printer (cuda_print.c's dispatch); a kind added to
 * ir/kernels.def without one makes this switch warn and is refused here,
 * before any pass, never printed as nothing. */
int
mc_cuda_supports(const KProgram *p, const Kernel *k, char *why, size_t n)
{
    (void)p;
    switch (k->kind) {
    case KK_GEMM:
    case KK_CONV:
    case KK_DWCONV:
    case KK_FUSION25:
    case KK_SCAN:
    case KK_LAYERNORM:
    case KK_MEAN_HW:
    case KK_RESIZE:
    case KK_AVGPOOL:
    case KK_ELTWISE:
        return 1;
    case KK_COUNT:
        break;
    }
    snprintf(why, n, "the CUDA backend has no kernel for the kind '%s'", mc_kernel_kind_name(k->kind));
    return 0;
}

/* The forms that write the output through the out view's strides at any
 * view, per element where it is not dense: the GEMMs' per-element epi (the
 * pair stores, the staged bf16 epilogue, mc_conv3, mc_mlp and mc_down only
 * on dense [M, N] rows: cuda_gemm.c, cuda_forms.c), the direct conv and
 * every per-position kernel (their 8-wide stores only on 8-aligned views,
 * else per element: cuda_emit.c), resize and avgpool (cuda_dense.c).  Not
 * the scan (its states and carries are sized by its out view's shape and
 * no model writes it into a slice: untested). */
bool
mc_cu_strided_out_ok(const KProgram *p, const Kernel *k)
{
    if (k->host >= 0) return false;
    for (int j = 0; j < p->nk; j++)
        if (p->k[j].host >= 0 && &p->k[p->k[j].host] == k) return false;
    switch (k->kind) {
    case KK_GEMM:
    case KK_CONV:
    case KK_DWCONV:
    case KK_FUSION25:
    case KK_LAYERNORM:
    case KK_MEAN_HW:
    case KK_RESIZE:
    case KK_AVGPOOL:
    case KK_ELTWISE:
        return true;
    case KK_SCAN:
    case KK_COUNT:
        break;
    }
    return false;
}
