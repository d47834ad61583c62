#!/usr/bin/python3
"""tests/gpu/images.py -- the CUDA executables' users' I/O on a GPU:
`--image DIR --top 5 --json`, `--save-input`, a segmentor's `--mask DIR` /
`--overlay DIR`, and an unreadable image among good ones, against the CPU
executables of the same models (tests/gpu/run.sh).

  images.py gen DIR [MAMBAC]   (no GPU; needs torch, PIL, nvcc)
  images.py check DIR          (the GPU machine; needs numpy, PIL if there)

gen writes under DIR: a 1000-class classifier (ImageNet-1k names; random
weights, the head scaled so that the probabilities are distinct) and a
small UperNet segmentor with a checkpoint palette, both compiled for batch
2 with `mambac compile --target cuda` in fp32 and bf16 (cuda/, embedded
weights, libjpeg/libpng linked in) and for this CPU (cpu/); imgs/: eight
JPEG/PNG images of odd sizes (RGB, RGBA, gray, palette, progressive, EXIF
orientation 6), a text file (skipped) and a truncated JPEG; then runs the
CPU executables here and keeps what they printed and wrote (want/): the
`--top 10 --json` of the directory, the masks and overlays, and per pair of
images `--save-input` and `--output`; manifest.json says what ran.  MAMBAC
defaults to build/mambac.  Without nvcc it writes only a manifest saying so,
and check skips.

check runs the CUDA executables the same way (outputs under DIR/out) and
compares with the CPU's: every run of the directory exits 1 naming the
truncated file with the eight others done; --save-input bit for bit (the
same C decodes and resizes); fp32: each image's top-5 classes the CPU's
except where the CPU's logits are a near-tie, probabilities within 1e-3,
logits (--output) within 1e-4 relative L2; bf16: top-1 the CPU's on >= 7 of
8 images, probabilities within 2e-2, logits within 2e-2; masks equal to the
CPU's on >= 99.5% (fp32) / 97% (bf16) of the pixels, overlays equal where
the masks are.  Without PIL the masks are compared as files and, if they
differ, the class maps of --argmax instead.  Prints one "check images ..."
line per executable (tests/gpu/run.sh copies them into its summary) and
exits 1 on a failure.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
PRECS = ("fp32", "bf16")
CLS_HW = 48
SEG_HW = (40, 56)
PALETTE = [[200, 10, 10], [10, 200, 10], [10, 10, 200], [250, 250, 0], [0, 250, 250]]
# limits (the brief of the check: see the docstring)
PROB_TOL = {"fp32": 1e-3, "bf16": 2e-2}
LOGIT_TOL = {"fp32": 1e-4, "bf16": 2e-2}
MASK_MIN = {"fp32": 0.995, "bf16": 0.97}
TOP1_MIN = 7                      # of the 8 images, bf16
TIE = 1e-4                        # fp32: a near-tie of the CPU's logits, relative to 1 + |z|


def run(argv, cwd):
    """(rc, stdout, stderr) of a program run in cwd."""
    try:
        p = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=600)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except (OSError, subprocess.TimeoutExpired) as e:
        return "error", "", str(e)


def rel_l2(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


# ------------------------------------------------------------------ gen

def write_images(d):
    """Eight images of odd sizes and modes, a text file, a truncated JPEG:
    the names of the good ones in the directory's order."""
    from PIL import Image
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(11)
    # (name, width, height, PIL mode, save options)
    spec = [("im0.png", 90, 61, "RGB", {}), ("im1.jpg", 64, 64, "RGB", {"quality": 92}),
            ("im2.png", 37, 120, "RGBA", {}), ("im3.jpg", 200, 150, "RGB", {"quality": 85}),
            ("im4.png", 50, 49, "L", {}), ("im5.jpg", 121, 33, "RGB", {"quality": 90, "progressive": True}),
            ("im6.png", 77, 91, "P", {}), ("im7.jpg", 160, 97, "RGB", {"quality": 88})]
    names = []
    for name, w, h, mode, opt in spec:
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)), ((xx + yy) * 7) % 256], -1)
        a = np.clip(a + rng.normal(0, 40, a.shape), 0, 255).astype(np.uint8)
        a[: h // 3] //= 2                            # some structure, not only gradients and noise
        im = Image.fromarray(a)
        if mode == "RGBA":
            im = im.convert("RGBA")
            im.putalpha(Image.fromarray((rng.random((h, w)) * 255).astype(np.uint8)))
        elif mode == "L":
            im = im.convert("L")
        elif mode == "P":
            im = im.convert("P", palette=Image.ADAPTIVE, colors=37)
        if name == "im7.jpg":                        # stored sideways, EXIF says turn it
            ex = Image.Exif()
            ex[0x0112] = 6
            opt = dict(opt, exif=ex.tobytes())
        im.save(os.path.join(d, name), **opt)
        names.append(name)
    with open(os.path.join(d, "im3.jpg"), "rb") as f:
        head = f.read(300)
    with open(os.path.join(d, "broken.jpg"), "wb") as f:
        f.write(head)
    with open(os.path.join(d, "notes.txt"), "w") as f:
        f.write("not an image: a directory's other files are skipped\n")
    return names


def rough_input(path, hw):
    """An image resized to hw and normalized, float64 [3, H, W]: near the
    executables' transform, enough to choose a bias from."""
    from PIL import Image
    a = np.asarray(Image.open(path).convert("RGB").resize(hw[::-1], Image.BILINEAR), dtype=np.float64) / 255
    return ((a - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]).transpose(2, 0, 1)


def write_models(d, names):
    """cls.yaml/.pth and seg.yaml/.pth in d (the segmentor's bias from the images names)."""
    import torch
    sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
    sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
    import checkpoints as ck
    import e2e_common as E
    import spatial_mamba as sm
    cfg = E.write_config(os.path.join(d, "cls.yaml"), 16, [1, 1], num_classes=1000, mlp_ratio=2.0, img_size=CLS_HW,
                         name="cls_images")
    sd = sm.random_state_dict(16, [1, 1], 1000, 3, 2.0, seed=4)
    sd["head.weight"] = sd["head.weight"] * 30.0    # distinct probabilities, not all ~0.1%
    E.save_weights("model", os.path.join(d, "cls.pth"), sd)
    seg = os.path.join(d, "seg.yaml")
    with open(seg, "w") as f:
        f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: seg_images\n"
                "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 1, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"
                "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
                "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 16, POOL_SCALES: [1, 2], NUM_CLASSES: 5}\n"
                "DATA:\n  IMG_SIZE: [%d, %d]\n" % SEG_HW)
    dcfg = sm.dense_config(seg)
    sds = sm.random_dense_state_dict(dcfg, seed=6)
    # Random weights give one class nearly everywhere (the features' common
    # part dominates): take 60% of each class's mean logit over these images
    # off through conv_seg's bias, so that every map has several classes
    # (the largest 65-92% of an image) and a constant mask fails the check.
    sds["decode_head.conv_seg.bias"] = torch.zeros_like(sds["decode_head.conv_seg.bias"])
    x = torch.from_numpy(np.stack([rough_input(os.path.join(d, "imgs", n), SEG_HW) for n in names]))
    with torch.no_grad():
        z = sm.dense_forward(x, sds, dcfg, dtype=torch.float64)["logits"]
    sds["decode_head.conv_seg.bias"] = (-0.6 * z.mean(dim=(0, 2, 3))).float()
    ck.save_mmengine(os.path.join(d, "seg.pth"), ck.segmentor_state_dict(sds),
                     classes=["c%d" % i for i in range(5)], palette=PALETTE)
    return cfg, seg


