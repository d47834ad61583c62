/* backends/ref/ref_fusion25.c -- the 25-tap state-fusion stencil (op
 * state_fusion25, made by the fold-state-fusion pass), written plainly from
 * the tap order documented in ir/ops.def: tap 0 is the centre, tap 1+8*r+k
 * the k-th non-centre position of the 3x3 pattern (row-major) at dilation
 * (1,3,5)[r].  Replicate borders; accumulation in double.  Takes h[B,H,W,D]
 * and taps[D,25]; produces y[B,H,W,D]; owns only per-call scratch (the taps
 * transposed to [25,D] and one D-sized accumulator per thread).
 */
#include "ref_kernels.h"
#include <stdlib.h>

static int64_t
clampi(int64_t v, int64_t hi)
{
    return v < 0 ? 0 : v > hi ? hi : v;
}

int
mc_ref_state_fusion25(int64_t B, int64_t H, int64_t W, int64_t D, const float *h,
                      const float *taps, float *y)
{
    static const int dil[3] = {1, 3, 5};
    static const int off[8][2] = {{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 1}, {1, -1}, {1, 0}, {1, 1}};
    /* dy, dx of each tap */
    int ty[25] = {0}, tx[25] = {0};
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < 8; k++) {
            ty[1 + 8 * r + k] = off[k][0] * dil[r];
            tx[1 + 8 * r + k] = off[k][1] * dil[r];
        }
    double *cf = malloc((size_t)(25 * D) * sizeof(double)); /* [25, D] */
    if (!cf) return -1;
    for (int64_t d = 0; d < D; d++)
        for (int t = 0; t < 25; t++) cf[t * D + d] = taps[d * 25 + t];
    int failed = 0;
    #pragma omp parallel if (B * H * W * D * 25 >= (1 << 14))
    {
        double *acc = malloc((size_t)D * sizeof(double));
        if (!acc) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic)
        for (int64_t r = 0; r < B * H; r++) {
            if (!acc) continue;
            int64_t b = r / H, i = r % H;
            for (int64_t j = 0; j < W; j++) {
                for (int64_t d = 0; d < D; d++) acc[d] = 0.0;
                for (int t = 0; t < 25; t++) {
                    int64_t ii = clampi(i + ty[t], H - 1), jj = clampi(j + tx[t], W - 1);
                    const float *hp = h + ((b * H + ii) * W + jj) * D;
                    const double *cp = cf + t * D;
                    for (int64_t d = 0; d < D; d++) acc[d] += cp[d] * hp[d];
                }
                float *yp = y + ((b * H + i) * W + j) * D;
                for (int64_t d = 0; d < D; d++) yp[d] = (float)acc[d];
            }
        }
        free(acc);
    }
    free(cf);
    return failed ? -1 : 0;
}
