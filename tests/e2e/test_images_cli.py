"""e2e: users' I/O on the command line -- `--image`, class names and
probabilities (`--top`, `--json`, `--labels`), `--save-input`, and a
segmentor's `--mask` / `--overlay`, through a compiled executable and
`mambac run`, against an independent computation: the evaluation transform
done here with PIL + numpy, the project's float64 PyTorch reference
(tests/reference/spatial_mamba.py) on that tensor, softmax and argmax in
numpy, the class map brought back to each image's size with torch's
bilinear interpolation.

- a 1000-class classifier compiled for batch 2, five images of odd sizes
  (JPEG and PNG, a directory): every image printed under its name, in the
  directory's order, its top-5 a valid top-5 of the reference's logits with
  the reference's probabilities (to the printed 0.1%) and ImageNet-1k names
  (spot-checked by hand: 0 tench, 1 goldfish, ...); --json the same numbers
  to 1e-4; the time line counts 5 images in batches of 2; --labels FILE
  names; `mambac run --image` prints the same;
- --save-input equals the PIL + numpy tensor (one level); --output [n, 1000];
- checkpoint class names (meta.dataset_meta.classes) compiled in;
- one unreadable image: named on stderr, exit 1, the others printed;
- a segmentor with a checkpoint palette: --mask is the palette's colour of
  the argmax of the reference logits upsampled to the image's own size
  (>= 99.5% of pixels; the rest are near-ties), --overlay the 50% blend
  (one level), several images into directories;
- refusals (exit 1 or 2, one line): --mask on a classifier, --mask FILE
  with several images, --output with more images than the batch, --json
  without --top, a labels file of the wrong length, --image with --input.
"""
import json
import os
import re

import e2e_common as E
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

t = E.Test("images_cli")
sm, ck = E.sm, E.ck
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
# a few ImageNet-1k names by index, as every listing of the classes has them
KNOWN = {0: "tench", 1: "goldfish", 2: "great white shark", 281: "tabby", 999: "toilet tissue"}


def pil_input(path, H, W, crop, resample):
    """The public evaluation transform with PIL and numpy: float64 [3, H, W]."""
    im = Image.open(path).convert("RGB")
    if crop:
        s = int(min(H, W) / 0.875)
        w, h = im.size
        nw, nh = (s, int(s * h / w)) if w <= h else (int(s * w / h), s)
        im = im.resize((nw, nh), resample)
        top, left = int(round((nh - H) / 2.0)), int(round((nw - W) / 2.0))
        im = im.crop((left, top, left + W, top + H))
    else:
        im = im.resize((W, H), resample)
    a = np.asarray(im, dtype=np.float64) / 255.0
    return ((a - MEAN) / STD).transpose(2, 0, 1)


def softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def parse_top(out):
    """{name: [(rank, class name, percent)]} from --top's lines for people."""
    res, cur = {}, None
    for ln in out.splitlines():
        if ln.endswith(":") and not ln.startswith(" "):
            cur = ln[:-1]
            res[cur] = []
            continue
        m = re.match(r"\s+(\d+)\. (.+) ([0-9.]+)%$", ln)
        if m and cur is not None:
            res[cur].append((int(m.group(1)), m.group(2), float(m.group(3))))
    return res


def check_top(label, tops, files, logits, names):
    """Each file's printed top against the reference logits."""
    ok, why = list(tops) == files, ""
    for f, z in zip(files, logits):
        p = softmax(z)
        got = tops.get(f, [])
        order = np.argsort(-z, kind="stable")
        if len(got) != 5:
            ok, why = False, "%s: %d lines" % (f, len(got))
            continue
        for r, (rank, name, pct) in enumerate(got):
            c = names.index(name) if name in names else -1
            fifth = z[order[4]]
            if rank != r + 1 or c < 0 or z[c] < fifth - 1e-6 * (1 + abs(fifth)) or abs(100 * p[c] - pct) > 0.051:
                ok, why = False, "%s: line %d '%s %.1f%%' (class %d, reference %.3f%%)" % (
                    f, rank, name, pct, c, 100 * p[c] if c >= 0 else -1)
    t.check(ok, "%s: every image's top-5 names and probabilities are the reference's %s" % (label, why))


# ------------------------------------------------------------ a classifier
H = W = 48
cfg = E.write_config(t.path("cls.yaml"), 16, [1, 1], num_classes=1000, mlp_ratio=2.0, img_size=H,
                     name="cls_images")
sd = sm.random_state_dict(16, [1, 1], 1000, 3, 2.0, seed=4)
sd["head.weight"] = sd["head.weight"] * 30.0   # distinct probabilities, not all ~0.1%
wts = E.save_weights("model", t.path("cls.pth"), sd)
exe = t.path("cls_exe")
rc, out, err, dt = t.run(["compile", cfg, "--weights", wts, "--batch", "2", "-o", exe], timeout=300)
t.check(rc == 0, "compile a 1000-class classifier for batch 2: rc=%s %s" % (rc, err.strip()[-300:]))