def runs(exe, pairs, prec_dir, kind):
    """One executable's runs as (key, argv), paths relative to DIR: the directory, then each
    pair of images with --save-input and --output (--argmax too for the segmentor).
    prec_dir: where its outputs go."""
    out = []
    if kind == "cls":
        out.append(("dir", [exe, "--image", "imgs", "--top", "10" if prec_dir.startswith("want") else "5",
                            "--json"]))
    else:
        out.append(("dir", [exe, "--image", "imgs", "--mask", prec_dir + "/masks", "--overlay",
                            prec_dir + "/overlays"]))
    for k, (a, b) in enumerate(pairs):
        argv = [exe, "--image", "imgs/" + a, "imgs/" + b, "--save-input", "%s/x%d.npy" % (prec_dir, k),
                "--output", "%s/y%d.npy" % (prec_dir, k)]
        if kind == "seg":
            argv += ["--argmax", "%s/a%d.npy" % (prec_dir, k)]
        out.append(("pair%d" % k, argv))
    return out


def gen(d, mambac):
    d = os.path.abspath(d)
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(os.path.join(d, "cuda"))
    os.makedirs(os.path.join(d, "cpu"))
    nvcc = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK)
                                    else None)
    if not nvcc:
        with open(os.path.join(d, "manifest.json"), "w") as f:
            json.dump({"skipped": "no nvcc where 'gen' ran: the CUDA executables were not built"}, f)
        print("images: no nvcc here: the CUDA executables' image check is not built")
        return 0
    names = write_images(os.path.join(d, "imgs"))
    cls, seg = write_models(d, names)
    jobs = []
    for m, cfg in (("cls", cls), ("seg", seg)):
        w = os.path.join(d, m + ".pth")
        jobs.append([mambac, "compile", cfg, "--weights", w, "--batch", "2", "-o", os.path.join(d, "cpu", m)])
        for p in PRECS:
            jobs.append([mambac, "compile", cfg, "--weights", w, "--batch", "2", "--target", "cuda", "--precision",
                         p, "-o", os.path.join(d, "cuda", "%s_%s" % (m, p))])
    procs = []
    for j in jobs:             # two at a time (nvcc and LLVM are each single-threaded here)
        procs.append((j, subprocess.Popen(j, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)))
        if len(procs) >= 2:
            jj, p = procs.pop(0)
            if p.wait():
                print("images: %s failed:\n%s" % (" ".join(jj), p.stdout.read().decode()[-2000:]))
                return 1
    for jj, p in procs:
        if p.wait():
            print("images: %s failed:\n%s" % (" ".join(jj), p.stdout.read().decode()[-2000:]))
            return 1
    for f in os.listdir(os.path.join(d, "cuda")):   # only the executables travel
        if f.endswith((".cu", ".weights")):
            os.remove(os.path.join(d, "cuda", f))
    pairs = [names[i:i + 2] for i in range(0, len(names), 2)]
    man = {"images": ["imgs/" + n for n in names], "bad": "imgs/broken.jpg", "pairs": pairs, "runs": {}}
    for m in ("cls", "seg"):
        wd = "want/" + m
        for sub in ("", "/masks", "/overlays"):
            os.makedirs(os.path.join(d, wd + sub), exist_ok=True)
        for key, argv in runs("cpu/" + m, pairs, wd, m):
            rc, out, err = run([os.path.join(d, argv[0])] + argv[1:], d)
            want_rc = 1 if key == "dir" else 0
            if rc != want_rc:
                print("images: cpu %s %s: rc=%s, want %d: %s" % (m, key, rc, want_rc, err.strip()[-500:]))
                return 1
            if key == "dir" and m == "cls":
                with open(os.path.join(d, wd, "top.json"), "w") as f:
                    f.write(out)
                doc = json.loads(out)
                if [j["file"] for j in doc["images"]] != man["images"]:
                    print("images: cpu cls: the JSON's files %s" % [j["file"] for j in doc["images"]])
                    return 1
            man["runs"]["%s %s" % (m, key)] = {"rc": rc, "stderr": err.strip()}
    # how close the CPU's top classes and class maps come to ties (what bf16 has to get right)
    doc = json.load(open(os.path.join(d, "want/cls/top.json")))
    gaps = [j["top"][0]["logit"] - j["top"][1]["logit"] for j in doc["images"]]
    print("images: cls top-1 - top-2 logit gaps on the CPU: %s" % " ".join("%.3f" % g for g in gaps))
    for k in range(len(pairs)):
        y, a = np.load(os.path.join(d, "want/seg/y%d.npy" % k)), np.load(os.path.join(d, "want/seg/a%d.npy" % k))
        s = np.sort(y, axis=1)
        gap = s[:, -1] - s[:, -2]
        print("images: seg pair %d: class shares %s; top-2 gap < 1%% of the logits' range on %.1f%% of pixels" % (
            k, " / ".join(" ".join("%.2f" % v for v in np.bincount(r.ravel(), minlength=5) / r.size) for r in a),
            100 * float((gap < 0.01 * (y.max() - y.min())).mean())))
    with open(os.path.join(d, "manifest.json"), "w") as f:
        json.dump(man, f, indent=1)
    size = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(d) for f in fs)
    print("images: ok: %s (%.1f MiB; cuda/: %s)" % (d, size / 2**20, ", ".join(
        "%s %.1f MiB" % (f, os.path.getsize(os.path.join(d, "cuda", f)) / 2**20)
        for f in sorted(os.listdir(os.path.join(d, "cuda"))))))
    return 0


