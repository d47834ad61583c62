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
                     [--precision fp32|bf16]
        forward: one warm-up, R timed runs -> {"median_ms", "min_ms", ...};
        with --variants, each variant is timed (round-robin) and listed
  torch_ref.py sweep --model M --size N --threads T [--batches 1,8]
                     [--precisions fp32,bf16] [--modes eager,compile] [--runs R]
                     [--max-s S] [--variants L:C,...] [--deadline UNIX_TIME]
        at one thread count: picks the fastest --variants (eager fp32, batch
        1), then times every mode x precision x batch; one JSON line per
        result as it is measured (status ok / skipped / unavailable / failed),
        so a run cut short still leaves what it measured
  torch_ref.py check --model M --seed S --input X.npy Y.npy [Y2.npy ...]
        float64 forward of X; relative L2 error of each Y -> {"rel_l2": [...]}

M is tiny, small or base, or EMBED:D1,D2,D3,D4 (e.g. 16:1,1,1,1: a model of
that embedding width and those depths, 1000 classes).  --precision bf16 is
autocast to bfloat16 (torch.autocast("cpu"): convolutions and matrix
products in bf16, the rest float32); eager is plain PyTorch, compile is
torch.compile of the same function (default mode; where the torch has it).
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


def model_spec(model):
    """(embed_dim, depths) of a model name or of EMBED:D1,D2,D3,D4."""
    if model in sm.CONFIGS:
        return sm.CONFIGS[model]
    emb, _, deps = model.partition(":")
    try:
        C, depths = int(emb), [int(d) for d in deps.split(",")]
    except ValueError:
        C, depths = 0, []
    if C <= 0 or len(depths) != 4 or min(depths) < 1:
        raise SystemExit("torch_ref: --model must be %s or EMBED:D1,D2,D3,D4, got '%s'" % (
            ", ".join(sorted(sm.CONFIGS)), model))
    return C, depths


def state_dict(model, seed):
    C, depths = model_spec(model)
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


def bench_input(batch, size):
    g = torch.Generator().manual_seed(7)
    return torch.randn(batch, 3, size, size, generator=g)


def forward_fn(sd, depths, precision):
    """x -> logits of the reference, float32 or autocast bf16."""
    if precision == "fp32":
        return lambda x: sm.forward(x, sd, depths)
    if precision != "bf16":
        raise SystemExit("torch_ref: --precision must be fp32 or bf16, got '%s'" % precision)

    def fwd(x):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return sm.forward(x, sd, depths)
    return fwd


def compile_missing():
    """None when torch.compile can run here, else why not (one phrase)."""
    if not hasattr(torch, "compile"):
        return "torch %s has no torch.compile" % torch.__version__
    return None


def timed_runs(fwd, x, runs, max_s):
    """Up to `runs` timed calls (fewer once max_s seconds are spent, at
    least 2): (times in ms, last output)."""
    t, y, start = [], None, time.perf_counter()
    for _ in range(runs):
        t0 = time.perf_counter()
        y = fwd(x)
        t.append((time.perf_counter() - t0) * 1e3)
        if max_s and len(t) >= 2 and time.perf_counter() - start >= max_s:
            break
    return t, y


def emit(obj):
    print(json.dumps(obj), flush=True)


def progress(msg):
    sys.stderr.write("torch_ref: %s (%s)\n" % (msg, time.strftime("%H:%M:%S")))
    sys.stderr.flush()


def sweep_calibrate(a, sd, depths, x):
    """The fastest LINEAR:CHUNK variant for eager fp32 at this batch."""
    variants = [(v.partition(":")[0], int(v.partition(":")[2] or 8)) for v in a.variants.split(",")]
    orig_linear, orig_scan = sm.linear, sm.scan
    trials = []
    for lin, ch in variants:
        sm.linear, sm.scan = orig_linear, orig_scan
        configure(lin, ch)
        fwd = forward_fn(sd, depths, "fp32")
        fwd(x)
        t, _ = timed_runs(fwd, x, 2, 0)
        trials.append({"linear": lin, "scan_chunk": ch, "min_ms": min(t)})
    sm.linear, sm.scan = orig_linear, orig_scan
    best = min(trials, key=lambda v: v["min_ms"])
    configure(best["linear"], best["scan_chunk"])
    emit({"kind": "calibration", "threads": a.threads, "batch": x.shape[0],
          "chosen": "%s:%d" % (best["linear"], best["scan_chunk"]), "trials": trials})
    return best


