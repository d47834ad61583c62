"""e2e: the CUDA C that `mambac compile --target cuda --emit cuda` writes
compiles with nvcc at the shapes where code generation has edge cases.

- Every precision (fp32, tf32, bf16), each at a 32x32 input (the last stage
  1x1: the mean pool's scale 1/1 once printed as `acc *= 1f;`, which nvcc
  rejects) and at an odd non-square 33x47, at batch 1 and 3 (each
  precision sees both sizes and both batches; every size-batch pair is
  among the six).
- A small model (EMBED_DIM 16, DEPTHS [1, 1, 1, 1], random weights), so
  that the six nvcc runs (sm_90a, the arch `--emit exe` builds for, to an
  object), two at a time, take well under a minute and a half.
- Each .cu: nvcc exits 0, the object exists, and no floating literal
  without a '.' or an exponent ("1f") is in the text.

Skipped (exit 77) where no nvcc runs ($NVCC, /usr/local/cuda/bin/nvcc or
on PATH).
"""
import os
import re

import e2e_common as E

nvcc = E.nvcc_or_skip()
t = E.Test("cuda_shapes")
cfg = E.write_config(t.path("s16.yaml"), 16, [1, 1, 1, 1], num_classes=5, mlp_ratio=2.0, name="s16")

# (precision, batch, H, W)
CASES = [("fp32", 1, 32, 32), ("fp32", 3, 33, 47),
         ("tf32", 3, 32, 32), ("tf32", 1, 33, 47),
         ("bf16", 1, 32, 32), ("bf16", 3, 33, 47)]
# a digit sequence with the f suffix and no '.' or exponent, not inside an
# identifier, a hex number or an exponent (the 05f of 1e-05f)
BAD_LITERAL = re.compile(r"(?<![\w.])(?<![eE][-+])(?!0[xX])\d+f\b")

jobs = []
for prec, b, h, w in CASES:
    name = "%s_b%d_%dx%d" % (prec, b, h, w)
    out = t.path(name)
    rc, _, err, dt = t.run(["compile", cfg, "--target", "cuda", "--precision", prec, "--emit", "cuda",
                            "--batch", str(b), "--image-size", "%dx%d" % (h, w), "-o", out], timeout=120)
    src = open(out + ".cu").read() if rc == 0 and os.path.exists(out + ".cu") else ""
    if not t.check(rc == 0 and "__global__ void" in src,
                   "%s: compile --emit cuda rc=%s%s" % (name, rc, "" if rc == 0 else " " + err.strip()[-300:])):
        continue
    bad = sorted(set(m.group(0) for m in BAD_LITERAL.finditer(src)))
    t.check(not bad, "%s: every floating literal has a '.' or an exponent%s" % (
        name, " (found: %s)" % " ".join(bad[:5]) if bad else ""))
    jobs.append((name, out))

# a wide image: the stem's 3x3 convs (32 channels, 667 columns at a 1333-wide
# input) would need more shared memory in mc_conv3 (whole input rows) than a
# block may have (227 KB): they take the implicit GEMM instead; a narrow
# 224-wide image keeps mc_conv3 (both with enough positions to take it)
cfg64 = E.write_config(t.path("s64.yaml"), 64, [1], num_classes=5, mlp_ratio=2.0, name="s64")
for prec, h, w in (("bf16", 256, 1333), ("bf16", 1280, 224), ("tf32", 256, 1333)):
    out = t.path("wide_%s_%d" % (prec, w))
    rc, _, err, dt = t.run(["compile", cfg64, "--target", "cuda", "--precision", prec, "--emit", "cuda",
                            "--image-size", "%dx%d" % (h, w), "-o", out], timeout=120)
    src = open(out + ".cu").read() if rc == 0 and os.path.exists(out + ".cu") else ""
    calls = re.findall(r"mc_conv3t?<(\d+), (\d+), (\d+), (\d+), (\d+)>\(", src)
    widths = sorted(set(int(c[2]) for c in calls))
    t.check(rc == 0 and (widths == [] if w == 1333 else widths == [w // 2]),
            "%s at %dx%d: mc_conv3 at widths %s (%s)" % (prec, h, w, widths, "none: too wide" if w == 1333 else "the stem"))
    if rc == 0 and prec == "bf16" and w == 1333:
        jobs.append(("wide_%s_%d" % (prec, w), out))

E.nvcc_objects(t, nvcc, jobs)

t.finish()
