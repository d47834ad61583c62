/* backends/ref/ref_fusion25.c -- the 25-tap state-fusion stencil (op
 * state_fusion25, made by the fold-state-fusion pass), written plainly from
 * the tap order documented in ir/ops.def.  Replicate borders; accumulation
 * in double. */
#include "ref_kernels.h"

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
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < H; i++)
            for (int64_t j = 0; j < W; j++)
                for (int64_t d = 0; d < D; d++) {
                    const float *t = taps + d * 25;
                    double acc = (double)t[0] * h[((b * H + i) * W + j) * D + d];
                    for (int r = 0; r < 3; r++)
                        for (int k = 0; k < 8; k++) {
                            int64_t ii = clampi(i + off[k][0] * dil[r], H - 1);
                            int64_t jj = clampi(j + off[k][1] * dil[r], W - 1);
                            acc += (double)t[1 + 8 * r + k] * h[((b * H + ii) * W + jj) * D + d];
                        }
                    y[((b * H + i) * W + j) * D + d] = (float)acc;
                }
    return 0;
}
