#!/usr/bin/python3
"""tests/gpu/digits.py OUTDIR -- a small trained Spatial-Mamba for the GPU
suite's real-data check (tests/gpu/run.sh): top-1 of --precision bf16 must
match fp32 on >= 99% of a real test set.

Takes: the output directory.  Needs python3 with torch, numpy and
scikit-learn (Debian: apt-get install -y python3-sklearn), whose bundled
8x8 handwritten digits (1797 images, 10 classes) are the data.
Produces in OUTDIR:
  digits.yaml         the model config in the public Spatial-Mamba format
  digits.pth          the trained weights (public checkpoint layout)
  digits.stamp        VERSION of this script that trained digits.pth
  x_digits.npy        test images, float32 [N, 3, SIZE, SIZE] (normalised)
  labels_digits.npy   their classes, int64 [N]
  want_digits.npy     float64 logits of the plain PyTorch reference
                      (tests/reference/spatial_mamba.py) on x_digits.npy
  digits.txt          one line "digits digits N SIZE SIZE" (name, config,
                      batch, height, width: the format of cases.txt)
and prints the train / test accuracy of the PyTorch model.

Training: a deterministic split (fixed seed, 1437 train / 360 test), images
upscaled bilinearly to SIZE x SIZE (32 is the smallest size mambac accepts;
the 4x stem and two 2x downsamples leave 8x8, 4x4, 2x2), replicated to 3
channels, normalised with the training set's mean and std; the model is the
reference forward itself, a pure function of the state dict, whose float
tensors (except BatchNorm running statistics) are optimised with Adam in
float32 on the CPU, starting from random_state_dict (the split, the model
and the training loop are tests/reference/digits_train.py's, shared with
examples/digits/train.py).  About two minutes on two cores.  If
OUTDIR/digits.pth exists and digits.stamp holds this VERSION, training is
skipped (a cache) and only the data files are rewritten.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import checkpoints as ck  # noqa: E402
import digits_train as dt  # noqa: E402
import spatial_mamba as sm  # noqa: E402
import e2e_common as E  # noqa: E402

VERSION = "digits-1"          # bump when anything below changes the model
SIZE = 32


def load_data():
    images, lab, tr, te = dt.load_split("digits.py")
    img = images.astype(np.float32) / 16.0              # [1797, 8, 8] in [0, 1]
    with torch.no_grad():
        x = F.interpolate(torch.from_numpy(img)[:, None], size=(SIZE, SIZE), mode="bilinear",
                          align_corners=False)
    mean, std = float(x[tr].mean()), float(x[tr].std())
    x = ((x - mean) / std).expand(-1, 3, -1, -1).contiguous()
    return x[tr], torch.from_numpy(lab[tr]), x[te], torch.from_numpy(lab[te])


def main(out):
    torch.set_num_threads(2)
    os.makedirs(out, exist_ok=True)
    xtr, ytr, xte, yte = load_data()
    pth = os.path.join(out, "digits.pth")
    stamp = os.path.join(out, "digits.stamp")
    cached = False
    if os.path.exists(pth) and os.path.exists(stamp):
        with open(stamp) as f:
            cached = f.read().strip() == VERSION
    if cached:
        sd = torch.load(pth)["model"]
        print("digits.py: %s is up to date (%s), training skipped" % (pth, VERSION))
    else:
        sd = dt.train(xtr, ytr, xte, yte, "digits.py")
        ck.save_model(pth, sd)
        with open(stamp, "w") as f:
            f.write(VERSION + "\n")
    E.write_config(os.path.join(out, "digits.yaml"), dt.EMBED, dt.DEPTHS, num_classes=dt.CLASSES,
                   mlp_ratio=dt.MLP, name="digits", img_size=SIZE)
    x = xte.numpy().astype(np.float32)
    np.save(os.path.join(out, "x_digits.npy"), x)
    np.save(os.path.join(out, "labels_digits.npy"), yte.numpy().astype(np.int64))
    with torch.no_grad():
        want = sm.forward(torch.from_numpy(x).double(), sd, dt.DEPTHS, dtype=torch.float64).numpy()
    np.save(os.path.join(out, "want_digits.npy"), want)
    with open(os.path.join(out, "digits.txt"), "w") as f:
        f.write("digits digits %d %d %d\n" % (len(x), SIZE, SIZE))
    acc_te = float((want.argmax(1) == yte.numpy()).mean())
    acc_tr = dt.accuracy(sd, xtr, ytr)
    print("digits.py: %s: %d train / %d test images %dx%d; accuracy train %.2f%%, test %.2f%% "
          "(float64 reference)" % (VERSION, len(ytr), len(yte), SIZE, SIZE, 100 * acc_tr,
                                   100 * acc_te))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
