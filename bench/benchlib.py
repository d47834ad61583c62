"""Helpers shared by the benchmark programs in bench/ (cpu, gemm).

Takes: commands to run, the repository's layout.
Produces: subprocess results, cached build products under BUILD/bench/
(sgemm, random-weight checkpoints, inputs, compiled executables), parsed
numbers (sgemm GFLOP/s, kernel FLOPs, `--bench` lines).
Owns: the log file set with set_log().
"""
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, ".."))
PY = "/usr/bin/python3"             # Debian's python3, with torch and numpy
TORCH_REF = os.path.join(HERE, "torch_ref.py")
BENCH_PKGS = ["libopenblas-dev", "gnuplot-nox", "time", "python3-torch", "python3-numpy"]
PUBLISHED_GMACS = {"tiny": 4.5, "small": 7.1, "base": 15.8}   # at 224x224, per image
TOL = 1e-4
TOL_PRECISION = {"fp32": TOL, "bf16": 2e-2}    # relative L2 vs float64, per precision
UNSET = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SPEED_FLOOR = 2.0                   # issue: tiny 224 b1 2 threads, mambac >= 2x PyTorch

log_file = None
prog = "bench/cpu"                  # names the program in die()'s messages


def set_prog(name):
    global prog
    prog = name


def set_log(f):
    global log_file
    log_file = f


def say(msg=""):
    print(msg, flush=True)
    if log_file:
        log_file.write(msg + "\n")
        log_file.flush()


def note(msg):
    """Progress, to stderr and the log (keeps stdout for the results)."""
    sys.stderr.write("bench: " + msg + "\n")
    sys.stderr.flush()
    if log_file:
        log_file.write("# " + msg + "\n")
        log_file.flush()


def die(msg):
    sys.stderr.write(prog + ": error: " + msg + "\n")
    sys.exit(2)


def clean_env(**extra):
    env = dict(os.environ)
    for k in UNSET:
        env.pop(k, None)
    for k, v in extra.items():
        env[k] = str(v)
    return env


def run(cmd, env=None, timeout=None, check=True):
    """Runs cmd; returns (rc, stdout, stderr).  Dies on failure when check."""
    p = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env,
                       timeout=timeout)
    if log_file:
        log_file.write("$ %s\n%s%s" % (" ".join(str(c) for c in cmd), p.stdout[-4000:],
                                        p.stderr[-4000:]))
    if check and p.returncode != 0:
        die("command failed (rc %d): %s\n%s%s" % (p.returncode, " ".join(str(c) for c in cmd),
                                                  p.stdout[-2000:], p.stderr[-2000:]))
    return p.returncode, p.stdout, p.stderr


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    die("no JSON in output:\n" + out[-2000:])


# ------------------------------------------------------------------ setup

def ensure_packages(no_install):
    sh = os.path.join(REPO, "scripts", "install-deps.sh")
    missing = []
    for p in BENCH_PKGS:
        r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True,
                           text=True)
        if "install ok installed" not in r.stdout:
            missing.append(p)
    if no_install:
        if missing:
            note("packages missing (--no-install given): " + " ".join(missing))
        return
    if os.path.exists(sh) and not shutil.which("cmake"):
        run(["sh", sh])
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        note("installing " + " ".join(missing))
        run(sudo + ["apt-get", "update", "-q"])
        run(sudo + ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "-q"]
            + missing)


def build_mambac(build):
    """Configures (once) and builds the mambac target in `build`.  When the
    build fails but an earlier mambac is there (other people's files may be
    mid-edit), warns and uses that one."""
    exe = os.path.join(build, "mambac")
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        note("configuring " + build)
        run(["cmake", "-S", REPO, "-B", build, "-DCMAKE_BUILD_TYPE=Release"])
    note("building mambac in " + build)
    rc, out, err = run(["cmake", "--build", build, "-j%d" % (os.cpu_count() or 2), "--target",
                        "mambac"], timeout=3600, check=False)
    if rc != 0:
        if not os.access(exe, os.X_OK):
            die("building mambac failed:\n" + (out + err)[-3000:])
        note("WARNING: building mambac failed; using the existing %s (built %s)" % (
            exe, time.ctime(os.path.getmtime(exe))))
    if not os.access(exe, os.X_OK):
        die("no mambac executable at " + exe)
    return exe


def newer(target, *sources):
    """True when target is missing or older than any source."""
    if not os.path.exists(target):
        return True
    t = os.path.getmtime(target)
    return any(os.path.getmtime(s) > t for s in sources if os.path.exists(s))


def build_sgemm(work):
    src = os.path.join(HERE, "sgemm.c")
    exe = os.path.join(work, "sgemm")
    if newer(exe, src):
        cc = os.environ.get("CC", "cc")
        run([cc, "-O2", "-o", exe, src, "-lopenblas"])
    return exe


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


