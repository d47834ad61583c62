#!/usr/bin/python3
"""tests/gpu/tf32_emulate.py DIR [CASE ...] [--fp16 KINDS]

The error that tf32 operand rounding alone gives: the float64 PyTorch
reference (tests/reference/spatial_mamba.py) with the operands of every
product the CUDA backend runs on tensor cores in tf32 mode (dense layers
and convolutions with N >= 32 and K >= 32, as backends/cuda decides)
rounded to tf32 (10-bit mantissa, nearest, ties away: cvt.rna.tf32.f32),
products and sums exact.  Prints, per check case of DIR (from
`tests/gpu/run.sh build|gen DIR`), the relative L2 error of that against
the exact float64 logits: the floor under the tf32 check's measured error.
--fp16 KINDS (comma-separated kinds of spatial_mamba.store, or 'all'):
also round those stored activations to float16 (what a tf32 mode with
16-bit activation storage would add).  Runs on the CPU (no GPU), a few
seconds per case."""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
import spatial_mamba as R  # noqa: E402


def tf32(t):
    """float64 -> float32 -> tf32 (round to nearest, ties away), as float64."""
    i = t.float().contiguous().view(torch.int32)
    return ((i + 0x1000) & ~0x1FFF).view(torch.float32).double()


def emulated(forward_args, fp16=()):
    exact_linear, exact_conv, exact_store = R.linear, R.conv_layer, R.store

    def store(t, kind):
        return t.to(torch.float16).double() if kind in fp16 or "all" in fp16 else t

    def linear(x, w, b=None):
        n, k = w.shape
        if n >= 32 and k >= 32:
            x, w = tf32(x), tf32(w)
        return exact_linear(x, w, b)

    def conv_layer(x, sd, p, stride=1, pad=0, groups=1, bn=True, relu=True):
        w = sd[p + ".conv.weight"]
        if groups == 1 and w.shape[0] >= 32 and w.shape[1] * w.shape[2] * w.shape[3] >= 32:
            sd = dict(sd)
            sd[p + ".conv.weight"] = tf32(w)
            x = tf32(x)
        return exact_conv(x, sd, p, stride, pad, groups, bn, relu)

    R.linear, R.conv_layer, R.store = linear, conv_layer, store
    try:
        return R.forward(*forward_args, dtype=torch.float64)
    finally:
        R.linear, R.conv_layer, R.store = exact_linear, exact_conv, exact_store


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip())
        return 2
    fp16 = ()
    if "--fp16" in argv:
        i = argv.index("--fp16")
        if i + 1 >= len(argv):
            print(__doc__.strip())
            return 2
        fp16 = tuple(argv[i + 1].split(","))
        argv = argv[:i] + argv[i + 2:]
    cases = os.path.join(argv[1], "cases")
    if not os.path.isdir(cases):
        cases = argv[1]
    want_cases = argv[2:]
    with open(os.path.join(cases, "cases.txt")) as f:
        rows = [ln.split() for ln in f if ln.strip()]
    for case, cfg, *_ in rows:
        if want_cases and case not in want_cases:
            continue
        sd = torch.load(os.path.join(cases, cfg + ".pth"), map_location="cpu")
        sd = sd.get("model", sd)
        depths = R.infer_config(sd)[1]
        x = torch.from_numpy(np.load(os.path.join(cases, "x_%s.npy" % case))).double()
        want = torch.from_numpy(np.load(os.path.join(cases, "want_%s.npy" % case))).double()
        exact = R.forward(x, sd, depths, dtype=torch.float64)
        if R.rel_l2(exact, want) > 1e-12:
            print("%s: the reference does not reproduce want_%s.npy" % (case, case))
            return 1
        got = emulated((x, sd, depths), fp16)
        what = "operand rounding" + (", float16 storage of " + ",".join(fp16) if fp16 else " only")
        print("tf32-emulate %-16s rel L2 %.3e (%s, float64 sums)" % (case, R.rel_l2(got, exact), what))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
