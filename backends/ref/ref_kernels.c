/* backends/ref/ref_kernels.c -- the reference kernels (see ref_kernels.h).
 *
 * Takes contiguous row-major float32 buffers, produces each op's result in a
 * caller-owned buffer, owns only per-call scratch (packed weight panels,
 * im2col rows, double accumulators).  Written to be obviously correct first
 * and reasonably fast second: dense sums go through one small blocked GEMM
 * (gemm_panel) whose inner loop is a fixed-width axpy over a packed B^T
 * panel, so the compiler vectorizes it without reassociating any sum.
 */
#include "ref_kernels.h"
#include "../../ir/fusion25.h"
#include "../../ir/graph.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define GEMM_MB 4   /* rows of A per block */
#define GEMM_NB 16  /* columns of B per block (panel width) */
#define GEMM_KC 64  /* float partial sums over this many k, then added in double */

/* Below these amounts of work (elements, multiply-adds) a loop runs on one
 * thread: a parallel region costs microseconds, more on a loaded machine. */
#define PAR_MIN (1 << 14)
#define PAR_MIN_GEMM (1 << 16)

static int64_t
round_up(int64_t n, int64_t m)
{
    return (n + m - 1) / m * m;
}

/* C[M, N] = A[M, K] . P + bias, where P is a packed panel [K, Np] (Np a
 * multiple of GEMM_NB, zero beyond N).  A rows are lda apart, C rows ldc.
 * Serial; callers parallelize over M. */
static void
gemm_panel(int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *P,
           int64_t Np, const float *bias, float *C, int64_t ldc)
{
    for (int64_t m0 = 0; m0 < M; m0 += GEMM_MB) {
        const float *ar[GEMM_MB];
        int mb = (int)(M - m0 < GEMM_MB ? M - m0 : GEMM_MB);
        for (int i = 0; i < GEMM_MB; i++)   /* missing rows repeat row m0; discarded */
            ar[i] = A + (i < mb ? m0 + i : m0) * lda;
        for (int64_t n0 = 0; n0 < Np; n0 += GEMM_NB) {
            double acc[GEMM_MB][GEMM_NB];
            memset(acc, 0, sizeof acc);
            for (int64_t k0 = 0; k0 < K; k0 += GEMM_KC) {
                int64_t k1 = k0 + GEMM_KC < K ? k0 + GEMM_KC : K;
                float f[GEMM_MB][GEMM_NB];
                memset(f, 0, sizeof f);
                for (int64_t k = k0; k < k1; k++) {
                    const float *pr = P + k * Np + n0;
                    for (int i = 0; i < GEMM_MB; i++) {
                        float a = ar[i][k];
                        for (int j = 0; j < GEMM_NB; j++)
                            f[i][j] += a * pr[j];
                    }
                }
                for (int i = 0; i < GEMM_MB; i++)
                    for (int j = 0; j < GEMM_NB; j++)
                        acc[i][j] += f[i][j];
            }
            int nb = (int)(N - n0 < GEMM_NB ? N - n0 : GEMM_NB);
            for (int i = 0; i < mb; i++) {
                float *cr = C + (m0 + i) * ldc + n0;
                for (int j = 0; j < nb; j++)
                    cr[j] = (float)(acc[i][j] + (bias ? (double)bias[n0 + j] : 0.0));
            }
        }
    }
}

/* ------------------------------------------------------------------ GEMMs */