# ------------------------------------------------------------------ measurements

def sgemm_rate(sgemm, threads, size, min_ms, core=None):
    """(median GFLOP/s, best-call GFLOP/s, core) of an S x S x S sgemm, with
    OpenBLAS choosing its kernel (core) from the CPU, or the kernel `core`
    (OPENBLAS_CORETYPE: OpenBLAS 0.3.21 does not know some recent Xeons and
    falls back to Prescott's)."""
    env = clean_env(OPENBLAS_NUM_THREADS=threads)
    if core:
        env["OPENBLAS_CORETYPE"] = core
    _, out, _ = run([sgemm, "--threads", threads, "--min-ms", min_ms, "--square", size], env=env)
    core, gf, best = "?", None, None
    for line in out.splitlines():
        m = re.match(r"openblas core=(\S+)", line)
        if m:
            core = m.group(1)
        f = line.split()
        if f and f[0] == "sgemm" and len(f) >= 9:
            gf, best = float(f[6]), float(f[8])
    if gf is None:
        die("sgemm printed no rate:\n" + out)
    return gf, best, core


# a kernel's first line in the kernel IR's text form (docs/kernel-ir.md):
# index, kind, name, useful FLOPs
KERNEL_RE = re.compile(r'^kernel k(\d+) (\w+) "([^"]*)" flops ([0-9.e+]+)$')


def model_flops(mambac, cfg, batch, size):
    """Sum of the kernel FLOPs of the compiled program (GFLOP)."""
    _, out, _ = run([mambac, "dump", cfg, "--batch", batch, "--image-size", size,
                     "--format", "kernels"])
    total, n = 0.0, 0
    for line in out.splitlines():
        m = KERNEL_RE.match(line)
        if m:
            total += float(m.group(4)) / 1e6
            n += 1
    if n == 0:
        die("no kernels in `mambac dump --format kernels` of " + cfg)
    return total / 1e3


def ensure_weights(work, model, seed):
    path = os.path.join(work, "weights", "%s_seed%d.pth" % (model, seed))
    meta = path + ".json"
    if not os.path.exists(path) or not os.path.exists(meta) or newer(meta, TORCH_REF):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        note("writing random %s weights (seed %d)" % (model, seed))
        _, out, _ = run([PY, TORCH_REF, "ckpt", "--model", model, "--seed", seed, "-o", path])
        with open(meta, "w") as f:
            f.write(json.dumps(last_json(out)))
    with open(meta) as f:
        return path, json.load(f)


def ensure_input(work, batch, size):
    path = os.path.join(work, "inputs", "x_b%d_%d.npy" % (batch, size))
    if newer(path, TORCH_REF):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        run([PY, TORCH_REF, "input", "--batch", batch, "--size", size, "-o", path])
    return path


REFUSED = {}                        # precision -> why mambac would not compile it


def ensure_exe(work, mambac, cfg, model, batch, size, weights, precision="fp32"):
    """The cached executable of model/batch/size (compiled when mambac, the
    weights or the config are newer), or None where mambac refuses the
    precision for this target (its one-line message in REFUSED[precision])."""
    tag = "" if precision == "fp32" else "_" + precision
    path = os.path.join(work, "exe", "%s_b%d_%d%s" % (model, batch, size, tag))
    if newer(path, mambac, weights, cfg):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        note("compiling %s batch %d %dx%d %s" % (model, batch, size, size, precision))
        t0 = time.time()
        cmd = [mambac, "compile", cfg, "--weights", weights, "--batch", batch, "--image-size",
               size, "-o", path]
        if precision != "fp32":
            rc, _, err = run(cmd + ["--precision", precision], timeout=3600, check=False)
            if rc != 0 and "precision" in err:
                REFUSED[precision] = (err.strip().splitlines() or ["refused"])[0]
                return None
            if rc != 0:
                die("mambac compile failed (rc %d):\n%s" % (rc, err[-2000:]))
        else:
            run(cmd, timeout=3600)
        note("  compiled in %.1f s" % (time.time() - t0))
    return path


BENCH_RE = re.compile(r"median ([0-9.]+) ms, min ([0-9.]+) ms, max ([0-9.]+) ms, "
                      r"([0-9.]+) images/s")


def time_exe(exe, inp, threads, runs):
    _, out, _ = run([exe, "--input", inp, "--threads", threads, "--bench", runs],
                    env=clean_env(), timeout=3600)
    m = BENCH_RE.search(out)
    if not m:
        die("no bench line from %s:\n%s" % (exe, out))
    return {"median_ms": float(m.group(1)), "min_ms": float(m.group(2)),
            "max_ms": float(m.group(3)), "img_s": float(m.group(4))}


def torch_env(threads, ob_threads):
    return clean_env(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads,
                     OPENBLAS_NUM_THREADS=ob_threads)