imgdir = t.path("imgs")
os.makedirs(imgdir)
rng = np.random.default_rng(0)
sizes = [(90, 61), (64, 64), (37, 120), (200, 150), (50, 49)]
files = []
for i, (w, h) in enumerate(sizes):
    a = (rng.random((h, w, 3)) * 255).astype(np.uint8)
    a[: h // 2] //= 2                      # some structure, not only noise
    p = os.path.join(imgdir, "im%d.%s" % (i, "jpg" if i % 2 else "png"))
    Image.fromarray(a).save(p, quality=92) if i % 2 else Image.fromarray(a).save(p)
    files.append(p)
with open(os.path.join(imgdir, "notes.txt"), "w") as f:   # not an image name: skipped in a directory
    f.write("not an image\n")
x_all = np.stack([pil_input(p, H, W, True, Image.BICUBIC) for p in files])
want = E.reference(x_all.astype(np.float32), sd, [1, 1])
names = [None] * 1000
for k, v in KNOWN.items():
    names[k] = v

rc, out, err, dt = E.run_prog([exe, "--image", imgdir, "--top", "5"])
tops = parse_top(out)
printed = sorted({n for v in tops.values() for _, n, _ in v})
# the names printed for known classes must be those names; collect the rest
ok_names = True
for f, z in zip(files, want):
    for rank, name, pct in tops.get(f, []):
        c = int(np.argsort(-z, kind="stable")[rank - 1])
        if c in KNOWN and name != KNOWN[c]:
            ok_names = False
        if names[c] is None:
            names[c] = name
t.check(rc == 0 and ok_names, "exe --image DIR --top 5: rc=%s, %d images printed, names %s" % (
    rc, len(tops), printed[:4]))
check_top("exe --image DIR", tops, files, want, names)
t.check(re.search(r"time: [0-9.]+ ms for 5 images \(batches of 2, \d+ threads\)", out) is not None,
        "exe: the time line counts 5 images in batches of 2: %s" % out.strip().splitlines()[-1:])

# the known names: an image whose best class is a known one is rare, so ask
# for the whole ranking of one image and look the known classes up
rc, out, err, dt = E.run_prog([exe, "--image", files[0], "--top", "1000"])
full = parse_top(out).get(files[0], [])
order = np.argsort(-want[0], kind="stable")
seen = {int(order[r - 1]): n for r, n, _ in full}
t.check(rc == 0 and len(full) == 1000 and all(seen.get(k) == v for k, v in KNOWN.items()),
        "exe --top 1000: ImageNet-1k names by index (%s)" % {k: seen.get(k) for k in KNOWN})

rc, out, err, dt = E.run_prog([exe, "--image"] + files[:3] + ["--top", "5", "--json"])
try:
    doc = json.loads(out)
    jt = doc["images"]
    ok = [j["file"] for j in jt] == files[:3] and doc["time_ms"] >= 0
    for j, z in zip(jt, want[:3]):
        p = softmax(z)
        for e in j["top"]:
            ok = ok and abs(e["prob"] - p[e["class"]]) <= 1e-4 and abs(e["logit"] - z[e["class"]]) <= 1e-3 * (
                1 + abs(z[e["class"]]))
            ok = ok and (e["class"] not in KNOWN or e["name"] == KNOWN[e["class"]])
        ok = ok and [e["class"] for e in j["top"]] == [int(c) for c in np.argsort(-z, kind="stable")[:5]]
except (ValueError, KeyError, TypeError) as e:
    ok, doc = False, str(e)
t.check(rc == 0 and ok, "exe --json: files, classes, probabilities (1e-4) and logits of the reference")

labels = t.path("labels.txt")
with open(labels, "w") as f:
    f.write("".join("thing %d\n" % i for i in range(1000)))
rc, out, err, dt = E.run_prog([exe, "--image", files[1], "--top", "3", "--labels", labels])
got = parse_top(out).get(files[1], [])
t.check(rc == 0 and [n for _, n, _ in got] == ["thing %d" % c for c in np.argsort(-want[1], kind="stable")[:3]],
        "exe --labels FILE: the file's names (%s)" % [n for _, n, _ in got])

# --save-input and --output for a batch that fits
xi, yo = t.path("xi.npy"), t.path("yo.npy")
rc, out, err, dt = E.run_prog([exe, "--image", files[2], files[3], "--save-input", xi, "--output", yo])
ok = rc == 0 and os.path.exists(xi) and os.path.exists(yo)
if ok:
    xs, ys = np.load(xi), np.load(yo)
    dx = float(np.abs(xs - x_all[2:4]).max() * STD.min() * 255) if xs.shape == (2, 3, H, W) else 1e9
    dy = float(np.linalg.norm(ys - want[2:4]) / np.linalg.norm(want[2:4])) if ys.shape == (2, 1000) else 1e9
    ok = dx <= 1.0 + 1e-3 and dy <= 1e-4
    t.check(ok, "exe --save-input / --output: the PIL tensor within %.2f levels, logits rel L2 %.1e" % (dx, dy))
else:
    t.check(False, "exe --save-input / --output: rc=%s %s" % (rc, err.strip()[-300:]))

# mambac run --image: the same
rc, out, err, dt = t.run(["run", cfg, "--weights", wts, "--image", imgdir, "--top", "5"])
check_top("mambac run --image DIR", parse_top(out), files, want, names)
t.check(rc == 0 and "(ref backend, 5 images)" in out, "mambac run --image: rc=%s, its time line" % rc)

# one unreadable image among good ones: named, the others done, exit 1
bad = t.path("broken.jpg")
with open(bad, "wb") as f:
    f.write(open(files[1], "rb").read()[:300])
rc, out, err, dt = E.run_prog([exe, "--image", files[0], bad, files[2], "--top", "2"])
tops = parse_top(out)
t.check(rc == 1 and sorted(tops) == sorted([files[0], files[2]]) and "broken.jpg" in err and "1 of 3" in err,
        "exe: a truncated JPEG among three: named, the two others printed, exit 1 (%s)" % err.strip()[:160])

# checkpoint class names compiled in
cfg7 = E.write_config(t.path("c7.yaml"), 16, [1, 1], num_classes=7, mlp_ratio=2.0, img_size=32, name="c7")
sd7 = sm.random_state_dict(16, [1, 1], 7, 3, 2.0, seed=5)
w7 = t.path("c7.pth")
cls7 = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta"]
ck.save_mmengine(w7, sd7, classes=cls7)
exe7 = t.path("c7_exe")
rc, out, err, dt = t.run(["compile", cfg7, "--weights", w7, "-o", exe7])
rc2, out2, err2, _ = E.run_prog([exe7, "--image", files[4], "--top", "7"])
x7 = pil_input(files[4], 32, 32, True, Image.BICUBIC)[None]
z7 = E.reference(x7.astype(np.float32), sd7, [1, 1])[0]
got = [n for _, n, _ in parse_top(out2).get(files[4], [])]
t.check(rc == 0 and rc2 == 0 and got == [cls7[c] for c in np.argsort(-z7, kind="stable")],
        "the checkpoint's meta.dataset_meta.classes printed (UTF-8 kept): %s" % got)

# ------------------------------------------------------------ a segmentor
SH, SW = 40, 56
seg_cfg = t.path("seg.yaml")
with open(seg_cfg, "w") as f:
    f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: seg_images\n"
            "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"
            "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
            "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 16, POOL_SCALES: [1, 2], NUM_CLASSES: 5}\n"
            "DATA:\n  IMG_SIZE: [%d, %d]\n" % (SH, SW))
