"""e2e: --precision bf16 on the LLVM CPU backend (AVX512-BF16).

- A small model (the native tests' custom config) compiled to an
  executable with --precision bf16 for cooperlake (AVX512-BF16 without AMX:
  the vdpbf16ps kernels): logits within 2e-2 (relative L2) of the
  float64 PyTorch reference, and not bit-equal to the fp32 build's (which is
  within 1e-4): bf16 ran; its assembly has vdpbf16ps, the fp32 one none;
  `dump --format kernels --precision bf16` puts bf16=1 on the schedules of
  the GEMMs and convs and nowhere else; `mambac verify --backend llvm
  --precision bf16` passes kernel by kernel (tolerance 2e-2).
- Spatial-Mamba-T at 64x64 through `mambac run --backend llvm --precision
  bf16`: within 2e-2 of the float64 reference.
- The bundled digit classifier (examples/digits) on the 360 held-out test
  images of scikit-learn's digits, made as train.py makes them: the bf16
  top-1 equals the fp32 top-1 on at least 99% of them.
- Refusals, one line, exit 2: a CPU without avx512bf16 (skylake-avx512,
  x86-64-v3, one entry of a --cpu list, --cpu portable), riscv64, tf32 on an
  LLVM target, --precision with the ref backend, with --disable-pass=tile.
- The bf16 executable under qemu-x86_64 -cpu Skylake-Server (no AVX-512 in
  qemu): one sentence naming avx512bf16 and --precision fp32, exit 1, no
  SIGILL.
- AArch64 (bfdot, +bf16): the small model for neoverse-v1 under
  qemu-aarch64 -cpu max within 2e-2 of the reference (its assembly has
  bfdot); under -cpu cortex-a72 one sentence naming bf16; the generic CPU
  (no BF16) refused at compile time.
Needs a CPU with AVX512-BF16 for everything but the refusals (skipped with
a note otherwise)."""
import os
import re
import shutil
import sys

import e2e_common as E
import numpy as np

t = E.Test("bf16_cpu")
TOL16 = 2e-2

# ------------------------------------------------------------ refusals (any x86-64 host)
cfg, sd, depths = E.custom_model(t, embed_dim=16, depths=(1, 1, 1, 1), num_classes=10, mlp_ratio=2.0,
                                 model_name="bfm")
weights = E.save_weights("model", t.path("w.pth"), sd)
H, W = 32, 40
x = E.image((2, 3, H, W), seed=3)
xin = t.path("x.npy")
np.save(xin, x)


def usage_refused(label, args, must):
    rc, out, err, dt = t.run(args, timeout=120)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("Try 'mambac")]
    ok = rc == 2 and len(lines) == 1 and all(s in err for s in must)
    t.check(ok, "%s: exit 2, one line (rc=%s): %s" % (label, rc, err.strip()[:300]))


base = ["compile", cfg, "--weights", weights, "-o", t.path("never"), "--precision", "bf16"]
usage_refused("--cpu skylake-avx512", base + ["--cpu", "skylake-avx512"], ["skylake-avx512", "avx512bf16"])
usage_refused("--cpu x86-64-v3", base + ["--cpu", "x86-64-v3"], ["x86-64-v3", "avx512bf16"])
usage_refused("--cpu sapphirerapids,x86-64-v4", base + ["--cpu", "sapphirerapids,x86-64-v4"],
              ["x86-64-v4", "avx512bf16"])
usage_refused("--cpu portable", base + ["--cpu", "portable"], ["cpu x86-64 ", "avx512bf16"])
usage_refused("riscv64", base + ["--target", "riscv64-linux-gnu"], ["riscv64", "--precision fp32"])
usage_refused("tf32 on an LLVM target", base[:-1] + ["tf32"], ["tf32", "--target cuda"])
usage_refused("--disable-pass=tile", base + ["--disable-pass=tile"], ["tile pass"])
usage_refused("run --backend ref", ["run", cfg, "--input", xin, "--output", t.path("y.npy"), "--precision", "bf16"],
              ["--backend llvm"])
usage_refused("dump --cpu skylake-avx512", ["dump", cfg, "--format", "kernels", "--cpu", "skylake-avx512",
                                            "--precision", "bf16"], ["skylake-avx512", "avx512bf16"])
t.check(not os.path.exists(t.path("never")), "no output written by a refused compile")

# this CPU: the kernel IR at --precision bf16 (or the refusal: nothing more to test here)
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--precision", "bf16", "--image-size", "%dx%d" % (H, W)])
if rc == 2 and "avx512bf16" in err:
    print("SKIP (the rest): this CPU has no AVX512-BF16: %s" % err.strip().splitlines()[0])
    t.finish()
