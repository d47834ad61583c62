/* tests/unit/test_consts.c -- constants in the IR.
 *
 * The 25-tap table of the folded state fusion (ir/fusion25_taps.def, read
 * through ir/fusion25.h) against its definition written out here: tap 0
 * the centre, then the 8 non-centre positions of the 3x3 pattern,
 * row-major, at dilations 1, 3, 5; and the pass's tap table
 * (mc_state_fusion_taps) against alpha_r * k_r computed here from that
 * definition.
 */
#include <CUnit/Basic.h>
#include "unit.h"
#include "ir/fusion25.h"
#include "passes/pass.h"
#include <stdlib.h>

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

static const struct {
    const char *name;
    void (*fn)(void);
} tests[] = {
    {"the 25-tap table: centre, then 3x3 rings at dilations 1, 3, 5", test_taps_table},
    {"fold-state-fusion's taps in the table's order", test_fold_taps},
};

MC_UNIT_MAIN("consts", tests)
