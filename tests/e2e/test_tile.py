"""The tile pass: every kernel's schedule decided by a kernel pass of the
LLVM target, recorded in the kernel IR and obeyed by the code generator
(docs/kernel-ir.md, "Schedules (the tile pass)").

Takes: the mambac executable (argv[1]).
Checks:
  - `dump --format kernels` gives every kernel a schedule line (vec = the
    target's lanes, a grain; GEMMs tile_m, tile_n, block_m and order) and
    --print-after=tile prints the same schedules; with --disable-pass=tile
    there are none and the LLVM IR is the same as with the pass (the code
    generator decides what the pass records);
  - a hand-edited .kir with other valid schedules (every GEMM's tile_m,
    tile_n, block_m and order, the convs' tile_m and blocking (tile_k,
    block_n: the blocked implicit GEMM), the scans' and fusion25s'
    channels per task, the layernorms' grain) compiles with --model and
    --weights, its LLVM IR differs from the default's (the edit reaches the
    code), its logits match the PyTorch float64 reference, and
    `mambac verify` passes on it kernel by kernel; for aarch64 (4 lanes)
    the schedules say vec=4 and an edit changes the generated IR too;
  - a .kir without a memory plan: the fields set in it are kept, the others
    derived from them (tile_m=3 gives a block_m of whole 3-row tiles);
  - x86-64 hosts: a two-CPU build of the edited .kir (one CPU with the
    schedule's lanes, one without, which decides itself) runs and matches
    the reference; the CPU without alone is refused;
  - schedules the code generator cannot honour are refused with one
    sentence naming the kernel: tile_m past the micro-kernel, a tile_n that
    is not whole vectors or too many of them, a vec that is not the
    target's lanes, block_m not whole tiles, order 3, a conv's tile_k past
    its input channels, block_m not whole output rows, block_n not whole
    panels, a field the kind has no use for (CUDA's threads on a layernorm,
    tile_m on a dwconv).
Expected values come from the PyTorch reference, never from mambac.
"""
import os
import platform
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as E  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

t = E.Test("tile")
cfg, sd, depths = E.custom_model(t, embed_dim=16, depths=(1, 1, 2, 1), num_classes=10)
w = E.save_weights("safetensors", t.path("c.safetensors"), sd)
x = E.image((2, 3, 64, 64), 11)
xin = t.path("x.npy")
np.save(xin, x)
want = E.reference(torch.from_numpy(x).double(), sd, depths)
SHAPE = ["--batch", "2", "--image-size", "64"]
KERNEL = re.compile(r"^kernel k(\d+) (\w+) ")


def schedules(text):
    """[(kernel index, kind, {field: value} or None)] in program order."""
    out = []
    for line in text.split("\n"):
        m = KERNEL.match(line)
        if m:
            out.append([int(m.group(1)), m.group(2), None])
        elif line.startswith("  schedule ") and out:
            out[-1][2] = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
    return out


def edit(text, fn):
    """text with fn(kind, fields) applied to every kernel's schedule; the
    number of kernels whose schedule changed."""
    lines, kind, n = [], None, 0
    for line in text.split("\n"):
        m = KERNEL.match(line)
        if m:
            kind = m.group(2)
        elif line.startswith("  schedule "):
            f = {k: int(v) for k, v in (f.split("=") for f in line.split()[1:])}
            g = fn(kind, dict(f))
            n += g != f
            line = "  schedule " + " ".join("%s=%d" % kv for kv in g.items() if kv[1])
        lines.append(line)
    return "\n".join(lines), n


def write(name, text):
    p = t.path(name)
    with open(p, "w") as f:
        f.write(text)
    return p


# 1. the schedules in the dump and after the pass; none without it, same code
kir = t.path("m.kir")
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--weights", w, "-o", kir] + SHAPE)
t.check(rc == 0, "dump --format kernels: rc=%s %s" % (rc, err.strip()[-200:]))
text = open(kir).read() if rc == 0 else ""
ks = schedules(text)
vec = ks[0][2]["vec"] if ks and ks[0][2] else 0
t.check(ks and all(s and s.get("vec") == vec and s.get("grain", 0) >= 1 for _, _, s in ks) and vec in (4, 8, 16),
        "every one of the %d kernels has a schedule with vec=%d (the target's lanes) and a grain" % (len(ks), vec))
gemms = [s for _, kind, s in ks if kind == "gemm"]
t.check(gemms and all(s and {"tile_m", "tile_n", "block_m", "order"} <= set(s) and s["tile_n"] % vec == 0
                      and s["block_m"] % s["tile_m"] == 0 for s in gemms),
        "the %d GEMMs record their register tile, row block and task order" % len(gemms))
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--print-after=tile", "-o", t.path("pa.kir")] + SHAPE)
after = out.split("# kernel IR after tile\n")
t.check(rc == 0 and len(after) == 2 and schedules(after[1]) == ks,
        "--print-after=tile prints the kernel IR with the same schedules (rc=%s)" % rc)
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--disable-pass=tile", "-o", t.path("off.kir")] + SHAPE)
t.check(rc == 0 and "  schedule " not in open(t.path("off.kir")).read(),
        "--disable-pass=tile: no schedule line (rc=%s)" % rc)
