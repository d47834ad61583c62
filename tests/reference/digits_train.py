"""Training a small Spatial-Mamba classifier on scikit-learn's digits with
the project's PyTorch reference forward (spatial_mamba.forward), shared by
tests/gpu/digits.py (the GPU suite's real-data check) and
examples/digits/train.py (the demo's bundled model).

Takes: scikit-learn's bundled copy of the UCI optical-recognition digits
(1797 images 8x8, values 0..16, 10 classes; Debian: python3-sklearn).
Produces (functions):
  load_split()   the images, labels and a fixed-seed train / test split
  train(...)     a trained state dict (float tensors optimised with Adam,
                 one-cycle schedule, random shifts of up to 2 pixels),
                 starting from spatial_mamba.random_state_dict
  accuracy(...)  top-1 accuracy of a state dict on [N, 3, H, W] images
  write_file(...) a file written through a temporary name (the examples'
                 bundled files are never left half-written)
Owns: nothing; the callers choose the input transform, threads and files.

Deterministic: every random draw comes from SEED (torch.manual_seed, the
state dict's seed, one torch.Generator for the batches and shifts), so the
same call on the same machine with the same number of torch threads gives
the same weights bit for bit.
"""
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spatial_mamba as sm  # noqa: E402

EMBED, DEPTHS, CLASSES, MLP = 32, [1, 1, 1], 10, 2.0
N_TEST = 360
SEED = 0
EPOCHS, BATCH, LR = 24, 64, 3e-3


def load_split(prog):
    """(images float64 [1797, 8, 8] with integer values 0..16, labels int64
    [1797], train indices, test indices): a permutation of the data set's order by
    SEED, its last N_TEST the test set.  Exits 1 with a line naming `prog`
    when scikit-learn is missing."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("%s: scikit-learn is needed (Debian: apt-get install -y python3-sklearn)" % prog)
        sys.exit(1)
    d = load_digits()
    lab = d.target.astype(np.int64)
    perm = np.random.RandomState(SEED).permutation(len(lab))
    return d.images, lab, perm[:-N_TEST], perm[-N_TEST:]


def trainable(k, v):
    return v.is_floating_point() and not k.endswith(("running_mean", "running_var"))


def accuracy(sd, x, y, dtype=torch.float32):
    """Top-1 accuracy of sd on images x [N, 3, H, W] with labels y."""
    with torch.no_grad():
        pred = torch.cat([sm.forward(x[i:i + 256].to(dtype), sd, DEPTHS, dtype=dtype).argmax(1)
                          for i in range(0, len(x), 256)])
    return float((pred == y).double().mean())


def train(xtr, ytr, xte, yte, prog):
    """Trains the model on xtr [N, 3, H, W] (float32) / ytr (int64),
    printing the loss and the accuracy on xte / yte every 4 epochs with
    `prog` in front; returns the state dict."""
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
            print("%s: epoch %d loss %.4f test acc %.2f%% (%.0f s)"
                  % (prog, ep + 1, tot / n, 100 * accuracy(sd, xte, yte), time.time() - t0))
            sys.stdout.flush()
    return {k: v.detach().clone() for k, v in sd.items()}


def write_file(path, data):
    """Writes bytes through a temporary name, so nothing is left half-written."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
