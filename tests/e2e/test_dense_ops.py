"""e2e: the dense-prediction ops (adaptive_avg_pool, resize_bilinear,
concat) through every road of the LLVM backend, against a float64 PyTorch
evaluation of the same graph (F.adaptive_avg_pool2d, F.interpolate,
torch.cat; written here from the ops' semantics, independent of mambac).

Takes: the mambac executable (argv[1]).
Checks, per graph YAML (the dense-ops example, concats of 2 to 5 operands:
an operand that is the input, a channel slice, one used twice, producers
that are GEMMs, convs, resizes with fused adds, pools, eltwise kernels;
both align_corners; odd channel counts; batch 2):
  - `mambac run --backend ref` and `--backend llvm` match the reference
    (rel. L2 <= 1e-5), with concat-in-place and with
    --disable-pass=concat-in-place;
  - the kernel program has the copy kernels the pass must keep (the input,
    slices, an operand read twice) and no others, and every concat operand
    without a copy is written by its producer (`--print-after=concat-in-place`
    shows the pass's program);
  - `mambac verify --backend llvm`: every kernel within the tolerance of the
    reference executor, with the pass and, through a dumped .kir, without;
  - `mambac compile` (an executable for this machine), with and without the
    pass, runs and matches; so do aarch64 and riscv64 (V) executables of two
    graphs under qemu-user (other vector widths: 4 and 8 lanes).
"""
import os
import re
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import e2e_common as E  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

t = E.Test("dense_ops")
TOL = 1e-5


def node(name, op, inputs=(), **attrs):
    d = {"name": name, "op": op}
    if inputs:
        d["inputs"] = list(inputs)
    d.update(attrs)
    return d


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(yaml_value(a) for a in v) + "]"
    return str(v)


def write_yaml(path, name, x_shape, weights, nodes, outputs):
    """A graph YAML (docs/graph-yaml.md), one flow mapping per line."""
    lines = ["graph:", "  name: %s" % name, "  inputs:",
             "    - {name: x, dtype: f32, shape: %s}" % yaml_value(x_shape)]
    if weights:
        lines.append("  weights:")
        lines += ["    - {name: %s, shape: %s}" % (k, yaml_value(list(v.shape))) for k, v in weights.items()]
    lines.append("  nodes:")
    for n in nodes:
        lines.append("    - {" + ", ".join("%s: %s" % (k, yaml_value(v)) for k, v in n.items()) + "}")
    lines.append("  outputs: %s" % yaml_value(outputs))
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def evaluate(x, weights, nodes, outputs):
    """The graph in float64 PyTorch; activations NHWC as in mambac's graph IR."""
    v = {"x": torch.from_numpy(x).double()}
    w = {k: torch.from_numpy(a).double() for k, a in weights.items()}
    val = lambda n: v[n] if n in v else w[n]  # noqa: E731
    nchw = lambda a: a.permute(0, 3, 1, 2)  # noqa: E731
    nhwc = lambda a: a.permute(0, 2, 3, 1)  # noqa: E731
    for n in nodes:
        ins = [val(i) for i in n.get("inputs", [])]
        op = n["op"]
        if op == "conv2d":
            y = F.conv2d(nchw(ins[0]), ins[1], ins[2] if len(ins) > 2 else None, stride=n.get("stride", 1),
                         padding=n.get("pad", 0))
            y = nhwc(y)
        elif op == "linear":
            y = F.linear(ins[0], ins[1], ins[2] if len(ins) > 2 else None)
        elif op == "relu":
            y = torch.relu(ins[0])
        elif op == "gelu":
            y = F.gelu(ins[0])
        elif op == "add":
            y = ins[0] + ins[1]
        elif op == "mul":
            y = ins[0] * ins[1]
        elif op == "slice":
            y = ins[0][..., n["start"]:n["start"] + n["len"]]
        elif op == "adaptive_avg_pool":
            y = nhwc(F.adaptive_avg_pool2d(nchw(ins[0]), tuple(n["size"])))
        elif op == "resize_bilinear":
            y = nhwc(F.interpolate(nchw(ins[0]), size=tuple(n["size"]), mode="bilinear",
                                   align_corners=bool(n.get("align_corners", False))))
        elif op == "concat":
            y = torch.cat(ins, dim=-1)
        else:
            raise ValueError(op)
        v[n["name"]] = y
    return v[outputs[0]].numpy()