int
mc_ref_linear(int64_t M, int64_t N, int64_t K, const float *x, const float *w,
              const float *b, float *y)
{
    int64_t Np = round_up(N, GEMM_NB);
    float *P = calloc((size_t)(K * Np > 0 ? K * Np : 1), sizeof(float));
    if (!P) return -1;
    /* P[k, n] = w[n, k] */
    #pragma omp parallel for schedule(dynamic) if (K * N >= PAR_MIN)
    for (int64_t k = 0; k < K; k++)
        for (int64_t n = 0; n < N; n++)
            P[k * Np + n] = w[n * K + k];
    int64_t chunk = 32;
    int64_t nchunks = (M + chunk - 1) / chunk;
    #pragma omp parallel for schedule(dynamic) if (M * N * K >= PAR_MIN_GEMM)
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t m0 = c * chunk, m1 = m0 + chunk < M ? m0 + chunk : M;
        gemm_panel(m1 - m0, N, K, x + m0 * K, K, P, Np, b, y + m0 * N, N);
    }
    free(P);
    return 0;
}

int
mc_ref_matmul(int64_t nb, int64_t M, int64_t N, int64_t K, const float *a, const float *b,
              int64_t bstride, float *y)
{
    int64_t Np = round_up(N, GEMM_NB);
    int64_t npanels = bstride ? nb : 1;
    float *P = calloc((size_t)(npanels * K * Np > 0 ? npanels * K * Np : 1), sizeof(float));
    if (!P) return -1;
    for (int64_t p = 0; p < npanels; p++)
        for (int64_t k = 0; k < K; k++)
            memcpy(P + (p * K + k) * Np, b + p * bstride + k * N, (size_t)N * sizeof(float));
    int64_t chunk = 32;
    int64_t mchunks = (M + chunk - 1) / chunk;
    #pragma omp parallel for schedule(dynamic) if (nb * M * N * K >= PAR_MIN_GEMM)
    for (int64_t t = 0; t < nb * mchunks; t++) {
        int64_t bi = t / mchunks, m0 = (t % mchunks) * chunk;
        int64_t m1 = m0 + chunk < M ? m0 + chunk : M;
        const float *Pb = P + (bstride ? bi : 0) * K * Np;
        gemm_panel(m1 - m0, N, K, a + (bi * M + m0) * K, K, Pb, Np, NULL,
                   y + (bi * M + m0) * N, N);
    }
    free(P);
    return 0;
}

/* ------------------------------------------------------------ convolution */

int64_t
mc_ref_conv_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d)
{
    int64_t num = in + 2 * p - d * (k - 1) - 1;
    if (num < 0 || s <= 0) return 0;
    return num / s + 1;
}

/* groups == Ci == Co: one 2-D stencil per channel, channels innermost. */
static int
conv_depthwise(const RefConv *c, int64_t Ho, int64_t Wo, const float *x, const float *w,
               const float *b, float *y)
{
    int64_t C = c->Co, T = c->kh * c->kw;
    float *wt = malloc((size_t)(T * C) * sizeof(float)); /* [kh*kw, C] */
    if (!wt) return -1;
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t t = 0; t < T; t++)
            wt[t * C + ch] = w[ch * T + t];
    int failed = 0;
    #pragma omp parallel if (c->B * Ho * Wo * C * T >= PAR_MIN)
    {
        double *acc = malloc((size_t)C * sizeof(double));
        if (!acc) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic)
        for (int64_t r = 0; r < c->B * Ho; r++) {
            if (!acc) continue;
            int64_t bi = r / Ho, oy = r % Ho;
            for (int64_t ox = 0; ox < Wo; ox++) {
                for (int64_t ch = 0; ch < C; ch++) acc[ch] = b ? b[ch] : 0.0;
                for (int64_t ky = 0; ky < c->kh; ky++) {
                    int64_t iy = oy * c->sh - c->ph + ky * c->dh;
                    if (iy < 0 || iy >= c->H) continue;
                    for (int64_t kx = 0; kx < c->kw; kx++) {
                        int64_t ix = ox * c->sw - c->pw + kx * c->dw;
                        if (ix < 0 || ix >= c->W) continue;
                        const float *xp = x + ((bi * c->H + iy) * c->W + ix) * C;
                        const float *wp = wt + (ky * c->kw + kx) * C;
                        for (int64_t ch = 0; ch < C; ch++)
                            acc[ch] += (double)xp[ch] * wp[ch];
                    }
                }
                float *yp = y + ((bi * Ho + oy) * Wo + ox) * C;
                for (int64_t ch = 0; ch < C; ch++) yp[ch] = (float)acc[ch];
            }
        }
        free(acc);
    }
    free(wt);
    return failed ? -1 : 0;
}

