"""e2e: the bundled digit segmentor (examples/digitseg/) -- a small UperNet
trained here on scenes of scikit-learn's handwritten digits -- compiled
from its config and checkpoint, run on its bundled test scenes with
--mask / --overlay, and scored against the scenes' ground truth.

- the checkpoint is small (< 2 MB) and carries the 11 class names
  ('background', '0', ..., '9') and a palette of 11 distinct colours;
- `mambac compile digitseg.yaml --weights digitseg.pth` succeeds;
- the executable, given the images directory (96x96 scenes and a 144x144
  one, which it resizes to 96x96 and maps back), writes one mask and one
  overlay per image at the image's size; every mask pixel is a colour of
  the checkpoint's palette; the overlay is the 50% blend of the image and
  that colour (one level);
- the masks read back as class maps agree with the scenes' label maps
  (examples/digitseg/labels/): pixel accuracy per scene >= MIN_SCENE_ACC
  and over all scenes >= MIN_ACC, the mean IoU of the classes in the
  labels >= MIN_MIOU (thresholds: what was measured on these scenes --
  98.00% to 99.37%, 98.79%, 89.56% -- minus a margin for other CPUs'
  last bits);
- and they are the float64 PyTorch reference's class maps on the same
  PIL-prepared input (>= 99.5% of pixels; the rest are near-ties).
"""
import os

import e2e_common as E
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

t = E.Test("digitseg")
sm, ck = E.sm, E.ck
EX = os.path.join(E.REPO, "examples", "digitseg")
SCENES = ("scene1", "scene2", "scene3", "scene4")
CLASSES = ("background",) + tuple(str(d) for d in range(10))
# measured on the bundled scenes by train.py (see examples/digitseg/README.md)
MIN_SCENE_ACC, MIN_ACC, MIN_MIOU = 0.97, 0.98, 0.85
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)

cfg_path, wts = os.path.join(EX, "digitseg.yaml"), os.path.join(EX, "digitseg.pth")
t.check(os.path.getsize(wts) < 2 << 20, "digitseg.pth is %d bytes (< 2 MB)" % os.path.getsize(wts))
obj = ck.load_checkpoint(wts)
meta = (obj.get("meta") or {}).get("dataset_meta") or {}
palette = np.array(meta.get("palette", []), dtype=np.int64)
t.check(tuple(meta.get("classes", ())) == CLASSES, "checkpoint class names: %s" % (meta.get("classes"),))
t.check(palette.shape == (11, 3) and len({tuple(c) for c in palette}) == 11
        and palette.min() >= 0 and palette.max() <= 255,
        "checkpoint palette: 11 distinct RGB colours (%s)" % (palette.shape,))

exe = t.path("digitseg")
rc, out, err, dt = t.run(["compile", cfg_path, "--weights", wts, "-o", exe], timeout=300)
t.check(rc == 0, "compile the bundled segmentor: rc=%s %s" % (rc, err.strip()[-300:]))

mdir, odir = t.path("masks"), t.path("overlays")
os.makedirs(mdir)
os.makedirs(odir)
rc, out, err, dt = E.run_prog([exe, "--image", os.path.join(EX, "images"), "--mask", mdir,
                               "--overlay", odir])
t.check(rc == 0 and all(n + ".png" in out for n in SCENES),
        "executable --image DIR --mask DIR --overlay DIR: rc=%s %s" % (rc, (err or out).strip()[-300:]))

cfg = sm.dense_config(cfg_path)
sd, _ = ck.model_state_dict(obj)


def reference_map(rgb):
    """The float64 reference's class map of an RGB image at its own size:
    the runtime's transform (PIL bilinear to the compiled size, / 255,
    ImageNet mean / std), logits bilinear back to the image's size."""
    H, W = cfg["img_size"]
    im = Image.fromarray(rgb).resize((W, H), Image.BILINEAR)
    x = ((np.asarray(im, dtype=np.float32) / np.float32(255.0) - MEAN) / STD).transpose(2, 0, 1)
    with torch.no_grad():
        z = sm.dense_forward(torch.from_numpy(x[None]).double(), sd, cfg, dtype=torch.float64)["logits"]
        z = F.interpolate(z, size=rgb.shape[:2], mode="bilinear", align_corners=False)
    return z[0].argmax(0).numpy()


conf = np.zeros((11, 11), dtype=np.int64)
for name in SCENES:
    rgb = np.asarray(Image.open(os.path.join(EX, "images", name + ".png")).convert("RGB"))
    lab = np.asarray(Image.open(os.path.join(EX, "labels", name + ".png")))
    mp, op = os.path.join(mdir, name + ".png"), os.path.join(odir, name + ".png")
    if not (os.path.exists(mp) and os.path.exists(op)):
        t.check(False, "%s: no mask or overlay written" % name)
        continue
    m = np.asarray(Image.open(mp).convert("RGB")).astype(np.int64)
    o = np.asarray(Image.open(op).convert("RGB")).astype(np.int64)
    if not t.check(m.shape == rgb.shape and o.shape == rgb.shape and lab.shape == rgb.shape[:2],
                   "%s: mask %s, overlay %s at the image's size %s" % (name, m.shape, o.shape, rgb.shape)):
        continue
    # each pixel's colour -> its palette index (-1: not a palette colour)
    key = (m[..., 0] << 16) | (m[..., 1] << 8) | m[..., 2]
    pkey = (palette[:, 0] << 16) | (palette[:, 1] << 8) | palette[:, 2]
    cls = np.full(key.shape, -1, dtype=np.int64)
    for c, k in enumerate(pkey):
        cls[key == k] = c
    t.check((cls >= 0).all(), "%s: every mask pixel is a palette colour (%d are not)"
            % (name, int((cls < 0).sum())))
    blend = np.round(0.5 * rgb + 0.5 * palette[np.maximum(cls, 0)])
    t.check(np.abs(o - blend).max() <= 1, "%s: overlay = 50%% blend of image and mask (max diff %d)"
            % (name, np.abs(o - blend).max()))
    acc = float((cls == lab).mean())
    t.check(acc >= MIN_SCENE_ACC, "%s %dx%d: pixel accuracy %.2f%% >= %.0f%%"
            % (name, rgb.shape[1], rgb.shape[0], 100 * acc, 100 * MIN_SCENE_ACC))
    conf += np.bincount(lab.astype(np.int64).ravel() * 11 + np.maximum(cls, 0).ravel(),
                        minlength=121).reshape(11, 11)
    same = float((reference_map(rgb) == cls).mean())
    t.check(same >= 0.995, "%s: the float64 reference's class map on %.2f%% of pixels" % (name, 100 * same))

if conf.sum():
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    gt = conf.sum(1) > 0
    miou = float(np.mean(inter[gt] / union[gt]))
    acc = float(inter.sum() / conf.sum())
    t.check(acc >= MIN_ACC, "all scenes: pixel accuracy %.2f%% >= %.0f%%" % (100 * acc, 100 * MIN_ACC))
    t.check(miou >= MIN_MIOU, "all scenes: mIoU %.2f%% >= %.0f%% (over the %d classes of the labels)"
            % (100 * miou, 100 * MIN_MIOU, int(gt.sum())))
t.finish()
