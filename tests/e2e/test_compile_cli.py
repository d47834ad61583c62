"""e2e: the command line of `mambac compile` and the graph-pass options it
shares with `run` and `dump`.

- compile --help names every option; --list-targets (x86-64, aarch64,
  riscv64); --list-cpus; -v prints triple=, cpu=, features=; --cpu and
  --features reach the generated code; bad --target / --cpu / --emit / usage
  fail cleanly (exit 1 for bad input, 2 for bad usage) with a message.
- --print-after=P, --print-before=P, --print-after-all, --disable-pass=P,
  --verify-each, --time-passes, --stats (with a memplan line where kernels
  are planned), --dump-dot=F (one cluster per kernel) on compile, run, dump;
  the IR printed around every pass parses back (`mambac dump FILE.mir`
  prints the same bytes); --disable-pass=fold-state-fusion still gives the
  reference's logits (compile + run, ref and llvm backends).
- --target cuda: --emit cuda writes the .cu and its weights blob; --emit
  exe (with nvcc) announces nvcc, and the executable's --help works
  without a GPU, which it otherwise reports as missing (exit 1).
"""
import os
import re

import numpy as np

import e2e_common as E

t = E.Test("compile_cli")
PASSES = ["fold-batchnorm", "fold-constants", "fold-state-fusion", "cse", "dce"]

cfg, sd, depths = E.custom_model(t)
w = E.save_weights("safetensors", t.path("custom.safetensors"), sd)
B, H, W = 1, 37, 41
SHAPE = ["--batch", B, "--image-size", "%dx%d" % (H, W)]
x = E.image((B, 3, H, W), seed=71)
want = E.reference(x, sd, depths)
xin = t.path("x.npy")
np.save(xin, x)


def clean(rc, err):
    return rc in (0, 1, 2) and not any(w_ in err.lower() for w_ in E.BAD_WORDS)


# ------------------------------------------------------------ --help
rc, out, err, dt = t.run(["compile", "--help"], timeout=30)
opts = ["-o", "--emit", "exe", "shared", "obj", "llvm-ir", "asm", "--weights", "--seed",
        "--batch", "--image-size", "--target", "--cpu", "--features", "--list-targets",
        "--list-cpus", "-v", "--list-passes", "--print-after", "--print-before",
        "--print-after-all", "--disable-pass", "--verify-each", "--time-passes", "--stats",
        "--dump-dot"]
text = out + err
absent = [o for o in opts if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(o), text)]
t.check(rc == 0 and not absent, "compile --help: rc=%s, mentions every option%s" % (
    rc, (" MISSING " + " ".join(absent)) if absent else ""))
rc, out2, err2, dt = t.run(["--help"], timeout=30)
t.check(rc == 0 and re.search(r"^\s+compile\b", out2 + err2, re.M) is not None,
        "mambac --help lists the compile command (rc=%s)" % rc)

# ------------------------------------------------------------ targets, cpus
rc, out, err, dt = t.run(["compile", "--list-targets"], timeout=30)
names = set(re.findall(r"^\s*(\S+)", out, re.M))
t.check(rc == 0 and {"x86-64", "aarch64", "riscv64"} <= names,
        "compile --list-targets: rc=%s, lists x86-64, aarch64, riscv64 (%d targets)" % (
            rc, len(names)))
for triple in ("x86_64-linux-gnu", "aarch64-linux-gnu", "riscv64-linux-gnu"):
    rc, out, err, dt = t.run(["compile", "--list-cpus", triple], timeout=30)
    t.check(rc == 0 and out.strip() != "", "compile --list-cpus %s: rc=%s, %d lines" % (
        triple, rc, len(out.splitlines())))
t.expect_user_error("compile --list-cpus with an unknown triple",
                    ["compile", "--list-cpus", "nosucharch-unknown-linux-gnu"],
                    must_contain=["nosucharch"])