# ------------------------------------------------------------------ check

def load_rgb(path):
    """An 8-bit RGB array of a PNG, or None without PIL."""
    try:
        from PIL import Image
    except ImportError:
        return None
    return np.asarray(Image.open(path).convert("RGB"))


def dir_run_ok(man, rc, err):
    """The directory run: exit 1, the truncated file named, '1 of 9'."""
    n = len(man["images"]) + 1
    bad = os.path.basename(man["bad"])
    if rc != 1 or bad not in err or ("1 of %d" % n) not in err:
        return "dir run: rc=%s, want 1 naming %s and '1 of %d': %s" % (rc, bad, n, err.strip()[-300:])
    return ""


def check_pairs(d, man, exe, m, od, prec, fails):
    """The runs of each pair: --save-input bit for bit, --output's relative error; for the
    segmentor the --argmax agreement.  Returns (worst logits error, argmax agreement or None)."""
    worst, agree = 0.0, []
    for key, argv in runs(exe, man["pairs"], od, m)[1:]:
        k = int(key[4:])
        rc, out, err = run([os.path.join(d, argv[0])] + argv[1:], d)
        if rc != 0:
            fails.append("%s: rc=%s %s" % (key, rc, err.strip()[-300:]))
            continue
        x, xw = np.load(os.path.join(d, od, "x%d.npy" % k)), np.load(os.path.join(d, "want", m, "x%d.npy" % k))
        if x.dtype != xw.dtype or x.shape != xw.shape or x.tobytes() != xw.tobytes():
            diff = float(np.abs(x - xw).max()) if x.shape == xw.shape else float("nan")
            fails.append("%s: --save-input differs from the CPU's (%s %s, max diff %g)" % (key, x.dtype,
                                                                                          list(x.shape), diff))
        y, yw = np.load(os.path.join(d, od, "y%d.npy" % k)), np.load(os.path.join(d, "want", m, "y%d.npy" % k))
        if y.shape != yw.shape or not np.isfinite(y).all():
            fails.append("%s: --output %s, want %s, finite %s" % (key, list(y.shape), list(yw.shape),
                                                                 bool(np.isfinite(y).all())))
            continue
        e = rel_l2(y, yw)
        worst = max(worst, e)
        if e > LOGIT_TOL[prec]:
            fails.append("%s: --output rel L2 %.2e > %.0e" % (key, e, LOGIT_TOL[prec]))
        if m == "seg":
            a, aw = np.load(os.path.join(d, od, "a%d.npy" % k)), np.load(os.path.join(d, "want", m, "a%d.npy" % k))
            agree.append(float((a == aw).mean()) if a.shape == aw.shape else 0.0)
    return worst, (min(agree) if agree else None)


