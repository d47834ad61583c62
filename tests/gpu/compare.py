#!/usr/bin/python3
"""tests/gpu/compare.py GOT.npy WANT.npy TOL [REF_TOP1.npy]

Relative L2 error of GOT against WANT (float64 reference); fails (exit 1)
when it exceeds TOL, when GOT has a non-finite value or the wrong shape.
With REF_TOP1 (another run's logits, e.g. fp32), also prints the fraction
of images whose top-1 class agrees with it."""
import sys

import numpy as np


def main(argv):
    got = np.load(argv[1]).astype(np.float64)
    want = np.load(argv[2]).astype(np.float64)
    tol = float(argv[3])
    if got.shape != want.shape:
        print("FAIL shape %s, want %s" % (got.shape, want.shape))
        return 1
    if not np.isfinite(got).all():
        print("FAIL non-finite output")
        return 1
    err = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
    msg = "rel L2 %.3e (tol %.0e)" % (err, tol)
    agree = float((got.argmax(1) == want.argmax(1)).mean())
    msg += ", top-1 vs reference %.0f%%" % (100 * agree)
    if len(argv) > 4:
        ref = np.load(argv[4])
        msg += ", top-1 vs fp32 %.0f%%" % (100 * float((got.argmax(1) == ref.argmax(1)).mean()))
    ok = err <= tol
    print(("ok   " if ok else "FAIL ") + msg)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