# ------------------------------------------------------------ -v, --cpu, --features
rc, out, err, dt = t.run(["compile", cfg, "--weights", w] + SHAPE +
                         ["-v", "--emit", "llvm-ir", "-o", t.path("v.ll")])
m = re.search(r"triple=(\S+) cpu=(\S+) features=(\S+)", err)
t.check(rc == 0 and m is not None, "compile -v prints triple=, cpu=, features= (rc=%s): %s" % (
    rc, m.group(0)[:160] if m else err.strip()[-300:]))
asm = {}
for label, extra in (("baseline", ["--cpu", "x86-64"]),
                     ("avx2", ["--cpu", "x86-64", "--features", "+avx2,+fma"])):
    out_s = t.path("%s.s" % label)
    rc, out, err, dt = t.run(["compile", cfg, "--weights", w] + SHAPE + extra +
                             ["--target", "x86_64-linux-gnu", "-v", "--emit", "asm", "-o", out_s])
    m = re.search(r"triple=(\S+) cpu=(\S+) features=(\S+)", err)
    ok = rc == 0 and m is not None and m.group(1).startswith("x86_64") and m.group(2) == "x86-64"
    if label == "avx2":
        ok = ok and "+avx2" in m.group(3).split(",")
    t.check(ok, "compile --target x86_64-linux-gnu %s -v: rc=%s %s" % (
        " ".join(extra), rc, m.group(0)[:160] if m else err.strip()[-300:]))
    asm[label] = open(out_s).read() if rc == 0 and os.path.exists(out_s) else ""
t.check(asm["baseline"] != "" and "%ymm" not in asm["baseline"] and "%zmm" not in asm["baseline"],
        "--cpu x86-64: the code uses no AVX registers")
t.check("%ymm" in asm["avx2"] and "vfmadd" in asm["avx2"] and "%zmm" not in asm["avx2"],
        "--cpu x86-64 --features +avx2,+fma: the code uses ymm registers and FMA")

# ------------------------------------------------------------ bad input / usage
t.expect_user_error("compile --target with an unknown triple",
                    ["compile", cfg, "--target", "bogus-foo-bar", "-o", t.path("z")],
                    must_contain=["bogus-foo-bar"])
t.expect_user_error("compile --target sparc-linux-gnu --emit exe (no linker known)",
                    ["compile", cfg, "--weights", w] + SHAPE +
                    ["--target", "sparc-linux-gnu", "-o", t.path("z")],
                    must_contain=["sparc"], max_seconds=60)
t.expect_user_error("compile --cpu with a CPU LLVM does not know",
                    ["compile", cfg, "--weights", w] + SHAPE +
                    ["--cpu", "nonsense-cpu", "--emit", "asm", "-o", t.path("z.s")],
                    must_contain=["nonsense-cpu"], max_seconds=60)
for label, args in (("--emit bogus", ["compile", cfg, "--emit", "bogus", "-o", t.path("z")]),
                    ("no -o", ["compile", cfg]),
                    ("-o without a value", ["compile", cfg, "-o"]),
                    ("unknown option", ["compile", cfg, "--no-such-option", "-o", t.path("z")]),
                    ("--disable-pass of no pass", ["compile", cfg, "--disable-pass=nope", "-o",
                                                   t.path("z")]),
                    ("--sm 75 (the CUDA code needs sm_80+)", ["compile", cfg, "--target", "cuda", "--sm", "75",
                                                               "--emit", "cuda", "-o", t.path("z")])):
    rc, out, err, dt = t.run(args, timeout=60)
    t.check(rc == 2 and err.strip() != "" and clean(rc, err) and not os.path.exists(t.path("z")),
            "compile %s: usage error, exit 2 with a message (rc=%s: %s)" % (
                label, rc, err.strip().splitlines()[0][:150] if err.strip() else ""))
t.expect_user_error("compile a missing config", ["compile", t.path("none.yaml"), "-o",
                                                 t.path("z")], must_contain=["none.yaml"])