def check_cls(d, man, prec, fails):
    """The classifier: the directory's --top 5 --json against the CPU's --top 10."""
    exe, od = "cuda/cls_" + prec, "out/cls_" + prec
    os.makedirs(os.path.join(d, od), exist_ok=True)
    argv = runs(exe, man["pairs"], od, "cls")[0][1]
    rc, out, err = run([os.path.join(d, argv[0])] + argv[1:], d)
    why = dir_run_ok(man, rc, err)
    if why:
        fails.append(why)
    want = json.load(open(os.path.join(d, "want/cls/top.json")))["images"]
    try:
        doc = json.loads(out)
        got = doc["images"]
    except (ValueError, KeyError) as e:
        fails.append("--json: not the JSON expected (%s): %s" % (e, out[:200]))
        return "", 0
    if [j["file"] for j in got] != man["images"]:
        fails.append("--json: files %s, want %s" % ([j["file"] for j in got], man["images"]))
        return "", 0
    same5 = same1 = ties = 0
    dprob = 0.0
    for g, w in zip(got, want):
        z = {e["class"]: e["logit"] for e in w["top"]}
        p = {e["class"]: e["prob"] for e in w["top"]}
        names = {e["class"]: e["name"] for e in w["top"]}
        floor = w["top"][-1]["prob"]          # the CPU's 10th: what a class outside its top-10 has at most
        gc, wc = [e["class"] for e in g["top"]], [e["class"] for e in w["top"][:5]]
        same1 += gc[0] == wc[0]
        same5 += gc == wc
        for r, e in enumerate(g["top"]):
            c = e["class"]
            dprob = max(dprob, abs(e["prob"] - p[c]) if c in p else e["prob"] - floor)
            if c in names and e["name"] != names[c]:
                fails.append("%s: class %d named %r, by the CPU %r" % (g["file"], c, e["name"], names[c]))
            if prec == "fp32" and c != wc[r]:
                zz = z.get(c, -np.inf)
                if abs(zz - z[wc[r]]) <= TIE * (1 + abs(z[wc[r]])):
                    ties += 1
                else:
                    fails.append("%s: rank %d class %d, the CPU's %d (logits %.5f vs %.5f)" % (
                        g["file"], r + 1, c, wc[r], zz, z[wc[r]]))
    n = len(got)
    if dprob > PROB_TOL[prec]:
        fails.append("probabilities differ by %.2e > %.0e" % (dprob, PROB_TOL[prec]))
    if prec == "bf16" and same1 < TOP1_MIN:
        fails.append("top-1 the CPU's on %d of %d images (>= %d needed)" % (same1, n, TOP1_MIN))
    return "top-5 %d/%d (near-ties %d), top-1 %d/%d, prob max diff %.1e, %.2f ms" % (
        same5, n, ties, same1, n, dprob, doc.get("time_ms", -1)), n


