#!/usr/bin/python3
"""tests/gpu/compare.py GOT WANT TOL [REF_TOP1]

Relative L2 error of GOT against WANT (float64 reference); fails (exit 1)
when it exceeds TOL, when GOT has a non-finite value or the wrong shape.
GOT and WANT are .npy files, or .npz files of a model's several outputs:
then every array of WANT is compared with GOT's of the same name, each
within TOL.  For [B, classes] outputs, also the fraction of images whose
top-1 class agrees with the reference's and, with REF_TOP1 (another run's
output, e.g. fp32's), with it."""
import sys

import numpy as np


def arrays(path):
    """{name: array}: the arrays of an .npz, or {"": the .npy}"""
    if path.endswith(".npz"):
        z = np.load(path)
        return {k: z[k] for k in z.files}
    return {"": np.load(path)}


def compare(name, got, want, tol, ref):
    """(ok, message) for one output"""
    got = got.astype(np.float64)
    want = want.astype(np.float64)
    label = name + ": " if name else ""
    if got.shape != want.shape:
        return False, "%sshape %s, want %s" % (label, got.shape, want.shape)
    if not np.isfinite(got).all():
        return False, "%snon-finite output" % label
    err = float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))
    msg = "%srel L2 %.3e (tol %.0e)" % (label, err, tol)
    if got.ndim == 2:
        msg += ", top-1 vs reference %.0f%%" % (100 * float((got.argmax(1) == want.argmax(1)).mean()))
        if ref is not None:
            msg += ", top-1 vs fp32 %.0f%%" % (100 * float((got.argmax(1) == ref.argmax(1)).mean()))
    return err <= tol, msg


def main(argv):
    got, want = arrays(argv[1]), arrays(argv[2])
    tol = float(argv[3])
    ref = arrays(argv[4]) if len(argv) > 4 else {}
    oks, msgs = [], []
    for name in want:
        if name not in got:
            oks.append(False)
            msgs.append("%s: missing (got %s)" % (name, ", ".join(got) or "nothing"))
            continue
        ok, msg = compare(name, got[name], want[name], tol, ref.get(name))
        oks.append(ok)
        msgs.append(msg)
    ok = all(oks)
    print(("ok   " if ok else "FAIL ") + "; ".join(msgs))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
