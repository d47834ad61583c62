"""e2e: models with several outputs, through every path.

A graph YAML with three outputs -- `stage0` a permute (a view) of a
LayerNorm, that LayerNorm `ln` itself (also read by a later linear), and
`s` = fc + fc -- at batch 2, odd sizes, with weights from a .safetensors:
- `mambac run` with the ref backend and the LLVM JIT: `--output y.npz`
  holds the three arrays named after the outputs (numpy.load), each equal
  to a float64 PyTorch computation of the same graph (rel. L2 <= 1e-5);
- the compiled executable: the same .npz; `--help` lists the outputs; an
  aarch64 one under qemu-user the same (skipped without the tools);
- the shared library: OUT.h declares NOUTPUTS, every output's name, rank,
  shape and count, and the entry point with one pointer per output;
  called through ctypes it fills the three buffers;
- the kernel IR: its `outputs` record; dump of the .kir gives the same
  bytes; the .kir compiled gives the same .npz; `mambac verify` passes;
- one output: `--output y.npz` gives one array named after it, `y.npy`
  as before, for run, the executable and the .so's header (unchanged form);
- errors (exit 1, one message, before any work): several outputs to a
  .npy, two outputs an .npz cannot tell apart, --top on a model that is no
  classifier -- for run and the executable;
- CUDA: the .cu of the three-output model compiles with nvcc (skipped
  without one) and its executable refuses a .npy and lists the outputs in
  --help without a GPU.
"""
import ctypes
import os
import re
import shutil
import subprocess

import numpy as np
import torch

import e2e_common as E

t = E.Test("outputs")
TOL = 1e-5

GRAPH = """graph:
  name: {name}
  inputs:
    - {{name: x, shape: [2, 3, 9, 7]}}
  weights:
    - {{name: c.weight, shape: [8, 3, 3, 3]}}
    - {{name: c.bias, shape: [8]}}
    - {{name: ln.weight, shape: [8]}}
    - {{name: ln.bias, shape: [8]}}
    - {{name: fc.weight, shape: [5, 8]}}
    - {{name: fc.bias, shape: [5]}}
  nodes:
    - {{name: xh, op: permute, inputs: [x], perm: [0, 2, 3, 1]}}
    - {{name: c, op: conv2d, inputs: [xh, c.weight, c.bias], stride: 2, pad: 1}}
    - {{name: ln, op: layernorm, inputs: [c, ln.weight, ln.bias]}}
    - {{name: fc, op: linear, inputs: [ln, fc.weight, fc.bias]}}
    - {{name: s, op: add, inputs: [fc, fc]}}
    - {{name: stage0, op: permute, inputs: [ln], perm: [0, 3, 1, 2]}}
  outputs: [{outputs}]
"""


def model(name, outputs):
    p = t.path(name + ".yaml")
    with open(p, "w") as f:
        f.write(GRAPH.format(name=name, outputs=", ".join(outputs)))
    return p


rng = np.random.RandomState(5)
sd = {k: torch.from_numpy(rng.uniform(-0.5, 0.5, s).astype(np.float32)) for k, s in [
    ("c.weight", (8, 3, 3, 3)), ("c.bias", (8,)), ("ln.weight", (8,)), ("ln.bias", (8,)),
    ("fc.weight", (5, 8)), ("fc.bias", (5,))]}
W = t.path("w.safetensors")
E.ck.save_safetensors(W, sd)
x = rng.standard_normal((2, 3, 9, 7)).astype(np.float32)
X = t.path("x.npy")
np.save(X, x)

# the graph in float64 PyTorch
d = {k: v.double() for k, v in sd.items()}
c = torch.nn.functional.conv2d(torch.from_numpy(x).double(), d["c.weight"], d["c.bias"], stride=2, padding=1)
ln = torch.nn.functional.layer_norm(c.permute(0, 2, 3, 1), (8,), d["ln.weight"], d["ln.bias"], 1e-5)
fc = ln @ d["fc.weight"].T + d["fc.bias"]
WANT = {"stage0": ln.permute(0, 3, 1, 2).numpy(), "ln": ln.numpy(), "s": (fc + fc).numpy()}
NAMES = ["stage0", "ln", "s"]
M3 = model("three", NAMES)
M1 = model("one", ["s"])


def rel(a, b):
    return float(np.linalg.norm(a.astype(np.float64) - b) / max(np.linalg.norm(b), 1e-30))


