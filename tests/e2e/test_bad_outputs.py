"""e2e: hostile output paths and run-time options (issue 15, rows 1, 10-12,
15-19).  Every output of mambac and of a compiled executable must be
replaced whole or not at all (a full disk, a file-size limit, a full
filesystem other than $TMPDIR), leave no temporary behind, be refused before
the work when its directory does not take a file, never be the same file as
an input, and a full standard output must be an error.  A signal during a
compile removes the temporary directory.  Run-time counts (--bench,
--profile, --threads, --top) are range-checked, and top-k is fast and prints
each class once even for NaN logits."""
import os
import re
import resource
import shutil
import signal
import subprocess
import time

import e2e_common as E
import numpy as np

t = E.Test("bad_outputs")
depths = [1, 1, 1, 1]
cfg = E.write_config(t.path("m.yaml"), 16, depths, num_classes=10, mlp_ratio=2.0, img_size=32)
sd = E.sm.random_state_dict(16, depths, 10, 3, 2.0, seed=3)
wts = E.save_weights("model", t.path("w.pth"), sd)
x = E.image((1, 3, 32, 32), seed=1)
xin = t.path("x.npy")
np.save(xin, x)


def read(p):
    with open(p, "rb") as f:
        return f.read()


def temps(d):
    """Files an interrupted writer could have left in d (hidden temporaries)."""
    return sorted(n for n in os.listdir(d) if n.startswith("."))


def limited(nbytes):
    """preexec_fn: files may grow to nbytes; SIGXFSZ ignored, so a write past
    the limit fails with EFBIG as on a full disk."""
    def f():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return f


def run_lim(argv, nbytes=None, stdout=subprocess.PIPE, timeout=300):
    p = subprocess.run([str(a) for a in argv], stdout=stdout, stderr=subprocess.PIPE,
                       timeout=timeout, preexec_fn=limited(nbytes) if nbytes else None)
    return p.returncode, p.stderr.decode("utf-8", "replace")


def expect_fail(label, rc, err, *words):
    flat = err.lower()
    ok = rc == 1 and all(w.lower() in flat for w in words) and \
        not any(b in flat for b in E.BAD_WORDS)
    t.check(ok, "%s: rc=%s stderr: %s" % (label, rc, err.strip()[:300]))


# ------------------------------------------------------------ baseline
exe = t.path("m.exe")
rc, out, err, dt = t.run(["compile", cfg, "--weights", wts, "-o", exe])
t.check(rc == 0 and os.path.exists(exe), "baseline compile: rc=%s %s" % (rc, err.strip()[:300]))
want = E.reference(x, sd, depths)
y = t.path("y.npy")
rc, _, err, _ = E.run_prog([exe, "--input", xin, "--output", y])
E.check_logits(t, "baseline executable", y, want)

# ------------------------------------------------------------ row 11: full outputs
with open("/dev/full", "w") as full:
    rc, err = run_lim([t.mambac, "dump", cfg], stdout=full)
expect_fail("row 11: dump > /dev/full", rc, err, "cannot write standard output",
            "no space left on device")
for fmt in ("ir", "dot", "yaml"):
    rc, _, err, _ = t.run(["dump", cfg, "--format", fmt, "-o", "/dev/full"])
    expect_fail("row 11: dump --format %s -o /dev/full" % fmt, rc, err, "/dev/full",
                "no space left on device")
rc, _, err, _ = t.run(["dump", cfg, "--dump-dot", "/dev/full"])
expect_fail("row 11: dump --dump-dot /dev/full", rc, err, "/dev/full", "no space left")
with open("/dev/full", "w") as full:
    rc, err = run_lim([exe, "--input", xin, "--top", "3"], stdout=full)
expect_fail("row 11: executable --top > /dev/full", rc, err, "cannot write standard output")

# ------------------------------------------------------------ row 12: atomic outputs
ir = t.path("d.ir")
with open(ir, "w") as f:
    f.write("old\n")
rc, err = run_lim([t.mambac, "dump", cfg, "-o", ir], nbytes=1000)
expect_fail("row 12: dump -o past a 1000-byte file limit", rc, err, "cannot write", "d.ir")
t.check(read(ir) == b"old\n" and not temps(t.work),
        "row 12: dump -o: the old file is intact, no temporary left (%s)" % temps(t.work))

ll = t.path("m.ll")
with open(ll, "w") as f:
    f.write("old\n")
rc, err = run_lim([t.mambac, "compile", cfg, "--weights", wts, "--emit", "llvm-ir", "-o", ll],
                  nbytes=20000)