int
mc_ref_conv2d(const RefConv *c, const float *x, const float *w, const float *b, float *y)
{
    int64_t Ho = mc_ref_conv_out(c->H, c->kh, c->sh, c->ph, c->dh);
    int64_t Wo = mc_ref_conv_out(c->W, c->kw, c->sw, c->pw, c->dw);
    int64_t G = c->groups, cig = c->Ci / G, cog = c->Co / G;
    if (Ho <= 0 || Wo <= 0 || c->B <= 0) return 0;
    if (G == c->Ci && G == c->Co) return conv_depthwise(c, Ho, Wo, x, w, b, y);

    /* Pack per group: P[g][(ky*kw+kx)*cig + ci][co'] = w[g*cog+co', ci, ky, kx],
     * the row order an im2col row uses below. */
    int64_t K = c->kh * c->kw * cig, Np = round_up(cog, GEMM_NB);
    float *P = calloc((size_t)(G * K * Np > 0 ? G * K * Np : 1), sizeof(float));
    if (!P) return -1;
    for (int64_t g = 0; g < G; g++)
        for (int64_t co = 0; co < cog; co++)
            for (int64_t ci = 0; ci < cig; ci++)
                for (int64_t ky = 0; ky < c->kh; ky++)
                    for (int64_t kx = 0; kx < c->kw; kx++)
                        P[(g * K + (ky * c->kw + kx) * cig + ci) * Np + co] =
                            w[(((g * cog + co) * cig + ci) * c->kh + ky) * c->kw + kx];

    int pointwise = c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->ph == 0 &&
                    c->pw == 0 && G == 1;
    int failed = 0;
    if (pointwise) { /* a 1x1 convolution is a GEMM over all pixels */
        int64_t M = c->B * c->H * c->W, chunk = 32, nchunks = (M + chunk - 1) / chunk;
        #pragma omp parallel for schedule(dynamic) if (M * c->Co * K >= PAR_MIN_GEMM)
        for (int64_t t = 0; t < nchunks; t++) {
            int64_t m0 = t * chunk, m1 = m0 + chunk < M ? m0 + chunk : M;
            gemm_panel(m1 - m0, c->Co, K, x + m0 * c->Ci, c->Ci, P, Np, b, y + m0 * c->Co,
                       c->Co);
        }
        free(P);
        return 0;
    }
    #pragma omp parallel if (c->B * Ho * Wo * c->Co * K >= PAR_MIN_GEMM)
    {
        float *col = malloc((size_t)(Wo * K) * sizeof(float)); /* im2col of one output row */
        if (!col) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic)
        for (int64_t r = 0; r < c->B * Ho; r++) {
            if (!col) continue;
            int64_t bi = r / Ho, oy = r % Ho;
            for (int64_t g = 0; g < G; g++) {
                /* col[ox, (ky*kw+kx)*cig + ci] */
                for (int64_t ox = 0; ox < Wo; ox++) {
                    float *cp = col + ox * K;
                    for (int64_t ky = 0; ky < c->kh; ky++) {
                        int64_t iy = oy * c->sh - c->ph + ky * c->dh;
                        for (int64_t kx = 0; kx < c->kw; kx++) {
                            int64_t ix = ox * c->sw - c->pw + kx * c->dw;
                            float *dst = cp + (ky * c->kw + kx) * cig;
                            if (iy < 0 || iy >= c->H || ix < 0 || ix >= c->W)
                                memset(dst, 0, (size_t)cig * sizeof(float));
                            else
                                memcpy(dst, x + ((bi * c->H + iy) * c->W + ix) * c->Ci + g * cig,
                                       (size_t)cig * sizeof(float));
                        }
                    }
                }
                gemm_panel(Wo, cog, K, col, K, P + g * K * Np, Np, b ? b + g * cog : NULL,
                           y + (bi * Ho + oy) * Wo * c->Co + g * cog, c->Co);
            }
        }
        free(col);
    }
    free(P);
    return failed ? -1 : 0;
}

