#!/usr/bin/python3
"""tests/gpu/dense_cases.py -- the dense-prediction cases of the GPU suite
(tests/gpu/run.sh build/gen) and of tests/e2e/test_cuda_dense.py: generic
graph YAMLs with bilinear resizes, adaptive average pooling and channel
concats at odd, non-square sizes.

    dense_cases.py CASES_DIR MAMBAC

Takes: the cases directory (prepare.py's) and the mambac executable.
Produces there, per case: CASE.yaml (the graph), CASE.pth (random weights
in the checkpoint format), x_CASE.npy (the input), want_CASE.npy (the
output of `mambac run --backend ref`: the graph executor's plain C kernels,
graph ops one by one, no lowering or fusion -- the oracle the CUDA outputs
are compared with), and appends "CASE CASE B H W" to cases.txt (cudagen
takes the shapes from the graph).

What the graphs hold (each kernel form of backends/cuda/cuda_dense.c):
  dn_ppm    a UperNet-like head at batch 2, 13x17, 16 channels, NCHW input
            (a permuted view): a pyramid pooling module (adaptive pooling to
            1, 2, 3, 6: even and uneven bins, 8 channels a thread), 1x1
            convs (GEMMs) + ReLU, resizes back (align_corners 0), a concat
            of a GEMM's output and four resizes feeding a 3x3 conv, a
            top-down resize + add (one kernel), a final upsample to 29x35,
            the output permuted to NCHW.
  dn_align  5 channels (one channel a thread), NCHW input read through its
            strides: align_corners 1 and 0 up and down, out == 1 on an axis
            and on both, in == 1, pooling with uneven and identity bins, a
            resize + add whose operand is the permuted input, a resize +
            ReLU, a concat of eight operands (odd channel offsets; the
            last a 1x1 conv with 3 outputs).
  dn_slice  batch 2, 13x11x24 NHWC input: resizes and pools of channel
            slices of it (strided input views, 8-aligned: 8 channels a
            thread; unaligned: one), align_corners 1 and 0, a 1x1 conv of a
            resize added to another, a concat holding the input itself.
  dn_head   batch 1, 37x45, 64 channels: a PPM (16 channels a branch), a
            3x3 conv over a 96-channel concat, 19 classes, the logits
            resized x4 to 148x180 (one channel a thread, many threads).
"""
import os
import subprocess
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
import checkpoints as ck  # noqa: E402


