#!/usr/bin/python3
"""PyTorch side of the mambac benchmarks (bench/cpu runs it; one job per process).

Takes: a model name (tiny/small/base), shapes, a thread count and a PyTorch
configuration; the project's reference model tests/reference/spatial_mamba.py.
Produces: JSON on the last line of stdout; files named by the command.
Owns: nothing beyond the files it is asked to write.

  torch_ref.py ckpt  --model M --seed S -o W.pth       random weights, public key names
  torch_ref.py input --batch B --size N -o X.npy       deterministic float32 NCHW images
  torch_ref.py time  --model M --batch B --size N --threads T [--runs R]
                     [--linear conv|blas] [--scan-chunk C] [--variants L:C,L:C,...]
        float32 forward: one warm-up, R timed runs -> {"median_ms", "min_ms", ...};
        with --variants, each variant is timed (round-robin) and listed
  torch_ref.py check --model M --seed S --input X.npy Y.npy [Y2.npy ...]
        float64 forward of X; relative L2 error of each Y -> {"rel_l2": [...]}

Everything is pure PyTorch (no custom kernels).  `--linear` picks how the
reference's channels-last Linear layers run: `conv` is the reference's own
choice (a 1x1 convolution, oneDNN), `blas` is F.linear (the BLAS torch is
linked with: OpenBLAS once libopenblas0 provides libblas.so.3).
`--scan-chunk` is the chunk length T of the reference's vectorized scan
(scan_chunked; the default of the reference is 8).  The thread environment
(OMP_NUM_THREADS, OPENBLAS_NUM_THREADS, OPENBLAS_CORETYPE, ...) is set by the
caller; this script only calls torch.set_num_threads(T).
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import checkpoints as ck  # noqa: E402
import spatial_mamba as sm  # noqa: E402


def state_dict(model, seed):
    C, depths = sm.CONFIGS[model]
    return sm.random_state_dict(C, depths, seed=seed), depths


def cmd_ckpt(a):
    sd, _ = state_dict(a.model, a.seed)
    ck.save_model(a.output, sd)
    nbytes = sum(v.numel() * 4 for v in sd.values() if v.is_floating_point())
    params = sum(v.numel() for k, v in sd.items()
                 if v.is_floating_point() and "running_" not in k)
    print(json.dumps({"path": a.output, "float32_bytes": nbytes, "params": params}))


def cmd_input(a):
    """Image 0 is examples/input_224.npy when the size is 224 (the bundled
    test image); the others (and other sizes) are seeded normal noise."""
    g = np.random.default_rng(1234 + a.batch)
    x = g.standard_normal((a.batch, 3, a.size, a.size)).astype(np.float32)
    ex = os.path.join(REPO, "examples", "input_224.npy")
    if a.size == 224 and os.path.exists(ex):
        x[0] = np.load(ex)[0]
    np.save(a.output, x)
    print(json.dumps({"path": a.output, "shape": list(x.shape)}))


def linear_blas(x, w, b=None):
    return F.linear(x, w, b)


def configure(linear, chunk):
    if linear == "blas":
        sm.linear = linear_blas
    elif linear != "conv":
        raise SystemExit("torch_ref: --linear must be conv or blas")
    if chunk is not None:
        sm.scan = lambda u, delta, A, Bv: sm.scan_chunked(u, delta, A, Bv, chunk)


def blas_libraries():
    """Shared objects mapped into this process that provide BLAS / oneDNN
    (after torch has run: tells which libblas.so.3 the alternatives chose)."""
    libs = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                path = line.split()[-1]
                name = os.path.basename(path).lower()
                if path.startswith("/") and ("blas" in name or "dnnl" in name or "mkl" in name):
                    libs.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(libs)


def median(v):
    v = sorted(v)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def cmd_time(a):
    """Times each variant (LINEAR:CHUNK): one warm-up each, then `runs`
    rounds that run every variant once (round-robin, so a noisy spell hits
    all variants alike)."""
    torch.set_num_threads(a.threads)
    variants = []
    for v in (a.variants or "%s:%d" % (a.linear, a.scan_chunk or 8)).split(","):
        lin, _, ch = v.partition(":")
        variants.append((lin, int(ch or 8)))
    sd, depths = state_dict(a.model, a.seed)
    g = torch.Generator().manual_seed(7)
    x = torch.randn(a.batch, 3, a.size, a.size, generator=g)
    orig_linear, orig_scan = sm.linear, sm.scan
    times = [[] for _ in variants]
    warm = [0.0 for _ in variants]
    with torch.inference_mode():
        for rnd in range(a.runs + 1):
            for i, (lin, ch) in enumerate(variants):
                sm.linear, sm.scan = orig_linear, orig_scan
                configure(lin, ch)
                t0 = time.perf_counter()
                y = sm.forward(x, sd, depths)
                dt = (time.perf_counter() - t0) * 1e3
                if not bool(torch.isfinite(y).all()):
                    raise SystemExit("torch_ref: non-finite logits")
                if rnd == 0:
                    warm[i] = dt
                else:
                    times[i].append(dt)
    res = []
    for (lin, ch), t, w in zip(variants, times, warm):
        res.append({"linear": lin, "scan_chunk": ch, "warmup_ms": w, "median_ms": median(t),
                    "min_ms": min(t), "max_ms": max(t), "runs": t})
    out = {"model": a.model, "batch": a.batch, "size": a.size, "threads": a.threads,
           "torch": torch.__version__, "num_threads": torch.get_num_threads(),
           "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
           "blas_libraries": blas_libraries(),
           "variants": res}
    out.update(res[0])
    print(json.dumps(out))


def cmd_check(a):
    torch.set_num_threads(a.threads)
    sd, depths = state_dict(a.model, a.seed)
    x = torch.from_numpy(np.load(a.input).astype(np.float32))
    with torch.inference_mode():
        want = sm.forward(x.double(), sd, depths, dtype=torch.float64)
    errs = []
    for p in a.outputs:
        y = np.load(p)
        if y.shape != tuple(want.shape) or not np.isfinite(y).all():
            errs.append(None)
        else:
            errs.append(sm.rel_l2(torch.from_numpy(y.astype(np.float64)), want))
    print(json.dumps({"model": a.model, "input": a.input, "outputs": a.outputs, "rel_l2": errs}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("ckpt")
    p.add_argument("--model", required=True, choices=sorted(sm.CONFIGS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("input")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("time")
    p.add_argument("--model", required=True, choices=sorted(sm.CONFIGS))
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--linear", default="conv")
    p.add_argument("--scan-chunk", type=int, default=None)
    p.add_argument("--variants", default=None,
                   help="comma-separated LINEAR:CHUNK list, e.g. conv:8,blas:16")
    p = sub.add_parser("check")
    p.add_argument("--model", required=True, choices=sorted(sm.CONFIGS))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--input", required=True)
    p.add_argument("outputs", nargs="+")
    a = ap.parse_args()
    {"ckpt": cmd_ckpt, "input": cmd_input, "time": cmd_time, "check": cmd_check}[a.cmd](a)


if __name__ == "__main__":
    main()