# ------------------------------------------------------------ graph-pass options
# Each command: compile (to LLVM IR, no link), run (ref and llvm), dump.
def cmd(kind, tag):
    if kind == "compile":
        return ["compile", cfg, "--weights", w] + SHAPE + ["--emit", "llvm-ir", "-o",
                                                           t.path("p_%s.ll" % tag)]
    if kind == "run":
        return ["run", cfg, "--weights", w, "--input", xin, "--output", t.path("p_%s.npy" % tag),
                "--threads", 2]
    if kind == "run-llvm":
        return cmd("run", tag) + ["--backend", "llvm"]
    if kind == "dump":          # -o: the print-* output alone on stdout
        return ["dump", cfg] + SHAPE + ["-o", t.path("d_%s.mir" % tag)]
    if kind == "dump-kernels":
        return ["dump", cfg] + SHAPE + ["--format", "kernels"]
    raise ValueError(kind)


def all_sections(text):
    """Splits --print-* output into [(header, ir_text)], graph IR ("# IR
    after P") and kernel IR ("# kernel IR after STEP") alike."""
    parts = re.split(r"^(# (?:kernel )?IR (?:after|before) \S+)\n", text, flags=re.M)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def sections(text):
    """The graph IR sections of --print-* output."""
    return [s for s in all_sections(text) if not s[0].startswith("# kernel")]


def kernel_sections(text):
    return [s for s in all_sections(text) if s[0].startswith("# kernel")]


def roundtrip(label, secs, ext="mir"):
    bad = []
    for i, (hdr, ir) in enumerate(secs):
        mir = t.path("rt_%d.%s" % (i, ext))
        with open(mir, "w") as f:
            f.write(ir)
        rc, out, err, dt = t.run(["dump", mir], timeout=60)
        if rc != 0 or out != ir:
            bad.append("%s (rc=%s %s)" % (hdr, rc, err.strip()[:200]))
    t.check(secs != [] and not bad, "%s: each of %d printed IRs reads back byte-identical "
            "with `mambac dump FILE.%s`%s" % (label, len(secs), ext, (" BAD: " + "; ".join(bad))
                                              if bad else ""))


# kernel count of the default pipeline (the clusters --dump-dot must draw)
rc, kir, err, dt = t.run(cmd("dump-kernels", "k"), timeout=60)
mk = re.search(r"(\d+) kernels", kir)
nkernels = int(mk.group(1)) if rc == 0 and mk else None
t.check(nkernels is not None and nkernels == len(re.findall(r"^kernel ", kir, re.M)),
        "dump --format kernels: header kernel count %s == kernels listed" % nkernels)

def print_after_before(kind):
    """--print-after=fold-batchnorm: no batchnorm left; --print-before:
    still there before the pass, gone before cse."""
    rc, out, err, dt = t.run(cmd(kind, "pa") + ["--print-after=fold-batchnorm"])
    secs = sections(out)
    t.check(rc == 0 and [h for h, _ in secs] == ["# IR after fold-batchnorm"]
            and re.search(r"= batchnorm ", secs[0][1]) is None and "graph " in secs[0][1],
            "%s --print-after=fold-batchnorm: one IR, no batchnorm op left (rc=%s)%s" % (
                kind, rc, "" if rc == 0 else " " + err.strip()[-300:]))
    rc, out, err, dt = t.run(cmd(kind, "pb") + ["--print-before=fold-batchnorm",
                                               "--print-before=cse"])
    secs = sections(out)
    t.check(rc == 0 and [h for h, _ in secs] == ["# IR before fold-batchnorm", "# IR before cse"]
            and re.search(r"= batchnorm ", secs[0][1]) is not None
            and re.search(r"= batchnorm ", secs[1][1]) is None,
            "%s --print-before=fold-batchnorm --print-before=cse: two IRs, in pipeline order "
            "(rc=%s, got %s)" % (kind, rc, [h for h, _ in secs]))
    roundtrip("%s --print-before" % kind, secs)


