"""e2e: `mambac run --backend llvm` (the native code generator, compiled in
memory by the JIT) against the float64 PyTorch reference: the published
sizes (tiny, small, base) at reduced odd, non-square resolutions with batch 2,
and a custom config (EMBED_DIM 32, depths [1,2,1,1], 17 classes, MLP_RATIO
2.5) at several odd shapes; weights in the training-checkpoint layout and as
.safetensors.  Relative L2 error of the logits <= 1e-4.  Determinism: the
same run twice gives identical bytes."""
import os

import numpy as np

import e2e_common as E

t = E.Test("llvm_jit")

# ---- published sizes: (size, batch, H, W, checkpoint kind)
for k, (size, B, H, W, kind) in enumerate([("tiny", 2, 45, 38, "train"),
                                           ("small", 2, 38, 45, "safetensors"),
                                           ("base", 2, 45, 38, "safetensors")]):
    cfg, C, depths, ncls, mlp, inc = E.config_for(t, size)
    sd = E.sm.random_state_dict(C, depths, ncls, inc, mlp, seed=300 + k)
    w = E.save_weights(kind, t.path("%s.%s" % (size, "pth" if kind == "train" else "safetensors")),
                       sd, ema="shared" if size != "tiny" else None)
    x = E.image((B, inc, H, W), seed=30 + k)
    t.run_logits("%s %dx%dx%d %s llvm" % (size, B, H, W, kind), cfg, w, x, sd, depths,
                 backend="llvm")
    os.unlink(w)

# ---- custom config at odd shapes
cfg, sd, depths = E.custom_model(t)
wt = E.save_weights("train", t.path("custom_train.pth"), sd)
ws = E.save_weights("safetensors", t.path("custom.safetensors"), sd)
for k, (B, H, W, w) in enumerate([(1, 33, 47, wt), (3, 45, 38, ws), (2, 57, 32, wt),
                                  (1, 32, 32, ws)]):
    x = E.image((B, 3, H, W), seed=40 + k)
    t.run_logits("custom %dx%dx%d %s llvm" % (B, H, W, os.path.basename(w)), cfg, w, x, sd,
                 depths, backend="llvm")

# ---- determinism: identical bytes run to run; 1 thread within tolerance
x = E.image((2, 3, 41, 35), seed=50)
want = E.reference(x, sd, depths)
xin = t.path("xd.npy")
np.save(xin, x)
outs = []
for i, threads in enumerate((2, 2, 1)):
    y = t.path("yd%d.npy" % i)
    rc, out, err, dt = t.run(["run", cfg, "--weights", ws, "--input", xin, "--output", y,
                              "--backend", "llvm", "--threads", threads])
    t.check(rc == 0, "determinism run %d (--threads %d): rc=%s %s" % (i, threads, rc,
                                                                     err.strip()[:300]))
    E.check_logits(t, "determinism run %d (--threads %d)" % (i, threads), y, want, dt)
    outs.append(open(y, "rb").read() if os.path.exists(y) else None)
t.check(outs[0] is not None and outs[0] == outs[1],
        "llvm backend: two identical runs give byte-identical outputs")
print("  info: --threads 1 output %s --threads 2 output bit for bit" % (
    "equals" if outs[0] == outs[2] else "differs from"))
t.finish()