bf, kind = [], None  # (kind, bf16=1 on its schedule line) per kernel
for line in out.splitlines():
    m = re.match(r"kernel k\d+ (\w+) ", line)
    if m:
        kind = m.group(1)
    elif line.startswith("  schedule ") and kind:
        bf.append((kind, "bf16=1" in line.split()))
        kind = None
t.check(rc == 0 and bf and all(b == (k in ("gemm", "conv")) for k, b in bf),
        "dump --precision bf16: bf16=1 on the %d GEMM/conv schedules and on none of the other %d kernels" % (
            sum(b for _, b in bf), sum(not b for _, b in bf)))

# ------------------------------------------------------------ the small model, compiled
want = E.reference(x, sd, depths)
exe16, exe32 = t.path("m16"), t.path("m32")
for label, exe, extra in (("bf16", exe16, ["--precision", "bf16", "--cpu", "cooperlake"]), ("fp32", exe32, [])):
    rc, out, err, dt = t.run(["compile", cfg, "--weights", weights, "--batch", "2", "--image-size", "%dx%d" % (H, W),
                              "-o", exe] + extra, timeout=600)
    t.check(rc == 0, "compile %s executable (%.1fs)%s" % (label, dt, "" if rc == 0 else " " + err[-400:]))
ys = {}
for label, exe, tol in (("bf16", exe16, TOL16), ("fp32", exe32, E.TOL)):
    y = t.path("y_%s.npy" % label)
    rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", y, "--threads", "2"])
    t.check(rc == 0, "%s executable runs (rc=%s) %s" % (label, rc, err.strip()[-300:]))
    ys[label] = E.check_logits(t, "%s executable" % label, y, want, dt, tol=tol)
if ys["bf16"] is not None and ys["fp32"] is not None:
    t.check(not np.array_equal(ys["bf16"], ys["fp32"]), "the bf16 logits are not the fp32 ones (bf16 ran)")

asm = {}
for label, extra in (("bf16", ["--precision", "bf16"]), ("fp32", [])):
    p = t.path("%s.s" % label)
    extra += ["--cpu", "cooperlake"]
    rc, out, err, dt = t.run(["compile", cfg, "--image-size", "%dx%d" % (H, W), "--emit", "asm", "-o", p] + extra)
    asm[label] = open(p).read() if rc == 0 else ""
n16 = len(re.findall(r"\bvdpbf16ps\b", asm["bf16"]))
t.check(n16 > 0 and "vdpbf16ps" not in asm["fp32"],
        "assembly: %d vdpbf16ps in the bf16 build, none in the fp32 one" % n16)

rc, out, err, dt = t.run(["verify", cfg, "--weights", weights, "--input", xin, "--precision", "bf16", "--threads", "2"],
                         timeout=600)
m = re.search(r"all (\d+) kernels within the tolerance ([0-9.e+-]+)", out)
t.check(rc == 0 and m and float(m.group(2)) == 2e-2,
        "verify --backend llvm --precision bf16: %s (rc=%s)" % (m.group(0) if m else out.strip()[-300:], rc))

# the .so says what it computes in (mambac_info)
so = t.path("m16lib.so")
rc, out, err, dt = t.run(["compile", cfg, "--weights", weights, "--precision", "bf16", "--emit", "shared", "-o", so])
if t.check(rc == 0, "compile --emit shared --precision bf16 (rc=%s) %s" % (rc, err.strip()[-300:])):
    import ctypes
    import json
    lib = ctypes.CDLL(so)
    lib.mambac_info.restype = ctypes.c_char_p
    info = json.loads(lib.mambac_info().decode())
    t.check(info.get("precision") == "bf16", "mambac_info of the bf16 .so: precision %s" % info.get("precision"))

# ------------------------------------------------------------ the bf16 executable on a CPU without AVX-512
if shutil.which("qemu-x86_64") and os.path.exists(exe16):
    rc, out, err, dt = E.run_prog(["qemu-x86_64", "-cpu", "Skylake-Server", exe16, "--input", xin, "--output",
                                   t.path("yq.npy")])
    lines = [ln for ln in err.splitlines() if "warning: TCG doesn't support" not in ln and ln.strip()]
    msg = " ".join(lines)
    t.check(rc == 1 and len(lines) == 1 and "avx512bf16" in msg and "--precision fp32" in msg and "Illegal" not in msg,
            "bf16 executable under qemu-x86_64 -cpu Skylake-Server: one sentence (rc=%s): %s" % (rc, msg[:400]))
else:
    print("  note: qemu-x86_64 missing: the start-up check under qemu is skipped")

