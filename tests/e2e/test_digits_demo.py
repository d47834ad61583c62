"""e2e: the demo's bundled digit classifier (examples/digits/, made by its
train.py) is consistent, and the demo's step prints the right digits.

- the files: digits.yaml (32x32, TEST.CROP false, DATA.INTERPOLATION
  bicubic), digits.pth ({'model': state dict, 'meta': {'dataset_meta':
  {'classes': ('0', ..., '9')}}}), images/digitD_IIII.png: at least ten
  grayscale PNGs covering every digit;
- each PNG is image IIII of scikit-learn's digits (label D, in the held-out
  test split) made as train.py makes it (skipped without scikit-learn);
- `mambac run --backend ref` on the PNGs' tensors (the evaluation transform
  without crop computed here with PIL + numpy) gives logits within 1e-4 of
  the float64 PyTorch reference and each file's digit D as top-1;
- `mambac run --image` and the compiled executable's
  `--image examples/digits/images/*.png --top 3` (the demo's step) print
  every file with its digit first, a name from the checkpoint, and the
  reference's probability (to the printed 0.1%).
"""
import os
import re
import sys

import e2e_common as E
import numpy as np
import torch
from PIL import Image

t = E.Test("digits_demo")
sm = E.sm
DIR = os.path.join(E.REPO, "examples", "digits")
sys.path.insert(0, DIR)
sys.dont_write_bytecode = True           # nothing written into the source tree
import train as tr  # noqa: E402  (examples/digits/train.py: how a PNG is made)

cfg, pth = os.path.join(DIR, "digits.yaml"), os.path.join(DIR, "digits.pth")
names = sorted(f for f in os.listdir(os.path.join(DIR, "images")) if f.endswith(".png"))
files = [os.path.join(DIR, "images", f) for f in names]
parsed = [re.match(r"digit(\d)_(\d{4})\.png$", f) for f in names]
digits = [int(m.group(1)) if m else -1 for m in parsed]
t.check(all(parsed) and len(files) >= 10 and set(digits) == set(range(10)),
        "images/: %d PNGs named digitD_IIII.png covering the digits %s" % (len(files), sorted(set(digits))))

with open(cfg) as f:
    text = f.read()
t.check(all(re.search(p, text, re.M) for p in (r"^  IMG_SIZE: 32$", r"^  INTERPOLATION: bicubic$",
                                                r"^TEST:\n  CROP: false$")),
        "digits.yaml: IMG_SIZE 32, INTERPOLATION bicubic, TEST.CROP false")
ckpt = torch.load(pth)
sd = ckpt["model"]
classes = ckpt.get("meta", {}).get("dataset_meta", {}).get("classes")
t.check(classes == tuple(str(i) for i in range(10)) and sd["head.weight"].shape == (10, 128),
        "digits.pth: meta.dataset_meta.classes %s, head %s" % (classes, list(sd["head.weight"].shape)))

# provenance: the data set's image IIII, made into a PNG as train.py does
try:
    images, lab, _, te = tr.dt.load_split("test_digits_demo")
except SystemExit:
    images = None
    print("  (scikit-learn missing: the PNGs' provenance is not checked)")
if images is not None:
    bad = []
    for f, m in zip(files, parsed):
        i = int(m.group(2)) if m else -1
        same = 0 <= i < len(lab) and open(f, "rb").read() == tr.png_bytes(images[i])
        if not (same and lab[i] == int(m.group(1)) and i in te):
            bad.append(os.path.basename(f))
    t.check(not bad, "every PNG is its data set image (label in the name, test split) made as train.py "
            "makes it %s" % (bad or ""))

# the tensors the runtime computes from the PNGs, with PIL + numpy
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
x = np.stack([((np.asarray(Image.open(f).convert("RGB").resize((32, 32), Image.BICUBIC), dtype=np.float64)
                / 255.0 - MEAN) / STD).transpose(2, 0, 1) for f in files]).astype(np.float32)
want = E.reference(x, sd, tr.dt.DEPTHS)
xin, yout = t.path("x.npy"), t.path("y.npy")
np.save(xin, x)
rc, out, err, dt = t.run(["run", cfg, "--weights", pth, "--input", xin, "--output", yout, "--backend", "ref",
                          "--threads", "2"])
t.check(rc == 0, "mambac run --backend ref on the PNGs' tensors: rc=%s %s" % (rc, err.strip()[-300:]))
y = E.check_logits(t, "mambac run --backend ref", yout, want, dt)
if y is not None:
    got = list(y.argmax(1))
    t.check(got == digits, "top-1 of every PNG is the digit in its name (%s)" % got)


def check_top3(label, out):
    """Every file's block of `--top 3` lines: its digit first with the
    reference's probability."""
    p = np.exp(want - want.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    blocks = re.findall(r"^(\S[^\n]*):\n((?:[ \t]+\d+\. [^\n]*\n?){3})", out, re.M)
    firsts = {os.path.basename(b[0]): re.match(r"\s+1\. (\S+) ([0-9.]+)%", b[1]) for b in blocks}
    bad = []
    for f, d, pr in zip(names, digits, p):
        m = firsts.get(f)
        if not m or m.group(1) != str(d) or abs(float(m.group(2)) - 100 * pr[d]) > 0.051:
            bad.append("%s: %s" % (f, m.group(0).strip() if m else "not printed"))
    t.check(len(blocks) == len(names) and not bad,
            "%s: %d files, each with its digit first and the reference's probability %s" % (
                label, len(blocks), bad or ""))


rc, out, err, dt = t.run(["run", cfg, "--weights", pth, "--image"] + files + ["--top", "3", "--threads", "2"])
t.check(rc == 0, "mambac run --image images/*.png --top 3: rc=%s %s" % (rc, err.strip()[-300:]))
check_top3("mambac run --image --top 3", out)

exe = t.path("digits")
rc, out, err, dt = t.run(["compile", cfg, "--weights", pth, "-o", exe])
if t.check(rc == 0, "mambac compile digits.yaml --weights digits.pth: rc=%s %s" % (rc, err.strip()[-300:])):
    rc, out, err, dt = E.run_prog([exe, "--image"] + files + ["--top", "3", "--threads", "2"])
    t.check(rc == 0, "./digits --image images/*.png --top 3: rc=%s (%.2fs) %s" % (rc, dt, err.strip()[-300:]))
    check_top3("./digits --image --top 3", out)
    print("      " + "\n      ".join(out.strip().splitlines()[:8]))
t.finish()
