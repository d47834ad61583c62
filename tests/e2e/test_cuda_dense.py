"""e2e: the CUDA C that `mambac compile --target cuda --emit cuda` writes
for dense-prediction graphs compiles with nvcc, in every precision.

- The graphs of the GPU suite's dense cases (tests/gpu/dense_cases.py):
  a UperNet-like head (pyramid pooling to 1, 2, 3, 6; 1x1 and 3x3 convs;
  a concat whose operands GEMMs and resizes write in place; resize + add;
  a final upsample, NCHW in and out), align_corners 0 and 1 with out or in
  of 1 at 5 channels, resizes and pools of channel slices, and 19 classes
  resized x4 -- odd, non-square sizes, batch 1 and 2.
- Each graph in fp32, tf32 and bf16 (12 .cu files): mambac exits 0, the
  program has resize and avgpool kernels (its kernel IR dump), no concat
  copy is left where the producer can write the slice (concat-in-place
  with the CUDA printers' predicate), and nvcc (sm_90a, to an object, two
  at a time) exits 0.

Skipped (exit 77) where no nvcc runs ($NVCC, /usr/local/cuda/bin/nvcc or
on PATH).  The GPU suite (tests/gpu/run.sh) runs them against the ref
backend.
"""
import os
import sys

import e2e_common as E  # noqa: E402

nvcc = E.nvcc_or_skip()
sys.path.insert(0, os.path.join(E.REPO, "tests", "gpu"))
import dense_cases as D  # noqa: E402

t = E.Test("cuda_dense")
# the eltwise kernels left after concat-in-place: dn_ppm the copy of the
# conv output the pools read too and the NCHW permute; dn_align none (all
# eight operands, a thin GEMM's included, written in place); dn_slice the
# input's copy and that of a resize the conv reads too; dn_head the copy
# of the input's permuted view
COPIES = {"dn_ppm": 2, "dn_align": 0, "dn_slice": 2, "dn_head": 1}

jobs = []
for make in D.CASES:
    name, shape = D.write_graph(t.work, make)
    yaml, pth = t.path(name + ".yaml"), t.path(name + ".pth")
    rc, out, err, _ = t.run(["dump", yaml, "--weights", pth, "--format", "kernels", "--target", "cuda"], timeout=120)
    kinds = [l.split()[2] for l in out.splitlines() if l.startswith("kernel k")]
    t.check(rc == 0 and "resize" in kinds, "%s: dump --format kernels rc=%s, kinds %s" % (name, rc, sorted(set(kinds))))
    t.check(name == "dn_slice" or "avgpool" in kinds, "%s: has avgpool kernels" % name)
    # concat-in-place: copies only of operands no kernel can write in place
    t.check(kinds.count("eltwise") == COPIES[name], "%s: %d eltwise kernels, want %d" % (
        name, kinds.count("eltwise"), COPIES[name]))
    for prec in ("fp32", "tf32", "bf16"):
        o = t.path("%s_%s" % (name, prec))
        rc, _, err, _ = t.run(["compile", yaml, "--weights", pth, "--target", "cuda", "--precision", prec, "--emit",
                               "cuda", "-o", o], timeout=120)
        src = open(o + ".cu").read() if rc == 0 and os.path.exists(o + ".cu") else ""
        if t.check(rc == 0 and "__global__ void" in src,
                   "%s %s: compile --emit cuda rc=%s%s" % (name, prec, rc, "" if rc == 0 else " " + err.strip()[-300:])):
            jobs.append(("%s_%s" % (name, prec), o))

E.nvcc_objects(t, nvcc, jobs)

t.finish()
