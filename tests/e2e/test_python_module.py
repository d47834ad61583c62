"""e2e: runtime/python/mambac.py, the compiled model from Python (ctypes +
numpy), on shared libraries from `mambac compile --emit shared`.

- a small classifier (batch 2, 32x40): m(x) for 2 and 5 images (the last
  chunk padded) against the compiled executable's --output and the float64
  PyTorch reference (rel. L2 <= 1e-4); m.info (kind, shapes, sizes, target,
  precision); m.threads over mc_rt_set/get_threads (same results on 1 and
  2 threads, bad values refused); m.top against a softmax done here; names
  from a 1000-class model (the ImageNet-1k names built in);
- a backbone with two outputs: a dict name -> array, each against the
  reference and the executable's .npz;
- a segmentor: m.classmap at the images' own sizes against the reference's
  logits resized (bilinear, align_corners as compiled) and argmax'ed;
- images: m.load_images against PIL doing the evaluation transform (within
  1/255 before normalization), against the executable's --image (the same
  logits); a bad file raises ImageError naming it, try_load_images goes on;
  a library built without image support (MAMBAC_NO_IMAGE=1) runs arrays
  and refuses images with a sentence;
- every documented exception: float64 (DTypeError, a TypeError), a list,
  a wrong shape (ShapeError, a ValueError), a non-contiguous array
  (LayoutError), missing / truncated / oversized weights (WeightsError),
  a missing file, a text file, a library that is no model, one whose
  mambac_info is not JSON or has no outputs, an object file
  (LibraryError), a .so for a CPU this machine is not (CPUError);
- `python3 mambac.py MODEL.so [IMAGE ...]`: the description, the top-k.
"""
import ctypes.util
import json
import os
import shutil
import sys

import e2e_common as E
import numpy as np
import torch

sys.path.insert(0, os.path.join(E.REPO, "runtime", "python"))
import mambac  # noqa: E402

t = E.Test("python_module")
sm, ck = E.sm, E.ck
MODULE = os.path.join(E.REPO, "runtime", "python", "mambac.py")
B, H, W = 2, 32, 40


def compile_model(label, cfg, weights, out, *extra):
    args = ["compile", cfg] + (["--weights", weights] if weights else []) + ["-o", out] + list(extra)
    rc, o, err, dt = t.run(args, timeout=600)
    return t.check(rc == 0, "%s: compiles (%.1fs)%s" % (label, dt, "" if rc == 0 else " rc=%s %s" % (rc, err[-600:])))


def rel(a, b):
    return sm.rel_l2(torch.from_numpy(np.asarray(a, np.float64)), torch.from_numpy(np.asarray(b, np.float64)))


def raises(label, exc, fn, must=(), ours=True):
    """fn() must raise exc (a mambac.Error unless not ours) whose message
    holds every string of must."""
    try:
        fn()
    except exc as e:
        msg = str(e)
        missing = [s for s in must if s not in msg]
        t.check((isinstance(e, mambac.Error) or not ours) and not missing and "\n" not in msg,
                "%s: %s: %s%s" % (label, type(e).__name__, msg[:200], "  MISSING %r" % missing if missing else ""))
        return
    except Exception as e:  # noqa: BLE001 -- the wrong exception is the failure reported
        t.check(False, "%s: raised %s: %s, want %s" % (label, type(e).__name__, e, exc.__name__))
        return
    t.check(False, "%s: no exception, want %s" % (label, exc.__name__))


# ------------------------------------------------------------ a classifier
cfg, sd, depths = E.custom_model(t, embed_dim=32, depths=(1, 2, 1, 1), num_classes=17, mlp_ratio=2.5,
                                 model_name="pycls")