def rand(shape, seed, lo=-1.0, hi=1.0):
    return np.random.RandomState(seed).uniform(lo, hi, shape).astype(np.float32)


# ------------------------------------------------------------ the graphs

GRAPHS = []

# 1. the dense-ops example: x (the input: a copy), up (a resize) and s (a
#    resize with the add fused) in place; align_corners both ways
GRAPHS.append(dict(
    name="example", x=[1, 9, 11, 8], weights={"w1": rand([6, 8, 1, 1], 1, -0.5, 0.5)},
    nodes=[node("c1", "conv2d", ["x", "w1"]), node("r1", "relu", ["c1"]),
           node("p", "adaptive_avg_pool", ["r1"], size=[3, 3]),
           node("up", "resize_bilinear", ["p"], size=[9, 11], align_corners=False),
           node("d", "resize_bilinear", ["x"], size=[5, 4], align_corners=True),
           node("u2", "resize_bilinear", ["d"], size=[9, 11]),
           node("s", "add", ["u2", "x"]),
           node("cat", "concat", ["x", "up", "s"])],
    copies=1))

# 2. two operands, both resizes of pools (odd channels), batch 2, the concat
#    read by a 3x3 conv (the bottleneck of a PPM)
GRAPHS.append(dict(
    name="two", x=[2, 13, 10, 17], weights={"bw": rand([7, 34, 3, 3], 2, -0.2, 0.2), "bb": rand([7], 3)},
    nodes=[node("p1", "adaptive_avg_pool", ["x"], size=[1, 1]),
           node("u1", "resize_bilinear", ["p1"], size=[13, 10]),
           node("p3", "adaptive_avg_pool", ["x"], size=[3, 3]),
           node("u3", "resize_bilinear", ["p3"], size=[13, 10], align_corners=True),
           node("cat", "concat", ["u1", "u3"]),
           node("b", "conv2d", ["cat", "bw", "bb"], pad=[1, 1]), node("y", "relu", ["b"])],
    copies=0))

# 3. five operands, four values: a GEMM with its GELU, a channel slice of
#    the input (a copy), an eltwise product used twice by the concat (two
#    copies), a 3x3 conv; the concat read twice by an add
GRAPHS.append(dict(
    name="four", x=[1, 8, 7, 12],
    weights={"fw": rand([5, 12], 4, -0.4, 0.4), "fb": rand([5], 5), "cw": rand([3, 12, 3, 3], 6, -0.2, 0.2)},
    nodes=[node("fc", "linear", ["x", "fw", "fb"]), node("g", "gelu", ["fc"]),
           node("xs", "slice", ["x"], start=3, len=7),
           node("m", "mul", ["x", "x"]),
           node("cv", "conv2d", ["x", "cw"], pad=[1, 1]),
           node("cat", "concat", ["g", "xs", "m", "cv", "m"]),
           node("y", "add", ["cat", "cat"])],
    copies=3))

# 4. five operands, the PPM of UperNet: x (the input: a copy) and its four
#    pooled branches (1x1 conv + relu, resized back), then the bottleneck
ppm_nodes, ppm_w = [], {"bw": rand([9, 5 * 11, 3, 3], 7, -0.1, 0.1)}
for i, s in enumerate((1, 2, 3, 6)):
    ppm_w["c%dw" % i] = rand([11, 11, 1, 1], 10 + i, -0.4, 0.4)
    ppm_nodes += [node("p%d" % i, "adaptive_avg_pool", ["x"], size=[s, s]),
                  node("c%d" % i, "conv2d", ["p%d" % i, "c%dw" % i]), node("r%d" % i, "relu", ["c%d" % i]),
                  node("u%d" % i, "resize_bilinear", ["r%d" % i], size=[16, 16])]
