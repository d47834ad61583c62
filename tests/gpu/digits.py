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
float32 on the CPU, starting from random_state_dict.  About a minute on two
cores.  If OUTDIR/digits.pth exists and digits.stamp holds this VERSION,
training is skipped (a cache) and only the data files are rewritten.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "reference"))
sys.path.insert(0, os.path.join(HERE, "..", "e2e"))
import checkpoints as ck  # noqa: E402
import spatial_mamba as sm  # noqa: E402
import e2e_common as E  # noqa: E402

VERSION = "digits-1"          # bump when anything below changes the model
EMBED, DEPTHS, CLASSES, MLP = 32, [1, 1, 1], 10, 2.0
SIZE = 32
N_TEST = 360
SEED = 0
EPOCHS, BATCH, LR = 24, 64, 3e-3


def load_data():
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("digits.py: scikit-learn is needed (Debian: apt-get install -y python3-sklearn)")
        sys.exit(1)
    d = load_digits()
    img = d.images.astype(np.float32) / 16.0            # [1797, 8, 8] in [0, 1]
    lab = d.target.astype(np.int64)
    perm = np.random.RandomState(SEED).permutation(len(lab))
    tr, te = perm[:-N_TEST], perm[-N_TEST:]
    with torch.no_grad():
        x = F.interpolate(torch.from_numpy(img)[:, None], size=(SIZE, SIZE), mode="bilinear",
                          align_corners=False)
    mean, std = float(x[tr].mean()), float(x[tr].std())
    x = ((x - mean) / std).expand(-1, 3, -1, -1).contiguous()
    return x[tr], torch.from_numpy(lab[tr]), x[te], torch.from_numpy(lab[te])


def trainable(k, v):
    return v.is_floating_point() and not k.endswith(("running_mean", "running_var"))


def accuracy(sd, x, y, dtype=torch.float32):
    with torch.no_grad():
        pred = torch.cat([sm.forward(x[i:i + 256].to(dtype), sd, DEPTHS, dtype=dtype).argmax(1)
                          for i in range(0, len(x), 256)])
    return float((pred == y).double().mean())


def train(xtr, ytr, xte, yte):
    torch.manual_seed(SEED)
    sd = sm.random_state_dict(EMBED, DEPTHS, CLASSES, 3, MLP, seed=SEED)
    params = []
    for k, v in sd.items():
        if trainable(k, v):
            v.requires_grad_(True)
            params.append(v)
    opt = torch.optim.Adam(params, lr=LR)
    steps_per_epoch = (len(xtr) + BATCH - 1) // BATCH
    total = EPOCHS * steps_per_epoch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=total,
                                                pct_start=0.1)
    g = torch.Generator().manual_seed(SEED)
    t0 = time.time()
    for ep in range(EPOCHS):
        perm = torch.randperm(len(xtr), generator=g)
        tot, n = 0.0, 0
        for s in range(steps_per_epoch):
            idx = perm[s * BATCH:(s + 1) * BATCH]
            xb = xtr[idx]
            # augmentation: a random shift of up to 2 pixels (of 32)
            dy, dx = torch.randint(-2, 3, (2,), generator=g).tolist()
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            loss = F.cross_entropy(sm.forward(xb, sd, DEPTHS), ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss) * len(idx)
            n += len(idx)
        if ep % 4 == 3 or ep == EPOCHS - 1:
            print("digits.py: epoch %d loss %.4f test acc %.2f%% (%.0f s)"
                  % (ep + 1, tot / n, 100 * accuracy(sd, xte, yte), time.time() - t0))
            sys.stdout.flush()
    return {k: v.detach().clone() for k, v in sd.items()}


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
        sd = train(xtr, ytr, xte, yte)
        ck.save_model(pth, sd)
        with open(stamp, "w") as f:
            f.write(VERSION + "\n")
    E.write_config(os.path.join(out, "digits.yaml"), EMBED, DEPTHS, num_classes=CLASSES,
                   mlp_ratio=MLP, name="digits", img_size=SIZE)
    x = xte.numpy().astype(np.float32)
    np.save(os.path.join(out, "x_digits.npy"), x)
    np.save(os.path.join(out, "labels_digits.npy"), yte.numpy().astype(np.int64))
    with torch.no_grad():
        want = sm.forward(torch.from_numpy(x).double(), sd, DEPTHS, dtype=torch.float64).numpy()
    np.save(os.path.join(out, "want_digits.npy"), want)
    with open(os.path.join(out, "digits.txt"), "w") as f:
        f.write("digits digits %d %d %d\n" % (len(x), SIZE, SIZE))
    acc_te = float((want.argmax(1) == yte.numpy()).mean())
    acc_tr = accuracy(sd, xtr, ytr)
    print("digits.py: %s: %d train / %d test images %dx%d; accuracy train %.2f%%, test %.2f%% "
          "(float64 reference)" % (VERSION, len(ytr), len(yte), SIZE, SIZE, 100 * acc_tr,
                                   100 * acc_te))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
