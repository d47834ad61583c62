"""e2e: dense prediction -- Spatial-Mamba backbones (OUT_INDICES) and UperNet
segmentors (DECODE_HEAD) from mmengine-layout checkpoints, against the
project's float64 PyTorch reference (tests/reference/spatial_mamba.py,
dense_forward), at odd sizes and batch 2: `mambac run` with the ref and llvm
backends, a compiled executable (.npz for several outputs, .npy for one,
`--argmax` for the class map, from run and the executable), a shared
library loaded with ctypes.  Every
result within 1e-4 relative L2 of float64 (the class map: equal to the
reference's argmax wherever the reference's top two logits differ by more
than 1e-3)."""
import ctypes
import os

import e2e_common as E
import numpy as np
import torch

t = E.Test("dense")
sm, ck = E.sm, E.ck

SM = "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 2, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"
MODELS = [
    # name, extra MODEL keys, batch, H, W
    ("seg", "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
            "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 24, POOL_SCALES: [1, 2, 3, 6], NUM_CLASSES: 7}\n",
     2, 67, 45),
    ("seg_ac", "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
               "  DECODE_HEAD: {CHANNELS: 16, POOL_SCALES: [1, 3], NUM_CLASSES: 3, ALIGN_CORNERS: true}\n",
     1, 41, 70),
    ("bb", "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n", 2, 53, 37),
    ("bb13", "  BACKBONE: {OUT_INDICES: [1, 3]}\n", 1, 35, 64),
]


def write_model(name, extra):
    p = t.path(name + ".yaml")
    with open(p, "w") as f:
        f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: %s\n%s%s" % (name, SM, extra))
    return p


def compare(label, got, want):
    """got: dict name -> array (float32), want: dict name -> float64 tensor."""
    if sorted(got) != sorted(want):
        t.check(False, "%s: outputs %s, want %s" % (label, sorted(got), sorted(want)))
        return
    for k in sorted(want):
        w = want[k].numpy()
        g = got[k]
        if g.shape != w.shape or g.dtype != np.float32:
            t.check(False, "%s: %s is %s %s, want float32 %s" % (label, k, g.dtype, g.shape, w.shape))
            continue
        e = float(np.linalg.norm(g.astype(np.float64) - w) / max(np.linalg.norm(w), 1e-30))
        t.check(np.isfinite(g).all() and e <= E.TOL, "%s: %s%s rel L2 %.2e" % (label, k, list(g.shape), e))


def load_out(path, names):
    """An output file as a dict: .npz by array name, .npy as the one output."""
    if path.endswith(".npz"):
        z = np.load(path)
        return {k: z[k] for k in z.files}
    return {names[0]: np.load(path)}


for name, extra, B, H, W in MODELS:
    cfg_path = write_model(name, extra)
    cfg = sm.dense_config(cfg_path)
    sd = sm.random_dense_state_dict(cfg, seed=3)
    head = cfg["decode_head"] is not None
    full = ck.segmentor_state_dict(sd, auxiliary=head)
    wpath = t.path(name + ".pth")
    ck.save_mmengine(wpath, full, classes=["c%d" % i for i in range(cfg["decode_head"]["num_classes"])]
                     if head else None)
    x = torch.from_numpy(np.random.RandomState(5).uniform(-1, 1, (B, 3, H, W)).astype(np.float32))
    xp = t.path(name + "_x.npy")
    np.save(xp, x.numpy())
    with torch.no_grad():
        want = sm.dense_forward(x.double(), sd, cfg, dtype=torch.float64)
    if head:
        want = {"seg_logits": want["logits"]}
    names = sorted(want) if not head else ["seg_logits"]
    out = t.path(name + (".npy" if head else ".npz"))
    for be in ("ref", "llvm"):
        am = t.path(name + "_run_argmax.npy")
        rc, o, err, dt = t.run(["run", cfg_path, "--weights", wpath, "--input", xp, "--output", out,
                                "--backend", be] + (["--argmax", am] if head else []), timeout=600)
        if t.check(rc == 0, "%s: run --backend %s rc=%s %.1fs %s" % (name, be, rc, dt, err.strip()[-300:])):
            got = load_out(out, names)
            compare("%s %s" % (name, be), got, want)
            if head:
                a = np.load(am)
                t.check(a.dtype == np.int32 and (a == got["seg_logits"].argmax(axis=1)).all(),
                        "%s %s: run --argmax is the argmax of its logits" % (name, be))
    # a compiled executable for this CPU, weights embedded
    exe = t.path(name + "_exe")
    rc, o, err, dt = t.run(["compile", cfg_path, "--weights", wpath, "--batch", B, "--image-size", "%dx%d" % (H, W),
                            "-o", exe], timeout=600)
    if t.check(rc == 0, "%s: compile rc=%s %.1fs %s" % (name, rc, dt, err.strip()[-300:])):
        out2 = t.path(name + "_exe" + (".npy" if head else ".npz"))
        rc, o, err, dt = E.run_prog([exe, "--input", xp, "--output", out2])
        if t.check(rc == 0, "%s: exe rc=%s %s" % (name, rc, err.strip()[-300:])):
            compare("%s exe" % name, load_out(out2, names), want)
        if head:
            am = t.path(name + "_argmax.npy")
            rc, o, err, dt = E.run_prog([exe, "--input", xp, "--argmax", am])
            if t.check(rc == 0, "%s: exe --argmax rc=%s %s" % (name, rc, err.strip()[-300:])):
                a = np.load(am)
                w = want["seg_logits"].numpy()
                ref = w.argmax(axis=1)
                top2 = np.sort(w, axis=1)[:, -2:, :, :]
                clear = (top2[:, 1] - top2[:, 0]) > 1e-3
                t.check(a.dtype == np.int32 and a.shape == ref.shape and (a[clear] == ref[clear]).all(),
                        "%s: --argmax int32 %s equals the reference's class map (%d of %d pixels clear)" % (
                            name, list(a.shape), int(clear.sum()), clear.size))
            rc, o, err, dt = E.run_prog([exe, "--input", xp, "--top", "5"])
            t.check(rc == 1 and "--top" in err and "--argmax" in err,
                    "%s: exe --top refused: rc=%s %s" % (name, rc, err.strip()[:200]))
        else:
            rc, o, err, dt = E.run_prog([exe, "--input", xp, "--output", t.path("one.npy")])
            t.check(rc == 1 and ".npz" in err, "%s: several outputs into .npy refused: rc=%s %s" % (
                name, rc, err.strip()[:200]))

# a shared library: one pointer per output, its header declares each
cfg_path = t.path("bb13.yaml")
lib = t.path("bb13.so")
rc, o, err, dt = t.run(["compile", cfg_path, "--batch", 1, "--image-size", "35x64", "--emit", "shared", "-o", lib],
                       timeout=600)
if t.check(rc == 0, "bb13: compile --emit shared rc=%s" % rc):
    hdrs = [f for f in os.listdir(t.work) if f.startswith("bb13") and f.endswith(".h")]
    hdr = open(t.path(hdrs[0])).read() if hdrs else ""
    t.check("stage1" in hdr and "stage3" in hdr, "bb13: the header %s names both outputs" % hdrs)
    ctypes.CDLL(lib)  # it loads (calls through ctypes: tests/e2e/test_outputs.py)

t.finish()
