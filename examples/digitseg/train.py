#!/usr/bin/python3
"""examples/digitseg/train.py [--evaluate] [OUTDIR] -- trains a small
UperNet segmentor on synthetic "digit scenes" made from scikit-learn's
handwritten digits and writes the files the example bundles.  With
--evaluate: no training, only the scores of OUTDIR/digitseg.pth.

Takes: OUTDIR (default: this script's directory, i.e. it rewrites the
bundled files).  Needs python3 with torch, numpy, PIL and scikit-learn
(Debian: python3-torch python3-pil python3-sklearn); the data are
scikit-learn's bundled copy of the UCI optical-recognition digits (1797
images 8x8, values 0..16, 10 classes), split into train and test as
tests/reference/digits_train.py splits them (the classifier example's
split: its last 360 images are the test set).
Produces in OUTDIR:
  digitseg.yaml   the config in the public format (MODEL.BACKBONE /
                  MODEL.DECODE_HEAD, DATA.IMG_SIZE [96, 96], 11 classes)
  digitseg.pth    the trained weights in mmengine's layout (backbone.*,
                  decode_head.*), meta.dataset_meta.classes ('background',
                  '0', ..., '9') and .palette (background dark grey, each
                  digit a distinct bright colour)
  images/sceneN.png  test scenes (digits of the test split only): scene1-3
                  at the compiled 96x96, scene4 at 144x144 (the runtime
                  resizes it to 96x96 and maps the class map back)
  labels/sceneN.png  their ground truth, one 8-bit gray level a pixel:
                  0 background, 1 + d on the strokes of a digit d
and prints the scores on held-out scenes (pixel accuracy, mIoU, IoU per
class, digits read right) and the time.

A scene: a dark, textured background (a random dark colour, low-frequency
blotches, faint lines, pixel noise) with 2 to 4 digits at random places
(never overlapping), each upsampled with PIL's bicubic filter to 24..40
pixels (times a size's scale over 96) and painted in a random bright tint
with its value v (0..255) giving the paint's opacity, (v - 40) / 160 clipped
to 0..1 (the data set's faint values leave no visible box); a pixel is
labelled with the digit where v is at least 128.  Training scenes use the train split's
digits, evaluation scenes and the bundled ones the test split's.

The model sees in training exactly what the runtime computes from a PNG for
a segmentor (docs/images.md): PIL's Image.open(p).convert("RGB"), resized
without cropping to the compiled size with PIL's bilinear filter (the
identity for a 96x96 scene), / 255, minus the ImageNet mean, over its std,
in float32.  The model is the project's PyTorch reference forward
(tests/reference/spatial_mamba.py, segmentor_forward), a pure function of
the state dict, whose float tensors except BatchNorm running statistics are
optimised with Adam (one-cycle schedule) on the pixels' cross-entropy.

Deterministic: every scene comes from a numpy RandomState seeded by (SEED,
split, index), the weights from the state dict's seed, torch runs one
thread (OpenBLAS too) with its deterministic algorithms, so a rerun on the
same machine writes the same bytes.  About 5 minutes on one core of a
2-core x86-64 VM (0.5 GB of memory).
"""
import colorsys
import io
import os
import sys
import time

if __name__ == "__main__":
    # one thread: torch.set_num_threads does not reach the OpenBLAS pool
    # that numpy and torch load; its second thread spins (minutes of
    # system time) and splits products differently (other last bits)
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "reference"))
import checkpoints as ck  # noqa: E402
import digits_train as dt  # noqa: E402
import spatial_mamba as sm  # noqa: E402

SIZE = (96, 96)                 # the model's input H, W (DATA.IMG_SIZE)
CLASSES = ("background",) + tuple(str(d) for d in range(10))
PALETTE = ((40, 40, 40), (255, 64, 64), (64, 220, 64), (255, 230, 40), (60, 140, 255),
           (255, 150, 30), (200, 90, 255), (40, 230, 230), (255, 80, 220), (235, 235, 235),
           (255, 190, 200))