after_all = {}
for kind in ("compile", "run", "run-llvm", "dump"):
    # --print-after=fold-batchnorm: no batchnorm left; --print-before: still there
    if kind != "run-llvm":      # (the same printing as run; spares two JIT compiles)
        print_after_before(kind)
    # --print-after-all
    rc, out, err, dt = t.run(cmd(kind, "paa") + ["--print-after-all"])
    secs = sections(out)
    t.check(rc == 0 and [h for h, _ in secs] == ["# IR after " + p for p in PASSES],
            "%s --print-after-all: one IR after each of the %d passes (rc=%s)" % (
                kind, len(PASSES), rc))
    after_all[kind] = secs
    roundtrip("%s --print-after-all" % kind, secs)
    if kind in ("compile", "run-llvm"):
        # the whole road: the kernel IR after lower, the LLVM kernel passes (concat-in-place,
        # schedule-images, tile), memplan
        ks = kernel_sections(out)
        steps = ("lower", "concat-in-place", "schedule-images", "tile", "memplan")
        t.check([h for h, _ in ks] == ["# kernel IR after " + p for p in steps],
                "%s --print-after-all: then the kernel IR after %s (%s)" % (kind, ", ".join(steps),
                                                                            [h for h, _ in ks]))
        roundtrip("%s --print-after-all (kernel IR)" % kind, ks, "kir")
    # --verify-each, --time-passes, --stats, --dump-dot together with -v off
    dot = t.path("g_%s.dot" % kind)
    rc, out, err, dt = t.run(cmd(kind, "st") + ["--verify-each", "--time-passes", "--stats",
                                               "--dump-dot=" + dot])
    t.check(rc == 0 and clean(rc, err), "%s --verify-each --time-passes --stats --dump-dot: "
            "rc=%s %s" % (kind, rc, "" if rc == 0 else err.strip()[-300:]))
    timed = [p for p in PASSES if re.search(r"^pass %s\s+[\d.]+ ms" % re.escape(p), err, re.M)]
    t.check(timed == PASSES, "%s --time-passes: a time for each pass (%s)" % (kind, timed))
    stat = [p for p in PASSES if re.search(r"^pass %s\s+(?:changed|no change)\s+\d+ rewrites, "
                                           r"nodes \d+ -> \d+" % re.escape(p), err, re.M)]
    t.check(stat == PASSES, "%s --stats: rewrites and node counts for each pass (%s)" % (
        kind, stat))
    if kind in ("compile", "run-llvm"):
        mp = re.search(r"^memplan: [\d.]+ MB -> [\d.]+ MB, \d+ buffers", err, re.M)
        t.check(mp is not None, "%s --stats: prints the memplan line%s" % (
            kind, (": " + mp.group(0)) if mp else " (none on stderr)"))
    dtext = open(dot).read() if os.path.exists(dot) else ""
    ncl = len(re.findall(r"^\s*subgraph cluster", dtext, re.M))
    t.check(dtext.startswith("digraph") and dtext.rstrip().endswith("}") and ncl == nkernels,
            "%s --dump-dot: a DOT graph with %d clusters (one per kernel: %s)" % (
                kind, ncl, nkernels))
    if kind.startswith("run") and rc == 0:
        E.check_logits(t, "%s with --verify-each --stats ..." % kind, t.path("p_st.npy"), want)
# dump --format kernels --stats: kernels are planned there, so the memplan line
rc, out, err, dt = t.run(cmd("dump-kernels", "s") + ["--stats"], timeout=60)
mp = re.search(r"^memplan: [\d.]+ MB -> [\d.]+ MB, \d+ buffers", err, re.M)
t.check(rc == 0 and mp is not None, "dump --format kernels --stats: prints the memplan line%s" % (
    (": " + mp.group(0)) if mp else " (none on stderr)"))