ppm_nodes += [node("cat", "concat", ["x", "u0", "u1", "u2", "u3"]),
              node("b", "conv2d", ["cat", "bw"], pad=[1, 1]), node("y", "relu", ["b"])]
GRAPHS.append(dict(name="ppm", x=[1, 16, 16, 11], weights=ppm_w, nodes=ppm_nodes, copies=1))

# 5. the concat is the output, one operand a resize whose add reads the
#    input, another a pool of a pool (avgpool writing its slice)
GRAPHS.append(dict(
    name="pools", x=[1, 12, 12, 3], weights={},
    nodes=[node("a", "adaptive_avg_pool", ["x"], size=[6, 6]),
           node("b", "adaptive_avg_pool", ["a"], size=[6, 6]),
           node("c", "resize_bilinear", ["x"], size=[6, 6]),
           node("d", "resize_bilinear", ["x"], size=[6, 6], align_corners=True),
           node("cat", "concat", ["b", "c", "d"])],
    copies=0))

COPY = re.compile(r'^kernel k\d+ eltwise "cat".*\n(?:  .*\n)*?  expr load 0\n', re.M)


def kernels_text(yaml_path, extra):
    rc, out, err, _ = t.run(["dump", yaml_path, "--format", "kernels"] + extra)
    if not t.check(rc == 0, "dump %s %s rc=%s %s" % (os.path.basename(yaml_path), extra, rc, err.strip()[-300:])):
        return ""
    return out


def compare(label, path, want):
    if not os.path.exists(path):
        t.check(False, "%s: no output" % label)
        return
    y = np.load(path)
    ok = y.shape == want.shape and bool(np.isfinite(y).all())
    err = E.sm.rel_l2(torch.from_numpy(y.astype(np.float64)), torch.from_numpy(want)) if ok else float("inf")
    t.check(ok and err <= TOL, "%s: %s rel L2 err %.3g (tol %.0e)" % (label, list(y.shape), err, TOL))


for gi, g in enumerate(GRAPHS):
    name = g["name"]
    ypath = t.path(name + ".yaml")
    outputs = [g["nodes"][-1]["name"]]
    write_yaml(ypath, name, g["x"], g["weights"], g["nodes"], outputs)
    wpath = t.path(name + ".safetensors")
    E.ck.save_safetensors(wpath, {k: torch.from_numpy(a) for k, a in g["weights"].items()})
    x = rand(g["x"], 100 + gi)
    xin = t.path(name + "_x.npy")
    np.save(xin, x)
    want = evaluate(x, g["weights"], g["nodes"], outputs)
    wargs = ["--weights", wpath] if g["weights"] else []
    ncat = len(next(n for n in g["nodes"] if n["op"] == "concat")["inputs"])

    for tag, extra in (("in place", []), ("copies", ["--disable-pass=concat-in-place"])):
        ir = kernels_text(ypath, wargs + extra)
        copies = len(COPY.findall(ir))
        expect = g["copies"] if not extra else ncat
        t.check(copies == expect, "%s, %s: %d copy kernels (want %d)" % (name, tag, copies, expect))
        if not extra:  # every other operand: its producer names the concat among its nodes
            writers = len(re.findall(r'^kernel k\d+ (?!eltwise "cat")\w+ .*\n  nodes .*"cat"', ir, re.M))
            t.check(writers == ncat - copies, "%s: %d producers write their slice of cat (want %d)" % (
                name, writers, ncat - copies))
        for backend in ("ref", "llvm"):
            if backend == "ref" and extra:
                continue
            yout = t.path("%s_%s_%d.npy" % (name, backend, len(extra)))
            rc, out, err, dt = t.run(["run", ypath, "--input", xin, "--output", yout, "--backend", backend,
                                      "--threads", "2"] + wargs + extra)
            if t.check(rc == 0, "%s run --backend %s %s rc=%s %s" % (name, backend, tag, rc, err.strip()[-300:])):
                compare("%s run --backend %s, %s" % (name, backend, tag), yout, want)
        exe = t.path("%s_exe_%d" % (name, len(extra)))
        rc, out, err, dt = t.run(["compile", ypath, "-o", exe] + wargs + extra, timeout=600)
        if t.check(rc == 0, "%s compile %s rc=%s %s" % (name, tag, rc, err.strip()[-300:])):
            yout = t.path("%s_exe_%d.npy" % (name, len(extra)))
            rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", yout, "--threads", "2"])
            if t.check(rc == 0, "%s executable, %s rc=%s %s" % (name, tag, rc, err.strip()[-300:])):
                compare("%s executable, %s" % (name, tag), yout, want)
        # verify: the model itself (the pass on), a dumped .kir for the pass off
        model = ypath
        if extra:
            model = t.path("%s_copies.kir" % name)
            with open(model, "w") as f:
                f.write(ir)
        vargs = ["verify", model, "--backend", "llvm", "--input", xin, "--threads", "2"]
        vargs += (["--model", ypath] if extra else []) + wargs
        rc, out, err, dt = t.run(vargs, timeout=600)
        nk = len(re.findall(r"^kernel k", ir, re.M))
        t.check(rc == 0 and re.search(r"verify: all %d kernels within the tolerance" % nk, out + err) is not None,
                "%s verify, %s: rc=%s %s" % (name, tag, rc, (out + err).strip().splitlines()[-1:]))

