"""Kernel IR as a real IR: the text form, the verifier, compiling a .kir,
and the pipeline's steps on the command line (docs/kernel-ir.md).

Takes: the mambac executable (argv[1]).
Checks:
  - `mambac dump M --format kernels > m.kir; mambac dump m.kir` prints the
    same bytes, for tiny/small/base and odd shapes, in the LLVM pipeline and
    the CUDA pipeline of every precision (the CUDA fusions are in the text);
  - `mambac compile m.kir` generates the same LLVM IR / .cu as compiling the
    model, and with --model/--weights the executable's logits match the
    PyTorch float64 reference;
  - a hand edit is honoured (a LayerNorm eps changed changes the logits);
  - a broken .kir is refused with file:line:col or the verifier's sentence
    naming the kernel or buffer, never a crash;
  - --print-after=lower / a kernel pass / memplan print kernel IR, lower and
    memplan cannot be disabled, --list-passes lists every step.
Expected values come from the PyTorch reference, never from mambac.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as E  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

t = E.Test("kir")
EX = os.path.join(E.REPO, "examples")


def dump(model, kir, extra=()):
    rc, out, err, dt = t.run(["dump", model, "--format", "kernels", "-o", kir] + list(extra), timeout=300)
    return rc, err


def roundtrip(label, model, extra=()):
    kir = t.path(re.sub(r"\W+", "_", label) + ".kir")
    rc, err = dump(model, kir, extra)
    if not t.check(rc == 0, "%s: dump --format kernels rc=%s %s" % (label, rc, err.strip()[-200:])):
        return None
    with open(kir) as f:
        text = f.read()
    target = [a for a in extra if a in ("cuda",)]
    rc2, out, err2, dt = t.run(["dump", kir] + (["--target", "cuda"] if target else []), timeout=300)
    nk = len(re.findall(r"^kernel k\d+ ", text, re.M))
    t.check(rc2 == 0 and out == text and nk > 0,
            "%s: the %d-kernel .kir reads back (verified) and prints the same bytes (rc=%s%s)" % (
                label, nk, rc2, "" if out == text else ", DIFFERENT: " + err2.strip()[-200:]))
    return kir, text


# 1. round trips: public sizes (LLVM), the CUDA pipeline in three precisions, odd shapes
for size in ("tiny", "small", "base"):
    roundtrip(size, os.path.join(EX, "spatialmamba_%s.yaml" % size))
cfg, sd, depths = E.custom_model(t, embed_dim=16, depths=(1, 1, 2, 1), num_classes=10)
# batch 32: the CUDA fusions take their many-row forms there
for prec in ("fp32", "tf32", "bf16"):
    r = roundtrip("tiny cuda " + prec, os.path.join(EX, "spatialmamba_tiny.yaml"),
                  ["--target", "cuda", "--precision", prec, "--batch", "32"])
    if r and prec == "bf16":
        fused = re.findall(r"^  inside k\d+ as (\w+)", r[1], re.M)
        t.check({"ln", "mlp", "xproj", "down"} <= set(fused),
                "tiny cuda bf16: every CUDA fusion shows in the kernel IR (%s)" % sorted(set(fused)))
odd = roundtrip("odd 3x33x47", cfg, ["--batch", "3", "--image-size", "33x47"])
if odd:
    t.check(re.search(r"^segment s0 k0\.\.k\d+ images 3 groups 3$", odd[1], re.M) is not None,
            "odd 3x33x47: the LLVM pipeline's schedule-images pass made a per-image segment")
roundtrip("odd cuda bf16 2x40x40", cfg, ["--batch", "2", "--image-size", "40", "--target", "cuda",
                                           "--precision", "bf16"])

# 2. compile m.kir: the same code as compiling the model (each .kir printed
# for its target: the kernel passes and the plan are the target's)
kir = t.path("c64.kir")
dump(cfg, kir, ["--image-size", "64"])
ckir = t.path("c64cuda.kir")
dump(cfg, ckir, ["--image-size", "64", "--target", "cuda", "--precision", "bf16"])
for label, extra, outs, k in (("llvm-ir", ["--emit", "llvm-ir"], [""], kir),
                              ("cuda bf16", ["--target", "cuda", "--precision", "bf16", "--emit", "cuda"], [".cu"], ckir)):
    os.makedirs(t.path("a"), exist_ok=True)
    os.makedirs(t.path("b"), exist_ok=True)
    ra = t.run(["compile", cfg, "--image-size", "64", "-o", t.path("a", "m")] + extra, timeout=300)
    rb = t.run(["compile", k, "-o", t.path("b", "m")] + extra, timeout=300)
    same = ra[0] == 0 and rb[0] == 0
    for suf in outs:
        if same:
            with open(t.path("a", "m" + suf), "rb") as fa, open(t.path("b", "m" + suf), "rb") as fb:
                same = fa.read() == fb.read()
    t.check(same, "compile m.kir (%s): the same generated code as compiling the model (rc %s/%s %s)" % (
        label, ra[0], rb[0], (ra[2] + rb[2]).strip()[-200:]))

t.expect_user_error("an llvm .kir compiled for cuda", ["compile", kir, "--target", "cuda", "--emit", "cuda", "-o",
                                                      t.path("x")], must_contain=["made by the llvm target", "--target cuda"])
t.expect_user_error("a cuda .kir compiled for llvm", ["compile", ckir, "--emit", "llvm-ir", "-o", t.path("x.ll")],
                    must_contain=["made by the cuda target"])

# 3. numbers: compile m.kir --model --weights, logits against the float64 reference
w = E.save_weights("safetensors", t.path("c.safetensors"), sd)
x = E.image((2, 3, 64, 64), 5)
xin = t.path("x.npy")
np.save(xin, x)
want = E.reference(torch.from_numpy(x).double(), sd, depths)
kir2 = t.path("c2x64.kir")
dump(cfg, kir2, ["--batch", "2", "--image-size", "64", "--weights", w])
exe = t.path("kexe")
rc, out, err, dt = t.run(["compile", kir2, "--model", cfg, "--weights", w, "-o", exe], timeout=300)
if t.check(rc == 0, "compile m.kir --model --weights: rc=%s %s" % (rc, err.strip()[-300:])):
    y = t.path("y.npy")
    r = E.run_prog([exe, "--input", xin, "--output", y])
    if t.check(r[0] == 0, "the .kir's executable runs (rc=%s)" % r[0]):
        E.check_logits(t, "compile m.kir --model --weights", y, want)
# a checkpoint alone has no folded constants: refused, naming the buffer
t.expect_user_error("compile m.kir --weights (no --model)", ["compile", kir2, "--weights", w, "-o", t.path("z")],
                    must_contain=["weight buffer", "bnfold", "--model"])

# 4. a hand edit is honoured: every LayerNorm eps 1e-5 -> 10 changes the logits
with open(kir2) as f:
    text = f.read()
edited, n = re.subn(r"^  eps 1.0000000000000001e-05$", "  eps 10", text, flags=re.M)
kir3 = t.path("eps.kir")
with open(kir3, "w") as f:
    f.write(edited)
exe3 = t.path("kexe3")
rc, out, err, dt = t.run(["compile", kir3, "--model", cfg, "--weights", w, "-o", exe3], timeout=300)
if t.check(rc == 0 and n > 0, "compile of a hand-edited .kir (%d eps changed): rc=%s %s" % (n, rc, err.strip()[-200:])):
    y3 = t.path("y3.npy")
    E.run_prog([exe3, "--input", xin, "--output", y3])
    got = np.load(y3).astype(np.float64) if os.path.exists(y3) else None
    rel = float(np.linalg.norm(got - np.asarray(want)) / np.linalg.norm(np.asarray(want))) if got is not None else -1
    t.check(rel > 1e-2, "the edited eps reaches the code: logits differ from the reference (rel L2 %.3g)" % rel)

# 5. broken .kir files: clear errors, never a crash
def bad(label, new_text, must, regex=None):
    p = t.path("bad_%s.kir" % re.sub(r"\W+", "_", label))
    with open(p, "w") as f:
        f.write(new_text)
    t.expect_user_error(label, ["dump", p], must_contain=must, regex=regex)


lines = text.split("\n")
bad("truncated kernel line", text[:text.index("\nkernel k3 ") + 12], [], regex=r"bad_truncated_kernel_line\.kir:\d+:\d+: error:")
bad("unknown kind", text.replace("kernel k2 conv ", "kernel k2 convolution ", 1), ["unknown kernel kind"],
    regex=r":\d+:\d+: error:")
bad("view past its buffer", re.sub(r"^(  out b\d+)$", r"\1<1000000:1>", text, count=1, flags=re.M),
    ["kernel k0", "reaches element"])
# two scratch buffers alive together placed at one offset
arena = [(m.group(1), m.group(2)) for m in re.finditer(r"^buffer b(\d+) scratch .* @arena\+(\d+) live", text, re.M)]
nz = [b for b, off in arena if off != "0"]
if nz:
    moved = re.sub(r"^(buffer b%s scratch .* @arena\+)\d+" % nz[0], r"\g<1>0", text, count=1, flags=re.M)
    bad("overlapping arena offsets", moved, ["share arena bytes"])
# k0 reads, instead of the input, a scratch buffer as large that a later kernel writes
n_in = int(np.prod([int(d) for d in re.search(r"^buffer b0 input \S+ f32\[([\d,]+)\]", text, re.M).group(1).split(",")]))
later = [m.group(1) for m in re.finditer(r"^buffer b(\d+) scratch \S+ f32\[([\d,]+)\]", text, re.M)
         if int(np.prod([int(d) for d in m.group(2).split(",")])) >= n_in]
bad("read before write", re.sub(r"^(  in x=)b0", r"\1b%s" % later[0], text, count=1, flags=re.M),
    ["before any kernel writes it"])
bad("weight operand not a weight", re.sub(r"^(  in a=b\d+(?:<[^>]*>)? w=)b\d+", r"\1b0", text, count=1, flags=re.M),
    ["must be a weight"])
bad("NUL byte", text[:200] + "\0" + text[200:], ["NUL"])
bad("no program line", "# nothing\n", ["no 'program' line"])
def usage_error(label, args, must):
    rc, out, err, dt = t.run(args, timeout=60)
    t.check(rc == 2 and must in err and not any(w in err.lower() for w in E.BAD_WORDS),
            "%s: a usage error (rc=%s): %s" % (label, rc, err.strip()[:200]))


usage_error("dump m.kir --format ir", ["dump", kir, "--format", "ir"], "is kernel IR")

# a kernel the target cannot run: refused by the pipeline, naming it (the
# llvm row's supports: depthwise kernels up to 64 taps)
dw = t.path("dw9.mir")
with open(dw, "w") as f:
    f.write("graph dw9 {\n  %x = input : f32[1,12,12,8]\n  %w = weight : f32[8,1,9,9]\n"
            "  %y = conv2d %x, %w stride=[1,1] pad=[4,4] dilation=[1,1] groups=8 : f32[1,12,12,8]\n  return %y\n}\n")
t.expect_user_error("a 9x9 depthwise conv for llvm", ["compile", dw, "--emit", "llvm-ir", "-o", t.path("dw9.ll")],
                    must_contain=["llvm: kernel k0 (dwconv", "above 64 taps"])

# 6. the pipeline's steps on the command line
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--batch", "2", "--image-size", "64",
                          "--print-after=lower", "--print-after=schedule-images", "--print-after=memplan",
                          "--verify-each", "-o", t.path("pa.kir")], timeout=300)
heads = re.findall(r"^# kernel IR after (\S+)", out, re.M)
t.check(rc == 0 and heads == ["lower", "schedule-images", "memplan"],
        "--print-after=lower,schedule-images,memplan print the kernel IR after each (%s)" % heads)
secs = re.split(r"^# kernel IR after \S+\n", out, flags=re.M)[1:]
t.check(len(secs) == 3 and "@arena+" not in secs[0] and "segment s0" not in secs[0] and "segment s0" in secs[1]
        and "@arena+" in secs[2],
        "lower leaves no plan and no segment; schedule-images adds the segment; memplan the arena offsets")
rc, out, err, dt = t.run(["dump", os.path.join(EX, "spatialmamba_tiny.yaml"), "--format", "kernels", "--batch", "32",
                          "--target", "cuda", "--precision", "bf16", "--print-after=cuda-fuse-ln",
                          "--print-after=cuda-fuse-mlp", "-o", t.path("pm.kir")], timeout=300)
secs = re.split(r"^# kernel IR after \S+\n", out, flags=re.M)[1:]
t.check(rc == 0 and len(secs) == 2 and "as ln" in secs[0] and "as mlp" not in secs[0] and "as mlp" in secs[1],
        "--print-after=cuda-fuse-ln / cuda-fuse-mlp show the fusions each made (rc=%s)" % rc)
usage_error("--disable-pass=memplan", ["dump", cfg, "--format", "kernels", "--disable-pass=memplan"],
            "memplan cannot be disabled")
rc, out, err, dt = t.run(["dump", cfg, "--list-passes"])
steps = [ln.split()[0] for ln in out.splitlines() if ln.strip()]
t.check(rc == 0 and "lower" in steps and "memplan" in steps and "schedule-images" in steps and
        "cuda-fuse-ln" in steps and steps.index("lower") < steps.index("schedule-images") < steps.index("memplan"),
        "--list-passes lists graph passes, lower, every target's kernel passes, memplan (%s)" % steps)

t.finish()