/* ---------------------------------------------------------- normalization */

void
mc_ref_batchnorm(int64_t rows, int64_t C, const float *x, const float *gamma,
                 const float *beta, const float *mean, const float *var, double eps, float *y)
{
    #pragma omp parallel for schedule(dynamic, 16) if (rows * C >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t ch = 0; ch < C; ch++) {
            double s = (double)gamma[ch] / sqrt((double)var[ch] + eps);
            y[r * C + ch] = (float)(((double)x[r * C + ch] - mean[ch]) * s + beta[ch]);
        }
}

void
mc_ref_layernorm(int64_t rows, int64_t C, const float *x, const float *gamma,
                 const float *beta, double eps, float *y)
{
    #pragma omp parallel for schedule(dynamic, 16) if (rows * C >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = x + r * C;
        double mu = 0, var = 0;
        for (int64_t ch = 0; ch < C; ch++) mu += xr[ch];
        mu /= (double)C;
        for (int64_t ch = 0; ch < C; ch++) var += (xr[ch] - mu) * (xr[ch] - mu);
        var /= (double)C;                    /* biased, as PyTorch */
        double rstd = 1.0 / sqrt(var + eps);
        for (int64_t ch = 0; ch < C; ch++)
            y[r * C + ch] = (float)((xr[ch] - mu) * rstd * gamma[ch] + beta[ch]);
    }
}

/* ------------------------------------------------------------ elementwise */

int
mc_ref_unary(int kind, int64_t n, const float *x, float *y)
{
    switch (kind) {
    case OP_RELU:
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = x[i] < 0.0f ? 0.0f : x[i]; /* keeps NaN */
        return 0;
    case OP_NEG:
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = -x[i];
        return 0;
    case OP_EXP:
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = (float)exp((double)x[i]);
        return 0;
    case OP_GELU:
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1.0 + erf(v * M_SQRT1_2)));
        }
        return 0;
    case OP_SILU:
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            y[i] = (float)(v / (1.0 + exp(-v)));
        }
        return 0;
    case OP_SOFTPLUS:
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) {
            double v = x[i];
            y[i] = v <= 20.0 ? (float)log1p(exp(v)) : x[i];
        }
        return 0;
    default:
        return -1;
    }
}

static inline float
binop(int kind, float a, float b)
{
    return kind == OP_ADD ? a + b : a * b;
}