wts = E.save_weights("safetensors", t.path("w.safetensors"), sd)
so, exe = t.path("cls.so"), t.path("cls")
shape = ["--batch", B, "--image-size", "%dx%d" % (H, W)]
have_so = compile_model("classifier --emit shared", cfg, wts, so, "--emit", "shared", *shape)
have_exe = compile_model("classifier executable", cfg, wts, exe, *shape)
x5 = E.image((5, 3, H, W), seed=11)
want5 = E.reference(x5, sd, depths)
m = None
if have_so:
    m = mambac.Model(so, threads=2)
    info = m.info
    t.check(info["kind"] == "classifier" and info["input"]["shape"] == [B, 3, H, W]
            and [o["shape"] for o in info["outputs"]] == [[B, 17]] and info["precision"] == "fp32"
            and info["weights_size"] == os.path.getsize(t.path("cls.weights"))
            and info["entry"] == "pycls_run" and info["alignment"] == 64 and info["target"],
            "m.info: classifier, input %s, outputs %s, %s, %s bytes of weights, entry %s, target %s" % (
                info["input"]["shape"], [o["shape"] for o in info["outputs"]], info["precision"],
                info["weights_size"], info["entry"], info["target"]))
    t.check(m.batch == B and m.input_shape == (B, 3, H, W) and m.kind == "classifier" and m.classes is None
            and "pycls" in repr(m), "m.batch, m.input_shape, m.kind, m.classes (None), repr: %r" % m)
    t.check(mambac.read_info(so) == info, "mambac.read_info(path) == m.info")
    y2 = m(x5[:2])
    t.check(isinstance(y2, np.ndarray) and y2.dtype == np.float32 and y2.shape == (2, 17),
            "m(x[2]): one output is the array itself, float32 %s" % (y2.shape,))
    y5 = m(x5)
    e5 = rel(y5, want5)
    t.check(y5.shape == (5, 17) and e5 <= E.TOL,
            "m(x[5]): 5 images in 3 runs of 2 (the last padded): rel L2 %.2e vs float64 (tol %.0e)" % (e5, E.TOL))
    t.check(np.array_equal(m(x5[4:5])[0], y5[4]) and np.array_equal(y5[:2], y2),
            "m(x): an image's logits do not depend on its chunk or padding")
    if have_exe:
        ys = []
        for i in (0, 2):
            np.save(t.path("xe.npy"), x5[i:i + 2])
            rc, o, err, dt = E.run_prog([exe, "--input", t.path("xe.npy"), "--output", t.path("ye.npy"),
                                         "--threads", "2"])
            ys.append(np.load(t.path("ye.npy")) if rc == 0 else None)
        ok = all(v is not None for v in ys)
        d = float(np.abs(np.concatenate(ys) - y5[:4]).max()) if ok else float("inf")
        t.check(ok and d <= 1e-5 * float(np.abs(y5).max()),
                "m(x) == the executable's --output (max |diff| %.2e)" % d)
    # threads
    m.threads = 1
    t1 = m.threads
    y5_1 = m(x5)
    m.threads = 2
    t2 = m.threads
    m.threads = 0
    t0 = m.threads
    t.check(t1 == 1 and t2 == 2 and t0 >= 1 and rel(y5_1, y5) <= 1e-6,
            "m.threads: 1 -> %d, 2 -> %d, 0 -> the default %d; 1 thread's logits == 2 threads' (%.1e)" % (
                t1, t2, t0, rel(y5_1, y5)))
    m.threads = 2
    for bad in (-1, 1.5, "2", True):
        try:
            m.threads = bad
            t.check(False, "m.threads = %r: accepted" % (bad,))
        except ValueError as e:
            t.check(m.threads == 2, "m.threads = %r: ValueError (%s), unchanged" % (bad, e))
    # top
    top = m.top(y5, 3)
    p = np.exp(want5 - want5.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    ok = len(top) == 5 and all(len(r) == 3 for r in top)
    for i, r in enumerate(top if ok else []):
        order = np.argsort(-p[i])[:3]
        ok = ok and [b.index for b in r] == list(order) and all(b.name is None for b in r)
        ok = ok and max(abs(b.prob - p[i, b.index]) for b in r) <= 1e-5
    t.check(ok, "m.top(y, 3): the reference's 3 best per image, softmax probabilities within 1e-5, no names")
    one = m.top(y5[0], 50)
    t.check(len(one) == 17 and abs(sum(b.prob for b in one) - 1) < 1e-9 and one[0] == top[0][0],
            "m.top(row, 50): one image's list, k cut to the 17 classes, probabilities summing to 1")
    raises("m.top(k=0)", ValueError, lambda: m.top(y5, 0), ours=False)
    # the input errors
    raises("float64 input", mambac.DTypeError, lambda: m(x5.astype(np.float64)), ("float64", "float32"))
    raises("float64 input is a TypeError", TypeError, lambda: m(x5.astype(np.float64)))
    raises("a list", mambac.DTypeError, lambda: m(x5.tolist()), ("numpy.ndarray",))
    raises("[5,3,32,41]", mambac.ShapeError, lambda: m(np.zeros((5, 3, H, W + 1), np.float32)),
           ("[5,3,32,41]", "[N,3,32,40]", "--image-size"))
    raises("[3,32,40] (no batch)", ValueError, lambda: m(x5[0]), ("[3,32,40]",))
    raises("[0,3,32,40]", mambac.ShapeError, lambda: m(x5[:0]))
    raises("a transposed view", mambac.LayoutError, lambda: m(np.zeros((5, 3, W, H), np.float32).transpose(0, 1, 3, 2)),
           ("C-contiguous", "ascontiguousarray"))
    raises("every other image", mambac.LayoutError, lambda: m(np.zeros((10, 3, H, W), np.float32)[::2]))

    # the weights
    wfile = t.path("cls.weights")
    raises("weights=missing", mambac.WeightsError, lambda: mambac.Model(so, weights=t.path("nope.weights")),
           ("nope.weights",))
    os.makedirs(t.path("alone"))
    shutil.copy(so, t.path("alone", "cls.so"))
    raises("no .weights beside the .so", mambac.WeightsError, lambda: mambac.Model(t.path("alone", "cls.so")),
           (os.path.join("alone", "cls.weights"), "weights="))
    with open(wfile, "rb") as f:
        blob = f.read()
    with open(t.path("short.weights"), "wb") as f:
        f.write(blob[:len(blob) // 2])
    raises("truncated weights", mambac.WeightsError, lambda: mambac.Model(so, weights=t.path("short.weights")),
           ("short.weights", "%d bytes" % (len(blob) // 2), "needs %d" % len(blob), "truncated"))
    with open(t.path("long.weights"), "wb") as f:
        f.write(blob + b"\0" * 64)
    raises("weights of another size", mambac.WeightsError, lambda: mambac.Model(so, weights=t.path("long.weights")),
           ("long.weights", "another model"))
    raises("weights error is an OSError", OSError, lambda: mambac.Model(so, weights=t.path("short.weights")))
    m2 = mambac.Model(so, weights=wfile)
    t.check(np.array_equal(m2(x5), y5), "Model(so, weights=PATH) gives the same logits")

# ------------------------------------------------------------ not a model
raises("a missing .so", mambac.LibraryError, lambda: mambac.Model(t.path("none.so")), ("none.so", "no such file"))
with open(t.path("text.so"), "w") as f:
    f.write("not a library\n")
raises("a text file", mambac.LibraryError, lambda: mambac.Model(t.path("text.so")), ("text.so",))
libm = ctypes.util.find_library("m")
libm_path = next((os.path.join(d, libm) for d in ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                                   "/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64")
                  if libm and os.path.exists(os.path.join(d, libm))), None)
if libm_path:
    raises("libm (no mambac_info)", mambac.LibraryError, lambda: mambac.Model(libm_path),
           ("mambac_info", "--emit shared"))
no_outputs = {"name": "a", "entry": "a_run", "input": {"shape": [1, 3, 8, 8]}, "outputs": [], "weights_size": 0,
              "scratch_size": 0}
for i, (label, text) in enumerate((("not JSON", '{"name": '), ("without outputs", json.dumps(no_outputs)))):
    src, lib = t.path("fake%d.c" % i), t.path("fake%d.so" % i)   # distinct names: dlopen keeps a path loaded
    with open(src, "w") as f:
        f.write("const char *mambac_info(void) { return %s; }\n" % json.dumps(text))   # a C string literal
    rc, o, err, dt = E.run_prog(["cc", "-shared", "-fPIC", src, "-o", lib])
    if rc == 0:
        raises("a library whose mambac_info is %s" % label, mambac.LibraryError,
               lambda: mambac.Model(lib), ("fake%d.so" % i, "not a model description"))
obj = t.path("cls_obj.o")
if compile_model("classifier --emit obj", cfg, wts, t.path("cls_obj"), "--emit", "obj", *shape):
    raises("an object file (--emit obj)", mambac.LibraryError, lambda: mambac.Model(obj), ("cls_obj.o",))
raises("a missing .so is an OSError", OSError, lambda: mambac.read_info(t.path("none.so")))
# a .so for a CPU this one is not (AMX on an AMD CPU, SSE4A on an Intel one)
if os.uname().machine == "x86_64":
    foreign = "znver5" if "amx_tile" in open("/proc/cpuinfo").read() else "sapphirerapids"
    fso = t.path("foreign.so")
    if compile_model("classifier for --cpu %s" % foreign, cfg, wts, fso, "--emit", "shared", "--cpu", foreign, *shape):
        raises("a .so for %s" % foreign, mambac.CPUError, lambda: mambac.Model(fso),
               ("foreign.so", "this CPU lacks"))
        t.check(mambac.read_info(fso)["cpu"] == foreign, "read_info of the foreign .so: cpu %s" % foreign)

# ------------------------------------------------------------ names: 1000 classes
cfg1k = E.write_config(t.path("k.yaml"), 16, [1, 1, 1, 1], num_classes=1000, mlp_ratio=2.0, name="k1000")
sd1k = sm.random_state_dict(16, [1, 1, 1, 1], 1000, 3, 2.0, seed=3)
w1k = E.save_weights("model", t.path("k.pth"), sd1k)
so1k = t.path("k1000.so")
if compile_model("1000 classes --emit shared", cfg1k, w1k, so1k, "--emit", "shared", "--image-size", "32"):
    mk = mambac.Model(so1k)
    names = mk.classes
    t.check(mk.info.get("classes_from") == "imagenet-1k" and isinstance(names, list) and len(names) == 1000,
            "1000 classes: m.classes from %s, %d names" % (mk.info.get("classes_from"), len(names or [])))
    yk = mk(E.image((1, 3, 32, 32), seed=2))
    b = mk.top(yk, 2)[0]
    t.check(b[0].name == names[b[0].index] and b[1].name == names[b[1].index],
            "m.top names the classes: %s" % [(v.index, v.name) for v in b])

# ------------------------------------------------------------ a backbone: two outputs
SM = "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 2, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"


def dense_model(name, extra):
    p = t.path(name + ".yaml")
    with open(p, "w") as f:
        f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: %s\n%s%s" % (name, SM, extra))
    return p, sm.dense_config(p)


bcfg, bc = dense_model("bb13", "  BACKBONE: {OUT_INDICES: [1, 3]}\n")
bsd = sm.random_dense_state_dict(bc, seed=3)
bw = t.path("bb13.pth")
ck.save_mmengine(bw, ck.segmentor_state_dict(bsd))
BH, BW = 35, 64
xb = np.random.RandomState(5).uniform(-1, 1, (3, 3, BH, BW)).astype(np.float32)
with torch.no_grad():
    wantb = {k: v.numpy() for k, v in sm.dense_forward(torch.from_numpy(xb).double(), bsd, bc,
                                                         dtype=torch.float64).items()}
bso, bexe = t.path("bb13.so"), t.path("bb13")
bshape = ["--batch", 1, "--image-size", "%dx%d" % (BH, BW)]
if compile_model("backbone --emit shared", bcfg, bw, bso, "--emit", "shared", *bshape):
    mb = mambac.Model(bso)
    yb = mb(xb)
    ok = isinstance(yb, dict) and list(yb) == ["stage1", "stage3"] and mb.kind == "backbone"
    errs = [rel(yb[k], wantb[k]) for k in ("stage1", "stage3")] if ok else [float("inf")]
    t.check(ok and max(errs) <= E.TOL and all(yb[k].shape == wantb[k].shape for k in yb),
            "backbone: m(x[3]) is a dict %s (kind %s), rel L2 %s vs float64" % (
                list(yb) if isinstance(yb, dict) else type(yb), mb.kind, ", ".join("%.1e" % e for e in errs)))
    if ok and compile_model("backbone executable", bcfg, bw, bexe, *bshape):
        np.save(t.path("xb.npy"), xb[1:2])
        rc, o, err, dt = E.run_prog([bexe, "--input", t.path("xb.npy"), "--output", t.path("yb.npz")])
        z = np.load(t.path("yb.npz")) if rc == 0 else {}
        t.check(rc == 0 and all(np.allclose(z[k][0], yb[k][1], rtol=1e-5, atol=1e-5) for k in yb),
                "backbone: m(x)[name][1] == the executable's .npz for that image (rc=%s)" % rc)

# ------------------------------------------------------------ a segmentor: class maps
scfg, scn = dense_model("seg", "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n  DECODE_HEAD: {CHANNELS: 16, POOL_SCALES: [1, 3], NUM_CLASSES: 5, "
                               "ALIGN_CORNERS: true}\n")
ssd = sm.random_dense_state_dict(scn, seed=4)
sw = t.path("seg.pth")
palette = [[10 * i, 255 - 20 * i, 7 * i] for i in range(5)]
ck.save_mmengine(sw, ck.segmentor_state_dict(ssd, auxiliary=True), classes=["c%d" % i for i in range(5)],
                 palette=palette)
SH, SW = 41, 38
sso = t.path("seg.so")
mseg = None
if compile_model("segmentor --emit shared", scfg, sw, sso, "--emit", "shared", "--image-size", "%dx%d" % (SH, SW)):
    mseg = mambac.Model(sso)
    xs = np.random.RandomState(6).uniform(-1, 1, (2, 3, SH, SW)).astype(np.float32)
    logits = mseg(xs)
    t.check(mseg.kind == "segmentor" and mseg.classes == ["c%d" % i for i in range(5)]
            and mseg.palette == palette and mseg.info.get("align_corners") is True
            and isinstance(logits, np.ndarray) and logits.shape == (2, 5, SH, SW),
            "segmentor: kind, classes and palette from the checkpoint, align_corners, logits %s" % (logits.shape,))
    sizes = [(57, 90), (20, 13)]
    maps = mseg.classmap(logits, sizes)
    ok = len(maps) == 2
    for i, (w0, h0) in enumerate(sizes if ok else []):
        up = sm.resize(torch.from_numpy(logits[i:i + 1]).double(), (h0, w0), True)[0].numpy()
        top2 = np.sort(up, axis=0)[-2:]
        clear = (top2[1] - top2[0]) > 1e-4
        ok = ok and maps[i].dtype == np.int32 and maps[i].shape == (h0, w0)
        ok = ok and (maps[i][clear] == up.argmax(axis=0)[clear]).all()
    t.check(ok, "m.classmap(logits, sizes): int32 maps %s, the argmax of the logits resized bilinearly "
            "(align_corners) to each size" % [v.shape for v in maps])
    same = mseg.classmap(logits[0])
    t.check(same.shape == (SH, SW) and (same == logits[0].argmax(axis=0)).all(),
            "m.classmap(one image's logits): at the model's size, the argmax")
    raises("classmap of a classifier", mambac.Error, lambda: m.classmap(y5) if m else None, ("segmentor",))
    raises("classmap, wrong shape", mambac.ShapeError, lambda: mseg.classmap(logits[:, :4]))

# ------------------------------------------------------------ images
from PIL import Image, ImageOps  # noqa: E402

rng = np.random.RandomState(9)
imgs = []
for i, (w0, h0, fmt, mode) in enumerate([(64, 48, "JPEG", "RGB"), (50, 77, "PNG", "RGB"), (40, 40, "PNG", "L"),
                                         (90, 33, "PNG", "RGBA"), (33, 60, "JPEG", "L")]):
    a = rng.randint(0, 256, (h0, w0, {"RGB": 3, "L": 1, "RGBA": 4}[mode]), np.uint8)
    a = (a.astype(np.float32) * 0.3 + np.linspace(0, 170, w0)[None, :, None]).astype(np.uint8)  # smooth-ish
    p = t.path("im%d.%s" % (i, "jpg" if fmt == "JPEG" else "png"))
    Image.fromarray(a[:, :, 0] if mode == "L" else a, mode).save(p, fmt, quality=90)
    imgs.append(p)
with open(t.path("broken.jpg"), "wb") as f:
    f.write(open(imgs[0], "rb").read()[:200])


def pil_preprocess(path, pre, H, W):
    """The evaluation transform with PIL: RGB8 [H, W, 3] after resize/crop."""
    im = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    filt = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR, "nearest": Image.NEAREST}[pre["interpolation"]]
    if pre["crop"]:
        s = int(min(H, W) / pre["crop_pct"])
        w0, h0 = im.size
        nw, nh = (s, int(s * h0 / w0)) if w0 <= h0 else (int(s * w0 / h0), s)
        im = im.resize((nw, nh), filt)
        top, left = int(round((nh - H) / 2.0)), int(round((nw - W) / 2.0))
        im = im.crop((left, top, left + W, top + H))
    else:
        im = im.resize((W, H), filt)
    return np.asarray(im)


if m is not None and m.info.get("images"):
    pre = m.info["preprocess"]
    x, sizes = m.load_images(imgs)
    t.check(x.shape == (5, 3, H, W) and x.dtype == np.float32 and pre["size"] == [H, W]
            and sizes == [Image.open(p).size for p in imgs],
            "m.load_images: x %s, sizes %s, preprocess %s" % (x.shape, sizes, pre))
    mean, std = np.array(pre["mean"]), np.array(pre["std"])
    worst = 0.0
    for i, p in enumerate(imgs):
        want = pil_preprocess(p, pre, H, W).astype(np.float64) / 255.0
        got = x[i].transpose(1, 2, 0) * std + mean
        worst = max(worst, float(np.abs(got - want).max()))
    t.check(worst <= 1.0 / 255 + 1e-5, "m.load_images == PIL's evaluation transform within 1/255 (worst %.4f)" % worst)
    if have_exe:
        rc, o, err, dt = E.run_prog([exe, "--image"] + imgs[2:4] + ["--output", t.path("yi.npy")])
        yi = np.load(t.path("yi.npy")) if rc == 0 and os.path.exists(t.path("yi.npy")) else None
        d = float(np.abs(yi - m(x[2:4])).max()) if yi is not None and yi.shape == (2, 17) else float("inf")
        t.check(d <= 1e-4, "m(m.load_images(files)) == the executable's --image FILES --output (rc=%s, max "
                "|diff| %.2e) %s" % (rc, d, err.strip()[-200:]))
    raises("load_images with a truncated JPEG", mambac.ImageError,
           lambda: m.load_images([imgs[0], t.path("broken.jpg")]), ("broken.jpg",))
    raises("load_images with a missing file", mambac.ImageError, lambda: m.load_images([t.path("none.png")]),
           ("none.png",))
    xg, sg, good, errors = m.try_load_images([imgs[0], t.path("broken.jpg"), imgs[1], t.path("none.png")])
    t.check(xg.shape[0] == 2 and good == [imgs[0], imgs[1]] and [e[0] for e in errors] ==
            [t.path("broken.jpg"), t.path("none.png")] and np.array_equal(xg, x[:2]),
            "try_load_images: the 2 good files read, the 2 bad ones listed with their sentences: %s" %
            [e[1][:80] for e in errors])
    if mseg is not None:
        xs2, ss2 = mseg.load_images(imgs[:2])
        worst = 0.0
        for i, p in enumerate(imgs[:2]):
            want = pil_preprocess(p, mseg.info["preprocess"], SH, SW).astype(np.float64) / 255.0
            got = xs2[i].transpose(1, 2, 0) * std + mean
            worst = max(worst, float(np.abs(got - want).max()))
        t.check(mseg.info["preprocess"]["crop"] is False and xs2.shape == (2, 3, SH, SW)
                and worst <= 1.0 / 255 + 1e-5,
                "segmentor: load_images resizes to the compiled size without a crop, as PIL (worst %.4f)" % worst)
        mp = mseg.classmap(mseg(xs2), ss2)
        t.check([v.shape for v in mp] == [(h0, w0) for (w0, h0) in ss2],
                "segmentor: classmap of loaded images at their own sizes %s" % [v.shape for v in mp])
    # the script
    rc, out, err, dt = E.run_prog([sys.executable, MODULE, so, imgs[0], imgs[1], "--top", "2"])
    t.check(rc == 0 and out.count("1. class ") == 2 and imgs[1] in out,
            "python3 mambac.py cls.so IMG IMG --top 2: rc=%s, %d lines" % (rc, len(out.splitlines())))
    rc, out, err, dt = E.run_prog([sys.executable, MODULE, so, t.path("broken.jpg")])
    t.check(rc == 1 and "broken.jpg" in err and "Traceback" not in err,
            "python3 mambac.py with a broken image: rc=%s %s" % (rc, err.strip()[-200:]))
elif m is not None:
    print("  note: the .so reads no images (mambac built without libjpeg/libpng): that part is skipped")
# a library built without image support (MAMBAC_NO_IMAGE=1): arrays only, images refused with a sentence
rc, o, err, dt = t.run(["compile", cfg, "--weights", wts, "--emit", "shared", "-o", t.path("noimg")] + shape,
                       env=dict(os.environ, MAMBAC_NO_IMAGE="1"), timeout=600)
if t.check(rc == 0, "MAMBAC_NO_IMAGE=1 compile --emit shared (rc=%s)" % rc):
    mn = mambac.Model(t.path("noimg.so"))
    t.check(mn.info["images"] is False and np.array_equal(mn(x5), y5) if m is not None else False,
            "without image support: \"images\": false, the same logits")
    raises("load_images without image support", mambac.Error, lambda: mn.load_images(imgs[:1]),
           ("noimg.so", "without image support"))
rc, out, err, dt = E.run_prog([sys.executable, MODULE, so])
t.check(rc == 0 and '"entry": "pycls_run"' in out, "python3 mambac.py cls.so: the description (rc=%s)" % rc)
rc, out, err, dt = E.run_prog([sys.executable, MODULE, t.path("text.so")])
t.check(rc == 1 and "text.so" in err and "Traceback" not in err,
        "python3 mambac.py text.so: rc=%s %s" % (rc, err.strip()[-200:]))

t.finish()