ir = {}
for label, extra in (("default", []), ("no tile pass", ["--disable-pass=tile"])):
    p = t.path("%s.ll" % label.replace(" ", "_"))
    rc, out, err, dt = t.run(["compile", cfg, "--emit", "llvm-ir", "-o", p] + SHAPE + extra, timeout=300)
    ir[label] = open(p, "rb").read() if rc == 0 else None
t.check(ir["default"] is not None and ir["default"] == ir["no tile pass"],
        "the LLVM IR with the tile pass is the IR without it (%d bytes)" % len(ir["default"] or b""))


# 2. other valid tiles, by hand: compiles, reaches the code, same numbers
def other_tiles(kind, f):
    v = f["vec"]
    if kind == "gemm":
        f["tile_m"] = 3 if f["tile_m"] != 3 else 5
        f["tile_n"] = v if f["tile_n"] != v else 2 * v
        f["block_m"] = 2 * f["tile_m"]
        f["order"] = 3 - f["order"]
    elif kind == "conv":
        f["tile_m"] = 4 if f["tile_m"] != 4 else 2
        f["tile_k"] = 2  # blocked: K blocks of 2 channels, one panel per task (block_m derived)
        f["block_n"] = f["tile_n"]
    elif kind == "scan":
        f["tile_n"] = v if f["tile_n"] != v else 2 * v
    elif kind == "fusion25":
        f["tile_n"] = v if f["tile_n"] != v else 3 * v
    elif kind == "layernorm":
        f["grain"] = 1 if f["grain"] != 1 else 3
    return f


edited_text, n = edit(text, other_tiles)
edited = write("edited.kir", edited_text)
t.check(n >= len(gemms) + 5, "the hand edit changes the schedule of %d kernels" % n)
rc, out, err, dt = t.run(["compile", edited, "--emit", "llvm-ir", "-o", t.path("edited.ll")], timeout=300)
rc0, out, err0, dt = t.run(["compile", kir, "--emit", "llvm-ir", "-o", t.path("kir.ll")], timeout=300)
if t.check(rc == 0 and rc0 == 0, "compile of the .kir and of the edited .kir to LLVM IR: rc=%s/%s %s" % (
        rc0, rc, (err0 + err).strip()[-300:])):
    a, b = open(t.path("kir.ll"), "rb").read(), open(t.path("edited.ll"), "rb").read()
    t.check(a == ir["default"], "the dumped .kir compiles to the model's LLVM IR")
    t.check(a != b, "the edited schedules reach the code: the LLVM IR differs (%d vs %d bytes)" % (len(a), len(b)))
exe = t.path("edited_exe")
rc, out, err, dt = t.run(["compile", edited, "--model", cfg, "--weights", w, "-o", exe], timeout=300)
if t.check(rc == 0, "compile edited.kir --model --weights: rc=%s %s" % (rc, err.strip()[-300:])):
    y = t.path("y.npy")
    r = E.run_prog([exe, "--input", xin, "--output", y, "--threads", "2"])
    if t.check(r[0] == 0, "the edited .kir's executable runs (rc=%s %s)" % (r[0], r[2].strip()[-200:])):
        E.check_logits(t, "edited schedules", y, want)
rc, out, err, dt = t.run(["verify", edited, "--model", cfg, "--weights", w, "--input", xin, "--threads", "2"],
                         timeout=600)
nk = len(re.findall(r"^k\d+\s", out, re.M))
t.check(rc == 0 and nk == len(ks), "mambac verify edited.kir: every one of the %d kernels within the tolerance "
        "(rc=%s) %s" % (nk, rc, (out + err).strip()[-300:] if rc else ""))

# the same for another target (aarch64: 4 lanes, 32 registers), to LLVM IR
AA = ["--target", "aarch64-linux-gnu"]
akir = t.path("a.kir")
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "-o", akir] + SHAPE + AA)
atext = open(akir).read() if rc == 0 else ""
aks = schedules(atext)
t.check(aks and all(s and s.get("vec") == 4 for _, _, s in aks),
        "aarch64: every kernel's schedule has vec=4 (rc=%s)" % rc)
aedited = write("a_edited.kir", edit(atext, other_tiles)[0])
rc0, out, err0, dt = t.run(["compile", akir, "--emit", "llvm-ir", "-o", t.path("a.ll")] + AA, timeout=300)
rc, out, err, dt = t.run(["compile", aedited, "--emit", "llvm-ir", "-o", t.path("a_edited.ll")] + AA, timeout=300)
t.check(rc0 == 0 and rc == 0 and open(t.path("a.ll"), "rb").read() != open(t.path("a_edited.ll"), "rb").read(),
        "aarch64: the edited .kir compiles and its LLVM IR differs (rc=%s/%s %s)" % (
            rc0, rc, (err0 + err).strip()[-200:]))