int
mc_ref_binary(int kind, int rank, const int64_t *yd, const int64_t *ad, const float *a,
              const int64_t *bd, const float *b, float *y)
{
    if (kind != OP_ADD && kind != OP_MUL) return -1;
    if (rank < 1 || rank > MC_MAX_RANK) return -1;
    int64_t n = 1, na = 1, nb = 1;
    for (int i = 0; i < rank; i++) { n *= yd[i]; na *= ad[i]; nb *= bd[i]; }
    int64_t C = yd[rank - 1];
    if (n == 0) return 0;
    if (na == n && nb == n) { /* same shape */
        #pragma omp parallel for schedule(dynamic, 4096) if (n >= PAR_MIN)
        for (int64_t i = 0; i < n; i++) y[i] = binop(kind, a[i], b[i]);
        return 0;
    }
    if (na == n && nb == C && bd[rank - 1] == C) { /* b is a last-axis vector (or scalar C=1) */
        #pragma omp parallel for schedule(dynamic, 16) if (n >= PAR_MIN)
        for (int64_t r = 0; r < n / C; r++)
            for (int64_t ch = 0; ch < C; ch++) y[r * C + ch] = binop(kind, a[r * C + ch], b[ch]);
        return 0;
    }
    if (nb == n && na == C && ad[rank - 1] == C) {
        #pragma omp parallel for schedule(dynamic, 16) if (n >= PAR_MIN)
        for (int64_t r = 0; r < n / C; r++)
            for (int64_t ch = 0; ch < C; ch++) y[r * C + ch] = binop(kind, a[ch], b[r * C + ch]);
        return 0;
    }
    /* general: element strides per output dim, 0 where the input dim is 1 */
    int64_t sa[MC_MAX_RANK], sb[MC_MAX_RANK], ea = 1, eb = 1;
    for (int i = rank - 1; i >= 0; i--) {
        sa[i] = ad[i] == 1 ? 0 : ea;
        sb[i] = bd[i] == 1 ? 0 : eb;
        ea *= ad[i];
        eb *= bd[i];
    }
    #pragma omp parallel for schedule(dynamic, 16) if (n >= PAR_MIN)
    for (int64_t r = 0; r < n / C; r++) {
        int64_t rem = r, oa = 0, ob = 0;
        for (int i = rank - 2; i >= 0; i--) {
            int64_t idx = rem % yd[i];
            rem /= yd[i];
            oa += idx * sa[i];
            ob += idx * sb[i];
        }
        for (int64_t ch = 0; ch < C; ch++)
            y[r * C + ch] = binop(kind, a[oa + ch * sa[rank - 1]], b[ob + ch * sb[rank - 1]]);
    }
    return 0;
}

/* ---------------------------------------------------------- scan & fusion */

int
mc_ref_scan(int64_t B, int64_t L, int64_t D, const float *u, const float *delta,
            const float *A, const float *Bv, float *h)
{
    /* Sequential over L, vectorized across a chunk of D; (b, chunk) pairs
     * are independent and run in parallel. */
    enum { DC = 16 };
    int64_t nchunks = (D + DC - 1) / DC;
    #pragma omp parallel for schedule(dynamic) if (B * L * D >= PAR_MIN)
    for (int64_t t = 0; t < B * nchunks; t++) {
        int64_t bi = t / nchunks, d0 = (t % nchunks) * DC;
        int64_t dn = D - d0 < DC ? D - d0 : DC;
        double st[DC];
        for (int64_t j = 0; j < dn; j++) st[j] = 0.0;
        for (int64_t l = 0; l < L; l++) {
            int64_t o = (bi * L + l) * D + d0;
            double bl = Bv[bi * L + l];
            for (int64_t j = 0; j < dn; j++) {
                double dl = delta[o + j];
                st[j] = exp(dl * A[d0 + j]) * st[j] + dl * bl * u[o + j];
                h[o + j] = (float)st[j];
            }
        }
    }
    return 0;
}

static inline int64_t
clampi(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* y[b,i,j,:] = sum_t cf[t,:] * h[b, clamp(i+ty[t]), clamp(j+tx[t]), :]: a
 * depthwise stencil of ntaps taps with replicate borders, accumulated in
 * double.  cf is [ntaps, D]. */
static int
clamped_stencil(int64_t B, int64_t H, int64_t W, int64_t D, const float *h, int ntaps, const int *ty,
                const int *tx, const double *cf, float *y)
{
    int failed = 0;
    #pragma omp parallel if (B * H * W * D * ntaps >= PAR_MIN)
    {
        double *acc = malloc((size_t)D * sizeof(double));
        if (!acc) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic)
        for (int64_t r = 0; r < B * H; r++) {
            if (!acc) continue;
            int64_t bi = r / H, yy = r % H;
            for (int64_t xx = 0; xx < W; xx++) {
                for (int64_t d = 0; d < D; d++) acc[d] = 0.0;
                for (int t = 0; t < ntaps; t++) {
                    int64_t sy = clampi(yy + ty[t], 0, H - 1), sx = clampi(xx + tx[t], 0, W - 1);
                    const float *hp = h + ((bi * H + sy) * W + sx) * D;
                    const double *cp = cf + t * D;
                    for (int64_t d = 0; d < D; d++) acc[d] += cp[d] * hp[d];
                }
                float *yp = y + ((bi * H + yy) * W + xx) * D;
                for (int64_t d = 0; d < D; d++) yp[d] = (float)acc[d];
            }
        }
        free(acc);
    }
    return failed ? -1 : 0;
}