# ------------------------------------------------------------ AArch64 (bfdot) under qemu
if shutil.which("qemu-aarch64") and shutil.which("aarch64-linux-gnu-gcc"):
    a64 = t.path("m16-a64")
    A64 = ["--target", "aarch64-linux-gnu"]
    usage_refused("aarch64 generic (no BF16)", base + A64, ["cpu generic", "bf16", "--features +bf16"])
    rc, out, err, dt = t.run(["compile", cfg, "--weights", weights, "--batch", "2", "--image-size", "%dx%d" % (H, W),
                              "--precision", "bf16", "--cpu", "neoverse-v1", "-o", a64] + A64, timeout=600)
    if t.check(rc == 0, "compile for aarch64 neoverse-v1 --precision bf16 (rc=%s) %s" % (rc, err.strip()[-300:])):
        y = t.path("y_a64.npy")
        rc, out, err, dt = E.run_prog(["qemu-aarch64", "-cpu", "max", a64, "--input", xin, "--output", y])
        t.check(rc == 0, "aarch64 bf16 executable under qemu-aarch64 -cpu max (rc=%s) %s" % (rc, err.strip()[-300:]))
        ya = E.check_logits(t, "aarch64 bf16 (bfdot)", y, want, dt, tol=TOL16)
        if ya is not None and ys["fp32"] is not None:
            t.check(not np.array_equal(ya, ys["fp32"]), "the aarch64 bf16 logits are not the fp32 ones")
        rc, out, err, dt = E.run_prog(["qemu-aarch64", "-cpu", "cortex-a72", a64, "--input", xin, "--output", y])
        lines = [ln for ln in err.splitlines() if ln.strip()]
        t.check(rc == 1 and len(lines) == 1 and "bf16" in err and "--precision fp32" in err,
                "under qemu-aarch64 -cpu cortex-a72 (no BF16): one sentence (rc=%s): %s" % (rc, err.strip()[:300]))
    rc, out, err, dt = t.run(["compile", cfg, "--image-size", "%dx%d" % (H, W), "--precision", "bf16", "--cpu",
                              "neoverse-v1", "--emit", "asm", "-o", t.path("a64.s")] + A64)
    n = len(re.findall(r"\bbfdot\b", open(t.path("a64.s")).read())) if rc == 0 else 0
    t.check(n > 0, "aarch64 assembly: %d bfdot" % n)
else:
    print("  note: qemu-aarch64 or aarch64-linux-gnu-gcc missing: the AArch64 part is skipped")

# ------------------------------------------------------------ Spatial-Mamba-T at 64x64, mambac run
tcfg, C, tdepths, ncls, mlp, inc = E.config_for(t, "tiny")
tsd = E.sm.random_state_dict(C, tdepths, ncls, inc, mlp, seed=19)
tw = E.save_weights("model", t.path("tiny.pth"), tsd)
tx = E.image((1, inc, 64, 64), seed=19)
t.run_logits("tiny 64x64, mambac run --backend llvm --precision bf16", tcfg, tw, tx, tsd, tdepths, tol=TOL16,
             extra=["--precision", "bf16"], backend="llvm")

# ------------------------------------------------------------ the digit classifier: top-1 as fp32's
DIR = os.path.join(E.REPO, "examples", "digits")
sys.path.insert(0, DIR)
sys.dont_write_bytecode = True
import train as tr  # noqa: E402  (examples/digits/train.py: how an image is made)

try:
    images, lab, _, te = tr.dt.load_split("test_bf16_cpu")
except SystemExit:
    images = None
    print("  note: scikit-learn missing: the digits part is skipped")
if images is not None:
    dx = np.stack([tr.model_input(tr.png_bytes(images[i])) for i in te]).astype(np.float32)
    dxin = t.path("digits_x.npy")
    np.save(dxin, dx)
    top = {}
    for label, extra in (("fp32", []), ("bf16", ["--precision", "bf16"])):
        y = t.path("digits_%s.npy" % label)
        rc, out, err, dt = t.run(["run", os.path.join(DIR, "digits.yaml"), "--weights", os.path.join(DIR, "digits.pth"),
                                  "--input", dxin, "--output", y, "--backend", "llvm", "--threads", "2"] + extra,
                                 timeout=600)
        if t.check(rc == 0, "digits, %d test images, %s (rc=%s, %.1fs) %s" % (len(te), label, rc, dt, err.strip()[-200:])):
            top[label] = np.load(y)
    if len(top) == 2:  # (the JIT cache's key tells the precisions apart: fp32 ran first)
        t.check(not np.array_equal(top["bf16"], top["fp32"]), "digits: the bf16 logits are not the fp32 ones")
        top = {k: v.argmax(1) for k, v in top.items()}
        same = float((top["bf16"] == top["fp32"]).mean())
        acc = {k: float((v == lab[te]).mean()) for k, v in top.items()}
        t.check(same >= 0.99, "digits: bf16 top-1 = fp32 top-1 on %.2f%% of the %d test images (accuracy fp32 "
                "%.2f%%, bf16 %.2f%%)" % (100 * same, len(te), 100 * acc["fp32"], 100 * acc["bf16"]))
t.finish()
