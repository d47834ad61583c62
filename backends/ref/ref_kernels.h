/* backends/ref/ref_kernels.h -- the reference kernels: one plain C function
 * per graph op, on contiguous row-major float32 buffers.
 *
 * Takes: raw pointers and dimensions (no IR types, so other backends and
 * tests can call them directly).  Produces: the op's result in a caller-owned
 * output buffer that never aliases an input.  Owns: nothing; scratch memory
 * is allocated and freed inside a call (a kernel returns -1 only when such an
 * allocation fails).
 *
 * Numerics (SPEC.md sections 2-6): float32 storage; reductions (norm
 * statistics, mean_hw, the scan state, convolution taps) accumulate in
 * double; GEMM-like sums accumulate in float over chunks of 64 terms and
 * combine the chunks in double, which keeps the relative error near 1e-7 for
 * K in the thousands.  Parallel loops use OpenMP with the caller's current
 * thread count (omp_set_num_threads / RunOpts.threads).
 */
#ifndef MC_REF_KERNELS_H
#define MC_REF_KERNELS_H
#include <stdint.h>

/* x[B,H,W,Ci] (NHWC), w[Co,Ci/groups,kh,kw] (OIHW), optional b[Co] ->
 * y[B,Ho,Wo,Co]; zero padding; Ho = (H + 2ph - dh*(kh-1) - 1)/sh + 1. */
typedef struct RefConv {
    int64_t B, H, W, Ci, Co, kh, kw;
    int64_t sh, sw, ph, pw, dh, dw, groups;
} RefConv;
int64_t mc_ref_conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d);
int mc_ref_conv2d(const RefConv *c, const float *x, const float *w, const float *b, float *y);

/* x[M,K], w[N,K], optional b[N] -> y[M,N] */
int mc_ref_linear(int64_t M, int64_t N, int64_t K, const float *x, const float *w,
                  const float *b, float *y);
/* a[nb,M,K] @ b[K,N] -> y[nb,M,N]; bstride 0 shares b over the batch,
 * else b advances by bstride floats per batch element. */
int mc_ref_matmul(int64_t nb, int64_t M, int64_t N, int64_t K, const float *a,
                  const float *b, int64_t bstride, float *y);

/* x[rows,C] -> y, eval-mode batchnorm / layernorm over the last axis */
void mc_ref_batchnorm(int64_t rows, int64_t C, const float *x, const float *gamma,
                      const float *beta, const float *mean, const float *var, double eps,
                      float *y);
void mc_ref_layernorm(int64_t rows, int64_t C, const float *x, const float *gamma,
                      const float *beta, double eps, float *y);

/* Elementwise unary ops: kind is one of OP_RELU, OP_GELU, OP_SILU,
 * OP_SOFTPLUS, OP_EXP, OP_NEG (OpKind values as ints); -1 on another kind. */
int mc_ref_unary(int kind, int64_t n, const float *x, float *y);
/* Binary op (kind OP_ADD or OP_MUL) with numpy broadcasting: shapes are
 * right-aligned to `rank` dims (missing leading dims given as 1); each input
 * dim is 1 or equal to the output dim. */
int mc_ref_binary(int kind, int rank, const int64_t *ydims, const int64_t *adims,
                  const float *a, const int64_t *bdims, const float *b, float *y);

/* u[B,L,D], delta[B,L,D], A[D], Bv[B,L] -> h[B,L,D] (every state)
 * h_l = exp(delta_l*A) h_{l-1} + delta_l*Bv_l*u_l, h_{-1} = 0 */
int mc_ref_scan(int64_t B, int64_t L, int64_t D, const float *u, const float *delta,
                const float *A, const float *Bv, float *h);
/* h[B,H,W,D], k3/k3_1/k3_2 [D,1,3,3], alpha[3] -> y[B,H,W,D]; three depthwise
 * 3x3 stencils of dilation 1, 3, 5 with replicate (clamped) borders. */
int mc_ref_state_fusion(int64_t B, int64_t H, int64_t W, int64_t D, const float *h,
                         const float *k3, const float *k3_1, const float *k3_2,
                         const float *alpha, float *y);
/* h[B,H,W,D], taps[D,25] -> y[B,H,W,D]: the state fusion with alpha folded
 * in (op state_fusion25, tap order ir/fusion25_taps.def); replicate borders. */
int mc_ref_state_fusion25(int64_t B, int64_t H, int64_t W, int64_t D, const float *h,
                          const float *taps, float *y);
/* x[B,HW,C] -> y[B,C] */
void mc_ref_mean_hw(int64_t B, int64_t HW, int64_t C, const float *x, float *y);
/* x[B,H,W,C] -> y[B,oh,ow,C]: adaptive average pooling (PyTorch's bins:
 * rows floor(i*H/oh) .. ceil((i+1)*H/oh), columns alike) */
void mc_ref_adaptive_avg_pool(int64_t B, int64_t H, int64_t W, int64_t C, int64_t oh, int64_t ow,
                              const float *x, float *y);
/* Source coordinate and weight of bilinear resize along one axis (in -> out,
 * F.interpolate): dst's two source indices i0 <= i1 and the weight of i1. */
void mc_ref_resize_coord(int64_t dst, int64_t in, int64_t out, int align_corners, int64_t *i0,
                         int64_t *i1, double *w1);
/* x[B,H,W,C] -> y[B,oh,ow,C], bilinear */
void mc_ref_resize(int64_t B, int64_t H, int64_t W, int64_t C, int64_t oh, int64_t ow,
                   int align_corners, const float *x, float *y);
/* out.dim[i] = in.dim[perm[i]], rank <= 6 */
void mc_ref_permute(int rank, const int64_t *dims, const int *perm, const float *x, float *y);
/* x[rows,C] -> y[rows,len] = x[:, start:start+len] */
void mc_ref_slice(int64_t rows, int64_t C, int64_t start, int64_t len, const float *x,
                  float *y);

#endif