def check_npz(label, path, names=NAMES):
    """path: an .npz of exactly `names`, in that order, each float32 of the
    reference's shape and within TOL of it."""
    if not t.check(os.path.exists(path), "%s: %s written" % (label, os.path.basename(path))):
        return None
    z = np.load(path)
    ok = list(z.files) == names
    errs = []
    for n in names if ok else []:
        a = z[n]
        ok = ok and a.dtype == np.float32 and a.shape == WANT[n].shape
        errs.append(rel(a, WANT[n]) if ok else float("inf"))
    ok = ok and max(errs) <= TOL
    t.check(ok, "%s: arrays %s, rel. errors %s (tol %.0e)" % (
        label, z.files, ", ".join("%.1e" % e for e in errs), TOL))
    return {n: z[n] for n in z.files}


def run(label, args, timeout=300):
    rc, out, err, dt = t.run(args, timeout=timeout)
    t.check(rc == 0, "%s: rc=%s (%.1fs)%s" % (label, rc, dt, "" if rc == 0 else " " + err.strip()[-800:]))
    return rc == 0, out


def exe_run(label, argv, want_rc=0, timeout=120):
    rc, out, err, dt = E.run_prog(argv, timeout=timeout)
    bad = any(w in err.lower() for w in E.BAD_WORDS)
    t.check(rc == want_rc and not bad, "%s: rc=%s (want %d) %s" % (label, rc, want_rc, err.strip()[:300]))
    return out, err


# ------------------------------------------------------------ mambac run
for backend in ("ref", "llvm"):
    y = t.path("run_%s.npz" % backend)
    if run("run --backend %s --output y.npz" % backend,
           ["run", M3, "--weights", W, "--input", X, "--output", y, "--backend", backend])[0]:
        check_npz("run --backend %s" % backend, y)

# one output: .npy as before, .npz with one array named after it
for backend in ("ref", "llvm"):
    y1, z1 = t.path("one_%s.npy" % backend), t.path("one_%s.npz" % backend)
    ok = run("one output, run --backend %s --output y.npy" % backend,
             ["run", M1, "--weights", W, "--input", X, "--output", y1, "--backend", backend])[0]
    ok = run("one output, run --backend %s --output y.npz" % backend,
             ["run", M1, "--weights", W, "--input", X, "--output", z1, "--backend", backend])[0] and ok
    if ok:
        a = np.load(y1)
        t.check(a.shape == WANT["s"].shape and rel(a, WANT["s"]) <= TOL, "one output: y.npy is `s`")
        check_npz("one output, y.npz", z1, ["s"])

# ------------------------------------------------------------ errors before the work
for backend in ("ref", "llvm"):
    t.expect_user_error("run --backend %s: three outputs to a .npy" % backend,
                        ["run", M3, "--weights", W, "--input", X, "--output", t.path("y.npy"), "--backend", backend],
                        must_contain=("y.npy", "3 outputs", "stage0, ln, s", ".npz"))
    t.check(not os.path.exists(t.path("y.npy")), "run --backend %s: no y.npy left" % backend)
t.expect_user_error("run --top on three outputs", ["run", M3, "--weights", W, "--input", X, "--output",
                                                   t.path("t.npz"), "--top", "3"],
                    must_contain=("--top", "3 outputs"))
t.expect_user_error("run --top on one output [2,5,4,5]", ["run", M1, "--weights", W, "--input", X, "--output",
                                                         t.path("t.npy"), "--top", "3"],
                    must_contain=("--top", "%s", "[2,5,4,5]", "[B, classes]"))
MDUP = model("dup", ["s", "ln", "s"])
t.expect_user_error("run: two outputs named s into an .npz",
                    ["run", MDUP, "--weights", W, "--input", X, "--output", t.path("d.npz")],
                    must_contain=("outputs 0 and 2", "'s'", "distinct"))