int
mc_ref_state_fusion(int64_t B, int64_t H, int64_t W, int64_t D, const float *h,
                    const float *k3, const float *k3_1, const float *k3_2, const float *alpha,
                    float *y)
{
    /* 27 taps (3 kernels x 3x3) at offsets (ky-1)*dil, (kx-1)*dil, sampled
     * at clamped coordinates; the coefficient alpha_k * w_k[d, ky, kx] is
     * exact in double. */
    const float *ks[3] = {k3, k3_1, k3_2};
    static const int dil[3] = {1, 3, 5};
    int ty[27], tx[27];
    double *cf = malloc((size_t)(27 * D) * sizeof(double)); /* [27, D] */
    if (!cf) return -1;
    for (int k = 0; k < 3; k++)
        for (int t = 0; t < 9; t++) {
            ty[k * 9 + t] = (t / 3 - 1) * dil[k];
            tx[k * 9 + t] = (t % 3 - 1) * dil[k];
            for (int64_t d = 0; d < D; d++)
                cf[(k * 9 + t) * D + d] = (double)alpha[k] * (double)ks[k][d * 9 + t];
        }
    int rc = clamped_stencil(B, H, W, D, h, 27, ty, tx, cf, y);
    free(cf);
    return rc;
}

/* The 25-tap form (op state_fusion25, made by fold-state-fusion), taps in
 * the order of ir/fusion25_taps.def. */
int
mc_ref_state_fusion25(int64_t B, int64_t H, int64_t W, int64_t D, const float *h,
                      const float *taps, float *y)
{
    int ty[MC_F25_NTAPS], tx[MC_F25_NTAPS];
    for (int t = 0; t < MC_F25_NTAPS; t++) {
        ty[t] = mc_f25_dy(t);
        tx[t] = mc_f25_dx(t);
    }
    double *cf = malloc((size_t)(MC_F25_NTAPS * D) * sizeof(double)); /* [25, D] */
    if (!cf) return -1;
    for (int64_t d = 0; d < D; d++)
        for (int t = 0; t < MC_F25_NTAPS; t++) cf[t * D + d] = taps[d * MC_F25_NTAPS + t];
    int rc = clamped_stencil(B, H, W, D, h, MC_F25_NTAPS, ty, tx, cf, y);
    free(cf);
    return rc;
}

/* ------------------------------------------------------------- reductions */

void
mc_ref_mean_hw(int64_t B, int64_t HW, int64_t C, const float *x, float *y)
{
    #pragma omp parallel for schedule(dynamic) if (B * HW * C >= PAR_MIN)
    for (int64_t t = 0; t < B * C; t++) {
        int64_t bi = t / C, ch = t % C;
        double s = 0;
        for (int64_t p = 0; p < HW; p++) s += x[(bi * HW + p) * C + ch];
        y[t] = (float)(HW > 0 ? s / (double)HW : 0.0);
    }
}

/* ---------------------------------------------------------- pool, resize */