def check_seg(d, man, prec, fails):
    """The segmentor: masks and overlays of the directory against the CPU's."""
    exe, od = "cuda/seg_" + prec, "out/seg_" + prec
    for sub in ("masks", "overlays"):
        os.makedirs(os.path.join(d, od, sub), exist_ok=True)
    argv = runs(exe, man["pairs"], od, "seg")[0][1]
    rc, out, err = run([os.path.join(d, argv[0])] + argv[1:], d)
    why = dir_run_ok(man, rc, err)
    if why:
        fails.append(why)
    worst, nbytes_same, blend_bad, pil = 1.0, 0, 0, True
    for f in man["images"]:
        stem = os.path.splitext(os.path.basename(f))[0] + ".png"
        mp, mw = os.path.join(d, od, "masks", stem), os.path.join(d, "want/seg/masks", stem)
        op, ow = os.path.join(d, od, "overlays", stem), os.path.join(d, "want/seg/overlays", stem)
        if not (os.path.exists(mp) and os.path.exists(op)):
            fails.append("%s: no mask or overlay written" % f)
            worst = 0.0
            continue
        nbytes_same += open(mp, "rb").read() == open(mw, "rb").read()
        m, w = load_rgb(mp), load_rgb(mw)
        if m is None:
            pil = False
            continue
        o, ow_ = load_rgb(op), load_rgb(ow)
        if m.shape != w.shape or o.shape != w.shape:
            fails.append("%s: mask %s / overlay %s, the CPU's %s" % (f, m.shape, o.shape, w.shape))
            worst = 0.0
            continue
        same = (m == w).all(axis=2)
        worst = min(worst, float(same.mean()))
        blend_bad += int((o[same] != ow_[same]).any())
    n = len(man["images"])
    if blend_bad:
        fails.append("overlays differ from the CPU's where the masks agree on %d images" % blend_bad)
    return worst, nbytes_same, n, pil


