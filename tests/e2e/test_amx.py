"""e2e: AMX on CPUs that have it (amx-tile, amx-bf16: Sapphire Rapids and
later); skipped elsewhere.

- --precision bf16 on such a CPU runs the GEMMs and convolutions on AMX-BF16
  tiles (backends/llvm/llvm_amx.c): the executable's logits within 2e-2
  (relative L2) of the float64 reference, and of the same model compiled
  with --features -amx-tile (AVX512-BF16, the same bf16 numbers summed in
  another order) within 1e-2: each kernel agrees to ~1e-6 on the same
  inputs (unit.test_amx), but a last-bit difference can tip an activation's
  rounding to bf16 the other way, and across the model that adds up to the
  size of bf16's own error, not more; --emit asm has tdpbf16ps (and the
  AVX512-BF16 build none); mambac run --backend llvm --precision bf16 too;
  a small UperNet segmentor at batch 2 and 67x45 (its FPN and bottleneck
  3x3 convolutions on tiles) within 2e-2 of the float64 reference.
- The OS permission (Linux: arch_prctl(ARCH_REQ_XCOMP_PERM, XTILEDATA)
  before the first tile instruction): code compiled for a CPU with AMX runs
  only after the request is granted.  A real refusal, without seccomp: a
  preloaded library gives the process an alternate signal stack too small
  for the AMX state, and Linux refuses the request (ENOSPC).  Then the
  executable says so in one sentence and exits 1 (no SIGILL); a fat binary
  runs its variant without AMX instead; MAMBAC_CPU forcing the AMX variant
  is refused with the sentence; mambac run --backend llvm (the JIT) says it
  too.
"""
import os
import re
import shutil

import e2e_common as E
import numpy as np


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


if not {"amx_tile", "amx_bf16"} <= cpu_flags():
    print("SKIP: this CPU has no AMX-BF16 (amx_tile, amx_bf16)")
    raise SystemExit(77)
cc = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
if not cc:
    print("SKIP: no C compiler for the alternate-signal-stack shim")
    raise SystemExit(77)

t = E.Test("amx")
H, W = 40, 48
cfg, sd, depths = E.custom_model(t, embed_dim=32, depths=(1, 1, 1, 1), num_classes=10, mlp_ratio=2.0,
                                 model_name="amx")
weights = E.save_weights("model", t.path("w.pth"), sd)
x = E.image((1, 3, H, W), seed=5)
xin = t.path("x.npy")
np.save(xin, x)
want = E.reference(x, sd, depths)

# a real refusal of the AMX permission: a 6 KB alternate signal stack (enough
# for the AVX-512 state, too small for AMX's 8 KB of tile data)
shim_c = t.path("altstack.c")
with open(shim_c, "w") as f:
    f.write("#include <signal.h>\n"
            "static char stack[6144] __attribute__((aligned(64)));\n"
            "__attribute__((constructor)) static void\nsmall_altstack(void)\n{\n"
            "    stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};\n"
            "    sigaltstack(&ss, 0);\n}\n")
shim = t.path("altstack.so")
rc, _, err, _ = E.run_prog([cc, "-shared", "-fPIC", "-O2", shim_c, "-o", shim])
t.check(rc == 0, "the alternate-signal-stack shim builds (rc=%s) %s" % (rc, err[-300:]))
DENY = {"LD_PRELOAD": shim}
REFUSED = "this kernel does not allow AMX"


def compile_model(label, out, *extra):
    rc, _, err, dt = t.run(["compile", cfg, "--weights", weights, "--image-size", "%dx%d" % (H, W),
                            "-o", out] + list(extra), timeout=600)
    return t.check(rc == 0 and os.path.exists(out),
                   "%s: compiles (%.1fs)%s" % (label, dt, "" if rc == 0 else " rc=%s %s" % (rc, err[-800:])))


