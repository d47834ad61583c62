#!/usr/bin/python3
"""tests/gpu/prepare.py -- inputs and float64 expected outputs for the GPU
suite (tests/gpu/run.sh build).

Takes: the output directory.  Produces there, for a few non-published model
widths at odd, non-square sizes and batch 1 and > 1 (borders dominate at
these sizes): CONFIG.yaml, CONFIG.pth (random weights in the public
checkpoint format), x_CASE.npy and want_CASE.npy (logits of the plain
PyTorch float64 reference, tests/reference/spatial_mamba.py), and cases.txt,
one line per case: "name config B H W [cudagen flags]"; the same for
backbones (want_CASE.npz, an array per stage) and UperNet segmentors from
mmengine-layout checkpoints (DENSE).  Expected values never come from the
code under test.
"""
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import checkpoints as ck  # noqa: E402
import spatial_mamba as sm  # noqa: E402
import e2e_common as E  # noqa: E402

# name: (embed_dim, depths, classes, mlp_ratio, seed, [(B, H, W), ...])
MODELS = {
    # (136, 116, 84): enough threads that the depthwise convs and the scan take
    # their 8-channels-per-thread and one-pass forms (stage 0: 29 x 21
    # positions, odd), that every stage's out_norm runs inside its 25-tap
    # fusion (16 to 128 threads per position; stage 3: 4 x 3 positions, a tail
    # past the right edge), that the MLP keeps its hidden layer on chip and the
    # downsample after stage 0 runs in one kernel (mc_down; its padding at the
    # bottom and right edges)
    "c32": (32, [1, 2, 1, 1], 17, 2.5, 7, [(1, 33, 47), (3, 64, 37), (136, 116, 84)]),
    # 64 channels, two stages: its 32-channel stem's 3x3 stride-1 convs run
    # mc_conv3 (bf16, 17 x 64 x 64 positions).  Its second case is built with
    # --fill 1024 (cudagen: the many-row forms from 1024 rows on): the MLP
    # runs on chip at 64 and 128 channels (mc_mlp's wgmma forms on sm_90a;
    # 160 hidden columns: a last chunk cut at 32), as on tiny's stages 0-1
    "c64": (64, [1, 1], 11, 2.5, 9, [(17, 128, 128), (17, 128, 128, 1024)]),
    "c48": (48, [2, 1, 1], 10, 3.0, 8, [(2, 47, 33)]),
}


# dense prediction (docs/dense.md): name: (MODEL keys beside SPATIALMAMBA, seed,
# [(B, H, W), ...]).  A UperNet segmentor at an odd size and at 512x512 (its
# logits at input size), a backbone's four stages at an odd size, and stage 0
# alone at 800x1333: one scan of 200 x 334 = 66800 positions.  Expected
# outputs of the float64 reference stored as float32 (far below every
# tolerance), the large inputs image-like (smooth, 8-bit levels) so that the
# suite's archive stays small.
DENSE_SM = "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 2, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"
DENSE = {
    "sg16": ("  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
             "  DECODE_HEAD: {CHANNELS: 32, POOL_SCALES: [1, 2, 3, 6], NUM_CLASSES: 3}\n",
             21, [(2, 67, 45), (1, 512, 512)]),
    "bb16": ("  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n", 22, [(2, 53, 37)]),
    "bb16s0": ("  BACKBONE: {OUT_INDICES: [0]}\n", 23, [(1, 800, 1333)]),
}


def image_like(shape, seed):
    """Smooth 8-bit-level images, normalized: a coarse random picture
    resized up bilinearly, quantized to 256 levels."""
    B, C, H, W = shape
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(B, C, max(H // 16, 2), max(W // 16, 2), generator=g, dtype=torch.float64)
    img = torch.nn.functional.interpolate(coarse, size=(H, W), mode="bilinear", align_corners=False)
    return ((torch.round(img * 255) / 255 - 0.45) / 0.225).numpy().astype(np.float32)


def dense(out, lines):
    for name, (extra, seed, cases) in DENSE.items():
        cfg = os.path.join(out, name + ".yaml")
        with open(cfg, "w") as f:
            f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: %s\n%s%s" % (name, DENSE_SM, extra))
        c = sm.dense_config(cfg)
        sd = sm.random_dense_state_dict(c, seed=seed)
        ck.save_mmengine(os.path.join(out, name + ".pth"), ck.segmentor_state_dict(sd))
        for i, (B, H, W) in enumerate(cases):
            case = "%s_b%d_%dx%d" % (name, B, H, W)
            x = image_like((B, 3, H, W), 100 * seed + i) if H * W > 100000 else E.image((B, 3, H, W), 100 * seed + i)
            np.save(os.path.join(out, "x_%s.npy" % case), x)
            with torch.no_grad():
                want = sm.dense_forward(torch.from_numpy(x).double(), sd, c, dtype=torch.float64)
            want = {k: v.numpy().astype(np.float32) for k, v in want.items()}
            if len(want) == 1:  # one output: the executable writes a .npy
                np.save(os.path.join(out, "want_%s.npy" % case), next(iter(want.values())))
            else:
                np.savez(os.path.join(out, "want_%s.npz" % case), **want)
            lines.append("%s %s %d %d %d\n" % (case, name, B, H, W))


def main(out):
    os.makedirs(out, exist_ok=True)
    lines = []
    for name, (C, depths, ncls, mlp, seed, cases) in MODELS.items():
        cfg = os.path.join(out, name + ".yaml")
        E.write_config(cfg, C, depths, num_classes=ncls, mlp_ratio=mlp)
        sd = sm.random_state_dict(C, depths, ncls, 3, mlp, seed=seed)
        ck.save_model(os.path.join(out, name + ".pth"), sd)
        for i, c in enumerate(cases):
            B, H, W = c[:3]
            fill = c[3] if len(c) > 3 else 0
            case = "%s_b%d_%dx%d" % (name, B, H, W) + ("_fill%d" % fill if fill else "")
            x = E.image((B, 3, H, W), 100 * seed + i).astype(np.float32)
            np.save(os.path.join(out, "x_%s.npy" % case), x)
            with torch.no_grad():
                want = sm.forward(torch.from_numpy(x).double(), sd, depths, dtype=torch.float64).numpy()
            np.save(os.path.join(out, "want_%s.npy" % case), want)
            lines.append("%s %s %d %d %d%s\n" % (case, name, B, H, W, " --fill %d" % fill if fill else ""))
    dense(out, lines)
    with open(os.path.join(out, "cases.txt"), "w") as f:
        f.writelines(lines)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