def check(d):
    d = os.path.abspath(d)
    try:
        man = json.load(open(os.path.join(d, "manifest.json")))
    except (OSError, ValueError) as e:
        print("check images             FAIL no manifest in %s (%s): run images.py gen" % (d, e))
        return 1
    if "skipped" in man:
        print("check images             SKIP %s" % man["skipped"])
        return 0
    gpu = run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"], d)[1].strip()
    print("images: GPU %s; PIL %s" % (gpu or "?", "yes" if _has_pil() else "no"))
    if os.path.isdir(os.path.join(d, "out")):
        shutil.rmtree(os.path.join(d, "out"))
    lines, nfail = [], 0
    for prec in PRECS:
        for m in ("cls", "seg"):
            fails = []
            if m == "cls":
                what, n = check_cls(d, man, prec, fails)
            else:
                worst, nsame, n, pil = check_seg(d, man, prec, fails)
                what = "masks %d/%d files identical" % (nsame, n)
            err, agree = check_pairs(d, man, "cuda/%s_%s" % (m, prec), m, "out/%s_%s" % (m, prec), prec, fails)
            if m == "seg":
                if pil:
                    what += ", pixels equal >= %.2f%%" % (100 * worst)
                    if worst < MASK_MIN[prec]:
                        fails.append("masks equal on %.2f%% of an image's pixels (>= %.1f%% needed)" % (
                            100 * worst, 100 * MASK_MIN[prec]))
                elif nsame < n:         # no PIL: the class maps of --argmax instead
                    what += ", no PIL: judged by --argmax"
                    if (agree or 0) < MASK_MIN[prec]:
                        fails.append("--argmax equal on %.2f%% of the pixels (>= %.1f%% needed)" % (
                            100 * (agree or 0), 100 * MASK_MIN[prec]))
                if agree is not None:
                    what += ", argmax equal >= %.2f%%" % (100 * agree)
            what += ", save-input bit-equal, logits rel %.1e" % err if not any(
                "save-input" in f for f in fails) else ", logits rel %.1e" % err
            line = "check images %-11s %-5s %s %s" % (m, prec, "FAIL" if fails else "ok", what)
            lines.append(line)
            print(line)
            for f in fails:
                print("    - " + f)
            nfail += bool(fails)
    return 1 if nfail else 0


def _has_pil():
    try:
        return importlib.util.find_spec("PIL") is not None
    except ValueError:
        return False


def main(argv):
    if len(argv) >= 3 and argv[1] == "gen":
        return gen(argv[2], argv[3] if len(argv) > 3 else os.path.join(ROOT, "build", "mambac"))
    if len(argv) == 3 and argv[1] == "check":
        return check(argv[2])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