# the IR after each pass is the same whichever command prints it
ref_secs = after_all.get("dump")
for kind in ("compile", "run", "run-llvm"):
    t.check(ref_secs is not None and after_all.get(kind) == ref_secs,
            "%s --print-after-all prints the same IR as dump --print-after-all" % kind)

# ------------------------------------------------------------ --disable-pass
# The pipeline without fold-state-fusion: the pass does not run, the state
# fusion stays a graph op, and the compiled code still matches the reference.
rc, out, err, dt = t.run(cmd("dump", "d") + ["--disable-pass=fold-state-fusion",
                                            "--print-after-all", "--stats"], timeout=60)
secs = sections(out)
t.check(rc == 0 and [h for h, _ in secs] == ["# IR after " + p for p in PASSES
                                              if p != "fold-state-fusion"]
        and re.search(r"= state_fusion ", secs[-1][1] if secs else "") is not None
        and re.search(r"^pass fold-state-fusion\s+(?:changed|no change)", err, re.M) is None,
        "dump --disable-pass=fold-state-fusion: the pass is skipped, state_fusion ops remain")
rc, out, err, dt = t.run(cmd("dump-kernels", "d") + ["--disable-pass=fold-state-fusion"],
                         timeout=60)
mk = re.search(r"(\d+) kernels", out)
# lowering legalizes an unfolded state_fusion itself (its tap table is made
# at lowering time, docs/kernel-ir.md), so the kernel IR still has fusion25
# kernels, reading a `.taps` weight buffer that the graph does not have.
t.check(rc == 0 and mk is not None and "fusion25" in out and '.taps" f32' in out,
        "dump --format kernels --disable-pass=fold-state-fusion: kernel IR with the tap table "
        "made at lowering (rc=%s%s)" % (rc, "" if rc == 0 and mk else
                                      ", " + (err.strip()[-300:] or "empty output")))
exe = t.path("nofold")
rc, out, err, dt = t.run(["compile", cfg, "--weights", w] + SHAPE +
                         ["--disable-pass=fold-state-fusion", "-o", exe])
if t.check(rc == 0, "compile --disable-pass=fold-state-fusion: rc=%s (%.1fs)%s" % (
        rc, dt, "" if rc == 0 else " " + err.strip()[-300:])):
    y = t.path("y_nofold.npy")
    rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", y, "--threads", 2])
    t.check(rc == 0, "nofold exe runs (rc=%s) %s" % (rc, err.strip()[:300]))
    E.check_logits(t, "compile --disable-pass=fold-state-fusion: exe", y, want, dt)
for backend in ("ref", "llvm"):
    y = t.path("y_nofold_%s.npy" % backend)
    rc, out, err, dt = t.run(["run", cfg, "--weights", w, "--input", xin, "--output", y,
                              "--backend", backend, "--threads", 2,
                              "--disable-pass=fold-state-fusion"])
    if t.check(rc == 0, "run --backend %s --disable-pass=fold-state-fusion: rc=%s %s" % (
            backend, rc, err.strip()[-300:])):
        E.check_logits(t, "run --backend %s --disable-pass=fold-state-fusion" % backend, y, want, dt)

# ------------------------------------------------------------ --target cuda
# --emit cuda: the readable .cu (one __global__ per fused kernel, the
# precision named) and the weights blob of the size it expects; --emit exe
# (where nvcc is installed): a progress line for nvcc, an executable whose
# --help needs no GPU and that, run without a usable GPU, says so (exit 1).
cu = t.path("cu")
rc, out, err, dt = t.run(["compile", cfg, "--weights", w] + SHAPE +
                         ["--target", "cuda", "--precision", "bf16", "--emit", "cuda", "-o", cu], timeout=120)
