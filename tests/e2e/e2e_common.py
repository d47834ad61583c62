"""Shared helpers of the end-to-end tests (tests/e2e/test_*.py).

Takes: the path of the mambac executable (argv[1] of every test).
Produces: scratch files under a per-test work directory in the current
directory (ctest runs us in the build's tests dir), removed at the end unless
MC_E2E_KEEP=1; pass/fail lines on stdout; the exit status (0 = all passed).
Owns: that work directory.

The expected values come from tests/reference/spatial_mamba.py (the
project's own PyTorch model) run in float64 -- never from mambac itself.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

# Busy machines: spinning OpenMP workers (torch's and mambac's) starve each
# other; ctest sets this too, so a test run by hand behaves the same.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")


def _ensure_torch():
    """ctest may find a Python without torch (e.g. a pyenv shim ahead of the
    system one); re-run this test with the system interpreter if so."""
    try:
        import torch  # noqa: F401
        import numpy  # noqa: F401
        return
    except ImportError:
        pass
    for py in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable) \
                and not os.environ.get("MC_E2E_REEXEC"):
            os.environ["MC_E2E_REEXEC"] = "1"
            os.execv(py, [py] + sys.argv)
    print("SKIP: python3 with torch and numpy is needed (Debian: python3-torch)")
    sys.exit(77)


_ensure_torch()

import numpy as np  # noqa: E402
import torch  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "reference"))

import checkpoints as ck  # noqa: E402,F401
import spatial_mamba as sm  # noqa: E402

torch.set_num_threads(2)
TOL = 1e-4                     # relative L2 error of logits vs float64 reference
# "runtime error:" is how UBSan starts a report (no "sanitizer" in it);
# "segmentation fault", since messages may speak of segmentation models.
BAD_WORDS = ("segmentation fault", "core dumped", "internal error", "sanitizer", "runtime error:", "aborted",
             "assert")


class Test:
    """One test program: a mambac path, a work dir, a list of failures."""

    def __init__(self, name):
        if len(sys.argv) < 2:
            print("usage: %s /path/to/mambac" % sys.argv[0])
            sys.exit(2)
        self.mambac = os.path.abspath(sys.argv[1])
        self.name = name
        self.t0 = time.time()
        self.work = tempfile.mkdtemp(prefix="e2e_%s_" % name, dir=os.getcwd())
        # mambac run's JIT cache: the test's own, never the user's ~/.cache
        os.environ.setdefault("MAMBAC_CACHE_DIR", os.path.join(self.work, "jit-cache"))
        self.failures = []
        self.checks = 0
        print("%s: mambac=%s work=%s" % (name, self.mambac, self.work))
        sys.stdout.flush()

    def path(self, *p):
        return os.path.join(self.work, *p)

    def check(self, cond, what):
        self.checks += 1
        print("  %s  %s" % ("ok  " if cond else "FAIL", what))
        sys.stdout.flush()
        if not cond:
            self.failures.append(what)
        return cond

    def run(self, args, timeout=300, env=None):
        """Runs mambac with args; returns (rc, stdout, stderr, seconds)."""
        t = time.time()
        try:
            p = subprocess.run([self.mambac] + [str(a) for a in args], capture_output=True,
                               timeout=timeout, env=env)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired as e:
            rc, out, err = "timeout", e.stdout or b"", e.stderr or b""
        dt = time.time() - t
        return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), dt

    def finish(self):
        dt = time.time() - self.t0
        if not os.environ.get("MC_E2E_KEEP"):
            shutil.rmtree(self.work, ignore_errors=True)
        if self.failures:
            print("%s: %d of %d checks FAILED (%.1f s):" % (self.name, len(self.failures),
                                                           self.checks, dt))
            for f in self.failures:
                print("   - " + f)
            sys.exit(1)
        if self.checks == 0:
            print("%s: no checks ran" % self.name)
            sys.exit(1)
        print("%s: all %d checks passed (%.1f s)" % (self.name, self.checks, dt))
        sys.exit(0)

    # ------------------------------------------------------------ helpers

    def expect_user_error(self, label, args, must_contain=(), regex=None, max_seconds=10.0):
        """mambac must fail cleanly: exit 1, a message on stderr that holds
        every string of must_contain (case-insensitive, spaces ignored) and
        matches regex if given, no crash, and quickly."""
        rc, out, err, dt = self.run(args, timeout=60)
        flat = re.sub(r"\s+", "", err.lower())
        ok = rc == 1 and err.strip() != ""
        ok = ok and not any(w in err.lower() for w in BAD_WORDS)
        ok = ok and dt <= max_seconds
        missing = [s for s in must_contain if re.sub(r"\s+", "", s.lower()) not in flat]
        ok = ok and not missing
        if regex is not None and not re.search(regex, err):
            ok = False
            missing.append("regex " + regex)
        first = err.strip().splitlines()[0] if err.strip() else "(empty stderr)"
        self.check(ok, "%s: rc=%s %.2fs stderr: %s%s" % (
            label, rc, dt, first[:200], ("  MISSING " + repr(missing)) if missing else ""))
        if not ok and err.strip():
            print("      full stderr: " + err.strip()[:1500].replace("\n", "\n      "))
        return rc, err

    def run_logits(self, label, model_yaml, weights, x, sd, depths, tol=TOL, extra=(),
                   backend="ref"):
        """Runs `mambac run --backend BACKEND` on x (numpy float32 NCHW) and
        compares the logits with the float64 reference forward of sd.
        Returns the rel. error."""
        xin = self.path("x_%d.npy" % self.checks)
        yout = self.path("y_%d.npy" % self.checks)
        np.save(xin, x.astype(np.float32))
        args = ["run", model_yaml, "--input", xin, "--output", yout, "--backend", backend,
                "--threads", "2"] + list(extra)
        if weights is not None:
            args[2:2] = ["--weights", weights]
        rc, out, err, dt = self.run(args)
        if rc != 0 or not os.path.exists(yout):
            self.check(False, "%s: mambac run failed rc=%s (%.1fs): %s" % (label, rc, dt,
                                                                        err.strip()[:800]))
            return None
        y = np.load(yout)
        os.unlink(yout)
        want = reference(x, sd, depths)
        if y.dtype != np.float32 or y.shape != want.shape:
            self.check(False, "%s: output dtype/shape %s %s, want float32 %s" % (
                label, y.dtype, y.shape, want.shape))
            return None
        err_rel = sm.rel_l2(torch.from_numpy(y.astype(np.float64)), torch.from_numpy(want))
        finite = bool(np.isfinite(y).all())
        self.check(finite and err_rel <= tol,
                   "%s: x%s logits%s rel L2 err %.3g (tol %.0e, mambac %.2fs)" % (
                       label, list(x.shape), list(y.shape), err_rel, tol, dt))
        return err_rel


def write_config(path, embed_dim, depths, num_classes=None, mlp_ratio=None, in_chans=None,
                 name="custom", img_size=None, extra_model="", extra_sm=""):
    """A config in the public format (with the training-only keys that real
    configs carry, which must be ignored)."""
    lines = ["MODEL:",
             "  TYPE: spatial_mamba",
             "  NAME: %s" % name,
             "  DROP_PATH_RATE: 0.2"]
    if num_classes is not None:
        lines.append("  NUM_CLASSES: %d" % num_classes)
    lines += ["  SPATIALMAMBA:",
              "    EMBED_DIM: %d" % embed_dim,
              "    DEPTHS: [ %s ]" % ", ".join(str(d) for d in depths),
              "    D_STATE: 1"]
    if mlp_ratio is not None:
        lines.append("    MLP_RATIO: %s" % mlp_ratio)
    if in_chans is not None:
        lines.append("    IN_CHANS: %d" % in_chans)
    lines.append("    DT_INIT: 'random'")
    if extra_sm:
        lines.append(extra_sm)
    lines.append("  DDP: 'torch'")
    if extra_model:
        lines.append(extra_model)
    if img_size is not None:
        lines += ["DATA:", "  IMG_SIZE: %d" % img_size]
    lines += ["TRAIN:", "  EPOCHS: 300", "  BASE_LR: 1e-3", "  OPTIMIZER:",
              "    NAME: adamw", "    BETAS: (0.9, 0.999)"]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def config_for(t, size):
    """examples/spatialmamba_<size>.yaml when the repository has it, else an
    equivalent public-format config written into the work dir.  Returns
    (path, embed_dim, depths, num_classes, mlp_ratio, in_chans)."""
    C, depths = sm.CONFIGS[size]
    ex = os.path.join(REPO, "examples", "spatialmamba_%s.yaml" % size)
    if os.path.exists(ex):
        import yaml
        with open(ex) as f:
            doc = yaml.safe_load(f)
        m = doc.get("MODEL", {})
        s = m.get("SPATIALMAMBA", {})
        return (ex, int(s.get("EMBED_DIM", 96)), list(s.get("DEPTHS", [2, 2, 9, 2])),
                int(m.get("NUM_CLASSES", 1000)), float(s.get("MLP_RATIO", 4.0)),
                int(s.get("IN_CHANS", 3)))
    p = write_config(t.path("spatialmamba_%s.yaml" % size), C, depths, name=size, mlp_ratio=4.0)
    return p, C, depths, 1000, 4.0, 3


def image(shape, seed):
    """A normalized-image-like input, float32 NCHW."""
    g = np.random.default_rng(seed)
    return g.standard_normal(shape).astype(np.float32)


# ------------------------------------------------ native backend helpers
# (used by test_llvm_jit, test_compile_exe, test_cross_qemu, test_compile_cli)

def reference(x, sd, depths):
    """Float64 logits of the project's PyTorch reference for x (numpy NCHW),
    on one thread (at these small sizes more threads only add contention)."""
    nt = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            return sm.forward(torch.from_numpy(np.asarray(x, dtype=np.float32)).double(), sd,
                              depths, dtype=torch.float64).numpy()
    finally:
        torch.set_num_threads(nt)


def run_prog(argv, timeout=300, env=None, cwd=None):
    """Runs any program; returns (rc, stdout, stderr, seconds).  rc is the
    string 'timeout' when it ran past `timeout`."""
    t = time.time()
    try:
        p = subprocess.run([str(a) for a in argv], capture_output=True, timeout=timeout,
                           env=env, cwd=cwd)
        rc, out, err = p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired as e:
        rc, out, err = "timeout", e.stdout or b"", e.stderr or b""
    except OSError as e:
        rc, out, err = "oserror", b"", str(e).encode()
    return rc, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), time.time() - t


def check_logits(t, label, y_path, want, seconds=0.0, tol=TOL):
    """Loads y_path (written by mambac or a compiled model) and checks it
    against the float64 reference logits `want`: float32, same shape, finite,
    relative L2 error <= tol.  Returns the float32 array (or None)."""
    if not os.path.exists(y_path):
        t.check(False, "%s: no output file %s" % (label, os.path.basename(y_path)))
        return None
    try:
        y = np.load(y_path)
    except Exception as e:  # a truncated or malformed .npy is a failure, not a crash
        t.check(False, "%s: output is not a readable .npy: %s" % (label, e))
        return None
    if y.dtype != np.float32 or y.shape != want.shape:
        t.check(False, "%s: output dtype/shape %s %s, want float32 %s" % (
            label, y.dtype, list(y.shape), list(want.shape)))
        return None
    err_rel = sm.rel_l2(torch.from_numpy(y.astype(np.float64)), torch.from_numpy(want))
    finite = bool(np.isfinite(y).all())
    t.check(finite and err_rel <= tol, "%s: logits%s rel L2 err %.3g (tol %.0e%s)%s" % (
        label, list(y.shape), err_rel, tol, ", %.2fs" % seconds if seconds else "",
        "" if finite else " NON-FINITE values"))
    return y


def save_weights(kind, path, sd, ema=None):
    """Writes sd as 'train' (training-checkpoint .pth layout with optimizer
    state and a model_ema: None = a perturbed copy, 'shared' = the same
    storages), 'model' ({'model': sd} .pth) or 'safetensors'; returns path."""
    if kind == "train":
        ck.save_training(path, sd, ema=ema, optimizer_params=4)
    elif kind == "model":
        ck.save_model(path, sd)
    elif kind == "safetensors":
        ck.save_safetensors(path, sd)
    else:
        raise ValueError(kind)
    return path


def custom_model(t, name="c.yaml", embed_dim=32, depths=(1, 2, 1, 1), num_classes=17,
                 mlp_ratio=2.5, seed=7, model_name="custom"):
    """The small custom config of the native-backend tests and its random
    state dict: (yaml path, state dict, depths)."""
    depths = list(depths)
    cfg = write_config(t.path(name), embed_dim, depths, num_classes=num_classes,
                       mlp_ratio=mlp_ratio, name=model_name)
    sd = sm.random_state_dict(embed_dim, depths, num_classes, 3, mlp_ratio, seed=seed)
    return cfg, sd, depths


def ci_set():
    """True when the CI environment variable is set to a true-ish value."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no", "off")