dcfg = sm.dense_config(seg_cfg)
sds = sm.random_dense_state_dict(dcfg, seed=6)
palette = [[200, 10, 10], [10, 200, 10], [10, 10, 200], [250, 250, 0], [0, 250, 250]]
sw = t.path("seg.pth")
ck.save_mmengine(sw, ck.segmentor_state_dict(sds), classes=["c%d" % i for i in range(5)], palette=palette)
sexe = t.path("seg_exe")
rc, out, err, dt = t.run(["compile", seg_cfg, "--weights", sw, "-o", sexe], timeout=300)
t.check(rc == 0, "compile a segmentor with a checkpoint palette: rc=%s %s" % (rc, err.strip()[-300:]))


def want_map(path):
    """The reference class map at the image's own size, and that image."""
    im = np.asarray(Image.open(path).convert("RGB"))
    x = torch.from_numpy(pil_input(path, SH, SW, False, Image.BILINEAR)[None])
    with torch.no_grad():
        z = sm.dense_forward(x, sds, dcfg, dtype=torch.float64)["logits"]
        z = F.interpolate(z, size=im.shape[:2], mode="bilinear", align_corners=False)[0]
    top2 = torch.topk(z, 2, dim=0).values
    return z.argmax(0).numpy(), (top2[0] - top2[1]).numpy(), im


