"""e2e: `mambac compile` artifacts on the host against the float64 PyTorch
reference (relative L2 error of the logits <= 1e-4).

- --emit exe: tiny and a custom config (EMBED_DIM 32, depths [1,2,1,1], 17
  classes, MLP_RATIO 2.5) at odd non-square sizes, batch 1 and 3; the
  executable runs `OUT --input X --output Y`, refuses an input of another
  shape / dtype with exit 1 and a message, `--bench 3` prints
  `median .. ms, min .. ms, max .. ms, .. images/s`, `--profile` times kernels.
- --emit shared / obj: OUT.so / OUT.o + OUT.h + OUT.weights; the header's
  sizes and hash match the weights file; examples/embed builds and runs
  against both; two models' objects link into one C program.
- --emit llvm-ir / asm: text holding the model's entry symbol.
- compiling twice (into another directory) gives byte-identical files.
"""
import os
import re
import struct

import numpy as np

import e2e_common as E

t = E.Test("compile_exe")
REPO = E.REPO


def compile_ok(label, args, timeout=300):
    rc, out, err, dt = t.run(["compile"] + [str(a) for a in args], timeout=timeout)
    ok = t.check(rc == 0 and not any(w in err.lower() for w in E.BAD_WORDS),
                 "%s: mambac compile rc=%s (%.1fs)%s" % (label, rc, dt,
                                                         "" if rc == 0 else " " + err.strip()[-1500:]))
    return ok


def run_exe(label, exe, x, want, threads=2, tag=""):
    """Runs a compiled executable on x; checks the logits; returns the bytes
    of the output file (or None)."""
    xin = t.path("x_%s.npy" % tag)
    yout = t.path("y_%s.npy" % tag)
    np.save(xin, x.astype(np.float32))
    if os.path.exists(yout):
        os.unlink(yout)
    rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", yout, "--threads", threads],
                                  timeout=120)
    if not t.check(rc == 0, "%s: %s --input --output rc=%s (%.2fs) %s" % (
            label, os.path.basename(exe), rc, dt, err.strip()[:500])):
        return None
    E.check_logits(t, label, yout, want, dt)
    return open(yout, "rb").read() if os.path.exists(yout) else None


def header_defs(path):
    defs = {}
    for m in re.finditer(r"^#define (\w+) (.+?)\s*(?:/\*.*)?$", open(path).read(), re.M):
        defs[m.group(1)] = m.group(2).strip()
    return defs


def parse_int(v):
    return int(v.rstrip("uUlL"), 0)


cfg, sd, depths = E.custom_model(t)
ws = E.save_weights("safetensors", t.path("custom.safetensors"), sd)
wt = E.save_weights("train", t.path("custom_train.pth"), sd)
A, B = t.path("a"), t.path("b")        # the same outputs compiled twice
for d in (A, B):
    os.makedirs(os.path.join(d, "so"))
    os.makedirs(os.path.join(d, "obj"))

# ------------------------------------------------------------ executables
# tiny, batch 1, 45x38, training checkpoint
tcfg, C, tdepths, ncls, mlp, inc = E.config_for(t, "tiny")
tsd = E.sm.random_state_dict(C, tdepths, ncls, inc, mlp, seed=501)
tw = E.save_weights("train", t.path("tiny_train.pth"), tsd)
tiny_exe = t.path("tiny_45x38")
if compile_ok("tiny exe 1x45x38", [tcfg, "--weights", tw, "--batch", 1, "--image-size", "45x38",
                                   "-o", tiny_exe]):
    x = E.image((1, 3, 45, 38), seed=51)
    run_exe("tiny exe 1x45x38", tiny_exe, x, E.reference(x, tsd, tdepths), tag="tiny")
os.unlink(tw)
os.unlink(tiny_exe) if os.path.exists(tiny_exe) else None
tsd = None

