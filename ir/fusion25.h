/* ir/fusion25.h -- the tap table of the folded state fusion
 * (ir/fusion25_taps.def) for C code: the offset (dy, dx) of tap t.  Used by
 * the fold-state-fusion pass (which fills a taps table in this order) and
 * by every backend's 25-tap kernel.
 */
#ifndef MC_IR_FUSION25_H
#define MC_IR_FUSION25_H

enum {
    MC_F25_NTAPS = 25, /* taps */
    MC_F25_REACH = 5,  /* the largest |dy| or |dx| */
};

/* the offset of tap t (0 <= t < MC_F25_NTAPS) along axis 0 (rows) or 1 (columns) */
static inline int
mc_f25_off(int t, int axis)
{
    static const signed char off[MC_F25_NTAPS][2] = {
#define TAP(dy, dx) {dy, dx},
#include "fusion25_taps.def"
#undef TAP
    };
    return off[t][axis];
}

static inline int
mc_f25_dy(int t)
{
    return mc_f25_off(t, 0);
}

static inline int
mc_f25_dx(int t)
{
    return mc_f25_off(t, 1);
}

#endif