MODEL = {"embed_dim": 16, "depths": [1, 1, 1], "mlp_ratio": 2.0, "in_chans": 3,
         "num_classes": len(CLASSES), "img_size": SIZE, "out_indices": [0, 1, 2],
         "decode_head": {"channels": 32, "pool_scales": [1, 2, 3], "num_classes": len(CLASSES),
                         "align_corners": False}}
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
SEED = 0
STEPS, BATCH, LR = 1500, 8, 8e-3
LOG = 250                       # steps between progress lines
N_EVAL = 200                    # held-out scenes (test split) for the accuracy
BUNDLED = (("scene1", SIZE), ("scene2", SIZE), ("scene3", SIZE), ("scene4", (144, 144)))
SPLITS = {"train": 1, "eval": 2, "bundled": 3}

CONFIG = """\
# A small UperNet on Spatial-Mamba segmenting handwritten digits in 96x96
# scenes (examples/digitseg/README.md), written by examples/digitseg/train.py:
# class 0 is the background, class 1 + d the strokes of a digit d.
MODEL:
  TYPE: spatial_mamba
  NAME: digitseg
  SPATIALMAMBA:
    EMBED_DIM: %d
    DEPTHS: [ %s ]
    D_STATE: 1
    MLP_RATIO: %s
  BACKBONE:
    OUT_INDICES: [ %s ]
  DECODE_HEAD:
    TYPE: uper_head
    CHANNELS: %d
    POOL_SCALES: [ %s ]
    NUM_CLASSES: %d
    ALIGN_CORNERS: false
DATA:
  IMG_SIZE: [ %d, %d ]
""" % (MODEL["embed_dim"], ", ".join(str(d) for d in MODEL["depths"]), MODEL["mlp_ratio"],
       ", ".join(str(i) for i in MODEL["out_indices"]), MODEL["decode_head"]["channels"],
       ", ".join(str(s) for s in MODEL["decode_head"]["pool_scales"]), len(CLASSES), SIZE[0], SIZE[1])


# ---------------------------------------------------------------- scenes

def background(rng, H, W):
    """A dark textured background: float [H, W, 3] in 0..255."""
    base = rng.uniform(5, 55, size=3)
    blot = np.stack([np.asarray(Image.fromarray(rng.uniform(-1, 1, (5, 5)).astype(np.float32), "F")
                                .resize((W, H), Image.BICUBIC)) for _ in range(3)], axis=2)
    img = base + blot * rng.uniform(10, 30)
    lines = Image.new("L", (W, H))
    draw = ImageDraw.Draw(lines)
    for _ in range(rng.randint(0, 5)):
        x0, y0, x1, y1 = (int(v) for v in rng.uniform(0, 1, 4) * [W, H, W, H])
        draw.line((x0, y0, x1, y1), fill=int(rng.uniform(20, 70)), width=int(rng.randint(1, 3)))
    img = img + np.asarray(lines, dtype=np.float64)[:, :, None] * rng.uniform(0.3, 1, size=3)
    return img + rng.normal(0, rng.uniform(2, 10), size=(H, W, 3))


def tint(rng):
    """A bright colour (r, g, b) in 0..255."""
    return np.array(colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.2, 1), rng.uniform(0.8, 1))) * 255


def render_scene(rng, images, labels, pool, size):
    """One scene of size (H, W) from the digits images[pool] (values 0..16):
    (RGB uint8 [H, W, 3], labels uint8 [H, W])."""
    H, W = size
    scale = min(H, W) / 96.0
    img = background(rng, H, W)
    lab = np.zeros((H, W), dtype=np.uint8)
    boxes = []
    for _ in range(rng.randint(2, 5)):
        k = pool[rng.randint(len(pool))]
        s = rng.uniform(24, 40) * scale
        h = int(round(s * rng.uniform(0.9, 1.1)))
        w = int(round(s * rng.uniform(0.8, 1.0)))
        for _ in range(50):
            y, x = rng.randint(0, H - h + 1), rng.randint(0, W - w + 1)
            if all(y + h + 2 <= b[0] or b[2] + 2 <= y or x + w + 2 <= b[1] or b[3] + 2 <= x
                   for b in boxes):
                break
        else:
            continue
        boxes.append((y, x, y + h, x + w))
        u8 = np.round(images[k] * (255.0 / 16.0)).astype(np.uint8)
        v = np.asarray(Image.fromarray(u8, "L").resize((w, h), Image.BICUBIC), dtype=np.float64)
        a = np.clip((v - 40.0) / 160.0, 0, 1)[:, :, None]
        img[y:y + h, x:x + w] = img[y:y + h, x:x + w] * (1 - a) + tint(rng) * a
        lab[y:y + h, x:x + w][v >= 128] = 1 + labels[k]
    return np.clip(np.round(img), 0, 255).astype(np.uint8), lab