def check_seg(label, path, mask, overlay):
    cls, gap, im = want_map(path)
    pal = np.array(palette, dtype=np.uint8)
    m = np.asarray(Image.open(mask).convert("RGB")) if os.path.exists(mask) else None
    o = np.asarray(Image.open(overlay).convert("RGB")) if os.path.exists(overlay) else None
    if m is None or o is None or m.shape != im.shape or o.shape != im.shape:
        t.check(False, "%s: mask %s / overlay %s, image %s" % (label, None if m is None else m.shape,
                                                               None if o is None else o.shape, im.shape))
        return
    same = (m == pal[cls]).all(axis=2)
    frac = float(same.mean())
    clear = gap > 1e-4
    blend = np.abs(o.astype(int) - (im.astype(int) + m.astype(int)) / 2.0).max()
    t.check(frac >= 0.995 and same[clear].mean() >= 0.999 and blend <= 1.0,
            "%s: mask %dx%d = palette[reference argmax] on %.2f%% of pixels (%.2f%% where the top two differ by "
            "> 1e-4), overlay the 50%% blend within %.1f level" % (label, im.shape[1], im.shape[0], 100 * frac,
                                                                    100 * same[clear].mean(), blend))


m1, o1 = t.path("m1.png"), t.path("o1.png")
rc, out, err, dt = E.run_prog([sexe, "--image", files[0], "--mask", m1, "--overlay", o1])
t.check(rc == 0 and "90x61 class map -> %s, %s" % (m1, o1) in out, "seg exe --image --mask --overlay: rc=%s %s" % (rc, err.strip()[:200]))
check_seg("seg exe", files[0], m1, o1)
md, od = t.path("masks"), t.path("overlays")
os.makedirs(md)
os.makedirs(od)
rc, out, err, dt = E.run_prog([sexe, "--image", files[2], files[3], "--mask", md, "--overlay", od])
t.check(rc == 0, "seg exe: two images into --mask DIR --overlay DIR: rc=%s %s" % (rc, err.strip()[:200]))
for p in files[2:4]:
    stem = os.path.splitext(os.path.basename(p))[0] + ".png"
    check_seg("seg exe (DIR) " + stem, p, os.path.join(md, stem), os.path.join(od, stem))
m2, o2 = t.path("m2.png"), t.path("o2.png")
rc, out, err, dt = t.run(["run", seg_cfg, "--weights", sw, "--image", files[3], "--mask", m2, "--overlay", o2])
t.check(rc == 0, "mambac run --image --mask --overlay: rc=%s %s" % (rc, err.strip()[:200]))
check_seg("mambac run", files[3], m2, o2)

# ------------------------------------------------------------ refusals
for label, argv, code, words in (
        ("--mask on a classifier", [exe, "--image", files[0], "--mask", t.path("x.png")], 1, ["classifier"]),
        ("--mask FILE with two images", [sexe, "--image", files[0], files[1], "--mask", t.path("x.png")], 1,
         ["existing directory"]),
        ("--output with 5 images, batch 2", [exe, "--image", imgdir, "--output", t.path("y.npy")], 1,
         ["--batch 5"]),
        ("--json without --top", [exe, "--image", files[0], "--json"], 2, ["--top"]),
        ("--image and --input", [exe, "--image", files[0], "--input", xi, "--top", "1"], 2, ["not both"]),
        ("a labels file of 3 lines", [exe, "--image", files[0], "--top", "1", "--labels", t.path("l3.txt")], 1,
         ["3 class names", "1000 classes"]),
        ("a missing image", [exe, "--image", t.path("nope.jpg"), "--top", "1"], 1, ["nope.jpg"]),
        ("--top on a segmentor", [sexe, "--image", files[0], "--top", "1"], 1, ["--top"])):
    if "l3.txt" in " ".join(argv):
        with open(t.path("l3.txt"), "w") as f:
            f.write("a\nb\nc\n")
    rc, out, err, dt = E.run_prog(argv)
    flat = err.lower()
    t.check(rc == code and len(err.strip().splitlines()) == 1 and all(w.lower() in flat for w in words)
            and not os.path.exists(t.path("x.png")) and not os.path.exists(t.path("y.npy")),
            "refused: %s: rc=%s %s" % (label, rc, err.strip()[:200]))

# ------------------------------------------------------------ CUDA: the same options compiled in
if os.access(os.environ.get("NVCC", "/usr/local/cuda/bin/nvcc"), os.X_OK) or E.shutil.which("nvcc"):
    cexe = t.path("cls_cuda")
    rc, out, err, dt = t.run(["compile", cfg, "--weights", wts, "--target", "cuda", "-o", cexe], timeout=600)
    rc2, hout, _, _ = E.run_prog([cexe, "--help"])
    rc3, _, err3, _ = E.run_prog([cexe, "--image", files[0], "--mask", t.path("x.png")])
    t.check(rc == 0 and rc2 == 0 and "--image" in hout and "ImageNet-1k names" in hout and rc3 == 1
            and "classifier" in err3, "CUDA executable: --image and names in --help, --mask refused before the GPU")
else:
    print("  note: no nvcc: the CUDA executable's options are not checked here")

t.finish()