# ------------------------------------------------------------ the executable
exe = t.path("three")
if run("compile three outputs", ["compile", M3, "--weights", W, "-o", exe])[0]:
    y = t.path("exe.npz")
    exe_run("exe --output y.npz", [exe, "--input", X, "--output", y])
    got = check_npz("exe", y)
    ref = np.load(t.path("run_llvm.npz")) if os.path.exists(t.path("run_llvm.npz")) else None
    if got is not None and ref is not None:
        t.check(all(np.array_equal(got[n], ref[n]) for n in NAMES), "exe's .npz == run --backend llvm's, bit for bit")
    out, _ = exe_run("exe --help", [exe, "--help"])
    t.check("Y.npz" in out and all(re.search(r"'%s' \[" % n, out) for n in NAMES) and "--top" not in out,
            "exe --help names the outputs and their shapes, no --top")
    _, err = exe_run("exe --output y.npy (three outputs)", [exe, "--input", X, "--output", t.path("e.npy")], 1)
    t.check("3 outputs" in err and ".npz" in err and not os.path.exists(t.path("e.npy")),
            "exe: the .npy refused with a sentence naming .npz, nothing written")
    _, err = exe_run("exe --top (three outputs)", [exe, "--input", X, "--top", "2"], 1)
    t.check("--top" in err and "stage0 [2,8,5,4]" in err, "exe: --top refused, naming the outputs")
    t0 = E.time.time()
    exe_run("exe --bench 1000000 --output y.npy: refused at once", [exe, "--bench", "1000000", "--output",
                                                                    t.path("e.npy")], 1)
    t.check(E.time.time() - t0 < 10, "exe: the refusal comes before the runs")
exe_d = t.path("dup")
if run("compile two outputs named s", ["compile", MDUP, "--weights", W, "-o", exe_d])[0]:
    _, err = exe_run("exe, names an .npz cannot tell apart", [exe_d, "--input", X, "--output", t.path("d.npz")], 1)
    t.check("would both be the array 's'" in err, "exe: duplicate names refused")
exe1 = t.path("one")
if run("compile one output", ["compile", M1, "--weights", W, "-o", exe1])[0]:
    exe_run("one-output exe --output y.npz", [exe1, "--input", X, "--output", t.path("one_exe.npz")])
    check_npz("one-output exe", t.path("one_exe.npz"), ["s"])
    exe_run("one-output exe --output y.npy", [exe1, "--input", X, "--output", t.path("one_exe.npy")])
    a = np.load(t.path("one_exe.npy")) if os.path.exists(t.path("one_exe.npy")) else None
    t.check(a is not None and rel(a, WANT["s"]) <= TOL, "one-output exe: y.npy")
    _, err = exe_run("one-output exe --top ([2,5,4,5])", [exe1, "--input", X, "--top", "2"], 1)
    t.check("[B, classes]" in err, "one-output exe: --top refused for a [2,5,4,5] output")

# an aarch64 executable under qemu-user (the same entry point on another target)
if shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64"):
    arm = t.path("three_arm")
    if run("compile --target aarch64-linux-gnu", ["compile", M3, "--weights", W, "--target", "aarch64-linux-gnu",
                                                  "-o", arm])[0]:
        exe_run("qemu-aarch64 three_arm --output y.npz", ["qemu-aarch64", arm, "--input", X, "--output",
                                                          t.path("arm.npz")])
        check_npz("aarch64 exe", t.path("arm.npz"))
else:
    print("  note: no aarch64 cross gcc or qemu-aarch64: that part is skipped")

# ------------------------------------------------------------ the shared library
def aligned(n):
    raw = np.zeros(n + 64, np.uint8)
    off = (-raw.ctypes.data) % 64
    return raw[off:off + n]


so = t.path("lib3.so")
if run("compile --emit shared", ["compile", M3, "--weights", W, "--emit", "shared", "-o", so])[0]:
    hdr = open(t.path("lib3.h")).read()
    defs = dict(re.findall(r"^#define (\w+) (.+)$", hdr, re.M))
    ok = defs.get("THREE_NOUTPUTS") == "3"
    for j, n in enumerate(NAMES):
        shape = "{%s}" % ", ".join(str(v) for v in WANT[n].shape)
        ok = ok and defs.get("THREE_OUTPUT%d_NAME" % j) == '"%s"' % n
        ok = ok and defs.get("THREE_OUTPUT%d_RANK" % j) == str(WANT[n].ndim)
        ok = ok and defs.get("THREE_OUTPUT%d_SHAPE" % j) == shape
        ok = ok and defs.get("THREE_OUTPUT%d_COUNT" % j) == str(WANT[n].size)
    t.check(ok, "lib3.h: THREE_NOUTPUTS 3 and each output's NAME, RANK, SHAPE, COUNT")
    t.check(re.search(r"int three_run\(const void \*weights, const float \*input,\s+float \*output0, "
                      r"float \*output1, float \*output2, void \*scratch\);", hdr) is not None
            and "THREE_OUTPUT_SHAPE" not in hdr,
            "lib3.h: three_run takes one pointer per output")
    lib = ctypes.CDLL(so)
    wb = np.fromfile(t.path("lib3.weights"), np.uint8)
    wbuf = aligned(len(wb))
    wbuf[:] = wb
    scratch = aligned(int(defs["THREE_SCRATCH_SIZE"].rstrip("ul")) + 64)
    ys = [np.full(WANT[n].shape, np.nan, np.float32) for n in NAMES]
    vp = ctypes.c_void_p
    rc = lib.three_run(wbuf.ctypes.data_as(vp), np.ascontiguousarray(x).ctypes.data_as(vp),
                       *[a.ctypes.data_as(vp) for a in ys], scratch.ctypes.data_as(vp))
    errs = [rel(a, WANT[n]) for a, n in zip(ys, NAMES)]
    t.check(rc == 0 and max(errs) <= TOL, ".so through ctypes: rc=%s, rel. errors %s" % (
        rc, ", ".join("%.1e" % e for e in errs)))
