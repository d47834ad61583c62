"""e2e: valid graphs whose elementwise chains are too large for one fused
kernel (tests/ir/fusion/*.mir: 32 unary ops in a chain, 13 adds of distinct
weights, a linear with a 36-weight epilogue) are split into several kernels
instead of aborting: `dump --format kernels`, `run --backend ref|llvm` and a
compiled executable all succeed and match a float64 PyTorch evaluation of
the same graph written here (weights given as .safetensors)."""
import os
import re

import numpy as np
import torch

import e2e_common as E

t = E.Test("big_fusions")
FUS = os.path.join(E.REPO, "tests", "ir", "fusion")
SHAPE = (1, 5, 7, 16)
UNARY = {
    "silu": torch.nn.functional.silu,
    "neg": torch.neg,
    "softplus": torch.nn.functional.softplus,
    "gelu": torch.nn.functional.gelu,  # exact (erf) form, as ops.def
    "exp": torch.exp,
    "relu": torch.relu,
}
LINE = re.compile(r"^\s*%(\S+) = (\w+)(?: (.*?))? : f32\[[\d,]+\]$")


def evaluate(path, x, weights):
    """The graph of a .mir file in float64, by its own small interpreter."""
    env = {}
    for line in open(path):
        m = LINE.match(line)
        if not m:
            continue
        name, op, rest = m.group(1), m.group(2), m.group(3) or ""
        ins = [env[a] for a in re.findall(r"%(\S+?)(?:,|$| )", rest)]
        if op == "input":
            env[name] = x
        elif op == "weight":
            env[name] = weights[name].double()
        elif op in UNARY:
            env[name] = UNARY[op](ins[0])
        elif op == "add":
            env[name] = ins[0] + ins[1]
        elif op == "mul":
            env[name] = ins[0] * ins[1]
        elif op == "linear":
            env[name] = ins[0] @ ins[1].t() + ins[2]
        elif op == "batchnorm":
            xx, g, b, mean, var = ins
            env[name] = (xx - mean) / torch.sqrt(var + 1e-5) * g + b
        else:
            raise ValueError("%s: op %s" % (path, op))
    ret = re.search(r"return %(\S+)", open(path).read()).group(1)
    return env[ret].numpy()


def random_weights(path, seed):
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for m in re.finditer(r"%(\S+) = weight : f32\[([\d,]+)\]", open(path).read()):
        shape = [int(d) for d in m.group(2).split(",")]
        w = torch.rand(shape, generator=g, dtype=torch.float32) * 0.6 + 0.7  # in [0.7, 1.3]
        if m.group(1).startswith(("t", "w")) or m.group(1).endswith((".bias", ".mean")):
            w = w - 1.0                                                        # in [-0.3, 0.3]
        if m.group(1) == "fc.weight":
            w = (w - 1.0) / 2
        sd[m.group(1)] = w
    return sd


def rel(y, want):
    return float(np.linalg.norm(y.astype(np.float64) - want) / max(np.linalg.norm(want), 1e-30))


for name in ("chain32", "adds13", "affine16"):
    mir = os.path.join(FUS, name + ".mir")
    x = torch.randn(SHAPE, generator=torch.Generator().manual_seed(3), dtype=torch.float32)
    xin = t.path(name + "_x.npy")
    np.save(xin, x.numpy())
    sd = random_weights(mir, 11)
    wargs = []
    if sd:
        wpath = E.save_weights("safetensors", t.path(name + ".safetensors"), sd)
        wargs = ["--weights", wpath]
    want = evaluate(mir, x.double(), sd)

    rc, out, err, dt = t.run(["dump", mir, "--format", "kernels"] + wargs, timeout=60)
    nk = len(re.findall(r"^kernel k\d+ ", out, re.M))
    t.check(rc == 0 and nk >= 2 and not any(w in err.lower() for w in E.BAD_WORDS),
            "%s: dump --format kernels rc=%s, %d kernels (split) %s" % (name, rc, nk, err.strip()[:300]))
    # every kernel within the kernel IR's limits: at most 12 distinct operands
    for blk in re.split(r"\n(?=kernel k)", out)[1:]:
        nargs = len(set(re.findall(r"\bb\d+<[^>]*>", blk.split("\n", 3)[-1])))
        if nargs > 12:
            t.check(False, "%s: a kernel reads %d broadcast operands" % (name, nargs))

    for backend in ("ref", "llvm"):
        y = t.path("%s_%s.npy" % (name, backend))
        rc, out, err, dt = t.run(["run", mir, "--input", xin, "--output", y, "--backend", backend]
                                 + wargs, timeout=120)
        ok = rc == 0 and os.path.exists(y)
        r = rel(np.load(y), want) if ok else float("nan")
        t.check(ok and r <= 1e-5, "%s: run --backend %s rc=%s rel L2 err vs float64 %.3g %s" % (
            name, backend, rc, r, "" if ok else err.strip()[:300]))

    exe = t.path(name + "_exe")
    rc, out, err, dt = t.run(["compile", mir, "-o", exe] + wargs, timeout=300)
    if t.check(rc == 0 and os.path.exists(exe), "%s: compile rc=%s (%.1fs) %s" % (
            name, rc, dt, err.strip()[:300])):
        y = t.path(name + "_exe.npy")
        rc, out, err, dt = E.run_prog([exe, "--input", xin, "--output", y], timeout=60)
        ok = rc == 0 and os.path.exists(y)
        r = rel(np.load(y), want) if ok else float("nan")
        t.check(ok and r <= 1e-5, "%s: compiled executable rc=%s rel L2 err vs float64 %.3g %s" % (
            name, rc, r, "" if ok else err.strip()[:300]))

t.finish()