# custom, batch 3, 37x41 (H x W), safetensors: compiled into a/ and b/
HW = (37, 41)
x3 = E.image((3, 3) + HW, seed=52)
want3 = E.reference(x3, sd, depths)
common = [cfg, "--weights", ws, "--batch", 3, "--image-size", "%dx%d" % HW]
exe = os.path.join(A, "custom")
have_exe = compile_ok("custom exe 3x37x41", common + ["-o", exe])
if have_exe:
    y1 = run_exe("custom exe 3x37x41", exe, x3, want3, tag="c3a")
    y2 = run_exe("custom exe 3x37x41 again", exe, x3, want3, tag="c3b")
    t.check(y1 is not None and y1 == y2, "custom exe: two runs give byte-identical outputs")
    run_exe("custom exe 3x37x41 --threads 1", exe, x3, want3, threads=1, tag="c3c")

    # wrong shape / dtype / file: exit 1 with a message naming the shapes
    bad = [("batch 1", np.zeros((1, 3) + HW, np.float32), ("[1,3,37,41]", "[3,3,37,41]")),
           ("H and W swapped", np.zeros((3, 3, 41, 37), np.float32), ("[3,3,41,37]", "[3,3,37,41]")),
           ("rank 3", np.zeros((3,) + HW, np.float32), ("shape",)),
           ("float64", np.zeros((3, 3) + HW, np.float64), ("float64", "float32"))]
    for what, arr, words in bad:
        xin = t.path("bad.npy")
        np.save(xin, arr)
        yout = t.path("bad_out.npy")
        rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", yout], timeout=60)
        flat = re.sub(r"\s+", "", err)
        missing = [w for w in words if w not in flat]
        t.check(rc == 1 and not missing and not os.path.exists(yout)
                and not any(w in err.lower() for w in E.BAD_WORDS),
                "exe refuses an input of %s: rc=%s stderr: %s%s" % (
                    what, rc, err.strip()[:200], (" MISSING %r" % missing) if missing else ""))
    rc, out, err, dt = E.run_prog([exe, "--input", t.path("no_such.npy"), "--output", yout])
    t.check(rc == 1 and err.strip() != "", "exe: a missing input file gives exit 1 and a message "
            "(rc=%s: %s)" % (rc, err.strip()[:200]))
    rc, out, err, dt = E.run_prog([exe, "--no-such-option"])
    t.check(rc == 2 and err.strip() != "", "exe: an unknown option gives exit 2 (rc=%s)" % rc)
    rc, out, err, dt = E.run_prog([exe, "--help"])
    t.check(rc == 0 and "[3,3,37,41]" in out + err and "[3,17]" in out + err,
            "exe --help: exit 0, names the input [3,3,37,41] and output [3,17] shapes (rc=%s)" % rc)

    # --bench 3
    rc, out, err, dt = E.run_prog([exe, "--bench", 3, "--threads", 2], timeout=120)
    m = re.search(r"median (\d+(?:\.\d+)?) ms, min (\d+(?:\.\d+)?) ms, max (\d+(?:\.\d+)?) ms, "
                  r"(\d+(?:\.\d+)?) images/s", out)
    ok = rc == 0 and m is not None
    if ok:
        med, lo, hi, ips = (float(v) for v in m.groups())
        ok = 0 < lo <= med <= hi and ips > 0 and abs(ips - 3e3 / med) <= 0.02 * ips
    t.check(ok, "exe --bench 3: rc=%s '%s' (median/min/max ordered, images/s = 3 / median)" % (
        rc, (out.strip() or err.strip())[:200]))
    # bench on a given input also works and writes nothing it shouldn't
    xin = t.path("x_c3a.npy")
    rc, out, err, dt = E.run_prog([exe, "--input", xin, "--bench", 2], timeout=120)
    t.check(rc == 0 and "median" in out, "exe --input X --bench 2: rc=%s" % rc)

    # --profile 2: one row per fused kernel, kernels report their time
    rc, out, err, dt = E.run_prog([exe, "--profile", 2, "--threads", 2], timeout=120)
    rows = re.findall(r"^\s*\d+\s+(\S+)\s+([\d.]+)\s+([\d.]+)%\s+([\d.]+)\s+(\d+)\s*$", out, re.M)
    calls = [int(r[4]) for r in rows]
    nk = re.search(r"(\d+) kernels", out)
    t.check(rc == 0 and nk is not None and len(rows) == int(nk.group(1)) and rows,
            "exe --profile 2: rc=%s, %d kernel rows (header says %s)" % (
                rc, len(rows), nk.group(1) if nk else "?"))
    t.check(rows != [] and all(c >= 1 for c in calls) and
            sum(float(r[2]) for r in rows) > 50.0,
            "exe --profile 2: every kernel was called and timed (calls>=1 for %d of %d kernels, "
            "shares sum to %.1f%%)%s" % (sum(c >= 1 for c in calls), len(rows),
                                        sum(float(r[2]) for r in rows),
                                        "" if all(c >= 1 for c in calls) and rows else
                                        "  output: " + " | ".join(out.splitlines()[:2])))