so1 = t.path("lib1.so")
if run("compile --emit shared, one output", ["compile", M1, "--weights", W, "--emit", "shared", "-o", so1])[0]:
    hdr = open(t.path("lib1.h")).read()
    t.check("ONE_OUTPUT_SHAPE {2, 5, 4, 5}" in hdr and "NOUTPUTS" not in hdr
            and "int one_run(const void *weights, const float *input, float *output, void *scratch);" in hdr,
            "lib1.h: a one-output header as before (OUTPUT_SHAPE, one output pointer)")

# ------------------------------------------------------------ the kernel IR
kir = t.path("three.kir")
ok, _ = run("dump --format kernels", ["dump", M3, "--weights", W, "--format", "kernels", "-o", kir])
if ok:
    text = open(kir).read()
    m = re.search(r"^outputs (b\d+) (b\d+) (b\d+)$", text, re.M)
    names = []
    for b in (m.groups() if m else ()):
        names += re.findall(r"^buffer %s output \"([^\"]+)\"" % b, text, re.M)
    t.check(names == NAMES, "kernel IR: outputs record %s names %s" % (m.group(0) if m else None, names))
    rc, again, err, _ = t.run(["dump", kir])
    t.check(rc == 0 and again == text, "dump three.kir prints the same bytes (rc=%s %s)" % (rc, err.strip()[:200]))
    exe_k = t.path("three_kir")
    if run("compile three.kir", ["compile", kir, "--model", M3, "--weights", W, "-o", exe_k])[0]:
        exe_run("three_kir --output y.npz", [exe_k, "--input", X, "--output", t.path("kir.npz")])
        check_npz("compiled .kir", t.path("kir.npz"))
rc, out, err, _ = t.run(["verify", M3, "--weights", W, "--input", X])
t.check(rc == 0 and "all 5 kernels within the tolerance" in out,
        "mambac verify: every kernel of the three-output program (rc=%s) %s" % (rc, (out + err).strip()[-300:]))

# ------------------------------------------------------------ CUDA: nvcc
nvcc = os.environ.get("NVCC") or (
    "/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else "nvcc")
if shutil.which(nvcc):
    cu = t.path("c3")
    if run("compile --target cuda --emit cuda", ["compile", M3, "--weights", W, "--target", "cuda", "--emit",
                                                  "cuda", "-o", cu])[0]:
        text = open(cu + ".cu").read()
        t.check('#define MC_OUTPUT_NAMES {"stage0", "ln", "s"}' in text and "mc_cuda_outputs =" in text,
                "c3.cu: the outputs' table (mc_outputs.cuh)")
        p = subprocess.run([nvcc, "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-c", cu + ".cu",
                            "-o", cu + ".o"], capture_output=True, timeout=600)
        t.check(p.returncode == 0, "nvcc -c c3.cu: rc=%s %s" % (p.returncode, p.stderr.decode()[-500:]))
    cexe = t.path("c3exe")
    if run("compile --target cuda (executable)", ["compile", M3, "--weights", W, "--target", "cuda", "-o", cexe],
           timeout=900)[0]:
        out, _ = exe_run("cuda exe --help", [cexe, "--help"])
        t.check("y.npz" in out and "stage0 [2, 8, 5, 4], ln [2, 5, 4, 8], s [2, 5, 4, 5]" in out,
                "cuda exe --help: the outputs and their shapes")
        _, err = exe_run("cuda exe --output y.npy (no GPU needed)", [cexe, "--output", t.path("c.npy")], 1)
        t.check("3 outputs" in err and ".npz" in err, "cuda exe: the .npy refused before the GPU is looked for")
else:
    print("  note: no nvcc (%s): the CUDA part is skipped" % nvcc)

t.finish()