def run_exe(label, argv, env_extra=None, variant=None):
    """argv on x: status 0, logits against the float64 reference, -v's variant."""
    y = t.path("y.npy")
    if os.path.exists(y):
        os.unlink(y)
    rc, _, err, dt = E.run_prog(argv + ["--input", xin, "--output", y, "-v"],
                                env=dict(os.environ, **(env_extra or {})))
    if not t.check(rc == 0, "%s: runs (rc=%s) %s" % (label, rc, err.strip()[-400:])):
        return None
    if variant:
        m = re.search(r"CPU variant (\S+)", err)
        t.check(m is not None and m.group(1) == variant,
                "%s: -v says variant %s (want %s)" % (label, m.group(1) if m else "?", variant))
    return E.check_logits(t, label, y, want, dt)


def expect_refused(label, argv, env_extra, must=(REFUSED,)):
    """Status 1, one line on stderr holding every string of must, no signal."""
    rc, _, err, _ = E.run_prog(argv, env=dict(os.environ, **env_extra))
    lines = err.strip().splitlines()
    msg = " ".join(lines)
    t.check(rc == 1 and len(lines) == 1 and all(s in msg for s in must) and "Illegal" not in msg,
            "%s: refused in one line (rc=%s): %s" % (label, rc, msg[:400]))


# ------------------------------------------------------------ the permission
exe = t.path("m")
if compile_model("fp32 for this CPU (amx-tile among its features)", exe):
    run_exe("permission granted", [exe])
    expect_refused("permission refused (small sigaltstack)", [exe, "--input", xin, "--output", t.path("y.npy")],
                   DENY, (REFUSED, "No space left on device", "--features -amx-tile"))
fat = t.path("fat")
if compile_model("fat x86-64-v4,sapphirerapids", fat, "--cpu", "x86-64-v4,sapphirerapids"):
    run_exe("fat, permission granted", [fat], variant="sapphirerapids")
    run_exe("fat, permission refused: the variant without AMX", [fat], DENY, variant="x86-64-v4")
    expect_refused("fat, MAMBAC_CPU=sapphirerapids, permission refused",
                   [fat, "--input", xin, "--output", t.path("y.npy")], dict(DENY, MAMBAC_CPU="sapphirerapids"),
                   ("MAMBAC_CPU=sapphirerapids", REFUSED))
# ------------------------------------------------------------ bf16 on AMX tiles
def logits(label, exe):
    y = t.path("y_%s.npy" % os.path.basename(exe))
    rc, _, err, _ = E.run_prog([exe, "--input", xin, "--output", y, "--threads", "2"])
    if not t.check(rc == 0, "%s: runs (rc=%s) %s" % (label, rc, err.strip()[-300:])):
        return None
    return E.check_logits(t, label, y, want, tol=2e-2)


def rel(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / np.linalg.norm(b))


ya = yv = None
if compile_model("bf16 on AMX", t.path("bf16amx"), "--precision", "bf16"):
    ya = logits("bf16 on AMX", t.path("bf16amx"))
if compile_model("bf16 on AVX512-BF16 (--features -amx-tile)", t.path("bf16avx"), "--precision", "bf16",
                 "--features", "-amx-tile"):
    yv = logits("bf16 on AVX512-BF16", t.path("bf16avx"))
if ya is not None and yv is not None:
    t.check(rel(ya, yv) <= 1e-2, "AMX vs AVX512-BF16 logits: rel L2 %.2e (<= 1e-2)" % rel(ya, yv))
for label, extra, amx in (("AMX", [], True), ("AVX512-BF16", ["--features", "-amx-tile"], False)):
    s = t.path("m_%s.s" % label)
    if compile_model("bf16 %s --emit asm" % label, s, "--precision", "bf16", "--emit", "asm", *extra):
        with open(s) as f:
            text = f.read()
        n = text.count("tdpbf16ps")
        t.check((n > 0 and "ldtilecfg" in text) if amx else n == 0,
                "bf16 %s: %d tdpbf16ps in the assembly%s" % (label, n, " (and ldtilecfg)" if amx else ""))