# other vector widths: aarch64 (4 lanes) and riscv64 with V (8 lanes) under
# qemu-user, where the cross tools are installed (else said and skipped)
CROSS = [("aarch64-linux-gnu", "aarch64-linux-gnu-gcc", ["qemu-aarch64"]),
         ("riscv64-linux-gnu", "riscv64-linux-gnu-gcc",
          ["qemu-riscv64", "-cpu", "rv64,v=true,vlen=256,vext_spec=v1.0"])]
for triple, cc, qemu in CROSS:
    if shutil.which(cc) is None or shutil.which(qemu[0]) is None:
        print("  note  %s: no %s or %s, not run" % (triple, cc, qemu[0]))
        continue
    for g in GRAPHS[:2]:
        name = g["name"]
        wargs = ["--weights", t.path(name + ".safetensors")] if g["weights"] else []
        exe = t.path("%s_%s" % (name, triple))
        rc, out, err, dt = t.run(["compile", t.path(name + ".yaml"), "--target", triple, "-o", exe] + wargs,
                                 timeout=600)
        if not t.check(rc == 0, "%s compile --target %s rc=%s %s" % (name, triple, rc, err.strip()[-300:])):
            continue
        yout = t.path("%s_%s.npy" % (name, triple))
        rc, out, err, dt = E.run_prog(qemu + [exe, "--input", t.path(name + "_x.npy"), "--output", yout])
        if t.check(rc == 0, "%s under %s rc=%s %s" % (name, qemu[0], rc, err.strip()[-300:])):
            x = np.load(t.path(name + "_x.npy"))
            compare("%s, %s" % (name, triple), yout, evaluate(x, g["weights"], g["nodes"], [g["nodes"][-1]["name"]]))

# --print-after shows the pass by name; the pass is listed for the llvm target
rc, out, err, _ = t.run(["dump", t.path("example.yaml"), "--format", "kernels", "--print-after=concat-in-place"])
t.check(rc == 0 and "# kernel IR after concat-in-place" in out, "--print-after=concat-in-place rc=%s" % rc)
rc, out, err, _ = t.run(["dump", t.path("example.yaml"), "--list-passes"])
t.check("concat-in-place" in out and "[llvm]" in out, "--list-passes lists concat-in-place [llvm]")

t.finish()