class Graph:
    """A generic graph YAML (docs/graph-yaml.md) and its random weights."""

    def __init__(self, name, shape, seed):
        self.name = name
        self.shape = list(shape)
        self.lines = []
        self.weights = {}
        self.rng = np.random.default_rng(seed)
        self.n = 0

    def node(self, op, inputs, **attrs):
        self.n += 1
        name = "%s%d" % (op.split("_")[0], self.n)
        at = "".join(", %s: %s" % (k, v) for k, v in attrs.items())
        self.lines.append("    - {name: %s, op: %s, inputs: [%s]%s}" % (name, op, ", ".join(inputs), at))
        return name

    def weight(self, shape, scale):
        name = "w%d" % len(self.weights)
        self.weights[name] = torch.from_numpy((self.rng.standard_normal(shape) * scale).astype(np.float32))
        return name

    def conv(self, x, ci, co, k=1, relu=True, bias=True):
        w = self.weight((co, ci, k, k), 1.0 / np.sqrt(ci * k * k))
        ins = [x, w] + ([self.weight((co,), 0.1)] if bias else [])
        y = self.node("conv2d", ins, pad=k // 2)
        return self.node("relu", [y]) if relu else y

    def resize(self, x, h, w, align=0):
        return self.node("resize_bilinear", [x], size="[%d, %d]" % (h, w), align_corners="true" if align else "false")

    def pool(self, x, h, w):
        return self.node("adaptive_avg_pool", [x], size="[%d, %d]" % (h, w))

    def text(self, out):
        ws = ["    - {name: %s, shape: [%s]}" % (k, ", ".join(str(d) for d in v.shape)) for k, v in self.weights.items()]
        return "\n".join(["# tests/gpu/dense_cases.py: %s" % self.name, "graph:", "  name: %s" % self.name,
                          "  inputs:", "    - {name: x, dtype: f32, shape: [%s]}" % ", ".join(map(str, self.shape)),
                          "  weights:"] + ws + ["  nodes:"] + self.lines + ["  outputs: [%s]" % out, ""])


def ppm(g, first, x, c, cb, h, w):
    """first concatenated with the pyramid pooling module's branches of x
    (c channels, h x w; pooled to 1, 2, 3, 6, cb channels each)"""
    return g.node("concat", [first] + [g.resize(g.conv(g.pool(x, s, s), c, cb), h, w) for s in (1, 2, 3, 6)])


def dn_ppm():
    g = Graph("dn_ppm", (2, 16, 13, 17), 11)
    x = g.node("permute", ["x"], perm="[0, 2, 3, 1]")
    lat = g.conv(x, 16, 16)
    bt = g.conv(ppm(g, lat, lat, 16, 8, 13, 17), 48, 16, k=3)
    side = g.conv(x, 16, 16, relu=False)
    td = g.node("add", [g.resize(g.pool(bt, 7, 9), 13, 17), side])
    f = g.conv(td, 16, 8, k=3)
    return g, g.node("permute", [g.resize(f, 29, 35)], perm="[0, 3, 1, 2]")


def dn_align():
    g = Graph("dn_align", (1, 5, 9, 11), 12)
    x = g.node("permute", ["x"], perm="[0, 2, 3, 1]")
    r1 = g.resize(g.resize(x, 1, 1, 1), 9, 11, 1)
    r2 = g.resize(g.resize(x, 4, 23, 1), 9, 11, 1)
    r3 = g.resize(g.resize(x, 1, 7, 0), 9, 11, 0)
    r4 = g.node("add", [g.resize(g.resize(x, 17, 3, 0), 9, 11, 0), x])
    p1 = g.node("relu", [g.resize(g.pool(x, 4, 3), 9, 11, 0)])
    p2 = g.pool(x, 9, 11)
    p3 = g.resize(g.pool(x, 2, 5), 9, 11, 1)
    return g, g.node("concat", [r1, r2, r3, r4, p1, p2, p3, g.conv(x, 5, 3, relu=False)])


def dn_slice():
    g = Graph("dn_slice", (2, 13, 11, 24), 13)
    s1 = g.node("slice", ["x"], start=8, len=8)
    s2 = g.node("slice", ["x"], start=3, len=13)
    s3 = g.node("slice", ["x"], start=16, len=8)
    r1 = g.resize(g.node("relu", [g.resize(s1, 6, 5, 0)]), 13, 11, 1)
    p2 = g.resize(g.pool(s2, 5, 4), 13, 11, 0)
    p3 = g.resize(g.pool(s3, 4, 4), 13, 11, 1)
    return g, g.node("concat", ["x", r1, p2, g.node("add", [p3, g.conv(r1, 8, 8, relu=False)])])


def dn_head():
    g = Graph("dn_head", (1, 64, 37, 45), 14)
    x = g.node("permute", ["x"], perm="[0, 2, 3, 1]")
    bt = g.conv(ppm(g, x, g.conv(x, 64, 32), 32, 8, 37, 45), 96, 32, k=3)
    seg = g.conv(bt, 32, 19, relu=False)
    return g, g.resize(seg, 148, 180)


CASES = [dn_ppm, dn_align, dn_slice, dn_head]


def write_graph(out, make):
    """CASE.yaml and CASE.pth in out; returns (name, input shape)"""
    g, y = make()
    with open(os.path.join(out, g.name + ".yaml"), "w") as f:
        f.write(g.text(y))
    ck.save_model(os.path.join(out, g.name + ".pth"), g.weights)
    return g.name, g.shape


def main(out, mambac):
    os.makedirs(out, exist_ok=True)
    lines = []
    for i, make in enumerate(CASES):
        name, shape = write_graph(out, make)
        x = np.random.default_rng(500 + i).standard_normal(shape).astype(np.float32)
        xp, want = os.path.join(out, "x_%s.npy" % name), os.path.join(out, "want_%s.npy" % name)
        np.save(xp, x)
        r = subprocess.run([mambac, "run", os.path.join(out, name + ".yaml"), "--weights",
                            os.path.join(out, name + ".pth"), "--backend", "ref", "--input", xp, "--output", want],
                           capture_output=True, text=True)
        if r.returncode != 0:
            print("dense_cases: mambac run %s failed: %s" % (name, r.stderr.strip()[-300:]))
            return 1
        lines.append("%s %s %d %d %d\n" % (name, name, shape[0], shape[1], shape[2]))
    with open(os.path.join(out, "cases.txt"), "a") as f:
        f.writelines(lines)
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: dense_cases.py CASES_DIR MAMBAC")
    sys.exit(main(sys.argv[1], sys.argv[2]))