def cmd_sweep(a):
    """Every mode x precision x batch at one thread count (see the header)."""
    torch.set_num_threads(a.threads)
    t_start = time.time()
    deadline = a.deadline or float("inf")
    sd, depths = state_dict(a.model, a.seed)
    batches = [int(b) for b in a.batches.split(",") if b]
    precisions = [p for p in a.precisions.split(",") if p]
    modes = [m for m in a.modes.split(",") if m]
    for m in modes:
        if m not in ("eager", "compile"):
            raise SystemExit("torch_ref: --modes takes eager and compile, got '%s'" % m)
    missing = compile_missing()
    compile_est, compiled = a.compile_estimate_s, []
    ref = {}                         # batch -> eager fp32 logits
    conf = None
    with torch.inference_mode():
        for mode in modes:               # batch 1 of every precision first
            for b in batches:
                for prec in precisions:
                    row = {"kind": "time", "model": a.model, "size": a.size, "mode": mode,
                           "precision": prec, "batch": b, "threads": a.threads}
                    left = deadline - time.time()
                    if mode == "compile" and missing:
                        emit(dict(row, status="unavailable", why=missing))
                        continue
                    need = compile_est if mode == "compile" else a.min_left_s
                    if left < need:
                        emit(dict(row, status="skipped",
                                  why="%.0f s left of the time budget, %.0f s needed" % (
                                      max(left, 0), need)))
                        continue
                    x = bench_input(b, a.size)
                    try:
                        if conf is None:
                            conf = sweep_calibrate(a, sd, depths, bench_input(1, a.size))
                        fwd = forward_fn(sd, depths, prec)
                        t0 = time.perf_counter()
                        if mode == "compile":
                            progress("torch.compile %s batch %d, %d threads: compiling" % (
                                prec, b, a.threads))
                            torch._dynamo.reset()
                            fwd = torch.compile(fwd)
                            fwd(x)               # compiles
                            progress("  compiled in %.1f s" % (time.perf_counter() - t0))
                        compile_s = time.perf_counter() - t0 if mode == "compile" else None
                        t1 = time.perf_counter()
                        fwd(x)                   # warm-up
                        warm_ms = (time.perf_counter() - t1) * 1e3
                        t, y = timed_runs(fwd, x, a.runs, a.max_s)
                    except Exception as e:       # a compiler's failure is a result too
                        emit(dict(row, status="failed", why="%s: %s" % (
                            type(e).__name__, str(e).strip().splitlines()[0][:300] if str(e).strip()
                            else "")))
                        continue
                    y = y.float()
                    if not bool(torch.isfinite(y).all()):
                        emit(dict(row, status="failed", why="non-finite logits"))
                        continue
                    if mode == "eager" and prec == "fp32":
                        ref[b] = y
                    med = median(t)
                    row.update(status="ok", median_ms=med, min_ms=min(t), max_ms=max(t), runs=len(t),
                               warmup_ms=warm_ms, img_s=b * 1e3 / med, compile_s=compile_s,
                               linear=conf["linear"], scan_chunk=conf["scan_chunk"],
                               rel_l2_vs_eager_fp32=(sm.rel_l2(y, ref[b]) if b in ref else None))
                    if compile_s is not None:     # from now on: the slowest compile seen, +50%
                        compiled.append(compile_s)
                        compile_est = 1.5 * max(compiled)
                    emit(row)
    emit({"kind": "info", "threads": a.threads, "torch": torch.__version__,
          "num_threads": torch.get_num_threads(), "compile": missing or "available",
          "blas_libraries": blas_libraries(), "seconds": time.time() - t_start})


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
    x = bench_input(a.batch, a.size)
    fwd = forward_fn(sd, depths, a.precision)
    orig_linear, orig_scan = sm.linear, sm.scan
    times = [[] for _ in variants]
    warm = [0.0 for _ in variants]
    with torch.inference_mode():
        for rnd in range(a.runs + 1):
            for i, (lin, ch) in enumerate(variants):
                sm.linear, sm.scan = orig_linear, orig_scan
                configure(lin, ch)
                t0 = time.perf_counter()
                y = fwd(x)
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
           "precision": a.precision, "torch": torch.__version__, "num_threads": torch.get_num_threads(),
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
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("input")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("-o", "--output", required=True)
    p = sub.add_parser("time")
    p.add_argument("--model", required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--linear", default="conv")
    p.add_argument("--scan-chunk", type=int, default=None)
    p.add_argument("--variants", default=None,
                   help="comma-separated LINEAR:CHUNK list, e.g. conv:8,blas:16")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p = sub.add_parser("sweep")
    p.add_argument("--model", required=True)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batches", default="1,8")
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--modes", default="eager,compile")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--max-s", type=float, default=5.0,
                   help="stop timing a configuration after this many seconds (at least 2 runs)")
    p.add_argument("--variants", default="conv:8,blas:8,blas:16",
                   help="LINEAR:CHUNK variants tried (eager fp32, batch 1); the fastest is used")
    p.add_argument("--deadline", type=float, default=None,
                   help="Unix time after which nothing new is started")
    p.add_argument("--compile-estimate-s", type=float, default=120.0,
                   help="time a torch.compile needs, until one has been measured")
    p.add_argument("--min-left-s", type=float, default=10.0,
                   help="an eager configuration starts only with this many seconds left")
    p = sub.add_parser("check")
    p.add_argument("--model", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--input", required=True)
    p.add_argument("outputs", nargs="+")
    a = ap.parse_args()
    {"ckpt": cmd_ckpt, "input": cmd_input, "time": cmd_time, "check": cmd_check,
     "sweep": cmd_sweep}[a.cmd](a)


if __name__ == "__main__":
    main()