# ------------------------------------------------ CUDA helpers
# (used by test_cuda_shapes, test_cuda_dense)

def nvcc_or_skip():
    """nvcc ($NVCC, /usr/local/cuda/bin/nvcc or on PATH); without one the
    test is skipped (exit 77) with a line saying so."""
    nvcc = os.environ.get("NVCC") or (
        "/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK) else "nvcc")
    if not shutil.which(nvcc):
        print("SKIP: nvcc not found (%s; $NVCC, /usr/local/cuda/bin/nvcc, PATH)" % nvcc)
        sys.exit(77)
    return nvcc


def nvcc_objects(t, nvcc, jobs, par=2):
    """nvcc -c for sm_90a (the arch `--emit exe` builds for) of each (name,
    OUT) of jobs, OUT.cu -> OUT.o, `par` at a time (the machine's cores are
    shared): one check of t per file, with nvcc's first errors."""
    running = []

    def reap(p, name, obj, log):
        rc = p.wait()
        with open(log, errors="replace") as f:
            text = f.read()
        errs = [ln for ln in text.splitlines() if "error" in ln][:3]
        t.check(rc == 0 and os.path.exists(obj), "%s: nvcc -arch sm_90a -c: rc=%s%s" % (
            name, rc, "" if rc == 0 else " " + " | ".join(errs or text.splitlines()[-3:])))

    for name, out in jobs:
        while len(running) >= max(1, min(par, os.cpu_count() or 1)):
            reap(*running.pop(0))
        log = out + ".nvcc.log"
        with open(log, "w") as lf:
            p = subprocess.Popen([nvcc, "-std=c++17", "-gencode=arch=compute_90a,code=sm_90a", "-c", out + ".cu",
                                  "-o", out + ".o"], stdout=lf, stderr=subprocess.STDOUT)
        running.append((p, name, out + ".o", log))
    for r in running:
        reap(*r)