def scene(data, split, i, size=SIZE):
    """Scene i of a split ('train': digits of the train split; 'eval' and
    'bundled': the test split's), the same on every call."""
    images, labels, tr, te = data
    rng = np.random.RandomState([SEED, SPLITS[split], i])
    return render_scene(rng, images, labels, tr if split == "train" else te, size)


def model_input(rgb):
    """What the runtime computes from an RGB image (uint8 [h, w, 3], as
    PIL's convert("RGB") gives it) for a segmentor: float32 [3, H, W]."""
    im = Image.fromarray(rgb, "RGB").resize((SIZE[1], SIZE[0]), Image.BILINEAR)
    x = np.asarray(im, dtype=np.float32) / np.float32(255.0)
    return ((x - MEAN) / STD).transpose(2, 0, 1)


def predict(sd, rgbs):
    """Class maps (int64 [h, w] each) of RGB images of any sizes as the
    runtime computes them: logits at SIZE, bilinear to the image's size."""
    out = []
    with torch.no_grad():
        for rgb in rgbs:
            x = torch.from_numpy(model_input(rgb))[None]
            y = sm.dense_forward(x, sd, MODEL)["logits"]
            y = F.interpolate(y, size=rgb.shape[:2], mode="bilinear", align_corners=False)
            out.append(y[0].argmax(0).numpy())
    return out


def scores(preds, gts):
    """(pixel accuracy, mean IoU over the classes of the ground truth,
    per-class IoU: NaN for a class not in the ground truth)."""
    n = len(CLASSES)
    conf = np.zeros((n, n), dtype=np.int64)
    for p, g in zip(preds, gts):
        conf += np.bincount(g.astype(np.int64).ravel() * n + p.ravel(), minlength=n * n).reshape(n, n)
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = np.where(conf.sum(1) > 0, inter / np.maximum(union, 1), np.nan)
    return float(inter.sum() / conf.sum()), float(np.nanmean(iou)), iou


# ---------------------------------------------------------------- training

def batch(data, step):
    """Training batch `step`: the model's inputs float32 [BATCH, 3, H, W]
    and the labels int64 [BATCH, H, W] of train scenes step * BATCH ..."""
    xs, ys = [], []
    for j in range(BATCH):
        rgb, lab = scene(data, "train", step * BATCH + j)
        xs.append(model_input(rgb))
        ys.append(lab)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys).astype(np.int64))