expect_fail("row 12: compile --emit llvm-ir past a file limit", rc, err, "cannot write", "m.ll")
t.check(read(ll) == b"old\n" and not temps(t.work),
        "row 12: llvm-ir: the old file is intact, no temporary left (%s)" % temps(t.work))

yold = read(y)
rc, err = run_lim([t.mambac, "run", cfg, "--weights", wts, "--input", xin, "--output", y],
                  nbytes=100)
expect_fail("row 12: run --output past a 100-byte file limit", rc, err, "cannot write", "y.npy")
t.check(read(y) == yold and not temps(t.work),
        "row 12: run --output: the old file is intact, no temporary left (%s)" % temps(t.work))
rc, err = run_lim([exe, "--input", xin, "--output", y], nbytes=100)
expect_fail("row 12: executable --output past a file limit", rc, err, "cannot write", "y.npy")
t.check(read(y) == yold and not temps(t.work),
        "row 12: executable --output: the old file is intact, no temporary left")

# -o on a small full filesystem other than $TMPDIR (a tmpfs; needs root)
mnt = t.path("mnt")
os.mkdir(mnt)
big_cfg = E.write_config(t.path("big.yaml"), 32, depths, num_classes=10, mlp_ratio=2.0,
                         img_size=32)
big = t.path("big.exe")
rc, _, err, _ = t.run(["compile", big_cfg, "-o", big])
t.check(rc == 0, "row 12: a bigger model compiles: %s" % err.strip()[:200])
old_size, new_size = os.path.getsize(exe), os.path.getsize(big)
size_k = (old_size + new_size // 2) // 1024
mounted = rc == 0 and new_size > 2 * old_size and subprocess.run(
    ["mount", "-t", "tmpfs", "-o", "size=%dk" % size_k, "tmpfs", mnt],
    capture_output=True).returncode == 0
if not mounted:
    print("  (no small tmpfs: the other-filesystem case is not run)")
else:
    try:
        dst = os.path.join(mnt, "m.exe")
        with open(exe, "rb") as a, open(dst, "wb") as b:
            b.write(a.read())
        os.chmod(dst, 0o755)
        rc, _, err, _ = t.run(["compile", big_cfg, "-o", dst])
        expect_fail("row 12: compile -o on a full tmpfs", rc, err, "cannot write",
                    "no space left on device")
        t.check(read(dst) == read(exe) and not temps(mnt),
                "row 12: the old executable is intact, no temporary left (%s)" % temps(mnt))
        rc, _, err, _ = E.run_prog([dst, "--input", xin, "--output", t.path("y2.npy")])
        t.check(rc == 0, "row 12: the old executable still runs")
    finally:
        subprocess.run(["umount", mnt])

# ------------------------------------------------------------ row 19: bad --output before the run
for bad, why in (("/nonexistent/y.npy", "no such file or directory"),
                 (xin + "/y.npy", "not a directory"),
                 (t.work, "is a directory")):
    rc, _, err, dt = E.run_prog([exe, "--input", xin, "--output", bad, "--bench", "1000000"],
                                timeout=60)
    expect_fail("row 19: executable --output %s" % bad, rc, err, "cannot write " + bad, why)
    t.check(dt < 10, "row 19: refused before running (%.1f s)" % dt)
    rc, _, err, _ = t.run(["run", cfg, "--input", xin, "--output", bad])
    expect_fail("row 19: run --output %s" % bad, rc, err, "cannot write " + bad, why)
    rc, _, err, _ = t.run(["compile", cfg, "-o", bad])
    expect_fail("row 19: compile -o %s" % bad, rc, err, "cannot write " + bad, why)

# ------------------------------------------------------------ row 10: an output is an input
wold = read(wts)
cold = read(cfg)
link = t.path("link.pth")
os.symlink(wts, link)
hard = t.path("hard.pth")
os.link(wts, hard)
for args, label in (
        (["compile", cfg, "--weights", wts, "-o", wts], "compile -o the --weights file"),
        (["compile", cfg, "--weights", wts, "-o", cfg], "compile -o the MODEL file"),
        (["compile", cfg, "--weights", wts, "-o", link], "compile -o a symlink to the weights"),
        (["compile", cfg, "--weights", wts, "-o", hard], "compile -o a hard link to the weights"),
        (["compile", cfg, "--weights", wts, "--emit", "llvm-ir", "-o", wts], "compile llvm-ir"),
        (["dump", cfg, "--weights", wts, "-o", wts], "dump -o the weights"),
        (["dump", cfg, "-o", cfg], "dump -o the MODEL"),
        (["dump", cfg, "--weights", wts, "-O1", "--dump-dot", wts], "dump --dump-dot the weights"),
        (["run", cfg, "--weights", wts, "--input", xin, "--output", xin], "run --output the input"),
        (["run", cfg, "--weights", wts, "--input", xin, "--output", wts], "run --output the weights"),
        (["run", cfg, "--input", xin, "--output", y, "--dump-dot", y], "run --dump-dot = --output")):
    rc, _, err, _ = t.run(args)
    expect_fail("row 10: " + label, rc, err, "same file")
t.check(read(wts) == wold and read(cfg) == cold, "row 10: weights and config unchanged")
# derived outputs: --emit shared -o OUT writes OUT.weights and OUT.h
wcopy = t.path("lib.weights")
with open(wcopy, "wb") as f:
    f.write(wold)
rc, _, err, _ = t.run(["compile", cfg, "--weights", wcopy, "--emit", "shared", "-o",
                       t.path("lib.so")])
expect_fail("row 10: compile --emit shared whose OUT.weights is the --weights file", rc, err,
            "same file", "lib.weights")
t.check(read(wcopy) == wold, "row 10: the derived-output case left the checkpoint intact")

# ------------------------------------------------------------ row 18: signals during compile
# the C compiler: one that, once it is asked to compile or link, marks its
# directory and stays there until killed (the real one links a small model
# too quickly to be caught); its -print-file-name queries pass through
slowcc = t.path("slowcc")
with open(slowcc, "w") as f:
    f.write('#!/bin/sh\ncase "$*" in *-print-file-name*) exec cc "$@";; esac\ntouch cc-running\nexec sleep 60\n')
os.chmod(slowcc, 0o755)
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    tmp = t.path("tmp_%d" % sig)
    odir = t.path("out_%d" % sig)
    os.mkdir(tmp)
    os.mkdir(odir)
    env = dict(os.environ, TMPDIR=tmp, CC=slowcc)
    p = subprocess.Popen([t.mambac, "compile", cfg, "--weights", wts, "-o",
                          os.path.join(odir, "m.exe")], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = False
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 120:
        dirs = [d for d in os.listdir(tmp) if d.startswith("mambac-")]
        if dirs and os.path.exists(os.path.join(tmp, dirs[0], "cc-running")):
            seen = True  # the C compiler is running
            p.send_signal(sig)
            break
        time.sleep(0.02)
    p.wait(timeout=60)
    left = os.listdir(tmp) + os.listdir(odir)
    t.check(seen and p.returncode == -sig and not left,
            "row 18: %s during compile: rc=%s, temporaries left: %s" % (
                signal.Signals(sig).name, p.returncode, left))

# ------------------------------------------------------------ rows 12, 18 for --target cuda
# OUT.cu / OUT.weights past a file limit leave the old files; a signal while
# nvcc builds the executable leaves no temporaries (nvcc's own included)
cu = t.path("c")
for ext in (".cu", ".weights"):
    with open(cu + ext, "w") as f:
        f.write("old\n")
rc, err = run_lim([t.mambac, "compile", cfg, "--weights", wts, "--target", "cuda", "--emit", "cuda", "-o", cu],
                  nbytes=4000)
expect_fail("row 12: --target cuda --emit cuda past a file limit", rc, err, "cannot write", "c.cu")
t.check(read(cu + ".cu") == b"old\n" and read(cu + ".weights") == b"old\n" and not temps(t.work),
        "row 12: --target cuda: OUT.cu and OUT.weights intact, no temporary left (%s)" % temps(t.work))
rc, _, err, _ = t.run(["compile", cfg, "--weights", wts, "--target", "cuda", "-o", "/nonexistent/c"])
expect_fail("row 19: --target cuda -o into a missing directory", rc, err, "cannot write",
            "no such file or directory")
nvcc = os.environ.get("NVCC") or ("/usr/local/cuda/bin/nvcc" if os.access("/usr/local/cuda/bin/nvcc", os.X_OK)
                                  else shutil.which("nvcc"))
if nvcc:
    tmp = t.path("tmp_cuda")
    odir = t.path("out_cuda")
    os.mkdir(tmp)
    os.mkdir(odir)
    p = subprocess.Popen([t.mambac, "compile", cfg, "--weights", wts, "--target", "cuda", "-o",
                          os.path.join(odir, "c")], env=dict(os.environ, TMPDIR=tmp),
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = False
    t0 = time.time()
    while p.poll() is None and time.time() - t0 < 120:
        dirs = [d for d in os.listdir(tmp) if d.startswith("mambac-")]
        if dirs and any(n.startswith("tmpxft") for n in os.listdir(os.path.join(tmp, dirs[0]))):
            seen = True  # nvcc is running (its temporaries are in our directory)
            p.send_signal(signal.SIGTERM)
            break
        time.sleep(0.02)
    p.wait(timeout=60)
    left = os.listdir(tmp) + os.listdir(odir)
    t.check(seen and p.returncode == -signal.SIGTERM and not left,
            "row 18: SIGTERM while nvcc builds: rc=%s, temporaries left: %s" % (p.returncode, left))
else:
    print("  note: no nvcc: the --target cuda signal case is skipped")

# ------------------------------------------------------------ rows 15, 16: top-k
xn = x.copy()
xn[0, 0, 0, 0] = np.nan
xnan = t.path("xnan.npy")
np.save(xnan, xn)


def top_classes(out):
    """image 0's classes, in the order --top printed them ("  1. class 5 12.3%")"""
    cls, on = [], False
    for ln in out.splitlines():
        if ln.endswith(":") and not ln.startswith(" "):
            on = ln == "image 0:"
            continue
        m = re.match(r"\s+\d+\. class (\d+) ", ln)
        if on and m:
            cls.append(int(m.group(1)))
    return cls


rc, out, err, _ = E.run_prog([exe, "--input", xnan, "--top", "3"])
cls = top_classes(out)
t.check(rc == 0 and len(cls) == 3 and len(set(cls)) == 3,
        "row 16: executable --top 3 with NaN logits names 3 distinct classes: %s" % cls)
rc, out, err, _ = t.run(["run", cfg, "--weights", wts, "--input", xnan, "--output",
                         t.path("yn.npy"), "--top", "10"])
cls = top_classes(out)
t.check(rc == 0 and sorted(cls) == list(range(10)),
        "row 16: run --top 10 with NaN logits names each class once: %s" % cls)
# finite scores mixed with NaN: numbers first, by value, then NaN
rc, out, err, _ = t.run(["run", cfg, "--weights", wts, "--input", xin, "--output", y,
                         "--top", "10"])
yv = np.load(y)[0]
t.check(rc == 0 and top_classes(out) == sorted(range(10), key=lambda c: (-yv[c], c)),
        "row 16: run --top 10 lists the classes by score (%s)" % top_classes(out)[:5])

big_cfg = E.write_config(t.path("k.yaml"), 16, depths, num_classes=20000, mlp_ratio=2.0,
                         img_size=32)
yk = t.path("yk.npy")
rc, out, err, dt = t.run(["run", big_cfg, "--input", xin, "--output", yk, "--top", "20000"],
                         timeout=120)
cls = top_classes(out)
ok = rc == 0 and sorted(cls) == list(range(20000))
if ok:
    yv = np.load(yk)[0]
    ok = all(yv[cls[i]] >= yv[cls[i + 1]] for i in range(len(cls) - 1))
t.check(ok and dt < 30, "row 15: run --top 20000 on a 20000-class model: rc=%s %.1f s, %d classes"
        % (rc, dt, len(cls)))

# ------------------------------------------------------------ rows 1, 17: counts
for args, what in ((["--bench", "2305843009213693953"], "--bench"),
                   (["--bench", "10000001"], "--bench"),
                   (["--profile", "2305843009213693953"], "--profile"),
                   (["--threads", "4294967297", "--bench", "1"], "--threads"),
                   (["--threads", "2147483648", "--bench", "1"], "--threads"),
                   (["--top", "4294967297", "--input", xin], "--top")):
    rc, out, err, dt = E.run_prog([exe] + args, timeout=60)
    t.check(rc == 2 and what in err and "1.." in err and dt < 10 and
            not any(b in err.lower() for b in E.BAD_WORDS),
            "rows 1, 17: executable %s: rc=%s %s" % (" ".join(args), rc, err.strip()[:200]))
for v in ("4294967297", "2147483648", "0"):
    rc, _, err, _ = t.run(["run", cfg, "--input", xin, "--output", y, "--threads", v])
    t.check(rc == 2 and "--threads" in err, "row 17: run --threads %s: rc=%s %s" % (
        v, rc, err.strip()[:200]))

t.finish()