src = open(cu + ".cu").read() if rc == 0 and os.path.exists(cu + ".cu") else ""
m = re.search(r"#define MC_WEIGHTS_BYTES (\d+)ll", src)
wbytes = os.path.getsize(cu + ".weights") if os.path.exists(cu + ".weights") else -1
t.check(rc == 0 and src.count("__global__ void") > 10 and m is not None and int(m.group(1)) == wbytes and
        '#define MC_PRECISION "bf16"' in src,
        "compile --target cuda --emit cuda: rc=%s, %d kernels, weights blob %d bytes as the .cu expects (%s)%s" % (
            rc, src.count("__global__ void"), wbytes, m.group(1) if m else "none",
            "" if rc == 0 else " " + err.strip()[-300:]))
# --sm 90 builds for sm_90a (wgmma); an nvcc older than CUDA 12.0 has no
# sm_90a: a note, then plain sm_90 (a stand-in nvcc that reports 11.8 and
# fails the build shows the command, and the symbols of the embedded
# weights' object it was given: mc_cuda_weights, the blob and a zero byte)
fake = t.path("old-nvcc")
with open(fake, "w") as f:
    f.write('#!/bin/sh\n[ "$1" = --version ] && { echo "Cuda compilation tools, release 11.8, V11.8.89"; exit 0; }\n'
            'echo "stand-in nvcc: $*"; nm -S weights.o; exit 3\n')
os.chmod(fake, 0o755)
rc, out, err, dt = t.run(["compile", cfg, "--weights", w] + SHAPE + ["--target", "cuda", "--precision", "bf16",
                                                                     "-o", t.path("oldexe")],
                         timeout=120, env=dict(os.environ, NVCC=fake))
t.check(rc == 1 and "older than CUDA 12.0 (no sm_90a): building for sm_90" in err and
        "-gencode=arch=compute_90,code=sm_90 " in err and "stand-in nvcc: " in err and "sm_90a" not in err.split(
            "stand-in nvcc: ")[1],
        "compile --target cuda with an nvcc older than 12.0: a note, sm_90 instead of sm_90a, its failure "
        "reported (rc=%s: %s)" % (rc, err.strip()[-300:]))
t.check(re.search(r"^0+ 0*%x R mc_cuda_weights$" % (wbytes + 1), err, re.M) is not None,
        "compile --target cuda --emit exe: the weights' object holds the %d-byte blob as mc_cuda_weights (%s)" % (
            wbytes, err.strip()[-300:]))
nvcc = os.environ.get("NVCC") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else None)
if nvcc:
    exe = t.path("cuexe")
    rc, out, err, dt = t.run(["compile", cfg, "--weights", w] + SHAPE + ["--target", "cuda", "-o", exe], timeout=900)
    built = rc == 0 and os.access(exe, os.X_OK)
    t.check(built and "(sm_90a)..." in err, "compile --target cuda (--emit exe): rc=%s, an executable, nvcc's "
            "step announced, for sm_90a (%.1fs)%s" % (rc, dt, "" if built else " " + err.strip()[-300:]))
    if built:
        rc, out, err, dt = E.run_prog([exe, "--help"])
        text = (out + err).decode(errors="replace") if isinstance(out, bytes) else out + err
        t.check(rc == 0 and "on the GPU" in text and "[%d, 3, %d, %d]" % (B, H, W) in text,
                "cuda executable --help without touching the GPU: rc=%s, names the input shape" % rc)
        y = t.path("y_cu.npy")
        rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", y])
        text = err.decode(errors="replace") if isinstance(err, bytes) else err
        if rc == 0:
            E.check_logits(t, "cuda executable (bf16) on this machine's GPU", y, want, dt, tol=2e-2)
        else:
            t.check(rc == 1 and "no usable NVIDIA GPU" in text,
                    "cuda executable without a usable GPU: exit 1 with a clear message (rc=%s: %s)" % (
                        rc, text.strip()[:200]))
else:
    print("skip: no nvcc (--target cuda --emit exe)")
t.finish()