# a UperNet segmentor, batch 2 at an odd size: its 3x3 convolutions (FPN,
# bottleneck) on tiles too, next to resizes and pools
seg_cfg = t.path("seg.yaml")
with open(seg_cfg, "w") as f:
    f.write("MODEL:\n  TYPE: spatial_mamba\n  NAME: seg\n"
            "  SPATIALMAMBA: {EMBED_DIM: 16, DEPTHS: [1, 1, 2, 1], D_STATE: 1, MLP_RATIO: 2.0}\n"
            "  BACKBONE: {OUT_INDICES: [0, 1, 2, 3]}\n"
            "  DECODE_HEAD: {TYPE: uper_head, CHANNELS: 24, POOL_SCALES: [1, 2, 3, 6], NUM_CLASSES: 7}\n")
dcfg = E.sm.dense_config(seg_cfg)
dsd = E.sm.random_dense_state_dict(dcfg, seed=3)
seg_w = t.path("seg.pth")
E.ck.save_mmengine(seg_w, E.ck.segmentor_state_dict(dsd, auxiliary=True), classes=["c%d" % i for i in range(7)])
sx = np.random.RandomState(5).uniform(-1, 1, (2, 3, 67, 45)).astype(np.float32)
sxin = t.path("seg_x.npy")
np.save(sxin, sx)
with E.torch.no_grad():
    seg_want = E.sm.dense_forward(E.torch.from_numpy(sx).double(), dsd, dcfg, dtype=E.torch.float64)["logits"].numpy()
segs = {}
for label, extra in (("AMX", []), ("AVX512-BF16", ["--features", "-amx-tile"])):
    exe = t.path("seg_" + label)
    rc, _, err, dt = t.run(["compile", seg_cfg, "--weights", seg_w, "--batch", "2", "--image-size", "67x45",
                            "--precision", "bf16", "-o", exe] + extra, timeout=600)
    if t.check(rc == 0, "segmentor bf16 %s: compiles (%.1fs) %s" % (label, dt, err.strip()[-300:])):
        y = t.path("seg_y_%s.npy" % label)
        rc, _, err, _ = E.run_prog([exe, "--input", sxin, "--output", y, "--threads", "2"])
        if t.check(rc == 0, "segmentor bf16 %s: runs (rc=%s) %s" % (label, rc, err.strip()[-300:])):
            segs[label] = np.load(y)
            t.check(rel(segs[label], seg_want) <= 2e-2, "segmentor bf16 %s, batch 2 at 67x45: logits rel L2 %.2e "
                    "(<= 2e-2)" % (label, rel(segs[label], seg_want)))
if len(segs) == 2:
    t.check(rel(segs["AMX"], segs["AVX512-BF16"]) <= 1e-2,
            "segmentor: AMX vs AVX512-BF16 rel L2 %.2e (<= 1e-2)" % rel(segs["AMX"], segs["AVX512-BF16"]))

rc, _, err, dt = t.run(["run", cfg, "--weights", weights, "--backend", "llvm", "--no-cache", "--precision", "bf16",
                        "--input", xin, "--output", t.path("yjit.npy"), "--threads", "2"])
if t.check(rc == 0, "mambac run --backend llvm --precision bf16 (rc=%s) %s" % (rc, err.strip()[-300:])):
    E.check_logits(t, "mambac run --backend llvm --precision bf16", t.path("yjit.npy"), want, dt, tol=2e-2)

rc, _, err, _ = t.run(["run", cfg, "--weights", weights, "--backend", "llvm", "--no-cache", "--input", xin, "--output",
                       t.path("yj.npy")], env=dict(os.environ, **DENY))
t.check(rc == 1 and REFUSED in err and "Illegal" not in err and len(err.strip().splitlines()) == 1,
        "mambac run --backend llvm, permission refused: one line, rc=%s: %s" % (rc, err.strip()[:300]))

t.finish()