void
mc_ref_adaptive_avg_pool(int64_t B, int64_t H, int64_t W, int64_t C, int64_t oh, int64_t ow,
                         const float *x, float *y)
{
    #pragma omp parallel for schedule(dynamic) if (B * H * W * C >= PAR_MIN)
    for (int64_t t = 0; t < B * oh * ow; t++) {
        int64_t bi = t / (oh * ow), i = t / ow % oh, j = t % ow;
        int64_t h0 = i * H / oh, h1 = ((i + 1) * H + oh - 1) / oh;
        int64_t w0 = j * W / ow, w1 = ((j + 1) * W + ow - 1) / ow;
        double inv = 1.0 / (double)((h1 - h0) * (w1 - w0));
        for (int64_t c = 0; c < C; c++) {
            double s = 0;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) s += x[((bi * H + h) * W + w) * C + c];
            y[t * C + c] = (float)(s * inv);
        }
    }
}

void
mc_ref_resize_coord(int64_t dst, int64_t in, int64_t out, int align_corners, int64_t *i0, int64_t *i1,
                    double *w1)
{
    double src;
    if (align_corners)
        src = out > 1 ? (double)dst * (double)(in - 1) / (double)(out - 1) : 0.0;
    else {
        src = ((double)dst + 0.5) * (double)in / (double)out - 0.5;
        if (src < 0) src = 0;
    }
    int64_t f = (int64_t)src;
    if (f > in - 1) f = in - 1;
    *i0 = f;
    *i1 = f < in - 1 ? f + 1 : f;
    *w1 = src - (double)f;
}

void
mc_ref_resize(int64_t B, int64_t H, int64_t W, int64_t C, int64_t oh, int64_t ow, int align_corners,
              const float *x, float *y)
{
    #pragma omp parallel for schedule(dynamic) if (B * oh * ow * C >= PAR_MIN)
    for (int64_t t = 0; t < B * oh; t++) {
        int64_t bi = t / oh, i = t % oh, r0, r1;
        double wr;
        mc_ref_resize_coord(i, H, oh, align_corners, &r0, &r1, &wr);
        for (int64_t j = 0; j < ow; j++) {
            int64_t c0, c1;
            double wc;
            mc_ref_resize_coord(j, W, ow, align_corners, &c0, &c1, &wc);
            const float *p00 = x + ((bi * H + r0) * W + c0) * C, *p01 = x + ((bi * H + r0) * W + c1) * C;
            const float *p10 = x + ((bi * H + r1) * W + c0) * C, *p11 = x + ((bi * H + r1) * W + c1) * C;
            float *o = y + ((bi * oh + i) * ow + j) * C;
            for (int64_t c = 0; c < C; c++)
                o[c] = (float)((1 - wr) * ((1 - wc) * p00[c] + wc * p01[c]) + wr * ((1 - wc) * p10[c] + wc * p11[c]));
        }
    }
}

/* ----------------------------------------------------------------- layout */

void
mc_ref_permute(int rank, const int64_t *dims, const int *perm, const float *x, float *y)
{
    int64_t is[MC_MAX_RANK], od[MC_MAX_RANK], os[MC_MAX_RANK], n = 1;
    for (int i = rank - 1; i >= 0; i--) { is[i] = n; n *= dims[i]; }
    for (int i = 0; i < rank; i++) { od[i] = dims[perm[i]]; os[i] = is[perm[i]]; }
    if (n == 0) return;
    if (rank == 0) { y[0] = x[0]; return; }
    int64_t C = od[rank - 1], inner = os[rank - 1];
    #pragma omp parallel for schedule(dynamic, 16) if (n >= PAR_MIN)
    for (int64_t r = 0; r < n / C; r++) {
        int64_t rem = r, off = 0;
        for (int i = rank - 2; i >= 0; i--) {
            off += (rem % od[i]) * os[i];
            rem /= od[i];
        }
        for (int64_t j = 0; j < C; j++) y[r * C + j] = x[off + j * inner];
    }
}

void
mc_ref_slice(int64_t rows, int64_t C, int64_t start, int64_t len, const float *x, float *y)
{
    #pragma omp parallel for schedule(dynamic, 16) if (rows * len >= PAR_MIN)
    for (int64_t r = 0; r < rows; r++)
        memcpy(y + r * len, x + r * C + start, (size_t)len * sizeof(float));
}