# 3. a .kir without a memory plan: set fields kept, the others derived
rc, out, err, dt = t.run(["dump", cfg, "--format", "kernels", "--print-after=lower", "-o", t.path("l.kir")] + SHAPE)
lowered = out.split("# kernel IR after lower\n")[-1]
m = re.search(r"^kernel k(\d+) gemm .*\n(?:  .*\n)*?  sizes M=(\d+) N=\d+ K=\d+\n", lowered, re.M)
if t.check(rc == 0 and m is not None and "  schedule " not in lowered,
           "--print-after=lower: kernel IR without schedules (rc=%s)" % rc):
    g = int(m.group(1))
    part = write("partial.kir", lowered[:m.end()] + "  schedule tile_m=3\n" + lowered[m.end():])
    rc, out, err, dt = t.run(["dump", part, "-O1"])
    s = dict((k, s) for k, _, s in schedules(out)).get(g) if rc == 0 else None
    t.check(s is not None and s.get("tile_m") == 3 and s.get("vec") == vec and s.get("block_m", 1) % 3 == 0
            and s.get("tile_n", 0) % vec == 0,
            "an unplanned .kir's tile_m=3 on k%d is kept, the rest derived: %s (rc=%s %s)" % (
                g, s, rc, err.strip()[-200:]))

# 4. a multi-CPU build: the CPU with the schedule's lanes obeys, the other decides
cpu_of = {16: "x86-64-v4", 8: "x86-64-v3", 4: "x86-64-v2"}
if platform.machine() in ("x86_64", "AMD64") and vec in cpu_of:
    same, other = cpu_of[vec], cpu_of[8 if vec != 8 else 4]
    exe2 = t.path("multi_exe")
    rc, out, err, dt = t.run(["compile", edited, "--model", cfg, "--weights", w, "--cpu", other + "," + same,
                              "-o", exe2], timeout=600)
    if t.check(rc == 0, "compile edited.kir --cpu %s,%s: rc=%s %s" % (other, same, rc, err.strip()[-300:])):
        y2 = t.path("y2.npy")
        r = E.run_prog([exe2, "--input", xin, "--output", y2, "--threads", "2"])
        if t.check(r[0] == 0, "the two-CPU executable runs (rc=%s %s)" % (r[0], r[2].strip()[-200:])):
            E.check_logits(t, "edited schedules, two CPUs", y2, want)
    t.expect_user_error("a schedule for %d lanes on %s alone" % (vec, other),
                        ["compile", edited, "--cpu", other, "--emit", "llvm-ir", "-o", t.path("z.ll")],
                        must_contain=["kernel k0", "vec=%d" % vec, "another target"])
else:
    print("  (multi-CPU checks skipped: host %s, vec=%d)" % (platform.machine(), vec))


# 5. schedules the code generator cannot honour: refused, naming the kernel
def bad(label, kind, change, must):
    done = []

    def fn(k, f):
        if k == kind and not done:
            done.append(1)
            change(f)
        return f
    p = write("bad_%s.kir" % re.sub(r"\W+", "_", label), edit(text, fn)[0])
    k = next(i for i, kk, _ in ks if kk == kind)
    t.expect_user_error(label, ["compile", p, "--emit", "llvm-ir", "-o", t.path("bad.ll")],
                        must_contain=["kernel k%d" % k] + must)


bad("gemm tile_m=9", "gemm", lambda f: f.update(tile_m=9, block_m=9), ["tile_m=9", "1 to 8 rows"])
bad("gemm tile_n not whole vectors", "gemm", lambda f: f.update(tile_n=vec + 1), ["tile_n=%d" % (vec + 1), "vec=%d" % vec])
bad("gemm tile_n of 5 vectors", "gemm", lambda f: f.update(tile_n=5 * vec), ["tile_n=%d" % (5 * vec)])
bad("conv tile_m=12", "conv", lambda f: f.update(tile_m=12), ["tile_m=12"])
bad("conv tile_k past Ci", "conv", lambda f: f.update(tile_k=1000), ["tile_k=1000", "input channels"])
bad("conv block_m not whole rows", "conv", lambda f: f.update(block_m=7), ["block_m=7", "output rows"])
bad("conv block_n not whole panels", "conv", lambda f: f.update(block_n=f["tile_n"] + 1),
    ["block_n=", "tile_n"])
bad("scan of 5 vectors per task", "scan", lambda f: f.update(tile_n=5 * vec), ["tile_n=%d" % (5 * vec)])
bad("gemm block_m not whole tiles", "gemm", lambda f: f.update(block_m=f["tile_m"] + 1), ["block_m", "tile_m"])
bad("vec not the target's lanes", "gemm", lambda f: f.update(vec=2 * vec), ["vec=%d" % (2 * vec), "%d f32 lanes" % vec])
bad("gemm order=3", "gemm", lambda f: f.update(order=3), ["order=3"])
bad("threads on a layernorm", "layernorm", lambda f: f.update(threads=128), ["threads=128", "layernorm"])
bad("tile_m on a dwconv", "dwconv", lambda f: f.update(tile_m=2), ["tile_m=2", "dwconv"])
t.finish()