def train(data, evals, prog):
    """The trained state dict, from random_dense_state_dict(MODEL, SEED);
    every LOG steps a line with `prog` in front: the mean loss, the scores
    on the first 50 of the held-out scenes `evals` ([(rgb, labels)])."""
    torch.manual_seed(SEED)
    sd = sm.random_dense_state_dict(MODEL, seed=SEED)
    params = []
    for k, v in sd.items():
        if dt.trainable(k, v):
            v.requires_grad_(True)
            params.append(v)
    opt = torch.optim.Adam(params, lr=LR)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=STEPS, pct_start=0.1)
    t0 = time.time()
    tot = 0.0
    for step in range(STEPS):
        x, y = batch(data, step)
        loss = F.cross_entropy(sm.dense_forward(x, sd, MODEL)["logits"], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        tot += float(loss)
        if step % LOG == LOG - 1:
            acc, miou, _ = scores(predict(sd, [r for r, _ in evals[:50]]), [g for _, g in evals[:50]])
            print("%s: step %d loss %.4f  50 held-out scenes: pixel acc %.2f%% mIoU %.2f%% (%.0f s)"
                  % (prog, step + 1, tot / LOG, 100 * acc, 100 * miou, time.time() - t0))
            sys.stdout.flush()
            tot = 0.0
    return {k: v.detach().clone() for k, v in sd.items()}


def png_bytes(a, mode):
    buf = io.BytesIO()
    Image.fromarray(a, mode).save(buf, format="PNG")
    return buf.getvalue()


def write_file(path, data):
    """Writes bytes through a temporary name, so nothing is left half-written."""
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def digits_right(preds, gts):
    """(digits read right, digits): a digit (a connected group of labelled
    pixels, strokes 2 pixels apart joined) is read right when the digit
    class most of its pixels get is its own."""
    from scipy import ndimage           # scikit-learn's dependency
    right = n = 0
    for p, g in zip(preds, gts):
        group, k = ndimage.label(ndimage.binary_dilation(g > 0, iterations=2))
        for j in range(1, k + 1):
            m = (group == j) & (g > 0)
            n += 1
            right += int(np.bincount(g[m]).argmax() == np.bincount(p[m], minlength=11)[1:].argmax() + 1)
    return right, n


def report(sd, data, evals, prog):
    """Prints the scores of sd: the held-out scenes `evals` at 96x96, 50 of
    them drawn at 144x144, the bundled scenes."""
    preds = predict(sd, [r for r, _ in evals])
    acc, miou, iou = scores(preds, [g for _, g in evals])
    right, n = digits_right(preds, [g for _, g in evals])
    big = [scene(data, "eval", i, (144, 144)) for i in range(50)]
    acc_big, miou_big, _ = scores(predict(sd, [r for r, _ in big]), [g for _, g in big])
    for i, (name, size) in enumerate(BUNDLED):
        rgb, lab = scene(data, "bundled", i, size)
        a, m, _ = scores(predict(sd, [rgb]), [lab])
        print("%s: images/%s.png %dx%d  pixel acc %.2f%%  mIoU %.2f%%"
              % (prog, name, size[1], size[0], 100 * a, 100 * m))
    print("%s: IoU per class: %s" % (prog, " ".join("%s %.1f" % (c, 100 * v)
                                                   for c, v in zip(CLASSES, iou))))
    print("%s: %d held-out %dx%d scenes: pixel acc %.2f%%, mIoU %.2f%%, digits read right "
          "%d of %d (%.2f%%); 50 at 144x144: %.2f%%, %.2f%%"
          % (prog, N_EVAL, SIZE[1], SIZE[0], 100 * acc, 100 * miou, right, n, 100.0 * right / n,
             100 * acc_big, 100 * miou_big))


def main(out, evaluate):
    prog = "train.py"
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    sm.state_fusion = sm.state_fusion_conv       # the same sums in another order, faster
    t0 = time.time()
    data = dt.load_split(prog)
    evals = [scene(data, "eval", i) for i in range(N_EVAL)]
    if evaluate:
        sd, _ = ck.model_state_dict(ck.load_checkpoint(os.path.join(out, "digitseg.pth")))
        report(sd, data, evals, prog)
        return 0
    sd = train(data, evals, prog)
    t_train = time.time() - t0

    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    write_file(os.path.join(out, "digitseg.yaml"), CONFIG.encode())
    buf = io.BytesIO()
    ck.save_mmengine(buf, ck.segmentor_state_dict(sd), classes=CLASSES, palette=PALETTE,
                     optimizer_params=0, iteration=STEPS)
    write_file(os.path.join(out, "digitseg.pth"), buf.getvalue())
    for i, (name, size) in enumerate(BUNDLED):
        rgb, lab = scene(data, "bundled", i, size)
        write_file(os.path.join(out, "images", name + ".png"), png_bytes(rgb, "RGB"))
        write_file(os.path.join(out, "labels", name + ".png"), png_bytes(lab, "L"))
    report(sd, data, evals, prog)
    print("%s: training %.0f s, all %.0f s" % (prog, t_train, time.time() - t0))
    return 0


if __name__ == "__main__":
    EVALUATE = sys.argv[1:2] == ["--evaluate"]
    ARGS = sys.argv[1 + EVALUATE:]
    if len(ARGS) > 1 or any(a.startswith("-") for a in ARGS):
        sys.exit(print(__doc__) or 2)
    sys.exit(main(ARGS[0] if ARGS else HERE, EVALUATE))
