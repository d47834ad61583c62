#!/usr/bin/python3
"""examples/digits/train.py [OUTDIR] -- trains the demo's small Spatial-Mamba
on scikit-learn's handwritten digits and writes the files the demo bundles.

Takes: OUTDIR (default: this script's directory, i.e. it rewrites the
bundled files).  Needs python3 with torch, numpy, PIL and scikit-learn
(Debian: python3-torch python3-pil python3-sklearn); the data are
scikit-learn's bundled copy of the UCI optical-recognition digits (1797
images 8x8, values 0..16, 10 classes).
Produces in OUTDIR:
  digits.yaml    the config in the public Spatial-Mamba format (32x32 input,
                 TEST.CROP false, DATA.INTERPOLATION bicubic)
  digits.pth     the trained weights: {'model': state dict, 'meta':
                 {'dataset_meta': {'classes': ('0', ..., '9')}}}, so that a
                 compiled model prints the digits' names
  images/digitD_IIII.png  12 test-set images, every class at least once,
                 each classified correctly (probability >= 0.9) by the
                 float32 model; D the digit, IIII its index in
                 sklearn.datasets.load_digits()
and prints the accuracy on the 360 held-out test images and the time taken.

The images are what a user would hand the compiled model: each 8x8 image,
scaled to 0..255, upsampled to 64x64 with PIL's bicubic filter, a grayscale
PNG (white digit on black, as in the data set).  The model is trained on
exactly what the runtime computes from such a file (docs: the evaluation
transform with TEST.CROP false): PIL's Image.open(png).convert("RGB"),
resize to 32x32 (bicubic), / 255, minus the ImageNet mean, over its std --
every training image goes through that path in memory, PNG bytes included.
The split, the model (embed 32, depths [1, 1, 1], MLP ratio 2) and the
training loop are tests/reference/digits_train.py's (shared with the GPU
suite's tests/gpu/digits.py).

Deterministic: fixed seeds, one torch thread and torch's deterministic
algorithms, so a rerun on the same machine writes the same bytes (other
CPUs may pick other vector kernels and differ in the last bits).  About
three minutes on one core of a 2-core x86-64 VM.
"""
import io
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import digits_train as dt  # noqa: E402
import spatial_mamba as sm  # noqa: E402

PNG_SIZE = 64                   # the bundled PNGs
SIZE = 32                       # the model's input (DATA.IMG_SIZE)
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
N_IMAGES = 12
MIN_PROB = 0.9
CLASSES = tuple(str(i) for i in range(dt.CLASSES))

CONFIG = """\
# The demo's digit classifier (examples/digits/README.md), written by
# examples/digits/train.py: Spatial-Mamba with embed 32 and one block in
# each of three stages, trained on scikit-learn's 8x8 digits seen as 32x32
# images; images are resized straight to 32x32 (no centre crop).
MODEL:
  TYPE: spatial_mamba
  NAME: digits
  NUM_CLASSES: %d
  SPATIALMAMBA:
    EMBED_DIM: %d
    DEPTHS: [ %s ]
    D_STATE: 1
    MLP_RATIO: %s
DATA:
  IMG_SIZE: %d
  INTERPOLATION: bicubic
TEST:
  CROP: false
""" % (dt.CLASSES, dt.EMBED, ", ".join(str(d) for d in dt.DEPTHS), dt.MLP, SIZE)


def png_bytes(img):
    """The PNG file of one 8x8 image (values 0..16): 0..255, upsampled to
    PNG_SIZE x PNG_SIZE with PIL's bicubic filter, grayscale."""
    u8 = np.round(np.asarray(img, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    big = Image.fromarray(u8, "L").resize((PNG_SIZE, PNG_SIZE), Image.BICUBIC)
    buf = io.BytesIO()
    big.save(buf, format="PNG")
    return buf.getvalue()


def model_input(png):
    """What the runtime computes from the PNG file's bytes (TEST.CROP false):
    float32 [3, SIZE, SIZE]."""
    rgb = Image.open(io.BytesIO(png)).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)
    x = np.asarray(rgb, dtype=np.float32) / np.float32(255.0)
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def pick_images(lab, te, prob):
    """N_IMAGES test-set indices (in the data set's order): the first
    confidently right one of every class, then the next ones of other
    classes.  prob: float [len(te), classes] of the float32 model."""
    ok = {int(i): p for i, p in zip(te, prob) if p.argmax() == lab[i] and p.max() >= MIN_PROB}
    order = sorted(ok)
    chosen = []
    for c in range(dt.CLASSES):
        first = [i for i in order if lab[i] == c]
        if not first:
            print("train.py: no test image of class %d is classified right with p >= %.2f"
                  % (c, MIN_PROB))
            sys.exit(1)
        chosen.append(first[0])
    for i in order:
        if len(chosen) >= N_IMAGES:
            break
        if i not in chosen and lab[i] not in [lab[j] for j in chosen[dt.CLASSES:]]:
            chosen.append(i)
    return sorted(chosen)


def main(out):
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    t0 = time.time()
    images, lab, tr, te = dt.load_split("train.py")
    pngs = [png_bytes(im) for im in images]
    x = torch.from_numpy(np.stack([model_input(p) for p in pngs]))
    y = torch.from_numpy(lab)
    sd = dt.train(x[tr], y[tr], x[te], y[te], "train.py")
    with torch.no_grad():
        prob = torch.softmax(sm.forward(x[te], sd, dt.DEPTHS), 1).numpy()
        want = sm.forward(x[te].double(), sd, dt.DEPTHS, dtype=torch.float64).numpy()
    acc32 = float((prob.argmax(1) == lab[te]).mean())
    acc64 = float((want.argmax(1) == lab[te]).mean())
    chosen = pick_images(lab, te, prob)

    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    dt.write_file(os.path.join(out, "digits.yaml"), CONFIG.encode())
    buf = io.BytesIO()
    torch.save({"model": sd, "meta": {"dataset_meta": {"classes": CLASSES}}}, buf)
    dt.write_file(os.path.join(out, "digits.pth"), buf.getvalue())
    names = ["digit%d_%04d.png" % (lab[i], i) for i in chosen]
    for old in os.listdir(os.path.join(out, "images")):
        if old.startswith("digit") and old.endswith(".png") and old not in names:
            os.unlink(os.path.join(out, "images", old))
    for i, name in zip(chosen, names):
        dt.write_file(os.path.join(out, "images", name), pngs[i])
    pos = {int(i): k for k, i in enumerate(te)}
    for i, name in zip(chosen, names):
        print("train.py: images/%s  %s %.1f%%" % (name, CLASSES[lab[i]], 100 * prob[pos[i]].max()))
    print("train.py: %d train / %d test images; test accuracy %.2f%% (float32), %.2f%% "
          "(float64); %.0f s" % (len(tr), len(te), 100 * acc32, 100 * acc64, time.time() - t0))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 or (len(sys.argv) == 2 and sys.argv[1].startswith("-")):
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1] if len(sys.argv) == 2 else HERE))
