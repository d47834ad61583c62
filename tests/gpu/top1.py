#!/usr/bin/python3
"""tests/gpu/top1.py BF16.npy FP32.npy LABELS.npy MIN_AGREE

Top-1 agreement of two runs' logits [N, classes] on a labelled test set
(tests/gpu/run.sh: --precision bf16 against fp32 on the digits test set).
Prints one line, "ok ..." or "FAIL ...", with the fraction of images whose
top-1 class is the same in both and each run's accuracy against LABELS
(int [N]); exits 1 when the agreement is below MIN_AGREE (a fraction, e.g.
0.99), when the shapes disagree, or when either run has a non-finite value."""
import sys

import numpy as np


def main(argv):
    if len(argv) != 5:
        print(__doc__)
        return 2
    low = np.load(argv[1]).astype(np.float64)
    ref = np.load(argv[2]).astype(np.float64)
    lab = np.load(argv[3])
    min_agree = float(argv[4])
    if low.ndim != 2 or low.shape != ref.shape or lab.shape != (ref.shape[0],):
        print("FAIL shapes %s, %s, labels %s" % (low.shape, ref.shape, lab.shape))
        return 1
    if low.shape[0] == 0:
        print("FAIL empty test set")
        return 1
    for name, a in (("bf16", low), ("fp32", ref)):
        if not np.isfinite(a).all():
            print("FAIL non-finite %s output (%d values)" % (name, int((~np.isfinite(a)).sum())))
            return 1
    p_low, p_ref = low.argmax(1), ref.argmax(1)
    n = len(lab)
    agree = float((p_low == p_ref).mean())
    ok = agree >= min_agree
    print("%s top-1 bf16 == fp32 on %.1f%% of %d test images (min %g%%); "
          "accuracy fp32 %.1f%%, bf16 %.1f%%"
          % ("ok  " if ok else "FAIL", 100 * agree, n, 100 * min_agree,
             100 * float((p_ref == lab).mean()), 100 * float((p_low == lab).mean())))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