# custom, batch 1, 50x33, training checkpoint
x1 = E.image((1, 3, 50, 33), seed=53)
exe1 = t.path("custom_1x50x33")
if compile_ok("custom exe 1x50x33", [cfg, "--weights", wt, "--image-size", "50x33", "-o", exe1]):
    run_exe("custom exe 1x50x33", exe1, x1, E.reference(x1, sd, depths), tag="c1")
    os.unlink(exe1)

# ------------------------------------------------------------ shared / obj
lib = {"so": os.path.join(A, "so", "custom"), "obj": os.path.join(A, "obj", "custom")}
wbytes = None
for kind, emit, ext in (("so", "shared", ".so"), ("obj", "obj", ".o")):
    out = lib[kind]
    # -o with the extension: it is dropped (docs/artifacts.md)
    if not compile_ok("custom --emit %s" % emit, common + ["--emit", emit, "-o", out + ext]):
        continue
    files = [out + ext, out + ".h", out + ".weights"]
    t.check(all(os.path.exists(f) for f in files) and not os.path.exists(out + ext + ext),
            "--emit %s -o custom%s writes %s" % (emit, ext, ", ".join(os.path.basename(f)
                                                                       for f in files)))
    if not all(os.path.exists(f) for f in files):
        continue
    with open(out + ext, "rb") as f:
        head = f.read(20)
    etype = struct.unpack("<H", head[16:18])[0]
    t.check(head[:4] == b"\x7fELF" and etype == (3 if kind == "so" else 1),
            "custom%s is an ELF %s" % (ext, "shared object" if kind == "so" else "relocatable"))
    d = header_defs(out + ".h")
    wb = open(out + ".weights", "rb").read()
    try:
        ok = (parse_int(d["CUSTOM_WEIGHTS_SIZE"]) == len(wb)
              and d["CUSTOM_INPUT_SHAPE"].replace(" ", "") == "{3,3,37,41}"
              and d["CUSTOM_OUTPUT_SHAPE"].replace(" ", "") == "{3,17}"
              and parse_int(d["CUSTOM_INPUT_COUNT"]) == 3 * 3 * 37 * 41
              and parse_int(d["CUSTOM_OUTPUT_COUNT"]) == 3 * 17
              and parse_int(d["CUSTOM_BATCH"]) == 3
              and parse_int(d["CUSTOM_ALIGNMENT"]) >= 16
              and parse_int(d["CUSTOM_SCRATCH_SIZE"]) > 0)
        why = ""
    except (KeyError, ValueError) as e:
        ok, why = False, " (%s)" % e
    t.check(ok, "custom.h (%s): sizes and shapes match custom.weights (%d bytes)%s" % (
        emit, len(wb), why))
    if kind == "so":
        wbytes = wb
    else:
        t.check(wbytes is None or wb == wbytes, "--emit obj and --emit shared write the same "
                                                "weights file")

    # examples/embed against it
    bdir = t.path("embed_" + kind)
    os.makedirs(bdir)
    target = "embed" if kind == "obj" else "embed-so"
    rc, mout, merr, dt = E.run_prog(["make", "-s", "-f", os.path.join(REPO, "examples", "embed",
                                                                      "Makefile"),
                                     "MODEL=" + out, target], cwd=bdir, timeout=120)
    if not t.check(rc == 0 and os.path.exists(os.path.join(bdir, target)),
                   "examples/embed: make %s against custom%s rc=%s %s" % (
                       target, ext, rc, (mout + merr).strip()[-800:])):
        continue
    rc, eout, eerr, dt = E.run_prog([os.path.join(bdir, target), out + ".weights",
                                     t.path("x_c3a.npy"), 2], timeout=60)
    imgs = re.findall(r"^image (\d+):((?:\s+\d+ \(-?[\d.]+\))+)\s*$", eout, re.M)
    ok = rc == 0 and len(imgs) == 3
    worst = 0.0
    if ok:
        for b, rest in imgs:
            b = int(b)
            pairs = [(int(c), float(v)) for c, v in re.findall(r"(\d+) \((-?[\d.]+)\)", rest)]
            ref = want3[b]
            scale = float(np.abs(ref).max())
            order = np.argsort(-ref)
            fifth = ref[order[4]]
            for c, v in pairs:
                worst = max(worst, abs(v - ref[c]) / scale)
            # the five printed are the reference's top five (up to ties within 1e-3)
            ok = ok and len(pairs) == 5 and all(ref[c] >= fifth - 1e-3 * scale for c, _ in pairs)
            ok = ok and len(set(c for c, _ in pairs)) == 5
        ok = ok and worst <= 2e-4
    t.check(ok, "examples/embed (%s) on custom%s: rc=%s, top-5 of 3 images match the reference "
            "(max err %.2g of max|logit|)%s" % (target, ext, rc, worst,
                                                "" if ok else " out: " + (eout + eerr)[:400]))
    # embed checks the weights against CUSTOM_WEIGHTS_SIZE and _FNV1A64: a
    # copy with one byte changed must be refused (so the header's hash is
    # the hash of the file it accepted above)
    flipped = os.path.join(bdir, "flipped.weights")
    with open(flipped, "wb") as f:
        f.write(wb[:len(wb) // 2] + bytes([wb[len(wb) // 2] ^ 1]) + wb[len(wb) // 2 + 1:])
    rc, eout, eerr, dt = E.run_prog([os.path.join(bdir, target), flipped, t.path("x_c3a.npy")],
                                    timeout=60)
    t.check(rc == 1 and "not compiled with this model" in eerr,
            "examples/embed refuses weights with one byte changed (header hash) rc=%s %s" % (
                rc, eerr.strip()[:200]))

# two models (different names and weights) linked into one program
sd2 = E.sm.random_state_dict(32, depths, 17, 3, 2.5, seed=77)
w2 = E.save_weights("safetensors", t.path("second.safetensors"), sd2)
cfg2 = E.write_config(t.path("second.yaml"), 32, depths, num_classes=17, mlp_ratio=2.5,
                      name="second-net.v2")
two = os.path.join(t.work, "two")
os.makedirs(two)
ok2 = compile_ok("second-net.v2 --emit obj (symbol prefix second_net_v2)",
                 [cfg2, "--weights", w2, "--batch", 3, "--image-size", "37x41", "--emit", "obj",
                  "-o", os.path.join(two, "second")])
if ok2 and os.path.exists(lib["obj"] + ".o"):
    hdr = open(os.path.join(two, "second.h")).read()
    t.check("second_net_v2_run(" in hdr and "SECOND_NET_V2_WEIGHTS_SIZE" in hdr,
            "second.h names second_net_v2_run and SECOND_NET_V2_* (non-identifier characters -> _)")
    prog = os.path.join(two, "two.c")
    with open(prog, "w") as f:
        f.write(r'''
#define MC_MODEL_NO_ALIASES
#include "custom.h"
#include "second.h"
#include <stdio.h>
#include <stdlib.h>
static void *slurp(const char *p, size_t n, size_t align) {
    void *m = NULL; FILE *f = fopen(p, "rb");
    if (!f || posix_memalign(&m, align, n ? n : 1) || fread(m, 1, n, f) != n) { perror(p); exit(1); }
    fclose(f); return m;
}
int main(int argc, char **argv) {
    void *wa = slurp(argv[1], CUSTOM_WEIGHTS_SIZE, CUSTOM_ALIGNMENT);
    void *wb = slurp(argv[2], SECOND_NET_V2_WEIGHTS_SIZE, SECOND_NET_V2_ALIGNMENT);
    float *x = slurp(argv[3], CUSTOM_INPUT_COUNT * 4, 64);
    static float ya[CUSTOM_OUTPUT_COUNT], yb[SECOND_NET_V2_OUTPUT_COUNT];
    void *sa = NULL, *sb = NULL;
    if (posix_memalign(&sa, 64, CUSTOM_SCRATCH_SIZE) || posix_memalign(&sb, 64, SECOND_NET_V2_SCRATCH_SIZE)) return 1;
    mc_rt_set_threads(2);
    if (custom_run(wa, x, ya, sa) || second_net_v2_run(wb, x, yb, sb)) return 1;
    for (int i = 0; i < CUSTOM_OUTPUT_COUNT; i++) printf("%.9g\n", ya[i]);
    for (int i = 0; i < SECOND_NET_V2_OUTPUT_COUNT; i++) printf("%.9g\n", yb[i]);
    return 0;
}
''')
    raw = os.path.join(two, "x.raw")
    x3.astype("<f4").tofile(raw)
    cc = os.environ.get("CC", "cc")
    rc, out, err, dt = E.run_prog([cc, "-O2", "-I" + os.path.dirname(lib["obj"]), "-I" + two, prog,
                                   lib["obj"] + ".o", os.path.join(two, "second.o"), "-fopenmp",
                                   "-lm", "-o", os.path.join(two, "two")], timeout=120)
    if t.check(rc == 0, "two models' objects link into one program (%s) rc=%s %s" % (
            cc, rc, err.strip()[-600:])):
        rc, out, err, dt = E.run_prog([os.path.join(two, "two"), lib["obj"] + ".weights",
                                       os.path.join(two, "second.weights"), raw], timeout=60)
        vals = np.array([float(v) for v in out.split()]) if rc == 0 else np.zeros(0)
        if t.check(rc == 0 and vals.size == 102, "two-model program runs (rc=%s, %d values)" % (
                rc, vals.size)):
            for nm, got, w in (("custom", vals[:51], want3),
                               ("second_net_v2", vals[51:], E.reference(x3, sd2, depths))):
                e = E.sm.rel_l2(got.reshape(w.shape), w)
                t.check(e <= E.TOL, "two-model program: %s logits rel L2 err %.3g" % (nm, e))

# ------------------------------------------------------------ llvm-ir / asm
for emit, ext, pat in (("llvm-ir", ".ll", r"^define\b[^\n]*@custom_run\("),
                       ("asm", ".s", r"^custom_run:")):
    out = os.path.join(A, "custom" + ext)
    if compile_ok("custom --emit %s" % emit, common + ["--emit", emit, "-o", out]):
        txt = open(out, errors="replace").read() if os.path.exists(out) else ""
        t.check(re.search(pat, txt, re.M) is not None and "\0" not in txt,
                "--emit %s: text (%d bytes) defines the entry symbol custom_run" % (emit, len(txt)))

# ------------------------------------------------------------ reproducible
# The same commands again, into b/ (same base names, another directory).
again = [("exe", "custom", ["custom"]),
         ("shared", os.path.join("so", "custom"), ["so/custom.so", "so/custom.h", "so/custom.weights"]),
         ("obj", os.path.join("obj", "custom"), ["obj/custom.o", "obj/custom.h", "obj/custom.weights"]),
         ("llvm-ir", "custom.ll", ["custom.ll"]),
         ("asm", "custom.s", ["custom.s"])]
for emit, rel, files in again:
    if not compile_ok("custom --emit %s again (into b/)" % emit,
                      common + ["--emit", emit, "-o", os.path.join(B, rel)]):
        continue
    for f in files:
        fa, fb = os.path.join(A, f), os.path.join(B, f)
        same = os.path.exists(fa) and os.path.exists(fb) and \
            open(fa, "rb").read() == open(fb, "rb").read()
        t.check(same, "compiling twice gives byte-identical %s (%s bytes)" % (
            f, os.path.getsize(fa) if os.path.exists(fa) else "missing"))
t.finish()
